//! The HubSpot simulator: an OAuth 2.0 server (consent page, code and
//! refresh grants with PKCE, token info, refresh-token revocation), the CRM
//! v3 contacts and properties API with HubSpot's record and error shapes,
//! rolling rate limits with HubSpot's headers and 429 body, webhooks (JSON
//! arrays signed with signature v3, retried with back-off), and fault knobs
//! per portal. Data is kept per portal, so two tenants' sandboxes never mix.

use crate::access::{self, Access, Caller, MAX_CONTACTS_PER_PORTAL, MAX_PER_OWNER};
use crate::util::{hubspot_error, random_hex};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use chrono::{DateTime, SecondsFormat, Utc};
use ferry_connectors::HttpClient;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The v3 signature header.
pub const SIGNATURE_HEADER: &str = "X-HubSpot-Signature-v3";
/// The timestamp header (epoch milliseconds).
pub const TIMESTAMP_HEADER: &str = "X-HubSpot-Request-Timestamp";

/// Requests per portal per rolling 10 s window (OAuth apps).
pub const TEN_SECONDLY_MAX: usize = 100;
/// Search requests per portal per second.
pub const SEARCH_SECONDLY_MAX: usize = 4;

/// HubSpot's signature v3: base64(HMAC-SHA256(client secret,
/// method + full URI + body + timestamp)).
pub fn sign_v3(
    client_secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> String {
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.to_string().as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

const DEFAULT_PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "website",
    "jobtitle",
    "address",
    "city",
    "zip",
    "country",
    "state",
    "date_of_birth",
    "lifecyclestage",
    "hs_lead_status",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
];
const RETURNED_BY_DEFAULT: &[&str] = &[
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
];
const READ_SCOPE: &str = "crm.objects.contacts.read";
const WRITE_SCOPE: &str = "crm.objects.contacts.write";

/// Faults injected into a portal's CRM API calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Share of calls answered 500 at random (0.0 to 1.0).
    pub error_rate: f64,
    /// Added to every call.
    pub latency_ms: u64,
    /// Answer every call with "429", "500" or "timeout" (no answer for 60 s).
    pub force: Option<String>,
    /// Issue a new refresh token at every refresh (HubSpot keeps the old one).
    pub rotate_refresh_tokens: bool,
    /// Do not rate-limit this portal (for benchmarks of Ferry's own overhead).
    pub unlimited: bool,
}

/// Where an app's webhooks go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WebhookSettings {
    /// The app's target URL.
    pub target_url: String,
    /// Subscribed event types, e.g. `contact.creation`.
    pub subscriptions: Vec<String>,
    /// Delivery attempts before giving up (HubSpot: about 10).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each time.
    #[serde(default = "default_delay")]
    pub base_delay_ms: u64,
}

fn default_attempts() -> u32 {
    10
}
fn default_delay() -> u64 {
    1000
}

struct App {
    secret: String,
    app_id: u64,
    webhook: Option<WebhookSettings>,
    /// Registered redirect URLs; empty accepts any (a local tool).
    redirect_uris: Vec<String>,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    portal: u64,
    challenge: Option<String>,
    expires_at: Instant,
}

struct AccessGrant {
    client_id: String,
    portal: u64,
    scopes: Vec<String>,
    expires_at: Instant,
}

struct RefreshGrant {
    client_id: String,
    portal: u64,
    scopes: Vec<String>,
}

#[derive(Clone)]
struct Contact {
    id: u64,
    properties: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Default)]
struct Portal {
    /// The tenant that created it (shared sandbox), if any.
    owner: Option<String>,
    contacts: BTreeMap<u64, Contact>,
    next_contact: u64,
    custom_properties: BTreeSet<String>,
    faults: Faults,
    window: VecDeque<Instant>,
    search_window: VecDeque<Instant>,
    accepted: u64,
    rejected_429: u64,
    max_in_window: usize,
    refreshes: u64,
}

struct State {
    apps: HashMap<String, App>,
    codes: HashMap<String, CodeGrant>,
    access: HashMap<String, AccessGrant>,
    refresh: HashMap<String, RefreshGrant>,
    portals: BTreeMap<u64, Portal>,
    token_ttl: Duration,
    deliveries: Vec<DeliveryRecord>,
}

/// Webhook delivery attempts kept for the admin API (the oldest go first).
const MAX_DELIVERIES_KEPT: usize = 1000;

/// One webhook delivery attempt, for the admin API and tests.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Target URL.
    pub url: String,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// HTTP status, or 0 when unreachable.
    pub status: u16,
    /// How many events the request carried.
    pub events: usize,
}

/// The simulator. Cheap to clone.
#[derive(Clone)]
pub struct HubSpotSim {
    state: Arc<Mutex<State>>,
    http: HttpClient,
    access: Access,
}

