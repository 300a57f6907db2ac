//! Workflow lifecycle (paused, deleted with its history kept) and the
//! contact's email in the staff verification view.

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
            .alter_table(
                Table::alter()
                    .table(Verifications::Table)
                    .add_column(ColumnDef::new(Verifications::Email).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
