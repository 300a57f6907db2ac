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
    let rejected = app
        .create_contact(
            portal,
            json!({"email": "rita@client.test", "firstname": "Rita", "lastname": "Rejected"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 3)
            .await,
        3,
        "the three runs finish: {:?}",
        app.json_rows("SELECT id, status, error FROM runs").await
    );
    for (contact, outcome) in [
        (&clear, "pass"),
        (&consider, "needs_review"),
        (&rejected, "fail"),
    ] {
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
    assert_eq!(app.count(RUNS).await, 3);
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM runs WHERE workflow_id = '{workflow}' AND version = 1 AND tenant_id = '{tenant}'")).await,
        3
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE status = 'ok'")
            .await,
        15,
        "five steps per run"
    );
    assert!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE http_calls LIKE '%PATCH%'")
            .await
            >= 3
    );
    // Redacted: names and emails never reach the step records.
    // (Compared case-sensitively here: SQL's LIKE would also match "ada"
    // inside the random hex of a check or run id.)
    let recorded = app.json_rows("SELECT input, output FROM run_steps").await;
    assert!(
        recorded
            .iter()
            .flatten()
            .flatten()
            .any(|cell| cell.contains("[redacted]")),
        "the step records were read, and hold redacted fields: {recorded:?}"
    );
    for secret in ["Ada", "ada@client.test", "Lovelace", "1815-12-10"] {
        let leaks = recorded
            .iter()
            .flatten()
            .flatten()
            .filter(|cell| cell.contains(secret))
            .count();
        assert_eq!(leaks, 0, "{secret} is redacted");
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
    let (checks, _) = app.provider_counts().await;
    assert_eq!(checks, 3, "one check per contact");
    // Ferry's write-back fired propertyChange events: recognised as echoes
    // (stored, no run), so the three runs stay three.
    assert_eq!(app.count(RUNS).await, 3);
    // The staff view.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM verifications WHERE outcome = 'pass'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM verifications WHERE outcome = 'needs_review' AND name = 'Bob Consider' AND email = 'bob@client.test'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM verifications WHERE outcome = 'fail' AND name = 'Rita Rejected'"
        )
        .await,
        1
    );
    // Staff see "needs review" in words, with the email and contact id to
    // tell people apart, and can download the same rows as CSV (audited).
    let page = client.get("/verifications?outcome=needs_review").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(">needs review</span>"), "{}", page.body);
    assert!(page.body.contains("bob@client.test") && page.body.contains(&consider));
    assert!(!page.body.contains("Rita"), "filtered by outcome");
    let csv = client.get("/verifications.csv?q=rita%40client.test").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "name,email,contact_id,outcome,checked_at,check_reference,run_id"
    );
    assert_eq!(lines.len(), 2, "the one row the search finds: {}", csv.body);
    assert!(lines[1].starts_with(&format!("Rita Rejected,rita@client.test,{rejected},fail,")));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'verifications.exported'")
            .await,
        1
    );
    let bad = client.get("/verifications?outcome=consider").await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body
            .contains("Choose pass, needs review, fail or pending.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_workflow_runs_end_to_end_on_the_embedded_queue() {
    reference_flow(TestOptions {
        redis_url: None,
        settings: vec![("in_process_runs", "0".into())],
        ..TestOptions::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_workflow_runs_end_to_end_in_process() {
    reference_flow(TestOptions {
        redis_url: None,
        settings: vec![("in_process_runs", "16".into())],
        ..TestOptions::default()
    })
    .await;
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

/// A tenant with HubSpot and the verification provider connected and the
/// reference workflow published.
pub(crate) async fn reference_setup() -> (
    ferry_tests::TestApp,
    ferry_tests::TestClient,
    ferry_core::TenantId,
    u64,
) {
    reference_setup_with(TestOptions::default()).await
}

/// A tenant with both sandbox connections and the reference workflow
/// published, on an app started with `options`.
pub(crate) async fn reference_setup_with(
    options: TestOptions,
) -> (
    ferry_tests::TestApp,
    ferry_tests::TestClient,
    ferry_core::TenantId,
    u64,
) {
    let app = spawn_app_with(options).await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let portal = app.portal().await;
    (app, client, tenant, portal)
}

/// Posts a HubSpot webhook batch signed as HubSpot signs it.
async fn hubspot_batch(app: &ferry_tests::TestApp, events: &serde_json::Value) -> u16 {
    use ferry_core::Clock;
    let body = events.to_string();
    let uri = format!("{}/hooks/hubspot/sandbox", app.address);
    let ts = app.clock.now().timestamp_millis().to_string();
    let sig = ferry_connectors::hubspot::signature_v3(
        &app.sandbox_client_secret(),
        "POST",
        &uri,
        body.as_bytes(),
        &ts,
    );
    reqwest::Client::new()
        .post(&uri)
        .header("content-type", "application/json")
        .header("X-HubSpot-Request-Timestamp", ts)
        .header("X-HubSpot-Signature-v3", sig)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Checks and check requests at the provider since the workflow was
/// published (its publish checklist makes checks of its own).
pub(crate) async fn checks_at_provider(app: &ferry_tests::TestApp) -> (u64, u64) {
    app.provider_counts().await
}

pub(crate) async fn set_faults(app: &ferry_tests::TestApp, portal: u64, force: Option<&str>) {
    let status = app
        .send_json(
            reqwest::Method::PUT,
            &format!("/sandbox/hubspot/admin/portals/{portal}/faults"),
            json!({"error_rate": 0.0, "latency_ms": 0, "force": force, "rotate_refresh_tokens": false, "unlimited": false}),
        )
        .await;
    assert!(status < 300, "{status}");
}

/// Moves the clock on and lets the sweeper (every second) act.
async fn advance(app: &ferry_tests::TestApp, minutes: i64) {
    app.clock.advance(chrono::Duration::minutes(minutes));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_ten_times_concurrently_is_one_run_and_one_check_and_a_repeat_record_is_skipped()
 {
    let (app, _client, tenant, portal) = reference_setup().await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    let row = &app
        .json_rows(
            "SELECT payload, dedupe_key FROM inbound_events WHERE event_type = 'contact.creation'",
        )
        .await[0];
    let (sealed, dedupe) = (row[0].as_deref().unwrap(), row[1].as_deref().unwrap());
    // Payloads are sealed at rest.
    assert!(serde_json::from_str::<serde_json::Value>(sealed).is_err());
    let payload = app
        .vault()
        .open(&tenant, sealed, &ferry_store::inbound::payload_aad(dedupe))
        .await
        .unwrap();
    let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    // HubSpot redelivers the same event, ten times at once.
    let batch = json!([event]);
    let sends = (0..10).map(|_| hubspot_batch(&app, &batch));
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // A different event id for the same contact: recognised and skipped.
    let mut again = event.clone();
    again["eventId"] = json!(987_654_321u64);
    assert_eq!(hubspot_batch(&app, &json!([again])).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.count(RUNS).await,
        2,
        "the original run and one skipped run"
    );
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM runs WHERE status = 'skipped' AND record_id = '{contact}' AND error LIKE '%already processed%'")).await,
        1
    );
    assert_eq!(
        checks_at_provider(&app).await.0,
        1,
        "one check at the provider"
    );
    assert!(ferry_tests::captured_logs().contains("record already processed: run skipped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_back_is_retried_dead_lettered_and_replayed_from_that_step_only() {
    let (app, client, tenant, portal) = reference_setup().await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'", 1)
            .await,
        1,
        "the run waits for the check result"
    );
    set_faults(&app, portal, Some("500")).await;
    // The result arrives (1.5 s later); the write-back fails with a 500.
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM run_steps WHERE step_key = 'write_back' AND status = 'retrying'",
            1
        )
        .await,
        1
    );
    let run_id = app.json_rows("SELECT id FROM runs").await[0][0]
        .clone()
        .unwrap();
    // Backed off (about 1 s, then 2 s, with jitter), then tried again.
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'dead'", 1)
            .await,
        1,
        "dead-lettered after the third attempt"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'write_back' AND status = 'failed' AND attempt = 3").await,
        1
    );
    // The failing call's log line names the tenant, the workflow and the run.
    let logs = ferry_tests::captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains("run dead-lettered") && l.contains(&run_id))
        .unwrap_or_else(|| panic!("no dead-letter line for {run_id}"));
    let workflow = app
        .json_rows(&format!(
            "SELECT workflow_id FROM runs WHERE id = '{run_id}'"
        ))
        .await[0][0]
        .clone()
        .unwrap();
    assert!(
        line.contains(&format!("tenant_id={tenant}"))
            && line.contains(&format!("workflow_id={workflow}")),
        "{line}"
    );
    let page = client.get(&format!("/runs/{run_id}")).await;
    assert!(
        page.body.contains("dead") && page.body.contains("after 3 attempts"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Replay from the failed step"));

    // Fixed at HubSpot; replayed: only the write-back runs again.
    set_faults(&app, portal, None).await;
    let res = client
        .submit(
            &format!("/runs/{run_id}"),
            &format!("/runs/{run_id}/replay"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    for step in [
        "fetch_contact",
        "validate_contact",
        "start_check",
        "wait_result",
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM run_steps WHERE step_key = '{step}' AND status = 'ok'"
            ))
            .await,
            1,
            "{step} is not repeated"
        );
    }
    assert_eq!(checks_at_provider(&app).await.0, 1);
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert_eq!(c["properties"]["identity_verification_status"], "pass");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM audit_events WHERE action = 'run.replayed' AND tenant_id = '{tenant}'")).await,
        1
    );
    // A succeeded run cannot be replayed.
    let res = client
        .submit(
            &format!("/runs/{run_id}"),
            &format!("/runs/{run_id}/replay"),
            &[],
        )
        .await;
    assert_eq!(res.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contact_that_fails_validation_is_not_written_and_the_reason_is_recorded() {
    let (app, client, _, portal) = reference_setup().await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "no-last-name@client.test", "firstname": "Ada"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'failed'", 1)
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE error LIKE '%validation failed, nothing written%lastname%'").await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'validate_contact' AND attempt = 1 AND status = 'failed'").await,
        1,
        "a validation failure is not retried"
    );
    assert_eq!(checks_at_provider(&app).await.1, 0, "no check was started");
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert!(
        c["properties"]
            .get("identity_verification_status")
            .is_none(),
        "{c}"
    );
    let page = client.get("/runs?status=failed").await;
    assert!(page.body.contains("validation failed"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_without_result_times_out_after_24_hours_and_pending_is_written_back() {
    let (app, _client, _, portal) = reference_setup().await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "slow@client.test", "firstname": "Sam", "lastname": "Pending"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'", 1)
            .await,
        1
    );
    advance(&app, 23 * 60).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'")
            .await,
        1,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    advance(&app, 61).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1,
        "{:?} {:?}",
        app.json_rows("SELECT status, error FROM runs").await,
        app.json_rows("SELECT step_key, status, error FROM run_steps")
            .await
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'wait_result' AND status = 'timed_out' AND error LIKE 'outcome deadline%'").await,
        1
    );
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert_eq!(c["properties"]["identity_verification_status"], "pending");
    assert!(ferry_tests::captured_logs().contains("outcome_deadline"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_worker_died_after_starting_the_check_resumes_without_a_second_check() {
    let (app, _client, _, portal) = reference_setup().await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    assert_eq!(checks_at_provider(&app).await, (1, 1));
    // As if the worker died right after the provider created the check but
    // before Ferry saved the step: the run is still "running" at start_check,
    // its lease about to lapse.
    let sql = "UPDATE runs SET status = 'running', step_index = 2, finished_at = NULL, lease_until = created_at";
    app.execute(sql).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1,
        "the sweeper re-queued it and it finished"
    );
    let (checks, requests) = checks_at_provider(&app).await;
    assert_eq!(requests, 2, "the check was requested again…");
    assert_eq!(checks, 1, "…with the same idempotency key: still one check");
    assert!(ferry_tests::captured_logs().contains("re-queued"));
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert_eq!(c["properties"]["identity_verification_status"], "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_pages_filter_export_and_keep_tenants_apart() {
    use ferry_core::Role;
    let (app, client, tenant, portal) = reference_setup().await;
    for (i, last) in ["Lovelace", "Consider"].iter().enumerate() {
        app.create_contact(
            portal,
            json!({"email": format!("c{i}+tag@client.test"), "firstname": "Ada", "lastname": last}),
        )
        .await;
    }
    app.create_contact(
        portal,
        json!({"email": "broken@client.test", "firstname": "No"}),
    )
    .await;
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed')",
            3
        )
        .await,
        3
    );
    let failed = app
        .json_rows("SELECT id FROM runs WHERE status = 'failed'")
        .await[0][0]
        .clone()
        .unwrap();

    // The list and its filters.
    let page = client.get("/runs").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("href=\"/runs/run_").count(), 3);
    // The admin sees who each run is about; staff see record ids only.
    assert!(
        page.body.contains("Ada Lovelace <span class=\"muted\">· "),
        "{}",
        page.body
    );
    // Search by a name word, the full name or the email, through keyed
    // hashes: nothing to match in the clear is stored.
    for (q, n) in [
        ("lovelace", 1),
        ("ADA", 2),
        ("Ada  Consider", 1),
        ("c0%2Btag%40client.test", 1),
        ("ada%40client", 0),
    ] {
        let found = client.get(&format!("/runs?q={q}")).await;
        assert_eq!(found.status, 200);
        assert_eq!(found.body.matches("href=\"/runs/run_").count(), n, "{q}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE search_keys LIKE '%lovelace%' OR record_label LIKE '%Lovelace%'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE search_keys IS NOT NULL")
            .await,
        3
    );
    let page = client.get("/runs?status=failed").await;
    assert_eq!(page.body.matches("href=\"/runs/run_").count(), 1);
    assert!(page.body.contains(&failed));
    let bad = client.get("/runs?status=exploded&from=yesterday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("Choose a status") && bad.body.contains("Enter a date like"));
    // The JSON API (paging through many runs: see the keyset test).
    let api = client.get("/api/runs?status=succeeded").await;
    let body: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(body["runs"].as_array().map(Vec::len), Some(2));
    assert!(body["next"].is_null());
    let bad = client.get("/api/runs?after=garbage").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("\"field\":\"after\""), "{}", bad.body);

    // A run page, and its exports.
    let page = client.get(&format!("/runs/{failed}")).await;
    assert!(page.body.contains("validate_contact") && page.body.contains("GET"));
    // Its replay says what would run again, and that the data is the problem.
    assert!(
        page.body.contains("This run failed because of its data."),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("“Check name and email”, “Start the identity check”"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("Start again from the first step (re-fetch the source record)")
    );
    let csv = client.get(&format!("/runs/{failed}/log.csv")).await;
    assert_eq!(csv.status, 200);
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(
        rows.iter()
            .any(|r| &r[2] == "fetch_contact" && &r[11] == "GET" && &r[13] == "200")
    );
    assert!(
        rows.iter()
            .any(|r| &r[2] == "validate_contact" && &r[5] == "failed")
    );
    assert!(
        !csv.body.contains("broken@client.test"),
        "redacted in exports too"
    );
    let json_log: serde_json::Value =
        serde_json::from_str(&client.get(&format!("/runs/{failed}/log.json")).await.body).unwrap();
    assert_eq!(json_log["run"]["status"], "failed");
    assert!(json_log["steps"].as_array().is_some_and(|s| s.len() == 2));

    // Bulk replay needs a range.
    let res = client
        .submit("/runs", "/runs/replay", &[("from", ""), ("to", "someday")])
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains("Enter the start of the range.")
            && res.body.contains("Enter a date like")
    );
    assert!(
        res.body.contains(&format!("href=\"/runs/{failed}\"")),
        "a wrong range keeps the list: {}",
        res.body
    );

    // Staff: read-only.
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam", Role::Staff)
        .await;
    let s = app.login(&staff).await;
    let staff_runs = s.get("/runs").await;
    assert_eq!(staff_runs.status, 200);
    assert!(
        !staff_runs.body.contains("Lovelace"),
        "names are not shown to staff"
    );
    let v = s.get("/verifications").await;
    assert_eq!(v.status, 200);
    assert!(v.body.contains("Ada Lovelace") && v.body.contains("badge-outcome-pass"));
    assert!(v.body.contains("Ada Consider") && v.body.contains("badge-outcome-needs_review"));
    assert!(
        v.body.contains("c0+tag@client.test"),
        "the email tells two people of the same name apart"
    );
    let review = s.get("/verifications?outcome=needs_review").await;
    assert!(review.body.contains("Ada Consider") && !review.body.contains("Ada Lovelace"));
    let search = s.get("/verifications?q=Lovelace").await;
    assert!(search.body.contains("Ada Lovelace") && !search.body.contains("Ada Consider"));
    assert_eq!(s.get("/verifications?outcome=maybe").await.status, 422);
    assert_eq!(
        s.submit(
            &format!("/runs/{failed}"),
            &format!("/runs/{failed}/replay"),
            &[]
        )
        .await
        .status,
        403
    );

    // Tenant B sees none of it.
    let (_, admin_b) = app.create_tenant("Bravo").await;
    let b = app.login(&admin_b).await;
    for path in [
        format!("/runs/{failed}"),
        format!("/runs/{failed}/log.json"),
        format!("/runs/{failed}/log.csv"),
    ] {
        assert_eq!(b.get(&path).await.status, 404, "{path}");
    }
    assert_eq!(
        b.submit("/runs", &format!("/runs/{failed}/replay"), &[])
            .await
            .status,
        404
    );
    assert_eq!(
        b.get("/runs")
            .await
            .body
            .matches("href=\"/runs/run_")
            .count(),
        0
    );
    assert!(!b.get("/verifications").await.body.contains("Lovelace"));
    let res = b
        .submit(
            "/runs",
            "/runs/replay",
            &[("from", "2000-01-01"), ("to", "2100-01-01")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'failed'")
            .await,
        1,
        "B's bulk replay touches nothing of A's"
    );
}
