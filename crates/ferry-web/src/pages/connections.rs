//! Connections: the catalog, connecting HubSpot through OAuth 2.0 (PKCE and
//! state), API-key connections, a connection's page, testing and revoking.
//! Secrets are never rendered back: the pages show only which kind of
//! credential a connection holds.

use super::{audit, parse_id};
use crate::AppState;
use crate::error::{AppError, error_page};
use crate::session::{Admin, Member};
use crate::templates::{FieldErrors, Layout, redirect, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use ferry_connectors::registry::CallContext;
use ferry_connectors::{ConnectorError, Registry, hubspot};
use ferry_core::catalog::{AuthKind, ConnectorKey};
use ferry_core::{
    ConnectionId, ConnectionStatus, Credentials, Environment, FieldError, PersonName,
};
use ferry_engine::connections::ServiceError;
use ferry_store::connections::{self as store, Connection, NewConnection, OAuthFlow};
use ferry_store::{StoreError, token_hash, users};
use serde_json::json;
use url::Url;

/// API keys and tokens should be rotated this often.
const ROTATION_DAYS: i64 = 90;
/// An OAuth attempt must come back within this.
const FLOW_MINUTES: i64 = 10;

struct CatalogCard {
    key: &'static str,
    name: &'static str,
    description: &'static str,
    auth: &'static str,
}

struct ConnectionRow {
    id: String,
    name: String,
    connector: &'static str,
    environment: &'static str,
    status: &'static str,
    status_class: String,
    last_used: String,
}

fn display_status(c: &Connection, now: DateTime<Utc>) -> &'static str {
    if c.status == ConnectionStatus::Broken {
        "broken"
    } else if c.needs_rotation {
        "needs rotation"
    } else if c
        .credential_expires_at
        .is_some_and(|t| t - now < Duration::days(14))
    {
        "expiring"
    } else {
        "healthy"
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    layout: Layout,
    is_admin: bool,
    rows: Vec<ConnectionRow>,
    catalog: Vec<CatalogCard>,
}

/// GET /connections
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let rows = store::list(&state.db, &member.tenant_id)
        .await?
        .iter()
        .map(|c| {
            let status = display_status(c, now);
            ConnectionRow {
                id: c.id.to_string(),
                name: c.name.clone(),
                connector: c.connector.def().name,
                environment: c.environment.as_str(),
                status,
                status_class: status.replace(' ', "-"),
                last_used: when(c.last_used_at),
            }
        })
        .collect();
    let catalog = ConnectorKey::ALL
        .iter()
        .map(|k| {
            let d = k.def();
            CatalogCard {
                key: k.as_str(),
                name: d.name,
                description: d.description,
                auth: d.auth.label(),
            }
        })
        .collect();
    render(
        &req,
        StatusCode::OK,
        &ConnectionsPage {
            layout: Layout::new(&req, "Connections", "/connections"),
            is_admin: member.role == ferry_core::Role::Admin,
            rows,
            catalog,
        },
    )
}

/// The new-connection form.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct NewForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    signing_secret: String,
}

#[derive(Template)]
#[template(path = "connection_new.html")]
struct NewPage {
    layout: Layout,
    key: &'static str,
    name: &'static str,
    description: &'static str,
    oauth: bool,
    needs_key: bool,
    needs_base_url: bool,
    needs_username: bool,
    needs_signing_secret: bool,
    sandbox_available: bool,
    scopes: Vec<&'static str>,
    form: NewForm,
    errors: FieldErrors,
}

fn connector_of(raw: &str) -> Result<ConnectorKey, AppError> {
    ConnectorKey::parse(raw).ok_or(AppError::NotFound)
}

