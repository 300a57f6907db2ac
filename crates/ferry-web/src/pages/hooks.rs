//! Inbound event endpoints: each hands the request to the hooks service and
//! answers in JSON. The service verifies the signature and stores the event
//! (with its runs) before anything is answered 2xx. Bodies over 64 KiB are
//! refused with 413 before any signature is computed.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use ferry_app::hooks::{Accepted, Headers};
use ferry_core::Environment;
use serde_json::json;

/// A request's headers, as the hooks service reads them.
struct RequestHeaders<'a>(&'a HttpRequest);

impl Headers for RequestHeaders<'_> {
    fn get(&self, name: &str) -> &str {
        self.0
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn accepted(a: &Accepted) -> HttpResponse {
    HttpResponse::Accepted().json(json!({
        "status": "accepted",
        "event_id": a.event_id.as_str(),
        "duplicate": a.duplicate,
        "runs": a.runs.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "skipped": a.skipped,
        "resumed": a.resumed,
    }))
}

/// POST /hooks/webhook/{connection}: Standard Webhooks.
pub async fn generic(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let a = state
        .services
        .hooks
        .webhook(&id, &RequestHeaders(&req), &body)
        .await?;
    Ok(accepted(&a))
}

/// POST /hooks/verification/{connection}: the provider's result webhooks.
pub async fn verification(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let a = state
        .services
        .hooks
        .verification(&id, &RequestHeaders(&req), &body)
        .await?;
    Ok(accepted(&a))
}

/// POST /hooks/hubspot: production HubSpot's batched, v3-signed webhooks.
pub async fn hubspot(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    hubspot_in(&state, &req, &body, Environment::Production).await
}

/// POST /hooks/hubspot/sandbox: the HubSpot simulator's webhooks.
pub async fn hubspot_sandbox(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    hubspot_in(&state, &req, &body, Environment::Sandbox).await
}

async fn hubspot_in(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
    environment: Environment,
) -> Result<HttpResponse, ApiError> {
    let uri = req.uri().path_and_query().map_or("", |p| p.as_str());
    let b = state
        .services
        .hooks
        .hubspot(
            environment,
            req.method().as_str(),
            uri,
            &RequestHeaders(req),
            body,
        )
        .await?;
    let summary = json!({ "accepted": b.accepted, "duplicates": b.duplicates, "unknown_portal": b.unknown_portal, "tenant_suspended": b.tenant_suspended });
    Ok(if b.accepted + b.duplicates > 0 {
        HttpResponse::Ok().json(summary)
    } else if b.tenant_suspended > 0 {
        HttpResponse::Forbidden().json(summary)
    } else if b.unknown_portal > 0 {
        HttpResponse::NotFound().json(summary)
    } else {
        HttpResponse::Ok().json(summary)
    })
}
