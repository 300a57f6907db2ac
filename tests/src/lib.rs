//! The end-to-end harness. `spawn_app()` starts the real application (the
//! same `ferry::build` as `ferry serve`) on port 0 with its own database — a
//! fresh SQLite file, or a fresh PostgreSQL database when
//! `FERRY_TEST_DB=postgres` — its own SMTP server that captures mail, and a
//! clock the test can move.
//!
//! The harness is test code under the workspace lints; its helpers assert
//! with `expect`, which is a test failing with its reason.
#![expect(
    clippy::expect_used,
    reason = "test harness: a failed expectation is a failed test, with its reason"
)]

pub mod smtp;

use anyhow::Context;
use ferry_core::{Clock, EmailAddress, ManualClock, Role, TenantId, TenantName, UserId};
use ferry_store::{Db, tenants, users};
use sea_orm::{ConnectionTrait, Database};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use smtp::{CapturedMail, SmtpSink};

/// Which database the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// A fresh SQLite file per test (the default).
    Sqlite,
    /// A fresh PostgreSQL database per test.
    Postgres,
}

/// `FERRY_TEST_DB=postgres` switches the whole suite to PostgreSQL.
pub fn db_kind() -> DbKind {
    match std::env::var("FERRY_TEST_DB").as_deref() {
        Ok("postgres") => DbKind::Postgres,
        _ => DbKind::Sqlite,
    }
}

/// The PostgreSQL server tests create databases on.
pub fn postgres_base_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The Redis server for tests that need one.
pub fn redis_url() -> String {
    std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Every log line the app wrote during the test run (the subscriber is
/// process-wide), so tests can look for request ids or leaked secrets.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|buf| {
            String::from_utf8_lossy(
                &buf.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
            .into_owned()
        })
        .unwrap_or_default()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn,sea_orm=warn,actix_server=warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// A URL for a new, empty database of the suite's kind: a file in `dir`
/// (SQLite) or a freshly created PostgreSQL database.
pub async fn fresh_database_url(dir: &std::path::Path) -> anyhow::Result<String> {
    Ok(match db_kind() {
        DbKind::Sqlite => format!("sqlite://{}", dir.join("ferry.db").display()),
        DbKind::Postgres => {
            let name = format!("ferry_test_{:016x}", rand::random::<u64>());
            let admin = Database::connect(format!("{}/postgres", postgres_base_url()))
                .await
                .context("connecting to PostgreSQL (FERRY_TEST_POSTGRES_URL)")?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            admin.close().await?;
            format!("{}/{name}", postgres_base_url())
        }
    })
}

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
    pub raw: sea_orm::DatabaseConnection,
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
    /// The app's queue name (a worker process must use the same).
    pub queue_name: String,
    /// The app's Redis, when its queue is there.
    pub redis_url: Option<String>,
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
    tokio::spawn(async move {
        if let Err(e) = app.run_until_stopped().await {
            eprintln!("app stopped with error: {e:#}");
        }
    });
    let raw = Database::connect(database_url.clone()).await?;
    Ok(TestApp {
        connections,
        engine,
        queue_name: queue_name.clone(),
        redis_url: options.redis_url.clone(),
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

    /// Runs a SQL statement on the raw connection (tests that tamper).
    pub async fn execute(&self, sql: &str) {
        self.raw.execute_unprepared(sql).await.expect("raw SQL");
    }

    /// Counts rows matching a SQL `SELECT COUNT(*) …`.
    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .raw
            .query_one_raw(sea_orm::Statement::from_string(
                self.raw.get_database_backend(),
                sql,
            ))
            .await
            .expect("count query")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a count")
    }

    /// Rows of a query whose columns are all text (or null), for messages.
    pub async fn json_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let rows = self
            .raw
            .query_all_raw(sea_orm::Statement::from_string(
                self.raw.get_database_backend(),
                sql,
            ))
            .await
            .expect("query");
        rows.iter()
            .map(|r| {
                (0..)
                    .map_while(|i| r.try_get_by_index::<Option<String>>(i).ok())
                    .collect()
            })
            .collect()
    }
}

impl TestApp {
    /// The app's master key, from the key file it generated.
    pub fn master_key(&self) -> [u8; 32] {
        use base64::Engine;
        let text = std::fs::read_to_string(self.data_dir.path().join("master.key"))
            .expect("master key file");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .expect("base64 key");
        bytes.try_into().expect("32 bytes")
    }

    /// The vault with the app's master key (to read what Ferry stored).
    pub fn vault(&self) -> ferry_store::vault::Vault {
        ferry_store::vault::Vault::new(
            self.db.clone(),
            ferry_store::vault::MasterKey::new(self.master_key()),
        )
    }

    /// The sandbox HubSpot app's client secret (it signs the simulator's webhooks).
    pub fn sandbox_client_secret(&self) -> String {
        ferry_engine::connections::sandbox_client_secret(&self.master_key())
    }

