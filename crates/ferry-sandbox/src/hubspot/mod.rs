//! The HubSpot simulator: an OAuth 2.0 server (consent page, code and
//! refresh grants with PKCE, token info, refresh-token revocation), the CRM
//! v3 contacts and properties API with HubSpot's record and error shapes,
//! rolling rate limits with HubSpot's headers and 429 body, webhooks (JSON
//! arrays signed with signature v3, retried with back-off), and fault knobs
//! per portal. Data is kept per portal, so two tenants' sandboxes never mix.

mod admin;
mod batch;
mod contacts;
mod guard;
mod oauth;
mod properties;
mod webhooks;

use admin::*;
use batch::*;
use contacts::*;
use guard::*;
use oauth::*;
use properties::*;

use crate::access::{self, Access, Caller, MAX_CONTACTS_PER_PORTAL, MAX_PER_OWNER};
use crate::util::{Answer, hubspot_error, random_hex};
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
    /// Answer every call with "429", "500" or "timeout" (no answer for 60
    /// s); "500-writes" answers only calls that change the CRM with 500.
    pub force: Option<String>,
    /// Issue a new refresh token at every refresh (HubSpot keeps the old one).
    pub rotate_refresh_tokens: bool,
    /// Do not rate-limit this portal (for benchmarks of Ferry's own overhead).
    pub unlimited: bool,
    /// Answer the next this-many CRM API calls with 500, then work again
    /// (a passing outage: what retries are for).
    pub fail_next: u32,
    /// Only calls whose path contains this text count for `fail_next`
    /// (e.g. one contact's id), so other traffic does not use it up.
    pub fail_path: Option<String>,
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

#[derive(Clone)]
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

    /// Creates a contact without telling anyone (no webhook): test data
    /// that must not start the portal's live workflows (Ferry's publish
    /// checklist).
    pub fn create_contact_quietly(
        &self,
        portal: u64,
        properties: BTreeMap<String, String>,
    ) -> Option<Value> {
        let mut state = self.lock();
        let p = state.portals.get_mut(&portal)?;
        let contact = insert_contact(p, properties);
        Some(contact_json(&contact, None))
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
