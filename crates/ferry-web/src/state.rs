//! What every handler may use: the services, the validated settings and
//! the few parts the session layer and the health checks need directly.

use ferry_core::Clock;
use ferry_engine::Mailer;
use ferry_engine::housekeeping::SessionPolicy;
use ferry_store::Db;
use std::sync::Arc;

pub use crate::client::TrustedProxies;

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
    /// The bearer token `/metrics` asks for (none: `/metrics` is a 404).
    pub metrics_token: Option<secrecy::SecretString>,
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
