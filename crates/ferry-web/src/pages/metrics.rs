//! `/metrics` for Prometheus, and the middleware that times every request
//! for it. The endpoint is served only when `FERRY_METRICS_TOKEN` is set,
//! and only to a scraper that sends it as a bearer token: anyone else gets
//! a 404, as for a page that does not exist. Labels hold no tenant or record
//! ids: route patterns, statuses, connector names.

use crate::error::AppError;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use ferry_engine::metrics::{StateLabel, StatusLabel};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// GET /metrics
pub async fn scrape(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let Some(token) = &state.config.metrics_token else {
        return Err(AppError::NotFound);
    };
    let sent = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Digests of equal length: the comparison says nothing of the token's.
    let (sent, expected) = (
        Sha256::digest(sent.as_bytes()),
        Sha256::digest(token.expose_secret().as_bytes()),
    );
    if !bool::from(sent.as_slice().ct_eq(expected.as_slice())) {
        return Err(AppError::NotFound);
    }
    let telemetry = state.engine.metrics().telemetry();
    let now = state.clock.now();
    let states = ferry_store::system::open_runs(&state.db, now)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let of = |k: &str| states.iter().find(|(l, _)| *l == k).map_or(0, |(_, n)| *n);
    let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    for (label, n) in &states {
        telemetry
            .jobs
            .get_or_create(&StateLabel { state: label })
            .set(gauge(*n));
    }
    for (status, n) in [
        ("queued", of("due") + of("scheduled")),
        ("running", of("held")),
        ("waiting", of("parked")),
    ] {
        telemetry
            .runs_open
            .get_or_create(&StatusLabel { status })
            .set(gauge(n));
    }
    let firing = ferry_store::alerts::firing_count(&state.db)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    telemetry
        .alerts_firing
        .set(i64::try_from(firing).unwrap_or(i64::MAX));
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(telemetry.encode()))
}

/// Times every request for `ferry_http_request_duration_seconds`, labelled
/// by method, route pattern (never the path, which holds ids) and status
/// class.
pub async fn timing(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let recorder = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.engine.metrics().clone());
    let res = next.call(req).await?;
    if let Some(recorder) = recorder {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        recorder.http_request(
            method,
            &route,
            res.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}