impl HubSpotSim {
    /// A simulator with one registered app. Its webhooks go out through
    /// `http` (the guarded client: no redirects, private addresses only
    /// where its policy allows); `access` decides its pages and admin API.
    pub fn new(client_id: &str, client_secret: &str, http: HttpClient, access: Access) -> Self {
        let mut apps = HashMap::new();
        apps.insert(
            client_id.to_owned(),
            App {
                secret: client_secret.to_owned(),
                app_id: 1_000_001,
                webhook: None,
                redirect_uris: Vec::new(),
            },
        );
        Self {
            state: Arc::new(Mutex::new(State {
                apps,
                codes: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                portals: BTreeMap::new(),
                token_ttl: Duration::from_secs(1800),
                deliveries: Vec::new(),
            })),
            http,
            access,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a redirect URL for an app: from then on the consent screen
    /// sends codes only to registered URLs (as HubSpot does).
    pub fn register_redirect(&self, client_id: &str, uri: &str) {
        if let Some(app) = self.lock().apps.get_mut(client_id) {
            app.redirect_uris.push(uri.to_owned());
        }
    }

    /// Points an app's webhooks at `settings.target_url`.
    pub fn set_webhooks(&self, client_id: &str, settings: Option<WebhookSettings>) -> bool {
        match self.lock().apps.get_mut(client_id) {
            Some(app) => {
                app.webhook = settings;
                true
            }
            None => false,
        }
    }

    /// Creates a contact as a person in HubSpot's UI would (fires
    /// `contact.creation` with changeSource CRM_UI).
    pub fn create_contact_as_user(
        &self,
        portal: u64,
        properties: BTreeMap<String, String>,
    ) -> Option<Value> {
        let (record, events) = {
            let mut state = self.lock();
            let p = state.portals.get_mut(&portal)?;
            let contact = insert_contact(p, properties);
            let record = contact_json(&contact, None);
            (
                record,
                vec![event(
                    portal,
                    "contact.creation",
                    contact.id,
                    "CRM_UI",
                    None,
                    None,
                )],
            )
        };
        self.dispatch(events);
        Some(record)
    }

    fn dispatch(&self, events: Vec<Value>) {
        if events.is_empty() {
            return;
        }
        let targets: Vec<(String, String, WebhookSettings)> = {
            let state = self.lock();
            state
                .apps
                .values()
                .filter_map(|app| {
                    app.webhook
                        .clone()
                        .map(|w| (app.secret.clone(), app.app_id.to_string(), w))
                })
                .collect()
        };
        for (secret, app_id, settings) in targets {
            let batch: Vec<Value> = events
                .iter()
                .filter(|e| {
                    e["subscriptionType"]
                        .as_str()
                        .is_some_and(|t| settings.subscriptions.iter().any(|s| s == t))
                })
                .cloned()
                .map(|mut e| {
                    e["appId"] = json!(app_id.parse::<u64>().unwrap_or(0));
                    e
                })
                .collect();
            if batch.is_empty() {
                continue;
            }
            let sim = self.clone();
            tokio::spawn(async move { sim.deliver(secret, settings, batch).await });
        }
    }

    async fn deliver(&self, secret: String, settings: WebhookSettings, mut batch: Vec<Value>) {
        for attempt in 1..=settings.max_attempts.max(1) {
            for e in &mut batch {
                e["attemptNumber"] = json!(attempt - 1);
            }
            let body = serde_json::to_vec(&batch).unwrap_or_default();
            let timestamp = Utc::now().timestamp_millis();
            let signature = sign_v3(&secret, "POST", &settings.target_url, &body, timestamp);
            let request = url::Url::parse(&settings.target_url)
                .ok()
                .and_then(|u| self.http.request(reqwest::Method::POST, &u).ok());
            let refused = request.is_none();
            let status = match request {
                Some(r) => match r
                    .header("Content-Type", "application/json")
                    .header(SIGNATURE_HEADER, signature)
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                },
                None => 0,
            };
            {
                let mut state = self.lock();
                if state.deliveries.len() >= MAX_DELIVERIES_KEPT {
                    state.deliveries.remove(0);
                }
                state.deliveries.push(DeliveryRecord {
                    url: settings.target_url.clone(),
                    attempt,
                    status,
                    events: batch.len(),
                });
            }
            // A target the network policy refuses is not retried.
            if refused
                || (200..300).contains(&status)
                || matches!(status, 400 | 401 | 403 | 404 | 405)
            {
                return;
            }
            let delay = settings
                .base_delay_ms
                .saturating_mul(1 << (attempt - 1).min(10));
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }
}

fn now_iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn insert_contact(p: &mut Portal, mut properties: BTreeMap<String, String>) -> Contact {
    p.next_contact += 1;
    let id = 100 + p.next_contact;
    let now = Utc::now();
    properties.insert("hs_object_id".into(), id.to_string());
    properties.insert("createdate".into(), now_iso(now));
    properties.insert("lastmodifieddate".into(), now_iso(now));
    let contact = Contact {
        id,
        properties,
        created_at: now,
        updated_at: now,
    };
    p.contacts.insert(id, contact.clone());
    contact
}

fn event(
    portal: u64,
    kind: &str,
    object_id: u64,
    source: &str,
    property: Option<&str>,
    value: Option<&str>,
) -> Value {
    let mut e = json!({
        "eventId": rand::random::<u32>() as u64 + 1,
        "subscriptionId": 2_000_001,
        "portalId": portal,
        "appId": 0,
        "occurredAt": Utc::now().timestamp_millis(),
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": source,
        "changeFlag": if kind == "contact.creation" { "NEW" } else { "UPDATED" },
    });
    if let (Some(p), Some(v)) = (property, value) {
        e["propertyName"] = json!(p);
        e["propertyValue"] = json!(v);
    }
    e
}

fn contact_json(c: &Contact, wanted: Option<&[String]>) -> Value {
    let mut props = Map::new();
    match wanted {
        Some(names) if !names.is_empty() => {
            for n in names {
                props.insert(
                    n.clone(),
                    c.properties.get(n).map_or(Value::Null, |v| json!(v)),
                );
            }
        }
        _ => {
            for n in RETURNED_BY_DEFAULT {
                props.insert(
                    (*n).into(),
                    c.properties.get(*n).map_or(Value::Null, |v| json!(v)),
                );
            }
        }
    }
    json!({
        "id": c.id.to_string(),
        "properties": props,
        "createdAt": now_iso(c.created_at),
        "updatedAt": now_iso(c.updated_at),
        "archived": false,
    })
}

/// Routes, relative to `/sandbox/hubspot`.
pub fn routes(cfg: &mut web::ServiceConfig, sim: HubSpotSim) {
    cfg.app_data(web::Data::new(sim)).app_data(
        web::JsonConfig::default()
            .limit(1 << 20)
            .error_handler(|err, _| {
                let message = format!("Invalid input JSON: {err}");
                actix_web::error::InternalError::from_response(
                    err,
                    hubspot_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message),
                )
                .into()
            }),
    );
    register(&mut crate::util::Routes::mounting(cfg));
}

/// Every (method, path) this simulator serves, relative to `/sandbox/hubspot`.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    let mut r = crate::util::Routes::listing();
    register(&mut r);
    r.seen
}

fn register(r: &mut crate::util::Routes<'_>) {
    r.get("/oauth/authorize", consent_page);
    r.post("/oauth/authorize", consent_decision);
    r.post("/oauth/v1/token", token);
    r.get("/oauth/v1/access-tokens/{token}", token_info);
    r.delete("/oauth/v1/refresh-tokens/{token}", revoke);
    r.get("/crm/v3/objects/contacts", list_contacts);
    r.post("/crm/v3/objects/contacts", create_contact);
    r.post("/crm/v3/objects/contacts/search", search_contacts);
    r.post("/crm/v3/objects/contacts/batch/read", batch_read);
    r.post("/crm/v3/objects/contacts/batch/update", batch_update);
    r.post("/crm/v3/objects/contacts/batch/create", batch_create);
    r.post("/crm/v3/objects/contacts/batch/archive", batch_archive);
    r.get("/crm/v3/objects/contacts/{id}", get_contact);
    r.patch("/crm/v3/objects/contacts/{id}", update_contact);
    r.delete("/crm/v3/objects/contacts/{id}", archive_contact);
    r.post("/crm/v3/properties/contacts", create_property);
    r.get("/crm/v3/properties/contacts/{name}", get_property);
    r.get("/static/sim.css", sim_css);
    r.get("/admin", admin_page);
    r.post("/admin/ui/portals/{id}/faults", admin_set_faults_form);
    r.post(
        "/admin/ui/portals/{id}/revoke-tokens",
        admin_revoke_tokens_form,
    );
    r.get("/admin/portals", admin_portals);
    r.post("/admin/portals", admin_create_portal);
    r.get("/admin/portals/{id}", admin_portal);
    r.put("/admin/portals/{id}/faults", admin_set_faults);
    r.post("/admin/portals/{id}/contacts", admin_create_contact);
    r.get("/admin/portals/{id}/contacts/{contact}", admin_get_contact);
    r.post("/admin/portals/{id}/revoke-tokens", admin_revoke_tokens);
    r.post("/admin/portals/{id}/expire-tokens", admin_expire_tokens);
    r.post("/admin/oauth/expire-codes", admin_expire_codes);
    r.put("/admin/apps/{client_id}/webhooks", admin_set_webhooks);
    r.get("/admin/deliveries", admin_deliveries);
}

