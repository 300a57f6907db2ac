//! The identity-verification provider simulator, modelled on the common
//! shape of KYC APIs (Onfido, Veriff, Stripe Identity).
//!
//! - `POST /v1/checks` (header `Authorization: Token token=<key>`, optional
//!   `Idempotency-Key`): the same key with the same body returns the same
//!   check; the same key with another body is 422.
//! - `GET /v1/checks/{id}`: the polling fallback.
//! - After the account's delay, the result is POSTed to the account's webhook
//!   URL as `{"type":"check.completed","check":{"id","status":"complete",
//!   "result"}}`, signed: `X-Signature` = hex HMAC-SHA256(webhook secret, body).
//!
//! Outcome rules: a last name or email containing `consider` gives
//! `consider`, one containing `reject` gives `rejected`; one containing
//! `pending` never completes; anything else is `clear`.

use crate::access::{Caller, MAX_PER_OWNER};
use crate::util::{Answer, random_hex};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use ferry_connectors::HttpClient;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Checks one sandbox account holds (the simulator lives in memory).
const MAX_CHECKS_PER_ACCOUNT: usize = 10_000;

/// hex(HMAC-SHA256(secret, body)), the `X-Signature` of result webhooks.
pub fn sign_result(secret: &str, body: &[u8]) -> String {
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Faults injected into an account's API calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Share of calls answered 500 at random.
    pub error_rate: f64,
    /// Added to every call.
    pub latency_ms: u64,
    /// Answer every call with "429", "500" or "timeout".
    pub force: Option<String>,
}

/// An account's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AccountSettings {
    /// Where results are POSTed.
    pub webhook_url: Option<String>,
    /// How long a check takes.
    pub delay_ms: u64,
    /// Faults.
    pub faults: Faults,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            webhook_url: None,
            delay_ms: 1500,
            faults: Faults::default(),
        }
    }
}

#[derive(Clone, Serialize)]
struct Check {
    id: String,
    status: String,
    result: Option<String>,
    reference: Option<String>,
    created_at: String,
    completed_at: Option<String>,
}

struct Account {
    id: String,
    /// The tenant that created it (shared sandbox), if any.
    owner: Option<String>,
    api_key: String,
    webhook_secret: String,
    settings: AccountSettings,
    checks: BTreeMap<String, Check>,
    idempotency: HashMap<String, (String, String)>,
    created_requests: u64,
    /// Authenticated requests received (counted on arrival, before any
    /// simulated latency), so a test can tell a call is in flight.
    received: u64,
    deliveries: Vec<(u32, u16)>,
}

#[derive(Default)]
struct State {
    accounts: Vec<Account>,
}

/// The simulator. Cheap to clone.
#[derive(Clone)]
pub struct VerifySim {
    state: Arc<Mutex<State>>,
    http: HttpClient,
}

impl VerifySim {
    /// An empty simulator whose result webhooks go out through `http` (the
    /// guarded client). Its admin API is decided by the access layer.
    pub fn new(http: HttpClient) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            http,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates an account; returns (account id, API key, webhook secret).
    pub fn create_account(&self, settings: AccountSettings) -> (String, String, String) {
        self.create_owned(settings, None)
    }

    fn create_owned(
        &self,
        settings: AccountSettings,
        owner: Option<String>,
    ) -> (String, String, String) {
        let account = Account {
            owner,
            id: format!("acc_{}", random_hex(16)),
            api_key: format!("sk_sandbox_{}", random_hex(40)),
            webhook_secret: format!("whsec_{}", random_hex(40)),
            settings,
            checks: BTreeMap::new(),
            idempotency: HashMap::new(),
            created_requests: 0,
            received: 0,
            deliveries: Vec::new(),
        };
        let out = (
            account.id.clone(),
            account.api_key.clone(),
            account.webhook_secret.clone(),
        );
        self.lock().accounts.push(account);
        out
    }

