//! Connections: HubSpot over OAuth through the simulator's consent screen,
//! API-key verification connections, tokens, test, revoke, isolation, SSRF,
//! and secrets that never leak.

use chrono::Duration;
use ferry_core::Role;
use ferry_tests::{captured_logs, spawn_app};
use serde_json::json;

#[tokio::test]
async fn hubspot_connects_through_the_consent_screen_and_tests_healthy() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let consent = app.start_hubspot(&client, "HubSpot (sandbox)").await;
    // The consent URL carries state and a PKCE S256 challenge, and only the scopes needed.
    let q: std::collections::HashMap<String, String> = consent.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q["state"].is_empty());
    assert_eq!(
        q["scope"],
        "crm.objects.contacts.read crm.objects.contacts.write"
    );
    let page = reqwest::get(consent.as_str())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("View and edit properties") && page.contains("Connect app"));

    let id = app.connect_hubspot(&client).await;
    let detail = client.get(&format!("/connections/{id}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("HubSpot connected (portal"));
    assert!(detail.body.contains("badge-status-healthy"));
    assert!(detail.body.contains("crm.objects.contacts.write"));
    assert!(detail.body.contains("sandbox"));
    let creds = app.credentials(&tenant, &id).await;
    assert!(creds.access_token.is_some() && creds.refresh_token.is_some());

    let res = client
        .submit(
            &format!("/connections/{id}"),
            &format!("/connections/{id}/test"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303);
    let after = client.get(&format!("/connections/{id}")).await;
    assert!(after.body.contains("Test passed"), "{}", after.body);
    // What reached the simulator: the test call, in the connection's portal.
    let portals = app.json("/sandbox/hubspot/admin/portals").await;
    assert_eq!(
        portals.as_array().unwrap().len(),
        1,
        "one portal per approved consent"
    );
    assert!(
        portals
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["accepted"].as_u64() >= Some(1))
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'connection.created'")
            .await,
        1
    );
}

#[tokio::test]
async fn failed_oauth_answers_are_clear_and_store_nothing() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let callback = |u: &url::Url| format!("{}?{}", u.path(), u.query().unwrap_or(""));

    // Denied consent.
    let consent = app.start_hubspot(&client, "HubSpot").await;
    let back = app.consent(&consent, "deny").await;
    let res = client.get(&callback(&back)).await;
    assert_eq!(res.status, 400);
    assert!(res.body.contains("Access was denied"), "{}", res.body);

    // State mismatch: a state Ferry never issued.
    let consent = app.start_hubspot(&client, "HubSpot").await;
    let back = app.consent(&consent, "approve").await;
    let code: String = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let res = client
        .get(&format!(
            "/connections/oauth/callback?code={code}&state=forged-state"
        ))
        .await;
    assert_eq!(res.status, 400);
    assert!(res.body.contains("does not match a connection attempt"));

    // A replayed code: used once, then presented again with a fresh state.
    let ok = client.get(&callback(&back)).await;
    assert_eq!(ok.status, 303, "the real callback still works once");
    let consent = app.start_hubspot(&client, "HubSpot").await;
    let state: String = consent
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let res = client
        .get(&format!(
            "/connections/oauth/callback?code={code}&state={state}"
        ))
        .await;
    assert_eq!(res.status, 400);
    assert!(
        res.body.contains("refused the authorization code"),
        "{}",
        res.body
    );
    // The same callback twice: the state is single use.
    assert_eq!(client.get(&callback(&back)).await.status, 400);

    // A PKCE mismatch: the challenge was altered on the way to HubSpot.
    let mut consent = app.start_hubspot(&client, "HubSpot").await;
    let pairs: Vec<(String, String)> = consent
        .query_pairs()
        .map(|(k, v)| {
            let altered = if k == "code_challenge" {
                "A".repeat(43)
            } else {
                v.into_owned()
            };
            (k.into_owned(), altered)
        })
        .collect();
    consent.query_pairs_mut().clear().extend_pairs(pairs);
    let back = app.consent(&consent, "approve").await;
    let res = client.get(&callback(&back)).await;
    assert_eq!(res.status, 400);
    // The page names the OAuth error code, not the provider's prose.
    assert!(
        res.body.contains("refused the authorization code") && res.body.contains("invalid_grant"),
        "{}",
        res.body
    );
    assert!(!res.body.contains("code_verifier does not match"));

    // An expired code.
    let consent = app.start_hubspot(&client, "HubSpot").await;
    let back = app.consent(&consent, "approve").await;
    assert_eq!(
        app.send_json(
            reqwest::Method::POST,
            "/sandbox/hubspot/admin/oauth/expire-codes",
            json!({})
        )
        .await,
        204
    );
    let res = client.get(&callback(&back)).await;
    assert_eq!(res.status, 400);
    assert!(res.body.contains("invalid_grant"), "{}", res.body);
    assert!(!res.body.contains("auth code is expired"));

    // Only the one good callback stored a connection.
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 1);
}