// ---------------------------------------------------------------- OAuth

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    optional_scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

#[derive(Template)]
#[template(path = "sandbox/consent.html")]
struct ConsentPage {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    scopes: Vec<(String, &'static str)>,
    portals: Vec<u64>,
    csrf_token: String,
}

fn scope_label(scope: &str) -> &'static str {
    match scope {
        READ_SCOPE => "View properties and other details about contacts",
        WRITE_SCOPE => "View and edit properties and other details about contacts",
        "oauth" => "Basic OAuth access",
        _ => "Other access",
    }
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn plain_error(message: &str) -> HttpResponse {
    html(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html><title>Error</title><h1>Authorization error</h1><p>{}</p>",
            escape(message)
        ),
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `client_id` is registered and `redirect_uri` is one of its
/// redirect URLs; the refusal to show otherwise.
fn check_app(sim: &HubSpotSim, client_id: &str, redirect_uri: &str) -> Result<(), HttpResponse> {
    let state = sim.lock();
    let Some(app) = state.apps.get(client_id) else {
        return Err(plain_error(
            "Unknown client_id: this app is not registered with the sandbox.",
        ));
    };
    if url::Url::parse(redirect_uri).is_err() {
        return Err(plain_error("The redirect_uri is missing or not a URL."));
    }
    if !app.redirect_uris.is_empty() && !app.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(plain_error(
            "The redirect_uri is not registered for this app.",
        ));
    }
    Ok(())
}

async fn consent_page(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    q: web::Query<AuthorizeQuery>,
) -> HttpResponse {
    let caller = match sim.access.page(&req, false).await {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let q = q.into_inner();
    if let Err(refusal) = check_app(&sim, &q.client_id, &q.redirect_uri) {
        return refusal;
    }
    let mut scopes: Vec<(String, &'static str)> = Vec::new();
    for s in q
        .scope
        .split_whitespace()
        .chain(q.optional_scope.split_whitespace())
    {
        if !scopes.iter().any(|(x, _)| x == s) {
            scopes.push((s.to_owned(), scope_label(s)));
        }
    }
    let portals = sim
        .lock()
        .portals
        .iter()
        .filter(|(_, p)| caller.can_see(p.owner.as_deref()))
        .map(|(id, _)| *id)
        .collect();
    let (csrf_token, cookie) = sim.access.form_token(&req);
    let page = ConsentPage {
        client_id: q.client_id,
        redirect_uri: q.redirect_uri,
        scope: scopes
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        state: q.state,
        code_challenge: q.code_challenge,
        code_challenge_method: q.code_challenge_method,
        scopes,
        portals,
        csrf_token,
    };
    match page.render() {
        Ok(body) => access::with_cookie(html(StatusCode::OK, body), cookie),
        Err(_) => plain_error("The consent page failed to render."),
    }
}

#[derive(Debug, Deserialize)]
struct Decision {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    portal: String,
    #[serde(default)]
    csrf_token: String,
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Some(url.to_string())
}

/// Creates a portal for `caller`, within the per-owner cap.
fn create_portal(state: &mut State, caller: &Caller) -> Result<u64, HttpResponse> {
    let owner = caller.owner();
    if owner.is_some()
        && state.portals.values().filter(|p| p.owner == owner).count() >= MAX_PER_OWNER
    {
        return Err(hubspot_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LIMIT_REACHED",
            &format!("A tenant may create at most {MAX_PER_OWNER} sandbox portals."),
        ));
    }
    // Random, far above the ids HubSpot hands out (a sandbox portal is never
    // mistaken for a real one), and never the id of a portal from before a
    // restart (the simulator keeps its state in memory; Ferry's connections
    // remember portal ids): a new tenant's portal cannot be an old one's.
    let id = loop {
        let candidate = 9_000_000_000 + rand::random::<u64>() % 1_000_000_000_000;
        if !state.portals.contains_key(&candidate) {
            break candidate;
        }
    };
    state.portals.insert(
        id,
        Portal {
            owner,
            ..Portal::default()
        },
    );
    Ok(id)
}

async fn consent_decision(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    form: web::Form<Decision>,
) -> HttpResponse {
    let caller = match sim.access.page(&req, false).await {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let d = form.into_inner();
    if let Err(refusal) = sim.access.check_form(&req, &d.csrf_token) {
        return refusal;
    }
    if let Err(refusal) = check_app(&sim, &d.client_id, &d.redirect_uri) {
        return refusal;
    }
    let location = if d.decision == "approve" {
        let mut state = sim.lock();
        let portal = match d.portal.as_str() {
            "new" | "" => match create_portal(&mut state, &caller) {
                Ok(id) => id,
                Err(refusal) => return refusal,
            },
            raw => match raw.parse::<u64>() {
                Ok(id)
                    if state
                        .portals
                        .get(&id)
                        .is_some_and(|p| caller.can_see(p.owner.as_deref())) =>
                {
                    id
                }
                _ => return plain_error("No such sandbox account."),
            },
        };
        let code = format!("sandbox-code-{}", random_hex(32));
        let method_ok = d.code_challenge.is_empty() || d.code_challenge_method == "S256";
        if !method_ok {
            drop(state);
            return plain_error("Only code_challenge_method=S256 is supported.");
        }
        // Codes nobody exchanged are dropped once expired, and the form's
        // free-text fields are bounded: a scripted consent loop cannot grow
        // the simulator without limit.
        let now = Instant::now();
        state.codes.retain(|_, c| c.expires_at > now);
        if d.scope.len() > 1024 || d.code_challenge.len() > 128 || d.redirect_uri.len() > 2048 {
            drop(state);
            return plain_error("The request's scope, code_challenge or redirect_uri is too long.");
        }
        if state.codes.len() >= 10_000 {
            drop(state);
            return plain_error("Too many authorizations in flight; try again in a few minutes.");
        }
        state.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: d.client_id.clone(),
                redirect_uri: d.redirect_uri.clone(),
                scopes: d.scope.split_whitespace().map(str::to_owned).collect(),
                portal,
                challenge: (!d.code_challenge.is_empty()).then(|| d.code_challenge.clone()),
                expires_at: Instant::now() + Duration::from_secs(600),
            },
        );
        with_query(&d.redirect_uri, &[("code", &code), ("state", &d.state)])
    } else {
        with_query(
            &d.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied access."),
                ("state", &d.state),
            ],
        )
    };
    match location {
        Some(l) => HttpResponse::Found()
            .insert_header(("Location", l))
            .finish(),
        None => plain_error("The redirect_uri is not a URL."),
    }
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    code_verifier: String,
}

