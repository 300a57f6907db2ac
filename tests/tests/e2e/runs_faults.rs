//! The run engine when the provider and the network misbehave: 500s and
//! 429s retried, timeouts, unknown and repeated results, edge-case emails,
//! replays that keep their version, and a graceful shutdown mid-step.

use super::runs::{checks_at_provider, reference_setup, reference_setup_with, set_faults};
use ferry_tests::TestOptions;
use serde_json::json;

async fn verification_account(app: &ferry_tests::TestApp) -> String {
    app.json("/sandbox/verify/admin/accounts").await[0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_provider_faults(app: &ferry_tests::TestApp, force: Option<&str>) {
    set_provider_fault(app, "force", json!(force)).await;
}

/// Sets one of the sandbox provider's fault knobs (`force`, `latency_ms`).
async fn set_provider_fault(app: &ferry_tests::TestApp, knob: &str, value: serde_json::Value) {
    let account = verification_account(app).await;
    let mut settings = app
        .json(&format!("/sandbox/verify/admin/accounts/{account}"))
        .await["settings"]
        .clone();
    settings["faults"][knob] = value;
    assert_eq!(
        app.send_json(
            reqwest::Method::PUT,
            &format!("/sandbox/verify/admin/accounts/{account}"),
            settings
        )
        .await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_provider_answering_500_then_200_gives_one_check_after_a_retry() {
    let (app, _client, _, portal) = reference_setup().await;
    set_provider_faults(&app, Some("500")).await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM run_steps WHERE step_key = 'start_check' AND status = 'retrying'",
            1
        )
        .await,
        1
    );
    set_provider_faults(&app, None).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    let account = verification_account(&app).await;
    let stats = app
        .json(&format!("/sandbox/verify/admin/accounts/{account}"))
        .await;
    assert_eq!(app.provider_counts().await.0, 1, "{stats}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'start_check' AND status = 'retrying' AND http_calls LIKE '%\"status\":500%'").await,
        1,
        "the 500 is on record with the attempt"
    );
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert_eq!(c["properties"]["identity_verification_status"], "pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_for_an_unknown_check_resumes_nothing_and_a_repeated_result_resumes_once() {
    let (app, client, tenant, portal) = reference_setup().await;
    // Results come back to Ferry only when the test posts them.
    let account = verification_account(&app).await;
    let mut settings = app
        .json(&format!("/sandbox/verify/admin/accounts/{account}"))
        .await["settings"]
        .clone();
    let hook = settings["webhook_url"].as_str().unwrap().to_owned();
    settings["webhook_url"] = serde_json::Value::Null;
    app.send_json(
        reqwest::Method::PUT,
        &format!("/sandbox/verify/admin/accounts/{account}"),
        settings,
    )
    .await;
    app.create_contact(
        portal,
        json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'", 1)
            .await,
        1
    );
    let check = app.json_rows("SELECT check_ref FROM verifications").await[0][0]
        .clone()
        .unwrap();
    let connection: ferry_core::ConnectionId = hook.rsplit('/').next().unwrap().parse().unwrap();
    let secret = app
        .credentials(&tenant, &connection)
        .await
        .signing_secret()
        .unwrap()
        .to_owned();
    let post = |check: String| {
        let (hook, secret) = (hook.clone(), secret.clone());
        async move {
            let body = json!({"type": "check.completed", "check": {"id": check, "status": "complete", "result": "clear"}}).to_string();
            let sig = ferry_sandbox::verify::sign_result(&secret, body.as_bytes());
            let res = reqwest::Client::new()
                .post(hook)
                .header("content-type", "application/json")
                .header("X-Signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = post("chk_nobody_asked_for_this".into()).await;
    assert_eq!(status, 202);
    assert_eq!(body["resumed"], 0, "{body}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'")
            .await,
        1
    );
    let (status, first) = post(check.clone()).await;
    assert_eq!(
        (status, first["resumed"].as_u64()),
        (202, Some(1)),
        "{first}"
    );
    let (status, again) = post(check.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["resumed"], 0);
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'write_back'")
            .await,
        1,
        "written back once"
    );
    let page = client.get("/verifications").await;
    assert!(page.body.contains("badge-outcome-pass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emails_at_the_edge_of_the_format_and_a_missing_email() {
    let (app, _client, _, portal) = reference_setup().await;
    let plus = app
        .create_contact(
            portal,
            json!({"email": "ada+kyc@client.test", "firstname": "Ada", "lastname": "Plus"}),
        )
        .await;
    let unicode = app
        .create_contact(
            portal,
            json!({"email": "zoë@exämple.test", "firstname": "Zoë", "lastname": "Unicode"}),
        )
        .await;
    app.create_contact(
        portal,
        json!({"firstname": "No", "lastname": "Email", "phone": "+44 20 7946 0000"}),
    )
    .await
    .to_string();
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed')",
            3
        )
        .await,
        3,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    for contact in [&plus, &unicode] {
        let c = app
            .json(&format!(
                "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
            ))
            .await;
        assert_eq!(
            c["properties"]["identity_verification_status"], "pass",
            "{c}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'failed' AND error LIKE '%email%'")
            .await,
        1,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    assert_eq!(
        checks_at_provider(&app).await.1,
        2,
        "no check for the contact without email"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_run_keeps_the_version_it_started_with() {
    let (app, client, _, portal) = reference_setup().await;
    set_faults(&app, portal, Some("500")).await;
    app.create_contact(
        portal,
        json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'dead'", 1)
            .await,
        1
    );
    let run_id = app.json_rows("SELECT id FROM runs").await[0][0]
        .clone()
        .unwrap();
    let workflow = app.json_rows("SELECT id FROM workflows").await[0][0]
        .clone()
        .unwrap();
    // The workflow changes: v2 waits 12 h instead of 24 h.
    let page = client.get(&format!("/workflows/{workflow}")).await.body;
    let at = page.find("name=\"definition\"").unwrap();
    let start = at + page[at..].find('>').unwrap() + 1;
    let end = page[start..].find("</textarea>").unwrap() + start;
    let text = page[start..end]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
        .replace("86400", "43200");
    let res = client
        .submit(
            &format!("/workflows/{workflow}"),
            &format!("/workflows/{workflow}/definition"),
            &[("definition", &text)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    client
        .submit(
            &format!("/workflows/{workflow}"),
            &format!("/workflows/{workflow}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM workflow_versions").await, 2);
    set_faults(&app, portal, None).await;
    let res = client
        .submit(
            &format!("/runs/{run_id}"),
            &format!("/runs/{run_id}/replay"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM runs WHERE id = '{run_id}' AND version = 1 AND replays = 1"
        ))
        .await,
        1,
        "the replay ran version 1, the version the run started with"
    );
    app.create_contact(
        portal,
        json!({"email": "bob@client.test", "firstname": "Bob", "lastname": "Builder"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE version = 2", 1)
            .await,
        1,
        "new events run the new version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_with_retry_after_is_honoured_and_the_step_retried_no_sooner() {
    let (app, _client, _, portal) = reference_setup().await;
    set_provider_faults(&app, Some("429")).await;
    app.create_contact(
        portal,
        json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
    )
    .await;
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM run_steps WHERE step_key = 'start_check' AND status = 'retrying'",
            1
        )
        .await,
        1
    );
    // Three tries inside the call, each answered 429 with Retry-After: 2.
    let calls = app
        .json_rows("SELECT http_calls FROM run_steps WHERE step_key = 'start_check'")
        .await[0][0]
        .clone()
        .unwrap();
    let calls: serde_json::Value = serde_json::from_str(&calls).unwrap();
    let statuses: Vec<u64> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![429, 429, 429], "{calls}");
    // The step is retried no sooner than the provider asked.
    let gap = app
        .json_rows("SELECT CAST(r.wake_at AS TEXT), CAST(s.finished_at AS TEXT) FROM runs r JOIN run_steps s ON s.run_id = r.id WHERE s.step_key = 'start_check' AND r.status = 'queued'")
        .await;
    if let Some(row) = gap.first() {
        let parse = |t: &Option<String>| {
            let t = t.clone().unwrap().replace(' ', "T");
            chrono::DateTime::parse_from_rfc3339(&t)
                .or_else(|_| chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%#z"))
                .unwrap()
        };
        let (wake, finished) = (parse(&row[0]), parse(&row[1]));
        assert!(
            wake - finished >= chrono::Duration::seconds(2),
            "{wake} vs {finished}"
        );
    }
    set_provider_faults(&app, None).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    assert_eq!(checks_at_provider(&app).await.0, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_shutdown_lets_the_step_in_flight_finish() {
    // Runs executed in process, on either database: shutting down must
    // wait for them (the queue's worker is apalis' own graceful stop).
    let (app, _client, _, portal) = reference_setup_with(TestOptions {
        redis_url: None,
        settings: vec![("in_process_runs", "16".into())],
        ..TestOptions::default()
    })
    .await;
    // The provider takes 2 s to create a check.
    set_provider_fault(&app, "latency_ms", json!(2000)).await;
    let account = verification_account(&app).await;
    let path = format!("/sandbox/verify/admin/accounts/{account}");
    let before = app.json(&path).await["received"].as_u64().unwrap_or(0);
    app.create_contact(
        portal,
        json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
    )
    .await;
    // Stop once the provider has the call (it answers 2 s later).
    let mut now = before;
    for _ in 0..150 {
        now = app.json(&path).await["received"].as_u64().unwrap_or(0);
        if now > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(now, before + 1, "the check call reached the provider");
    // SIGTERM's path in a worker: stop taking work, let the step in flight
    // finish. (The server stays up: it also serves the simulators, which
    // stand in for remote systems that a stopping Ferry does not stop.)
    app.stop_background();
    // What the process waits for before it exits: by then the step is done.
    app.engine.drain(std::time::Duration::from_secs(20)).await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM run_steps WHERE step_key = 'start_check' AND status = 'ok'"
        )
        .await,
        1,
        "the check call finished before shutdown completed: {:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    // Parked at the wait (or already woken by the result, which nobody
    // takes now): not left running, and the check's outcome kept.
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM runs WHERE status IN ('waiting', 'queued') AND error IS NULL",
            1
        )
        .await,
        1,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    assert_eq!(checks_at_provider(&app).await.0, 1);
    assert!(ferry_tests::captured_logs().contains("shutting down: finishing background work"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_that_times_out_is_retried_and_leaves_one_check() {
    let (app, _client, _, portal) = reference_setup_with(TestOptions {
        settings: vec![("http_timeout_secs", "2".into())],
        ..TestOptions::default()
    })
    .await;
    set_provider_fault(&app, "latency_ms", json!(3000)).await;
    app.create_contact(
        portal,
        json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM run_steps WHERE step_key = 'start_check' AND status = 'retrying' AND error LIKE '%did not answer in time%'", 1).await,
        1,
        "{:?}",
        app.json_rows("SELECT step_key, status, error FROM run_steps").await
    );
    set_provider_fault(&app, "latency_ms", json!(0)).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1
    );
    // The provider may have finished the first request after Ferry gave
    // up on it: the retry carried the same idempotency key.
    assert_eq!(checks_at_provider(&app).await.0, 1);
}
