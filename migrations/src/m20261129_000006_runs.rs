//! Runs and their step attempts, the staff view of verification outcomes,
//! the guard against Ferry's own writes echoing back as triggers, and the
//! correlation key that lets a waiting run find its event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Runs {
    Table,
    Id,
    TenantId,
    WorkflowId,
    Version,
    EventId,
    RecordId,
    Status,
    StepIndex,
    StepAttempt,
    Context,
    WaitKey,
    WakeAt,
    LeaseUntil,
    Error,
    Replays,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RunSteps {
    Table,
    Id,
    TenantId,
    RunId,
    StepIndex,
    StepKey,
    Kind,
    Attempt,
    Status,
    Input,
    Output,
    HttpCalls,
    Error,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Verifications {
    Table,
    Id,
    TenantId,
    RecordId,
    Name,
    Outcome,
    CheckRef,
    CheckedAt,
    RunId,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EchoGuards {
    Table,
    Id,
    TenantId,
    RecordId,
    Property,
    Value,
    ExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum InboundEvents {
    Table,
    TenantId,
    CorrelationKey,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    Id,
}

fn id(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .string_len(40)
        .not_null()
        .primary_key()
        .to_owned()
}

fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}

fn short(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(40).not_null().to_owned()
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

fn tenant_fk(table: impl IntoIden + Clone) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Runs::TenantId)
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
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .col(id(Runs::Id))
                    .col(short(Runs::TenantId))
                    .col(short(Runs::WorkflowId))
                    .col(ColumnDef::new(Runs::Version).integer().not_null())
                    .col(short(Runs::EventId))
                    .col(ColumnDef::new(Runs::RecordId).string().null())
                    .col(ColumnDef::new(Runs::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Runs::StepIndex).integer().not_null())
                    .col(ColumnDef::new(Runs::StepAttempt).integer().not_null())
                    .col(text(Runs::Context))
                    .col(ColumnDef::new(Runs::WaitKey).string().null())
                    .col(time_null(Runs::WakeAt))
                    .col(time_null(Runs::LeaseUntil))
                    .col(ColumnDef::new(Runs::Error).text().null())
                    .col(ColumnDef::new(Runs::Replays).integer().not_null())
                    .col(time(Runs::CreatedAt))
                    .col(time(Runs::UpdatedAt))
                    .col(time_null(Runs::FinishedAt))
                    .foreign_key(&mut tenant_fk(Runs::Table))
                    .to_owned(),
            )
            .await?;
        // One run per event per workflow, however often the event arrives.
        index(
            manager,
            "uq_runs_workflow_event",
            Runs::Table,
            vec![Runs::WorkflowId.into_iden(), Runs::EventId.into_iden()],
            true,
        )
        .await?;
        // Keyset pagination: newest first, per tenant and per filter.
        for (name, cols) in [
            (
                "idx_runs_tenant_created",
                vec![
                    Runs::TenantId.into_iden(),
                    Runs::CreatedAt.into_iden(),
                    Runs::Id.into_iden(),
                ],
            ),
            (
                "idx_runs_tenant_workflow_created",
                vec![
                    Runs::TenantId.into_iden(),
                    Runs::WorkflowId.into_iden(),
                    Runs::CreatedAt.into_iden(),
                    Runs::Id.into_iden(),
                ],
            ),
            (
                "idx_runs_tenant_status_created",
                vec![
                    Runs::TenantId.into_iden(),
                    Runs::Status.into_iden(),
                    Runs::CreatedAt.into_iden(),
                    Runs::Id.into_iden(),
                ],
            ),
            (
                "idx_runs_tenant_record",
                vec![Runs::TenantId.into_iden(), Runs::RecordId.into_iden()],
            ),
            (
                "idx_runs_status_wake",
                vec![Runs::Status.into_iden(), Runs::WakeAt.into_iden()],
            ),
            (
                "idx_runs_wait_key",
                vec![Runs::TenantId.into_iden(), Runs::WaitKey.into_iden()],
            ),
        ] {
            index(manager, name, Runs::Table, cols, false).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(RunSteps::Table)
                    .col(
                        ColumnDef::new(RunSteps::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(short(RunSteps::TenantId))
                    .col(short(RunSteps::RunId))
                    .col(ColumnDef::new(RunSteps::StepIndex).integer().not_null())
                    .col(ColumnDef::new(RunSteps::StepKey).string().not_null())
                    .col(ColumnDef::new(RunSteps::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(RunSteps::Attempt).integer().not_null())
                    .col(ColumnDef::new(RunSteps::Status).string_len(16).not_null())
                    .col(text(RunSteps::Input))
                    .col(text(RunSteps::Output))
                    .col(text(RunSteps::HttpCalls))
                    .col(ColumnDef::new(RunSteps::Error).text().null())
                    .col(time(RunSteps::StartedAt))
                    .col(time(RunSteps::FinishedAt))
                    .foreign_key(
                        &mut ForeignKey::create()
                            .from(RunSteps::Table, RunSteps::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_run_steps_run",
            RunSteps::Table,
            vec![RunSteps::RunId.into_iden(), RunSteps::Id.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Verifications::Table)
                    .col(id(Verifications::Id))
                    .col(short(Verifications::TenantId))
                    .col(ColumnDef::new(Verifications::RecordId).string().not_null())
                    .col(text(Verifications::Name))
                    .col(
                        ColumnDef::new(Verifications::Outcome)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Verifications::CheckRef).string().null())
                    .col(time_null(Verifications::CheckedAt))
                    .col(short(Verifications::RunId))
                    .col(time(Verifications::UpdatedAt))
                    .foreign_key(&mut tenant_fk(Verifications::Table))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "uq_verifications_record",
            Verifications::Table,
            vec![
                Verifications::TenantId.into_iden(),
                Verifications::RecordId.into_iden(),
            ],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(EchoGuards::Table)
                    .col(
                        ColumnDef::new(EchoGuards::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(short(EchoGuards::TenantId))
                    .col(ColumnDef::new(EchoGuards::RecordId).string().not_null())
                    .col(ColumnDef::new(EchoGuards::Property).string().not_null())
                    .col(text(EchoGuards::Value))
                    .col(time(EchoGuards::ExpiresAt))
                    .foreign_key(&mut tenant_fk(EchoGuards::Table))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_echo_guards_record",
            EchoGuards::Table,
            vec![
                EchoGuards::TenantId.into_iden(),
                EchoGuards::RecordId.into_iden(),
            ],
            false,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(InboundEvents::Table)
                    .add_column(
                        ColumnDef::new(InboundEvents::CorrelationKey)
                            .string()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_inbound_events_correlation",
            InboundEvents::Table,
            vec![
                InboundEvents::TenantId.into_iden(),
                InboundEvents::CorrelationKey.into_iden(),
            ],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_inbound_events_correlation")
                    .table(InboundEvents::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(InboundEvents::Table)
                    .drop_column(InboundEvents::CorrelationKey)
                    .to_owned(),
            )
            .await?;
        for t in [
            EchoGuards::Table.into_iden(),
            Verifications::Table.into_iden(),
            RunSteps::Table.into_iden(),
            Runs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
