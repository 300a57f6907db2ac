//! Inbound event endpoints. They verify the sender's signature, store the
//! event durably (once per dedupe key) together with the runs it starts and
//! the waiting runs it resumes, enqueue those, and only then answer 2xx. There is
//! no session here: the tenant comes from the connection named in the URL,
//! or, for HubSpot, from the event's `portalId`. Bodies over 64 KiB are
//! refused with 413 before any signature is computed.

use super::parse_id;
use crate::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ferry_connectors::hubspot::verify_v3;
use ferry_connectors::webhook::{SignatureError, verify_standard_webhook};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{ConnectionId, Environment, TenantId, TenantStatus};
use ferry_engine::runs::{Source, correlation_key};
use ferry_store::StoreError;
use ferry_store::inbound::{NewEvent, Stored};
use ferry_store::runs::EchoKey;
use serde_json::{Value, json};

fn answer(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

fn unauthorized(e: &SignatureError) -> HttpResponse {
    tracing::warn!(reason = %e, "inbound request refused: signature");
    answer(StatusCode::UNAUTHORIZED, &e.to_string())
}

fn internal(e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "inbound request could not be stored");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the event could not be stored; retry later",
    )
}

/// Dedupe keys are per connection: the same id from two connections (two
/// apps, or one app's sandbox and production) is two events.
fn dedupe_key(connection: &ConnectionId, key: &str) -> String {
    format!("{connection}:{key}")
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The tenant and the signing secret of the connection a hook URL names;
/// any refusal is the answer to send.
async fn hook_target(
    state: &AppState,
    raw_id: &str,
    expected: ConnectorKey,
) -> Result<(TenantId, ConnectionId, String), HttpResponse> {
    let Ok(id) = parse_id::<ConnectionId>(raw_id) else {
        return Err(answer(StatusCode::NOT_FOUND, "no such webhook"));
    };
    match ferry_store::system::for_hook(&state.db, state.connections.vault(), &id).await {
        Ok(t) if t.connector != expected => Err(answer(StatusCode::NOT_FOUND, "no such webhook")),
        Ok(t) if t.tenant_status == TenantStatus::Suspended => {
            tracing::warn!(tenant_id = %t.tenant, "inbound request refused: tenant suspended");
            Err(answer(StatusCode::FORBIDDEN, "this tenant is suspended"))
        }
        Ok(t) => Ok((
            t.tenant,
            id,
            t.credentials.signing_secret.unwrap_or_default(),
        )),
        Err(StoreError::NotFound) => Err(answer(StatusCode::NOT_FOUND, "no such webhook")),
        Err(e) => Err(internal(&e)),
    }
}

/// Stores the event once with its runs and answers 202 (saying whether it
/// was a repeat and what it started).
async fn store_and_answer(
    state: &AppState,
    tenant: &TenantId,
    source: Source<'_>,
    event: NewEvent<'_>,
    correlation: Option<&str>,
    record_id: Option<&str>,
) -> HttpResponse {
    match state
        .engine
        .ingest(tenant, source, event, correlation, None, record_id)
        .await
    {
        Ok(i) => {
            let (Stored::New(e) | Stored::Duplicate(e)) = &i.stored;
            HttpResponse::Accepted().json(json!({
                "status": "accepted",
                "event_id": e.as_str(),
                "duplicate": matches!(i.stored, Stored::Duplicate(_)),
                "runs": i.queued.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "skipped": i.skipped.len(),
                "resumed": i.resumed.len(),
            }))
        }
        Err(e) => internal(&e),
    }
}

/// POST /hooks/webhook/{connection}: Standard Webhooks.
pub async fn generic(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (tenant, id, secret) = match hook_target(&state, &id, ConnectorKey::Webhook).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    let webhook_id = header(&req, "webhook-id");
    if let Err(e) = verify_standard_webhook(
        &secret,
        webhook_id,
        header(&req, "webhook-timestamp"),
        header(&req, "webhook-signature"),
        &body,
        state.clock.now().timestamp(),
    ) {
        return unauthorized(&e);
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let event_type = payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("webhook.received")
        .to_owned();
    let event = NewEvent {
        connection_id: &id,
        source: "webhook",
        event_type: &event_type,
        dedupe_key: &dedupe_key(&id, &format!("webhook:{webhook_id}")),
        payload: &payload.to_string(),
    };
    let source = Source {
        connector: ConnectorKey::Webhook,
        connection: &id,
    };
    let record = payload.get("id").and_then(|v| {
        v.as_str()
            .map(str::to_owned)
            .or_else(|| v.as_u64().map(|n| n.to_string()))
    });
    store_and_answer(&state, &tenant, source, event, None, record.as_deref()).await
}

/// POST /hooks/verification/{connection}: the provider's result webhooks,
/// `X-Signature` = hex HMAC-SHA256 of the body. The scheme has no timestamp,
/// so a replay is caught by the dedupe key (check id and event type).
pub async fn verification(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (tenant, id, secret) = match hook_target(&state, &id, ConnectorKey::Verification).await {
        Ok(t) => t,
        Err(refusal) => return refusal,
    };
    if let Err(e) = ferry_connectors::verification::verify_result_signature(
        &secret,
        &body,
        header(&req, "x-signature"),
    ) {
        return unauthorized(&e);
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let (Some(kind), Some(check)) = (
        payload.get("type").and_then(Value::as_str),
        payload.pointer("/check/id").and_then(Value::as_str),
    ) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "the event needs a type and a check.id",
        );
    };
    let event = NewEvent {
        connection_id: &id,
        source: "verification",
        event_type: kind,
        dedupe_key: &dedupe_key(&id, &format!("verification:{check}:{kind}")),
        payload: &payload.to_string(),
    };
    let source = Source {
        connector: ConnectorKey::Verification,
        connection: &id,
    };
    // A run waiting for this check's result meets the event on this key.
    let key = correlation_key(ConnectorKey::Verification, kind, check);
    store_and_answer(&state, &tenant, source, event, Some(&key), Some(check)).await
}

/// POST /hooks/hubspot: production HubSpot's batched, v3-signed webhooks.
pub async fn hubspot(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    hubspot_in(&state, &req, &body, Environment::Production).await
}

/// POST /hooks/hubspot/sandbox: the HubSpot simulator's webhooks.
pub async fn hubspot_sandbox(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    hubspot_in(&state, &req, &body, Environment::Sandbox).await
}

/// One environment at a time: a delivery is verified with that
/// environment's app secret only, and its portals are looked up among that
/// environment's connections only, so a sandbox delivery can never start a
/// run on a production connection (or the other way round), whatever the
/// portal ids.
async fn hubspot_in(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    environment: Environment,
) -> HttpResponse {
    let Some(app) = state.connections.hubspot(environment) else {
        return answer(StatusCode::NOT_FOUND, "no such webhook");
    };
    let secret = app.oauth.client_secret.clone();
    let secrets = [secret.as_str()];
    let uri = format!(
        "{}{}",
        state.config.public_url.as_str().trim_end_matches('/'),
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    if let Err(e) = verify_v3(
        &secrets,
        req.method().as_str(),
        &uri,
        body,
        header(req, "x-hubspot-request-timestamp"),
        header(req, "x-hubspot-signature-v3"),
        state.clock.now().timestamp_millis(),
    ) {
        return unauthorized(&e);
    }
    let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "the body is not a JSON array of events",
        );
    };
    let (mut accepted, mut duplicates, mut unknown, mut suspended) = (0, 0, 0, 0);
    for event in &events {
        let portal = event
            .get("portalId")
            .map(|p| {
                p.as_u64()
                    .map_or_else(|| p.as_str().unwrap_or("").to_owned(), |n| n.to_string())
            })
            .unwrap_or_default();
        let (tenant, connection) = match ferry_store::system::hubspot_connection_for_portal(
            &state.db,
            environment,
            &portal,
        )
        .await
        {
            Ok(Some((tenant, _, TenantStatus::Suspended))) => {
                suspended += 1;
                tracing::warn!(tenant_id = %tenant, "HubSpot event refused: tenant suspended");
                continue;
            }
            Ok(Some((tenant, connection, _))) => (tenant, connection),
            Ok(None) => {
                unknown += 1;
                tracing::warn!(portal = %portal, "HubSpot event for an unknown portal refused");
                continue;
            }
            Err(e) => return internal(&e),
        };
        let event_id = event
            .get("eventId")
            .map(Value::to_string)
            .unwrap_or_default();
        let kind = event
            .get("subscriptionType")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let object = event
            .get("objectId")
            .map(|p| {
                p.as_u64()
                    .map_or_else(|| p.as_str().unwrap_or("").to_owned(), |n| n.to_string())
            })
            .unwrap_or_default();
        let (property, value) = (
            event.get("propertyName").and_then(Value::as_str),
            event.get("propertyValue").and_then(Value::as_str),
        );
        // A property change that matches a value Ferry wrote is an echo.
        let echo: Option<EchoKey<'_>> = match (kind, property, value) {
            ("contact.propertyChange", Some(p), Some(v)) => Some((object.as_str(), p, v)),
            _ => None,
        };
        let stored = state
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
                    dedupe_key: &dedupe_key(&connection, &format!("hubspot:{portal}:{event_id}")),
                    payload: &event.to_string(),
                },
                None,
                echo,
                (!object.is_empty()).then_some(object.as_str()),
            )
            .await
            .map(|i| i.stored);
        match stored {
            Ok(Stored::New(_)) => accepted += 1,
            Ok(Stored::Duplicate(_)) => duplicates += 1,
            Err(e) => return internal(&e),
        }
    }
    let summary = json!({ "accepted": accepted, "duplicates": duplicates, "unknown_portal": unknown, "tenant_suspended": suspended });
    if accepted + duplicates > 0 {
        HttpResponse::Ok().json(summary)
    } else if suspended > 0 {
        HttpResponse::Forbidden().json(summary)
    } else if unknown > 0 {
        HttpResponse::NotFound().json(summary)
    } else {
        HttpResponse::Ok().json(summary)
    }
}
