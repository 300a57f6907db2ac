//! Small helpers shared by the simulators.

use actix_web::HttpResponse;
use serde_json::json;

/// A refusal already written in the simulator's wire format (HubSpot's or
/// the provider's error JSON, or a plain page): a handler returns it with
/// `?` from any step that answers `Result<_, HttpResponse>`.
pub struct Refusal(actix_web::error::InternalError<&'static str>);

impl From<HttpResponse> for Refusal {
    fn from(response: HttpResponse) -> Self {
        Self(actix_web::error::InternalError::from_response(
            "refused", response,
        ))
    }
}

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Refusal")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl actix_web::ResponseError for Refusal {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.0.error_response()
    }
}

/// What a simulator handler answers: a response, or a refusal.
pub type Answer = Result<HttpResponse, Refusal>;

/// A random id of `n` hex characters.
pub fn random_hex(n: usize) -> String {
    let mut s = String::with_capacity(n + 32);
    while s.len() < n {
        s.push_str(&format!("{:032x}", rand::random::<u128>()));
    }
    s.truncate(n);
    s
}

/// Delivery attempts a simulator keeps for its admin API (the oldest go
/// first).
pub const MAX_DELIVERIES_KEPT: usize = 1000;

/// POSTs a webhook body through the guarded client: the status it got (0
/// when the target did not answer), or `None` when the network policy
/// refused the URL (a delivery not worth retrying).
pub async fn post_webhook(
    http: &ferry_connectors::HttpClient,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Option<u16> {
    let target = url::Url::parse(url).ok()?;
    let mut request = http
        .request(reqwest::Method::POST, &target)
        .ok()?
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    Some(match request.body(body).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    })
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

/// Records every route as it is mounted (or only lists them), so a test can
/// enumerate the simulators' routes and give each an access decision.
pub struct Routes<'a> {
    cfg: Option<&'a mut actix_web::web::ServiceConfig>,
    /// (method, path) in mounting order.
    pub seen: Vec<(&'static str, &'static str)>,
}

macro_rules! method {
    ($name:ident, $method:literal, $route:path) => {
        /// Mounts a handler for this method.
        pub fn $name<F, Args>(&mut self, path: &'static str, handler: F)
        where
            F: actix_web::Handler<Args>,
            Args: actix_web::FromRequest + 'static,
            F::Output: actix_web::Responder + 'static,
        {
            self.seen.push(($method, path));
            if let Some(cfg) = self.cfg.as_deref_mut() {
                cfg.route(path, $route().to(handler));
            }
        }
    };
}

impl<'a> Routes<'a> {
    /// Mounts into `cfg`.
    pub fn mounting(cfg: &'a mut actix_web::web::ServiceConfig) -> Self {
        Self {
            cfg: Some(cfg),
            seen: Vec::new(),
        }
    }

    /// Only lists.
    pub fn listing() -> Self {
        Self {
            cfg: None,
            seen: Vec::new(),
        }
    }

    method!(get, "GET", actix_web::web::get);
    method!(post, "POST", actix_web::web::post);
    method!(put, "PUT", actix_web::web::put);
    method!(patch, "PATCH", actix_web::web::patch);
    method!(delete, "DELETE", actix_web::web::delete);
}
