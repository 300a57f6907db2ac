//! Using connections: opening credentials, refreshing OAuth tokens ahead of
//! expiry (one refresh per connection at a time; rotated refresh tokens are
//! stored), testing, revoking, and recording authentication events when a
//! credential stops working.

use chrono::Duration as ChronoDuration;
use ferry_connectors::hubspot;
use ferry_connectors::oauth::{OAuthApp, TokenSet};
use ferry_connectors::{CallContext, ConnectorError, HttpClient, RateLimiter, Registry};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{Clock, ConnectionId, Credentials, Environment, TenantId};
use ferry_store::connections::{self, Connection};
use ferry_store::vault::Vault;
use ferry_store::{Db, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use url::Url;

/// Refresh this long before the access token expires.
pub const REFRESH_AHEAD_SECS: i64 = 300;

/// A HubSpot OAuth app and the API it talks to.
#[derive(Debug, Clone)]
pub struct HubSpotApp {
    /// The OAuth app (authorize and token URLs, client credentials).
    pub oauth: OAuthApp,
    /// The API base (`https://api.hubapi.com`, or the simulator).
    pub api_base: Url,
}

/// What went wrong using a connection.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Storage failed or the connection does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The remote call failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

/// Uses connections. Cheap to clone.
#[derive(Clone)]
pub struct ConnectionService {
    db: Db,
    vault: Vault,
    clock: Arc<dyn Clock>,
    registry: Registry,
    limiter: RateLimiter,
    production_http: HttpClient,
    sandbox_http: HttpClient,
    hubspot_sandbox: HubSpotApp,
    hubspot_production: Option<HubSpotApp>,
    rate_limits: HashMap<ConnectorKey, ferry_core::catalog::RateLimit>,
    refresh_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// How the service is set up.
pub struct ServiceParts {
    /// The database.
    pub db: Db,
    /// The vault.
    pub vault: Vault,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The limiter.
    pub limiter: RateLimiter,
    /// Client for production connections (SSRF guard on).
    pub production_http: HttpClient,
    /// Client for sandbox connections (the simulators allowed).
    pub sandbox_http: HttpClient,
    /// The sandbox HubSpot app.
    pub hubspot_sandbox: HubSpotApp,
    /// The production HubSpot app, when configured.
    pub hubspot_production: Option<HubSpotApp>,
    /// Limits per account that replace a connector's default (a higher
    /// HubSpot tier, a provider contract).
    pub rate_limits: HashMap<ConnectorKey, ferry_core::catalog::RateLimit>,
}

impl ConnectionService {
    /// Builds the service.
    pub fn new(p: ServiceParts) -> Self {
        Self {
            db: p.db,
            vault: p.vault,
            clock: p.clock,
            registry: Registry::new(),
            limiter: p.limiter,
            production_http: p.production_http,
            sandbox_http: p.sandbox_http,
            hubspot_sandbox: p.hubspot_sandbox,
            hubspot_production: p.hubspot_production,
            rate_limits: p.rate_limits,
            refresh_locks: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The connectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The HTTP client for an environment.
    pub fn http(&self, environment: Environment) -> &HttpClient {
        match environment {
            Environment::Sandbox => &self.sandbox_http,
            Environment::Production => &self.production_http,
        }
    }

    /// The HubSpot app for an environment, if configured.
    pub fn hubspot(&self, environment: Environment) -> Option<&HubSpotApp> {
        match environment {
            Environment::Sandbox => Some(&self.hubspot_sandbox),
            Environment::Production => self.hubspot_production.as_ref(),
        }
    }

    fn lock_for(&self, id: &ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        self.refresh_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn base_url(&self, c: &Connection) -> Result<Url, ConnectorError> {
        if c.connector == ConnectorKey::HubSpot {
            return self
                .hubspot(c.environment)
                .map(|a| a.api_base.clone())
                .ok_or_else(|| {
                    ConnectorError::Config(
                        "HubSpot is not configured for production (FERRY_HUBSPOT_CLIENT_ID)".into(),
                    )
                });
        }
        c.base_url
            .as_deref()
            .and_then(|u| Url::parse(u).ok())
            .ok_or_else(|| ConnectorError::Config("the connection has no base URL".into()))
    }

    /// Opens a connection for a call: its credentials, refreshed if the
    /// access token expires within five minutes.
    pub async fn context(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<(Connection, CallContext), ServiceError> {
        let (mut connection, mut credentials) =
            connections::with_credentials(&self.db, &self.vault, tenant, id).await?;
        if self.needs_refresh(&connection) {
            (connection, credentials) = self.refresh(tenant, id).await?;
        }
        let ctx = CallContext {
            connection_id: connection.id.to_string(),
            base_url: self.base_url(&connection)?,
            credentials,
            http: self.http(connection.environment).clone(),
            limiter: self.limiter.clone(),
            idempotency_key: None,
            log: Default::default(),
            rate_limit: self.rate_limits.get(&connection.connector).copied(),
        };
        Ok((connection, ctx))
    }

    fn needs_refresh(&self, c: &Connection) -> bool {
        c.connector == ConnectorKey::HubSpot
            && c.access_expires_at.is_some_and(|at| {
                at - self.clock.now() < ChronoDuration::seconds(REFRESH_AHEAD_SECS)
            })
    }

    /// Refreshes the access token now (one refresh per connection at a
    /// time: callers that waited find it done). A refused refresh marks the
    /// connection broken and records an authentication event.
    pub async fn refresh(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<(Connection, Credentials), ServiceError> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let (connection, credentials) =
            connections::with_credentials(&self.db, &self.vault, tenant, id).await?;
        if !self.needs_refresh(&connection) {
            return Ok((connection, credentials));
        }
        // Across processes: whoever holds the lease refreshes; the others
        // wait for the result instead of refreshing again.
        let now = self.clock.now();
        if !connections::claim_refresh(&self.db, tenant, id, now, now + ChronoDuration::seconds(30))
            .await?
        {
            for _ in 0..80 {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let (c, creds) =
                    connections::with_credentials(&self.db, &self.vault, tenant, id).await?;
                if !self.needs_refresh(&c) {
                    return Ok((c, creds));
                }
            }
            return Err(ConnectorError::Network(
                "another Ferry process is refreshing this token; try again".into(),
            )
            .into());
        }
        // Read again under the lease: another process may have refreshed and
        // released it between our first read and our claim.
        let (connection, credentials) =
            match connections::with_credentials(&self.db, &self.vault, tenant, id).await {
                Ok(pair) => pair,
                Err(e) => {
                    connections::release_refresh(&self.db, tenant, id).await?;
                    return Err(e.into());
                }
            };
        let outcome = if self.needs_refresh(&connection) {
            self.refresh_now(tenant, id, connection, credentials).await
        } else {
            Ok((connection, credentials))
        };
        connections::release_refresh(&self.db, tenant, id).await?;
        outcome
    }

    async fn refresh_now(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        connection: Connection,
        credentials: Credentials,
    ) -> Result<(Connection, Credentials), ServiceError> {
        let app = self.hubspot(connection.environment).ok_or_else(|| {
            ConnectorError::Config("HubSpot is not configured for production".into())
        })?;
        let refresh_token = credentials
            .refresh_token
            .clone()
            .ok_or_else(|| ConnectorError::Config("the connection has no refresh token".into()))?;
        match app
            .oauth
            .refresh(self.http(connection.environment), refresh_token.expose())
            .await
        {
            Ok(tokens) => {
                let updated = apply(&credentials, &tokens);
                let expires = tokens.expires_in.map(|d| {
                    self.clock.now()
                        + ChronoDuration::seconds(i64::try_from(d.as_secs()).unwrap_or(1800))
                });
                let stored = connections::update_credentials(
                    &self.db,
                    &self.vault,
                    tenant,
                    id,
                    connection.version,
                    &updated,
                    expires,
                    self.clock.now(),
                )
                .await?;
                if !stored {
                    // Another process refreshed first; use what it stored.
                    tracing::info!(connection_id = %id, "token refreshed elsewhere first");
                }
                tracing::info!(connection_id = %id, rotated = tokens.refresh_token.as_ref().is_some_and(|t| Some(t) != credentials.refresh_token.as_ref()), "access token refreshed");
                Ok(connections::with_credentials(&self.db, &self.vault, tenant, id).await?)
            }
            Err(e @ ConnectorError::Unauthorized(_)) => {
                self.broken(
                    tenant,
                    id,
                    "refresh_failed",
                    &format!("HubSpot refused to refresh the token: {e}. Reconnect HubSpot."),
                )
                .await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn broken(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        connections::mark_broken(&self.db, tenant, id, message, now).await?;
        connections::record_auth_event(&self.db, tenant, id, kind, message, now).await?;
        tracing::warn!(connection_id = %id, kind, "connection broken");
        Ok(())
    }

    /// Flags a connection whose credential the app refused during a run
    /// (found on use), with an authentication event, as a failed refresh
    /// or a refused test does.
    pub async fn refused(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.broken(
            tenant,
            id,
            "unauthorized",
            &format!("The app refused the credential during a run: {reason}. Reconnect it."),
        )
        .await
    }

    /// A cheap real call; marks the connection healthy or broken.
    pub async fn test(&self, tenant: &TenantId, id: &ConnectionId) -> Result<String, ServiceError> {
        let (connection, ctx) = self.context(tenant, id).await?;
        let connector = self
            .registry
            .get(connection.connector)
            .ok_or_else(|| ConnectorError::Config("unknown connector".into()))?;
        match connector.test(&ctx).await {
            Ok(message) => {
                connections::mark_used(&self.db, tenant, id, self.clock.now()).await?;
                Ok(message)
            }
            Err(e @ ConnectorError::Unauthorized(_)) => {
                self.broken(
                    tenant,
                    id,
                    "unauthorized",
                    &format!("The credential was refused: {e}"),
                )
                .await?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revokes the grant at the remote end where it can be (a failure is
    /// logged, not raised: the caller deletes the connection anyway);
    /// returns whether the remote end revoked it.
    pub async fn revoke_remote(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> Result<bool, ServiceError> {
        let (connection, credentials) =
            connections::with_credentials(&self.db, &self.vault, tenant, id).await?;
        let mut remote = false;
        if connection.connector == ConnectorKey::HubSpot
            && let (Some(app), Some(token)) = (
                self.hubspot(connection.environment),
                credentials.refresh_token(),
            )
        {
            match hubspot::revoke(self.http(connection.environment), &app.api_base, token).await {
                Ok(()) => remote = true,
                Err(e) => {
                    tracing::warn!(connection_id = %id, error = %e, "remote revoke failed; deleting locally anyway")
                }
            }
        }
        Ok(remote)
    }
}

/// New credentials after a token grant; a refresh token that was not
/// reissued is kept.
pub fn apply(old: &Credentials, tokens: &TokenSet) -> Credentials {
    Credentials {
        access_token: Some(tokens.access_token.clone()),
        refresh_token: tokens
            .refresh_token
            .clone()
            .or_else(|| old.refresh_token.clone()),
        ..old.clone()
    }
}

/// The sandbox HubSpot app's client secret, derived from the master key so
/// that the simulator and Ferry agree without storing it anywhere.
pub fn sandbox_client_secret(master_key: &[u8; 32]) -> String {
    hex::encode(derived_key(
        master_key,
        b"ferry sandbox hubspot app client secret",
    ))
}

/// A 256-bit key for one purpose, derived from the master key.
pub fn derived_key(master_key: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(master_key)
        .expect("HMAC accepts keys of any length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
}

/// The simulators' admin key (a bearer token for their admin API), derived
/// from the master key so that Ferry's pages, `ferry sandbox` and the tests
/// sharing the key agree on it.
pub fn sandbox_admin_key(master_key: &[u8; 32]) -> String {
    hex::encode(derived_key(master_key, b"ferry sandbox admin api key"))
}

/// Refreshes every OAuth connection whose token is about to expire, used or
/// not, so a revoked grant is found (and recorded) before a workflow needs
/// the connection. Returns (refreshed, failed).
pub async fn refresh_due(service: &ConnectionService) -> Result<(usize, usize), StoreError> {
    let horizon = service.clock.now() + ChronoDuration::seconds(REFRESH_AHEAD_SECS);
    let due = ferry_store::system::due_for_refresh(&service.db, horizon, 200).await?;
    let (mut ok, mut failed) = (0, 0);
    for (tenant, id) in due {
        match service.refresh(&tenant, &id).await {
            Ok(_) => ok += 1,
            Err(e) => {
                failed += 1;
                tracing::warn!(connection_id = %id, error = %e, "background token refresh failed");
            }
        }
    }
    Ok((ok, failed))
}

/// Runs [`refresh_due`] every 10 seconds until `stop` flips.
pub async fn run_refresher(service: ConnectionService, mut stop: crate::mail::CancelSignal) {
    loop {
        match refresh_due(&service).await {
            Ok((0, 0)) => {}
            Ok((ok, failed)) => tracing::info!(refreshed = ok, failed, "token refresher ran"),
            Err(e) => tracing::error!(error = %e, "token refresher failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