fn new_page(
    state: &AppState,
    req: &HttpRequest,
    key: ConnectorKey,
    status: StatusCode,
    form: NewForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let d = key.def();
    let cut = |s: &str| s.chars().take(300).collect::<String>();
    let form = NewForm {
        name: cut(&form.name),
        environment: cut(&form.environment),
        // A submitted key is never echoed back.
        api_key: String::new(),
        base_url: cut(&form.base_url),
        username: cut(&form.username),
        signing_secret: String::new(),
    };
    render(
        req,
        status,
        &NewPage {
            layout: Layout::new(req, format!("Connect {}", d.name), "/connections"),
            key: key.as_str(),
            name: d.name,
            description: d.description,
            oauth: d.auth == AuthKind::OAuth2,
            needs_key: matches!(
                key,
                ConnectorKey::Verification | ConnectorKey::Http | ConnectorKey::Smtp
            ),
            needs_base_url: matches!(
                key,
                ConnectorKey::Verification | ConnectorKey::Http | ConnectorKey::Smtp
            ),
            needs_username: key == ConnectorKey::Smtp,
            needs_signing_secret: key == ConnectorKey::Verification,
            sandbox_available: state.sandbox.is_some()
                && matches!(key, ConnectorKey::HubSpot | ConnectorKey::Verification),
            scopes: d.all_scopes(),
            form,
            errors,
        },
    )
}

/// GET /connections/new/{connector}
pub async fn new_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    _admin: Admin,
    key: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let key = connector_of(&key)?;
    let environment = if state.sandbox.is_some() {
        "sandbox"
    } else {
        "production"
    };
    let form = NewForm {
        name: key.def().name.to_owned(),
        environment: environment.into(),
        ..NewForm::default()
    };
    new_page(&state, &req, key, StatusCode::OK, form, FieldErrors::new())
}

/// POST /connections/new/{connector}
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    key: web::Path<String>,
    form: web::Form<NewForm>,
) -> Result<HttpResponse, AppError> {
    let key = connector_of(&key)?;
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let name = errors.check(PersonName::parse("name", &form.name).map_err(|e| {
        FieldError::new(
            "name",
            e.message.replace("a name", "a name for the connection"),
        )
    }));
    let environment = Environment::parse(&form.environment);
    match environment {
        None => errors.push(FieldError::new(
            "environment",
            "Choose sandbox or production.",
        )),
        Some(Environment::Sandbox) if state.sandbox.is_none() => {
            errors.push(FieldError::new(
                "environment",
                "The sandbox is turned off on this Ferry (FERRY_SANDBOX).",
            ));
        }
        _ => {}
    }
    let (Some(name), Some(environment), true) = (name, environment, errors.is_empty()) else {
        return new_page(
            &state,
            &req,
            key,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
        );
    };
    match key {
        ConnectorKey::HubSpot => {
            start_oauth(&state, &req, &admin, name.as_str(), environment, form).await
        }
        _ => create_with_key(&state, &req, &admin, key, name.as_str(), environment, form).await,
    }
}

async fn start_oauth(
    state: &AppState,
    req: &HttpRequest,
    admin: &Member,
    name: &str,
    environment: Environment,
    form: NewForm,
) -> Result<HttpResponse, AppError> {
    let Some(app) = state.connections.hubspot(environment) else {
        let mut errors = FieldErrors::new();
        errors.push(FieldError::new("environment", "HubSpot production is not configured on this Ferry (FERRY_HUBSPOT_CLIENT_ID). Use the sandbox, or ask your operator."));
        return new_page(
            state,
            req,
            ConnectorKey::HubSpot,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
        );
    };
    // Least privilege: only the scopes HubSpot's triggers and actions need.
    let scopes: Vec<String> = ConnectorKey::HubSpot
        .def()
        .all_scopes()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let authorization = app.oauth.authorize(&scopes);
    let now = state.clock.now();
    store::start_oauth(
        &state.db,
        state.connections.vault(),
        &token_hash(&authorization.state),
        &OAuthFlow {
            tenant_id: admin.tenant_id.clone(),
            user_id: admin.user.user_id.clone(),
            connector: ConnectorKey::HubSpot,
            name: name.to_owned(),
            environment,
            scopes,
            pkce_verifier: authorization.pkce_verifier,
            expires_at: now + Duration::minutes(FLOW_MINUTES),
        },
        now,
    )
    .await?;
    Ok(redirect(authorization.url.as_str()))
}

/// The provider's answer at the callback.
#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

fn connect_failed(message: &str) -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "HubSpot was not connected",
        message,
        None,
    )
}

