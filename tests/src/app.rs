//! Starting the app for a test: options, the running app, its database.

use crate::fixtures::parse_email;
use crate::{
    Account, CapturedMail, SmtpSink, TestClient, fresh_database_url, init_logs, redis_url,
};
use anyhow::Context;
use ferry_core::ManualClock;
use ferry_core::{Clock, Role, TenantId, TenantName};
use ferry_store::Db;
use ferry_store::{tenants, users};
use std::sync::Arc;

/// How to start the app.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Run a capturing SMTP server and point Ferry at it (otherwise mail
    /// stays in the outbox).
    pub smtp: bool,
    /// `FERRY_REDIS_URL`, if any (default: Redis when the environment says
    /// `FERRY_TEST_QUEUE=redis`, else the embedded queue).
    pub redis_url: Option<String>,
    /// `FERRY_PUBLIC_URL`, if not the default.
    pub public_url: Option<String>,
    /// Run the worker (queue, sweeper, refresher) in the app; off when a
    /// test runs workers as separate processes.
    pub worker: bool,
    /// More settings (`name`, value), e.g. `("http_timeout_secs", "2")`.
    pub settings: Vec<(&'static str, String)>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            smtp: true,
            redis_url: (std::env::var("FERRY_TEST_QUEUE").as_deref() == Ok("redis"))
                .then(redis_url),
            public_url: None,
            worker: true,
            settings: Vec::new(),
        }
    }
}

/// A running Ferry for one test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The app's database.
    pub db: Db,
    /// A second, raw connection for tests that tamper with rows.
    pub raw: ferry_store::test_support::RawSql,
    /// The app's clock; `advance` moves it.
    pub clock: ManualClock,
    /// The capturing SMTP server, when enabled.
    pub smtp: Option<SmtpSink>,
    /// The data directory (SQLite file, master key).
    pub data_dir: tempfile::TempDir,
    /// The database URL (for a second process, or a second vault).
    pub database_url: String,
    /// The app's connection service (credentials, refresh, test).
    pub connections: ferry_engine::connections::ConnectionService,
    /// The app's run engine.
    pub engine: ferry_engine::runs::Engine,
    /// The app's alert evaluation.
    pub alerts: ferry_engine::alerts::Evaluator,
    /// The services every door calls.
    pub services: ferry_app::Services,
    /// The simulators the app mounts.
    pub sandbox: Option<ferry_sandbox::Sandbox>,
    /// The app's queue name (a worker process must use the same).
    pub queue_name: String,
    /// The app's Redis, when its queue is there.
    pub redis_url: Option<String>,
    /// The provider's (checks, check requests) after the last publish: the
    /// publish checklist makes checks of its own, which tests of runs do
    /// not count.
    pub provider_baseline: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
    handle: ferry_web::ServerHandle,
    background: ferry::BackgroundHandle,
}

/// Starts the app with default options (SMTP capture on).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// Starts the app.
pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    match try_spawn(options).await {
        Ok(app) => app,
        Err(e) => panic!("could not start the app: {e:#}"),
    }
}

async fn try_spawn(options: TestOptions) -> anyhow::Result<TestApp> {
    init_logs();
    let data_dir = tempfile::tempdir()?;
    let database_url = fresh_database_url(data_dir.path()).await?;
    let smtp = if options.smtp {
        Some(SmtpSink::start().await?)
    } else {
        None
    };
    let smtp_url = smtp
        .as_ref()
        .map(|s| format!("smtp://127.0.0.1:{}", s.port()));
    let data_dir_text = data_dir.path().display().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("bind", "127.0.0.1:0"),
        ("database_url", &database_url),
        ("data_dir", &data_dir_text),
        ("web_workers", "2"),
        // The simulators as `ferry demo` serves them (a local tool); tests
        // of a shared sandbox set `("sandbox", "true")`.
        ("sandbox", "local"),
    ];
    if let Some(url) = &smtp_url {
        pairs.push(("smtp_url", url));
    }
    if let Some(url) = &options.redis_url {
        pairs.push(("redis_url", url));
        // With Redis, every run goes through the queue: the Redis pass
        // tests the queue, the SQLite pass in-process execution.
        pairs.push(("in_process_runs", "0"));
    }
    // Tests share one Redis: each app has its own queue.
    let queue_name = format!("ferry.test.{:016x}", rand::random::<u64>());
    pairs.push(("queue_name", &queue_name));
    for (k, v) in &options.settings {
        pairs.push((k, v));
    }
    // Port 0: the app binds first and derives its own URLs from the port
    // it got (the public URL too, unless the test sets one).
    if let Some(public) = &options.public_url {
        pairs.push(("public_url", public));
    }
    let settings = ferry::Settings::from_pairs(pairs)?;
    let clock = ManualClock::new();
    let app = ferry::build(
        &settings,
        Arc::new(clock.clone()),
        ferry::Roles {
            web: true,
            worker: options.worker,
        },
    )
    .await?;
    let port = app.port().context("no listener")?;
    let handle = app.server_handle().context("no server")?;
    let background = app.background_handle();
    let db = app.db().clone();
    let connections = app.connections().clone();
    let engine = app.engine().clone();
    let alerts = app.alerts().clone();
    let services = app.services().cloned().context("the app serves the web")?;
    let sandbox = app.sandbox().cloned();
    tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("app stopped with error: {e:#}");
        }
    });
    let raw = ferry_store::test_support::RawSql::connect(&database_url).await?;
    Ok(TestApp {
        services,
        sandbox,
        connections,
        engine,
        alerts,
        queue_name: queue_name.clone(),
        redis_url: options.redis_url.clone(),
        provider_baseline: std::sync::Arc::default(),
        database_url: database_url.clone(),
        address: format!("http://127.0.0.1:{port}"),
        db,
        raw,
        clock,
        smtp,
        data_dir,
        handle,
        background,
    })
}

