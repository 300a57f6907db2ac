//! Connections: the catalog, connecting HubSpot through OAuth 2.0 (PKCE and
//! state), API-key connections, a connection's page, testing and revoking.
//! Secrets are never rendered back: the pages show only which kind of
//! credential a connection holds.

mod oauth;
mod page;
mod sandbox;

pub use oauth::*;
pub use page::*;
pub use sandbox::*;

use crate::error::AppError;
use crate::error_page::error_page;
use crate::session::{Admin, Member};
use crate::state::AppState;
use crate::templates::{FieldErrors, FlashKind, Layout, redirect, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use ferry_app::connections::{NewConnectionBasics, NewKeyConnection};
use ferry_core::catalog::{AuthKind, ConnectorKey};
use ferry_core::{ConnectionId, ConnectionStatus};
use ferry_store::connections::Connection;

pub(super) struct CatalogCard {
    pub(super) key: &'static str,
    pub(super) name: &'static str,
    pub(super) description: &'static str,
    pub(super) auth: &'static str,
}

pub(super) struct ConnectionRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) connector: &'static str,
    pub(super) environment: &'static str,
    pub(super) status: &'static str,
    pub(super) status_class: String,
    pub(super) last_used: String,
}

pub(super) fn display_status(c: &Connection, now: DateTime<Utc>) -> &'static str {
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

pub(super) fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[derive(Template)]
#[template(path = "connections.html")]
pub(super) struct ConnectionsPage {
    pub(super) layout: Layout,
    pub(super) is_admin: bool,
    pub(super) rows: Vec<ConnectionRow>,
    pub(super) catalog: Vec<CatalogCard>,
}

/// GET /connections
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now();
    let rows = state
        .services
        .connections
        .list(&member.actor)
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
    pub(super) name: String,
    #[serde(default)]
    pub(super) environment: String,
    #[serde(default)]
    pub(super) api_key: String,
    #[serde(default)]
    pub(super) base_url: String,
    #[serde(default)]
    pub(super) username: String,
    #[serde(default)]
    pub(super) signing_secret: String,
}

#[derive(Template)]
#[template(path = "connection_new.html")]
pub(super) struct NewPage {
    pub(super) layout: Layout,
    pub(super) key: &'static str,
    pub(super) name: &'static str,
    pub(super) description: &'static str,
    pub(super) oauth: bool,
    pub(super) needs_key: bool,
    pub(super) needs_base_url: bool,
    pub(super) needs_username: bool,
    pub(super) needs_signing_secret: bool,
    pub(super) sandbox_available: bool,
    pub(super) scopes: Vec<&'static str>,
    pub(super) form: NewForm,
    pub(super) errors: FieldErrors,
}

pub(super) fn connector_of(raw: &str) -> Result<ConnectorKey, AppError> {
    ConnectorKey::parse(raw).ok_or(AppError::NotFound)
}

pub(super) fn new_page(
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
            sandbox_available: state.services.connections.sandbox_available()
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
    let environment = if state.services.connections.sandbox_available() {
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

impl TryFrom<&NewForm> for NewConnectionBasics {
    type Error = FieldErrors;
    fn try_from(form: &NewForm) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check(super::parse_name(&form.name, "connection"));
        let environment = errors.check(super::parse_environment(&form.environment));
        match (name, environment) {
            (Some(name), Some(environment)) if errors.is_empty() => Ok(Self { name, environment }),
            _ => Err(errors),
        }
    }
}

/// POST /connections/new/{connector}: HubSpot goes to its consent screen;
/// every other connector is checked with its key and stored.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    key: web::Path<String>,
    form: web::Form<NewForm>,
) -> Result<HttpResponse, AppError> {
    let key = connector_of(&key)?;
    let form = form.into_inner();
    let invalid = |errors| {
        new_page(
            &state,
            &req,
            key,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.clone(),
            errors,
        )
    };
    let basics = match NewConnectionBasics::try_from(&form) {
        Ok(b) => b,
        Err(errors) => return invalid(errors),
    };
    let connections = &state.services.connections;
    if key == ConnectorKey::HubSpot {
        return match connections.start_oauth(&admin.actor, basics).await {
            Ok(consent) => Ok(redirect(consent.as_str())),
            Err(ferry_app::Error::Invalid(errors)) => invalid(errors),
            Err(e) => Err(e.into()),
        };
    }
    let input = NewKeyConnection {
        connector: key,
        basics,
        api_key: form.api_key.clone(),
        base_url: form.base_url.clone(),
        username: form.username.clone(),
        signing_secret: form.signing_secret.clone(),
    };
    match connections.create_with_key(&admin.actor, input).await {
        Ok(created) => match created.one_time_secret {
            Some(secret) => {
                connection_page(
                    &state,
                    &req,
                    &admin,
                    &created.id,
                    StatusCode::CREATED,
                    secret,
                    None,
                )
                .await
            }
            None => Ok(redirect_with_flash(
                &format!("/connections/{}", created.id),
                FlashKind::Success,
                &format!("{} connected.", key.def().name),
            )),
        },
        Err(ferry_app::Error::Invalid(errors)) => invalid(errors),
        Err(e) => Err(e.into()),
    }
}
