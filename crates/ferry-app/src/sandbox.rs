//! Ferry's own calls to the simulators it serves, with their admin key:
//! sample contacts, webhook subscriptions, provider accounts.

use ferry_connectors::{ConnectorError, HttpClient};
use ferry_core::{ConnectionId, TenantId};
use secrecy::ExposeSecret;
use serde_json::json;

/// How Ferry reaches the simulators it serves.
#[derive(Clone)]
pub struct SandboxLink {
    /// Where this process reaches itself.
    pub url: url::Url,
    /// The simulators' admin key (`Authorization: Bearer`).
    pub admin_key: secrecy::SecretString,
}

impl std::fmt::Debug for SandboxLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxLink")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// A sandbox provider account: (account id, API key, result-webhook secret).
pub(crate) struct SandboxAccount {
    pub account: String,
    pub api_key: String,
    pub secret: String,
}

/// Sample client contacts: most pass, one is flagged for review, one is
/// rejected, one stays pending, one lacks a last name (it fails validation
/// and is not sent anywhere).
pub const SAMPLES: &[(&str, &str, &str)] = &[
    ("Grace", "Hopper", "grace.hopper@clients.example"),
    ("Alan", "Turing", "alan.turing@clients.example"),
    ("Katherine", "Johnson", "k.johnson+kyc@clients.example"),
    ("Mallory", "Consider", "mallory@clients.example"),
    ("Rita", "Rejected", "rita@clients.example"),
    ("Penny", "Pending", "penny@clients.example"),
    ("Nolan", "", "nolan@clients.example"),
];

impl SandboxLink {
    /// Sends a JSON request to the simulators' admin API; returns the
    /// answer's JSON (null when it has none), or why it failed. `owner`
    /// names the tenant on whose behalf something is created (the
    /// simulators cap it per tenant).
    pub(crate) async fn admin(
        &self,
        http: &HttpClient,
        method: reqwest::Method,
        path: &str,
        owner: Option<&TenantId>,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let url = self.url.join(path).map_err(|e| e.to_string())?;
        let mut request = http
            .request(method, &url)
            .map_err(|e| e.to_string())?
            .bearer_auth(self.admin_key.expose_secret());
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

    /// Points the HubSpot simulator app's webhooks at Ferry's
    /// `/hooks/hubspot/sandbox` (on real HubSpot this is set once in the
    /// app's developer settings). The simulator signs the URI it calls;
    /// Ferry verifies against its public URL.
    pub(crate) async fn subscribe_hubspot_webhooks(
        &self,
        http: &HttpClient,
        public_url: &url::Url,
        client_id: &str,
    ) -> Result<(), String> {
        let target = format!(
            "{}/hooks/hubspot/sandbox",
            public_url.as_str().trim_end_matches('/')
        );
        let body = json!({ "target_url": target, "subscriptions": ["contact.creation", "contact.propertyChange"] });
        self.admin(
            http,
            reqwest::Method::PUT,
            &format!("/sandbox/hubspot/admin/apps/{client_id}/webhooks"),
            None,
            body,
        )
        .await?;
        Ok(())
    }

    /// Creates an account at the sandbox verification provider.
    pub(crate) async fn provision_account(
        &self,
        http: &HttpClient,
        tenant: &TenantId,
    ) -> Result<SandboxAccount, String> {
        let body = self
            .admin(
                http,
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
        Ok(SandboxAccount {
            account: field("account_id")?,
            api_key: field("api_key")?,
            secret: field("webhook_secret")?,
        })
    }

    /// Points a sandbox provider account's result webhooks at the
    /// connection's inbound endpoint.
    pub(crate) async fn point_provider_webhooks(
        &self,
        http: &HttpClient,
        account: &str,
        connection: &ConnectionId,
    ) -> Result<(), String> {
        let hook = self
            .url
            .join(&format!("/hooks/verification/{connection}"))
            .map_err(|e| e.to_string())?;
        let body = json!({ "webhook_url": hook.as_str(), "delay_ms": 1500 });
        self.admin(
            http,
            reqwest::Method::PUT,
            &format!("/sandbox/verify/admin/accounts/{account}"),
            None,
            body,
        )
        .await?;
        Ok(())
    }
}
