//! Connecting HubSpot through OAuth 2.0: the callback (the flow starts in
//! `create`).

use super::*;
use ferry_app::connections::{OAuthCallback, OAuthOutcome};

/// The provider's answer at the callback.
#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub(super) code: String,
    #[serde(default)]
    pub(super) state: String,
    #[serde(default)]
    pub(super) error: String,
    #[serde(default)]
    pub(super) error_description: String,
}

pub(super) fn connect_failed(message: &str) -> HttpResponse {
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
    Admin(admin): Admin,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let answer = OAuthCallback {
        code: q.code,
        state: q.state,
        error: q.error,
        error_description: q.error_description,
    };
    match state
        .services
        .connections
        .finish_oauth(&admin.actor, answer)
        .await?
    {
        OAuthOutcome::Connected {
            id,
            portal,
            reconnected: true,
        } => Ok(redirect_with_flash(
            &format!("/connections/{id}"),
            FlashKind::Success,
            &format!(
                "HubSpot reconnected (portal {portal}): the same connection has new tokens, and the workflows that use it carry on."
            ),
        )),
        OAuthOutcome::Connected { id, portal, .. } => Ok(redirect_with_flash(
            &format!("/connections/{id}"),
            FlashKind::Success,
            &format!("HubSpot connected (portal {portal})."),
        )),
        OAuthOutcome::Failed(message) => Ok(connect_failed(&message)),
    }
}

/// POST /connections/{id}/reconnect: sign in again, same connection.
pub async fn reconnect(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<ConnectionId>,
) -> Result<HttpResponse, AppError> {
    let url = state
        .services
        .connections
        .start_reconnect(&admin.actor, &id.into_inner())
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, url.to_string()))
        .finish())
}
