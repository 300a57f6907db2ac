//! Compliance evidence: the audit log hash-chained per tenant (and for the
//! platform) with a head row per chain that appends lock; each step attempt
//! sealed into its tenant's chain; the workflow, record and version an entry
//! concerns; a version's change note and publish-gate evidence; a
//! workflow's profile (outcome, inventory answers) and review due date; the
//! review log; a tenant's retention period and field-class overrides; when a
//! run's payloads were purged.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    TenantId,
    Chain,
    ChainSeq,
    PrevHash,
    Hash,
    WorkflowId,
    RecordId,
}

#[derive(DeriveIden)]
enum AuditHeads {
    Table,
    Chain,
    Seq,
    Hash,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RunSteps {
    Table,
    AuditSeq,
    Id,
}

#[derive(DeriveIden)]
enum WorkflowVersions {
    Table,
    ChangeNote,
    Gate,
}

#[derive(DeriveIden)]
enum Workflows {
    Table,
    ReviewDueAt,
    Profile,
}

#[derive(DeriveIden)]
enum WorkflowReviews {
    Table,
    Id,
    TenantId,
    WorkflowId,
    ReviewerUserId,
    ReviewerLabel,
    Answers,
    Notes,
    Measured,
    ReviewedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    RetentionDays,
    FieldClasses,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    PurgedAt,
}

async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: ColumnDef,
) -> Result<(), DbErr> {
    let mut col = col;
    manager
        .alter_table(Table::alter().table(table).add_column(&mut col).to_owned())
        .await
}

async fn drop_col(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        add(
            manager,
            AuditEvents::Table,
            ColumnDef::new(AuditEvents::Chain)
                .string_len(40)
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            AuditEvents::Table,
            ColumnDef::new(AuditEvents::ChainSeq)
                .big_integer()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            AuditEvents::Table,
            ColumnDef::new(AuditEvents::PrevHash)
                .string_len(64)
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            AuditEvents::Table,
            ColumnDef::new(AuditEvents::Hash)
                .string_len(64)
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            AuditEvents::Table,
            ColumnDef::new(AuditEvents::WorkflowId)
                .string_len(40)
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            AuditEvents::Table,
            ColumnDef::new(AuditEvents::RecordId)
                .string_len(200)
                .null()
                .to_owned(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_chain")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Chain)
                    .col(AuditEvents::ChainSeq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_workflow")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::TenantId)
                    .col(AuditEvents::WorkflowId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_record")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::TenantId)
                    .col(AuditEvents::RecordId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditHeads::Table)
                    .col(
                        ColumnDef::new(AuditHeads::Chain)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditHeads::Seq).big_integer().not_null())
                    .col(ColumnDef::new(AuditHeads::Hash).string_len(64).not_null())
                    .col(
                        ColumnDef::new(AuditHeads::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        add(
            manager,
            RunSteps::Table,
            ColumnDef::new(RunSteps::AuditSeq)
                .big_integer()
                .null()
                .to_owned(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_run_steps_unsealed")
                    .table(RunSteps::Table)
                    .col(RunSteps::AuditSeq)
                    .col(RunSteps::Id)
                    .to_owned(),
            )
            .await?;
        add(
            manager,
            WorkflowVersions::Table,
            ColumnDef::new(WorkflowVersions::ChangeNote)
                .text()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            WorkflowVersions::Table,
            ColumnDef::new(WorkflowVersions::Gate)
                .text()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            Workflows::Table,
            ColumnDef::new(Workflows::ReviewDueAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            Workflows::Table,
            ColumnDef::new(Workflows::Profile).text().null().to_owned(),
        )
        .await?;
        add(
            manager,
            Tenants::Table,
            ColumnDef::new(Tenants::RetentionDays)
                .integer()
                .not_null()
                .default(90)
                .to_owned(),
        )
        .await?;
        add(
            manager,
            Tenants::Table,
            ColumnDef::new(Tenants::FieldClasses)
                .text()
                .null()
                .to_owned(),
        )
        .await?;
        add(
            manager,
            Runs::Table,
            ColumnDef::new(Runs::PurgedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkflowReviews::Table)
                    .col(
                        ColumnDef::new(WorkflowReviews::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WorkflowReviews::TenantId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowReviews::WorkflowId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowReviews::ReviewerUserId)
                            .string_len(40)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowReviews::ReviewerLabel)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WorkflowReviews::Answers).text().not_null())
                    .col(ColumnDef::new(WorkflowReviews::Notes).text().not_null())
                    .col(ColumnDef::new(WorkflowReviews::Measured).text().not_null())
                    .col(
                        ColumnDef::new(WorkflowReviews::ReviewedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl(WorkflowReviews::Table)
                            .from_col(WorkflowReviews::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workflow_reviews_workflow")
                    .table(WorkflowReviews::Table)
                    .col(WorkflowReviews::TenantId)
                    .col(WorkflowReviews::WorkflowId)
                    .col(WorkflowReviews::ReviewedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkflowReviews::Table).to_owned())
            .await?;
        drop_col(manager, Runs::Table, Runs::PurgedAt).await?;
        drop_col(manager, Tenants::Table, Tenants::FieldClasses).await?;
        drop_col(manager, Tenants::Table, Tenants::RetentionDays).await?;
        drop_col(manager, Workflows::Table, Workflows::Profile).await?;
        drop_col(manager, Workflows::Table, Workflows::ReviewDueAt).await?;
        drop_col(manager, WorkflowVersions::Table, WorkflowVersions::Gate).await?;
        drop_col(
            manager,
            WorkflowVersions::Table,
            WorkflowVersions::ChangeNote,
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_run_steps_unsealed")
                    .table(RunSteps::Table)
                    .to_owned(),
            )
            .await?;
        drop_col(manager, RunSteps::Table, RunSteps::AuditSeq).await?;
        manager
            .drop_table(Table::drop().table(AuditHeads::Table).to_owned())
            .await?;
        for name in [
            "idx_audit_events_record",
            "idx_audit_events_workflow",
            "idx_audit_events_chain",
        ] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(AuditEvents::Table)
                        .to_owned(),
                )
                .await?;
        }
        for col in [
            AuditEvents::RecordId,
            AuditEvents::WorkflowId,
            AuditEvents::Hash,
            AuditEvents::PrevHash,
            AuditEvents::ChainSeq,
            AuditEvents::Chain,
        ] {
            drop_col(manager, AuditEvents::Table, col).await?;
        }
        Ok(())
    }
}
