//! The simulator's own admin: the fault-knob page and its forms, and the
//! raw admin API (portals, contacts as a CRM user, tokens, webhooks,
//! deliveries). `crate::access::admin_layer` decides who reaches them.

use super::*;

pub(super) const SIM_CSS: &str = "body.sim{margin:0;font-family:system-ui,sans-serif;background:#f5f8fa;color:#33475b}\
.sim-bar{background:#ff7a59;color:#fff;font-weight:700;padding:.8rem 1.2rem;font-size:1.2rem}.sim-bar span{font-weight:400;opacity:.9}\
.sim-card{max-width:560px;margin:2rem auto;background:#fff;border:1px solid #cbd6e2;border-radius:6px;padding:1.5rem 2rem}\
.sim-card.wide{max-width:900px}.sim-scopes li{margin:.5rem 0}fieldset{border:1px solid #cbd6e2;border-radius:4px;margin:1rem 0}\
fieldset label{display:block;margin:.3rem 0}.sim-actions{display:flex;gap:1rem}button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid #425b76;background:#fff;cursor:pointer}\
.sim-approve{background:#ff7a59;border-color:#ff7a59;color:#fff;font-weight:600}.sim-portal{border-top:1px solid #cbd6e2;padding-top:1rem}\
.sim-portal label{display:block;margin:.4rem 0}:focus-visible{outline:3px solid #0091ae}";

pub(super) async fn sim_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(SIM_CSS)
}

pub(super) fn portal_json(id: u64, p: &Portal) -> Value {
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

pub(super) fn no_portal() -> HttpResponse {
    hubspot_error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", "no such portal")
}

/// The portal `raw` names, if it exists and `caller` may see it.
pub(super) fn visible_portal<'a>(
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

pub(super) async fn admin_portals(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
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

pub(super) async fn admin_create_portal(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
) -> HttpResponse {
    match create_portal(&mut sim.lock(), &caller) {
        Ok(id) => HttpResponse::Created().json(json!({ "portalId": id })),
        Err(refusal) => refusal,
    }
}

pub(super) fn portal_id(raw: &str) -> Option<u64> {
    raw.parse().ok()
}

pub(super) async fn admin_portal(
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

pub(super) async fn admin_set_faults(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
    faults: web::Json<Faults>,
) -> HttpResponse {
    set_faults(&sim, &caller, &id, faults.into_inner())
}

pub(super) fn set_faults(
    sim: &HubSpotSim,
    caller: &Caller,
    id: &str,
    faults: Faults,
) -> HttpResponse {
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
        .is_some_and(|f| !matches!(f, "429" | "500" | "500-writes" | "timeout"))
    {
        return hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "force must be 429, 500, 500-writes or timeout",
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
pub(super) struct FaultsForm {
    #[serde(default)]
    pub(super) error_rate: String,
    #[serde(default)]
    pub(super) latency_ms: String,
    #[serde(default)]
    pub(super) force: String,
    #[serde(default)]
    pub(super) rotate_refresh_tokens: Option<String>,
    #[serde(default)]
    pub(super) csrf_token: String,
}

pub(super) fn back_to_admin() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", "/sandbox/hubspot/admin"))
        .finish()
}

/// The fault-knob form (a browser page: the local user, an operator, or
/// the portal's tenant admin; anti-forgery token required).
pub(super) async fn admin_set_faults_form(
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
        fail_next: 0,
        fail_path: None,
    };
    let res = set_faults(&sim, &caller, &id, faults);
    if res.status().is_success() {
        back_to_admin()
    } else {
        res
    }
}

pub(super) fn parse_or_zero<T: std::str::FromStr + Default>(raw: &str) -> Result<T, T::Err> {
    match raw.trim() {
        "" => Ok(T::default()),
        t => t.parse(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenOnlyForm {
    #[serde(default)]
    pub(super) csrf_token: String,
}

/// The "Revoke all tokens" button of the fault-knob page.
pub(super) async fn admin_revoke_tokens_form(
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

pub(super) async fn admin_create_contact(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Answer {
    let props = {
        let mut state = sim.lock();
        let Some((_, p)) = visible_portal(&mut state, &caller, &id) else {
            return Ok(no_portal());
        };
        if p.contacts.len() >= MAX_CONTACTS_PER_PORTAL {
            return Ok(hubspot_error(
                StatusCode::TOO_MANY_REQUESTS,
                "LIMIT_REACHED",
                &format!("A sandbox portal holds at most {MAX_CONTACTS_PER_PORTAL} contacts."),
            ));
        }
        validate_properties(p, &properties_of(&body))?
    };
    let Some(portal) = portal_id(&id) else {
        return Ok(no_portal());
    };
    // `"quiet": true`: no webhook (checklist data, not a user's contact).
    let quiet = body["quiet"] == true;
    Ok({
        let created = if quiet {
            sim.create_contact_quietly(portal, props)
        } else {
            sim.create_contact_as_user(portal, props)
        };
        match created {
            Some(record) => HttpResponse::Created().json(record),
            None => no_portal(),
        }
    })
}

/// A contact with every property set (what a CRM user sees).
pub(super) async fn admin_get_contact(
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

pub(super) fn revoke_portal_tokens(
    sim: &HubSpotSim,
    caller: &Caller,
    id: &str,
) -> Result<(), HttpResponse> {
    let mut state = sim.lock();
    let Some((portal, _)) = visible_portal(&mut state, caller, id) else {
        return Err(no_portal());
    };
    state.access.retain(|_, g| g.portal != portal);
    state.refresh.retain(|_, g| g.portal != portal);
    Ok(())
}

pub(super) async fn admin_revoke_tokens(
    sim: web::Data<HubSpotSim>,
    caller: Caller,
    id: web::Path<String>,
) -> HttpResponse {
    match revoke_portal_tokens(&sim, &caller, &id) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(refusal) => refusal,
    }
}

pub(super) async fn admin_expire_tokens(
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
pub(super) async fn admin_expire_codes(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
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
pub(super) async fn admin_set_webhooks(
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

pub(super) async fn admin_deliveries(sim: web::Data<HubSpotSim>, caller: Caller) -> HttpResponse {
    if caller != Caller::Everything {
        return HttpResponse::Ok().json(Vec::<DeliveryRecord>::new());
    }
    HttpResponse::Ok().json(&sim.lock().deliveries)
}

#[derive(Template)]
#[template(path = "sandbox/admin.html")]
pub(super) struct AdminPage {
    pub(super) portals: Vec<AdminRow>,
    pub(super) csrf_token: String,
}

pub(super) struct AdminRow {
    pub(super) id: u64,
    pub(super) contacts: usize,
    pub(super) accepted: u64,
    pub(super) rejected: u64,
    pub(super) error_rate: String,
    pub(super) latency_ms: u64,
    pub(super) force: String,
    pub(super) rotate: bool,
}

/// The fault-knob page: every portal for the local user or an operator,
/// a tenant admin's own portals otherwise.
pub(super) async fn admin_page(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    caller: Caller,
) -> HttpResponse {
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
