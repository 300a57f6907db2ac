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
}

/// GET /connections/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    connection_page(&state, &req, &member, &id, StatusCode::OK, String::new()).await
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
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let page = format!("/connections/{id}");
    match state.connections.test(&admin.tenant_id, &id).await {
        Ok(message) => {
            audit(
                &state,
                &req,
                Some(&admin.tenant_id),
                Some(&admin.user),
                ferry_core::AuditAction::ConnectionTested,
                "connection",
                id.as_str(),
                json!({ "ok": true }),
            )
            .await?;
            Ok(redirect_with_flash(
                &page,
                crate::templates::FlashKind::Success,
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
                ferry_core::AuditAction::ConnectionTested,
                "connection",
                id.as_str(),
                json!({ "ok": false }),
            )
            .await?;
            Ok(redirect_with_flash(
                &page,
                crate::templates::FlashKind::Error,
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
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
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
        ferry_core::AuditAction::ConnectionRevoked,
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
    Ok(redirect_with_flash(
        "/connections",
        crate::templates::FlashKind::Success,
        &message,
    ))
}
