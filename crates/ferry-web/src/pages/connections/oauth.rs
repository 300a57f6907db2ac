//! Connecting HubSpot through OAuth 2.0: the flow's start (PKCE and a
//! single-use state) and the callback.

use super::*;

pub(super) async fn start_oauth(
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
    audit(&state, &req, Some(&admin.tenant_id), Some(&admin.user), ferry_core::AuditAction::ConnectionCreated, "connection", connection.id.as_str(), json!({ "connector": "hubspot", "environment": flow.environment.as_str(), "portal": info.hub_id, "scopes": info.scopes })).await?;
    if flow.environment == Environment::Sandbox
        && let Err(e) = subscribe_sandbox_webhooks(&state, &app.oauth.client_id).await
    {
        tracing::warn!(error = %e, "could not point the HubSpot simulator's webhooks at Ferry");
    }
    Ok(redirect_with_flash(
        &format!("/connections/{}", connection.id),
        crate::templates::FlashKind::Success,
        &format!("HubSpot connected (portal {}).", info.hub_id),
    ))
}
