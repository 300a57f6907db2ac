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
use sea_orm::{DatabaseTransaction, TransactionTrait};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Advisory-lock key that serialises migrations on PostgreSQL ("ferry").
const MIGRATION_LOCK_KEY: i64 = 0x0066_6572_7279;

/// Takes an exclusive OS lock on `<db file>.migrate-lock`, waiting for
/// another process that holds it; released when the file is dropped.
async fn lock_beside(db_file: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = db_file.as_os_str().to_owned();
    name.push(".migrate-lock");
    let path = PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))?
    .map_err(|e| {
        StoreError::Db(sea_orm::DbErr::Custom(format!(
            "locking for migrations: {e}"
        )))
    })
}

/// Which database engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, nothing to install.
    Sqlite,
    /// Production.
    Postgres,
}

/// Where store functions run their statements: the pool ([`Db`]) or one
/// open transaction ([`Tx`]). A service that writes a change and its audit
/// entry passes the same `Tx` to both and commits once.
pub trait Exec: Sync {
    /// The sea-orm connection behind it (never named outside the store).
    #[doc(hidden)]
    type Conn: ConnectionTrait + TransactionTrait + Sync;
    /// The connection statements run on.
    #[doc(hidden)]
    fn conn(&self) -> &Self::Conn;
    /// The database engine.
    fn backend(&self) -> Backend;
    /// Opens a transaction that will write. From the pool on SQLite it is
    /// `BEGIN IMMEDIATE` (see [`Db::begin`]): a deferred transaction that
    /// reads first cannot become a writer once another writer has committed,
    /// and fails with "database is locked" whatever the busy timeout. Inside
    /// a [`Tx`] it is a savepoint of that transaction.
    #[doc(hidden)]
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<DatabaseTransaction, sea_orm::DbErr>> + Send;
}

impl Exec for Db {
    type Conn = DatabaseConnection;
    fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }
    fn backend(&self) -> Backend {
        self.backend
    }
    async fn begin_write(&self) -> Result<DatabaseTransaction, sea_orm::DbErr> {
        match self.backend {
            Backend::Sqlite => {
                self.conn
                    .begin_with_options(sea_orm::TransactionOptions {
                        isolation_level: None,
                        access_mode: None,
                        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                    })
                    .await
            }
            Backend::Postgres => self.conn.begin().await,
        }
    }
}

/// One open transaction: what is written through it lands together at
/// [`Tx::commit`], or not at all (dropped without a commit, it rolls back).
pub struct Tx {
    conn: DatabaseTransaction,
    backend: Backend,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Exec for Tx {
    type Conn = DatabaseTransaction;
    fn conn(&self) -> &DatabaseTransaction {
        &self.conn
    }
    fn backend(&self) -> Backend {
        self.backend
    }
    async fn begin_write(&self) -> Result<DatabaseTransaction, sea_orm::DbErr> {
        self.conn.begin().await
    }
}

impl Tx {
    /// Makes everything written through this transaction durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.conn.commit().await?;
        Ok(())
    }
}

