//! Ferry's own calls to the simulators it serves (with their admin key):
//! sample contacts, webhook subscriptions, provider accounts.

use super::*;

/// Sends a JSON request to the simulators' admin API over HTTP; returns the
/// answer's JSON (null when it has none), or why it failed.
/// Ferry calls with the simulators' admin key; `owner` names the tenant on
/// whose behalf something is created (the simulators cap it per tenant).
pub(super) async fn sandbox_admin(
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
pub(super) const SAMPLES: &[(&str, &str, &str)] = &[
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
                    crate::templates::FlashKind::Error,
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
        ferry_core::AuditAction::SandboxSamplesCreated,
        "portal",
        &portal,
        json!({ "contacts": created }),
    )
    .await?;
    Ok(redirect_with_flash(
        "/runs",
        crate::templates::FlashKind::Success,
        &format!(
            "{created} sample contacts created in the sandbox HubSpot portal; their runs appear here within seconds."
        ),
    ))
}

/// Points the HubSpot simulator app's webhooks at Ferry's `/hooks/hubspot/sandbox`
/// (on real HubSpot this is set once in the app's developer settings).
pub(super) async fn subscribe_sandbox_webhooks(
    state: &AppState,
    client_id: &str,
) -> Result<(), String> {
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
pub(super) type SandboxAccount = (String, String, String);

/// Creates an account at the sandbox verification provider.
pub(super) async fn provision_sandbox_account(
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
pub(super) async fn point_sandbox_webhooks(
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
