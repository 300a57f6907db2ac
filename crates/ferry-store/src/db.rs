//! Opening the database and applying migrations.

use crate::StoreError;
use ferry_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, SqlxSqliteConnector,
    Statement,
};
use std::str::FromStr;
use std::time::Duration;

/// Which database engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, nothing to install.
    Sqlite,
    /// Production.
    Postgres,
}

/// A pool of connections to Ferry's database.
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) conn: DatabaseConnection,
    backend: Backend,
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). A SQLite file is
    /// created if missing and opened in WAL mode with a busy timeout, so the
    /// web server and the worker can share it.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))?;
            Ok(Self {
                conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                backend: Backend::Sqlite,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = ConnectOptions::new(url.to_owned());
            options
                .max_connections(max_connections.max(1))
                .min_connections(0)
                .connect_timeout(Duration::from_secs(10))
                .acquire_timeout(Duration::from_secs(10))
                .sqlx_logging(false);
            Ok(Self {
                conn: Database::connect(options).await?,
                backend: Backend::Postgres,
            })
        } else {
            Err(StoreError::Db(sea_orm::DbErr::Custom(
                "the database URL must start with sqlite: or postgres:".into(),
            )))
        }
    }

    /// The engine behind this pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.conn, None).await?;
        Ok(())
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let backend: DbBackend = self.conn.get_database_backend();
        self.conn
            .query_one_raw(Statement::from_string(backend, "SELECT 1"))
            .await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(self) -> Result<(), StoreError> {
        self.conn.close().await?;
        Ok(())
    }
}
