//! Workflow lifecycle (paused, deleted with its history kept), the
//! builder's sealed sample record per workflow, reconnecting a connection
//! in place (the OAuth attempt names it), a run's record name (sealed) with
//! keyed hashes to search it by, and the contact's email in the staff
//! verification view.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workflows {
    Table,
    PausedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum WorkflowSamples {
    Table,
    WorkflowId,
    TenantId,
    Label,
    Sealed,
    TakenAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    RecordLabel,
    SearchKeys,
}

#[derive(DeriveIden)]
enum OauthFlows {
    Table,
    ReconnectId,
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    Email,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [Workflows::PausedAt, Workflows::DeletedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Workflows::Table)
                        .add_column(ColumnDef::new(column).timestamp_with_time_zone().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(WorkflowSamples::Table)
                    .col(
                        ColumnDef::new(WorkflowSamples::WorkflowId)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WorkflowSamples::TenantId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(ColumnDef::new(WorkflowSamples::Label).text().not_null())
                    .col(ColumnDef::new(WorkflowSamples::Sealed).text().not_null())
                    .col(
                        ColumnDef::new(WorkflowSamples::TakenAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(WorkflowSamples::Table)
                            .from_col(WorkflowSamples::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for column in [Runs::RecordLabel, Runs::SearchKeys] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(OauthFlows::Table)
                    .add_column(
                        ColumnDef::new(OauthFlows::ReconnectId)
                            .string_len(40)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(ColumnDef::new(Verifications::Email).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Runs::SearchKeys, Runs::RecordLabel] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Runs::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(OauthFlows::Table)
                    .drop_column(OauthFlows::ReconnectId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(WorkflowSamples::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .drop_column(Verifications::Email)
                    .to_owned(),
            )
            .await?;
        for column in [Workflows::DeletedAt, Workflows::PausedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Workflows::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
