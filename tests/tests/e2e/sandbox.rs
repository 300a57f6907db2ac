//! The simulators' own promises: signed webhooks with retries, idempotent
//! checks, fault knobs, per-portal data.

use ferry_connectors::CallContext;
use ferry_connectors::{Connector, ConnectorError, HttpClient, NetworkPolicy, RateLimiter};
use ferry_tests::{receiver, spawn_app, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[tokio::test]
async fn hubspot_webhooks_are_signed_batched_arrays_and_are_retried() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    let portal = app.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
        .as_u64()
        .unwrap();
    let rx = receiver(2).await;
    let status = app
        .send_json(
            reqwest::Method::PUT,
            "/sandbox/hubspot/admin/apps/ferry-sandbox-app/webhooks",
            json!({ "target_url": rx.url, "subscriptions": ["contact.creation"], "base_delay_ms": 50 }),
        )
        .await;
    assert_eq!(status, 204);
    let created = app
        .send_json(
            reqwest::Method::POST,
            &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
            json!({ "properties": { "email": "new@client.test", "firstname": "New" } }),
        )
        .await;
    assert_eq!(created, 201);
    let seen = wait_for(&rx.seen, 3).await;
    assert_eq!(seen.len(), 3, "two failures, then delivered");
    let (headers, body) = &seen[2];
    let events: Value = serde_json::from_str(body).unwrap();
    let e = &events.as_array().expect("a JSON array")[0];
    assert_eq!(e["subscriptionType"], "contact.creation");
    assert_eq!(e["portalId"], portal);
    assert_eq!(e["attemptNumber"], 2);
    assert_eq!(e["changeSource"], "CRM_UI");
    // Signature v3 with the app's client secret.
    let timestamp: i64 = header(headers, "x-hubspot-request-timestamp")
        .parse()
        .unwrap();
    let secret = app.sandbox_client_secret();
    let expected = ferry_sandbox::sign_v3(&secret, "POST", &rx.url, body.as_bytes(), timestamp);
    assert_eq!(header(headers, "x-hubspot-signature-v3"), expected);
    // HubSpot does not retry a 4xx such as 400.
}

