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

use crate::{Roles, Settings};
use anyhow::{Context, bail};
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
    let ferry = crate::build(
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

/// `ferry bench ingest`: signed HubSpot webhook deliveries (one event
/// each, a type no workflow listens to) accepted and stored.
pub async fn ingest(
    backend: &Backend,
    events: usize,
    concurrency: usize,
) -> anyhow::Result<Report> {
    let env = start(backend, 4).await?;
    let (idle, _) = memory_kib();
    // A HubSpot connection for a portal, so events find their tenant.
    connections::create(
        &env.db,
        &env.vault,
        &env.tenant,
        NewConnection {
            connector: ConnectorKey::HubSpot,
            name: "HubSpot",
            environment: Environment::Sandbox,
            scopes: &[],
            external_account: Some("777"),
            base_url: None,
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &env.admin,
        },
        &Credentials::default(),
        SystemClock.now(),
    )
    .await?;
    let secret =
        ferry_engine::connections::sandbox_client_secret(env.settings.master_key.expose_secret());
    let uri = format!("{}/hooks/hubspot/sandbox", env.address);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let run_id = rand::random::<u32>();
    let make = {
        let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
        move |i: usize| {
            let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
            async move {
                let body = json!([{ "eventId": i, "subscriptionId": run_id, "portalId": 777, "occurredAt": 0, "subscriptionType": "contact.deletion", "attemptNumber": 0, "objectId": i }]).to_string();
                let ts = SystemClock.now().timestamp_millis().to_string();
                let sig = ferry_connectors::hubspot::signature_v3(
                    &secret,
                    "POST",
                    &uri,
                    body.as_bytes(),
                    &ts,
                );
                let r = http
                    .post(&uri)
                    .header("content-type", "application/json")
                    .header("X-HubSpot-Request-Timestamp", ts)
                    .header("X-HubSpot-Signature-v3", sig)
                    .body(body)
                    .send()
                    .await?;
                Ok(r.status().as_u16())
            }
        }
    };
    // Warm-up.
    blast(200.min(events), concurrency, make.clone()).await?;
    let t = Instant::now();
    let samples = blast(events, concurrency, move |i| make(i + 1_000_000)).await?;
    let secs = t.elapsed().as_secs_f64();
    let stored = ferry_store::inbound::stats(
        &env.db,
        &env.tenant,
        &connections::list(&env.db, &env.tenant).await?[0].id,
    )
    .await?
    .0;
    if stored < events as u64 {
        bail!("only {stored} of {events} events were stored");
    }
    let (_, peak) = memory_kib();
    env.stop().await;
    Ok(Report {
        name: "ingest",
        backend: backend.describe(),
        items: events as u64,
        per_second: events as f64 / secs,
        latency_ms: Some(percentiles(samples)),
        bytes_per_item: None,
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}

/// A small HTTP sink that answers 200 to every POST and counts them.
async fn sink() -> anyhow::Result<(u16, Arc<AtomicU64>, actix_web::dev::ServerHandle)> {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                actix_web::HttpResponse::Ok().json(json!({ "ok": true }))
            }
        }))
    })
    .workers(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((port, hits, handle))
}

fn path(p: &str) -> anyhow::Result<Expr> {
    Ok(Expr::Path {
        path: FieldPath::parse(p).map_err(|e| anyhow::anyhow!(e.0))?,
    })
}

