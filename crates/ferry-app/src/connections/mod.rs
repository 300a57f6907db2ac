//! Connecting apps: with a key (checked — scheme, SSRF guard, a test call —
//! before it is stored), through OAuth 2.0 (PKCE and a single-use state),
//! testing, revoking, and the sandbox's sample contacts.

use crate::audit::{self, Target};
use crate::{Error, Member, Parts};
use chrono::{DateTime, Duration, Utc};
use ferry_connectors::{CallContext, ConnectorError, hubspot};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{
    AuditAction, ConnectionId, Credentials, Environment, FieldError, FieldErrors, PersonName,
    Secret,
};
use ferry_engine::connections::ServiceError;
use ferry_store::connections::{self as store, AuthEvent, Connection, NewConnection, OAuthFlow};
use ferry_store::{StoreError, inbound, token_hash};
use serde_json::json;
use std::sync::Arc;
use url::Url;

mod oauth;

pub use oauth::{OAuthCallback, OAuthOutcome};

/// API keys and tokens should be rotated this often.
pub const ROTATION_DAYS: i64 = 90;
/// An OAuth attempt must come back within this.
pub const FLOW_MINUTES: i64 = 10;

/// Connections.
#[derive(Clone)]
pub struct Connections(pub(crate) Arc<Parts>);

/// What every new connection needs.
#[derive(Debug, Clone)]
pub struct NewConnectionBasics {
    /// What the firm calls it.
    pub name: PersonName,
    /// Sandbox or production.
    pub environment: Environment,
}

/// A connection made with a key (every connector but HubSpot).
#[derive(Debug, Clone)]
pub struct NewKeyConnection {
    /// Which connector.
    pub connector: ConnectorKey,
    /// Name and environment.
    pub basics: NewConnectionBasics,
    /// The API key as typed (empty: none; for the sandbox provider, create
    /// a sandbox account).
    pub api_key: String,
    /// The remote base URL as typed.
    pub base_url: String,
    /// The SMTP user name as typed.
    pub username: String,
    /// The provider's result-webhook signing secret as typed.
    pub signing_secret: String,
}

/// A key connection, stored.
#[derive(Debug, Clone)]
pub struct KeyConnected {
    /// Its id.
    pub id: ConnectionId,
    /// For a webhook connection: its signing secret, shown once.
    pub one_time_secret: Option<String>,
}

/// How a connection test went.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// Whether it passed.
    pub ok: bool,
    /// What the connector said (no secret, no personal data).
    pub message: String,
}

/// A connection revoked and deleted.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// Its name.
    pub name: String,
    /// Whether the remote side revoked the grant too.
    pub remote: bool,
}

/// A connection's page content.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    /// The connection.
    pub connection: Connection,
    /// Who created it (or "a former member").
    pub creator: String,
    /// Inbound events received, and the last one's time.
    pub received: u64,
    /// When the last event arrived.
    pub last_received: Option<DateTime<Utc>>,
    /// Its newest authentication events.
    pub events: Vec<AuthEvent>,
    /// Where its events arrive (empty when it has no inbound endpoint).
    pub hook_url: String,
    /// The workflows that use it (in their draft or published version).
    pub used_by: Vec<UsedBy>,
}

/// A workflow that uses a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedBy {
    /// The workflow.
    pub id: ferry_core::WorkflowId,
    /// Its name.
    pub name: String,
    /// Its published version uses the connection (runs would fail without it).
    pub live: bool,
}

impl Connections {
    /// The tenant's connections.
    pub async fn list(&self, who: &Member) -> Result<Vec<Connection>, Error> {
        Ok(store::list(&self.0.db, &who.tenant_id).await?)
    }

    /// Whether sandbox connections can be made here.
    pub fn sandbox_available(&self) -> bool {
        self.0.sandbox.is_some()
    }

    /// One connection with what its page shows.
    pub async fn view(&self, who: &Member, id: &ConnectionId) -> Result<ConnectionView, Error> {
        let db = &self.0.db;
        let c = store::get(db, &who.tenant_id, id).await?;
        let (received, last_received) = inbound::stats(db, &who.tenant_id, id).await?;
        let base = self.0.links.public_url.as_str().trim_end_matches('/');
        let hook_url = match c.connector {
            ConnectorKey::Webhook => format!("{base}/hooks/webhook/{id}"),
            ConnectorKey::HubSpot if c.environment == Environment::Sandbox => {
                format!("{base}/hooks/hubspot/sandbox")
            }
            ConnectorKey::HubSpot => format!("{base}/hooks/hubspot"),
            ConnectorKey::Verification => format!("{base}/hooks/verification/{id}"),
            _ => String::new(),
        };
        let creator = crate::person_name(db, &c.created_by).await;
        let events = store::auth_events(db, &who.tenant_id, id, 20).await?;
        let used_by = self.used_by(who, id).await?;
        Ok(ConnectionView {
            used_by,
            connection: c,
            creator,
            received,
            last_received,
            events,
            hook_url,
        })
    }

