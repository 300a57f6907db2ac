//! Group commit seen from outside: many deliveries at once, with repeats
//! and for two tenants, each stored once; a batch whose commit fails
//! answers none of its requests with a 2xx.

use ferry_connectors::webhook::standard_webhook_signature;
use ferry_core::Clock;
use ferry_tests::{DbKind, TestApp, db_kind, spawn_app};

/// A Standard Webhooks connection of `admin`'s tenant: its path and
/// signing secret.
async fn webhook(app: &TestApp, admin: &ferry_tests::Account) -> (String, String) {
    let client = app.login(admin).await;
    app.connect_webhook(&client, "Partner feed").await
}

/// Delivers `msg_id` signed now; its status and answer.
async fn deliver(
    http: &reqwest::Client,
    app: &TestApp,
    hook: &(String, String),
    msg_id: &str,
) -> (u16, serde_json::Value) {
    deliver_to(http, &app.address, app, hook, msg_id)
        .await
        .expect("an answer")
}

/// Delivers `msg_id` to the Ferry at `base`; none when the connection
/// broke before an answer (the process stopped).
async fn deliver_to(
    http: &reqwest::Client,
    base: &str,
    app: &TestApp,
    (path, secret): &(String, String),
    msg_id: &str,
) -> Option<(u16, serde_json::Value)> {
    let body = format!(r#"{{"type":"client.onboarded","n":"{msg_id}"}}"#);
    let ts = app.clock.now().timestamp();
    let sig = standard_webhook_signature(secret, msg_id, ts, body.as_bytes()).unwrap();
    let res = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .ok()?;
    let status = res.status().as_u16();
    Some((status, res.json().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_at_once_with_repeats_for_two_tenants_are_each_stored_once() {
    let app = spawn_app().await;
    let (_, a) = app.create_tenant("Acme").await;
    let (_, b) = app.create_tenant("Bolt").await;
    let hooks = [webhook(&app, &a).await, webhook(&app, &b).await];
    let http = reqwest::Client::new();
    // 60 events per tenant, each delivered twice, all in flight together
    // (the same message ids for both tenants: dedupe is per tenant).
    let mut sent = Vec::new();
    for n in 0..60 {
        for hook in &hooks {
            for _ in 0..2 {
                let (http, app, hook) = (http.clone(), &app, hook.clone());
                sent.push(async move {
                    let id = format!("msg_{n}");
                    (
                        hook.0.clone(),
                        id.clone(),
                        deliver(&http, app, &hook, &id).await,
                    )
                });
            }
        }
    }
    let answers = futures_util::future::join_all(sent).await;
    let mut firsts = std::collections::HashMap::new();
    for (path, id, (status, answer)) in &answers {
        assert_eq!(*status, 202, "{answer}");
        let event = answer["event_id"].as_str().unwrap().to_owned();
        let seen = firsts
            .entry((path.clone(), id.clone()))
            .or_insert_with(Vec::new);
        seen.push((event, answer["duplicate"].as_bool().unwrap()));
    }
    assert_eq!(firsts.len(), 120);
    for (key, copies) in &firsts {
        assert_eq!(copies.len(), 2);
        assert_eq!(
            copies[0].0, copies[1].0,
            "{key:?}: both copies name one event"
        );
        assert_eq!(
            copies.iter().filter(|(_, dup)| *dup).count(),
            1,
            "{key:?}: one copy new, the other a duplicate"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_events WHERE event_type = 'client.onboarded'")
            .await,
        120
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_whose_commit_fails_answers_none_of_its_requests_with_a_2xx() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let hook = webhook(&app, &admin).await;
    // A constraint checked at commit, which one delivery breaks: its whole
    // batch is lost, whoever else was in it.
    app.execute(
        "CREATE TABLE poison (tenant_id TEXT REFERENCES tenants(id) DEFERRABLE INITIALLY DEFERRED)",
    )
    .await;
    match db_kind() {
        DbKind::Sqlite => {
            app.execute(
                "CREATE TRIGGER poisoned AFTER INSERT ON inbound_events \
                 WHEN NEW.dedupe_key LIKE '%poison%' \
                 BEGIN INSERT INTO poison VALUES ('no such tenant'); END",
            )
            .await;
        }
        DbKind::Postgres => {
            app.execute(
                "CREATE FUNCTION poisoned() RETURNS trigger AS $$ BEGIN \
                 IF NEW.dedupe_key LIKE '%poison%' THEN INSERT INTO poison VALUES ('no such tenant'); END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
            )
            .await;
            app.execute(
                "CREATE TRIGGER poisoned AFTER INSERT ON inbound_events \
                 FOR EACH ROW EXECUTE FUNCTION poisoned()",
            )
            .await;
        }
    }
    let http = reqwest::Client::new();
    let ids: Vec<String> = (0..80)
        .map(|n| {
            if n % 20 == 7 {
                format!("msg_poison_{n}")
            } else {
                format!("msg_{n}")
            }
        })
        .collect();
    let answers =
        futures_util::future::join_all(ids.iter().map(|id| deliver(&http, &app, &hook, id))).await;
    let mut failed = 0;
    for (id, (status, answer)) in ids.iter().zip(&answers) {
        let stored = app
            .count(&format!(
                "SELECT COUNT(*) FROM inbound_events WHERE dedupe_key LIKE '%{id}'"
            ))
            .await;
        if (200..300).contains(status) {
            assert_eq!(
                stored, 1,
                "{id} was answered {status} and must be stored: {answer}"
            );
            assert!(!id.contains("poison"));
        } else {
            assert!(*status >= 500, "{id}: {status} {answer}");
            assert_eq!(stored, 0, "{id} was refused and is not stored");
            failed += 1;
        }
    }
    assert!(failed >= 4, "each poisoned delivery failed: {failed}");
    // The senders retry what failed; without the poison it is stored.
    for (id, (status, _)) in ids.iter().zip(&answers) {
        if *status >= 500 && !id.contains("poison") {
            assert_eq!(
                deliver(&http, &app, &hook, id).await.0,
                202,
                "{id} on retry"
            );
        }
    }
}

/// Starts `ferry serve` as a process of its own on this app's database;
/// its address once it answers.
async fn serve(app: &TestApp) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let base = format!("http://{bind}");
    let mut child = app.start_process(
        "serve",
        "serve",
        &[
            ("FERRY_BIND", bind.as_str()),
            ("FERRY_PUBLIC_URL", base.as_str()),
            ("FERRY_LOG", "info"),
        ],
    );
    for _ in 0..300 {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (child, base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!(
        "ferry serve did not start: {}",
        std::fs::read_to_string(app.data_dir.path().join("serve.log")).unwrap_or_default()
    );
}

/// Sends `n` deliveries, 32 at a time, to `base`, and `signal`s the
/// process once a quarter of them were answered; every answer (none for a
/// delivery whose connection broke).
/// What became of one delivery: its id, its status (none when the
/// connection broke first), and whether its answer came after the signal.
type Sent = (String, Option<u16>, bool);

async fn deliveries_with_a_signal(
    app: &TestApp,
    base: &str,
    hook: &(String, String),
    n: usize,
    pid: u32,
    signal: &str,
) -> Vec<Sent> {
    use futures_util::StreamExt;
    let http = reqwest::Client::new();
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let signalled = std::sync::atomic::AtomicBool::new(false);
    futures_util::stream::iter(0..n)
        .map(|i| {
            let (http, answered, signalled) = (&http, &answered, &signalled);
            async move {
                let id = format!("msg_{i}");
                let status = deliver_to(http, base, app, hook, &id).await.map(|(s, _)| s);
                let after = signalled.load(std::sync::atomic::Ordering::SeqCst);
                if answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == n / 4
                    && !signalled.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    std::process::Command::new("kill")
                        .args([signal, &pid.to_string()])
                        .status()
                        .unwrap();
                }
                (id, status, after)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

/// Each delivery answered 2xx is stored, once; returns how many were.
async fn acknowledged_are_stored(app: &TestApp, answers: &[Sent]) -> usize {
    let mut acknowledged = 0;
    for (id, status, _) in answers {
        if status.is_some_and(|s| (200..300).contains(&s)) {
            acknowledged += 1;
            assert_eq!(
                app.count(&format!(
                    "SELECT COUNT(*) FROM inbound_events WHERE dedupe_key LIKE '%{id}'"
                ))
                .await,
                1,
                "{id} was acknowledged"
            );
        }
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_shutdown_stores_every_delivery_it_acknowledged() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let hook = webhook(&app, &admin).await;
    let (mut child, base) = serve(&app).await;
    let answers = deliveries_with_a_signal(&app, &base, &hook, 400, child.id(), "-TERM").await;
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped cleanly: {status}");
    let acknowledged = acknowledged_are_stored(&app, &answers).await;
    assert!(
        acknowledged > 100,
        "{acknowledged} acknowledged before the stop"
    );
    // Deliveries in flight when the stop came were answered after it, and
    // with a 2xx: the shutdown waited for their writes; none got an error.
    let after: Vec<&Sent> = answers
        .iter()
        .filter(|(_, status, after)| *after && *status == Some(202))
        .collect();
    assert!(
        !after.is_empty(),
        "some deliveries were answered after the stop"
    );
    for (id, status, _) in &answers {
        assert!(
            status.is_none_or(|s| s < 500),
            "{id}: {status:?} (a write failed at shutdown)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_delivery() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let hook = webhook(&app, &admin).await;
    let (mut child, base) = serve(&app).await;
    let answers = deliveries_with_a_signal(&app, &base, &hook, 400, child.id(), "-KILL").await;
    child.wait().unwrap();
    let acknowledged = acknowledged_are_stored(&app, &answers).await;
    assert!(
        acknowledged > 100,
        "{acknowledged} acknowledged before the kill"
    );
    // Whatever was not acknowledged, the sender delivers again: each is
    // then stored once (also one the killed process had saved but not
    // answered).
    let http = reqwest::Client::new();
    for (id, status, _) in &answers {
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            assert_eq!(deliver(&http, &app, &hook, id).await.0, 202, "{id} again");
        }
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_events WHERE event_type = 'client.onboarded'")
            .await,
        400
    );
}