/// GET /connections/oauth/callback
pub async fn oauth_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    if q.state.is_empty() {
        return Ok(connect_failed(
            "The answer from HubSpot carried no state, so it cannot be matched to a connection attempt. Nothing was connected; start again from Connections.",
        ));
    }
    let flow = match store::take_oauth(
        &state.db,
        state.connections.vault(),
        &admin.tenant_id,
        &token_hash(&q.state),
    )
    .await
    {
        Ok(flow) => flow,
        Err(StoreError::NotFound) => {
            tracing::warn!("OAuth callback with an unknown or reused state");
            return Ok(connect_failed(
                "This answer does not match a connection attempt of yours (the state is unknown, reused, or from another session). Nothing was connected; start again from Connections.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if flow.user_id != admin.user.user_id || flow.expires_at <= state.clock.now() {
        return Ok(connect_failed(
            "This connection attempt has expired or was started by someone else. Nothing was connected; start again from Connections.",
        ));
    }
    if !q.error.is_empty() {
        let detail = if q.error == "access_denied" {
            "Access was denied on HubSpot's consent screen.".to_owned()
        } else {
            let said: String = q.error_description.chars().take(200).collect();
            format!(
                "HubSpot returned an error ({}): {said}.",
                q.error.chars().take(50).collect::<String>()
            )
        };
        return Ok(connect_failed(&format!("{detail} Nothing was connected.")));
    }
    let Some(app) = state.connections.hubspot(flow.environment) else {
        return Ok(connect_failed(
            "HubSpot is not configured for this environment.",
        ));
    };
    let http = state.connections.http(flow.environment);
    let tokens = match app.oauth.exchange(http, &q.code, &flow.pkce_verifier).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "OAuth code exchange failed");
            // Providers' own wording is not shown (it may quote anything);
            // the OAuth error code is, with what it means.
            let meaning = if e.to_string().contains("invalid_grant") {
                " — the code expired, was already used, or did not match this sign-in"
            } else {
                ""
            };
            return Ok(connect_failed(&format!(
                "HubSpot refused the authorization code ({e}){meaning}. Nothing was connected; start again from Connections."
            )));
        }
    };
    let info = match hubspot::token_info(http, &app.api_base, &tokens.access_token).await {
        Ok(info) => info,
        Err(e) => {
            return Ok(connect_failed(&format!(
                "HubSpot did not confirm the new token ({e}). Nothing was connected."
            )));
        }
    };
    let now = state.clock.now();
    let expires = tokens
        .expires_in
        .map(|d| now + Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(1800)));
    let credentials = Credentials {
        access_token: Some(tokens.access_token),
        refresh_token: tokens.refresh_token,
        ..Credentials::default()
    };
    let connection = store::create(
        &state.db,
        state.connections.vault(),
        &admin.tenant_id,
        NewConnection {
            connector: ConnectorKey::HubSpot,
            name: &flow.name,
            environment: flow.environment,
            scopes: &info.scopes,
            external_account: Some(&info.hub_id),
            base_url: None,
            access_expires_at: expires,
            credential_expires_at: None,
            created_by: &admin.user.user_id,
        },
        &credentials,
        now,
    )
    .await?;
    audit(&state, &req, Some(&admin.tenant_id), Some(&admin.user), "connection.created", "connection", connection.id.as_str(), json!({ "connector": "hubspot", "environment": flow.environment.as_str(), "portal": info.hub_id, "scopes": info.scopes })).await?;
    if flow.environment == Environment::Sandbox
        && let Err(e) = subscribe_sandbox_webhooks(&state, &app.oauth.client_id).await
    {
        tracing::warn!(error = %e, "could not point the HubSpot simulator's webhooks at Ferry");
    }
    Ok(redirect_with_flash(
        &format!("/connections/{}", connection.id),
        "success",
        &format!("HubSpot connected (portal {}).", info.hub_id),
    ))
}