#[tokio::test]
async fn tokens_refresh_ahead_of_expiry_once_and_rotated_refresh_tokens_are_kept() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let before = app.credentials(&tenant, &id).await;
    let portal = client.get(&format!("/connections/{id}")).await;
    let portal_id: String = portal
        .body
        .split("portal ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    app.send_json(
        reqwest::Method::PUT,
        &format!("/sandbox/hubspot/admin/portals/{portal_id}/faults"),
        json!({ "rotate_refresh_tokens": true }),
    )
    .await;
    // The old access token stops working at HubSpot; Ferry's clock nears expiry.
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{portal_id}/expire-tokens"),
        json!({}),
    )
    .await;
    app.clock.advance(Duration::minutes(26));
    // Ten admins pressing "Test" at once: one refresh.
    let token = client
        .get(&format!("/connections/{id}"))
        .await
        .csrf()
        .unwrap();
    let mut calls = Vec::new();
    for _ in 0..10 {
        let req = client
            .http
            .post(format!("{}/connections/{id}/test", app.address))
            .form(&[("csrf_token", token.as_str())]);
        calls.push(tokio::spawn(req.send()));
    }
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().status().as_u16(), 303);
    }
    let stats = app
        .json(&format!("/sandbox/hubspot/admin/portals/{portal_id}"))
        .await;
    assert_eq!(stats["refreshes"], 1, "{stats}");
    assert!(stats["accepted"].as_u64().unwrap() >= 10);
    let after = app.credentials(&tenant, &id).await;
    assert_ne!(after.access_token, before.access_token);
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the rotated refresh token was stored"
    );
    assert!(
        client
            .get(&format!("/connections/{id}"))
            .await
            .body
            .contains("badge-status-healthy")
    );
}

#[tokio::test]
async fn a_revoked_grant_marks_the_connection_broken_with_an_auth_event() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let page = client.get(&format!("/connections/{id}")).await;
    let portal_id: String = page
        .body
        .split("portal ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{portal_id}/revoke-tokens"),
        json!({}),
    )
    .await;
    app.clock.advance(Duration::minutes(26));
    client
        .submit(
            &format!("/connections/{id}"),
            &format!("/connections/{id}/test"),
            &[],
        )
        .await;
    let page = client.get(&format!("/connections/{id}")).await;
    assert!(page.body.contains("Test failed"), "{}", page.body);
    assert!(page.body.contains("badge-status-broken"));
    assert!(page.body.contains("refresh_failed"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'refresh_failed'")
            .await,
        1
    );
    assert!(client.get("/connections").await.body.contains(">broken<"));
}

