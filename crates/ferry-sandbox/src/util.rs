//! Small helpers shared by the simulators.

use actix_web::HttpResponse;
use serde_json::json;

/// A random id of `n` hex characters.
pub fn random_hex(n: usize) -> String {
    let mut s = String::with_capacity(n + 32);
    while s.len() < n {
        s.push_str(&format!("{:032x}", rand::random::<u128>()));
    }
    s.truncate(n);
    s
}

/// HubSpot's error body.
pub fn hubspot_error(
    status: actix_web::http::StatusCode,
    category: &str,
    message: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "status": "error",
        "message": message,
        "correlationId": format!("{}-{}-{}", random_hex(8), random_hex(4), random_hex(12)),
        "category": category,
    }))
}
