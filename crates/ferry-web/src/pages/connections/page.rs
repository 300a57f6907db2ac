//! A connection's page, testing it and revoking it.

use super::*;

pub(super) struct EventRow {
    pub(super) when: String,
    pub(super) kind: String,
    pub(super) message: String,
}

#[derive(Template)]
#[template(path = "connection.html")]
pub(super) struct ConnectionPage {
    pub(super) layout: Layout,
    pub(super) is_admin: bool,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) connector: &'static str,
    pub(super) auth: &'static str,
    pub(super) environment: &'static str,
    pub(super) status: &'static str,
    pub(super) status_class: String,
    pub(super) status_reason: String,
    pub(super) scopes: Vec<String>,
    pub(super) account: String,
    pub(super) base_url: String,
    pub(super) credential: String,
    pub(super) created_by: String,
    pub(super) created: String,
    pub(super) last_used: String,
    pub(super) access_expires: String,
    pub(super) rotation: String,
    pub(super) events: Vec<EventRow>,
    pub(super) hook_url: String,
    pub(super) received: u64,
    pub(super) last_received: String,
    pub(super) one_time_secret: String,
    pub(super) oauth: bool,
    pub(super) used_by: Vec<(String, String, bool)>,
    pub(super) live_users: usize,
    pub(super) revoke_error: Option<String>,
}

/// GET /connections/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    connection_page(
        &state,
        &req,
        &member,
        &id,
        StatusCode::OK,
        String::new(),
        None,
    )
    .await
}

/// The connection page; `one_time_secret` is shown once, right after a
/// webhook connection is created, and never again.
pub(super) async fn connection_page(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    id: &ConnectionId,
    status: StatusCode,
    one_time_secret: String,
    revoke_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let view = state.services.connections.view(&member.actor, id).await?;
    let c = view.connection;
    let (received, last_received, hook_url, creator) = (
        view.received,
        view.last_received,
        view.hook_url,
        view.creator,
    );
    let events = view
        .events
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
    let used_by: Vec<(String, String, bool)> = view
        .used_by
        .into_iter()
        .map(|u| (u.id.to_string(), u.name, u.live))
        .collect();
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
            oauth: def.auth == AuthKind::OAuth2,
            live_users: used_by.iter().filter(|u| u.2).count(),
            used_by,
            revoke_error,
        },
    )
}

/// POST /connections/{id}/test
pub async fn test(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let outcome = state.services.connections.test(&admin.actor, &id).await?;
    let (kind, message) = if outcome.ok {
        (
            FlashKind::Success,
            format!("Test passed. {}", outcome.message),
        )
    } else {
        (
            FlashKind::Error,
            format!("Test failed: {}", outcome.message),
        )
    };
    Ok(redirect_with_flash(
        &format!("/connections/{id}"),
        kind,
        &message,
    ))
}

/// The revoke form: `confirm` is ticked when the admin has read which
/// published workflows use the connection.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    confirm: String,
}

/// POST /connections/{id}/revoke
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<ConnectionId>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let revoked = match state
        .services
        .connections
        .revoke(&admin.actor, &id, !form.confirm.is_empty())
        .await
    {
        Ok(r) => r,
        Err(ferry_app::Error::Invalid(errors)) => {
            let message = errors.get("confirm").map(str::to_owned);
            return connection_page(
                &state,
                &req,
                &admin,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                String::new(),
                message,
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let message = if revoked.remote {
        format!(
            "“{}” revoked at HubSpot and deleted from Ferry.",
            revoked.name
        )
    } else {
        format!(
            "“{}” deleted from Ferry with its credentials.",
            revoked.name
        )
    };
    Ok(redirect_with_flash(
        "/connections",
        FlashKind::Success,
        &message,
    ))
}
