//! HubSpot's official Python client (`hubspot-api-client`) against the
//! simulator: create, read, update, search with paging, batch read, a 404,
//! and the webhook signature checked by the client's own `Signature` helper.

use ferry_tests::{receiver, spawn_app, wait_for};
use serde_json::json;
use std::path::PathBuf;

fn python() -> String {
    std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_hubspot_python_client_works_against_the_simulator() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let token = app
        .credentials(&tenant, &id)
        .await
        .access_token()
        .unwrap()
        .to_owned();
    let portal = app.json("/sandbox/hubspot/admin/portals").await[0]["portalId"]
        .as_u64()
        .unwrap();

    let rx = receiver(0).await;
    app.send_json(
        reqwest::Method::PUT,
        "/sandbox/hubspot/admin/apps/ferry-sandbox-app/webhooks",
        json!({ "target_url": rx.url, "subscriptions": ["contact.creation"] }),
    )
    .await;
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
        json!({ "properties": { "email": "hook@client.test" } }),
    )
    .await;
    let seen = wait_for(&rx.seen, 1).await;
    let (headers, body) = seen.first().expect("a webhook").clone();
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (signature, timestamp) = (
        header("x-hubspot-signature-v3"),
        header("x-hubspot-request-timestamp"),
    );
    let secret = app.sandbox_client_secret();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/hubspot_client.py");
    let host = format!("{}/sandbox/hubspot", app.address);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .env("HUBSPOT_HOST", host)
            .env("HUBSPOT_TOKEN", token)
            .env("CLIENT_SECRET", secret)
            .env("WEBHOOK_BODY", body)
            .env("WEBHOOK_URI", rx.url)
            .env("WEBHOOK_SIGNATURE", signature)
            .env("WEBHOOK_TIMESTAMP", timestamp)
            .output()
            .expect(
                "python3 must be installed (scripts/test prepares a venv with hubspot-api-client)",
            )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("conformance passed"),
        "{stdout}\n{stderr}"
    );
}