    /// The tenant's workflows whose draft or published version is bound to
    /// the connection, by name.
    pub async fn used_by(&self, who: &Member, id: &ConnectionId) -> Result<Vec<UsedBy>, Error> {
        let db = &self.0.db;
        let mut out = Vec::new();
        for w in ferry_store::workflows::list(db, &who.tenant_id).await? {
            let live = match w.published_version {
                Some(v) => ferry_store::workflows::version(db, &who.tenant_id, &w.id, v)
                    .await?
                    .bindings
                    .values()
                    .any(|c| c == id),
                None => false,
            };
            if live || w.bindings.values().any(|c| c == id) {
                out.push(UsedBy {
                    id: w.id,
                    name: w.name,
                    live,
                });
            }
        }
        Ok(out)
    }

    fn check_environment(&self, environment: Environment) -> Result<(), Error> {
        if environment == Environment::Sandbox && self.0.sandbox.is_none() {
            return Err(Error::field(
                "environment",
                "The sandbox is turned off on this Ferry (FERRY_SANDBOX).",
            ));
        }
        Ok(())
    }

    /// Stores a new connection with its credentials sealed, and its audit
    /// entry, in one transaction. The tenant's data key is made (if new)
    /// before the transaction: on SQLite a second writer would wait for it.
    async fn store_new(
        &self,
        admin: &Member,
        new: NewConnection<'_>,
        credentials: &Credentials,
        details: serde_json::Value,
    ) -> Result<Connection, Error> {
        let now = self.0.clock.now();
        let vault = self.0.connections.vault();
        vault.prepare(&admin.tenant_id).await?;
        let tx = self.0.db.begin().await?;
        let connection = store::create(&tx, vault, &admin.tenant_id, new, credentials, now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::ConnectionCreated,
            Target("connection", connection.id.as_str()),
            details,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(connection)
    }

    /// Connects with a key. A key is tried before it is stored: a wrong key
    /// is an error now, not a broken connection later.
    pub async fn create_with_key(
        &self,
        admin: &Member,
        new: NewKeyConnection,
    ) -> Result<KeyConnected, Error> {
        admin.require_admin()?;
        let key = new.connector;
        let environment = new.basics.environment;
        self.check_environment(environment)?;
        if key == ConnectorKey::HubSpot {
            return Err(Error::field("connector", "HubSpot connects through OAuth."));
        }
        let sandboxed_provider =
            key == ConnectorKey::Verification && environment == Environment::Sandbox;
        let mut errors = FieldErrors::new();
        let http = self.0.connections.http(environment).clone();
        let mut credentials = Credentials::default();
        let mut sandbox_account: Option<String> = None;

        let base_url: Option<Url> = if sandboxed_provider {
            self.0
                .sandbox
                .as_ref()
                .and_then(|s| s.url.join("/sandbox/verify").ok())
        } else if key == ConnectorKey::Webhook {
            None
        } else {
            match Url::parse(new.base_url.trim()) {
                Ok(u) => Some(u),
                Err(_) => {
                    errors.push(FieldError::new(
                        "base_url",
                        "Enter the full URL, like https://api.example.com.",
                    ));
                    None
                }
            }
        };
        if let Some(url) = &base_url
            && !sandboxed_provider
        {
            check_base_url(&http, key, url, &mut errors).await;
        }

        match key {
            ConnectorKey::Verification if sandboxed_provider && new.api_key.trim().is_empty() => {
                let provisioned = match &self.0.sandbox {
                    Some(link) => link.provision_account(&http, &admin.tenant_id).await,
                    None => Err("the sandbox is off".to_owned()),
                };
                match provisioned {
                    Ok(account) => {
                        credentials.api_key = Some(account.api_key.into());
                        credentials.signing_secret = Some(account.secret.into());
                        sandbox_account = Some(account.account);
                    }
                    Err(e) => errors.push(FieldError::new(
                        "api_key",
                        format!("The sandbox provider could not create an account: {e}"),
                    )),
                }
            }
            ConnectorKey::Verification | ConnectorKey::Http | ConnectorKey::Smtp => {
                let k = new.api_key.trim();
                if k.is_empty() && key != ConnectorKey::Http {
                    errors.push(FieldError::new("api_key", "Enter the API key."));
                } else if k.len() > 4096 {
                    errors.push(FieldError::new(
                        "api_key",
                        "That key is too long (at most 4096 characters).",
                    ));
                } else if !k.is_empty() {
                    credentials.api_key = Some(k.into());
                }
                if key == ConnectorKey::Smtp {
                    credentials.username =
                        Some(new.username.trim().to_owned()).filter(|u| !u.is_empty());
                }
                if key == ConnectorKey::Verification {
                    credentials.signing_secret = Some(new.signing_secret.trim())
                        .filter(|s| !s.is_empty())
                        .map(Secret::from);
                }
            }
            ConnectorKey::Webhook => {
                credentials.signing_secret = Some(Secret::from(format!(
                    "whsec_{}",
                    base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        rand::random::<[u8; 24]>()
                    )
                )));
            }
            ConnectorKey::HubSpot => {}
        }

        if errors.is_empty()
            && key == ConnectorKey::Verification
            && let Some(base) = &base_url
        {
            self.try_key(&http, key, base, &credentials, &mut errors)
                .await?;
        }
        errors.into_result()?;

        let now = self.0.clock.now();
        let connection = self
            .store_new(
                admin,
                NewConnection {
                    connector: key,
                    name: new.basics.name.as_str(),
                    environment,
                    scopes: &[],
                    external_account: None,
                    base_url: base_url.as_ref().map(Url::as_str),
                    access_expires_at: None,
                    credential_expires_at: Some(now + Duration::days(ROTATION_DAYS)),
                    created_by: &admin.user_id,
                },
                &credentials,
                json!({ "connector": key.as_str(), "environment": environment.as_str() }),
            )
            .await?;
        if let (Some(account), Some(link)) = (&sandbox_account, &self.0.sandbox)
            && let Err(e) = link
                .point_provider_webhooks(&http, account, &connection.id)
                .await
        {
            tracing::warn!(error = %e, "could not point the sandbox provider's webhooks at Ferry");
        }
        Ok(KeyConnected {
            id: connection.id,
            one_time_secret: (key == ConnectorKey::Webhook)
                .then_some(credentials.signing_secret)
                .flatten()
                .map(|s| s.expose().to_owned()),
        })
    }