#[allow(clippy::too_many_arguments)]
async fn create_with_key(
    state: &AppState,
    req: &HttpRequest,
    admin: &Member,
    key: ConnectorKey,
    name: &str,
    environment: Environment,
    form: NewForm,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    let http = state.connections.http(environment).clone();
    let mut credentials = Credentials::default();
    let mut sandbox_account: Option<String> = None;
    let sandbox_base = |path: &str| state.sandbox.as_ref().and_then(|s| s.url.join(path).ok());

    let base_url: Option<Url> = match (key, environment) {
        (ConnectorKey::Verification, Environment::Sandbox) => sandbox_base("/sandbox/verify"),
        (ConnectorKey::Webhook, _) => None,
        _ => match Url::parse(form.base_url.trim()) {
            Ok(u) => Some(u),
            Err(_) => {
                errors.push(FieldError::new(
                    "base_url",
                    "Enter the full URL, like https://api.example.com.",
                ));
                None
            }
        },
    };
    if let Some(url) = &base_url
        && !(key == ConnectorKey::Verification && environment == Environment::Sandbox)
    {
        let scheme_ok = if key == ConnectorKey::Smtp {
            matches!(url.scheme(), "smtp" | "smtps")
        } else {
            matches!(url.scheme(), "http" | "https")
        };
        if !scheme_ok {
            errors.push(FieldError::new(
                "base_url",
                if key == ConnectorKey::Smtp {
                    "Use smtp://host:port or smtps://host:port."
                } else {
                    "Use an http:// or https:// URL."
                },
            ));
        } else {
            let checked = if key == ConnectorKey::Smtp {
                let default_port = if url.scheme() == "smtps" { 465 } else { 587 };
                http.policy()
                    .check_host(
                        url.host_str().unwrap_or_default(),
                        url.port().unwrap_or(default_port),
                    )
                    .await
            } else {
                http.policy().check_resolved(url).await
            };
            if let Err(e) = checked {
                errors.push(FieldError::new("base_url", e.to_string()));
            }
        }
    }

    match key {
        ConnectorKey::Verification
            if environment == Environment::Sandbox && form.api_key.trim().is_empty() =>
        {
            match provision_sandbox_account(state, &admin.tenant_id).await {
                Ok((account, api_key, secret)) => {
                    credentials.api_key = Some(api_key);
                    credentials.signing_secret = Some(secret);
                    sandbox_account = Some(account);
                }
                Err(e) => errors.push(FieldError::new(
                    "api_key",
                    format!("The sandbox provider could not create an account: {e}"),
                )),
            }
        }
        ConnectorKey::Verification | ConnectorKey::Http | ConnectorKey::Smtp => {
            let k = form.api_key.trim();
            if k.is_empty() && key != ConnectorKey::Http {
                errors.push(FieldError::new("api_key", "Enter the API key."));
            } else if k.len() > 4096 {
                errors.push(FieldError::new(
                    "api_key",
                    "That key is too long (at most 4096 characters).",
                ));
            } else if !k.is_empty() {
                credentials.api_key = Some(k.to_owned());
            }
            if key == ConnectorKey::Smtp {
                credentials.username =
                    Some(form.username.trim().to_owned()).filter(|u| !u.is_empty());
            }
            if key == ConnectorKey::Verification {
                credentials.signing_secret =
                    Some(form.signing_secret.trim().to_owned()).filter(|s| !s.is_empty());
            }
        }
        ConnectorKey::Webhook => {
            credentials.signing_secret = Some(format!(
                "whsec_{}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    rand::random::<[u8; 24]>()
                )
            ));
        }
        ConnectorKey::HubSpot => {}
    }

    // A key is tried before it is stored: a wrong key is an error now, not
    // a broken connection later.
    if errors.is_empty()
        && key == ConnectorKey::Verification
        && let Some(base) = &base_url
    {
        let ctx = CallContext {
            connection_id: format!("new-{}", rand::random::<u64>()),
            base_url: base.clone(),
            credentials: credentials.clone(),
            http: http.clone(),
            limiter: ferry_connectors::RateLimiter::memory(),
            idempotency_key: None,
            log: Default::default(),
            rate_limit: None,
        };
        let connector = Registry::new().get(key).ok_or(AppError::NotFound)?;
        match connector.test(&ctx).await {
            Ok(_) => {}
            Err(ConnectorError::Unauthorized(_)) => errors.push(FieldError::new(
                "api_key",
                "The provider refused this API key.",
            )),
            Err(e) => errors.push(FieldError::new(
                "base_url",
                format!("The provider could not be reached: {e}"),
            )),
        }
    }
    if !errors.is_empty() {
        return new_page(
            state,
            req,
            key,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
        );
    }
    let now = state.clock.now();
    let connection = store::create(
        &state.db,
        state.connections.vault(),
        &admin.tenant_id,
        NewConnection {
            connector: key,
            name,
            environment,
            scopes: &[],
            external_account: None,
            base_url: base_url.as_ref().map(Url::as_str),
            access_expires_at: None,
            credential_expires_at: Some(now + Duration::days(ROTATION_DAYS)),
            created_by: &admin.user.user_id,
        },
        &credentials,
        now,
    )
    .await?;
    audit(
        state,
        req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "connection.created",
        "connection",
        connection.id.as_str(),
        json!({ "connector": key.as_str(), "environment": environment.as_str() }),
    )
    .await?;
    if let Some(account) = &sandbox_account
        && let Err(e) = point_sandbox_webhooks(state, account, &connection.id).await
    {
        tracing::warn!(error = %e, "could not point the sandbox provider's webhooks at Ferry");
    }
    if let (ConnectorKey::Webhook, Some(secret)) = (key, credentials.signing_secret) {
        return connection_page(
            state,
            req,
            admin,
            &connection.id,
            StatusCode::CREATED,
            secret,
        )
        .await;
    }
    Ok(redirect_with_flash(
        &format!("/connections/{}", connection.id),
        "success",
        &format!("{} connected.", key.def().name),
    ))
}

