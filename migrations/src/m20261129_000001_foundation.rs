//! Tenants, people, memberships, sessions, login attempts, one-time links,
//! the mail outbox and the append-only audit log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    IsOperator,
    Status,
    CreatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    TenantId,
    UserId,
    Role,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    TokenHash,
    UserId,
    TenantId,
    CsrfToken,
    CreatedAt,
    LastSeenAt,
    ClientIp,
}

#[derive(DeriveIden)]
enum LoginAttempts {
    Table,
    Id,
    Email,
    ClientIp,
    Succeeded,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Id,
    TokenHash,
    Kind,
    Email,
    Name,
    TenantId,
    Role,
    UserId,
    InvitedBy,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    Id,
    TenantId,
    ToAddress,
    Subject,
    BodyText,
    Status,
    Attempts,
    LastError,
    NextAttemptAt,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Seq,
    Id,
    TenantId,
    ActorUserId,
    ActorLabel,
    Action,
    TargetKind,
    TargetId,
    Details,
    ClientIp,
    CreatedAt,
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(id(Tenants::Id).primary_key())
                    .col(text(Tenants::Name))
                    .col(text(Tenants::Status))
                    .col(time(Tenants::CreatedAt))
                    .col(time(Tenants::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id).primary_key())
                    .col(text(Users::Email).unique_key())
                    .col(text(Users::Name))
                    .col(ColumnDef::new(Users::PasswordHash).string().null())
                    .col(ColumnDef::new(Users::IsOperator).boolean().not_null())
                    .col(text(Users::Status))
                    .col(time(Users::CreatedAt))
                    .col(time_null(Users::LastLoginAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(id(Memberships::TenantId))
                    .col(id(Memberships::UserId))
                    .col(text(Memberships::Role))
                    .col(text(Memberships::Status))
                    .col(time(Memberships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Memberships::TenantId)
                            .col(Memberships::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Memberships::Table, Memberships::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_user")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(
                        ColumnDef::new(Sessions::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(id(Sessions::UserId))
                    .col(ColumnDef::new(Sessions::TenantId).string_len(40).null())
                    .col(text(Sessions::CsrfToken))
                    .col(time(Sessions::CreatedAt))
                    .col(time(Sessions::LastSeenAt))
                    .col(text(Sessions::ClientIp))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginAttempts::Table)
                    .col(
                        ColumnDef::new(LoginAttempts::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(LoginAttempts::Email))
                    .col(text(LoginAttempts::ClientIp))
                    .col(
                        ColumnDef::new(LoginAttempts::Succeeded)
                            .boolean()
                            .not_null(),
                    )
                    .col(time(LoginAttempts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_login_attempts_email", LoginAttempts::Email),
            ("idx_login_attempts_ip", LoginAttempts::ClientIp),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(LoginAttempts::Table)
                        .col(col)
                        .col(LoginAttempts::CreatedAt)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Invites::Table)
                    .col(id(Invites::Id).primary_key())
                    .col(
                        ColumnDef::new(Invites::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(text(Invites::Kind))
                    .col(text(Invites::Email))
                    .col(text(Invites::Name))
                    .col(ColumnDef::new(Invites::TenantId).string_len(40).null())
                    .col(ColumnDef::new(Invites::Role).string().null())
                    .col(ColumnDef::new(Invites::UserId).string_len(40).null())
                    .col(ColumnDef::new(Invites::InvitedBy).string_len(40).null())
                    .col(time(Invites::ExpiresAt))
                    .col(time_null(Invites::UsedAt))
                    .col(time(Invites::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invites::Table, Invites::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Emails::Table)
                    .col(id(Emails::Id).primary_key())
                    .col(ColumnDef::new(Emails::TenantId).string_len(40).null())
                    .col(text(Emails::ToAddress))
                    .col(text(Emails::Subject))
                    .col(ColumnDef::new(Emails::BodyText).text().not_null())
                    .col(text(Emails::Status))
                    .col(ColumnDef::new(Emails::Attempts).integer().not_null())
                    .col(ColumnDef::new(Emails::LastError).string().null())
                    .col(time(Emails::NextAttemptAt))
                    .col(time(Emails::CreatedAt))
                    .col(time_null(Emails::SentAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Emails::Table, Emails::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_emails_status")
                    .table(Emails::Table)
                    .col(Emails::Status)
                    .col(Emails::NextAttemptAt)
                    .to_owned(),
            )
            .await?;

        // No foreign key to tenants: the audit trail outlives a deleted tenant.
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(id(AuditEvents::Id).unique_key())
                    .col(ColumnDef::new(AuditEvents::TenantId).string_len(40).null())
                    .col(
                        ColumnDef::new(AuditEvents::ActorUserId)
                            .string_len(40)
                            .null(),
                    )
                    .col(text(AuditEvents::ActorLabel))
                    .col(text(AuditEvents::Action))
                    .col(text(AuditEvents::TargetKind))
                    .col(text(AuditEvents::TargetId))
                    .col(ColumnDef::new(AuditEvents::Details).text().not_null())
                    .col(text(AuditEvents::ClientIp))
                    .col(time(AuditEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_tenant")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::TenantId)
                    .col(AuditEvents::Seq)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditEvents::Table.into_iden(),
            Emails::Table.into_iden(),
            Invites::Table.into_iden(),
            LoginAttempts::Table.into_iden(),
            Sessions::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
