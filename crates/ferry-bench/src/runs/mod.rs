//! Benchmarks of the run engine, each against a real Ferry started in this
//! process (web, worker, queue, sandbox simulators) over real HTTP:
//!
//! - `ingest`: signed HubSpot events accepted and durably stored per second
//!   at a given concurrency, with latency percentiles;
//! - `peer-flow`: Standard Webhooks event → one step mapping three fields →
//!   HTTP POST to a local sink, every run and step recorded;
//! - `reference`: the template workflow end to end, from the contact
//!   created in the HubSpot simulator to the outcome written back;
//! - `runs-page`: the runs page with a large history stored.
//!
//! Memory (this process's resident set) and database bytes per run are
//! reported alongside.

use anyhow::{Context, bail};
use ferry::{Roles, Settings};
use ferry_core::catalog::ConnectorKey;
use ferry_core::mapping::{Expr, FieldPath, Transform};
use ferry_core::workflow::{Definition, RetryPolicy, Step, StepKind, Trigger};
use ferry_core::{Clock, Credentials, EmailAddress, Environment, Role, SystemClock, TenantName};
use ferry_store::connections::{self, NewConnection};
use ferry_store::vault::{MasterKey, Vault};
use ferry_store::{Db, runs, tenants, users, workflows};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where the benchmark's Ferry keeps its data.
#[derive(Debug, Clone, Default)]
pub struct Backend {
    /// A PostgreSQL server URL (a fresh database is created on it); none:
    /// the embedded SQLite default.
    pub postgres: Option<String>,
    /// Redis for the queue; none: the embedded queue.
    pub redis: Option<String>,
}

impl Backend {
    /// For reports.
    pub fn describe(&self) -> String {
        format!(
            "{} + {}",
            if self.postgres.is_some() {
                "PostgreSQL"
            } else {
                "SQLite (embedded)"
            },
            if self.redis.is_some() {
                "Redis queue"
            } else {
                "embedded queue"
            }
        )
    }
}

/// A started Ferry with one tenant and its admin.
struct Env {
    address: String,
    db: Db,
    settings: Settings,
    tenant: ferry_core::TenantId,
    admin: ferry_core::UserId,
    admin_email: String,
    admin_password: String,
    vault: Vault,
    handle: ferry_web::ServerHandle,
    services: ferry_app::Services,
    sandbox: ferry_sandbox::Sandbox,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: std::path::PathBuf,
}

async fn start(backend: &Backend, concurrency: usize) -> anyhow::Result<Env> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-{:x}", rand::random::<u64>()));
    let dir_text = dir.display().to_string();
    let database_url = match &backend.postgres {
        Some(base) => {
            let name = format!("ferry_bench_{:x}", rand::random::<u32>());
            Db::create_postgres_database(base, &name)
                .await
                .context("creating the benchmark's PostgreSQL database")?
        }
        None => format!("sqlite://{}", dir.join("ferry.db").display()),
    };
    let queue_name = format!("ferry.bench.{:x}", rand::random::<u32>());
    let workers = concurrency.clamp(1, 64).to_string();
    let mut pairs = vec![
        // Port 0: Ferry derives its URLs from the port it gets.
        ("bind", "127.0.0.1:0"),
        ("data_dir", dir_text.as_str()),
        ("database_url", database_url.as_str()),
        ("web_workers", "2"),
        ("sandbox", "local"),
        ("allow_private_networks", "true"),
        ("queue_name", queue_name.as_str()),
        ("worker_concurrency", workers.as_str()),
        // The simulator's limit is lifted for the benchmarks; so is Ferry's.
        ("hubspot_rate_limit", "1000000"),
        ("verification_rate_limit", "1000000"),
    ];
    if let Some(r) = &backend.redis {
        pairs.push(("redis_url", r.as_str()));
    }
    // The engine's tuning can be tried from the environment.
    let tuned: Vec<(&str, String)> = [
        "in_process_runs",
        "worker_concurrency",
        "database_pool_size",
    ]
    .into_iter()
    .filter_map(|k| {
        std::env::var(format!("FERRY_{}", k.to_uppercase()))
            .ok()
            .map(|v| (k, v))
    })
    .collect();
    pairs.extend(tuned.iter().map(|(k, v)| (*k, v.as_str())));
    let settings = Settings::from_pairs(pairs)?;
    let ferry = ferry::build(
        &settings,
        Arc::new(SystemClock),
        Roles {
            web: true,
            worker: true,
        },
    )
    .await?;
    let db = ferry.db().clone();
    let port = ferry.port().context("no listener")?;
    let handle = ferry.server_handle().context("no server")?;
    let services = ferry.services().cloned().context("no services")?;
    let sandbox = ferry.sandbox().cloned().context("no sandbox")?;
    let server = tokio::spawn(ferry.run_until_stopped());
    let now = SystemClock.now();
    let tenant = tenants::create(&db, &TenantName::parse("name", "Bench Ltd")?, now).await?;
    let admin_email = "admin@bench.test".to_owned();
    let admin_password = "bench password 123".to_owned();
    let hash = ferry_web::hash_password(admin_password.clone()).await?;
    let admin = users::create_member(
        &db,
        &tenant.id,
        &EmailAddress::parse("email", &admin_email)?,
        "Bench Admin",
        hash,
        Role::Admin,
        now,
    )
    .await?;
    let vault = Vault::new(
        db.clone(),
        MasterKey::new(*settings.master_key.expose_secret()),
    );
    Ok(Env {
        address: format!("http://127.0.0.1:{port}"),
        db,
        settings,
        tenant: tenant.id,
        admin: admin.id,
        admin_email,
        admin_password,
        vault,
        handle,
        services,
        sandbox,
        server,
        dir,
    })
}