/// `ferry bench peer-flow`: webhook → map three fields → HTTP POST.
pub async fn peer_flow(
    backend: &Backend,
    events: usize,
    concurrency: usize,
) -> anyhow::Result<Report> {
    let env = start(backend, 16).await?;
    let (idle, _) = memory_kib();
    let (sink_port, hits, sink_handle) = sink().await?;
    let now = SystemClock.now();
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            rand::random::<[u8; 24]>()
        )
    );
    let hook = connections::create(
        &env.db,
        &env.vault,
        &env.tenant,
        NewConnection {
            connector: ConnectorKey::Webhook,
            name: "Inbound",
            environment: Environment::Production,
            scopes: &[],
            external_account: None,
            base_url: None,
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &env.admin,
        },
        &Credentials {
            signing_secret: Some(secret.clone()),
            ..Credentials::default()
        },
        now,
    )
    .await?;
    let sink_url = format!("http://127.0.0.1:{sink_port}");
    let api = connections::create(
        &env.db,
        &env.vault,
        &env.tenant,
        NewConnection {
            connector: ConnectorKey::Http,
            name: "Sink",
            environment: Environment::Production,
            scopes: &[],
            external_account: None,
            base_url: Some(&sink_url),
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &env.admin,
        },
        &Credentials::default(),
        now,
    )
    .await?;
    let definition = Definition {
        trigger: Trigger {
            connector: ConnectorKey::Webhook,
            event: "webhook.received".into(),
        },
        steps: vec![Step {
            key: "post".into(),
            kind: StepKind::Action {
                connector: ConnectorKey::Http,
                action: "post_json".into(),
                input: [
                    (
                        "path".to_owned(),
                        Expr::Literal {
                            value: json!("/sink"),
                        },
                    ),
                    (
                        "body".to_owned(),
                        Expr::Object {
                            fields: [
                                (
                                    "name".to_owned(),
                                    path("trigger.body.name")?.then(Transform::Trim),
                                ),
                                (
                                    "email".to_owned(),
                                    path("trigger.body.email")?.then(Transform::Lower),
                                ),
                                (
                                    "country".to_owned(),
                                    path("trigger.body.country")?.then(Transform::Upper),
                                ),
                            ]
                            .into(),
                        },
                    ),
                ]
                .into(),
                retry: RetryPolicy::default(),
            },
        }],
    };
    let issues = definition.check();
    if !issues.is_empty() {
        bail!("the peer flow's definition: {issues:?}");
    }
    let bindings: workflows::Bindings = [
        ("webhook".to_owned(), hook.id.clone()),
        ("http".to_owned(), api.id.clone()),
    ]
    .into();
    let wf = workflows::create(
        &env.db,
        &env.tenant,
        workflows::NewWorkflow {
            name: "Peer flow",
            description: "webhook → map three fields → HTTP POST",
            owner_id: &env.admin,
            environment: Environment::Production,
            draft: &definition,
            bindings: &bindings,
        },
        now,
    )
    .await?;
    workflows::publish(&env.db, &env.tenant, &wf.id, &env.admin, now).await?;

    let uri = format!("{}/hooks/webhook/{}", env.address, hook.id);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let make = {
        let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
        move |i: usize| {
            let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
            async move {
                let body = json!({ "data": i, "name": format!("  Client {i} "), "email": format!("Client{i}@Example.COM"), "country": "gb" }).to_string();
                let id = format!("msg_{i}");
                let ts = SystemClock.now().timestamp();
                let sig = ferry_connectors::webhook::standard_webhook_signature(
                    &secret,
                    &id,
                    ts,
                    body.as_bytes(),
                )
                .context("signing")?;
                let r = http
                    .post(&uri)
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", sig)
                    .body(body)
                    .send()
                    .await?;
                Ok(r.status().as_u16())
            }
        }
    };
    // Warm-up, then the measured batch.
    let warm = 200.min(events);
    blast(warm, concurrency, make.clone()).await?;
    env.wait_for_runs(warm as u64, Duration::from_secs(120))
        .await?;
    let before = env.database_bytes().await?;
    let t = Instant::now();
    blast(events, concurrency, move |i| make(i + 1_000_000)).await?;
    let done = env
        .wait_for_runs((warm + events) as u64, Duration::from_secs(600))
        .await?;
    let secs = (done - t).as_secs_f64();
    let after = env.database_bytes().await?;
    let posted = hits.load(Ordering::Relaxed);
    if posted < (warm + events) as u64 {
        bail!(
            "the sink received {posted} posts for {} runs",
            warm + events
        );
    }
    let succeeded = env.count("succeeded").await?;
    let (_, peak) = memory_kib();
    sink_handle.stop(true).await;
    env.stop().await;
    Ok(Report {
        name: "peer flow",
        backend: backend.describe(),
        items: succeeded.saturating_sub(warm as u64),
        per_second: events as f64 / secs,
        latency_ms: None,
        bytes_per_item: Some(after.saturating_sub(before) as f64 / events as f64),
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}

/// `ferry bench reference`: contacts created in the HubSpot simulator
/// flow through the published template until the outcome is written back
/// (provider answering at once, HubSpot's rate limit lifted).
pub async fn reference(backend: &Backend, contacts: usize) -> anyhow::Result<Report> {
    let env = start(backend, 16).await?;
    let (idle, _) = memory_kib();
    crate::demo::connect_sandbox(&env.db, &env.services, &env.sandbox, &env.admin_email).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let portal = http
        .get(format!("{}/sandbox/hubspot/admin/portals", env.address))
        .send()
        .await?
        .json::<Value>()
        .await?[0]["portalId"]
        .as_u64()
        .context("no portal")?;
    http.put(format!(
        "{}/sandbox/hubspot/admin/portals/{portal}/faults",
        env.address
    ))
    .json(&json!({ "unlimited": true }))
    .send()
    .await?;
    let accounts: Value = http
        .get(format!("{}/sandbox/verify/admin/accounts", env.address))
        .send()
        .await?
        .json()
        .await?;
    for a in accounts.as_array().into_iter().flatten() {
        let id = a["account_id"].as_str().unwrap_or("");
        let current: Value = http
            .get(format!(
                "{}/sandbox/verify/admin/accounts/{id}",
                env.address
            ))
            .send()
            .await?
            .json()
            .await?;
        let mut settings = current["settings"].clone();
        settings["delay_ms"] = json!(0);
        http.put(format!(
            "{}/sandbox/verify/admin/accounts/{id}",
            env.address
        ))
        .json(&settings)
        .send()
        .await?;
    }
    let base = env.address.clone();
    let make = move |i: usize| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .post(format!("{base}/sandbox/hubspot/admin/portals/{portal}/contacts"))
                .json(&json!({ "properties": { "firstname": "Client", "lastname": format!("Number{i}"), "email": format!("client{i}@bench.example") } }))
                .send()
                .await?;
            Ok(r.status().as_u16())
        }
    };
    let t = Instant::now();
    blast(contacts, 16, make).await?;
    let done = env
        .wait_for_runs(contacts as u64, Duration::from_secs(900))
        .await?;
    let secs = (done - t).as_secs_f64();
    let succeeded = env.count("succeeded").await?;
    let (_, peak) = memory_kib();
    env.stop().await;
    Ok(Report {
        name: "reference workflow end to end",
        backend: backend.describe(),
        items: succeeded,
        per_second: contacts as f64 / secs,
        latency_ms: None,
        bytes_per_item: None,
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}

/// `ferry bench runs-page`: the runs page (first page, filtered pages and
/// pages deep in the history through the cursor) with `history` runs stored.
pub async fn runs_page(
    backend: &Backend,
    history: usize,
    requests: usize,
) -> anyhow::Result<Report> {
    let env = start(backend, 1).await?;
    let (idle, _) = memory_kib();
    let now = SystemClock.now();
    let definition = ferry_core::workflow::reference_template();
    let wf = workflows::create(
        &env.db,
        &env.tenant,
        workflows::NewWorkflow {
            name: "History",
            description: "",
            owner_id: &env.admin,
            environment: Environment::Sandbox,
            draft: &definition,
            bindings: &workflows::Bindings::new(),
        },
        now,
    )
    .await?;
    let seeded = Instant::now();
    runs::insert_history(&env.db, &env.tenant, &wf.id, history, now).await?;
    eprintln!(
        "seeded {history} runs in {:.0} s",
        seeded.elapsed().as_secs_f64()
    );
    env.db.analyze().await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = client
        .get(format!("{}/login", env.address))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start_at = login.find(marker).context("no token")? + marker.len();
    let token: String = login[start_at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let status = client
        .post(format!("{}/login", env.address))
        .form(&[
            ("email", env.admin_email.as_str()),
            ("password", env.admin_password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await?
        .status();
    if status.as_u16() != 303 {
        bail!("login failed ({status})");
    }
    let mut paths = vec![
        "/runs".to_owned(),
        "/runs?status=failed".to_owned(),
        "/runs?status=dead".to_owned(),
        format!("/runs?workflow={}", wf.id),
        "/runs?record=4242".to_owned(),
        "/runs?from=2000-01-01&to=2100-01-01".to_owned(),
    ];
    // Twenty pages deep through the cursor.
    let mut next = "/runs".to_owned();
    for _ in 0..20 {
        let body = client
            .get(format!("{}{next}", env.address))
            .send()
            .await?
            .text()
            .await?;
        let Some(at) = body
            .find("rel=\"next\"")
            .and_then(|end| body[..end].rfind("href=\""))
        else {
            break;
        };
        let link: String = body[at + 6..].chars().take_while(|c| *c != '"').collect();
        next = link.replace("&amp;", "&");
        paths.push(next.clone());
    }
    let mut samples = Vec::new();
    let t = Instant::now();
    for i in 0..requests {
        let p = &paths[i % paths.len()];
        let s = Instant::now();
        let r = client.get(format!("{}{p}", env.address)).send().await?;
        if r.status().as_u16() != 200 {
            bail!("{p} answered {}", r.status());
        }
        let _ = r.text().await?;
        samples.push(s.elapsed());
    }
    let secs = t.elapsed().as_secs_f64();
    let (_, peak) = memory_kib();
    env.stop().await;
    Ok(Report {
        name: "runs page",
        backend: format!("{}, {history} runs stored", backend.describe()),
        items: requests as u64,
        per_second: requests as f64 / secs,
        latency_ms: Some(percentiles(samples)),
        bytes_per_item: None,
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}
