//! Connections made with a key: checked (scheme, SSRF guard, a test call)
//! before they are stored.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) async fn create_with_key(
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
        ferry_core::AuditAction::ConnectionCreated,
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
        crate::templates::FlashKind::Success,
        &format!("{} connected.", key.def().name),
    ))
}
