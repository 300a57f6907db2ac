//! Connecting HubSpot through OAuth 2.0: the flow's start (PKCE and a
//! single-use state, least-privilege scopes) and the callback (the state
//! must be the admin's own, unused and fresh; the token is confirmed before
//! anything is stored).

use super::*;

/// The provider's answer at the OAuth callback, as received.
#[derive(Debug, Clone, Default)]
pub struct OAuthCallback {
    /// The authorization code.
    pub code: String,
    /// The state Ferry sent.
    pub state: String,
    /// An OAuth error code, when the person or provider refused.
    pub error: String,
    /// The provider's words for it.
    pub error_description: String,
}

/// How an OAuth callback ended.
#[derive(Debug, Clone)]
pub enum OAuthOutcome {
    /// Connected.
    Connected {
        /// The new connection.
        id: ConnectionId,
        /// The HubSpot portal.
        portal: String,
    },
    /// Nothing was connected; the message says why and what to do.
    Failed(String),
}

impl Connections {
    /// Starts connecting HubSpot: stores the flow (PKCE verifier sealed,
    /// state hashed) and returns the consent screen's URL.
    pub async fn start_oauth(
        &self,
        admin: &Member,
        basics: NewConnectionBasics,
    ) -> Result<Url, Error> {
        admin.require_admin()?;
        self.check_environment(basics.environment)?;
        let Some(app) = self.0.connections.hubspot(basics.environment) else {
            return Err(Error::field(
                "environment",
                "HubSpot production is not configured on this Ferry (FERRY_HUBSPOT_CLIENT_ID). Use the sandbox, or ask your operator.",
            ));
        };
        // Least privilege: only the scopes HubSpot's triggers and actions need.
        let scopes: Vec<String> = ConnectorKey::HubSpot
            .def()
            .all_scopes()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let authorization = app.oauth.authorize(&scopes);
        let now = self.0.clock.now();
        store::start_oauth(
            &self.0.db,
            self.0.connections.vault(),
            &token_hash(&authorization.state),
            &OAuthFlow {
                tenant_id: admin.tenant_id.clone(),
                user_id: admin.user_id.clone(),
                connector: ConnectorKey::HubSpot,
                name: basics.name.as_str().to_owned(),
                environment: basics.environment,
                scopes,
                pkce_verifier: authorization.pkce_verifier,
                expires_at: now + Duration::minutes(FLOW_MINUTES),
            },
            now,
        )
        .await?;
        Ok(authorization.url)
    }

    /// Finishes connecting HubSpot at the callback: the state must be the
    /// admin's own, unused and fresh; the code is exchanged with the PKCE
    /// verifier and the token confirmed before anything is stored.
    pub async fn finish_oauth(
        &self,
        admin: &Member,
        answer: OAuthCallback,
    ) -> Result<OAuthOutcome, Error> {
        admin.require_admin()?;
        let failed = |m: &str| Ok(OAuthOutcome::Failed(m.to_owned()));
        if answer.state.is_empty() {
            return failed(
                "The answer from HubSpot carried no state, so it cannot be matched to a connection attempt. Nothing was connected; start again from Connections.",
            );
        }
        let flow = match store::take_oauth(
            &self.0.db,
            self.0.connections.vault(),
            &admin.tenant_id,
            &token_hash(&answer.state),
        )
        .await
        {
            Ok(flow) => flow,
            Err(StoreError::NotFound) => {
                tracing::warn!("OAuth callback with an unknown or reused state");
                return failed(
                    "This answer does not match a connection attempt of yours (the state is unknown, reused, or from another session). Nothing was connected; start again from Connections.",
                );
            }
            Err(e) => return Err(e.into()),
        };
        if flow.user_id != admin.user_id || flow.expires_at <= self.0.clock.now() {
            return failed(
                "This connection attempt has expired or was started by someone else. Nothing was connected; start again from Connections.",
            );
        }
        if !answer.error.is_empty() {
            let detail = if answer.error == "access_denied" {
                "Access was denied on HubSpot's consent screen.".to_owned()
            } else {
                let said: String = answer.error_description.chars().take(200).collect();
                format!(
                    "HubSpot returned an error ({}): {said}.",
                    answer.error.chars().take(50).collect::<String>()
                )
            };
            return Ok(OAuthOutcome::Failed(format!(
                "{detail} Nothing was connected."
            )));
        }
        let Some(app) = self.0.connections.hubspot(flow.environment) else {
            return failed("HubSpot is not configured for this environment.");
        };
        let http = self.0.connections.http(flow.environment);
        let tokens = match app
            .oauth
            .exchange(http, &answer.code, &flow.pkce_verifier)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "OAuth code exchange failed");
                // Providers' own wording is not shown (it may quote
                // anything); the OAuth error code is, with what it means.
                let meaning = if e.to_string().contains("invalid_grant") {
                    " — the code expired, was already used, or did not match this sign-in"
                } else {
                    ""
                };
                return Ok(OAuthOutcome::Failed(format!(
                    "HubSpot refused the authorization code ({e}){meaning}. Nothing was connected; start again from Connections."
                )));
            }
        };
        let info =
            match hubspot::token_info(http, &app.api_base, tokens.access_token.expose()).await {
                Ok(info) => info,
                Err(e) => {
                    return Ok(OAuthOutcome::Failed(format!(
                        "HubSpot did not confirm the new token ({e}). Nothing was connected."
                    )));
                }
            };
        let now = self.0.clock.now();
        let expires = tokens
            .expires_in
            .map(|d| now + Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(1800)));
        let credentials = Credentials {
            access_token: Some(tokens.access_token),
            refresh_token: tokens.refresh_token,
            ..Credentials::default()
        };
        let connection = self
            .store_new(
                admin,
                NewConnection {
                    connector: ConnectorKey::HubSpot,
                    name: &flow.name,
                    environment: flow.environment,
                    scopes: &info.scopes,
                    external_account: Some(&info.hub_id),
                    base_url: None,
                    access_expires_at: expires,
                    credential_expires_at: None,
                    created_by: &admin.user_id,
                },
                &credentials,
                json!({ "connector": "hubspot", "environment": flow.environment.as_str(), "portal": info.hub_id, "scopes": info.scopes }),
            )
            .await?;
        if flow.environment == Environment::Sandbox
            && let Some(link) = &self.0.sandbox
            && let Err(e) = link
                .subscribe_hubspot_webhooks(http, &self.0.links.public_url, &app.oauth.client_id)
                .await
        {
            tracing::warn!(error = %e, "could not point the HubSpot simulator's webhooks at Ferry");
        }
        Ok(OAuthOutcome::Connected {
            id: connection.id,
            portal: info.hub_id,
        })
    }
}