fn oauth_error(status: &str, oauth: &str, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "status": status,
        "message": message,
        "correlationId": random_hex(32),
        "error": oauth,
        "error_description": message,
    }))
}

async fn token(sim: web::Data<HubSpotSim>, form: web::Form<TokenForm>) -> HttpResponse {
    let f = form.into_inner();
    let mut state = sim.lock();
    let Some(app) = state.apps.get(&f.client_id) else {
        return oauth_error(
            "BAD_CLIENT_ID",
            "invalid_client",
            "missing or unknown client id",
        );
    };
    if app.secret != f.client_secret {
        return oauth_error(
            "BAD_CLIENT_SECRET",
            "invalid_client",
            "missing or invalid client secret",
        );
    }
    let ttl = state.token_ttl;
    let (portal, scopes, refresh) = match f.grant_type.as_str() {
        "authorization_code" => {
            // A code is removed on first use: a replayed code is unknown.
            let Some(grant) = state.codes.remove(&f.code) else {
                return oauth_error(
                    "BAD_AUTH_CODE",
                    "invalid_grant",
                    "missing or unknown auth code",
                );
            };
            if grant.expires_at <= Instant::now() {
                return oauth_error("BAD_AUTH_CODE", "invalid_grant", "auth code is expired");
            }
            if grant.client_id != f.client_id {
                return oauth_error(
                    "BAD_AUTH_CODE",
                    "invalid_grant",
                    "auth code was issued to another client",
                );
            }
            if grant.redirect_uri != f.redirect_uri {
                return oauth_error(
                    "BAD_REDIRECT_URI",
                    "invalid_grant",
                    "redirect_uri does not match the authorization request",
                );
            }
            if let Some(challenge) = &grant.challenge {
                let computed = B64URL.encode(Sha256::digest(f.code_verifier.as_bytes()));
                if f.code_verifier.is_empty() || &computed != challenge {
                    return oauth_error(
                        "BAD_AUTH_CODE",
                        "invalid_grant",
                        "code_verifier does not match the code_challenge (PKCE)",
                    );
                }
            }
            let refresh = format!("sandbox-rt-{}", random_hex(36));
            state.refresh.insert(
                refresh.clone(),
                RefreshGrant {
                    client_id: f.client_id.clone(),
                    portal: grant.portal,
                    scopes: grant.scopes.clone(),
                },
            );
            (grant.portal, grant.scopes, refresh)
        }
        "refresh_token" => {
            let Some(grant) = state.refresh.get(&f.refresh_token) else {
                return oauth_error(
                    "BAD_REFRESH_TOKEN",
                    "invalid_grant",
                    "missing or unknown refresh token",
                );
            };
            if grant.client_id != f.client_id {
                return oauth_error(
                    "BAD_REFRESH_TOKEN",
                    "invalid_grant",
                    "refresh token was issued to another client",
                );
            }
            let (portal, scopes) = (grant.portal, grant.scopes.clone());
            if let Some(p) = state.portals.get_mut(&portal) {
                p.refreshes += 1;
            }
            let rotate = state
                .portals
                .get(&portal)
                .is_some_and(|p| p.faults.rotate_refresh_tokens);
            let refresh = if rotate {
                state.refresh.remove(&f.refresh_token);
                let fresh = format!("sandbox-rt-{}", random_hex(36));
                state.refresh.insert(
                    fresh.clone(),
                    RefreshGrant {
                        client_id: f.client_id.clone(),
                        portal,
                        scopes: scopes.clone(),
                    },
                );
                fresh
            } else {
                f.refresh_token.clone()
            };
            (portal, scopes, refresh)
        }
        _ => {
            return oauth_error(
                "BAD_GRANT_TYPE",
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    let access = format!("sandbox-at-{}", random_hex(64));
    state.access.insert(
        access.clone(),
        AccessGrant {
            client_id: f.client_id,
            portal,
            scopes,
            expires_at: Instant::now() + ttl,
        },
    );
    HttpResponse::Ok().json(json!({
        "token_type": "bearer",
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": ttl.as_secs(),
    }))
}

async fn token_info(sim: web::Data<HubSpotSim>, path: web::Path<String>) -> HttpResponse {
    let state = sim.lock();
    match state.access.get(path.as_str()) {
        Some(g) if g.expires_at > Instant::now() => {
            let app_id = state.apps.get(&g.client_id).map_or(0, |a| a.app_id);
            HttpResponse::Ok().json(json!({
                "token": path.as_str(),
                "user": "sandbox-user@example.com",
                "hub_domain": format!("sandbox-{}.hubspot.test", g.portal),
                "scopes": g.scopes,
                "hub_id": g.portal,
                "app_id": app_id,
                "expires_in": g.expires_at.saturating_duration_since(Instant::now()).as_secs(),
                "user_id": 1,
                "token_type": "access",
            }))
        }
        _ => hubspot_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "access token not found or expired",
        ),
    }
}

async fn revoke(sim: web::Data<HubSpotSim>, path: web::Path<String>) -> HttpResponse {
    let mut state = sim.lock();
    match state.refresh.remove(path.as_str()) {
        Some(grant) => {
            // Revoking the grant ends its access tokens too.
            state
                .access
                .retain(|_, a| !(a.portal == grant.portal && a.client_id == grant.client_id));
            HttpResponse::NoContent().finish()
        }
        None => hubspot_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "refresh token not found",
        ),
    }
}

// ---------------------------------------------------------------- CRM guard

struct Granted {
    portal: u64,
    headers: Vec<(&'static str, String)>,
    source_app: u64,
}

fn with_headers(mut res: HttpResponse, headers: &[(&'static str, String)]) -> HttpResponse {
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
async fn guard(
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
        let state = sim.lock();
        let Some(grant) = token.as_deref().and_then(|t| state.access.get(t)) else {
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
            .get(&grant.portal)
            .map(|p| p.faults.clone())
            .unwrap_or_default();
        let app = state.apps.get(&grant.client_id).map_or(0, |a| a.app_id);
        (grant.portal, faults, app)
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
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

fn rate_limited(policy: &str, _used: usize, retry_after: Option<u64>) -> HttpResponse {
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

// ---------------------------------------------------------------- contacts

/// Query parameters of a read. HubSpot's clients send `properties` either
/// comma-separated or repeated (`properties=a&properties=b`), so the query
/// string is read by hand rather than into a struct.
#[derive(Debug, Default)]
struct ReadQuery {
    properties: Vec<String>,
    id_property: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

impl ReadQuery {
    fn from(req: &HttpRequest) -> Self {
        let mut q = Self::default();
        for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            match k.as_ref() {
                "properties" => q.properties.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                ),
                "idProperty" => q.id_property = Some(v.into_owned()),
                "limit" => q.limit = v.parse().ok(),
                "after" => q.after = Some(v.into_owned()),
                _ => {}
            }
        }
        q
    }

    fn wanted(&self) -> Option<Vec<String>> {
        (!self.properties.is_empty()).then(|| self.properties.clone())
    }
}

fn known(p: &Portal, name: &str) -> bool {
    DEFAULT_PROPERTIES.contains(&name) || p.custom_properties.contains(name)
}

fn validate_properties(
    p: &Portal,
    props: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, HttpResponse> {
    let mut out = BTreeMap::new();
    for (k, v) in props {
        if !known(p, k) {
            return Err(hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!(
                    "Property values were not valid: [{{\"isValid\":false,\"message\":\"Property \\\"{k}\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"{k}\"}}]"
                ),
            ));
        }
        if matches!(
            k.as_str(),
            "hs_object_id" | "createdate" | "lastmodifieddate"
        ) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if k == "email"
            && !text.is_empty()
            && !(text.contains('@') && text.rsplit('@').next().is_some_and(|d| d.contains('.')))
        {
            return Err(hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!(
                    "Property values were not valid: [{{\"isValid\":false,\"message\":\"Email address {text} is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}}]"
                ),
            ));
        }
        out.insert(k.clone(), text);
    }
    Ok(out)
}

fn find_contact<'a>(
    p: &'a mut Portal,
    id: &str,
    id_property: Option<&str>,
) -> Option<&'a mut Contact> {
    match id_property {
        Some("email") => {
            let wanted = id.to_lowercase();
            p.contacts.values_mut().find(|c| {
                c.properties
                    .get("email")
                    .is_some_and(|e| e.to_lowercase() == wanted)
            })
        }
        _ => id.parse::<u64>().ok().and_then(|n| p.contacts.get_mut(&n)),
    }
}

fn email_taken(p: &Portal, email: &str, except: Option<u64>) -> Option<u64> {
    let wanted = email.to_lowercase();
    p.contacts
        .values()
        .find(|c| {
            Some(c.id) != except
                && c.properties
                    .get("email")
                    .is_some_and(|e| !e.is_empty() && e.to_lowercase() == wanted)
        })
        .map(|c| c.id)
}

fn properties_of(body: &Value) -> Map<String, Value> {
    body.get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn not_found(id: &str) -> HttpResponse {
    hubspot_error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("resource not found: Object not found.  objectId are usually numeric. id {id}"),
    )
}

async fn create_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return not_found("portal");
        };
        match create_one(p, &properties_of(&body)) {
            Ok(c) => (
                HttpResponse::Created().json(contact_json(&c, None)),
                vec![source_event(
                    event(
                        g.portal,
                        "contact.creation",
                        c.id,
                        "INTEGRATION",
                        None,
                        None,
                    ),
                    g.source_app,
                )],
            ),
            Err(r) => (r, vec![]),
        }
    };
    sim.dispatch(events);
    with_headers(res, &g.headers)
}

fn source_event(mut e: Value, app: u64) -> Value {
    e["sourceId"] = json!(app.to_string());
    e
}

fn create_one(p: &mut Portal, props: &Map<String, Value>) -> Result<Contact, HttpResponse> {
    if p.contacts.len() >= MAX_CONTACTS_PER_PORTAL {
        return Err(hubspot_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LIMIT_REACHED",
            &format!("A sandbox portal holds at most {MAX_CONTACTS_PER_PORTAL} contacts."),
        ));
    }
    let props = validate_properties(p, props)?;
    if !["email", "firstname", "lastname"]
        .iter()
        .any(|k| props.get(*k).is_some_and(|v| !v.is_empty()))
    {
        return Err(hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "A contact needs at least one of email, firstname or lastname.",
        ));
    }
    if let Some(existing) = props.get("email").and_then(|e| email_taken(p, e, None)) {
        return Err(hubspot_error(
            StatusCode::CONFLICT,
            "CONFLICT",
            &format!("Contact already exists. Existing ID: {existing}"),
        ));
    }
    Ok(insert_contact(p, props))
}

