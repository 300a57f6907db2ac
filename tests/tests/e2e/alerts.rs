//! Monitoring and alerts end to end: the simulators' fault knobs and the
//! movable clock make each rule fire and resolve; the emails reach a real
//! SMTP server with the right recipient, subject and links, once per
//! incident; SMTP down delays them, never loses them; two evaluators on one
//! database send each email once; another tenant sees none of it.

use super::runs::set_faults;
use chrono::Duration;
use ferry_core::{Clock, TenantId, WorkflowId};
use ferry_tests::{Account, SmtpSink, TestApp, TestClient, TestOptions, spawn_app_with};
use serde_json::json;

struct Setup {
    app: TestApp,
    client: TestClient,
    admin: Account,
    tenant: TenantId,
    portal: u64,
    workflow: WorkflowId,
}

async fn setup_with(options: TestOptions) -> Setup {
    let app = spawn_app_with(options).await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let workflow = app
        .publish_reference(&client, &admin)
        .await
        .parse()
        .unwrap();
    let portal = app.portal().await;
    Setup {
        app,
        client,
        admin,
        tenant,
        portal,
        workflow,
    }
}

async fn setup() -> Setup {
    setup_with(TestOptions::default()).await
}

async fn contacts(s: &Setup, n: usize) {
    for i in 0..n {
        s.app
            .create_contact(
                s.portal,
                json!({"email": format!("c{i}@client.test"), "firstname": "Ada", "lastname": format!("Client{i}")}),
            )
            .await;
    }
}

fn mails_about<'a>(
    sink: &'a SmtpSink,
    needle: &'a str,
) -> impl Iterator<Item = ferry_tests::CapturedMail> + 'a {
    sink.messages()
        .into_iter()
        .filter(move |m| m.subject.contains(needle))
}