async fn verification_context(
    app: &ferry_tests::TestApp,
    webhook: Option<&str>,
) -> (CallContext, String, String) {
    let account: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/verify/admin/accounts", app.address))
        .json(&json!({ "delay_ms": 50, "webhook_url": webhook }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let origin = app.address.trim_start_matches("http://").to_owned();
    let ctx = CallContext {
        connection_id: "con_test".into(),
        base_url: format!("{}/sandbox/verify", app.address).parse().unwrap(),
        credentials: ferry_core::Credentials {
            api_key: account["api_key"].as_str().map(ferry_core::Secret::from),
            ..Default::default()
        },
        http: HttpClient::new(
            NetworkPolicy {
                allow_private: false,
                allowed_origins: vec![origin],
            },
            Duration::from_secs(10),
        )
        .unwrap(),
        limiter: RateLimiter::memory(),
        idempotency_key: Some("run_1:create_check".into()),
        log: Default::default(),
        rate_limit: None,
    };
    (
        ctx,
        account["account_id"].as_str().unwrap().to_owned(),
        account["webhook_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn checks_are_idempotent_and_results_arrive_signed() {
    let app = spawn_app().await;
    let rx = receiver(0).await;
    let (ctx, account, secret) = verification_context(&app, Some(&rx.url)).await;
    let v = ferry_connectors::verification::Verification;
    let input = json!({ "first_name": "Ann", "last_name": "Consider", "email": "ann@client.test", "reference": "run_1" });
    let first = v.call("create_check", &input, &ctx).await.unwrap();
    let again = v.call("create_check", &input, &ctx).await.unwrap();
    assert_eq!(
        first["id"], again["id"],
        "same key and body: the same check"
    );
    let changed = v
        .call(
            "create_check",
            &json!({ "first_name": "Bob", "last_name": "Other", "email": "bob@client.test" }),
            &ctx,
        )
        .await;
    assert!(
        matches!(changed, Err(ConnectorError::Rejected { status: 422, .. })),
        "{changed:?}"
    );
    let stats = app
        .json(&format!("/sandbox/verify/admin/accounts/{account}"))
        .await;
    assert_eq!(stats["checks"], 1);

    let seen = wait_for(&rx.seen, 1).await;
    let (headers, body) = &seen[0];
    assert_eq!(
        header(headers, "x-signature"),
        ferry_sandbox::sign_result(&secret, body.as_bytes())
    );
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["type"], "check.completed");
    assert_eq!(event["check"]["id"], first["id"]);
    assert_eq!(
        event["check"]["result"], "consider",
        "a last name with 'consider' gives consider"
    );
    let polled = v
        .call("get_check", &json!({ "check_id": first["id"] }), &ctx)
        .await
        .unwrap();
    assert_eq!(polled["status"], "complete");

    // Wrong key.
    let mut wrong = ctx.clone();
    wrong.credentials.api_key = Some("sk_sandbox_wrong".into());
    assert!(matches!(
        v.test(&wrong).await,
        Err(ConnectorError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn fault_knobs_make_hubspot_fail_and_429_is_honoured() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let portal = app.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
        .as_u64()
        .unwrap();
    let origin = app.address.trim_start_matches("http://").to_owned();
    let ctx = CallContext {
        connection_id: id.to_string(),
        base_url: format!("{}/sandbox/hubspot", app.address).parse().unwrap(),
        credentials: app.credentials(&tenant, &id).await,
        http: HttpClient::new(
            NetworkPolicy {
                allow_private: false,
                allowed_origins: vec![origin],
            },
            Duration::from_secs(3),
        )
        .unwrap(),
        limiter: RateLimiter::memory(),
        idempotency_key: None,
        log: Default::default(),
        rate_limit: None,
    };
    let hubspot = ferry_connectors::hubspot::HubSpot;
    let faults_path = format!("/sandbox/hubspot/admin/portals/{portal}/faults");
    let set = |faults: Value| app.send_json(reqwest::Method::PUT, &faults_path, faults);
    assert_eq!(set(json!({ "force": "500" })).await, 200);
    assert!(matches!(
        hubspot.test(&ctx).await,
        Err(ConnectorError::Remote { status: 500, .. })
    ));
    assert_eq!(set(json!({ "force": "timeout" })).await, 200);
    assert_eq!(hubspot.test(&ctx).await, Err(ConnectorError::Timeout));
    assert_eq!(set(json!({ "force": "429" })).await, 200);
    let started = std::time::Instant::now();
    // Retry-After (1 s) is honoured with growing back-off: three attempts,
    // then the connector reports RateLimited (the caller's retry policy decides).
    let result = hubspot.test(&ctx).await;
    assert!(
        matches!(result, Err(ConnectorError::RateLimited { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it waited 1 s, then 2 s, before giving up"
    );
    assert_eq!(set(json!({ "force": "bogus" })).await, 400);
    assert_eq!(set(json!({})).await, 200);
    assert!(hubspot.test(&ctx).await.is_ok());
    let page = reqwest::get(format!("{}/sandbox/hubspot/admin", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("Portal {portal}")));
}

#[tokio::test]
async fn two_tenants_sandboxes_never_mix() {
    let app = spawn_app().await;
    let (ta, admin_a) = app.create_tenant("Alpha").await;
    let (tb, admin_b) = app.create_tenant("Bravo").await;
    let a = app.login(&admin_a).await;
    let b = app.login(&admin_b).await;
    let ida = app.connect_hubspot(&a).await;
    let idb = app.connect_hubspot(&b).await;
    let token_a = app
        .credentials(&ta, &ida)
        .await
        .access_token()
        .unwrap()
        .to_owned();
    let token_b = app
        .credentials(&tb, &idb)
        .await
        .access_token()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!(
            "{}/sandbox/hubspot/crm/v3/objects/contacts",
            app.address
        ))
        .bearer_auth(&token_a)
        .json(&json!({ "properties": { "email": "only-a@client.test" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let from_b = http
        .get(format!(
            "{}/sandbox/hubspot/crm/v3/objects/contacts/{id}",
            app.address
        ))
        .bearer_auth(&token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(from_b.status().as_u16(), 404);
    let from_a = http
        .get(format!(
            "{}/sandbox/hubspot/crm/v3/objects/contacts/{id}",
            app.address
        ))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    assert_eq!(from_a.status().as_u16(), 200);
}

#[tokio::test]
async fn ids_from_providers_cannot_change_the_path_they_are_put_in() {
    let app = spawn_app().await;
    let (ctx, _, _) = verification_context(&app, None).await;
    let v = ferry_connectors::verification::Verification;
    // Unencoded, "../account" would read GET /v1/account (the account's
    // details) instead of a check.
    let got = v
        .call("get_check", &json!({ "check_id": "../account" }), &ctx)
        .await;
    assert!(matches!(got, Err(ConnectorError::NotFound)), "{got:?}");
    let logged = format!("{:?}", ctx.log);
    assert!(logged.contains("..%2Faccount"), "{logged}");
}