    async fn complete_later(self, account_id: String, check_id: String, result: String) {
        let (delay, url, secret) = {
            let state = self.lock();
            let Some(a) = state.accounts.iter().find(|a| a.id == account_id) else {
                return;
            };
            (
                a.settings.delay_ms,
                a.settings.webhook_url.clone(),
                a.webhook_secret.clone(),
            )
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let check = {
            let mut state = self.lock();
            let Some(a) = state.accounts.iter_mut().find(|a| a.id == account_id) else {
                return;
            };
            let Some(c) = a.checks.get_mut(&check_id) else {
                return;
            };
            c.status = "complete".into();
            c.result = Some(result);
            c.completed_at = Some(now());
            c.clone()
        };
        let Some(url) = url else { return };
        let body = serde_json::to_vec(&json!({
            "type": "check.completed",
            "account_id": account_id,
            "check": { "id": check.id, "status": check.status, "result": check.result, "reference": check.reference },
        }))
        .unwrap_or_default();
        let signature = sign_result(&secret, &body);
        for attempt in 1..=5u32 {
            let outcome = crate::util::post_webhook(
                &self.http,
                &url,
                &[("X-Signature", signature.clone())],
                body.clone(),
            )
            .await;
            let refused = outcome.is_none();
            let status = outcome.unwrap_or(0);
            if let Some(a) = self.lock().accounts.iter_mut().find(|a| a.id == account_id) {
                if a.deliveries.len() >= crate::util::MAX_DELIVERIES_KEPT {
                    a.deliveries.remove(0);
                }
                a.deliveries.push((attempt, status));
            }
            // A URL the network policy refuses is not retried.
            if refused || (200..300).contains(&status) || (400..500).contains(&status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500 * (1 << attempt))).await;
        }
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn error(status: actix_web::http::StatusCode, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": { "type": kind, "message": message } }))
}

/// Routes, relative to `/sandbox/verify`.
pub fn routes(cfg: &mut web::ServiceConfig, sim: VerifySim) {
    cfg.app_data(web::Data::new(sim)).app_data(
        web::JsonConfig::default()
            .limit(1 << 20)
            .error_handler(|err, _| {
                let message = format!("Invalid JSON: {err}");
                actix_web::error::InternalError::from_response(
                    err,
                    error(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "invalid_request",
                        &message,
                    ),
                )
                .into()
            }),
    );
    register(&mut crate::util::Routes::mounting(cfg));
}

/// Every (method, path) this simulator serves, relative to `/sandbox/verify`.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    let mut r = crate::util::Routes::listing();
    register(&mut r);
    r.seen
}

fn register(r: &mut crate::util::Routes<'_>) {
    r.post("/v1/checks", create_check);
    r.get("/v1/checks/{id}", get_check);
    r.get("/v1/account", account);
    r.post("/admin/accounts", admin_create);
    r.get("/admin/accounts", admin_list);
    r.put("/admin/accounts/{id}", admin_update);
    r.get("/admin/accounts/{id}", admin_get);
}

/// Authenticates and applies faults; returns the account id.
async fn authenticate(sim: &VerifySim, req: &HttpRequest) -> Result<String, HttpResponse> {
    let key = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Token token="))
        .map(|v| v.trim_matches('"').to_owned());
    let (id, faults) = {
        let mut state = sim.lock();
        let Some(a) = key.and_then(|k| state.accounts.iter_mut().find(|a| a.api_key == k)) else {
            return Err(error(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "authorization_error",
                "Invalid or missing API token",
            ));
        };
        a.received += 1;
        (a.id.clone(), a.settings.faults.clone())
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    match faults.force.as_deref() {
        Some("timeout") => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Err(error(
                actix_web::http::StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "timed out",
            ));
        }
        Some("500") => {
            return Err(error(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal error (forced by the sandbox)",
            ));
        }
        Some("429") => {
            return Err(HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", "2"))
                .json(
                    json!({ "error": { "type": "rate_limit", "message": "Too many requests" } }),
                ));
        }
        _ => {}
    }
    if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
        return Err(error(
            actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error (sandbox error rate)",
        ));
    }
    Ok(id)
}

fn outcome(body: &Value) -> Option<&'static str> {
    let text = format!(
        "{} {}",
        body["last_name"].as_str().unwrap_or_default(),
        body["email"].as_str().unwrap_or_default()
    )
    .to_lowercase();
    if text.contains("pending") {
        None
    } else if text.contains("consider") {
        Some("consider")
    } else if text.contains("reject") {
        Some("rejected")
    } else {
        Some("clear")
    }
}

async fn create_check(
    sim: web::Data<VerifySim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let account_id = authenticate(&sim, &req).await?;
    let mut missing = serde_json::Map::new();
    for f in ["first_name", "last_name", "email"] {
        if body[f].as_str().is_none_or(|s| s.trim().is_empty()) {
            missing.insert(f.into(), json!(["can't be blank"]));
        }
    }
    if !missing.is_empty() {
        return Ok(HttpResponse::UnprocessableEntity().json(json!({ "error": { "type": "validation_error", "message": "There was a validation error on this request", "fields": missing } })));
    }
    let fingerprint = hex::encode(Sha256::digest(body.to_string().as_bytes()));
    let idempotency_key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (check, schedule) = {
        let mut state = sim.lock();
        let Some(a) = state.accounts.iter_mut().find(|a| a.id == account_id) else {
            return Ok(error(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "authorization_error",
                "account vanished",
            ));
        };
        a.created_requests += 1;
        if let Some(key) = &idempotency_key
            && let Some((seen, id)) = a.idempotency.get(key)
        {
            if seen != &fingerprint {
                return Ok(HttpResponse::UnprocessableEntity().json(json!({ "error": { "type": "idempotency_error", "message": "This Idempotency-Key was used with a different request body" } })));
            }
            if let Some(c) = a.checks.get(id) {
                return Ok(HttpResponse::Ok()
                    .insert_header(("Idempotent-Replayed", "true"))
                    .json(check_json(c)));
            }
        }
        if a.checks.len() >= MAX_CHECKS_PER_ACCOUNT {
            return Ok(error(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "limit_reached",
                &format!("A sandbox account holds at most {MAX_CHECKS_PER_ACCOUNT} checks."),
            ));
        }
        let check = Check {
            id: format!("chk_{}", random_hex(24)),
            status: "in_progress".into(),
            result: None,
            reference: body["reference"].as_str().map(str::to_owned),
            created_at: now(),
            completed_at: None,
        };
        a.checks.insert(check.id.clone(), check.clone());
        if let Some(key) = idempotency_key {
            a.idempotency.insert(key, (fingerprint, check.id.clone()));
        }
        (check, outcome(&body))
    };
    Ok({
        if let Some(result) = schedule {
            let sim = sim.get_ref().clone();
            tokio::spawn(sim.complete_later(account_id, check.id.clone(), result.to_owned()));
        }
        HttpResponse::Created().json(check_json(&check))
    })
}

