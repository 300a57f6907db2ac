//! OAuth 2.0: the consent screen (a tenant's own portals only, with an
//! anti-forgery token), the code and refresh grants with PKCE, token info
//! and refresh-token revocation.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct AuthorizeQuery {
    #[serde(default)]
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) redirect_uri: String,
    #[serde(default)]
    pub(super) scope: String,
    #[serde(default)]
    pub(super) optional_scope: String,
    #[serde(default)]
    pub(super) state: String,
    #[serde(default)]
    pub(super) code_challenge: String,
    #[serde(default)]
    pub(super) code_challenge_method: String,
    /// The account to select first (the simulator's own: Ferry sends it
    /// when signing an existing connection in again).
    #[serde(default)]
    pub(super) portal_hint: String,
}

#[derive(Template)]
#[template(path = "sandbox/consent.html")]
pub(super) struct ConsentPage {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) scope: String,
    pub(super) state: String,
    pub(super) code_challenge: String,
    pub(super) code_challenge_method: String,
    pub(super) scopes: Vec<(String, &'static str)>,
    pub(super) portals: Vec<u64>,
    /// The account selected first: the hinted one, else the caller's only
    /// one (none: "a new account" is).
    pub(super) selected: Option<u64>,
    pub(super) csrf_token: String,
}

pub(super) fn scope_label(scope: &str) -> &'static str {
    match scope {
        READ_SCOPE => "View properties and other details about contacts",
        WRITE_SCOPE => "View and edit properties and other details about contacts",
        "oauth" => "Basic OAuth access",
        _ => "Other access",
    }
}

pub(super) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