/// Sends a JSON request to the simulators' admin API over HTTP; returns the
/// answer's JSON (null when it has none), or why it failed.
/// Ferry calls with the simulators' admin key; `owner` names the tenant on
/// whose behalf something is created (the simulators cap it per tenant).
async fn sandbox_admin(
    state: &AppState,
    method: reqwest::Method,
    path: &str,
    owner: Option<&ferry_core::TenantId>,
    body: serde_json::Value,
) -> Result<serde_json::Value, String> {
    use secrecy::ExposeSecret;
    let link = state.sandbox.as_ref().ok_or("the sandbox is off")?;
    let url = link.url.join(path).map_err(|e| e.to_string())?;
    let http = state.connections.http(Environment::Sandbox);
    let mut request = http
        .request(method, &url)
        .map_err(|e| e.to_string())?
        .bearer_auth(link.admin_key.expose_secret());
    if let Some(owner) = owner {
        request = request.header("X-Sandbox-Owner", owner.as_str());
    }
    let response = request
        .json(&body)
        .send()
        .await
        .map_err(|e| ConnectorError::from(e).to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the sandbox answered {status}"));
    }
    let body = http.read_body(response).await.map_err(|e| e.to_string())?;
    Ok(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

/// The portal of the tenant's sandbox HubSpot connection, if any.
pub(crate) async fn sandbox_portal(
    state: &AppState,
    tenant: &ferry_core::TenantId,
) -> Result<Option<String>, AppError> {
    Ok(store::list(&state.db, tenant)
        .await?
        .into_iter()
        .find(|c| c.connector == ConnectorKey::HubSpot && c.environment == Environment::Sandbox)
        .and_then(|c| c.external_account))
}

/// Sample client contacts: most pass, one is flagged, one stays pending,
/// one lacks a last name (it fails validation and is not sent anywhere).
const SAMPLES: &[(&str, &str, &str)] = &[
    ("Grace", "Hopper", "grace.hopper@clients.example"),
    ("Alan", "Turing", "alan.turing@clients.example"),
    ("Katherine", "Johnson", "k.johnson+kyc@clients.example"),
    ("Mallory", "Consider", "mallory@clients.example"),
    ("Penny", "Pending", "penny@clients.example"),
    ("Nolan", "", "nolan@clients.example"),
];

/// POST /sandbox/samples (admin): creates sample contacts in the tenant's
/// sandbox HubSpot portal, as a CRM user would; the portal's webhooks then
/// start the published workflows.
pub async fn sample_contacts(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: Admin,
) -> Result<HttpResponse, AppError> {
    let member = admin.0;
    let Some(portal) = sandbox_portal(&state, &member.tenant_id).await? else {
        return Err(AppError::Conflict(
            "Connect HubSpot (sandbox) first: the sample contacts are created in its portal."
                .into(),
        ));
    };
    let run = rand::random::<u16>();
    let mut created = 0;
    for (first, last, email) in SAMPLES {
        let email = email.replace('@', &format!(".{run}@"));
        let mut properties = json!({ "firstname": first, "email": email });
        if !last.is_empty() {
            properties["lastname"] = json!(last);
        }
        match sandbox_admin(
            &state,
            reqwest::Method::POST,
            &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
            Some(&member.tenant_id),
            json!({ "properties": properties }),
        )
        .await
        {
            Ok(_) => created += 1,
            Err(e) => {
                return Ok(redirect_with_flash(
                    "/home",
                    "error",
                    &format!("The sandbox refused a sample contact: {e}"),
                ));
            }
        }
    }
    audit(
        &state,
        &req,
        Some(&member.tenant_id),
        Some(&member.user),
        "sandbox.samples_created",
        "portal",
        &portal,
        json!({ "contacts": created }),
    )
    .await?;
    Ok(redirect_with_flash(
        "/runs",
        "success",
        &format!(
            "{created} sample contacts created in the sandbox HubSpot portal; their runs appear here within seconds."
        ),
    ))
}

/// Points the HubSpot simulator app's webhooks at Ferry's `/hooks/hubspot/sandbox`
/// (on real HubSpot this is set once in the app's developer settings).
async fn subscribe_sandbox_webhooks(state: &AppState, client_id: &str) -> Result<(), String> {
    // The simulator signs the URI it calls; Ferry verifies against its public URL.
    let target = format!(
        "{}/hooks/hubspot/sandbox",
        state.config.public_url.as_str().trim_end_matches('/')
    );
    let body = json!({ "target_url": target, "subscriptions": ["contact.creation", "contact.propertyChange"] });
    sandbox_admin(
        state,
        reqwest::Method::PUT,
        &format!("/sandbox/hubspot/admin/apps/{client_id}/webhooks"),
        None,
        body,
    )
    .await?;
    Ok(())
}

/// A sandbox provider account: (account id, API key, result-webhook secret).
type SandboxAccount = (String, String, String);

/// Creates an account at the sandbox verification provider.
async fn provision_sandbox_account(
    state: &AppState,
    tenant: &ferry_core::TenantId,
) -> Result<SandboxAccount, String> {
    let body = sandbox_admin(
        state,
        reqwest::Method::POST,
        "/sandbox/verify/admin/accounts",
        Some(tenant),
        json!({ "delay_ms": 1500 }),
    )
    .await?;
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name} in the answer"))
    };
    Ok((
        field("account_id")?,
        field("api_key")?,
        field("webhook_secret")?,
    ))
}

