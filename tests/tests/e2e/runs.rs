//! The run engine end to end: HubSpot simulator webhook → Ferry → the
//! verification simulator → result webhook → write-back to the contact,
//! over real HTTP, on both queue backends.

use ferry_tests::{TestOptions, redis_url, spawn_app, spawn_app_with};
use serde_json::json;

const RUNS: &str = "SELECT COUNT(*) FROM runs";

async fn reference_flow(options: TestOptions) {
    let app = spawn_app_with(options).await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let workflow = app.publish_reference(&client, &admin).await;
    let portal = app.portal().await;

    let clear = app
        .create_contact(portal, json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace", "date_of_birth": "1815-12-10"}))
        .await;
    let consider = app
        .create_contact(
            portal,
            json!({"email": "bob@client.test", "firstname": "Bob", "lastname": "Consider"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 2)
            .await,
        2,
        "both runs finish: {:?}",
        app.json_rows("SELECT id, status, error FROM runs").await
    );
    for (contact, outcome) in [(&clear, "pass"), (&consider, "fail")] {
        let c = app
            .json(&format!(
                "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
            ))
            .await;
        let props = &c["properties"];
        assert_eq!(props["identity_verification_status"], outcome, "{c}");
        assert!(
            props["identity_verification_ref"]
                .as_str()
                .is_some_and(|r| r.starts_with("chk_")),
            "{c}"
        );
    }
    // No identity document or date of birth went anywhere but where it was.
    let ada = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{clear}"
        ))
        .await;
    assert_eq!(
        ada["properties"]
            .as_object()
            .map(|p| p.keys().filter(|k| k.starts_with("identity_")).count()),
        Some(2),
        "only the outcome and its reference are written back: {ada}"
    );
    // Every run is on record with its version, steps and HTTP calls.
    assert_eq!(app.count(RUNS).await, 2);
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM runs WHERE workflow_id = '{workflow}' AND version = 1 AND tenant_id = '{tenant}'")).await,
        2
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE status = 'ok'")
            .await,
        10,
        "five steps per run"
    );
    assert!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE http_calls LIKE '%PATCH%'")
            .await
            >= 2
    );
    // Redacted: names and emails never reach the step records.
    for secret in ["Ada", "ada@client.test", "Lovelace", "1815-12-10"] {
        assert_eq!(
            app.count(&format!("SELECT COUNT(*) FROM run_steps WHERE input LIKE '%{secret}%' OR output LIKE '%{secret}%'")).await,
            0,
            "{secret} is redacted"
        );
    }
    // The context (trigger and full step outputs) is sealed at rest.
    for secret in ["ada@client.test", "Lovelace", "1815-12-10"] {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM runs WHERE context LIKE '%{secret}%'"
            ))
            .await,
            0,
            "the run context is sealed"
        );
    }
    // One check per contact at the provider.
    let accounts = app.json("/sandbox/verify/admin/accounts").await;
    let checks: u64 = accounts
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["checks"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(checks, 2, "{accounts}");
    // Ferry's write-back fired propertyChange events: recognised as echoes
    // (stored, no run), so the two runs stay two.
    assert_eq!(app.count(RUNS).await, 2);
    // The staff view.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM verifications WHERE outcome = 'pass'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM verifications WHERE outcome = 'fail' AND name = 'Bob Consider'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_workflow_runs_end_to_end_on_the_embedded_queue() {
    reference_flow(TestOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_workflow_runs_end_to_end_on_the_redis_queue() {
    reference_flow(TestOptions {
        redis_url: Some(redis_url()),
        ..TestOptions::default()
    })
    .await;
}

#[tokio::test]
async fn nothing_runs_without_a_published_workflow() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    let portal = app.portal().await;
    app.create_contact(
        portal,
        json!({"email": "a@b.test", "firstname": "A", "lastname": "B"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM inbound_events", 1)
            .await,
        1
    );
    assert_eq!(app.count(RUNS).await, 0);
}
