//! Ferry's web layer: server-rendered pages (askama), authentication,
//! sessions, CSRF, extractors and the one mapping from errors to HTTP.
//! `Application::build` binds the listener and returns the server, so tests
//! run exactly what `ferry serve` runs.

mod assets;
mod charts;
mod client;
mod error;
mod error_page;
mod pages;
mod principal;
pub mod redirect;
mod session;
mod state;
mod templates;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use std::net::TcpListener;
use std::sync::Arc;

pub use actix_web::dev::ServerHandle;
pub use client::TrustedProxies;
pub use error::AppError;
pub use ferry_app::password::{
    hash_password, hashing_threads, peak_concurrent_hashes, verify_password,
};
pub use pages::route_table;
pub use session::{CurrentUser, Principal, user_of};
pub use state::{AppState, FlashKey, WebConfig};

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
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(
                    web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(error_page::form_error),
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
                .wrap(middleware::from_fn(pages::metrics::timing))
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
