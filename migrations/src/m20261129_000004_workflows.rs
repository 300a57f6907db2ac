//! Workflows and their immutable published versions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
    TenantId,
    Name,
    Description,
    OwnerId,
    Environment,
    Draft,
    Bindings,
    PublishedVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WorkflowVersions {
    Table,
    Id,
    TenantId,
    WorkflowId,
    Version,
    Definition,
    Bindings,
    PublishedBy,
    PublishedAt,
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
                    .table(Workflows::Table)
                    .col(
                        ColumnDef::new(Workflows::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Workflows::TenantId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Workflows::Name).string().not_null())
                    .col(ColumnDef::new(Workflows::Description).text().not_null())
                    .col(ColumnDef::new(Workflows::OwnerId).string_len(40).not_null())
                    .col(ColumnDef::new(Workflows::Environment).string().not_null())
                    .col(ColumnDef::new(Workflows::Draft).text().not_null())
                    .col(ColumnDef::new(Workflows::Bindings).text().not_null())
                    .col(ColumnDef::new(Workflows::PublishedVersion).integer().null())
                    .col(
                        ColumnDef::new(Workflows::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Workflows::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Workflows::Table, Workflows::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workflows_tenant")
                    .table(Workflows::Table)
                    .col(Workflows::TenantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WorkflowVersions::Table)
                    .col(
                        ColumnDef::new(WorkflowVersions::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::TenantId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::WorkflowId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::Version)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::Definition)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WorkflowVersions::Bindings).text().not_null())
                    .col(
                        ColumnDef::new(WorkflowVersions::PublishedBy)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WorkflowVersions::PublishedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WorkflowVersions::Table, WorkflowVersions::WorkflowId)
                            .to(Workflows::Table, Workflows::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_workflow_versions")
                    .table(WorkflowVersions::Table)
                    .col(WorkflowVersions::WorkflowId)
                    .col(WorkflowVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkflowVersions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Workflows::Table).to_owned())
            .await
    }
}