async fn get_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let q = ReadQuery::from(&req);
    let g = match guard(&sim, &req, READ_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return not_found("portal");
    };
    let res = match find_contact(p, &id, q.id_property.as_deref()) {
        Some(c) => HttpResponse::Ok().json(contact_json(c, q.wanted().as_deref())),
        None => not_found(&id),
    };
    with_headers(res, &g.headers)
}

async fn list_contacts(sim: web::Data<HubSpotSim>, req: HttpRequest) -> HttpResponse {
    let q = ReadQuery::from(&req);
    let g = match guard(&sim, &req, READ_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let state = sim.lock();
    let Some(p) = state.portals.get(&g.portal) else {
        return not_found("portal");
    };
    let all: Vec<&Contact> = p.contacts.values().collect();
    let res = HttpResponse::Ok().json(page(
        &all,
        q.limit.unwrap_or(10),
        q.after.as_deref(),
        q.wanted().as_deref(),
        false,
    ));
    with_headers(res, &g.headers)
}

fn page(
    all: &[&Contact],
    limit: usize,
    after: Option<&str>,
    wanted: Option<&[String]>,
    with_total: bool,
) -> Value {
    let limit = limit.clamp(1, 200);
    let start = after.and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
    let results: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| contact_json(c, wanted))
        .collect();
    let mut out = json!({ "results": results });
    if with_total {
        out["total"] = json!(all.len());
    }
    if start + limit < all.len() {
        out["paging"] = json!({ "next": { "after": (start + limit).to_string(), "link": "" } });
    }
    out
}

async fn update_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let q = ReadQuery::from(&req);
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return not_found("portal");
        };
        match update_one(
            p,
            &id,
            q.id_property.as_deref(),
            &properties_of(&body),
            g.portal,
            g.source_app,
        ) {
            Ok((c, events)) => (HttpResponse::Ok().json(contact_json(&c, None)), events),
            Err(r) => (r, vec![]),
        }
    };
    sim.dispatch(events);
    with_headers(res, &g.headers)
}

fn update_one(
    p: &mut Portal,
    id: &str,
    id_property: Option<&str>,
    props: &Map<String, Value>,
    portal: u64,
    app: u64,
) -> Result<(Contact, Vec<Value>), HttpResponse> {
    let props = validate_properties(p, props)?;
    let target = find_contact(p, id, id_property)
        .map(|c| c.id)
        .ok_or_else(|| not_found(id))?;
    if let Some(existing) = props
        .get("email")
        .and_then(|e| email_taken(p, e, Some(target)))
    {
        return Err(hubspot_error(
            StatusCode::CONFLICT,
            "CONFLICT",
            &format!("Contact already exists. Existing ID: {existing}"),
        ));
    }
    let c = p.contacts.get_mut(&target).ok_or_else(|| not_found(id))?;
    let mut events = Vec::new();
    for (k, v) in props {
        if c.properties.get(&k) != Some(&v) {
            events.push(source_event(
                event(
                    portal,
                    "contact.propertyChange",
                    c.id,
                    "INTEGRATION",
                    Some(&k),
                    Some(&v),
                ),
                app,
            ));
        }
        if v.is_empty() {
            c.properties.remove(&k);
        } else {
            c.properties.insert(k, v);
        }
    }
    c.updated_at = Utc::now();
    c.properties
        .insert("lastmodifieddate".into(), now_iso(c.updated_at));
    Ok((c.clone(), events))
}

