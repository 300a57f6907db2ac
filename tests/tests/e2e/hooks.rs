//! Inbound endpoints: signatures verified, events stored once, clear
//! statuses for everything refused.

use chrono::Duration;
use ferry_connectors::webhook::standard_webhook_signature;
use ferry_core::{Clock, TenantStatus};
use ferry_tests::spawn_app;
use serde_json::json;

async fn post(
    app: &ferry_tests::TestApp,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_standard_webhook_is_verified_stored_once_and_bad_signatures_get_401() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let (path, secret) = app.connect_webhook(&client, "Partner feed").await;
    assert!(secret.starts_with("whsec_"));
    let id = path.trim_start_matches("/hooks/webhook/").to_owned();
    // Shown once only.
    assert!(
        !client
            .get(&format!("/connections/{id}"))
            .await
            .body
            .contains(&secret)
    );

    let body = br#"{"type":"client.onboarded","client":{"id":42}}"#.to_vec();
    let now = app.clock.now().timestamp();
    let sign = |msg_id: &str, ts: i64, body: &[u8]| {
        standard_webhook_signature(&secret, msg_id, ts, body).unwrap()
    };
    let headers = |msg_id: &str, ts: i64, sig: String| {
        vec![
            ("webhook-id", msg_id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sig),
        ]
    };

    let (status, answer) = post(
        &app,
        &path,
        &headers("msg_1", now, sign("msg_1", now, &body)),
        body.clone(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let (status, again) = post(
        &app,
        &path,
        &headers("msg_1", now, sign("msg_1", now, &body)),
        body.clone(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event_id"], answer["event_id"]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_events WHERE event_type = 'client.onboarded'")
            .await,
        1
    );

    let bad = post(
        &app,
        &path,
        &headers("msg_2", now, "v1,AAAA".into()),
        body.clone(),
    )
    .await;
    assert_eq!(bad.0, 401);
    assert!(
        bad.1["error"]
            .as_str()
            .unwrap()
            .contains("no webhook signature matches")
    );
    assert_eq!(
        post(&app, &path, &[], body.clone()).await.0,
        401,
        "missing signature"
    );
    let stale = now - 400;
    let old = post(
        &app,
        &path,
        &headers("msg_3", stale, sign("msg_3", stale, &body)),
        body.clone(),
    )
    .await;
    assert_eq!(old.0, 401);
    assert!(old.1["error"].as_str().unwrap().contains("tolerance"));
    let tampered = post(
        &app,
        &path,
        &headers("msg_4", now, sign("msg_4", now, &body)),
        br#"{"type":"other"}"#.to_vec(),
    )
    .await;
    assert_eq!(tampered.0, 401);
    let not_json = b"not json".to_vec();
    assert_eq!(
        post(
            &app,
            &path,
            &headers("msg_5", now, sign("msg_5", now, &not_json)),
            not_json
        )
        .await
        .0,
        400
    );
    let huge = vec![b' '; 70 * 1024];
    assert_eq!(
        post(&app, &path, &headers("msg_6", now, "v1,x".into()), huge)
            .await
            .0,
        413,
        "refused before any signature is computed"
    );
    assert_eq!(
        post(
            &app,
            "/hooks/webhook/con_00000000000000000000000000000000",
            &[],
            body.clone()
        )
        .await
        .0,
        404
    );
    assert_eq!(
        post(&app, "/hooks/webhook/nonsense", &[], body.clone())
            .await
            .0,
        404
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_events").await,
        1,
        "nothing refused was stored"
    );
    assert!(
        client
            .get(&format!("/connections/{id}"))
            .await
            .body
            .contains("Events received</dt><dd>1")
    );
    // A suspended tenant's hooks refuse even well-signed events (403).
    ferry_store::tenants::set_status(&app.db, &tenant, TenantStatus::Suspended, app.clock.now())
        .await
        .unwrap();
    let (status, refused) = post(
        &app,
        &path,
        &headers("msg_7", now, sign("msg_7", now, &body)),
        body,
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "this tenant is suspended");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_events").await,
        1,
        "the refused event was not stored"
    );
}

#[tokio::test]
async fn hubspot_webhooks_are_verified_routed_by_portal_and_refused_clearly() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    let portal = app.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
        .as_u64()
        .unwrap();
    let hook = format!("{}/hooks/hubspot/sandbox", app.address);
    app.send_json(reqwest::Method::PUT, "/sandbox/hubspot/admin/apps/ferry-sandbox-app/webhooks", json!({ "target_url": hook, "subscriptions": ["contact.creation"], "base_delay_ms": 50, "max_attempts": 3 }))
        .await;
    let contacts = format!("/sandbox/hubspot/admin/portals/{portal}/contacts");
    let create = |email: &str| {
        app.send_json(
            reqwest::Method::POST,
            &contacts,
            json!({ "properties": { "email": email } }),
        )
    };
    assert_eq!(create("first@client.test").await, 201);
    let mut stored = 0;
    for _ in 0..50 {
        stored = app.count("SELECT COUNT(*) FROM inbound_events WHERE source = 'hubspot' AND event_type = 'contact.creation'").await;
        if stored == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored, 1);

    // Ferry's clock six minutes ahead: HubSpot's signatures look stale (401),
    // and HubSpot does not retry a 401.
    app.clock.advance(Duration::minutes(6));
    assert_eq!(create("second@client.test").await, 201);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let deliveries = app.json("/sandbox/hubspot/admin/deliveries").await;
    let statuses: Vec<u64> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 401], "{deliveries}");
    app.clock.advance(Duration::minutes(-6));

    // A suspended tenant's events are refused with 403.
    ferry_store::tenants::set_status(
        &app.db,
        &tenant,
        TenantStatus::Suspended,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(create("third@client.test").await, 201);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let last = app
        .json("/sandbox/hubspot/admin/deliveries")
        .await
        .as_array()
        .unwrap()
        .last()
        .unwrap()["status"]
        .as_u64()
        .unwrap();
    assert_eq!(last, 403);

    // Hand-made requests: a bad signature, and an unknown portal.
    let body = serde_json::to_vec(&json!([{ "eventId": 1, "portalId": 999, "subscriptionType": "contact.creation", "objectId": 1 }])).unwrap();
    let ts = chrono::Utc::now().timestamp_millis().to_string();
    let bad = post(
        &app,
        "/hooks/hubspot/sandbox",
        &[
            ("x-hubspot-signature-v3", "bogus".into()),
            ("x-hubspot-request-timestamp", ts.clone()),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(bad.0, 401);
    assert_eq!(
        post(&app, "/hooks/hubspot/sandbox", &[], body.clone())
            .await
            .0,
        401
    );
    let secret = app.sandbox_client_secret();
    let sig = ferry_connectors::hubspot::signature_v3(&secret, "POST", &hook, &body, &ts);
    let unknown = post(
        &app,
        "/hooks/hubspot/sandbox",
        &[
            ("x-hubspot-signature-v3", sig),
            ("x-hubspot-request-timestamp", ts),
        ],
        body,
    )
    .await;
    assert_eq!(unknown.0, 404, "{}", unknown.1);
    assert_eq!(unknown.1["unknown_portal"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events").await, 1);
}

#[tokio::test]
async fn verification_results_arrive_signed_and_are_stored_once() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    // An empty key makes Ferry create a sandbox account whose results come to Ferry.
    let res = client
        .submit(
            "/connections/new/verification",
            "/connections/new/verification",
            &[("name", "KYC"), ("environment", "sandbox")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let id: ferry_core::ConnectionId = res
        .location
        .unwrap()
        .trim_start_matches("/connections/")
        .parse()
        .unwrap();
    let page = client.get(&format!("/connections/{id}")).await;
    assert!(page.body.contains(&format!("/hooks/verification/{id}")));
    let creds = app.credentials(&tenant, &id).await;
    let secret = creds
        .signing_secret()
        .expect("the provider's webhook secret is kept (encrypted)")
        .to_owned();
    let check: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/sandbox/verify/v1/checks", app.address))
        .header(
            "Authorization",
            format!("Token token={}", creds.api_key().unwrap()),
        )
        .json(&json!({ "first_name": "Ada", "last_name": "Lovelace", "email": "ada@client.test" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut stored = 0;
    for _ in 0..60 {
        stored = app.count("SELECT COUNT(*) FROM inbound_events WHERE source = 'verification' AND event_type = 'check.completed'").await;
        if stored == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stored, 1, "the result webhook was verified and stored");

    let path = format!("/hooks/verification/{id}");
    let body = serde_json::to_vec(&json!({ "type": "check.completed", "check": { "id": check["id"], "status": "complete", "result": "clear" } })).unwrap();
    let sig = ferry_sandbox::sign_result(&secret, &body);
    let (status, again) = post(&app, &path, &[("x-signature", sig)], body.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true, "a replayed result is recognised");
    assert_eq!(
        post(
            &app,
            &path,
            &[("x-signature", "00".repeat(32))],
            body.clone()
        )
        .await
        .0,
        401
    );
    assert_eq!(post(&app, &path, &[], body.clone()).await.0, 401);
    let junk = b"junk".to_vec();
    assert_eq!(
        post(
            &app,
            &path,
            &[("x-signature", ferry_sandbox::sign_result(&secret, &junk))],
            junk
        )
        .await
        .0,
        400
    );
    assert_eq!(
        post(
            &app,
            "/hooks/verification/con_00000000000000000000000000000000",
            &[],
            body
        )
        .await
        .0,
        404
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events").await, 1);
}

#[tokio::test]
async fn a_sandbox_hubspot_connection_receives_contact_events_without_setup() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let portal = app.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
        .as_u64()
        .unwrap();
    let created = app
        .send_json(reqwest::Method::POST, &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"), json!({ "properties": { "email": "walk-in@client.test", "firstname": "Walk", "lastname": "In" } }))
        .await;
    assert_eq!(created, 201);
    let mut stored = 0;
    for _ in 0..50 {
        stored = app.count(&format!("SELECT COUNT(*) FROM inbound_events WHERE connection_id = '{id}' AND event_type = 'contact.creation'")).await;
        if stored == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored, 1,
        "the simulator's webhook reached Ferry and was stored"
    );
    assert!(
        client
            .get(&format!("/connections/{id}"))
            .await
            .body
            .contains("Events received</dt><dd>1")
    );
}

#[tokio::test]
async fn hubspot_deliveries_are_verified_and_routed_within_one_environment() {
    let production_secret = "production-app-secret-0123456789";
    let app = ferry_tests::spawn_app_with(ferry_tests::TestOptions {
        settings: vec![
            ("hubspot_client_id", "production-app".into()),
            ("hubspot_client_secret", production_secret.into()),
        ],
        ..ferry_tests::TestOptions::default()
    })
    .await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    let portal = app.portal().await;
    let body = serde_json::to_vec(&json!([{ "eventId": 7, "portalId": portal, "subscriptionType": "contact.creation", "objectId": 101 }])).unwrap();
    let send = |path: &'static str, secret: String| {
        let body = body.clone();
        let app = &app;
        async move {
            let ts = chrono::Utc::now().timestamp_millis().to_string();
            let uri = format!("{}{path}", app.address);
            let sig = ferry_connectors::hubspot::signature_v3(&secret, "POST", &uri, &body, &ts);
            post(
                app,
                path,
                &[
                    ("x-hubspot-signature-v3", sig),
                    ("x-hubspot-request-timestamp", ts),
                ],
                body,
            )
            .await
        }
    };
    let sandbox_secret = app.sandbox_client_secret();
    // The sandbox's secret opens only the sandbox endpoint, and the
    // production secret only the production one.
    assert_eq!(send("/hooks/hubspot", sandbox_secret.clone()).await.0, 401);
    assert_eq!(
        send("/hooks/hubspot/sandbox", production_secret.into())
            .await
            .0,
        401
    );
    // A production delivery naming the sandbox portal's id finds no
    // production connection: nothing is stored, no run starts.
    let (status, summary) = send("/hooks/hubspot", production_secret.into()).await;
    assert_eq!(status, 404, "{summary}");
    assert_eq!(summary["unknown_portal"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events").await, 0);
    // The sandbox delivery reaches the sandbox connection.
    let (status, summary) = send("/hooks/hubspot/sandbox", sandbox_secret).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["accepted"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events").await, 1);
}

#[tokio::test]
async fn production_hubspot_webhooks_are_404_until_production_is_configured() {
    let app = spawn_app().await;
    let (status, _) = post(&app, "/hooks/hubspot", &[], b"[]".to_vec()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_portal_connected_by_two_tenants_gives_its_events_to_neither() {
    // A local sandbox offers every portal on its consent screen, so a second
    // tenant can pick the first one's portal: then nobody gets its events.
    let app = spawn_app().await;
    let (_, alice) = app.create_tenant("Acme").await;
    let (_, bob) = app.create_tenant("Globex").await;
    let a = app.login(&alice).await;
    let b = app.login(&bob).await;
    app.connect_hubspot(&a).await;
    let portal = app.portal().await;
    let consent = app.start_hubspot(&b, "Same portal").await;
    let done = app
        .approve_and_follow(&b, &consent, &portal.to_string())
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let body = serde_json::to_vec(&json!([{ "eventId": 9, "portalId": portal, "subscriptionType": "contact.creation", "objectId": 101 }])).unwrap();
    let ts = chrono::Utc::now().timestamp_millis().to_string();
    let uri = format!("{}/hooks/hubspot/sandbox", app.address);
    let sig = ferry_connectors::hubspot::signature_v3(
        &app.sandbox_client_secret(),
        "POST",
        &uri,
        &body,
        &ts,
    );
    let (status, summary) = post(
        &app,
        "/hooks/hubspot/sandbox",
        &[
            ("x-hubspot-signature-v3", sig),
            ("x-hubspot-request-timestamp", ts),
        ],
        body,
    )
    .await;
    assert_eq!(status, 404, "{summary}");
    assert_eq!(summary["unknown_portal"], 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events").await, 0);
}

#[tokio::test]
async fn webhook_dedupe_is_per_connection() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    // Two senders, each with its own connection, that happen to use the
    // same message id.
    let mut hooks = Vec::new();
    for name in ["Partner feed", "Other partner"] {
        hooks.push(app.connect_webhook(&client, name).await);
    }
    let body = br#"{"type":"client.onboarded"}"#.to_vec();
    let now = app.clock.now().timestamp();
    for (path, secret) in &hooks {
        let sig = standard_webhook_signature(secret, "msg_1", now, &body).unwrap();
        let (status, answer) = post(
            &app,
            path,
            &[
                ("webhook-id", "msg_1".to_owned()),
                ("webhook-timestamp", now.to_string()),
                ("webhook-signature", sig),
            ],
            body.clone(),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["duplicate"], false, "a new event for {path}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound_events").await, 2);
}
