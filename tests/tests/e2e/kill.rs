//! A worker process killed mid-run (SIGKILL, no chance to clean up): a new
//! worker process takes the run over when its lease lapses and finishes it,
//! and the provider still has one check.

use ferry_tests::{TestOptions, spawn_app_with};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_run_is_replaced_and_the_run_finishes_with_one_check() {
    let app = spawn_app_with(TestOptions {
        worker: false,
        ..TestOptions::default()
    })
    .await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let portal = app.portal().await;
    // The provider takes 3 s to answer "create check": the kill lands while
    // the call is in flight.
    let accounts = app.json("/sandbox/verify/admin/accounts").await;
    let account = accounts[0]["account_id"].as_str().unwrap().to_owned();
    let mut settings = app
        .json(&format!("/sandbox/verify/admin/accounts/{account}"))
        .await["settings"]
        .clone();
    settings["faults"]["latency_ms"] = json!(3000);
    settings["delay_ms"] = json!(200);
    assert_eq!(
        app.send_json(
            reqwest::Method::PUT,
            &format!("/sandbox/verify/admin/accounts/{account}"),
            settings.clone()
        )
        .await,
        200
    );

    let mut first = app.start_worker(
        "worker",
        &[("FERRY_RUN_LEASE_SECS", "5"), ("FERRY_LOG", "info")],
    );
    let contact = app
        .create_contact(
            portal,
            json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM run_steps WHERE step_key = 'validate_contact' AND status = 'ok'",
            1
        )
        .await,
        1,
        "the first worker took the run: {}",
        std::fs::read_to_string(app.data_dir.path().join("worker.log")).unwrap_or_default()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'running'")
            .await,
        1,
        "killed while holding the run"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'start_check'")
            .await,
        0,
        "the check step never finished"
    );

    settings["faults"]["latency_ms"] = json!(0);
    app.send_json(
        reqwest::Method::PUT,
        &format!("/sandbox/verify/admin/accounts/{account}"),
        settings,
    )
    .await;
    let mut second = app.start_worker(
        "worker",
        &[("FERRY_RUN_LEASE_SECS", "5"), ("FERRY_LOG", "info")],
    );
    let mut done = 0;
    for _ in 0..300 {
        done = app
            .count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")
            .await;
        if done == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().ok();
    second.wait().ok();
    assert_eq!(done, 1, "the second worker finished the run");
    let stats = app
        .json(&format!("/sandbox/verify/admin/accounts/{account}"))
        .await;
    let (checks, requests) = app.provider_counts().await;
    assert_eq!(checks, 1, "one check at the provider: {stats}");
    assert_eq!(
        requests, 2,
        "asked twice, with one idempotency key: {stats}"
    );
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert_eq!(c["properties"]["identity_verification_status"], "pass");
}
