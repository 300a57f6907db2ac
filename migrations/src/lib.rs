//! Ferry's schema. Migrations describe tables with sea-query's builder so the
//! same code runs on SQLite and PostgreSQL; they never import entities, so an
//! old migration keeps meaning what it meant when it shipped.

pub use sea_orm_migration::prelude::*;

mod m20261129_000001_foundation;
mod m20261129_000002_connections;
mod m20261129_000003_inbound_events;
mod m20261129_000004_workflows;
mod m20261129_000005_refresh_lease;
mod m20261129_000006_runs;
mod m20261204_000007_alerts;
mod m20261205_000008_lifecycle;
mod m20261206_000009_evidence;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_foundation::Migration),
            Box::new(m20261129_000002_connections::Migration),
            Box::new(m20261129_000003_inbound_events::Migration),
            Box::new(m20261129_000004_workflows::Migration),
            Box::new(m20261129_000005_refresh_lease::Migration),
            Box::new(m20261129_000006_runs::Migration),
            Box::new(m20261204_000007_alerts::Migration),
            Box::new(m20261205_000008_lifecycle::Migration),
            Box::new(m20261206_000009_evidence::Migration),
        ]
    }
}
