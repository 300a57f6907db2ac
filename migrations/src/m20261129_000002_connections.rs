//! Connections and their vault: per-tenant data keys wrapped by the master
//! key, encrypted credentials, OAuth flows in progress, and authentication
//! events (a failed refresh, a revoked grant, a creator deactivated).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TenantKeys {
    Table,
    TenantId,
    WrappedKey,
    MasterKeyId,
    CreatedAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
    TenantId,
    Connector,
    Name,
    Environment,
    Status,
    StatusReason,
    Scopes,
    ExternalAccount,
    BaseUrl,
    SecretCiphertext,
    AccessExpiresAt,
    CredentialExpiresAt,
    NeedsRotation,
    Version,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum OauthFlows {
    Table,
    StateHash,
    TenantId,
    UserId,
    Connector,
    Name,
    Environment,
    Scopes,
    VerifierCiphertext,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AuthEvents {
    Table,
    Id,
    TenantId,
    ConnectionId,
    Kind,
    Message,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(40).not_null().to_owned()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}

fn time(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn time_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn tenant_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantKeys::Table)
                    .col(id(TenantKeys::TenantId).primary_key())
                    .col(ColumnDef::new(TenantKeys::WrappedKey).text().not_null())
                    .col(text(TenantKeys::MasterKeyId))
                    .col(time(TenantKeys::CreatedAt))
                    .col(time(TenantKeys::RotatedAt))
                    .foreign_key(&mut tenant_fk(TenantKeys::Table, TenantKeys::TenantId))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .col(id(Connections::Id).primary_key())
                    .col(id(Connections::TenantId))
                    .col(text(Connections::Connector))
                    .col(text(Connections::Name))
                    .col(text(Connections::Environment))
                    .col(text(Connections::Status))
                    .col(ColumnDef::new(Connections::StatusReason).string().null())
                    .col(ColumnDef::new(Connections::Scopes).text().not_null())
                    .col(ColumnDef::new(Connections::ExternalAccount).string().null())
                    .col(ColumnDef::new(Connections::BaseUrl).string().null())
                    .col(
                        ColumnDef::new(Connections::SecretCiphertext)
                            .text()
                            .not_null(),
                    )
                    .col(time_null(Connections::AccessExpiresAt))
                    .col(time_null(Connections::CredentialExpiresAt))
                    .col(
                        ColumnDef::new(Connections::NeedsRotation)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Connections::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(id(Connections::CreatedBy))
                    .col(time(Connections::CreatedAt))
                    .col(time(Connections::UpdatedAt))
                    .col(time_null(Connections::LastUsedAt))
                    .foreign_key(&mut tenant_fk(Connections::Table, Connections::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_connections_tenant")
                    .table(Connections::Table)
                    .col(Connections::TenantId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthFlows::Table)
                    .col(
                        ColumnDef::new(OauthFlows::StateHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(id(OauthFlows::TenantId))
                    .col(id(OauthFlows::UserId))
                    .col(text(OauthFlows::Connector))
                    .col(text(OauthFlows::Name))
                    .col(text(OauthFlows::Environment))
                    .col(ColumnDef::new(OauthFlows::Scopes).text().not_null())
                    .col(
                        ColumnDef::new(OauthFlows::VerifierCiphertext)
                            .text()
                            .not_null(),
                    )
                    .col(time(OauthFlows::CreatedAt))
                    .col(time(OauthFlows::ExpiresAt))
                    .foreign_key(&mut tenant_fk(OauthFlows::Table, OauthFlows::TenantId))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuthEvents::Table)
                    .col(id(AuthEvents::Id).primary_key())
                    .col(id(AuthEvents::TenantId))
                    .col(id(AuthEvents::ConnectionId))
                    .col(text(AuthEvents::Kind))
                    .col(ColumnDef::new(AuthEvents::Message).text().not_null())
                    .col(time(AuthEvents::CreatedAt))
                    .foreign_key(&mut tenant_fk(AuthEvents::Table, AuthEvents::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_events_tenant")
                    .table(AuthEvents::Table)
                    .col(AuthEvents::TenantId)
                    .col(AuthEvents::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuthEvents::Table.into_iden(),
            OauthFlows::Table.into_iden(),
            Connections::Table.into_iden(),
            TenantKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