impl Env {
    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.server.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Bytes the database takes now.
    async fn database_bytes(&self) -> anyhow::Result<u64> {
        Ok(self.db.size_bytes().await?)
    }

    async fn count(&self, status: &str) -> anyhow::Result<u64> {
        let counts = runs::count_by_status(&self.db, &self.tenant).await?;
        Ok(counts
            .iter()
            .filter(|(s, _)| s.as_str() == status)
            .map(|(_, n)| *n)
            .sum())
    }

    /// Waits until `n` runs have ended (succeeded, failed or dead).
    async fn wait_for_runs(&self, n: u64, limit: Duration) -> anyhow::Result<Instant> {
        let started = Instant::now();
        loop {
            let counts = runs::count_by_status(&self.db, &self.tenant).await?;
            let ended: u64 = counts
                .iter()
                .filter(|(s, _)| s.is_final())
                .map(|(_, n)| *n)
                .sum();
            if ended >= n {
                let bad: u64 = counts
                    .iter()
                    .filter(|(s, _)| matches!(s, runs::RunStatus::Failed | runs::RunStatus::Dead))
                    .map(|(_, n)| *n)
                    .sum();
                if bad > 0 {
                    bail!("{bad} runs failed: {counts:?}");
                }
                return Ok(Instant::now());
            }
            if started.elapsed() > limit {
                bail!("only {ended} of {n} runs ended within {limit:?}: {counts:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Resident set size now and at its peak, in KiB (Linux).
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A throughput and latency report.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was measured.
    pub name: &'static str,
    /// The backend.
    pub backend: String,
    /// Items completed.
    pub items: u64,
    /// Per second.
    pub per_second: f64,
    /// Latency percentiles (ms): p50, p95, p99, where measured.
    pub latency_ms: Option<(f64, f64, f64)>,
    /// Database bytes per item, where measured.
    pub bytes_per_item: Option<f64>,
    /// Resident set (KiB) after start, before the load.
    pub idle_rss_kib: u64,
    /// Peak resident set (KiB).
    pub peak_rss_kib: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} on {}", self.name, self.backend)?;
        writeln!(f, "  items: {}, {:.0}/s", self.items, self.per_second)?;
        if let Some((p50, p95, p99)) = self.latency_ms {
            writeln!(
                f,
                "  latency: p50 {p50:.2} ms, p95 {p95:.2} ms, p99 {p99:.2} ms"
            )?;
        }
        if let Some(b) = self.bytes_per_item {
            writeln!(f, "  database: {b:.0} bytes per run")?;
        }
        write!(
            f,
            "  memory (this process, load generator included): {:.1} MiB after start, {:.1} MiB peak",
            self.idle_rss_kib as f64 / 1024.0,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i.min(v.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.95), at(0.99))
}

/// Sends `total` requests built by `make(i)` with `concurrency` in flight;
/// returns each one's latency. Any non-2xx answer fails the benchmark.
async fn blast<F, Fut>(total: usize, concurrency: usize, make: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u16>> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let make = make.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                if i >= total {
                    return Ok::<_, anyhow::Error>(samples);
                }
                let t = Instant::now();
                let status = make(i).await?;
                if !(200..300).contains(&status) {
                    bail!("request {i} answered {status}");
                }
                samples.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

mod flows;
mod history;
mod reference;

pub use flows::{ingest, peer_flow, serve_peer_flow};
pub use history::runs_page;
pub use reference::reference;