/// Points a sandbox provider account's result webhooks at the connection's
/// inbound endpoint.
async fn point_sandbox_webhooks(
    state: &AppState,
    account: &str,
    connection: &ConnectionId,
) -> Result<(), String> {
    let base = &state.sandbox.as_ref().ok_or("the sandbox is off")?.url;
    let hook = base
        .join(&format!("/hooks/verification/{connection}"))
        .map_err(|e| e.to_string())?;
    let body = json!({ "webhook_url": hook.as_str(), "delay_ms": 1500 });
    sandbox_admin(
        state,
        reqwest::Method::PUT,
        &format!("/sandbox/verify/admin/accounts/{account}"),
        None,
        body,
    )
    .await?;
    Ok(())
}

struct EventRow {
    when: String,
    kind: String,
    message: String,
}

#[derive(Template)]
#[template(path = "connection.html")]
struct ConnectionPage {
    layout: Layout,
    is_admin: bool,
    id: String,
    name: String,
    connector: &'static str,
    auth: &'static str,
    environment: &'static str,
    status: &'static str,
    status_class: String,
    status_reason: String,
    scopes: Vec<String>,
    account: String,
    base_url: String,
    credential: String,
    created_by: String,
    created: String,
    last_used: String,
    access_expires: String,
    rotation: String,
    events: Vec<EventRow>,
    hook_url: String,
    received: u64,
    last_received: String,
    one_time_secret: String,
}

/// GET /connections/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: ConnectionId = parse_id(&id)?;
    connection_page(&state, &req, &member, &id, StatusCode::OK, String::new()).await
}