pub(super) fn plain_error(message: &str) -> HttpResponse {
    html(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html><title>Error</title><h1>Authorization error</h1><p>{}</p>",
            escape(message)
        ),
    )
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `client_id` is registered and `redirect_uri` is one of its
/// redirect URLs; the refusal to show otherwise.
pub(super) fn check_app(
    sim: &HubSpotSim,
    client_id: &str,
    redirect_uri: &str,
) -> Result<(), HttpResponse> {
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

pub(super) async fn consent_page(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    q: web::Query<AuthorizeQuery>,
) -> Answer {
    let caller = sim.access.page(&req, false).await?;
    let q = q.into_inner();
    check_app(&sim, &q.client_id, &q.redirect_uri)?;
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
    let portals: Vec<u64> = sim
        .lock()
        .portals
        .iter()
        .filter(|(_, p)| caller.can_see(p.owner.as_deref()))
        .map(|(id, _)| *id)
        .collect();
    // The hinted account; else the caller's only one; a new one only
    // when the caller has none (or several, and must choose).
    let selected = q
        .portal_hint
        .parse::<u64>()
        .ok()
        .filter(|h| portals.contains(h))
        .or_else(|| (portals.len() == 1).then(|| portals[0]));
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
        selected,
        csrf_token,
    };
    Ok({
        match page.render() {
            Ok(body) => access::with_cookie(html(StatusCode::OK, body), cookie),
            Err(_) => plain_error("The consent page failed to render."),
        }
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct Decision {
    #[serde(default)]
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) redirect_uri: String,
    #[serde(default)]
    pub(super) scope: String,
    #[serde(default)]
    pub(super) state: String,
    #[serde(default)]
    pub(super) code_challenge: String,
    #[serde(default)]
    pub(super) code_challenge_method: String,
    #[serde(default)]
    pub(super) decision: String,
    #[serde(default)]
    pub(super) portal: String,
    #[serde(default)]
    pub(super) csrf_token: String,
}

pub(super) fn with_query(base: &str, pairs: &[(&str, &str)]) -> Option<String> {
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
pub(super) fn create_portal(state: &mut State, caller: &Caller) -> Result<u64, HttpResponse> {
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

pub(super) async fn consent_decision(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    form: web::Form<Decision>,
) -> Answer {
    let caller = sim.access.page(&req, false).await?;
    let d = form.into_inner();
    sim.access.check_form(&req, &d.csrf_token)?;
    check_app(&sim, &d.client_id, &d.redirect_uri)?;
    let location = if d.decision == "approve" {
        let mut state = sim.lock();
        let portal = match d.portal.as_str() {
            "new" | "" => create_portal(&mut state, &caller)?,
            raw => match raw.parse::<u64>() {
                Ok(id)
                    if state
                        .portals
                        .get(&id)
                        .is_some_and(|p| caller.can_see(p.owner.as_deref())) =>
                {
                    id
                }
                _ => return Ok(plain_error("No such sandbox account.")),
            },
        };
        let code = match mint_code(&mut state, &d, portal) {
            Ok(code) => code,
            Err(message) => {
                drop(state);
                return Ok(plain_error(message));
            }
        };
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
    Ok({
        match location {
            Some(l) => HttpResponse::Found()
                .insert_header(("Location", l))
                .finish(),
            None => plain_error("The redirect_uri is not a URL."),
        }
    })
}

/// Issues an authorization code for `portal` on the request `d` describes.
fn mint_code(state: &mut State, d: &Decision, portal: u64) -> Result<String, &'static str> {
    let method_ok = d.code_challenge.is_empty() || d.code_challenge_method == "S256";
    if !method_ok {
        return Err("Only code_challenge_method=S256 is supported.");
    }
    // Codes nobody exchanged are dropped once expired, and the form's
    // free-text fields are bounded: a scripted consent loop cannot grow
    // the simulator without limit.
    let now = Instant::now();
    state.codes.retain(|_, c| c.expires_at > now);
    if d.scope.len() > 1024 || d.code_challenge.len() > 128 || d.redirect_uri.len() > 2048 {
        return Err("The request's scope, code_challenge or redirect_uri is too long.");
    }
    if state.codes.len() >= 10_000 {
        return Err("Too many authorizations in flight; try again in a few minutes.");
    }
    let code = format!("sandbox-code-{}", random_hex(32));
    state.codes.insert(
        code.clone(),
        CodeGrant {
            client_id: d.client_id.clone(),
            redirect_uri: d.redirect_uri.clone(),
            scopes: d.scope.split_whitespace().map(str::to_owned).collect(),
            portal,
            challenge: (!d.code_challenge.is_empty()).then(|| d.code_challenge.clone()),
            expires_at: now + Duration::from_secs(600),
        },
    );
    Ok(code)
}

impl HubSpotSim {
    /// The person at the consent screen approves `authorize_url` for a new
    /// sandbox portal owned by `owner` (a tenant id): what the demo does on
    /// the local user's behalf, in process. Returns the callback URL with
    /// the code and the state, as the browser would follow it.
    pub fn approve(
        &self,
        authorize_url: &url::Url,
        owner: Option<&str>,
    ) -> Result<url::Url, String> {
        let query = |name: &str| {
            authorize_url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let d = Decision {
            client_id: query("client_id"),
            redirect_uri: query("redirect_uri"),
            scope: query("scope"),
            state: query("state"),
            code_challenge: query("code_challenge"),
            code_challenge_method: query("code_challenge_method"),
            decision: "approve".into(),
            portal: "new".into(),
            csrf_token: String::new(),
        };
        if check_app(self, &d.client_id, &d.redirect_uri).is_err() {
            return Err("the app or its redirect URI is not registered with the sandbox".into());
        }
        let caller = match owner {
            Some(o) => Caller::Owner(o.to_owned()),
            None => Caller::Everything,
        };
        let mut state = self.lock();
        let portal = create_portal(&mut state, &caller)
            .map_err(|_| "the sandbox portal limit is reached".to_owned())?;
        let code = mint_code(&mut state, &d, portal).map_err(str::to_owned)?;
        drop(state);
        with_query(&d.redirect_uri, &[("code", &code), ("state", &d.state)])
            .and_then(|u| url::Url::parse(&u).ok())
            .ok_or_else(|| "the redirect_uri is not a URL".to_owned())
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    pub(super) grant_type: String,
    #[serde(default)]
    pub(super) code: String,
    #[serde(default)]
    pub(super) redirect_uri: String,
    #[serde(default)]
    pub(super) refresh_token: String,
    #[serde(default)]
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) client_secret: String,
    #[serde(default)]
    pub(super) code_verifier: String,
}

pub(super) fn oauth_error(status: &str, oauth: &str, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "status": status,
        "message": message,
        "correlationId": random_hex(32),
        "error": oauth,
        "error_description": message,
    }))
}

pub(super) async fn token(sim: web::Data<HubSpotSim>, form: web::Form<TokenForm>) -> HttpResponse {
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

pub(super) async fn token_info(
    sim: web::Data<HubSpotSim>,
    path: web::Path<String>,
) -> HttpResponse {
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

pub(super) async fn revoke(sim: web::Data<HubSpotSim>, path: web::Path<String>) -> HttpResponse {
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
