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
        /// The connection (new, or the one signed in again).
        id: ConnectionId,
        /// The HubSpot portal.
        portal: String,
        /// An existing connection got a new grant.
        reconnected: bool,
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
        self.begin_oauth(admin, basics.name.as_str(), basics.environment, None, None)
            .await
    }

    /// Starts signing an existing HubSpot connection in again (a broken or
    /// revoked grant): on return the same connection gets the new tokens,
    /// so the workflows that use it carry on untouched. The sandbox's
    /// consent screen is pointed at the connection's own account.
    pub async fn start_reconnect(&self, admin: &Member, id: &ConnectionId) -> Result<Url, Error> {
        admin.require_admin()?;
        let c = store::get(&self.0.db, &admin.tenant_id, id).await?;
        if c.connector.def().auth != ferry_core::catalog::AuthKind::OAuth2 {
            return Err(Error::Conflict(
                "Only an app you sign in to (OAuth) is reconnected; for an API key, revoke this connection and add one with the new key.".into(),
            ));
        }
        let hint = (c.environment == Environment::Sandbox)
            .then(|| c.external_account.clone())
            .flatten();
        self.begin_oauth(admin, &c.name, c.environment, Some(id.clone()), hint)
            .await
    }

    async fn begin_oauth(
        &self,
        admin: &Member,
        name: &str,
        environment: Environment,
        reconnect: Option<ConnectionId>,
        account_hint: Option<String>,
    ) -> Result<Url, Error> {
        let Some(app) = self.0.connections.hubspot(environment) else {
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
        let mut url = authorization.url;
        if let Some(portal) = account_hint {
            // The simulator's consent screen selects this account first.
            url.query_pairs_mut().append_pair("portal_hint", &portal);
        }
        let now = self.0.clock.now();
        store::start_oauth(
            &self.0.db,
            self.0.connections.vault(),
            &token_hash(&authorization.state),
            &OAuthFlow {
                tenant_id: admin.tenant_id.clone(),
                user_id: admin.user_id.clone(),
                connector: ConnectorKey::HubSpot,
                name: name.to_owned(),
                environment,
                scopes,
                pkce_verifier: authorization.pkce_verifier,
                expires_at: now + Duration::minutes(FLOW_MINUTES),
                reconnect,
            },
            now,
        )
        .await?;
        Ok(url)
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
        if let Some(id) = &flow.reconnect {
            let outcome = self
                .finish_reconnect(admin, id, &info.hub_id, &credentials, expires)
                .await?;
            // A grant Ferry does not keep is withdrawn at once.
            if matches!(outcome, OAuthOutcome::Failed(_))
                && let Some(token) = credentials.refresh_token()
                && let Err(e) = hubspot::revoke(http, &app.api_base, token).await
            {
                tracing::warn!(error = %e, "could not withdraw the unused grant");
            }
            return Ok(outcome);
        }
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
            reconnected: false,
        })
    }

    /// The new grant of a reconnect goes to the same connection, when it is
    /// for the same account; the change, its auth event and its audit entry
    /// in one transaction.
    async fn finish_reconnect(
        &self,
        admin: &Member,
        id: &ConnectionId,
        portal: &str,
        credentials: &Credentials,
        expires: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<OAuthOutcome, Error> {
        let db = &self.0.db;
        let c = match store::get(db, &admin.tenant_id, id).await {
            Ok(c) => c,
            Err(StoreError::NotFound) => {
                return Ok(OAuthOutcome::Failed(
                    "The connection was revoked while you signed in. Nothing was changed; add a new connection.".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if c.external_account.as_deref() != Some(portal) {
            return Ok(OAuthOutcome::Failed(format!(
                "You chose HubSpot account {portal}, but this connection is for account {}. Nothing was changed: reconnect and choose that account, or add a new connection for the other one.",
                c.external_account.as_deref().unwrap_or("(unknown)")
            )));
        }
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        if !store::update_credentials(
            &tx,
            self.0.connections.vault(),
            &admin.tenant_id,
            id,
            c.version,
            credentials,
            expires,
            now,
        )
        .await?
        {
            return Err(Error::Conflict(
                "The connection changed while you signed in; reconnect again.".into(),
            ));
        }
        store::record_auth_event(
            &tx,
            &admin.tenant_id,
            id,
            "reconnected",
            "signed in again by an admin: new tokens for the same account",
            now,
        )
        .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::ConnectionReconnected,
            Target("connection", id.as_str()),
            json!({ "connector": c.connector.as_str(), "portal": portal }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(OAuthOutcome::Connected {
            id: id.clone(),
            portal: portal.to_owned(),
            reconnected: true,
        })
    }
}
