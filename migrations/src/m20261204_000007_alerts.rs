//! Monitoring and alerts: per-workflow metric rollups (a row per workflow
//! and minute, and per workflow and hour), alert rules with the state of
//! their incident, the incidents' history and the emails each one sent, the
//! claim that makes a scheduled evaluation happen once across processes,
//! and an HTML body for emails.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum WorkflowMetrics {
    Table,
    TenantId,
    WorkflowId,
    Span,
    At,
    Events,
    Started,
    Succeeded,
    Failed,
    Dead,
    Writes,
    WritesFailed,
    DeadlinesMissed,
    LatencySumMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AlertRules {
    Table,
    Id,
    TenantId,
    WorkflowId,
    Kind,
    Threshold,
    WindowMinutes,
    MinRuns,
    RecipientId,
    EscalationId,
    EscalateAfterMinutes,
    Enabled,
    Firing,
    Since,
    Acknowledged,
    Escalated,
    ResolvedAt,
    IncidentId,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AlertIncidents {
    Table,
    Id,
    TenantId,
    WorkflowId,
    RuleId,
    Kind,
    Summary,
    OpenedAt,
    ResolvedAt,
    AcknowledgedBy,
    AcknowledgedAt,
    EscalatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AlertNotices {
    Table,
    Id,
    TenantId,
    IncidentId,
    EmailId,
    Kind,
    RecipientId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SchedulerTicks {
    Table,
    Name,
    LastAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Emails {
    Table,
    BodyHtml,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
}

/// How many latency buckets a rollup row has (`l00` … `l15`).
const BUCKETS: usize = 16;

fn short(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(40).not_null().to_owned()
}

fn count(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

fn time(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn time_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn tenant_fk(table: impl IntoIden + Clone, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(col)
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + Clone + Send + 'static,
    cols: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut i = Index::create().name(name).table(table).to_owned();
    for c in cols {
        i.col(c);
    }
    if unique {
        i.unique();
    }
    manager.create_index(i).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut metrics = Table::create()
            .table(WorkflowMetrics::Table)
            .col(short(WorkflowMetrics::TenantId))
            .col(short(WorkflowMetrics::WorkflowId))
            .col(ColumnDef::new(WorkflowMetrics::Span).integer().not_null())
            .col(time(WorkflowMetrics::At))
            .col(count(WorkflowMetrics::Events))
            .col(count(WorkflowMetrics::Started))
            .col(count(WorkflowMetrics::Succeeded))
            .col(count(WorkflowMetrics::Failed))
            .col(count(WorkflowMetrics::Dead))
            .col(count(WorkflowMetrics::Writes))
            .col(count(WorkflowMetrics::WritesFailed))
            .col(count(WorkflowMetrics::DeadlinesMissed))
            .col(count(WorkflowMetrics::LatencySumMs))
            .primary_key(
                Index::create()
                    .col(WorkflowMetrics::TenantId)
                    .col(WorkflowMetrics::WorkflowId)
                    .col(WorkflowMetrics::Span)
                    .col(WorkflowMetrics::At),
            )
            .foreign_key(&mut tenant_fk(
                WorkflowMetrics::Table,
                WorkflowMetrics::TenantId,
            ))
            .to_owned();
        for i in 0..BUCKETS {
            metrics.col(count(Alias::new(format!("l{i:02}"))));
        }
        manager.create_table(metrics).await?;
        // Evaluation and retention read one span since a time, every tenant.
        index(
            manager,
            "idx_workflow_metrics_span_at",
            WorkflowMetrics::Table,
            vec![
                WorkflowMetrics::Span.into_iden(),
                WorkflowMetrics::At.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AlertRules::Table)
                    .col(
                        ColumnDef::new(AlertRules::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(short(AlertRules::TenantId))
                    .col(short(AlertRules::WorkflowId))
                    .col(ColumnDef::new(AlertRules::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(AlertRules::Threshold).double().not_null())
                    .col(
                        ColumnDef::new(AlertRules::WindowMinutes)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AlertRules::MinRuns).big_integer().not_null())
                    .col(short(AlertRules::RecipientId))
                    .col(
                        ColumnDef::new(AlertRules::EscalationId)
                            .string_len(40)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AlertRules::EscalateAfterMinutes)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AlertRules::Enabled).boolean().not_null())
                    .col(ColumnDef::new(AlertRules::Firing).boolean().not_null())
                    .col(time_null(AlertRules::Since))
                    .col(
                        ColumnDef::new(AlertRules::Acknowledged)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AlertRules::Escalated).boolean().not_null())
                    .col(time_null(AlertRules::ResolvedAt))
                    .col(ColumnDef::new(AlertRules::IncidentId).string_len(40).null())
                    .col(ColumnDef::new(AlertRules::Version).big_integer().not_null())
                    .col(time(AlertRules::CreatedAt))
                    .col(time(AlertRules::UpdatedAt))
                    .foreign_key(&mut tenant_fk(AlertRules::Table, AlertRules::TenantId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_alert_rules_workflow",
            AlertRules::Table,
            vec![
                AlertRules::TenantId.into_iden(),
                AlertRules::WorkflowId.into_iden(),
            ],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(AlertIncidents::Table)
                    .col(
                        ColumnDef::new(AlertIncidents::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(short(AlertIncidents::TenantId))
                    .col(short(AlertIncidents::WorkflowId))
                    .col(short(AlertIncidents::RuleId))
                    .col(
                        ColumnDef::new(AlertIncidents::Kind)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AlertIncidents::Summary).text().not_null())
                    .col(time(AlertIncidents::OpenedAt))
                    .col(time_null(AlertIncidents::ResolvedAt))
                    .col(
                        ColumnDef::new(AlertIncidents::AcknowledgedBy)
                            .string_len(40)
                            .null(),
                    )
                    .col(time_null(AlertIncidents::AcknowledgedAt))
                    .col(time_null(AlertIncidents::EscalatedAt))
                    .foreign_key(&mut tenant_fk(
                        AlertIncidents::Table,
                        AlertIncidents::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_alert_incidents_tenant_opened",
                vec![
                    AlertIncidents::TenantId.into_iden(),
                    AlertIncidents::OpenedAt.into_iden(),
                ],
            ),
            (
                "idx_alert_incidents_workflow_opened",
                vec![
                    AlertIncidents::TenantId.into_iden(),
                    AlertIncidents::WorkflowId.into_iden(),
                    AlertIncidents::OpenedAt.into_iden(),
                ],
            ),
        ] {
            index(manager, name, AlertIncidents::Table, cols, false).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AlertNotices::Table)
                    .col(
                        ColumnDef::new(AlertNotices::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(short(AlertNotices::TenantId))
                    .col(short(AlertNotices::IncidentId))
                    .col(short(AlertNotices::EmailId))
                    .col(ColumnDef::new(AlertNotices::Kind).string_len(16).not_null())
                    .col(short(AlertNotices::RecipientId))
                    .col(time(AlertNotices::CreatedAt))
                    .foreign_key(&mut tenant_fk(AlertNotices::Table, AlertNotices::TenantId))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_alert_notices_incident",
            AlertNotices::Table,
            vec![AlertNotices::IncidentId.into_iden()],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SchedulerTicks::Table)
                    .col(
                        ColumnDef::new(SchedulerTicks::Name)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(time(SchedulerTicks::LastAt))
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Emails::Table)
                    .add_column(ColumnDef::new(Emails::BodyHtml).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Emails::Table)
                    .drop_column(Emails::BodyHtml)
                    .to_owned(),
            )
            .await?;
        for table in [
            SchedulerTicks::Table.into_iden(),
            AlertNotices::Table.into_iden(),
            AlertIncidents::Table.into_iden(),
            AlertRules::Table.into_iden(),
            WorkflowMetrics::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
