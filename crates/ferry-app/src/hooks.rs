//! Inbound events, the machine door: verify the sender's signature, store
//! the event durably (once per dedupe key) with the runs it starts and the
//! waiting runs it resumes, and only then say it was accepted. There is no
//! session: the tenant comes from the connection a hook URL names or, for
//! HubSpot, from each event's `portalId`.

use crate::Parts;
use ferry_connectors::hubspot::verify_v3;
use ferry_connectors::webhook::{SignatureError, verify_standard_webhook};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{ConnectionId, Environment, EventId, RunId, Secret, TenantId, TenantStatus};
use ferry_engine::runs::{Source, correlation_key};
use ferry_store::StoreError;
use ferry_store::inbound::{NewEvent, Stored};
use ferry_store::runs::EchoKey;
use serde_json::Value;
use std::sync::Arc;

/// Inbound events.
#[derive(Clone)]
pub struct Hooks(pub(crate) Arc<Parts>);

/// Why an inbound request was refused. Doors answer with its status and
/// message (the message names the rule, never a value from the body).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// No such hook (unknown id, wrong kind of connection, an environment
    /// HubSpot is not configured for).
    #[error("no such webhook")]
    NotFound,
    /// The connection's tenant is suspended.
    #[error("this tenant is suspended")]
    Suspended,
    /// The signature does not verify.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The body is not what the sender's format says.
    #[error("{0}")]
    Malformed(&'static str),
    /// The event could not be stored: the sender should retry.
    #[error("the event could not be stored; retry later")]
    Store(#[from] StoreError),
}

/// The signed headers of a request, by name (lower case).
pub trait Headers {
    /// The header's value, or "" when absent or not text.
    fn get(&self, name: &str) -> &str;
}

/// One event accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The stored event (the first copy, for a repeat).
    pub event_id: EventId,
    /// Whether it was a repeat.
    pub duplicate: bool,
    /// Runs it started.
    pub runs: Vec<RunId>,
    /// Runs created skipped (the record was processed already).
    pub skipped: usize,
    /// Waiting runs it resumed.
    pub resumed: usize,
}

/// What became of a HubSpot batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch {
    /// New events stored.
    pub accepted: usize,
    /// Repeats.
    pub duplicates: usize,
    /// Events for a portal no connection has.
    pub unknown_portal: usize,
    /// Events for a suspended tenant's portal.
    pub tenant_suspended: usize,
}

/// Dedupe keys are per connection: the same id from two connections (two
/// apps, or one app's sandbox and production) is two events.
fn dedupe_key(connection: &ConnectionId, key: &str) -> String {
    format!("{connection}:{key}")
}

fn text_of(v: Option<&Value>) -> String {
    v.map(|p| {
        p.as_u64()
            .map_or_else(|| p.as_str().unwrap_or("").to_owned(), |n| n.to_string())
    })
    .unwrap_or_default()
}

impl Hooks {
    /// The tenant and signing secret of the connection a hook URL names.
    async fn target(
        &self,
        raw_id: &str,
        expected: ConnectorKey,
    ) -> Result<(TenantId, ConnectionId, Secret), HookError> {
        let id: ConnectionId = raw_id.parse().map_err(|_| HookError::NotFound)?;
        let t = match ferry_store::system::for_hook(&self.0.db, self.0.connections.vault(), &id)
            .await
        {
            Err(StoreError::NotFound) => return Err(HookError::NotFound),
            other => other?,
        };
        if t.connector != expected {
            return Err(HookError::NotFound);
        }
        if t.tenant_status == TenantStatus::Suspended {
            tracing::warn!(tenant_id = %t.tenant, "inbound request refused: tenant suspended");
            return Err(HookError::Suspended);
        }
        Ok((
            t.tenant,
            id,
            t.credentials
                .signing_secret
                .unwrap_or_else(|| Secret::from("")),
        ))
    }

    async fn store(
        &self,
        tenant: &TenantId,
        source: Source<'_>,
        event: NewEvent<'_>,
        correlation: Option<&str>,
        record_id: Option<&str>,
    ) -> Result<Accepted, HookError> {
        let i = self
            .0
            .engine
            .ingest(tenant, source, event, correlation, None, record_id)
            .await?;
        let (Stored::New(e) | Stored::Duplicate(e)) = &i.stored;
        Ok(Accepted {
            event_id: e.clone(),
            duplicate: matches!(i.stored, Stored::Duplicate(_)),
            runs: i.queued,
            skipped: i.skipped.len(),
            resumed: i.resumed.len(),
        })
    }