fn check_json(c: &Check) -> Value {
    json!({
        "id": c.id,
        "status": c.status,
        "result": c.result,
        "reference": c.reference,
        "created_at": c.created_at,
        "completed_at": c.completed_at,
    })
}

async fn get_check(sim: web::Data<VerifySim>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let account_id = authenticate(&sim, &req).await?;
    let state = sim.lock();
    Ok({
        match state
            .accounts
            .iter()
            .find(|a| a.id == account_id)
            .and_then(|a| a.checks.get(id.as_str()))
        {
            Some(c) => HttpResponse::Ok().json(check_json(c)),
            None => error(
                actix_web::http::StatusCode::NOT_FOUND,
                "resource_not_found",
                "No such check",
            ),
        }
    })
}

async fn account(sim: web::Data<VerifySim>, req: HttpRequest) -> HttpResponse {
    match authenticate(&sim, &req).await {
        Ok(id) => HttpResponse::Ok()
            .json(json!({ "id": id, "name": "Sandbox account", "environment": "sandbox" })),
        Err(r) => r,
    }
}

fn no_account() -> HttpResponse {
    error(
        actix_web::http::StatusCode::NOT_FOUND,
        "resource_not_found",
        "No such account",
    )
}

async fn admin_create(
    sim: web::Data<VerifySim>,
    caller: Caller,
    body: Option<web::Json<AccountSettings>>,
) -> HttpResponse {
    let owner = caller.owner();
    if owner.is_some()
        && sim
            .lock()
            .accounts
            .iter()
            .filter(|a| a.owner == owner)
            .count()
            >= MAX_PER_OWNER
    {
        return error(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "limit_reached",
            &format!("A tenant may create at most {MAX_PER_OWNER} sandbox accounts."),
        );
    }
    let settings = body.map(web::Json::into_inner).unwrap_or_default();
    let (id, key, secret) = sim.create_owned(settings, owner);
    HttpResponse::Created()
        .json(json!({ "account_id": id, "api_key": key, "webhook_secret": secret }))
}

fn visible<'a>(accounts: &'a mut [Account], caller: &Caller, id: &str) -> Option<&'a mut Account> {
    accounts
        .iter_mut()
        .find(|a| a.id == id && caller.can_see(a.owner.as_deref()))
}

async fn admin_update(
    sim: web::Data<VerifySim>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<AccountSettings>,
) -> HttpResponse {
    let mut state = sim.lock();
    match visible(&mut state.accounts, &caller, &id) {
        Some(a) => {
            a.settings = body.into_inner();
            HttpResponse::Ok().json(&a.settings)
        }
        None => no_account(),
    }
}

/// Every account the caller may see, with its counts (no keys or secrets).
async fn admin_list(sim: web::Data<VerifySim>, caller: Caller) -> HttpResponse {
    let state = sim.lock();
    HttpResponse::Ok().json(
        state
            .accounts
            .iter()
            .filter(|a| caller.can_see(a.owner.as_deref()))
            .map(|a| {
                json!({
                    "account_id": a.id,
                    "checks": a.checks.len(),
                    "create_requests": a.created_requests,
                    "deliveries": a.deliveries,
                })
            })
            .collect::<Vec<_>>(),
    )
}

async fn admin_get(
    sim: web::Data<VerifySim>,
    caller: Caller,
    id: web::Path<String>,
) -> HttpResponse {
    let mut state = sim.lock();
    match visible(&mut state.accounts, &caller, &id) {
        Some(a) => HttpResponse::Ok().json(json!({
            "account_id": a.id,
            "settings": a.settings,
            "checks": a.checks.len(),
            "create_requests": a.created_requests,
            "received": a.received,
            "deliveries": a.deliveries,
        })),
        None => no_account(),
    }
}
