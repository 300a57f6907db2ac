//! Ferry's web layer: server-rendered pages (askama), authentication,
//! sessions, CSRF, extractors and the one mapping from errors to HTTP.
//! `Application::build` binds the listener and returns the server, so tests
//! run exactly what `ferry serve` runs.

mod assets;
mod client;
mod error;
mod pages;
mod password;
pub mod redirect;
mod session;
mod templates;
mod throttle;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use ferry_core::Clock;
use ferry_engine::Mailer;
use ferry_engine::housekeeping::SessionPolicy;
use ferry_store::Db;
use std::net::TcpListener;
use std::sync::Arc;

pub use actix_web::dev::ServerHandle;
pub use client::TrustedProxies;
pub use error::AppError;
pub use pages::route_table;
pub use password::{hash_password, hashing_threads, peak_concurrent_hashes, verify_password};
pub use session::{CurrentUser, Principal, user_of};

/// Settings the web layer needs, already validated.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where users reach Ferry; links in emails start with it.
    pub public_url: url::Url,
    /// Idle and absolute session timeouts.
    pub session: SessionPolicy,
    /// How long invite links work.
    pub link_ttl: chrono::Duration,
    /// How long password-reset links work.
    pub reset_ttl: chrono::Duration,
    /// Proxies whose `X-Forwarded-For` names the client (none: the TCP
    /// peer is the client).
    pub trusted_proxies: TrustedProxies,
}

impl WebConfig {
    /// Cookies get `Secure` and the `__Host-` prefix when Ferry is served over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Whether the public URL points at this machine, so the local outbox
    /// page may be shown (never on a deployment reachable from elsewhere).
    pub fn is_local(&self) -> bool {
        match self.public_url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

/// Everything a request handler may use. Shared, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Outgoing mail.
    pub mailer: Mailer,
    /// Validated settings.
    pub config: WebConfig,
    /// Using connections: credentials, refresh, test, revoke.
    pub connections: ferry_engine::connections::ConnectionService,
    /// The run engine: inbound events become runs through it.
    pub engine: ferry_engine::runs::Engine,
    /// Every capability, as services the handlers call.
    pub services: ferry_app::Services,
    /// Signs the flash-message cookie (derived from the master key).
    pub flash_key: FlashKey,
}

/// The key that signs flash-message cookies. Its `Debug` shows nothing.
#[derive(Clone)]
pub struct FlashKey(pub Arc<[u8; 32]>);

impl std::fmt::Debug for FlashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlashKey([redacted])")
    }
}

/// Extra routes mounted into the same server (the sandbox simulators).
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// The HTTP server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `listener` (port 0 picks a free port) and builds the server.
    pub fn build(
        listener: TcpListener,
        state: AppState,
        workers: usize,
        extra: Option<ExtraRoutes>,
    ) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let hsts = state.config.secure_cookies();
        // Starting an OAuth connection is a form whose answer redirects to
        // the provider's consent screen: browsers apply `form-action` to
        // that redirect, so the providers' authorize origins are allowed.
        let form_targets: Vec<String> = [
            ferry_core::Environment::Production,
            ferry_core::Environment::Sandbox,
        ]
        .into_iter()
        .filter_map(|env| state.connections.hubspot(env))
        .map(|app| app.oauth.authorize_url.origin().ascii_serialization())
        .filter(|o| o != "null" && *o != state.config.public_url.origin().ascii_serialization())
        .collect();
        let data = web::Data::new(state);
        // One set for all workers: a pair's attempts queue behind each other
        // whichever worker takes them.
        let login_locks = web::Data::new(throttle::LoginLocks::default());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(login_locks.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(error::form_error),
                )
                .app_data(web::PayloadConfig::default().limit(64 * 1024))
                // A path id that does not parse (wrong prefix, not an id) is
                // a 404, like another tenant's id.
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()),
                )
                .configure(|cfg| {
                    if let Some(extra) = &extra {
                        extra(cfg);
                    }
                })
                .configure(pages::routes)
                .default_service(web::to(pages::not_found))
                .wrap(middleware::from_fn(session::session_layer))
                .wrap(middleware::from_fn(error::request_id_layer))
                .wrap(security_headers(hsts, &form_targets))
        })
        .workers(workers.max(1))
        .shutdown_timeout(20)
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    /// The port the listener got.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (signal or handle).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn security_headers(hsts: bool, form_targets: &[String]) -> middleware::DefaultHeaders {
    let mut form_action = "'self'".to_owned();
    for origin in form_targets {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let headers = if hsts {
        // Served over TLS: browsers must never fall back to plain HTTP.
        middleware::DefaultHeaders::new().add((
            "Strict-Transport-Security",
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        middleware::DefaultHeaders::new()
    };
    headers
        .add((
            "Content-Security-Policy",
            format!(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
            ),
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        // One-time links carry their token in the path: never leak it onward.
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}
