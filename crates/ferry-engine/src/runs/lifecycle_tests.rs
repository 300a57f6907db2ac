//! The engine's run lifecycle on its own: SQLite in memory, the embedded
//! queue in a temporary file, a clock the test moves, and a workflow with
//! no outbound calls (validate → map → wait), so every step's outcome comes
//! from the engine itself.

use super::*;
use crate::connections::{HubSpotApp, ServiceParts};
use ferry_connectors::oauth::OAuthApp;
use ferry_connectors::{HttpClient, NetworkPolicy, RateLimiter};
use ferry_core::catalog::ConnectorKey;
use ferry_core::mapping::{Expr, FieldPath, Transform};
use ferry_core::validate::{Check, Rule};
use ferry_core::workflow::Trigger;
use ferry_core::{Credentials, Environment, ManualClock};
use ferry_store::connections::NewConnection;
use ferry_store::inbound::NewEvent;
use ferry_store::workflows::NewWorkflow;

struct World {
    engine: Engine,
    db: Db,
    clock: ManualClock,
    tenant: TenantId,
    other: TenantId,
    connection: ConnectionId,
    _dir: tempfile::TempDir,
}

fn path(p: &str) -> FieldPath {
    FieldPath::parse(p).unwrap()
}

/// Validate the email → map it lower-cased → wait up to an hour for the
/// check the event names.
fn definition() -> Definition {
    Definition {
        trigger: Trigger {
            connector: ConnectorKey::Webhook,
            event: "webhook.received".into(),
        },
        steps: vec![
            Step {
                key: "check_email".into(),
                label: None,
                kind: StepKind::Validate {
                    rules: vec![Rule {
                        path: path("trigger.body.email"),
                        check: Check::Email,
                    }],
                },
            },
            Step {
                key: "tidy".into(),
                label: None,
                kind: StepKind::Map {
                    output: [(
                        "email".to_owned(),
                        Expr::Path {
                            path: path("trigger.body.email"),
                        }
                        .then(Transform::Lower),
                    )]
                    .into(),
                },
            },
            Step {
                key: "outcome".into(),
                label: None,
                kind: StepKind::Wait {
                    connector: ConnectorKey::Verification,
                    event: "check.completed".into(),
                    correlation: Expr::Path {
                        path: path("trigger.body.check"),
                    },
                    event_field: "check.id".into(),
                    timeout_secs: 3600,
                },
            },
        ],
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let now = clock.now();
    let ferry_store::test_support::Seeded {
        db,
        tenant,
        other,
        owner,
        vault,
    } = ferry_store::test_support::seeded(now).await.unwrap();
    let connection = ferry_store::connections::create(
        &db,
        &vault,
        &tenant,
        NewConnection {
            connector: ConnectorKey::Webhook,
            name: "Inbound",
            environment: Environment::Sandbox,
            scopes: &[],
            external_account: None,
            base_url: None,
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &owner,
        },
        &Credentials::default(),
        now,
    )
    .await
    .unwrap()
    .id;
    let d = definition();
    assert!(d.check().is_empty(), "{:?}", d.check());
    let bindings: workflows::Bindings = [("webhook".to_owned(), connection.clone())].into();
    let wf = workflows::create(
        &db,
        &tenant,
        NewWorkflow {
            name: "Intake",
            description: "",
            owner_id: &owner,
            environment: Environment::Sandbox,
            draft: &d,
            bindings: &bindings,
        },
        now,
    )
    .await
    .unwrap();
    workflows::publish(
        &db,
        &tenant,
        &wf.id,
        &owner,
        workflows::Publication::default(),
        now,
    )
    .await
    .unwrap();
    let http =
        HttpClient::new(NetworkPolicy::default(), std::time::Duration::from_secs(5)).unwrap();
    let local = url::Url::parse("http://127.0.0.1:9/").unwrap();
    let clock_arc: Arc<dyn Clock> = Arc::new(clock.clone());
    let connections = ConnectionService::new(ServiceParts {
        db: db.clone(),
        vault,
        clock: clock_arc.clone(),
        limiter: RateLimiter::memory(),
        production_http: http.clone(),
        sandbox_http: http,
        hubspot_sandbox: HubSpotApp {
            oauth: OAuthApp {
                client_id: "test".into(),
                client_secret: "test".into(),
                authorize_url: local.clone(),
                token_url: local.clone(),
                redirect_url: local.clone(),
            },
            api_base: local,
        },
        hubspot_production: None,
        rate_limits: Default::default(),
    });
    let queue = Queue::embedded(&dir.path().join("queue.db"), "test")
        .await
        .unwrap();
    let engine = Engine::new(db.clone(), connections, clock_arc, queue);
    World {
        engine,
        db,
        clock,
        tenant,
        other,
        connection,
        _dir: dir,
    }
}

impl World {
    /// Delivers a webhook whose body is `body` (runs see it as
    /// `trigger.body`); returns the run it started.
    async fn deliver(&self, key: &str, body: serde_json::Value) -> RunId {
        let payload = body.to_string();
        let mut ingested = self
            .engine
            .ingest(
                &self.tenant,
                Source {
                    connector: ConnectorKey::Webhook,
                    connection: &self.connection,
                },
                NewEvent {
                    connection_id: &self.connection,
                    source: "webhook",
                    event_type: "webhook.received",
                    dedupe_key: key,
                    payload: &payload,
                },
                None,
                None,
                Some(key),
            )
            .await
            .unwrap();
        assert_eq!(ingested.queued.len(), 1, "one run per event");
        ingested.queued.remove(0)
    }

    async fn run(&self, id: &RunId) -> runs::Run {
        runs::get(&self.db, &self.tenant, id).await.unwrap()
    }

    async fn steps(&self, id: &RunId) -> Vec<StepRecord> {
        runs::steps(&self.db, &self.tenant, id).await.unwrap()
    }
}

#[tokio::test]
async fn a_run_goes_step_by_step_and_parks_on_its_wait_then_times_out_after_the_sweeper() {
    let w = world().await;
    let id = w
        .deliver(
            "e1",
            json!({ "email": "Ada@Example.COM", "check": "chk_1" }),
        )
        .await;
    // Another tenant's worker cannot execute it.
    w.engine.execute(&w.other, &id).await.unwrap();
    assert_eq!(w.run(&id).await.status, RunStatus::Queued);

    w.engine.execute(&w.tenant, &id).await.unwrap();
    let run = w.run(&id).await;
    assert_eq!(
        run.status,
        RunStatus::Waiting,
        "{:?} {:?}",
        run.error,
        w.steps(&id).await
    );
    assert_eq!(run.step_index, 2, "parked on the wait");
    let steps = w.steps(&id).await;
    assert_eq!(
        steps
            .iter()
            .map(|s| s.step_key.as_str())
            .collect::<Vec<_>>(),
        ["check_email", "tidy", "outcome"],
        "the park on the wait is recorded too"
    );

    // Before the deadline the sweeper leaves it; after, it goes on.
    w.clock.advance(chrono::Duration::minutes(30));
    w.engine.sweep().await.unwrap();
    assert_eq!(w.run(&id).await.status, RunStatus::Waiting);
    w.clock.advance(chrono::Duration::minutes(31));
    w.engine.sweep().await.unwrap();
    assert_eq!(w.run(&id).await.status, RunStatus::Queued);
    w.engine.execute(&w.tenant, &id).await.unwrap();
    assert_eq!(w.run(&id).await.status, RunStatus::Succeeded);
    let last = w.steps(&id).await.pop().unwrap();
    assert_eq!(
        (last.step_key.as_str(), last.status.as_str()),
        ("outcome", "timed_out")
    );
}

#[tokio::test]
async fn a_failed_validation_fails_the_run_naming_the_field_and_a_replay_starts_there() {
    let w = world().await;
    let id = w
        .deliver("e2", json!({ "email": "not-an-address", "check": "chk_2" }))
        .await;
    w.engine.execute(&w.tenant, &id).await.unwrap();
    let run = w.run(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap_or_default();
    assert!(error.contains("trigger.body.email"), "{error}");
    assert!(
        !error.contains("not-an-address"),
        "never the value: {error}"
    );

    assert!(
        !runs::replay(&w.db, &w.other, &id, w.clock.now())
            .await
            .unwrap(),
        "not another tenant's"
    );
    assert!(
        runs::replay(&w.db, &w.tenant, &id, w.clock.now())
            .await
            .unwrap()
    );
    let run = w.run(&id).await;
    assert_eq!(
        (run.status, run.step_index, run.replays),
        (RunStatus::Queued, 0, 1)
    );
    w.engine.execute(&w.tenant, &id).await.unwrap();
    assert_eq!(
        w.run(&id).await.status,
        RunStatus::Failed,
        "the same input fails again"
    );
    assert_eq!(w.steps(&id).await.len(), 2, "each attempt is recorded");
}

#[tokio::test]
async fn the_dry_run_takes_the_same_decisions_and_writes_nothing() {
    let w = world().await;
    let d = definition();
    let steps = w
        .engine
        .dry_run(
            &w.tenant,
            &d,
            &Default::default(),
            json!({ "email": "not-an-address" }),
        )
        .await;
    assert_eq!(steps.len(), 1, "stops where a real run fails");
    assert_eq!(steps[0].status, "failed");
    assert!(steps[0].note.contains("trigger.body.email"));
    let ok = w
        .engine
        .dry_run(
            &w.tenant,
            &d,
            &Default::default(),
            json!({ "email": "a@b.example", "check": "c" }),
        )
        .await;
    assert_eq!(
        ok.iter().map(|s| s.status).collect::<Vec<_>>(),
        ["ok", "ok", "waiting"]
    );
    assert_eq!(
        runs::count_by_status(&w.db, &w.tenant).await.unwrap().len(),
        0,
        "no run was stored"
    );
}