async fn archive_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return not_found("portal");
    };
    // HubSpot answers 204 even for an id that does not exist.
    if let Ok(n) = id.parse::<u64>() {
        p.contacts.remove(&n);
    }
    with_headers(HttpResponse::NoContent().finish(), &g.headers)
}

fn filter_matches(c: &Contact, f: &Value) -> bool {
    let name = f["propertyName"].as_str().unwrap_or_default();
    let op = f["operator"].as_str().unwrap_or("EQ");
    let actual = if name == "hs_object_id" {
        Some(c.id.to_string())
    } else {
        c.properties.get(name).cloned()
    };
    let value = f["value"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| (!f["value"].is_null()).then(|| f["value"].to_string()));
    let values: Vec<String> = f["values"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let cmp = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y),
        _ => Some(a.cmp(b)),
    };
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match (op, actual.as_deref(), value.as_deref()) {
        ("HAS_PROPERTY", a, _) => a.is_some_and(|s| !s.is_empty()),
        ("NOT_HAS_PROPERTY", a, _) => a.is_none_or(str::is_empty),
        ("EQ", Some(a), Some(v)) => eq(a, v),
        ("NEQ", a, Some(v)) => a.is_none_or(|a| !eq(a, v)),
        ("LT", Some(a), Some(v)) => cmp(a, v) == Some(std::cmp::Ordering::Less),
        ("LTE", Some(a), Some(v)) => cmp(a, v) != Some(std::cmp::Ordering::Greater),
        ("GT", Some(a), Some(v)) => cmp(a, v) == Some(std::cmp::Ordering::Greater),
        ("GTE", Some(a), Some(v)) => cmp(a, v) != Some(std::cmp::Ordering::Less),
        ("BETWEEN", Some(a), Some(v)) => {
            let high = f["highValue"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| f["highValue"].to_string());
            cmp(a, v) != Some(std::cmp::Ordering::Less)
                && cmp(a, &high) != Some(std::cmp::Ordering::Greater)
        }
        ("IN", Some(a), _) => values.iter().any(|v| eq(a, v)),
        ("NOT_IN", a, _) => a.is_none_or(|a| !values.iter().any(|v| eq(a, v))),
        ("CONTAINS_TOKEN", Some(a), Some(v)) => {
            let needle = v.trim_matches('*').to_lowercase();
            a.to_lowercase()
                .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
                .any(|t| t.contains(&needle))
                || a.to_lowercase().contains(&needle)
        }
        ("NOT_CONTAINS_TOKEN", a, Some(v)) => a.is_none_or(|a| {
            !a.to_lowercase()
                .contains(&v.trim_matches('*').to_lowercase())
        }),
        _ => false,
    }
}

async fn search_contacts(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, READ_SCOPE, true).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let state = sim.lock();
    let Some(p) = state.portals.get(&g.portal) else {
        return not_found("portal");
    };
    let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
    let mut hits: Vec<&Contact> = p
        .contacts
        .values()
        .filter(|c| {
            groups.is_empty()
                || groups.iter().any(|g| {
                    g["filters"]
                        .as_array()
                        .is_none_or(|fs| fs.iter().all(|f| filter_matches(c, f)))
                })
        })
        .collect();
    if let Some(sort) = body["sorts"].as_array().and_then(|s| s.first()) {
        let (name, desc) = match sort {
            Value::String(s) => (s.trim_start_matches('-').to_owned(), s.starts_with('-')),
            other => (
                other["propertyName"]
                    .as_str()
                    .unwrap_or("hs_object_id")
                    .to_owned(),
                other["direction"].as_str() == Some("DESCENDING"),
            ),
        };
        hits.sort_by(|a, b| {
            let av = a.properties.get(&name).cloned().unwrap_or_default();
            let bv = b.properties.get(&name).cloned().unwrap_or_default();
            if desc { bv.cmp(&av) } else { av.cmp(&bv) }
        });
    }
    let wanted: Option<Vec<String>> = body["properties"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    let limit = body["limit"]
        .as_u64()
        .map_or(10, |l| usize::try_from(l).unwrap_or(10));
    let after = body["after"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| body["after"].as_u64().map(|n| n.to_string()));
    let res = HttpResponse::Ok().json(page(
        &hits,
        limit,
        after.as_deref(),
        wanted.as_deref(),
        true,
    ));
    with_headers(res, &g.headers)
}

fn batch_result(results: Vec<Value>, errors: Vec<Value>, started: DateTime<Utc>) -> HttpResponse {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": now_iso(started),
        "completedAt": now_iso(Utc::now()),
    });
    if errors.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = json!(errors);
        HttpResponse::MultiStatus().json(body)
    }
}

fn inputs(body: &Value) -> Result<Vec<Value>, HttpResponse> {
    let list = body["inputs"].as_array().cloned().unwrap_or_default();
    if list.len() > 100 {
        return Err(hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Batch size must be at most 100.",
        ));
    }
    Ok(list)
}

async fn batch_read(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, READ_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let started = Utc::now();
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return with_headers(r, &g.headers),
    };
    let wanted: Option<Vec<String>> = body["properties"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    let id_property = body["idProperty"].as_str().map(str::to_owned);
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return not_found("portal");
    };
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in list {
        let id = input["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| input["id"].to_string());
        match find_contact(p, &id, id_property.as_deref()) {
            Some(c) => results.push(contact_json(c, wanted.as_deref())),
            None => errors.push(json!({ "status": "error", "category": "OBJECT_NOT_FOUND", "message": format!("Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid. ({id})"), "context": { "ids": [id] } })),
        }
    }
    with_headers(batch_result(results, errors, started), &g.headers)
}

async fn batch_update(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let started = Utc::now();
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return with_headers(r, &g.headers),
    };
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return not_found("portal");
        };
        let (mut results, mut errors, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for input in list {
            let id = input["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| input["id"].to_string());
            match update_one(p, &id, input["idProperty"].as_str(), &properties_of(&input), g.portal, g.source_app) {
                Ok((c, mut e)) => {
                    results.push(contact_json(&c, None));
                    events.append(&mut e);
                }
                Err(_) => errors.push(json!({ "status": "error", "category": "OBJECT_NOT_FOUND", "message": format!("Could not update contact {id}"), "context": { "ids": [id] } })),
            }
        }
        (batch_result(results, errors, started), events)
    };
    sim.dispatch(events);
    with_headers(res, &g.headers)
}

