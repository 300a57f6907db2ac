//! The CRM API's gate: bearer token, scopes, fault knobs and HubSpot's
//! rolling rate limits with its headers and 429 body.

use super::*;

pub(super) struct Granted {
    pub(super) portal: u64,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) source_app: u64,
}

pub(super) fn with_headers(
    mut res: HttpResponse,
    headers: &[(&'static str, String)],
) -> HttpResponse {
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            actix_web::http::header::HeaderName::from_bytes(k.as_bytes()),
            actix_web::http::header::HeaderValue::from_str(v),
        ) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}

/// Authenticates, applies faults and rate limits; on success returns the
/// portal and the rate-limit headers to add.
pub(super) async fn guard(
    sim: &HubSpotSim,
    req: &HttpRequest,
    scope: &str,
    search: bool,
) -> Result<Granted, HttpResponse> {
    let token = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    let (portal, faults, source_app) = {
        let mut state = sim.lock();
        let Some(grant) = token.as_deref().and_then(|t| state.access.get(t)).cloned() else {
            return Err(hubspot_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found.",
            ));
        };
        if grant.expires_at <= Instant::now() {
            return Err(hubspot_error(
                StatusCode::UNAUTHORIZED,
                "EXPIRED_AUTHENTICATION",
                "The OAuth token used to make this call expired.",
            ));
        }
        let needed_ok = grant.scopes.iter().any(|s| s == scope)
            || (scope == READ_SCOPE && grant.scopes.iter().any(|s| s == WRITE_SCOPE));
        if !needed_ok {
            return Err(hubspot_error(
                StatusCode::FORBIDDEN,
                "MISSING_SCOPES",
                &format!(
                    "This app hasn't been granted all required scopes to make this call. Required: {scope}"
                ),
            ));
        }
        let faults = state
            .portals
            .get_mut(&grant.portal)
            .map(|p| {
                let mut seen = p.faults.clone();
                let applies = p
                    .faults
                    .fail_path
                    .as_deref()
                    .is_none_or(|f| req.path().contains(f));
                if applies {
                    p.faults.fail_next = p.faults.fail_next.saturating_sub(1);
                } else {
                    seen.fail_next = 0;
                }
                seen
            })
            .unwrap_or_default();
        let app = state.apps.get(&grant.client_id).map_or(0, |a| a.app_id);
        (grant.portal, faults, app)
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.fail_next > 0 {
        return Err(hubspot_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal error (a passing outage forced by the sandbox)",
        ));
    }
    match faults.force.as_deref() {
        Some("timeout") => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Err(hubspot_error(
                StatusCode::GATEWAY_TIMEOUT,
                "TIMEOUT",
                "timed out",
            ));
        }
        Some("500-writes") if scope == WRITE_SCOPE => {
            return Err(hubspot_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Internal error on writes (forced by the sandbox)",
            ));
        }
        Some("500") => {
            return Err(hubspot_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Internal error (forced by the sandbox)",
            ));
        }
        Some("429") => return Err(rate_limited("TEN_SECONDLY_ROLLING", 0, Some(1))),
        _ => {}
    }
    if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
        return Err(hubspot_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal error (sandbox error rate)",
        ));
    }
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&portal) else {
        return Err(hubspot_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "portal not found",
        ));
    };
    let now = Instant::now();
    while p
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(10))
    {
        p.window.pop_front();
    }
    while p
        .search_window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        p.search_window.pop_front();
    }
    if p.faults.unlimited {
        p.accepted += 1;
        return Ok(Granted {
            portal,
            source_app,
            headers: Vec::new(),
        });
    }
    if p.window.len() >= TEN_SECONDLY_MAX {
        p.rejected_429 += 1;
        let wait = p
            .window
            .front()
            .map_or(10, |t| 10 - now.duration_since(*t).as_secs().min(9));
        return Err(rate_limited("TEN_SECONDLY_ROLLING", 0, Some(wait)));
    }
    if search && p.search_window.len() >= SEARCH_SECONDLY_MAX {
        p.rejected_429 += 1;
        return Err(rate_limited("SECONDLY", p.window.len(), Some(1)));
    }
    p.window.push_back(now);
    if search {
        p.search_window.push_back(now);
    }
    p.accepted += 1;
    p.max_in_window = p.max_in_window.max(p.window.len());
    let remaining = TEN_SECONDLY_MAX - p.window.len();
    Ok(Granted {
        portal,
        source_app,
        headers: vec![
            ("X-HubSpot-RateLimit-Max", TEN_SECONDLY_MAX.to_string()),
            ("X-HubSpot-RateLimit-Remaining", remaining.to_string()),
            ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000".into()),
            ("X-HubSpot-RateLimit-Secondly", "10".into()),
            ("X-HubSpot-RateLimit-Secondly-Remaining", "10".into()),
        ],
    })
}

pub(super) fn rate_limited(policy: &str, _used: usize, retry_after: Option<u64>) -> HttpResponse {
    let mut res = HttpResponse::TooManyRequests();
    res.insert_header(("X-HubSpot-RateLimit-Max", TEN_SECONDLY_MAX.to_string()))
        .insert_header(("X-HubSpot-RateLimit-Remaining", "0"))
        .insert_header(("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"));
    if let Some(secs) = retry_after {
        res.insert_header(("Retry-After", secs.max(1).to_string()));
    }
    res.json(json!({
        "status": "error",
        "message": format!("You have reached your {} limit.", policy.to_lowercase()),
        "errorType": "RATE_LIMIT",
        "correlationId": random_hex(32),
        "policyName": policy,
        "groupName": "publicapi:oauth",
    }))
}