#[tokio::test]
async fn revoke_withdraws_the_grant_at_hubspot_and_deletes_the_credentials() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let creds = app.credentials(&tenant, &id).await;
    let res = client
        .submit(
            &format!("/connections/{id}"),
            &format!("/connections/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        client
            .get("/connections")
            .await
            .body
            .contains("revoked at HubSpot")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 0);
    assert_eq!(client.get(&format!("/connections/{id}")).await.status, 404);
    // At HubSpot the refresh token is gone and the access token no longer works.
    let refresh = reqwest::Client::new()
        .post(format!("{}/sandbox/hubspot/oauth/v1/token", app.address))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", creds.refresh_token().unwrap()),
            ("client_id", "ferry-sandbox-app"),
            ("client_secret", "irrelevant"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status().as_u16(), 400);
    let call = reqwest::Client::new()
        .get(format!(
            "{}/sandbox/hubspot/crm/v3/objects/contacts",
            app.address
        ))
        .bearer_auth(creds.access_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(call.status().as_u16(), 401);
}

#[tokio::test]
async fn a_verification_connection_is_made_with_an_api_key_and_a_wrong_key_is_refused() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let (id, _) = app.connect_verification(&client).await;
    let res = client
        .submit(
            &format!("/connections/{id}"),
            &format!("/connections/{id}/test"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = client.get(&format!("/connections/{id}")).await;
    assert!(
        page.body.contains("Test passed") && page.body.contains("badge-status-healthy"),
        "{}",
        page.body
    );

    let wrong = client
        .submit(
            "/connections/new/verification",
            "/connections/new/verification",
            &[
                ("name", "Bad"),
                ("environment", "sandbox"),
                ("api_key", "sk_sandbox_not_a_real_key"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("The provider refused this API key."));
    assert!(
        !wrong.body.contains("sk_sandbox_not_a_real_key"),
        "a submitted key is never echoed back"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 1);

    // Leaving the key empty in the sandbox makes Ferry create a sandbox account.
    let res = client
        .submit(
            "/connections/new/verification",
            "/connections/new/verification",
            &[("name", "Auto"), ("environment", "sandbox")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 2);
}

#[tokio::test]
async fn urls_on_private_networks_are_refused_for_production_connections() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    for url in [
        "http://127.0.0.1:9999/api",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://localhost:8080/",
        "http://[::1]/",
    ] {
        let res = client
            .submit(
                "/connections/new/http",
                "/connections/new/http",
                &[
                    ("name", "Internal"),
                    ("environment", "production"),
                    ("base_url", url),
                    ("api_key", "k"),
                ],
            )
            .await;
        assert_eq!(res.status, 422, "{url}");
        assert!(
            res.body.contains("private, loopback or link-local"),
            "{url}: {}",
            res.body
        );
    }
    let res = client
        .submit(
            "/connections/new/verification",
            "/connections/new/verification",
            &[
                ("name", "Meta"),
                ("environment", "production"),
                ("base_url", "http://169.254.169.254/"),
                ("api_key", "k"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 0);
}

#[tokio::test]
async fn tenant_b_cannot_see_test_use_or_revoke_tenant_a_connections() {
    let app = spawn_app().await;
    let (_, admin_a) = app.create_tenant("Alpha").await;
    let (_, admin_b) = app.create_tenant("Bravo").await;
    let a = app.login(&admin_a).await;
    let b = app.login(&admin_b).await;
    let (id, _) = app.connect_verification(&a).await;
    assert_eq!(b.get(&format!("/connections/{id}")).await.status, 404);
    assert_eq!(
        b.submit("/connections", &format!("/connections/{id}/test"), &[])
            .await
            .status,
        404
    );
    assert_eq!(
        b.submit("/connections", &format!("/connections/{id}/revoke"), &[])
            .await
            .status,
        404
    );
    assert!(!b.get("/connections").await.body.contains(id.as_str()));
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 1);
    // Staff of A see it but change nothing.
    let tenant_a = admin_a.tenant.clone().unwrap();
    let staff = app
        .add_member(&tenant_a, "staff@alpha.test", "Sam", Role::Staff)
        .await;
    let s = app.login(&staff).await;
    assert_eq!(s.get(&format!("/connections/{id}")).await.status, 200);
    assert_eq!(
        s.submit("/connections", &format!("/connections/{id}/revoke"), &[])
            .await
            .status,
        403
    );
    assert_eq!(s.get("/connections/new/hubspot").await.status, 403);
}

#[tokio::test]
async fn deactivating_a_creator_flags_their_connections_and_tells_the_admins() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let other = app
        .add_member(&tenant, "second@acme.test", "Second Admin", Role::Admin)
        .await;
    let second = app.login(&other).await;
    let (id, _) = app.connect_verification(&second).await;
    let first = app.login(&admin).await;
    first
        .submit(
            &format!("/users/{}", other.user_id),
            &format!("/users/{}/deactivate", other.user_id),
            &[],
        )
        .await;
    let page = first.get(&format!("/connections/{id}")).await;
    assert!(
        page.body.contains("needs rotation") && page.body.contains("creator_deactivated"),
        "{}",
        page.body
    );
    let mail = app
        .wait_for_mail(&admin.email, "Connections need new credentials")
        .await;
    assert!(
        mail.body.contains("Second Admin was deactivated") && mail.body.contains("Verification")
    );
}

#[tokio::test]
async fn secrets_never_appear_in_pages_logs_errors_or_the_audit_log() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let (ver, key) = app.connect_verification(&client).await;
    let hub = app.connect_hubspot(&client).await;
    let tokens = app.credentials(&tenant, &hub).await;
    let secrets = [
        key.clone(),
        tokens.access_token().unwrap().to_owned(),
        tokens.refresh_token().unwrap().to_owned(),
    ];
    let mut bodies = Vec::new();
    for id in [&ver, &hub] {
        bodies.push(
            client
                .submit(
                    &format!("/connections/{id}"),
                    &format!("/connections/{id}/test"),
                    &[],
                )
                .await
                .body,
        );
        bodies.push(client.get(&format!("/connections/{id}")).await.body);
    }
    // A failing call, so error paths are exercised too.
    app.clock.advance(Duration::minutes(26));
    let page = client.get(&format!("/connections/{hub}")).await.body;
    let portal: String = page
        .split("Account</dt><dd>")
        .nth(1)
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{portal}/revoke-tokens"),
        json!({}),
    )
    .await;
    bodies.push(
        client
            .submit(
                &format!("/connections/{hub}"),
                &format!("/connections/{hub}/test"),
                &[],
            )
            .await
            .body,
    );
    for path in [
        "/connections",
        &format!("/connections/{ver}"),
        &format!("/connections/{hub}"),
        "/audit",
        "/home",
        "/connections/new/verification",
        "/connections/new/hubspot",
    ] {
        bodies.push(client.get(path).await.body);
    }
    let bad = client
        .submit(
            "/connections/new/verification",
            "/connections/new/verification",
            &[
                ("name", "x"),
                ("environment", "sandbox"),
                ("api_key", &format!("{key}-wrong")),
            ],
        )
        .await;
    bodies.push(bad.body);
    let logs = captured_logs();
    for secret in &secrets {
        for body in &bodies {
            assert!(!body.contains(secret.as_str()), "a secret was rendered");
        }
        assert!(!logs.contains(secret.as_str()), "a secret was logged");
        let in_audit = app
            .count(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE details LIKE '%{secret}%'"
            ))
            .await;
        assert_eq!(in_audit, 0, "a secret was audited");
        let in_db = app
            .count(&format!(
                "SELECT COUNT(*) FROM connections WHERE secret_ciphertext LIKE '%{secret}%'"
            ))
            .await;
        assert_eq!(in_db, 0, "a secret is stored in the clear");
    }
}

#[tokio::test]
async fn idle_connections_are_refreshed_in_the_background_and_a_revoked_grant_is_found() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let kept = app.connect_hubspot(&client).await;
    let revoked = app.connect_hubspot(&client).await;
    let before = app.credentials(&tenant, &kept).await.access_token;
    let second = app
        .json_rows(&format!(
            "SELECT external_account FROM connections WHERE id = '{revoked}'"
        ))
        .await[0][0]
        .clone()
        .unwrap();
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{second}/revoke-tokens"),
        json!({}),
    )
    .await;
    // Nobody uses either connection; their tokens near expiry.
    app.clock.advance(Duration::minutes(26));
    let mut refreshed = false;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let broken = app
            .count(&format!(
                "SELECT COUNT(*) FROM connections WHERE id = '{revoked}' AND status = 'broken'"
            ))
            .await;
        if broken == 1 && app.credentials(&tenant, &kept).await.access_token != before {
            refreshed = true;
            break;
        }
    }
    assert!(
        refreshed,
        "the worker refreshed the idle connection and found the revoked grant"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM auth_events WHERE kind = 'refresh_failed'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_sharing_the_database_refresh_a_token_once() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let portal = app.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
        .as_u64()
        .unwrap();
    // A second Ferry process (no web, no worker) on the same database and key.
    let data_dir = app.data_dir.path().display().to_string();
    let bind = app.address.trim_start_matches("http://").to_owned();
    let settings = ferry::Settings::from_pairs([
        ("database_url", app.database_url.as_str()),
        ("data_dir", data_dir.as_str()),
        ("bind", bind.as_str()),
        ("public_url", app.address.as_str()),
    ])
    .unwrap();
    let clock_b = ferry_core::ManualClock::new();
    let b = ferry::build(
        &settings,
        std::sync::Arc::new(clock_b.clone()),
        ferry::Roles {
            web: false,
            worker: false,
        },
    )
    .await
    .unwrap();
    app.clock.advance(Duration::minutes(26));
    clock_b.advance(Duration::minutes(26));
    let (ra, rb) = tokio::join!(
        app.connections.context(&tenant, &id),
        b.connections().context(&tenant, &id)
    );
    let (ra, rb) = (ra.unwrap().1, rb.unwrap().1);
    assert_eq!(
        ra.credentials.access_token, rb.credentials.access_token,
        "both use the one new token"
    );
    let stats = app
        .json(&format!("/sandbox/hubspot/admin/portals/{portal}"))
        .await;
    assert_eq!(stats["refreshes"], 1, "{stats}");
}