/// A pool of connections to Ferry's database.
#[derive(Debug, Clone)]
pub struct Db {
    pub(crate) conn: DatabaseConnection,
    backend: Backend,
    /// The SQLite file, to lock beside it while migrating.
    sqlite_path: Option<PathBuf>,
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
                // 16 MiB of page cache per connection (SQLite's default is
                // 2 MiB): the indexes of a busy runs table stop being read
                // back from the file on every insert.
                .pragma("cache_size", "-16384")
                .foreign_keys(true);
            // An in-memory database (`sqlite::memory:`, which the driver
            // names `file:sqlx-in-memory-N`) has no file to lock beside.
            let filename = options.get_filename();
            let in_memory = url.contains(":memory:")
                || filename.as_os_str().is_empty()
                || filename == Path::new(":memory:")
                || filename
                    .to_string_lossy()
                    .starts_with("file:sqlx-in-memory");
            let sqlite_path = (!in_memory).then(|| filename.to_path_buf());
            // Turning a new file to WAL needs the write lock; processes
            // opening the same new file at once take turns.
            let guard = match &sqlite_path {
                Some(path) => Some(lock_beside(path).await?),
                None => None,
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
                .await
                .map_err(|e| StoreError::Db(sea_orm::DbErr::Custom(e.to_string())))?;
            drop(guard);
            Ok(Self {
                conn: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                backend: Backend::Sqlite,
                sqlite_path,
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = ConnectOptions::new(url.to_owned());
            options
                .max_connections(max_connections.max(1))
                .min_connections(0)
                .connect_timeout(Duration::from_secs(10))
                .acquire_timeout(Duration::from_secs(10))
                .sqlx_logging(false)
                // Statements are prepared once per connection, and after
                // five runs PostgreSQL may switch a statement to a generic
                // plan made from the statistics of that moment. On a young
                // database (empty tables, or autovacuum off: never
                // analysed) that plan finds a run by `tenant_id` or
                // `status` instead of its primary key, then keeps it while
                // the table grows: each update scanned every run of the
                // tenant, and throughput fell window after window. Each
                // execution is planned for its own values instead (tens of
                // microseconds).
                .map_sqlx_postgres_opts(|o| o.options([("plan_cache_mode", "force_custom_plan")]));
            Ok(Self {
                conn: Database::connect(options).await?,
                backend: Backend::Postgres,
                sqlite_path: None,
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

    /// Opens a transaction. On SQLite it is `BEGIN IMMEDIATE`: it takes the
    /// write lock at once (waiting for another writer within the busy
    /// timeout), so a transaction that reads before it writes cannot fail
    /// when another writer committed in between. Meanwhile, pass this `Tx`
    /// to every store function: one given the pool would wait for the
    /// write lock this transaction holds (on SQLite, until the busy
    /// timeout), even to read.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let conn = self.begin_write().await?;
        Ok(Tx {
            conn,
            backend: self.backend,
        })
    }

    /// Applies every pending migration. Processes starting together (a web
    /// and a worker process, several replicas) take turns: PostgreSQL through
    /// an advisory lock, SQLite through a file lock beside the database.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => {
                let lock = self.conn.begin().await?;
                lock.execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
                ))
                .await?;
                let result = Migrator::up(&self.conn, None).await;
                let backfilled = match result {
                    Ok(()) => self.backfill().await,
                    Err(e) => Err(e.into()),
                };
                lock.commit().await?;
                backfilled?;
            }
            Backend::Sqlite => {
                let _guard = match &self.sqlite_path {
                    Some(path) => Some(lock_beside(path).await?),
                    None => None,
                };
                Migrator::up(&self.conn, None).await?;
                self.backfill().await?;
            }
        }
        Ok(())
    }

    /// Data a migration cannot write with the schema builder, under the
    /// same lock: workflows without alert rules (made before alerts
    /// existed) get the defaults, and audit entries written before the log
    /// was chained are chained, once however many processes start.
    async fn backfill(&self) -> Result<(), StoreError> {
        let n = crate::alerts::backfill_defaults(self, chrono::Utc::now()).await?;
        if n > 0 {
            tracing::info!(workflows = n, "default alert rules added");
        }
        let chained = crate::audit::chain_existing(self, chrono::Utc::now()).await?;
        if chained > 0 {
            tracing::info!(entries = chained, "existing audit entries chained");
        }
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

    /// How many rows a table holds (benchmarks; `table` is a plain name).
    pub async fn count_rows(&self, table: &str) -> Result<u64, StoreError> {
        if !table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(StoreError::Corrupt("a table name"));
        }
        let backend: DbBackend = self.conn.get_database_backend();
        let row = self
            .conn
            .query_one_raw(Statement::from_string(
                backend,
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await?
            .ok_or(StoreError::NotFound)?;
        let n: i64 = row.try_get_by_index(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Bytes the database occupies (SQLite: pages in use after a WAL
    /// checkpoint; PostgreSQL: `pg_database_size`). For benchmarks.
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        let backend: DbBackend = self.conn.get_database_backend();
        let sql = match self.backend {
            Backend::Sqlite => {
                self.conn
                    .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await?;
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            }
            Backend::Postgres => "SELECT pg_database_size(current_database())",
        };
        let row = self
            .conn
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0))
    }

    /// Refreshes the planner's statistics (after a bulk load).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        self.conn.execute_unprepared("ANALYZE").await?;
        Ok(())
    }

    /// Creates an empty PostgreSQL database `name` on the server at `base`
    /// (`postgres://user@host:port`); returns its URL. For benchmarks.
    pub async fn create_postgres_database(base: &str, name: &str) -> Result<String, StoreError> {
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::Conflict(
                "a database name is lower-case letters, digits and _".into(),
            ));
        }
        let base = base.trim_end_matches('/');
        let admin = sea_orm::Database::connect(format!("{base}/postgres")).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        Ok(format!("{base}/{name}"))
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(self) -> Result<(), StoreError> {
        self.conn.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{self, NewAuditEvent};
    use crate::{tenants, users};
    use ferry_core::{AuditAction, EmailAddress, Role, TenantName};

    /// Transactions that read before they write, racing on one SQLite file
    /// through several connections: each must wait its turn, never fail
    /// with "database is locked" (a deferred transaction cannot become a
    /// writer once another writer has committed since its first read).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writing_transactions_that_read_first_do_not_fail_on_a_busy_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.db");
        let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display()), 4)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let now = chrono::Utc::now();
        let name = TenantName::parse("name", "Race").unwrap();
        let tenant = tenants::create(&db, &name, now).await.unwrap().id;
        let mut tasks = Vec::new();
        for i in 0..48 {
            let (db, tenant) = (db.clone(), tenant.clone());
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    // Reads (is the address taken?), then inserts.
                    let email = EmailAddress::parse("email", &format!("p{i}@race.test")).unwrap();
                    users::create_member(&db, &tenant, &email, "P", "h".into(), Role::Staff, now)
                        .await
                        .map(|_| ())
                } else {
                    // Reads the chain's head, then appends.
                    audit::record(
                        &db,
                        NewAuditEvent {
                            tenant_id: Some(&tenant),
                            actor_user_id: None,
                            actor_label: "test",
                            action: AuditAction::RunStep,
                            target_kind: "run",
                            target_id: "r",
                            details: serde_json::json!({}),
                            client_ip: "-",
                        },
                        now,
                    )
                    .await
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let members = users::members(&db, &tenant).await.unwrap();
        assert_eq!(members.len(), 24);
    }
}
