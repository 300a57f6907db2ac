//! The composition root: reads settings, opens the database, wires the web
//! layer and the background loops. `main` and the tests both call
//! [`build`], so tests run exactly what production runs.

pub mod config;
pub mod demo;

use anyhow::Context;
use ferry_connectors::oauth::OAuthApp;
use ferry_connectors::{HttpClient, NetworkPolicy, RateLimiter};
use ferry_core::Clock;
use ferry_engine::connections::{self, ConnectionService, HubSpotApp, ServiceParts};
use ferry_engine::housekeeping::{self, SessionPolicy};
use ferry_engine::queue::Queue;
use ferry_engine::runs::Engine;
use ferry_engine::{MailDelivery, Mailer, SmtpSettings};
use ferry_sandbox::Sandbox;
use ferry_store::Db;
use ferry_store::vault::{MasterKey, Vault};
use ferry_web::{AppState, Application, WebConfig};
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Settings;

/// Which parts a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Serve HTTP.
    pub web: bool,
    /// Run background work (mail delivery, housekeeping).
    pub worker: bool,
}

/// How long invite links work.
pub const LINK_TTL_HOURS: i64 = 72;
/// How long password-reset links work (OWASP: short-lived).
pub const RESET_TTL_HOURS: i64 = 1;

/// Opens the database named by the settings and applies migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    if settings.is_sqlite() {
        create_private_dir(&settings.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let db = Db::connect(
        settings.database_url.expose_secret(),
        settings.database_pool_size,
    )
    .await
    .context("connecting to the database (FERRY_DATABASE_URL)")?;
    db.migrate().await.context("applying database migrations")?;
    Ok(db)
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A running Ferry process: the HTTP server and/or the background loops.
pub struct Ferry {
    app: Option<Application>,
    services: Option<ferry_app::Services>,
    sandbox: Option<Sandbox>,
    public_url: url::Url,
    connections: ConnectionService,
    engine: Engine,
    evaluator: ferry_engine::alerts::Evaluator,
    db: Db,
    stop: Arc<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Builds the process: opens and migrates the database, binds the listener
/// (port 0 picks a free one) and starts the background loops.
pub async fn build(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    roles: Roles,
) -> anyhow::Result<Ferry> {
    let db = open_database(settings).await?;
    let master = MasterKey::new(*settings.master_key.expose_secret());
    ferry_store::vault::verify_master_key(&db, &master)
        .await
        .context("checking the master key (FERRY_MASTER_KEY / FERRY_MASTER_KEY_FILE)")?;
    let vault = Vault::new(db.clone(), master);
    let mailer = Mailer::new(db.clone(), clock.clone(), settings.smtp_url.is_some());
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    // The listener first: its address (port 0 picks one) is where this
    // process reaches itself, and the public URL unless one is configured.
    let listener = if roles.web {
        Some(
            TcpListener::bind(settings.bind)
                .with_context(|| format!("binding {} (FERRY_BIND)", settings.bind))?,
        )
    } else {
        None
    };
    let bound = match &listener {
        Some(l) => l.local_addr().context("the listener's address")?,
        None => settings.bind,
    };
    let internal = config::internal_url(bound);
    let public_url = if settings.public_url_explicit {
        settings.public_url.clone()
    } else {
        config::default_public_url(bound).context("deriving the public URL (FERRY_BIND)")?
    };
    let sandbox_secret = connections::sandbox_client_secret(settings.master_key.expose_secret());
    let connection_service = connection_service(
        settings,
        &db,
        &vault,
        clock.clone(),
        (&internal, &public_url),
        &sandbox_secret,
    )?;

    let queue = open_queue(settings).await?;
    let engine = Engine::new(
        db.clone(),
        connection_service.clone(),
        clock.clone(),
        queue.clone(),
    )
    .with_lease(std::time::Duration::from_secs(u64::from(
        settings.run_lease_secs,
    )))
    .with_in_process(if roles.worker {
        settings.in_process_runs
    } else {
        0
    });

    // What the engine counts (in this process: the web's ingest, the
    // worker's runs) reaches the rollups every few seconds, and at stop.
    tasks.push(tokio::spawn(engine.metrics().clone().run_flusher(
        db.clone(),
        std::time::Duration::from_secs(5),
        stop_rx.clone(),
    )));

    let evaluator = ferry_engine::alerts::Evaluator::new(
        db.clone(),
        clock.clone(),
        mailer.clone(),
        &public_url,
    );
    if roles.worker {
        // Alert rules, once a minute across every worker.
        tasks.push(tokio::spawn(evaluator.clone().run(stop_rx.clone())));
        let mut shutdown = stop_rx.clone();
        let handler: Arc<dyn ferry_engine::queue::Handler> = Arc::new(engine.clone());
        let concurrency = settings.worker_concurrency;
        tasks.push(tokio::spawn(async move {
            // A worker that stops on a queue error (Redis gone) starts
            // again; meanwhile the database keeps every run.
            loop {
                let mut watch = shutdown.clone();
                let signal = async move {
                    let _ = watch.wait_for(|stopped| *stopped).await;
                };
                if let Err(e) = ferry_engine::queue::run_worker(
                    queue.clone(),
                    handler.clone(),
                    concurrency,
                    signal,
                )
                .await
                {
                    tracing::error!(error = %e, "queue worker stopped; restarting in 5 s");
                }
                if *shutdown.borrow() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => break,
                }
            }
        }));
        tasks.push(tokio::spawn(
            engine
                .clone()
                .run_sweeper(std::time::Duration::from_secs(1), stop_rx.clone()),
        ));
        // At shutdown, the runs this process executes itself finish too.
        let mut stopping = stop_rx.clone();
        let drained = engine.clone();
        tasks.push(tokio::spawn(async move {
            let _ = stopping.wait_for(|stopped| *stopped).await;
            drained.drain(std::time::Duration::from_secs(20)).await;
        }));
        if let Some(url) = &settings.smtp_url {
            let delivery = MailDelivery::new(
                db.clone(),
                clock.clone(),
                &SmtpSettings {
                    url: url.clone(),
                    from: settings.mail_from.clone(),
                },
            )?;
            tasks.push(tokio::spawn(
                delivery.run(mailer.wake_signal(), stop_rx.clone()),
            ));
        }
        tasks.push(tokio::spawn(connections::run_refresher(
            connection_service.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(housekeeping::run(
            db.clone(),
            clock.clone(),
            SessionPolicy::default(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(ferry_engine::evidence::run(
            db.clone(),
            clock.clone(),
            mailer.clone(),
            public_url.to_string(),
            std::time::Duration::from_secs(3600),
            stop_rx.clone(),
        )));
    }

    let mut mounted = None;
    let mut web_services = None;
    let app = if roles.web {
        let admin_key = connections::sandbox_admin_key(settings.master_key.expose_secret());
        let sandbox_link = settings.sandbox.is_on().then(|| ferry_app::SandboxLink {
            url: internal.clone(),
            admin_key: admin_key.clone().into(),
        });
        let extra: Option<ferry_web::ExtraRoutes> = if settings.sandbox.is_on() {
            let sandbox = mounted_sandbox(
                settings,
                (&internal, &public_url),
                &sandbox_secret,
                &admin_key,
            )?;
            mounted = Some(sandbox.clone());
            Some(
                Arc::new(move |cfg: &mut actix_web::web::ServiceConfig| sandbox.configure(cfg))
                    as ferry_web::ExtraRoutes,
            )
        } else {
            None
        };
        let config = WebConfig {
            public_url: public_url.clone(),
            session: SessionPolicy::default(),
            link_ttl: chrono::Duration::hours(LINK_TTL_HOURS),
            reset_ttl: chrono::Duration::hours(RESET_TTL_HOURS),
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics_token: settings.metrics_token.clone(),
        };
        let services = ferry_app::Services::new(ferry_app::Parts {
            db: db.clone(),
            clock: clock.clone(),
            mailer: mailer.clone(),
            connections: connection_service.clone(),
            engine: engine.clone(),
            sandbox: sandbox_link,
            links: ferry_app::LinkSettings {
                public_url: public_url.clone(),
                link_ttl: config.link_ttl,
                reset_ttl: config.reset_ttl,
            },
            evidence_key: connections::derived_key(
                settings.master_key.expose_secret(),
                b"ferry evidence pack signature",
            ),
        });
        web_services = Some(services.clone());
        let state = AppState {
            db: db.clone(),
            clock,
            mailer,
            config,
            connections: connection_service.clone(),
            engine: engine.clone(),
            services,
            flash_key: ferry_web::FlashKey(Arc::new(connections::derived_key(
                settings.master_key.expose_secret(),
                b"ferry flash cookie",
            ))),
        };
        let listener = listener.context("a web process has a listener")?;
        Some(Application::build(
            listener,
            state,
            settings.web_workers,
            extra,
        )?)
    } else {
        None
    };
    Ok(Ferry {
        app,
        services: web_services,
        sandbox: mounted,
        public_url,
        connections: connection_service,
        engine,
        evaluator,
        db,
        stop: Arc::new(stop),
        tasks,
    })
}

/// The simulators as Ferry mounts them: their webhooks go out through a
/// guarded client that reaches Ferry itself (its internal and public
/// origins) and, on a shared sandbox, no other private address; their
/// pages and admin API are decided by the sandbox mode.
fn mounted_sandbox(
    settings: &Settings,
    (internal, public_url): (&url::Url, &url::Url),
    client_secret: &str,
    admin_key: &str,
) -> anyhow::Result<Sandbox> {
    use config::SandboxMode;
    let origin = |u: &url::Url| {
        format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or(80)
        )
    };
    let shared = settings.sandbox == SandboxMode::Shared;
    let http = HttpClient::new(
        NetworkPolicy {
            // A local tool may call other local tools; a shared sandbox
            // reaches private addresses only where connectors may.
            allow_private: !shared || settings.allow_private_networks,
            allowed_origins: vec![origin(internal), origin(public_url)],
        },
        std::time::Duration::from_secs(10),
    )?;
    let public = public_url.as_str().trim_end_matches('/');
    let access = if shared {
        let gate: ferry_sandbox::Gate = Arc::new(|req: &actix_web::HttpRequest| {
            let req = req.clone();
            Box::pin(async move {
                ferry_web::user_of(&req).await.map(|u| match u.principal {
                    ferry_web::Principal::Operator => ferry_sandbox::Visitor::Operator,
                    ferry_web::Principal::Member {
                        tenant_id, role, ..
                    } => ferry_sandbox::Visitor::Member {
                        tenant: tenant_id.to_string(),
                        admin: role == ferry_core::Role::Admin,
                    },
                })
            })
        });
        ferry_sandbox::Access::new(
            ferry_sandbox::Mode::Shared(gate),
            admin_key,
            public_url.scheme() == "https",
            "/login",
        )
    } else {
        ferry_sandbox::Access::local(admin_key)
    };
    let sandbox = Sandbox::new(SANDBOX_CLIENT_ID, client_secret, http, access);
    if shared {
        // Codes go only to Ferry's own callback.
        sandbox.hubspot.register_redirect(
            SANDBOX_CLIENT_ID,
            &format!("{public}/connections/oauth/callback"),
        );
    }
    Ok(sandbox)
}

/// The sandbox HubSpot app's client id.
pub const SANDBOX_CLIENT_ID: &str = "ferry-sandbox-app";

/// The job queue: Redis when `FERRY_REDIS_URL` is set, else apalis' SQLite
/// storage in its own file in the data directory.
async fn open_queue(settings: &Settings) -> anyhow::Result<Queue> {
    match &settings.redis_url {
        Some(url) => Queue::redis(url.expose_secret(), &settings.queue_name)
            .context("connecting the queue to Redis (FERRY_REDIS_URL)"),
        None => {
            create_private_dir(&settings.data_dir).with_context(|| {
                format!(
                    "creating the data directory {}",
                    settings.data_dir.display()
                )
            })?;
            Queue::embedded(&settings.data_dir.join("queue.db"), &settings.queue_name)
                .await
                .context("opening the embedded queue in the data directory")
        }
    }
}

fn connection_service(
    settings: &Settings,
    db: &Db,
    vault: &Vault,
    clock: Arc<dyn Clock>,
    (internal, public_url): (&url::Url, &url::Url),
    sandbox_secret: &str,
) -> anyhow::Result<ConnectionService> {
    let timeout = std::time::Duration::from_secs(u64::from(settings.http_timeout_secs));
    let production_http = HttpClient::new(
        NetworkPolicy {
            allow_private: settings.allow_private_networks,
            allowed_origins: Vec::new(),
        },
        timeout,
    )?;
    let origin = format!(
        "{}:{}",
        internal.host_str().unwrap_or("127.0.0.1"),
        internal.port_or_known_default().unwrap_or(80)
    );
    let sandbox_http = HttpClient::new(
        NetworkPolicy {
            allow_private: settings.allow_private_networks,
            allowed_origins: vec![origin],
        },
        timeout,
    )?;
    let public = public_url.as_str().trim_end_matches('/');
    let redirect_url = url::Url::parse(&format!("{public}/connections/oauth/callback"))?;
    let hubspot_sandbox = HubSpotApp {
        oauth: OAuthApp {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: sandbox_secret.into(),
            authorize_url: url::Url::parse(&format!("{public}/sandbox/hubspot/oauth/authorize"))?,
            token_url: internal.join("/sandbox/hubspot/oauth/v1/token")?,
            redirect_url: redirect_url.clone(),
        },
        api_base: internal.join("/sandbox/hubspot")?,
    };
    let hubspot_production = settings
        .hubspot_app
        .as_ref()
        .map(|(id, secret)| -> anyhow::Result<HubSpotApp> {
            Ok(HubSpotApp {
                oauth: OAuthApp {
                    client_id: id.clone(),
                    client_secret: secret.expose_secret().into(),
                    authorize_url: url::Url::parse("https://app.hubspot.com/oauth/authorize")?,
                    token_url: url::Url::parse("https://api.hubapi.com/oauth/v1/token")?,
                    redirect_url: redirect_url.clone(),
                },
                api_base: url::Url::parse("https://api.hubapi.com")?,
            })
        })
        .transpose()?;
    let limiter = match &settings.redis_url {
        Some(url) => {
            RateLimiter::redis_url(url.expose_secret(), "ferry:").context("FERRY_REDIS_URL")?
        }
        None => RateLimiter::memory(),
    };
    Ok(ConnectionService::new(ServiceParts {
        db: db.clone(),
        vault: vault.clone(),
        clock,
        limiter,
        production_http,
        sandbox_http,
        hubspot_sandbox,
        hubspot_production,
        rate_limits: [
            (
                ferry_core::catalog::ConnectorKey::HubSpot,
                ferry_core::catalog::RateLimit {
                    max: settings.hubspot_rate_limit,
                    per_ms: 10_000,
                },
            ),
            (
                ferry_core::catalog::ConnectorKey::Verification,
                ferry_core::catalog::RateLimit {
                    max: settings.verification_rate_limit,
                    per_ms: 1_000,
                },
            ),
        ]
        .into(),
    }))
}

impl Ferry {
    /// The services every door calls (a process that serves the web).
    pub fn services(&self) -> Option<&ferry_app::Services> {
        self.services.as_ref()
    }

    /// The simulators this process mounts, when the sandbox is on.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// Where users reach this Ferry: `FERRY_PUBLIC_URL`, or the address its
    /// listener got.
    pub fn public_url(&self) -> &url::Url {
        &self.public_url
    }

    /// The HTTP port, when serving.
    pub fn port(&self) -> Option<u16> {
        self.app.as_ref().map(Application::port)
    }

    /// Using connections (credentials, refresh, test, revoke).
    pub fn connections(&self) -> &ConnectionService {
        &self.connections
    }

    /// The database pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The run engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The alert evaluation (running once a minute in worker processes).
    pub fn alerts(&self) -> &ferry_engine::alerts::Evaluator {
        &self.evaluator
    }

    /// Runs until SIGINT/SIGTERM (or until the server is stopped through
    /// `server_handle`), then lets in-flight requests and background work
    /// finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        match self.app {
            // actix-web handles the signals and drains requests itself.
            Some(app) => app.run_until_stopped().await?,
            None => wait_for_signal().await,
        }
        stop_background(&self.stop);
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(20), task).await;
        }
        Ok(())
    }

    /// A handle that stops the background work (queue worker, in-process
    /// runs, sweeper, mail, refresh) as SIGTERM does after the server has
    /// stopped: no new work is taken, work in flight finishes.
    pub fn background_handle(&self) -> BackgroundHandle {
        BackgroundHandle(self.stop.clone())
    }

    /// A handle that stops the HTTP server gracefully (tests, embedding).
    pub fn server_handle(&self) -> Option<ferry_web::ServerHandle> {
        self.app.as_ref().map(Application::handle)
    }
}

/// Stops a Ferry's background work; see [`Ferry::background_handle`].
#[derive(Clone)]
pub struct BackgroundHandle(Arc<watch::Sender<bool>>);

impl BackgroundHandle {
    /// Tells the background work to stop taking work and finish what it
    /// has; `run_until_stopped` waits for it.
    pub fn stop(&self) {
        stop_background(&self.0);
    }
}

fn stop_background(stop: &watch::Sender<bool>) {
    if !*stop.borrow() {
        tracing::info!("shutting down: finishing background work");
    }
    let _ = stop.send(true);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Verifies the audit chains: every chain, or the chain of one tenant
/// (`tenant`: its id or its name).
pub async fn verify_audit(
    settings: &Settings,
    tenant: Option<&str>,
) -> anyhow::Result<Vec<ferry_store::audit::ChainReport>> {
    let db = open_database(settings).await?;
    let chains = match tenant {
        None => ferry_store::audit::chains(&db).await?,
        Some(t) => {
            let id = match t.parse::<ferry_core::TenantId>() {
                Ok(id) => id,
                Err(_) => {
                    ferry_store::tenants::find_by_name(&db, t.trim())
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no tenant has that id or name"))?
                        .id
                }
            };
            vec![id.to_string()]
        }
    };
    let mut out = Vec::new();
    for chain in chains {
        out.push(ferry_store::audit::verify_chain(&db, &chain).await?);
    }
    db.close().await?;
    Ok(out)
}

/// Checks an evidence pack: its files against the manifest, and the
/// manifest's signature with this installation's key.
pub fn verify_evidence(
    settings: &Settings,
    pack: &[u8],
) -> anyhow::Result<ferry_app::evidence::PackReport> {
    let key = connections::derived_key(
        settings.master_key.expose_secret(),
        b"ferry evidence pack signature",
    );
    ferry_app::evidence::verify_pack(pack, Some(&key))
}

/// What a master-key rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// Tenant data keys re-wrapped.
    pub rewrapped: usize,
    /// The key file that now holds the new key, when the key came from a file.
    pub key_file: Option<std::path::PathBuf>,
    /// The new key, base64, when it came from `FERRY_MASTER_KEY` (the
    /// operator must put it there).
    pub new_key_for_env: Option<String>,
}

/// Generates a new master key, re-wraps every tenant data key with it in one
/// transaction, and retires the old key. With a key file: the new key is
/// written beside it first, the data keys are re-wrapped, then the new file
/// replaces the old one. With `FERRY_MASTER_KEY`: the new key is printed for
/// the operator and also kept in `master.key.new` in the data directory.
pub async fn rotate_master_key(settings: &Settings) -> anyhow::Result<Rotation> {
    use base64::Engine;
    let db = open_database(settings).await?;
    let old = MasterKey::new(*settings.master_key.expose_secret());
    ferry_store::vault::verify_master_key(&db, &old)
        .await
        .context("the current master key does not open this database's data keys")?;
    let new_bytes: [u8; 32] = rand::random();
    let new = MasterKey::new(new_bytes);
    let staged = match &settings.master_key_file {
        Some(file) => file.with_extension("key.new"),
        None => settings.data_dir.join("master.key.new"),
    };
    if staged.exists() {
        anyhow::bail!(
            "{} exists: a previous rotation did not finish; check which key the database uses before removing it",
            staged.display()
        );
    }
    config::keys::write_key_file(&staged, &new_bytes)?;
    let rewrapped = ferry_store::vault::rotate_master_key(&db, &old, &new, chrono::Utc::now())
        .await
        .context("re-wrapping the tenant data keys")?;
    db.close().await?;
    match &settings.master_key_file {
        Some(file) => {
            std::fs::rename(&staged, file)
                .with_context(|| format!("replacing {} with the new key", file.display()))?;
            Ok(Rotation {
                rewrapped,
                key_file: Some(file.clone()),
                new_key_for_env: None,
            })
        }
        None => Ok(Rotation {
            rewrapped,
            key_file: Some(staged),
            new_key_for_env: Some(base64::engine::general_purpose::STANDARD.encode(new_bytes)),
        }),
    }
}

/// Serves only the simulators (`ferry sandbox`), on the configured bind
/// address, until SIGINT/SIGTERM. The HubSpot app's client secret is derived
/// from the master key, so a Ferry sharing the key agrees with it.
pub async fn serve_sandbox(settings: &Settings) -> anyhow::Result<()> {
    let secret = connections::sandbox_client_secret(settings.master_key.expose_secret());
    let admin_key = connections::sandbox_admin_key(settings.master_key.expose_secret());
    // A local tool: pages and admin API answer this machine (or the admin
    // key); webhooks may go to other local tools, never through redirects.
    let http = HttpClient::new(
        NetworkPolicy {
            allow_private: true,
            allowed_origins: Vec::new(),
        },
        std::time::Duration::from_secs(10),
    )?;
    let sandbox = Sandbox::new(
        SANDBOX_CLIENT_ID,
        &secret,
        http,
        ferry_sandbox::Access::local(&admin_key),
    );
    let server = actix_web::HttpServer::new(move || {
        let sandbox = sandbox.clone();
        actix_web::App::new().configure(move |cfg| sandbox.configure(cfg))
    })
    .workers(settings.web_workers)
    .bind(settings.bind)
    .with_context(|| format!("binding {} (FERRY_BIND)", settings.bind))?
    .run();
    tracing::info!(bind = %settings.bind, "sandbox simulators serving under /sandbox/hubspot and /sandbox/verify");
    server.await?;
    Ok(())
}