    /// A connection's stored credentials, opened.
    pub async fn credentials(
        &self,
        tenant: &TenantId,
        id: &ferry_core::ConnectionId,
    ) -> ferry_core::Credentials {
        ferry_store::connections::with_credentials(&self.db, &self.vault(), tenant, id)
            .await
            .expect("credentials")
            .1
    }

    /// A JSON GET straight to the app (the simulators' admin API).
    pub async fn json(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.address))
            .await
            .expect("GET")
            .json()
            .await
            .expect("json")
    }

    /// A JSON request with a body straight to the app.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> u16 {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    /// Starts connecting sandbox HubSpot as `client` (an admin): returns the
    /// consent URL the browser would be sent to.
    pub async fn start_hubspot(&self, client: &TestClient, name: &str) -> url::Url {
        let res = client
            .submit(
                "/connections/new/hubspot",
                "/connections/new/hubspot",
                &[("name", name), ("environment", "sandbox")],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        res.location.expect("consent URL").parse().expect("URL")
    }

    /// Answers the simulator's consent screen the way its form does (a
    /// fresh browser on this machine); returns the callback URL it
    /// redirects to.
    pub async fn consent(&self, consent_url: &url::Url, decision: &str) -> url::Url {
        let browser = self.client();
        let res = self
            .consent_as(&browser, consent_url, decision, "new")
            .await;
        assert_eq!(res.status, 302, "{}", res.body);
        res.location.expect("redirect").parse().expect("URL")
    }

    /// Opens the consent screen as `client` (its cookies: a Ferry session
    /// on a shared sandbox) and submits `decision` for `portal` ("new" or
    /// a portal id) with the screen's anti-forgery token.
    pub async fn consent_as(
        &self,
        client: &TestClient,
        consent_url: &url::Url,
        decision: &str,
        portal: &str,
    ) -> Page {
        let screen = client
            .get(&format!(
                "{}?{}",
                consent_url.path(),
                consent_url.query().unwrap_or("")
            ))
            .await;
        assert_eq!(screen.status, 200, "consent screen: {}", screen.body);
        let mut fields: Vec<(String, String)> = consent_url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        fields.push(("decision".into(), decision.into()));
        fields.push(("portal".into(), portal.into()));
        fields.push(("csrf_token".into(), screen.csrf().expect("token")));
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        client
            .post_raw("/sandbox/hubspot/oauth/authorize", &fields)
            .await
    }

    /// Connects sandbox HubSpot end to end; returns the connection id.
    pub async fn connect_hubspot(&self, client: &TestClient) -> ferry_core::ConnectionId {
        let consent = self.start_hubspot(client, "HubSpot (sandbox)").await;
        let callback = self.consent(&consent, "approve").await;
        let res = client
            .get(&format!(
                "{}?{}",
                callback.path(),
                callback.query().unwrap_or("")
            ))
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        let location = res.location.expect("connection page");
        location
            .trim_start_matches("/connections/")
            .parse()
            .expect("connection id")
    }

    /// Connects the sandbox verification provider the way a user does in
    /// the sandbox (no key: Ferry provisions an account whose result
    /// webhooks come back to Ferry).
    pub async fn connect_sandbox_verification(
        &self,
        client: &TestClient,
    ) -> ferry_core::ConnectionId {
        let res = client
            .submit(
                "/connections/new/verification",
                "/connections/new/verification",
                &[
                    ("name", "Verification"),
                    ("environment", "sandbox"),
                    ("api_key", ""),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        res.location
            .expect("page")
            .trim_start_matches("/connections/")
            .parse()
            .expect("id")
    }

    /// Creates the reference workflow from its template (bound to the
    /// tenant's sandbox connections) and publishes it; returns its id.
    pub async fn publish_reference(&self, client: &TestClient, owner: &Account) -> String {
        let res = client
            .submit(
                "/workflows/new",
                "/workflows",
                &[
                    ("name", "KYC for new clients"),
                    ("description", "Replaces the manual ID check"),
                    ("owner", owner.user_id.as_str()),
                    ("environment", "sandbox"),
                    ("template", "reference"),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        let id = res
            .location
            .expect("workflow page")
            .trim_start_matches("/workflows/")
            .to_owned();
        let res = client
            .submit(
                &format!("/workflows/{id}"),
                &format!("/workflows/{id}/publish"),
                &[],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        id
    }

    /// The first sandbox HubSpot portal's id.
    pub async fn portal(&self) -> u64 {
        self.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
            .as_u64()
            .expect("a portal")
    }

    /// Creates a contact in a sandbox portal as a CRM user would (the
    /// simulator sends Ferry the contact.creation webhook); returns its id.
    pub async fn create_contact(&self, portal: u64, properties: serde_json::Value) -> String {
        let res = reqwest::Client::new()
            .post(format!(
                "{}/sandbox/hubspot/admin/portals/{portal}/contacts",
                self.address
            ))
            .json(&serde_json::json!({ "properties": properties }))
            .send()
            .await
            .expect("create contact");
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.expect("json");
        body["id"]
            .as_str()
            .map_or_else(|| body["id"].to_string(), str::to_owned)
    }

    /// Polls `sql` (a COUNT) until it reaches `n` or 15 s pass; returns
    /// the last count.
    pub async fn wait_count(&self, sql: &str, n: i64) -> i64 {
        let mut last = 0;
        for _ in 0..150 {
            last = self.count(sql).await;
            if last >= n {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        last
    }

    /// Connects the sandbox verification provider with a fresh sandbox
    /// account; returns the connection id and its API key.
    pub async fn connect_verification(
        &self,
        client: &TestClient,
    ) -> (ferry_core::ConnectionId, String) {
        let account: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/sandbox/verify/admin/accounts", self.address))
            .json(&serde_json::json!({ "delay_ms": 0 }))
            .send()
            .await
            .expect("account")
            .json()
            .await
            .expect("json");
        let key = account["api_key"].as_str().expect("key").to_owned();
        let res = client
            .submit(
                "/connections/new/verification",
                "/connections/new/verification",
                &[
                    ("name", "Verification"),
                    ("environment", "sandbox"),
                    ("api_key", &key),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        let id = res
            .location
            .expect("page")
            .trim_start_matches("/connections/")
            .parse()
            .expect("id");
        (id, key)
    }
}

fn parse_email(email: &str) -> EmailAddress {
    EmailAddress::parse("email", email).expect("valid test email")
}

/// A person who can log in, with their password.
#[derive(Debug, Clone)]
pub struct Account {
    /// Their id.
    pub user_id: UserId,
    /// Login email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Their tenant, if a member.
    pub tenant: Option<TenantId>,
}

/// A response, read.
#[derive(Debug, Clone)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// Every `Set-Cookie` header.
    pub set_cookies: Vec<String>,
    /// Every header, lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl Page {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first `csrf_token` hidden input.
    pub fn csrf(&self) -> Option<String> {
        extract_attr_after(&self.body, "name=\"csrf_token\" value=\"")
    }
}

fn extract_attr_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    let end = body.get(start..)?.find('"')? + start;
    body.get(start..end).map(str::to_owned)
}

/// An HTTP client with its own cookie jar.
pub struct TestClient {
    base: String,
    /// The underlying client.
    pub http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl TestClient {
    fn new(base: &str, headers: &[(&'static str, &str)]) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut default_headers = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            default_headers.append(*name, value.parse().expect("header value"));
        }
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .default_headers(default_headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            base: base.to_owned(),
            http,
            jar,
        }
    }

    /// Sets a cookie by hand (forged-cookie tests).
    pub fn set_cookie(&self, cookie: &str) {
        let url: url::Url = self.base.parse().expect("base url");
        self.jar.add_cookie_str(cookie, &url);
    }

    /// The cookie header this client would send.
    pub fn cookies(&self) -> String {
        use reqwest::cookie::CookieStore;
        let url: url::Url = self.base.parse().expect("base url");
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    async fn read(res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let location = headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone());
        let set_cookies = headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect();
        let body = res.text().await.unwrap_or_default();
        Page {
            status,
            body,
            location,
            set_cookies,
            headers,
        }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        Self::read(res).await
    }

    /// POST a form to `path` exactly as given (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST");
        Self::read(res).await
    }

    /// GET `page` for its anti-forgery token, then POST `fields` plus the
    /// token to `action`, as a browser submitting the page's form would.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let form_page = self.get(page).await;
        let token = form_page.csrf().unwrap_or_else(|| {
            panic!(
                "no csrf token on {page} ({}): {}",
                form_page.status, form_page.body
            )
        });
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_raw(action, &all).await
    }

    /// Logs in through the login form.
    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

/// How askama escapes `raw` in HTML.
pub fn escaped(raw: &str) -> String {
    raw.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Asserts `raw` appears on the page only escaped.
pub fn assert_escaped(page: &Page, raw: &str) {
    assert!(
        page.body.contains(&escaped(raw)),
        "escaped {raw:?} not on the page: {}",
        page.body
    );
    if raw.contains(['<', '>', '"', '\'']) {
        assert!(!page.body.contains(raw), "unescaped {raw:?} on the page");
    }
}

/// A tiny HTTP receiver: answers the first `fail_first` requests with 500,
/// then 200, and keeps every request (headers and body).
/// A received request: its headers (lower-cased names) and body.
pub type Request = (Vec<(String, String)>, String);
/// Requests received so far.
pub type Received = Arc<Mutex<Vec<Request>>>;

pub struct Receiver {
    /// Its URL.
    pub url: String,
    /// Requests received: headers (lower-cased names) and body.
    pub seen: Received,
}

pub async fn receiver(fail_first: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!(
        "http://{}/hooks/test",
        listener.local_addr().expect("its address")
    );
    let seen: Received = Arc::default();
    let store = seen.clone();
    tokio::spawn(async move {
        let mut count = 0usize;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf).to_string();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((headers, body.to_owned()));
            count += 1;
            let status = if count <= fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    Receiver { url, seen }
}

/// Waits up to 10 s for `n` requests.
pub async fn wait_for(seen: &Received, n: usize) -> Vec<Request> {
    for _ in 0..100 {
        if seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
            >= n
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