/// The connection page; `one_time_secret` is shown once, right after a
/// webhook connection is created, and never again.
async fn connection_page(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    id: &ConnectionId,
    status: StatusCode,
    one_time_secret: String,
) -> Result<HttpResponse, AppError> {
    let id = id.clone();
    let c = store::get(&state.db, &member.tenant_id, &id).await?;
    let (received, last_received) =
        ferry_store::inbound::stats(&state.db, &member.tenant_id, &id).await?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    let hook_url = match c.connector {
        ConnectorKey::Webhook => format!("{base}/hooks/webhook/{id}"),
        ConnectorKey::HubSpot if c.environment == Environment::Sandbox => {
            format!("{base}/hooks/hubspot/sandbox")
        }
        ConnectorKey::HubSpot => format!("{base}/hooks/hubspot"),
        ConnectorKey::Verification => format!("{base}/hooks/verification/{id}"),
        _ => String::new(),
    };
    let creator = users::get(&state.db, &c.created_by)
        .await
        .map(|u| u.name)
        .unwrap_or_else(|_| "a former member".into());
    let events = store::auth_events(&state.db, &member.tenant_id, &id, 20)
        .await?
        .into_iter()
        .map(|e| EventRow {
            when: when(Some(e.created_at)),
            kind: e.kind,
            message: e.message,
        })
        .collect();
    let def = c.connector.def();
    let credential = match def.auth {
        AuthKind::OAuth2 => "OAuth access and refresh tokens (encrypted)",
        AuthKind::ApiKey => "API key (encrypted)",
        AuthKind::HmacSecret => "Signing secret (encrypted)",
        AuthKind::None => "None",
    };
    let shown = display_status(&c, state.clock.now());
    render(
        req,
        status,
        &ConnectionPage {
            layout: Layout::new(req, c.name.clone(), "/connections"),
            is_admin: member.role == ferry_core::Role::Admin,
            id: c.id.to_string(),
            status: shown,
            status_class: shown.replace(' ', "-"),
            status_reason: c.status_reason.clone().unwrap_or_default(),
            name: c.name,
            connector: def.name,
            auth: def.auth.label(),
            environment: c.environment.as_str(),
            scopes: c.scopes,
            account: c.external_account.unwrap_or_default(),
            base_url: c.base_url.unwrap_or_default(),
            credential: credential.to_owned(),
            created_by: creator,
            created: when(Some(c.created_at)),
            last_used: when(c.last_used_at),
            access_expires: when(c.access_expires_at),
            rotation: when(c.credential_expires_at),
            events,
            hook_url,
            received,
            last_received: when(last_received),
            one_time_secret,
        },
    )
}

/// POST /connections/{id}/test
pub async fn test(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: ConnectionId = parse_id(&id)?;
    let page = format!("/connections/{id}");
    match state.connections.test(&admin.tenant_id, &id).await {
        Ok(message) => {
            audit(
                &state,
                &req,
                Some(&admin.tenant_id),
                Some(&admin.user),
                "connection.tested",
                "connection",
                id.as_str(),
                json!({ "ok": true }),
            )
            .await?;
            Ok(redirect_with_flash(
                &page,
                "success",
                &format!("Test passed. {message}"),
            ))
        }
        Err(ServiceError::Store(e)) => Err(e.into()),
        Err(ServiceError::Connector(e)) => {
            audit(
                &state,
                &req,
                Some(&admin.tenant_id),
                Some(&admin.user),
                "connection.tested",
                "connection",
                id.as_str(),
                json!({ "ok": false }),
            )
            .await?;
            Ok(redirect_with_flash(
                &page,
                "error",
                &format!("Test failed: {e}"),
            ))
        }
    }
}

/// POST /connections/{id}/revoke
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: ConnectionId = parse_id(&id)?;
    let c = store::get(&state.db, &admin.tenant_id, &id).await?;
    let remote = match state.connections.revoke(&admin.tenant_id, &id).await {
        Ok(remote) => remote,
        Err(ServiceError::Store(e)) => return Err(e.into()),
        Err(ServiceError::Connector(e)) => return Err(AppError::Internal(anyhow::Error::new(e))),
    };
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "connection.revoked",
        "connection",
        id.as_str(),
        json!({ "connector": c.connector.as_str(), "remote_revoked": remote }),
    )
    .await?;
    let message = if remote {
        format!("“{}” revoked at HubSpot and deleted from Ferry.", c.name)
    } else {
        format!("“{}” deleted from Ferry with its credentials.", c.name)
    };
    Ok(redirect_with_flash("/connections", "success", &message))
}
