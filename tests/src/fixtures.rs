//! What tests set up through the app: operators, tenants and members,
//! connections, the reference workflow, sandbox contacts; and reads of the
//! app's state.

use crate::{Page, TestApp, TestClient};
use ferry_core::{EmailAddress, TenantId, UserId};

impl TestApp {
    /// The app's master key, from the key file it generated.
    pub fn master_key(&self) -> [u8; 32] {
        use base64::Engine;
        let text = std::fs::read_to_string(self.data_dir.path().join("master.key"))
            .expect("master key file");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .expect("base64 key");
        bytes.try_into().expect("32 bytes")
    }

    /// The vault with the app's master key (to read what Ferry stored).
    pub fn vault(&self) -> ferry_store::vault::Vault {
        ferry_store::vault::Vault::new(
            self.db.clone(),
            ferry_store::vault::MasterKey::new(self.master_key()),
        )
    }

    /// The sandbox HubSpot app's client secret (it signs the simulator's webhooks).
    pub fn sandbox_client_secret(&self) -> String {
        ferry_engine::connections::sandbox_client_secret(&self.master_key())
    }

    /// A connection's stored credentials, opened.
    pub async fn credentials(
        &self,
        tenant: &TenantId,
        id: &ferry_core::ConnectionId,
    ) -> ferry_core::Credentials {
        ferry_store::connections::with_credentials(&self.db, &self.vault(), tenant, id)
            .await
            .expect("credentials")
            .1
    }

    /// A JSON GET straight to the app (the simulators' admin API).
    pub async fn json(&self, path: &str) -> serde_json::Value {
        reqwest::get(format!("{}{path}", self.address))
            .await
            .expect("GET")
            .json()
            .await
            .expect("json")
    }