    async fn try_key(
        &self,
        http: &ferry_connectors::HttpClient,
        key: ConnectorKey,
        base: &Url,
        credentials: &Credentials,
        errors: &mut FieldErrors,
    ) -> Result<(), Error> {
        let ctx = CallContext {
            connection_id: format!("new-{}", rand::random::<u64>()),
            base_url: base.clone(),
            credentials: credentials.clone(),
            http: http.clone(),
            limiter: ferry_connectors::RateLimiter::memory(),
            idempotency_key: None,
            log: Default::default(),
            rate_limit: None,
        };
        let connector = self
            .0
            .connections
            .registry()
            .get(key)
            .ok_or(Error::NotFound)?;
        match connector.test(&ctx).await {
            Ok(_) => {}
            Err(ConnectorError::Unauthorized(_)) => errors.push(FieldError::new(
                "api_key",
                "The provider refused this API key.",
            )),
            Err(e) => errors.push(FieldError::new(
                "base_url",
                format!("The provider could not be reached: {e}"),
            )),
        }
        Ok(())
    }

    /// Calls the connection's test action; the result is audited either way.
    pub async fn test(&self, admin: &Member, id: &ConnectionId) -> Result<TestOutcome, Error> {
        admin.require_admin()?;
        let outcome = match self.0.connections.test(&admin.tenant_id, id).await {
            Ok(message) => TestOutcome { ok: true, message },
            Err(ServiceError::Store(e)) => return Err(e.into()),
            Err(ServiceError::Connector(e)) => TestOutcome {
                ok: false,
                message: e.to_string(),
            },
        };
        audit::record(
            &self.0.db,
            &admin.actor(),
            AuditAction::ConnectionTested,
            Target("connection", id.as_str()),
            json!({ "ok": outcome.ok }),
            self.0.clock.now(),
        )
        .await?;
        Ok(outcome)
    }