async fn batch_create(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let started = Utc::now();
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return with_headers(r, &g.headers),
    };
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return not_found("portal");
        };
        let (mut results, mut events) = (Vec::new(), Vec::new());
        for input in list {
            match create_one(p, &properties_of(&input)) {
                Ok(c) => {
                    events.push(source_event(
                        event(
                            g.portal,
                            "contact.creation",
                            c.id,
                            "INTEGRATION",
                            None,
                            None,
                        ),
                        g.source_app,
                    ));
                    results.push(contact_json(&c, None));
                }
                Err(r) => return with_headers(r, &g.headers),
            }
        }
        let mut res = batch_result(results, vec![], started);
        *res.status_mut() = StatusCode::CREATED;
        (res, events)
    };
    sim.dispatch(events);
    with_headers(res, &g.headers)
}

async fn batch_archive(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return with_headers(r, &g.headers),
    };
    let mut state = sim.lock();
    if let Some(p) = state.portals.get_mut(&g.portal) {
        for input in list {
            if let Some(n) = input["id"].as_str().and_then(|s| s.parse::<u64>().ok()) {
                p.contacts.remove(&n);
            }
        }
    }
    with_headers(HttpResponse::NoContent().finish(), &g.headers)
}

async fn create_property(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let g = match guard(&sim, &req, WRITE_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Some(name) = body["name"].as_str().filter(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) else {
        return with_headers(
            hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "name is required: lower-case letters, digits and _",
            ),
            &g.headers,
        );
    };
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return not_found("portal");
    };
    let res = if known(p, name) {
        hubspot_error(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            &format!("A property named '{name}' already exists."),
        )
    } else {
        p.custom_properties.insert(name.to_owned());
        HttpResponse::Created().json(property_json(name, &body))
    };
    with_headers(res, &g.headers)
}

fn property_json(name: &str, body: &Value) -> Value {
    json!({
        "name": name,
        "label": body["label"].as_str().unwrap_or(name),
        "type": body["type"].as_str().unwrap_or("string"),
        "fieldType": body["fieldType"].as_str().unwrap_or("text"),
        "groupName": body["groupName"].as_str().unwrap_or("contactinformation"),
        "hidden": false,
        "formField": false,
    })
}

async fn get_property(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let g = match guard(&sim, &req, READ_SCOPE, false).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let state = sim.lock();
    let Some(p) = state.portals.get(&g.portal) else {
        return not_found("portal");
    };
    let res = if known(p, &name) {
        HttpResponse::Ok().json(property_json(&name, &Value::Null))
    } else {
        hubspot_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("Unable to find property {name}"),
        )
    };
    with_headers(res, &g.headers)
}

// ---------------------------------------------------------------- admin

const SIM_CSS: &str = "body.sim{margin:0;font-family:system-ui,sans-serif;background:#f5f8fa;color:#33475b}\
.sim-bar{background:#ff7a59;color:#fff;font-weight:700;padding:.8rem 1.2rem;font-size:1.2rem}.sim-bar span{font-weight:400;opacity:.9}\
.sim-card{max-width:560px;margin:2rem auto;background:#fff;border:1px solid #cbd6e2;border-radius:6px;padding:1.5rem 2rem}\
.sim-card.wide{max-width:900px}.sim-scopes li{margin:.5rem 0}fieldset{border:1px solid #cbd6e2;border-radius:4px;margin:1rem 0}\
fieldset label{display:block;margin:.3rem 0}.sim-actions{display:flex;gap:1rem}button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid #425b76;background:#fff;cursor:pointer}\
.sim-approve{background:#ff7a59;border-color:#ff7a59;color:#fff;font-weight:600}.sim-portal{border-top:1px solid #cbd6e2;padding-top:1rem}\
.sim-portal label{display:block;margin:.4rem 0}:focus-visible{outline:3px solid #0091ae}";

async fn sim_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(SIM_CSS)
}

fn portal_json(id: u64, p: &Portal) -> Value {
    json!({
        "portalId": id,
        "contacts": p.contacts.len(),
        "customProperties": p.custom_properties,
        "faults": p.faults,
        "accepted": p.accepted,
        "rejected429": p.rejected_429,
        "maxInTenSecondWindow": p.max_in_window,
        "refreshes": p.refreshes,
    })
}

fn no_portal() -> HttpResponse {
    hubspot_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "no such portal")
}

/// The portal `raw` names, if it exists and `caller` may see it.
fn visible_portal<'a>(
    state: &'a mut State,
    caller: &Caller,
    raw: &str,
) -> Option<(u64, &'a mut Portal)> {
    let id = portal_id(raw)?;
    state
        .portals
        .get_mut(&id)
        .filter(|p| caller.can_see(p.owner.as_deref()))
        .map(|p| (id, p))
}

async fn admin_portals(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
    let state = sim.lock();
    HttpResponse::Ok().json(
        state
            .portals
            .iter()
            .filter(|(_, p)| caller.can_see(p.owner.as_deref()))
            .map(|(id, p)| portal_json(*id, p))
            .collect::<Vec<_>>(),
    )
}

async fn admin_create_portal(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
    match create_portal(&mut sim.lock(), &caller) {
        Ok(id) => HttpResponse::Created().json(json!({ "portalId": id })),
        Err(refusal) => refusal,
    }
}

fn portal_id(raw: &str) -> Option<u64> {
    raw.parse().ok()
}

async fn admin_portal(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
) -> HttpResponse {
    let mut state = sim.lock();
    match visible_portal(&mut state, &caller, &id) {
        Some((n, p)) => HttpResponse::Ok().json(portal_json(n, p)),
        None => no_portal(),
    }
}

async fn admin_set_faults(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
    faults: web::Json<Faults>,
) -> HttpResponse {
    set_faults(&sim, &caller, &id, faults.into_inner())
}

fn set_faults(sim: &HubSpotSim, caller: &Caller, id: &str, faults: Faults) -> HttpResponse {
    if !(0.0..=1.0).contains(&faults.error_rate) {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "error_rate must be between 0 and 1",
        );
    }
    if faults
        .force
        .as_deref()
        .is_some_and(|f| !matches!(f, "429" | "500" | "timeout"))
    {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "force must be 429, 500 or timeout",
        );
    }
    let mut state = sim.lock();
    match visible_portal(&mut state, caller, id) {
        Some((_, p)) => {
            p.faults = faults;
            HttpResponse::Ok().json(&p.faults)
        }
        None => no_portal(),
    }
}

#[derive(Debug, Deserialize)]
struct FaultsForm {
    #[serde(default)]
    error_rate: String,
    #[serde(default)]
    latency_ms: String,
    #[serde(default)]
    force: String,
    #[serde(default)]
    rotate_refresh_tokens: Option<String>,
    #[serde(default)]
    csrf_token: String,
}

fn back_to_admin() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", "/sandbox/hubspot/admin"))
        .finish()
}

