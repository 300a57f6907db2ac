//! Inbound events: every signed request Ferry accepts is stored before it is
//! answered, once per dedupe key per tenant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InboundEvents {
    Table,
    Id,
    TenantId,
    ConnectionId,
    Source,
    EventType,
    DedupeKey,
    Payload,
    Status,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboundEvents::Table)
                    .col(
                        ColumnDef::new(InboundEvents::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(InboundEvents::TenantId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InboundEvents::ConnectionId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(ColumnDef::new(InboundEvents::Source).string().not_null())
                    .col(ColumnDef::new(InboundEvents::EventType).string().not_null())
                    .col(ColumnDef::new(InboundEvents::DedupeKey).string().not_null())
                    .col(ColumnDef::new(InboundEvents::Payload).text().not_null())
                    .col(ColumnDef::new(InboundEvents::Status).string().not_null())
                    .col(
                        ColumnDef::new(InboundEvents::ReceivedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(InboundEvents::Table, InboundEvents::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_inbound_events_dedupe")
                    .table(InboundEvents::Table)
                    .col(InboundEvents::TenantId)
                    .col(InboundEvents::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InboundEvents::Table).to_owned())
            .await
    }
}