    /// A Standard Webhooks delivery to the webhook connection `id`.
    pub async fn webhook(
        &self,
        id: &str,
        headers: &dyn Headers,
        body: &[u8],
    ) -> Result<Accepted, HookError> {
        let (tenant, id, secret) = self.target(id, ConnectorKey::Webhook).await?;
        let webhook_id = headers.get("webhook-id");
        verify_standard_webhook(
            secret.expose(),
            webhook_id,
            headers.get("webhook-timestamp"),
            headers.get("webhook-signature"),
            body,
            self.0.clock.now().timestamp(),
        )?;
        let payload: Value = serde_json::from_slice(body)
            .map_err(|_| HookError::Malformed("the body is not JSON"))?;
        let event_type = payload
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("webhook.received")
            .to_owned();
        let record = payload.get("id").and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        });
        self.store(
            &tenant,
            Source {
                connector: ConnectorKey::Webhook,
                connection: &id,
            },
            NewEvent {
                connection_id: &id,
                source: "webhook",
                event_type: &event_type,
                dedupe_key: &dedupe_key(&id, &format!("webhook:{webhook_id}")),
                payload: &payload.to_string(),
            },
            None,
            record.as_deref(),
        )
        .await
    }

    /// The verification provider's result webhook to connection `id`:
    /// `X-Signature` is the hex HMAC-SHA256 of the body. The scheme has no
    /// timestamp, so a replay is caught by the dedupe key (check id and
    /// event type).
    pub async fn verification(
        &self,
        id: &str,
        headers: &dyn Headers,
        body: &[u8],
    ) -> Result<Accepted, HookError> {
        let (tenant, id, secret) = self.target(id, ConnectorKey::Verification).await?;
        ferry_connectors::verification::verify_result_signature(
            secret.expose(),
            body,
            headers.get("x-signature"),
        )?;
        let payload: Value = serde_json::from_slice(body)
            .map_err(|_| HookError::Malformed("the body is not JSON"))?;
        let (Some(kind), Some(check)) = (
            payload.get("type").and_then(Value::as_str),
            payload.pointer("/check/id").and_then(Value::as_str),
        ) else {
            return Err(HookError::Malformed(
                "the event needs a type and a check.id",
            ));
        };
        // A run waiting for this check's result meets the event on this key.
        let key = correlation_key(ConnectorKey::Verification, kind, check);
        self.store(
            &tenant,
            Source {
                connector: ConnectorKey::Verification,
                connection: &id,
            },
            NewEvent {
                connection_id: &id,
                source: "verification",
                event_type: kind,
                dedupe_key: &dedupe_key(&id, &format!("verification:{check}:{kind}")),
                payload: &payload.to_string(),
            },
            Some(&key),
            Some(check),
        )
        .await
    }

    /// HubSpot's batched, v3-signed webhooks for one environment: verified
    /// with that environment's app secret only, and its portals looked up
    /// among that environment's connections only, so a sandbox delivery can
    /// never start a run on a production connection (or the other way
    /// round), whatever the portal ids. `uri` is the path and query as
    /// received (HubSpot signs the full public URI).
    pub async fn hubspot(
        &self,
        environment: Environment,
        method: &str,
        uri: &str,
        headers: &dyn Headers,
        body: &[u8],
    ) -> Result<Batch, HookError> {
        let app = self
            .0
            .connections
            .hubspot(environment)
            .ok_or(HookError::NotFound)?;
        let secret = app.oauth.client_secret.clone();
        let full_uri = format!(
            "{}{uri}",
            self.0.links.public_url.as_str().trim_end_matches('/')
        );
        verify_v3(
            &[secret.expose()],
            method,
            &full_uri,
            body,
            headers.get("x-hubspot-request-timestamp"),
            headers.get("x-hubspot-signature-v3"),
            self.0.clock.now().timestamp_millis(),
        )?;
        let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(body) else {
            return Err(HookError::Malformed(
                "the body is not a JSON array of events",
            ));
        };
        let mut batch = Batch::default();
        for event in &events {
            let portal = text_of(event.get("portalId"));
            let (tenant, connection) = match ferry_store::system::hubspot_connection_for_portal(
                &self.0.db,
                environment,
                &portal,
            )
            .await?
            {
                Some((tenant, _, TenantStatus::Suspended)) => {
                    batch.tenant_suspended += 1;
                    tracing::warn!(tenant_id = %tenant, "HubSpot event refused: tenant suspended");
                    continue;
                }
                Some((tenant, connection, _)) => (tenant, connection),
                None => {
                    batch.unknown_portal += 1;
                    tracing::warn!(portal = %portal, "HubSpot event for an unknown portal refused");
                    continue;
                }
            };
            let event_id = event
                .get("eventId")
                .map(Value::to_string)
                .unwrap_or_default();
            let kind = event
                .get("subscriptionType")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let object = text_of(event.get("objectId"));
            let (property, value) = (
                event.get("propertyName").and_then(Value::as_str),
                event.get("propertyValue").and_then(Value::as_str),
            );
            // A property change that matches a value Ferry wrote is an echo.
            let echo: Option<EchoKey<'_>> = match (kind, property, value) {
                ("contact.propertyChange", Some(p), Some(v)) => Some((object.as_str(), p, v)),
                _ => None,
            };
            let stored = self
                .0
                .engine
                .ingest(
                    &tenant,
                    Source {
                        connector: ConnectorKey::HubSpot,
                        connection: &connection,
                    },
                    NewEvent {
                        connection_id: &connection,
                        source: "hubspot",
                        event_type: kind,
                        dedupe_key: &dedupe_key(
                            &connection,
                            &format!("hubspot:{portal}:{event_id}"),
                        ),
                        payload: &event.to_string(),
                    },
                    None,
                    echo,
                    (!object.is_empty()).then_some(object.as_str()),
                )
                .await?;
            match stored.stored {
                Stored::New(_) => batch.accepted += 1,
                Stored::Duplicate(_) => batch.duplicates += 1,
            }
        }
        Ok(batch)
    }
}