    /// Revokes the grant at the remote side where it can be, and deletes
    /// the connection with its credentials.
    pub async fn revoke(
        &self,
        admin: &Member,
        id: &ConnectionId,
        confirmed: bool,
    ) -> Result<Revoked, Error> {
        admin.require_admin()?;
        let c = store::get(&self.0.db, &admin.tenant_id, id).await?;
        let live = self
            .used_by(admin, id)
            .await?
            .into_iter()
            .filter(|u| u.live)
            .count();
        if live > 0 && !confirmed {
            return Err(Error::field(
                "confirm",
                format!(
                    "{live} published workflow{} use{} this connection and will fail until it is replaced: tick the box to confirm.",
                    if live == 1 { "" } else { "s" },
                    if live == 1 { "s" } else { "" }
                ),
            ));
        }
        let remote = match self.0.connections.revoke_remote(&admin.tenant_id, id).await {
            Ok(remote) => remote,
            Err(ServiceError::Store(e)) => return Err(e.into()),
            Err(ServiceError::Connector(e)) => return Err(Error::Internal(e.into())),
        };
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        store::delete(&tx, &admin.tenant_id, id).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::ConnectionRevoked,
            Target("connection", id.as_str()),
            json!({ "connector": c.connector.as_str(), "remote_revoked": remote }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Revoked {
            name: c.name,
            remote,
        })
    }

    /// The portal of the tenant's sandbox HubSpot connection, if any.
    pub async fn sandbox_portal(&self, who: &Member) -> Result<Option<String>, Error> {
        Ok(store::list(&self.0.db, &who.tenant_id)
            .await?
            .into_iter()
            .find(|c| c.connector == ConnectorKey::HubSpot && c.environment == Environment::Sandbox)
            .and_then(|c| c.external_account))
    }

    /// Creates the sample contacts in the tenant's sandbox HubSpot portal,
    /// as a CRM user would; the portal's webhooks then start the published
    /// workflows. Returns how many were created.
    pub async fn create_samples(&self, admin: &Member) -> Result<usize, Error> {
        admin.require_admin()?;
        let Some(portal) = self.sandbox_portal(admin).await? else {
            return Err(Error::Conflict(
                "Connect HubSpot (sandbox) first: the sample contacts are created in its portal."
                    .into(),
            ));
        };
        let link = self
            .0
            .sandbox
            .as_ref()
            .ok_or_else(|| Error::Unavailable("The sandbox is off on this Ferry.".into()))?;
        let http = self.0.connections.http(Environment::Sandbox);
        let run = rand::random::<u16>();
        let mut created = 0;
        for (first, last, email) in crate::sandbox::SAMPLES {
            let email = email.replace('@', &format!(".{run}@"));
            let mut properties = json!({ "firstname": first, "email": email });
            if !last.is_empty() {
                properties["lastname"] = json!(last);
            }
            link.admin(
                http,
                reqwest::Method::POST,
                &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
                Some(&admin.tenant_id),
                json!({ "properties": properties }),
            )
            .await
            .map_err(|e| {
                Error::Unavailable(format!("The sandbox refused a sample contact: {e}"))
            })?;
            created += 1;
        }
        audit::record(
            &self.0.db,
            &admin.actor(),
            AuditAction::SandboxSamplesCreated,
            Target("portal", &portal),
            json!({ "contacts": created }),
            self.0.clock.now(),
        )
        .await?;
        Ok(created)
    }
}

/// A base URL must use the connector's scheme and pass the SSRF guard.
async fn check_base_url(
    http: &ferry_connectors::HttpClient,
    key: ConnectorKey,
    url: &Url,
    errors: &mut FieldErrors,
) {
    let smtp = key == ConnectorKey::Smtp;
    let scheme_ok = if smtp {
        matches!(url.scheme(), "smtp" | "smtps")
    } else {
        matches!(url.scheme(), "http" | "https")
    };
    if !scheme_ok {
        errors.push(FieldError::new(
            "base_url",
            if smtp {
                "Use smtp://host:port or smtps://host:port."
            } else {
                "Use an http:// or https:// URL."
            },
        ));
        return;
    }
    let checked = if smtp {
        let default_port = if url.scheme() == "smtps" { 465 } else { 587 };
        http.policy()
            .check_host(
                url.host_str().unwrap_or_default(),
                url.port().unwrap_or(default_port),
            )
            .await
    } else {
        http.policy().check_resolved(url).await
    };
    if let Err(e) = checked {
        errors.push(FieldError::new("base_url", e.to_string()));
    }
}
