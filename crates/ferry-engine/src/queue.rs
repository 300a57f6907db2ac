//! The job queue (apalis): an embedded durable SQLite queue by default, Redis
//! when configured. A job only says "look at run X"; the run itself lives in
//! the database, so a lost job delays a run (the sweeper enqueues it again)
//! but never loses it.

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// How often an idle worker looks for jobs (besides being woken).
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// The job: execute (or continue) one run of one tenant. A job that fails
/// to parse (an older shape) is dropped: the run stays in the database and
/// the sweeper enqueues it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteRunV1 {
    /// The run's tenant: the worker claims the run within it.
    pub tenant_id: ferry_core::TenantId,
    /// The run's id.
    pub run_id: ferry_core::RunId,
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(pub String);

/// Where jobs go.
#[derive(Clone)]
pub enum Queue {
    /// apalis' SQLite storage on its own database file.
    Embedded(SqliteStorage<ExecuteRunV1>, SqlitePool),
    /// apalis' Redis storage.
    Redis(RedisStorage<ExecuteRunV1>, apalis_redis::ConnectionManager),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Embedded(..) => "Queue::Embedded",
            Self::Redis(..) => "Queue::Redis",
        })
    }
}

impl Queue {
    /// The embedded queue at `path` (created if missing).
    pub async fn embedded(path: &Path, name: &str) -> Result<Self, QueueError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = apalis_sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(|e| QueueError(e.to_string()))?;
        Ok(Self::Embedded(embedded_storage(&pool, name), pool))
    }

    /// The Redis queue at `url`.
    pub fn redis(url: &str, name: &str) -> Result<Self, QueueError> {
        // Connected lazily: Ferry starts (and /readyz says what is wrong)
        // while Redis is down, and reconnects when it is back.
        let client = apalis_redis::Client::open(url).map_err(|e| QueueError(e.to_string()))?;
        let conn = apalis_redis::ConnectionManager::new_lazy_with_config(
            client,
            redis::aio::ConnectionManagerConfig::new(),
        )
        .map_err(|e| QueueError(e.to_string()))?;
        let config = apalis_redis::Config::default().queue(name);
        Ok(Self::Redis(
            RedisStorage::new(conn.clone()).with_config(config),
            conn,
        ))
    }

    /// Which backend, for logs and health.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Embedded(..) => "embedded",
            Self::Redis(..) => "redis",
        }
    }

    /// Whether the backend in use answers (for readiness): the embedded
    /// queue's file opens, or Redis answers `PING`; within 3 s.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let attempt = async {
            match self {
                Self::Embedded(_, pool) => pool
                    .acquire()
                    .await
                    .map(|_| ())
                    .map_err(|e| QueueError(e.to_string())),
                Self::Redis(_, conn) => redis::cmd("PING")
                    .query_async::<String>(&mut conn.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| QueueError(e.to_string())),
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(3), attempt)
            .await
            .unwrap_or_else(|_| Err(QueueError("timed out".into())))
    }

    /// Enqueues one job.
    pub async fn push(&self, job: ExecuteRunV1) -> Result<(), QueueError> {
        match self {
            Self::Embedded(s, _) => s
                .clone()
                .push(job)
                .await
                .map_err(|e| QueueError(e.to_string())),
            Self::Redis(s, _) => s
                .clone()
                .push(job)
                .await
                .map_err(|e| QueueError(e.to_string())),
        }
    }
}

fn embedded_storage(pool: &SqlitePool, name: &str) -> SqliteStorage<ExecuteRunV1> {
    let config = apalis_sqlite::Config::default()
        .queue(name)
        .heartbeat_interval(std::time::Duration::from_secs(5));
    SqliteStorage::new(pool).with_config(config)
}

/// What executes a job.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Executes the run; errors are recorded on the run, not returned.
    async fn handle(&self, job: ExecuteRunV1);
}

/// The handler as the worker's shared data.
#[derive(Clone)]
pub struct Jobs(pub Arc<dyn Handler>);

async fn handle(job: ExecuteRunV1, jobs: Data<Jobs>) -> Result<(), BoxDynError> {
    let Jobs(handler) = &*jobs;
    handler.handle(job).await;
    Ok(())
}

/// A worker id unique to this process (apalis-redis refuses a name still
/// registered by a process that stopped recently).
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ferry".into());
    format!(
        "ferry-{host}-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    )
}

/// Runs a worker on `queue` until `shutdown` resolves; then it stops taking
/// jobs and lets the ones in flight finish.
pub async fn run_worker(
    queue: Queue,
    handler: Arc<dyn Handler>,
    concurrency: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), QueueError> {
    let signal = async move {
        shutdown.await;
        Ok::<(), std::io::Error>(())
    };
    let name = worker_name();
    let result = match queue {
        Queue::Embedded(s, _) => {
            WorkerBuilder::new(name)
                .backend(s.poll_with_interval(POLL))
                .data(Jobs(handler.clone()))
                .concurrency(concurrency)
                .build(handle)
                .run_until(signal)
                .await
        }
        Queue::Redis(s, _) => {
            WorkerBuilder::new(name)
                .backend(s.poll_with_interval(POLL))
                .data(Jobs(handler.clone()))
                .concurrency(concurrency)
                .build(handle)
                .run_until(signal)
                .await
        }
    };
    result.map_err(|e| QueueError(e.to_string()))
}