/// Evaluates until an incident of `kind` is open: the engine counts a
/// run's end just after saving it, so a test that saw the saved status can
/// be a moment ahead of the count.
async fn evaluate_until(app: &TestApp, kind: &str) {
    let sql = format!(
        "SELECT COUNT(*) FROM alert_incidents WHERE kind = '{kind}' AND resolved_at IS NULL"
    );
    for _ in 0..50 {
        app.evaluate_alerts().await;
        if app.count(&sql).await > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no open {kind} incident");
}

fn sink(app: &TestApp) -> &SmtpSink {
    app.smtp.as_ref().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hubspot_500s_fire_the_error_rate_alert_once_to_the_owner_and_it_resolves() {
    let s = setup().await;
    let app = &s.app;
    set_faults(app, s.portal, Some("500")).await;
    contacts(&s, 5).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'dead'", 5)
            .await,
        5,
        "every run dead-lettered after its retries"
    );
    let report = app.evaluate_alerts().await;
    assert!(report.rules >= 6, "{report:?}");
    evaluate_until(app, "error_rate").await;
    let mail = app
        .wait_for_mail(
            &s.admin.email,
            "[Ferry] FIRING: error rate 100.0% > 2% in 24h",
        )
        .await;
    assert!(
        mail.subject
            .ends_with("(5 of 5 runs) — KYC for new clients (Acme)"),
        "{}",
        mail.subject
    );
    let runs_link = mail
        .link_containing("/runs?workflow=")
        .expect("a link to the filtered run list");
    assert!(runs_link.ends_with(&format!("/runs?workflow={}&status=dead", s.workflow)));
    assert!(
        mail.link_containing("/alerts/rules/alr_").is_some(),
        "{}",
        mail.body
    );
    let html = mail.html.clone().expect("an HTML part");
    assert!(
        html.contains("error rate") && html.contains("&#38;status=dead"),
        "{html}"
    );
    // No personal data from the runs: no contact's name or address.
    assert!(!mail.raw.contains("client.test") && !mail.raw.contains("Client0"));

    // The same failures, evaluated again and again: no second email.
    for _ in 0..5 {
        app.clock.advance(Duration::minutes(1));
        app.evaluate_alerts().await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(mails_about(sink(app), "FIRING: error rate").count(), 1);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM alert_incidents WHERE kind = 'error_rate' AND resolved_at IS NULL"
        )
        .await,
        1
    );

    // The dashboard shows it: the open alert, the failing badge, the chart.
    let home = s.client.get("/home").await;
    assert!(home.body.contains("badge-health-failing"), "{}", home.body);
    assert!(
        home.body.contains("5 failed or dead-lettered"),
        "{}",
        home.body
    );
    assert!(home.body.contains("badge-incident-firing"));

    // The fault cleared and a day gone by: resolved, with a second email.
    set_faults(app, s.portal, None).await;
    app.clock.advance(Duration::hours(25));
    app.evaluate_alerts().await;
    let resolved = app
        .wait_for_mail(
            &s.admin.email,
            "[Ferry] RESOLVED: error rate back to normal",
        )
        .await;
    assert!(resolved.link_containing("/alerts/inc_").is_some());
    assert_eq!(mails_about(sink(app), "error rate").count(), 2);
    // The incident's page lists both emails and their delivery.
    let incident = app
        .json_rows("SELECT id FROM alert_incidents WHERE kind = 'error_rate'")
        .await[0][0]
        .clone()
        .unwrap();
    // (A day later: a new session.)
    let client = app.login(&s.admin).await;
    let mut page = client.get(&format!("/alerts/{incident}")).await;
    for _ in 0..50 {
        if page.body.matches("badge-mail-sent").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = client.get(&format!("/alerts/{incident}")).await;
    }
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("badge-mail-sent").count(),
        2,
        "{}",
        page.body
    );
    assert!(page.body.contains("badge-incident-resolved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_write_backs_fire_the_destination_writes_alert_and_it_resolves_on_its_own_window() {
    let s = setup().await;
    let app = &s.app;
    set_faults(app, s.portal, Some("500-writes")).await;
    contacts(&s, 5).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'dead'", 5)
            .await,
        5,
        "{:?}",
        app.json_rows("SELECT step_key, status, error FROM run_steps")
            .await
    );
    evaluate_until(app, "destination_writes").await;
    // The numbers are those of the evaluation that fired first (the
    // worker's own minute tick may come before the last attempts end).
    let mail = app
        .wait_for_mail(&s.admin.email, "[Ferry] FIRING: failed writes ")
        .await;
    assert!(mail.subject.contains("> 2% in 1h ("), "{}", mail.subject);
    assert!(mail.body.contains("Destination writes") || mail.body.contains("destination writes"));
    app.wait_for_mail(&s.admin.email, "FIRING: error rate")
        .await;
    // The writes' window is an hour, the error rate's a day: two hours on,
    // with the fault cleared, only the writes' incident resolves.
    set_faults(app, s.portal, None).await;
    app.clock.advance(Duration::hours(2));
    app.evaluate_alerts().await;
    app.wait_for_mail(
        &s.admin.email,
        "RESOLVED: destination writes back to normal",
    )
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alert_incidents WHERE resolved_at IS NULL")
            .await,
        1,
        "the error rate still fires"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_failures_in_an_hour_give_one_email_per_rule() {
    let s = setup().await;
    let app = &s.app;
    let metrics = app.engine.metrics();
    for minute in 0..60 {
        let at = app.clock.now() - Duration::minutes(59 - minute);
        metrics.count(&s.tenant, &s.workflow, at, |r| {
            r.events += 170;
            r.started += 170;
            r.dead += 167;
            r.succeeded += 3;
            r.writes += 170;
            r.writes_failed += 167;
        });
    }
    for _ in 0..60 {
        app.evaluate_alerts().await;
        app.clock.advance(Duration::minutes(1));
    }
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let subjects: Vec<String> = sink(app)
        .messages()
        .into_iter()
        .map(|m| m.subject)
        .filter(|s| s.starts_with("[Ferry] FIRING"))
        .collect();
    assert_eq!(subjects.len(), 2, "one per rule that fired: {subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains("error rate 98.2%")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("failed writes 98.2%")),
        "{subjects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_grant_raises_the_authentication_alert_at_the_next_use() {
    let s = setup().await;
    let app = &s.app;
    app.evaluate_alerts().await;
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{}/revoke-tokens", s.portal),
        json!({}),
    )
    .await;
    contacts(&s, 1).await;
    // Found on use: the run's call is refused and the connection flagged.
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM connections WHERE connector = 'hubspot' AND status = 'broken'",
            1
        )
        .await,
        1,
        "{:?}",
        app.json_rows("SELECT step_key, status, error FROM run_steps")
            .await
    );
    // The next evaluation, within the minute.
    app.clock.advance(Duration::seconds(50));
    app.evaluate_alerts().await;
    let mail = app
        .wait_for_mail(
            &s.admin.email,
            "[Ferry] FIRING: 1 credential stopped working",
        )
        .await;
    assert!(
        mail.link_containing("/connections").is_some(),
        "{}",
        mail.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_background_refresher_finding_a_revoked_grant_raises_the_authentication_alert() {
    let s = setup().await;
    let app = &s.app;
    app.send_json(
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{}/revoke-tokens", s.portal),
        json!({}),
    )
    .await;
    // The access token nears its expiry: the refresher tries, is refused.
    app.clock.advance(Duration::minutes(26));
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM auth_events WHERE kind = 'refresh_failed'",
            1
        )
        .await,
        1
    );
    app.evaluate_alerts().await;
    app.wait_for_mail(&s.admin.email, "FIRING: 1 credential stopped working")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_volume_and_outcome_deadline_rules_fire_and_resolve() {
    let s = setup().await;
    let app = &s.app;
    // A check that never comes back (its deadline passes at the end).
    app.create_contact(
        s.portal,
        json!({"email": "slow@client.test", "firstname": "Sam", "lastname": "Pending"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'", 1)
            .await,
        1
    );
    let metrics = app.engine.metrics();
    let now = app.clock.now();
    // A week of ordinary traffic: 20 events an hour, runs of about 80 ms.
    for h in 5..(7 * 24) {
        metrics.count(&s.tenant, &s.workflow, now - Duration::hours(h), |r| {
            r.events += 20;
            r.started += 20;
            r.succeeded += 20;
            r.writes += 20;
            for _ in 0..20 {
                r.observe_latency(80);
            }
        });
    }
    // Baselines add each new hour as it comes and read all their hours
    // again daily: a day on, history written into past hours is in. The
    // last hour is slow: 10 runs of 4 s.
    app.clock.advance(Duration::hours(25));
    metrics.count(
        &s.tenant,
        &s.workflow,
        app.clock.now() - Duration::minutes(10),
        |r| {
            r.events += 10;
            r.started += 10;
            r.succeeded += 10;
            r.writes += 10;
            for _ in 0..10 {
                r.observe_latency(4_000);
            }
        },
    );
    app.evaluate_alerts().await;
    let slow = app
        .wait_for_mail(&s.admin.email, "[Ferry] FIRING: p95 latency")
        .await;
    assert!(slow.subject.contains("× baseline"), "{}", slow.subject);

    // Then silence: four hours without an event where ~80 are usual.
    app.clock
        .advance(Duration::hours(5) + Duration::minutes(30));
    app.evaluate_alerts().await;
    app.wait_for_mail(&s.admin.email, "RESOLVED: latency back to normal")
        .await;
    app.wait_for_mail(&s.admin.email, "[Ferry] FIRING: no events in 4h")
        .await;
    // One event: traffic again.
    metrics.count(&s.tenant, &s.workflow, app.clock.now(), |r| r.events += 1);
    app.clock.advance(Duration::minutes(1));
    app.evaluate_alerts().await;
    app.wait_for_mail(&s.admin.email, "RESOLVED: volume back to normal")
        .await;

    // (The check started first, below, never comes back.)
    app.clock
        .advance(Duration::hours(24) + Duration::minutes(1));
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM run_steps WHERE step_key = 'wait_result' AND status = 'timed_out'",
            1
        )
        .await,
        1
    );
    evaluate_until(app, "outcome_deadline").await;
    app.wait_for_mail(
        &s.admin.email,
        "[Ferry] FIRING: 1 run waiting past the outcome deadline",
    )
    .await;
    app.clock.advance(Duration::hours(25));
    app.evaluate_alerts().await;
    app.wait_for_mail(&s.admin.email, "RESOLVED: outcome deadline back to normal")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_smtp_down_an_alert_email_waits_and_is_delivered_when_it_returns() {
    // A port nothing listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = setup_with(TestOptions {
        smtp: false,
        settings: vec![("smtp_url", format!("smtp://127.0.0.1:{port}"))],
        ..TestOptions::default()
    })
    .await;
    let app = &s.app;
    let metrics = app.engine.metrics();
    metrics.count(&s.tenant, &s.workflow, app.clock.now(), |r| {
        r.dead += 10;
    });
    app.evaluate_alerts().await;
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM emails WHERE subject LIKE '%FIRING: error rate%' AND attempts >= 1 AND status = 'queued'",
            1
        )
        .await,
        1,
        "tried, refused, kept for a retry"
    );
    let back = SmtpSink::start_on(port).await.unwrap();
    app.clock.advance(Duration::seconds(15));
    for _ in 0..100 {
        if back
            .messages()
            .iter()
            .any(|m| m.subject.contains("FIRING: error rate"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got: Vec<_> = back
        .messages()
        .into_iter()
        .filter(|m| m.subject.contains("FIRING: error rate"))
        .collect();
    assert_eq!(got.len(), 1, "delivered once when SMTP came back");
    assert_eq!(got[0].to, vec![s.admin.email.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_evaluators_on_one_database_send_each_incident_once() {
    let s = setup().await;
    let app = &s.app;
    app.engine
        .metrics()
        .count(&s.tenant, &s.workflow, app.clock.now(), |r| {
            r.dead += 50;
        });
    app.engine.metrics().flush(&app.db).await.unwrap();
    // A second worker: its own pool on the same database, its own mailer.
    let db2 = ferry_store::Db::connect(&app.database_url, 4)
        .await
        .unwrap();
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(app.clock.clone());
    let other = ferry_engine::alerts::Evaluator::new(
        db2.clone(),
        clock.clone(),
        ferry_engine::Mailer::new(db2, clock, true),
        &app.address.parse().unwrap(),
    );
    // Both evaluate the same minute at once, several times over.
    for _ in 0..5 {
        let now = app.clock.now();
        let (a, b) = tokio::join!(app.alerts.evaluate(now), other.evaluate(now));
        a.unwrap();
        b.unwrap();
        // And both ask for the scheduled tick: one gets it.
        app.clock.advance(Duration::minutes(1));
        let (a, b) = tokio::join!(app.alerts.tick(), other.tick());
        let ticked = [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|r| r.is_some())
            .count();
        assert!(ticked <= 1, "one process per minute");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alert_incidents").await,
        1,
        "one incident"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM emails WHERE subject LIKE '[Ferry] FIRING: error rate%'")
            .await,
        1,
        "one email"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admin_edits_a_rule_sends_a_test_alert_and_acknowledges_and_another_tenant_sees_none_of_it()
 {
    let s = setup().await;
    let app = &s.app;
    let rule = app
        .json_rows(&format!(
            "SELECT id FROM alert_rules WHERE workflow_id = '{}' AND kind = 'error_rate'",
            s.workflow
        ))
        .await[0][0]
        .clone()
        .unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM alert_rules WHERE workflow_id = '{}' AND recipient_id = '{}'",
            s.workflow, s.admin.user_id
        ))
        .await,
        7,
        "seven rules by default, told to the owner"
    );
    let page = s.client.get(&format!("/alerts/rules/{rule}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Highest failure rate (%)"));
    // Wrong values: 422 naming each field, never echoing a person.
    let bad = s
        .client
        .submit(
            &format!("/alerts/rules/{rule}"),
            &format!("/alerts/rules/{rule}"),
            &[
                ("threshold", "250"),
                ("min_runs", "0"),
                ("window_minutes", "1"),
                ("recipient", "usr_nobody"),
                ("escalation", ""),
                ("escalate_after_minutes", "240"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    for msg in [
        "Enter a percentage from 0 to 100.",
        "Enter a whole number of runs from 1 to 1,000,000.",
        "Choose a person of your firm who is active.",
    ] {
        assert!(bad.body.contains(msg), "{msg}: {}", bad.body);
    }
    let ok = s
        .client
        .submit(
            &format!("/alerts/rules/{rule}"),
            &format!("/alerts/rules/{rule}"),
            &[
                ("threshold", "5"),
                ("min_runs", "3"),
                ("window_minutes", "60"),
                ("recipient", s.admin.user_id.as_str()),
                ("escalation", ""),
                ("escalate_after_minutes", "60"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(
        s.client
            .get("/alerts/rules")
            .await
            .body
            .contains("more than 5% of runs fail in 1h (from 3 runs)")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'alert_rule.changed'")
            .await,
        1
    );
    // The test alert.
    let tested = s
        .client
        .submit(
            &format!("/alerts/rules/{rule}"),
            &format!("/alerts/rules/{rule}/test"),
            &[],
        )
        .await;
    assert_eq!(tested.status, 303);
    app.wait_for_mail(&s.admin.email, "[Ferry] TEST: test alert")
        .await;

    // An incident, acknowledged: no escalation.
    app.engine
        .metrics()
        .count(&s.tenant, &s.workflow, app.clock.now(), |r| {
            r.failed += 4;
        });
    app.evaluate_alerts().await;
    let incident = app.json_rows("SELECT id FROM alert_incidents").await[0][0]
        .clone()
        .unwrap();
    let acked = s
        .client
        .submit(
            &format!("/alerts/{incident}"),
            &format!("/alerts/{incident}/acknowledge"),
            &[],
        )
        .await;
    assert_eq!(acked.status, 303);
    assert!(
        s.client
            .get(&format!("/alerts/{incident}"))
            .await
            .body
            .contains("badge-incident-acknowledged")
    );

    // "2,5" is not guessed at.
    let comma = s
        .client
        .submit(
            &format!("/alerts/rules/{rule}"),
            &format!("/alerts/rules/{rule}"),
            &[
                ("threshold", "2,5"),
                ("min_runs", "3"),
                ("window_minutes", "60"),
                ("recipient", s.admin.user_id.as_str()),
                ("escalation", ""),
                ("escalate_after_minutes", "60"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(comma.status, 422);
    assert!(comma.body.contains("Use a dot for decimals"));
    // Turned off while firing: the incident closes, saying so, and no
    // "resolved" email claims it was fixed.
    let off = s
        .client
        .submit(
            &format!("/alerts/rules/{rule}"),
            &format!("/alerts/rules/{rule}"),
            &[
                ("threshold", "5"),
                ("min_runs", "3"),
                ("window_minutes", "60"),
                ("recipient", s.admin.user_id.as_str()),
                ("escalation", ""),
                ("escalate_after_minutes", "60"),
            ],
        )
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM alert_incidents WHERE resolved_at IS NOT NULL AND summary LIKE '%closed when the rule was turned off%'")
            .await,
        1
    );
    app.evaluate_alerts().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(
        !sink(app)
            .messages()
            .iter()
            .any(|m| m.subject.contains("RESOLVED")),
        "no resolved email for a rule turned off"
    );

    // Another tenant: 404 for the rule, the incident, the workflow's charts
    // and lists; its own lists hold nothing of Acme's.
    let (_, other) = app.create_tenant("Globex").await;
    let b = app.login(&other).await;
    for path in [
        format!("/alerts/rules/{rule}"),
        format!("/alerts/{incident}"),
        format!("/alerts?workflow={}", s.workflow),
        format!("/alerts/rules?workflow={}", s.workflow),
        format!("/workflows/{}", s.workflow),
    ] {
        assert_eq!(b.get(&path).await.status, 404, "{path}");
    }
    let own = b.get("/alerts").await;
    assert!(!own.body.contains(&incident) && !own.body.contains("error rate"));
    let home = b.get("/home").await;
    assert!(!home.body.contains("KYC for new clients"));
    // Staff see it all, read-only.
    let staff = app
        .add_member(&s.tenant, "sam@acme.test", "Sam", ferry_core::Role::Staff)
        .await;
    let staff = app.login(&staff).await;
    let page = staff.get(&format!("/alerts/rules/{rule}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Send a test alert") && page.body.contains("disabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_served_to_a_scraper_with_the_token_and_to_nobody_else() {
    let token = "0123456789abcdef0123456789abcdef";
    let s = setup_with(TestOptions {
        settings: vec![("metrics_token", token.to_owned())],
        ..TestOptions::default()
    })
    .await;
    let app = &s.app;
    contacts(&s, 1).await;
    app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
        .await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", app.address);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(
        http.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let body = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "ferry_runs_ended_total{status=\"succeeded\"} 1",
        "ferry_queue_jobs{state=\"due\"}",
        "ferry_runs_open{status=\"waiting\"}",
        "ferry_connector_calls_total{connector=\"hubspot\",class=\"2xx\"}",
        "ferry_http_request_duration_seconds_bucket{",
        "route=\"/hooks/hubspot/sandbox\"",
        "ferry_alerts_firing 0",
    ] {
        assert!(body.contains(series), "{series} in:\n{body}");
    }
    // No tenant, workflow or record ids in any label.
    assert!(!body.contains(s.tenant.as_str()) && !body.contains(s.workflow.as_str()));
    assert!(!body.contains("ten_") && !body.contains("wf_") && !body.contains("alr_"));
}
