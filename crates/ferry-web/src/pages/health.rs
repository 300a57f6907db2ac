//! Liveness and readiness.

use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use std::time::Duration;

/// GET /healthz: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// GET /readyz: the database and the queue answer; otherwise 503 naming
/// what does not.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = match tokio::time::timeout(Duration::from_secs(3), state.db.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    // The queue backend in use, asked through the engine.
    let jobs = state.engine.queue();
    let queue = jobs.ping().await.map(|()| jobs.kind());
    let mut failing = Vec::new();
    if let Err(e) = &database {
        tracing::warn!(error = %e, "readiness: database unreachable");
        failing.push("database");
    }
    if let Err(e) = &queue {
        tracing::warn!(error = %e, "readiness: queue unreachable");
        failing.push("queue");
    }
    let body = json!({
        "status": if failing.is_empty() { "ready" } else { "not ready" },
        "checks": {
            "database": if database.is_ok() { "ok" } else { "unreachable" },
            "queue": match &queue { Ok(kind) => format!("ok ({kind})"), Err(_) => "unreachable".to_owned() },
        },
        "failing": failing,
    });
    if failing.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