/// The fault-knob form (a browser page: the local user, an operator, or
/// the portal's tenant admin; anti-forgery token required).
async fn admin_set_faults_form(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<FaultsForm>,
) -> HttpResponse {
    if let Err(refusal) = sim.access.check_form(&req, &form.csrf_token) {
        return refusal;
    }
    let (Ok(error_rate), Ok(latency_ms)) = (
        parse_or_zero::<f64>(&form.error_rate),
        parse_or_zero::<u64>(&form.latency_ms),
    ) else {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "error_rate must be a number between 0 and 1 and latency_ms a whole number of milliseconds",
        );
    };
    let faults = Faults {
        error_rate,
        latency_ms,
        force: Some(form.force.clone()).filter(|f| !f.is_empty()),
        rotate_refresh_tokens: form.rotate_refresh_tokens.is_some(),
        unlimited: false,
    };
    let res = set_faults(&sim, &caller, &id, faults);
    if res.status().is_success() {
        back_to_admin()
    } else {
        res
    }
}

fn parse_or_zero<T: std::str::FromStr + Default>(raw: &str) -> Result<T, T::Err> {
    match raw.trim() {
        "" => Ok(T::default()),
        t => t.parse(),
    }
}

#[derive(Debug, Deserialize)]
struct TokenOnlyForm {
    #[serde(default)]
    csrf_token: String,
}

/// The "Revoke all tokens" button of the fault-knob page.
async fn admin_revoke_tokens_form(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    caller: Caller,
    id: web::Path<String>,
    form: web::Form<TokenOnlyForm>,
) -> HttpResponse {
    if let Err(refusal) = sim.access.check_form(&req, &form.csrf_token) {
        return refusal;
    }
    match revoke_portal_tokens(&sim, &caller, &id) {
        Ok(()) => back_to_admin(),
        Err(refusal) => refusal,
    }
}

async fn admin_create_contact(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let props = {
        let mut state = sim.lock();
        let Some((_, p)) = visible_portal(&mut state, &caller, &id) else {
            return no_portal();
        };
        if p.contacts.len() >= MAX_CONTACTS_PER_PORTAL {
            return hubspot_error(
                StatusCode::TOO_MANY_REQUESTS,
                "LIMIT_REACHED",
                &format!("A sandbox portal holds at most {MAX_CONTACTS_PER_PORTAL} contacts."),
            );
        }
        match validate_properties(p, &properties_of(&body)) {
            Ok(props) => props,
            Err(r) => return r,
        }
    };
    let Some(portal) = portal_id(&id) else {
        return no_portal();
    };
    match sim.create_contact_as_user(portal, props) {
        Some(record) => HttpResponse::Created().json(record),
        None => no_portal(),
    }
}

/// A contact with every property set (what a CRM user sees).
async fn admin_get_contact(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, contact) = path.into_inner();
    let mut state = sim.lock();
    let Some((_, p)) = visible_portal(&mut state, &caller, &id) else {
        return no_portal();
    };
    match find_contact(p, &contact, None) {
        Some(c) => {
            let all: Vec<String> = c.properties.keys().cloned().collect();
            HttpResponse::Ok().json(contact_json(c, Some(&all)))
        }
        None => not_found(&contact),
    }
}

fn revoke_portal_tokens(sim: &HubSpotSim, caller: &Caller, id: &str) -> Result<(), HttpResponse> {
    let mut state = sim.lock();
    let Some((portal, _)) = visible_portal(&mut state, caller, id) else {
        return Err(no_portal());
    };
    state.access.retain(|_, g| g.portal != portal);
    state.refresh.retain(|_, g| g.portal != portal);
    Ok(())
}

async fn admin_revoke_tokens(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
) -> HttpResponse {
    match revoke_portal_tokens(&sim, &caller, &id) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(refusal) => refusal,
    }
}

async fn admin_expire_tokens(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
) -> HttpResponse {
    let mut state = sim.lock();
    let Some((portal, _)) = visible_portal(&mut state, &caller, &id) else {
        return no_portal();
    };
    let past = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now);
    for g in state.access.values_mut().filter(|g| g.portal == portal) {
        g.expires_at = past;
    }
    HttpResponse::NoContent().finish()
}

/// Expires every outstanding authorization code (operators and the local
/// user only: codes are not tied to a tenant until they are exchanged).
async fn admin_expire_codes(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
    if caller != Caller::Everything {
        return no_portal();
    }
    let mut state = sim.lock();
    let past = Instant::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or_else(Instant::now);
    for c in state.codes.values_mut() {
        c.expires_at = past;
    }
    HttpResponse::NoContent().finish()
}

/// Points an app's webhooks (the app is Ferry's: operators and Ferry
/// itself only). Deliveries go through the guarded client.
async fn admin_set_webhooks(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    client_id: web::Path<String>,
    body: web::Json<WebhookSettings>,
) -> HttpResponse {
    if caller != Caller::Everything {
        return hubspot_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "no such app");
    }
    if url::Url::parse(&body.target_url).is_err() {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "target_url must be a URL",
        );
    }
    if sim.set_webhooks(&client_id, Some(body.into_inner())) {
        HttpResponse::NoContent().finish()
    } else {
        hubspot_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "no such app")
    }
}

async fn admin_deliveries(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
    if caller != Caller::Everything {
        return HttpResponse::Ok().json(Vec::<DeliveryRecord>::new());
    }
    HttpResponse::Ok().json(&sim.lock().deliveries)
}

#[derive(Template)]
#[template(path = "sandbox/admin.html")]
struct AdminPage {
    portals: Vec<AdminRow>,
    csrf_token: String,
}

struct AdminRow {
    id: u64,
    contacts: usize,
    accepted: u64,
    rejected: u64,
    error_rate: String,
    latency_ms: u64,
    force: String,
    rotate: bool,
}

/// The fault-knob page: every portal for the local user or an operator,
/// a tenant admin's own portals otherwise.
async fn admin_page(sim: web::Data<HubSpotSim>, req: HttpRequest, caller: Caller) -> HttpResponse {
    let portals = sim
        .lock()
        .portals
        .iter()
        .filter(|(_, p)| caller.can_see(p.owner.as_deref()))
        .map(|(id, p)| AdminRow {
            id: *id,
            contacts: p.contacts.len(),
            accepted: p.accepted,
            rejected: p.rejected_429,
            error_rate: p.faults.error_rate.to_string(),
            latency_ms: p.faults.latency_ms,
            force: p.faults.force.clone().unwrap_or_default(),
            rotate: p.faults.rotate_refresh_tokens,
        })
        .collect();
    let (csrf_token, cookie) = sim.access.form_token(&req);
    match (AdminPage {
        portals,
        csrf_token,
    })
    .render()
    {
        Ok(body) => access::with_cookie(html(StatusCode::OK, body), cookie),
        Err(_) => plain_error("admin page failed to render"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_signature_matches_a_hand_computed_hmac() {
        let sig = sign_v3(
            "secret",
            "POST",
            "https://example.com/hook",
            b"[]",
            1_700_000_000_000,
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
        mac.update(b"POSThttps://example.com/hook[]1700000000000");
        assert_eq!(sig, B64.encode(mac.finalize().into_bytes()));
    }
}