impl TestApp {
    /// A browser-like client with its own cookie jar that does not follow
    /// redirects (tests assert them).
    pub fn client(&self) -> TestClient {
        TestClient::new(&self.address, &[])
    }

    /// A client whose every request carries `X-Forwarded-For: forwarded_for`
    /// (as if behind a proxy; Ferry believes it only from a trusted one).
    pub fn client_forwarded_for(&self, forwarded_for: &str) -> TestClient {
        TestClient::new(&self.address, &[("x-forwarded-for", forwarded_for)])
    }

    /// Stops the server gracefully.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Stops the app's background work (queue worker, in-process runs,
    /// sweeper) as SIGTERM does in a `ferry worker` process, leaving the
    /// server — and the simulators it serves — up.
    pub fn stop_background(&self) {
        self.background.stop();
    }

    /// Creates a platform operator with a known password, straight in storage.
    pub async fn create_operator(&self, email: &str) -> Account {
        let password = "operator password 123".to_owned();
        let email_addr = parse_email(email);
        let hash = ferry_web::hash_password(password.clone())
            .await
            .expect("hash");
        let user = users::create_operator(
            &self.db,
            &email_addr,
            "Olive Operator",
            Some(hash),
            self.clock.now(),
        )
        .await
        .expect("create operator");
        Account {
            user_id: user.id,
            email: email.to_owned(),
            password,
            tenant: None,
        }
    }

    /// Creates a tenant with one admin, straight in storage.
    pub async fn create_tenant(&self, name: &str) -> (TenantId, Account) {
        let tenant = tenants::create(
            &self.db,
            &TenantName::parse("name", name).expect("name"),
            self.clock.now(),
        )
        .await
        .expect("create tenant");
        let slug: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        let admin = self
            .add_member(
                &tenant.id,
                &format!("admin@{slug}.test"),
                "Ada Admin",
                Role::Admin,
            )
            .await;
        (tenant.id, admin)
    }

    /// Adds a member with a known password to a tenant.
    pub async fn add_member(
        &self,
        tenant: &TenantId,
        email: &str,
        name: &str,
        role: Role,
    ) -> Account {
        let password = format!("{} password 123", role.as_str());
        let hash = ferry_web::hash_password(password.clone())
            .await
            .expect("hash");
        let user = users::create_member(
            &self.db,
            tenant,
            &parse_email(email),
            name,
            hash,
            role,
            self.clock.now(),
        )
        .await
        .expect("create member");
        Account {
            user_id: user.id,
            email: email.to_owned(),
            password,
            tenant: Some(tenant.clone()),
        }
    }

    /// A client logged in as `account` (asserts the login worked).
    pub async fn login(&self, account: &Account) -> TestClient {
        let client = self.client();
        let res = client.login(&account.email, &account.password).await;
        assert_eq!(
            res.status, 303,
            "login of {} failed: {}",
            account.email, res.body
        );
        client
    }

    /// Waits up to 10 s for a captured email to `to` whose subject contains
    /// `subject`.
    pub async fn wait_for_mail(&self, to: &str, subject: &str) -> CapturedMail {
        let sink = self.smtp.as_ref().expect("this app has no SMTP sink");
        for _ in 0..100 {
            if let Some(mail) = sink
                .messages()
                .into_iter()
                .rev()
                .find(|m| m.to.iter().any(|t| t == to) && m.subject.contains(subject))
            {
                return mail;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "no mail to {to} about {subject:?}; got: {:?}",
            sink.messages()
                .iter()
                .map(|m| (&m.to, &m.subject))
                .collect::<Vec<_>>()
        );
    }

    /// Flushes the engine's counts to the rollups and evaluates every
    /// alert rule now (what the worker does once a minute).
    pub async fn evaluate_alerts(&self) -> ferry_engine::alerts::Report {
        use ferry_core::Clock;
        self.engine
            .metrics()
            .flush(&self.db)
            .await
            .expect("flushing metrics");
        self.alerts
            .evaluate(self.clock.now())
            .await
            .expect("evaluating alerts")
    }

    /// Runs a SQL statement on the raw connection (tests that tamper).
    pub async fn execute(&self, sql: &str) {
        self.raw.execute(sql).await.expect("raw SQL");
    }

    /// Counts rows matching a SQL `SELECT COUNT(*) …`.
    pub async fn count(&self, sql: &str) -> i64 {
        self.raw.count(sql).await.expect("count query")
    }

    /// Rows of a query whose columns are all text (or null), for messages.
    pub async fn json_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.raw.text_rows(sql).await.expect("query")
    }
}