    /// A JSON request with a body straight to the app.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> u16 {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.address))
            .json(&body)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    /// Starts connecting sandbox HubSpot as `client` (an admin): returns the
    /// consent URL the browser would be sent to.
    pub async fn start_hubspot(&self, client: &TestClient, name: &str) -> url::Url {
        let res = client
            .submit(
                "/connections/new/hubspot",
                "/connections/new/hubspot",
                &[("name", name), ("environment", "sandbox")],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        res.location.expect("consent URL").parse().expect("URL")
    }

    /// Answers the simulator's consent screen the way its form does (a
    /// fresh browser on this machine); returns the callback URL it
    /// redirects to.
    pub async fn consent(&self, consent_url: &url::Url, decision: &str) -> url::Url {
        let browser = self.client();
        let res = self
            .consent_as(&browser, consent_url, decision, "new")
            .await;
        assert_eq!(res.status, 302, "{}", res.body);
        res.location.expect("redirect").parse().expect("URL")
    }

    /// Opens the consent screen as `client` (its cookies: a Ferry session
    /// on a shared sandbox) and submits `decision` for `portal` ("new" or
    /// a portal id) with the screen's anti-forgery token.
    pub async fn consent_as(
        &self,
        client: &TestClient,
        consent_url: &url::Url,
        decision: &str,
        portal: &str,
    ) -> Page {
        let screen = client.follow(consent_url).await;
        assert_eq!(screen.status, 200, "consent screen: {}", screen.body);
        let mut fields: Vec<(String, String)> = consent_url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        fields.push(("decision".into(), decision.into()));
        fields.push(("portal".into(), portal.into()));
        fields.push(("csrf_token".into(), screen.csrf().expect("token")));
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        client
            .post_raw("/sandbox/hubspot/oauth/authorize", &fields)
            .await
    }

    /// Approves the consent screen as `client` for `portal` ("new" or an
    /// id) and follows the redirect back to Ferry's callback, as the browser
    /// does; returns Ferry's answer.
    pub async fn approve_and_follow(
        &self,
        client: &TestClient,
        consent_url: &url::Url,
        portal: &str,
    ) -> Page {
        let res = self
            .consent_as(client, consent_url, "approve", portal)
            .await;
        assert_eq!(res.status, 302, "{}", res.body);
        let callback: url::Url = res.location.expect("redirect").parse().expect("URL");
        client.follow(&callback).await
    }

    /// Creates a Standard Webhooks connection named `name` through its
    /// form; returns its path (`/hooks/webhook/{id}`) and the signing
    /// secret the page shows once.
    pub async fn connect_webhook(&self, client: &TestClient, name: &str) -> (String, String) {
        let created = client
            .submit(
                "/connections/new/webhook",
                "/connections/new/webhook",
                &[("name", name), ("environment", "production")],
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let secret: String = created
            .body
            .split("<code class=\"secret\">")
            .nth(1)
            .expect("the secret shown")
            .chars()
            .take_while(|c| *c != '<')
            .collect();
        let id: String = created
            .body
            .split(&format!("{}/hooks/webhook/", self.address))
            .nth(1)
            .expect("the webhook's URL shown")
            .chars()
            .take_while(|c| *c != '<')
            .collect();
        (format!("/hooks/webhook/{id}"), secret)
    }

    /// Connects sandbox HubSpot end to end; returns the connection id.
    pub async fn connect_hubspot(&self, client: &TestClient) -> ferry_core::ConnectionId {
        let consent = self.start_hubspot(client, "HubSpot (sandbox)").await;
        let callback = self.consent(&consent, "approve").await;
        let res = client.follow(&callback).await;
        assert_eq!(res.status, 303, "{}", res.body);
        let location = res.location.expect("connection page");
        location
            .trim_start_matches("/connections/")
            .parse()
            .expect("connection id")
    }

    /// Connects the sandbox verification provider the way a user does in
    /// the sandbox (no key: Ferry provisions an account whose result
    /// webhooks come back to Ferry).
    pub async fn connect_sandbox_verification(
        &self,
        client: &TestClient,
    ) -> ferry_core::ConnectionId {
        let res = client
            .submit(
                "/connections/new/verification",
                "/connections/new/verification",
                &[
                    ("name", "Verification"),
                    ("environment", "sandbox"),
                    ("api_key", ""),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        res.location
            .expect("page")
            .trim_start_matches("/connections/")
            .parse()
            .expect("id")
    }

    /// Creates the reference workflow from its template (bound to the
    /// tenant's sandbox connections) and publishes it; returns its id.
    /// The provider's (checks, check requests), every account.
    pub async fn provider_totals(&self) -> (u64, u64) {
        let accounts = self.json("/sandbox/verify/admin/accounts").await;
        let sum = |k: &str| {
            accounts
                .as_array()
                .map(|a| a.iter().filter_map(|x| x[k].as_u64()).sum())
                .unwrap_or(0)
        };
        (sum("checks"), sum("create_requests"))
    }

    /// Remembers the provider's counts now (after a publish, whose
    /// checklist makes checks of its own).
    pub async fn note_provider_baseline(&self) {
        let now = self.provider_totals().await;
        *self
            .provider_baseline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }

    /// The provider's (checks, check requests) since the last publish.
    pub async fn provider_counts(&self) -> (u64, u64) {
        let (c, r) = self.provider_totals().await;
        let (bc, br) = *self
            .provider_baseline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (c.saturating_sub(bc), r.saturating_sub(br))
    }

    pub async fn publish_reference(&self, client: &TestClient, owner: &Account) -> String {
        let res = client
            .submit(
                "/workflows/new",
                "/workflows",
                &[
                    ("name", "KYC for new clients"),
                    ("description", "Replaces the manual ID check"),
                    ("owner", owner.user_id.as_str()),
                    ("environment", "sandbox"),
                    ("template", "reference"),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        let id = res
            .location
            .expect("workflow page")
            .trim_start_matches("/workflows/")
            .to_owned();
        let res = client
            .submit(
                &format!("/workflows/{id}"),
                &format!("/workflows/{id}/publish"),
                &[("note", "Publishing for the test.")],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        self.note_provider_baseline().await;
        id
    }

    /// The first sandbox HubSpot portal's id.
    pub async fn portal(&self) -> u64 {
        self.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
            .as_u64()
            .expect("a portal")
    }

    /// Creates a contact in a sandbox portal as a CRM user would (the
    /// simulator sends Ferry the contact.creation webhook); returns its id.
    pub async fn create_contact(&self, portal: u64, properties: serde_json::Value) -> String {
        let res = reqwest::Client::new()
            .post(format!(
                "{}/sandbox/hubspot/admin/portals/{portal}/contacts",
                self.address
            ))
            .json(&serde_json::json!({ "properties": properties }))
            .send()
            .await
            .expect("create contact");
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.expect("json");
        body["id"]
            .as_str()
            .map_or_else(|| body["id"].to_string(), str::to_owned)
    }

    /// Polls `sql` (a COUNT) until it reaches `n` or 15 s pass; returns
    /// the last count.
    pub async fn wait_count(&self, sql: &str, n: i64) -> i64 {
        let mut last = 0;
        for _ in 0..150 {
            last = self.count(sql).await;
            if last >= n {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        last
    }

    /// Connects the sandbox verification provider with a fresh sandbox
    /// account; returns the connection id and its API key.
    pub async fn connect_verification(
        &self,
        client: &TestClient,
    ) -> (ferry_core::ConnectionId, String) {
        let account: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/sandbox/verify/admin/accounts", self.address))
            .json(&serde_json::json!({ "delay_ms": 0 }))
            .send()
            .await
            .expect("account")
            .json()
            .await
            .expect("json");
        let key = account["api_key"].as_str().expect("key").to_owned();
        let res = client
            .submit(
                "/connections/new/verification",
                "/connections/new/verification",
                &[
                    ("name", "Verification"),
                    ("environment", "sandbox"),
                    ("api_key", &key),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
        let id = res
            .location
            .expect("page")
            .trim_start_matches("/connections/")
            .parse()
            .expect("id");
        (id, key)
    }
}

pub(crate) fn parse_email(email: &str) -> EmailAddress {
    EmailAddress::parse("email", email).expect("valid test email")
}

/// A person who can log in, with their password.
#[derive(Debug, Clone)]
pub struct Account {
    /// Their id.
    pub user_id: UserId,
    /// Login email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Their tenant, if a member.
    pub tenant: Option<TenantId>,
}
