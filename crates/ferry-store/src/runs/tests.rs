//! The run lifecycle on its own, on SQLite in memory with a clock the test
//! moves: ingest (once per dedupe key), claim (tenant-scoped, once), save
//! (only by the holder), sweep (lapsed leases and waits past their
//! deadline), replay (only failed or dead runs).

use super::*;
use crate::connections::{self, NewConnection};
use crate::inbound::{NewEvent, Stored};
use crate::system::sweep;
use crate::workflows::{self as wf, NewWorkflow};
use chrono::{Duration, TimeZone};
use ferry_core::catalog::ConnectorKey;
use ferry_core::workflow::reference_template;
use ferry_core::{ConnectionId, Credentials, Environment, WorkflowId};

struct World {
    db: Db,
    tenant: TenantId,
    other: TenantId,
    connection: ConnectionId,
    workflow: WorkflowId,
    t0: DateTime<Utc>,
}

async fn world() -> World {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap();
    let crate::test_support::Seeded {
        db,
        tenant,
        other,
        owner,
        vault,
    } = crate::test_support::seeded(t0).await.unwrap();
    let connection = connections::create(
        &db,
        &vault,
        &tenant,
        NewConnection {
            connector: ConnectorKey::HubSpot,
            name: "HubSpot",
            environment: Environment::Sandbox,
            scopes: &[],
            external_account: Some("1"),
            base_url: None,
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &owner,
        },
        &Credentials::default(),
        t0,
    )
    .await
    .unwrap()
    .id;
    let definition = reference_template();
    let workflow = wf::create(
        &db,
        &tenant,
        NewWorkflow {
            name: "KYC",
            description: "",
            owner_id: &owner,
            environment: Environment::Sandbox,
            draft: &definition,
            bindings: &Default::default(),
        },
        t0,
    )
    .await
    .unwrap()
    .id;
    wf::publish(
        &db,
        &tenant,
        &workflow,
        &owner,
        wf::Publication::default(),
        t0,
    )
    .await
    .unwrap();
    World {
        db,
        tenant,
        other,
        connection,
        workflow,
        t0,
    }
}

impl World {
    /// Delivers the event `key` once; returns what storing it did.
    async fn deliver(&self, key: &str, now: DateTime<Utc>) -> Ingested {
        self.deliver_as(key, now, false).await
    }

    /// Delivers the event `key`, its run created held when `held` (the
    /// workflow is paused).
    async fn deliver_as(&self, key: &str, now: DateTime<Utc>, held: bool) -> Ingested {
        ingest(
            &self.db,
            &self.tenant,
            self.new_event(key),
            None,
            None,
            vec![NewRun {
                held,
                ..self.new_run(key, false)
            }],
            now,
        )
        .await
        .unwrap()
    }

    /// The new-contact event `key` from the world's connection.
    fn new_event<'a>(&'a self, key: &'a str) -> NewEvent<'a> {
        NewEvent {
            connection_id: &self.connection,
            source: "hubspot",
            event_type: "contact.creation",
            dedupe_key: key,
            payload: "{}",
        }
    }

    /// A run of the workflow for record `key`.
    fn new_run(&self, key: &str, once_per_record: bool) -> NewRun {
        NewRun {
            id: RunId::generate(),
            workflow_id: self.workflow.clone(),
            version: 1,
            record_id: Some(key.to_owned()),
            context: "{}".into(),
            once_per_record,
            held: false,
        }
    }

    /// The event `key` of `tenant`, with `runs`, as a write of a batch.
    fn event(&self, tenant: &TenantId, key: &str, runs: Vec<NewRun>) -> Write {
        Write::Event(Box::new(EventToStore::new(
            tenant,
            &self.new_event(key),
            None,
            false,
            runs,
        )))
    }

    async fn status(&self, id: &RunId) -> RunStatus {
        get(&self.db, &self.tenant, id).await.unwrap().status
    }
}

fn at(index: i32) -> Position {
    Position {
        step_index: index,
        step_attempt: 0,
    }
}

#[tokio::test]
async fn an_event_is_stored_once_and_its_run_claimed_once_by_its_own_tenant() {
    let w = world().await;
    let first = w.deliver("evt-1", w.t0).await;
    assert!(matches!(first.stored, Stored::New(_)));
    assert_eq!(first.queued.len(), 1);
    let again = w.deliver("evt-1", w.t0).await;
    assert!(matches!(again.stored, Stored::Duplicate(_)));
    assert!(again.queued.is_empty(), "a repeat starts nothing");

    let id = &first.queued[0];
    let lease = w.t0 + Duration::minutes(5);
    assert!(
        claim(&w.db, &w.other, id, w.t0, lease)
            .await
            .unwrap()
            .is_none(),
        "another tenant cannot claim it"
    );
    let claimed = claim(&w.db, &w.tenant, id, w.t0, lease).await.unwrap();
    assert_eq!(claimed.map(|c| c.tenant), Some(w.tenant.clone()));
    assert!(
        claim(&w.db, &w.tenant, id, w.t0, lease)
            .await
            .unwrap()
            .is_none(),
        "a second worker gets nothing"
    );
    assert_eq!(w.status(id).await, RunStatus::Running);
}

#[tokio::test]
async fn only_the_holder_saves_and_a_retry_waits_for_its_time() {
    let w = world().await;
    let id = w.deliver("evt-2", w.t0).await.queued.remove(0);
    let lease = w.t0 + Duration::minutes(5);
    claim(&w.db, &w.tenant, &id, w.t0, lease)
        .await
        .unwrap()
        .unwrap();
    let retry_at = w.t0 + Duration::seconds(30);
    assert!(
        save(
            &w.db,
            &w.tenant,
            &id,
            None,
            at(1),
            "{}",
            Outcome::RetryAt(retry_at),
            Some("busy"),
            w.t0
        )
        .await
        .unwrap()
    );
    // Queued again, but not due yet.
    assert_eq!(w.status(&id).await, RunStatus::Queued);
    assert!(
        claim(&w.db, &w.tenant, &id, w.t0, lease)
            .await
            .unwrap()
            .is_none()
    );
    let later = retry_at + Duration::seconds(1);
    claim(&w.db, &w.tenant, &id, later, later + Duration::minutes(5))
        .await
        .unwrap()
        .expect("due now");
    // A worker that no longer holds the run changes nothing.
    save(
        &w.db,
        &w.tenant,
        &id,
        None,
        at(2),
        "{}",
        Outcome::Finished(RunStatus::Succeeded),
        None,
        later,
    )
    .await
    .unwrap();
    assert!(
        !save(
            &w.db,
            &w.tenant,
            &id,
            None,
            at(3),
            "{}",
            Outcome::Finished(RunStatus::Failed),
            None,
            later
        )
        .await
        .unwrap(),
        "the run has ended"
    );
    let run = get(&w.db, &w.tenant, &id).await.unwrap();
    assert_eq!((run.status, run.step_index), (RunStatus::Succeeded, 2));
}

#[tokio::test]
async fn the_sweeper_takes_back_lapsed_leases_and_waits_past_their_deadline() {
    let w = world().await;
    let orphan = w.deliver("evt-3", w.t0).await.queued.remove(0);
    let waiter = w.deliver("evt-4", w.t0).await.queued.remove(0);
    let lease = w.t0 + Duration::minutes(5);
    claim(&w.db, &w.tenant, &orphan, w.t0, lease)
        .await
        .unwrap()
        .unwrap();
    claim(&w.db, &w.tenant, &waiter, w.t0, lease)
        .await
        .unwrap()
        .unwrap();
    let deadline = w.t0 + Duration::hours(24);
    save(
        &w.db,
        &w.tenant,
        &waiter,
        None,
        at(3),
        "{}",
        Outcome::Wait {
            key: "verification:check.completed:chk_1".into(),
            deadline,
        },
        None,
        w.t0,
    )
    .await
    .unwrap();
    // Nothing to take back while the lease and the wait hold.
    let early = sweep(&w.db, w.t0 + Duration::minutes(1), 100)
        .await
        .unwrap();
    assert!(early.orphaned.is_empty() && early.timed_out.is_empty());
    // The worker died: its lease lapses.
    let s = sweep(&w.db, lease + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(s.orphaned, vec![(w.tenant.clone(), orphan.clone())]);
    assert_eq!(w.status(&orphan).await, RunStatus::Queued);
    assert_eq!(w.status(&waiter).await, RunStatus::Waiting);
    // The outcome never came: the wait is over at its deadline.
    let s = sweep(&w.db, deadline + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(s.timed_out, vec![(w.tenant.clone(), waiter.clone())]);
    assert_eq!(w.status(&waiter).await, RunStatus::Queued);
}

#[tokio::test]
async fn only_failed_or_dead_runs_are_replayed_and_only_by_their_tenant() {
    let w = world().await;
    let id = w.deliver("evt-5", w.t0).await.queued.remove(0);
    assert!(
        !replay(&w.db, &w.tenant, &id, w.t0).await.unwrap(),
        "queued: nothing to replay"
    );
    let lease = w.t0 + Duration::minutes(5);
    claim(&w.db, &w.tenant, &id, w.t0, lease)
        .await
        .unwrap()
        .unwrap();
    save(
        &w.db,
        &w.tenant,
        &id,
        None,
        at(4),
        "{}",
        Outcome::Finished(RunStatus::Dead),
        Some("gave up"),
        w.t0,
    )
    .await
    .unwrap();
    assert!(
        !replay(&w.db, &w.other, &id, w.t0).await.unwrap(),
        "not another tenant's"
    );
    assert!(replay(&w.db, &w.tenant, &id, w.t0).await.unwrap());
    let run = get(&w.db, &w.tenant, &id).await.unwrap();
    assert_eq!(
        (run.status, run.step_index),
        (RunStatus::Queued, 4),
        "from the step that failed"
    );
    assert!(!replay(&w.db, &w.tenant, &id, w.t0).await.unwrap(), "once");
}

#[tokio::test]
async fn a_draft_saved_from_a_stale_read_is_refused_and_held_runs_settle_once() {
    let w = world().await;
    let read = wf::get(&w.db, &w.tenant, &w.workflow).await.unwrap();
    let later = w.t0 + chrono::Duration::seconds(5);
    // Another admin saves first…
    wf::save_draft(
        &w.db,
        &w.tenant,
        &w.workflow,
        &read.draft,
        &read.bindings,
        read.updated_at,
        later,
    )
    .await
    .unwrap();
    // …so a save from the same (now stale) read changes nothing.
    let stale = wf::save_draft(
        &w.db,
        &w.tenant,
        &w.workflow,
        &read.draft,
        &read.bindings,
        read.updated_at,
        later + chrono::Duration::seconds(1),
    )
    .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    // Another tenant's workflow is not found, not "changed".
    let theirs = wf::save_draft(
        &w.db,
        &w.other,
        &w.workflow,
        &read.draft,
        &read.bindings,
        later,
        later,
    )
    .await;
    assert!(matches!(theirs, Err(StoreError::NotFound)), "{theirs:?}");

    // Runs held while paused settle once: a second settle finds none.
    wf::set_paused(&w.db, &w.tenant, &w.workflow, Some(later), later)
        .await
        .unwrap();
    let ingested = w.deliver_as("held-1", later, true).await;
    assert_eq!(ingested.held.len(), 1);
    let first = settle_held(&w.db, &w.tenant, &w.workflow, false, Some(1), later)
        .await
        .unwrap();
    let second = settle_held(&w.db, &w.tenant, &w.workflow, true, None, later)
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (1, 0));
}

#[tokio::test]
async fn a_batch_with_repeats_and_two_tenants_stores_each_event_once_with_one_run() {
    let w = world().await;
    let event = |tenant: &TenantId, key: &str, with_run: bool| {
        let runs = if with_run {
            vec![w.new_run(key, false)]
        } else {
            vec![]
        };
        w.event(tenant, key, runs)
    };
    let ingested = |r: &Result<Written, StoreError>| match r {
        Ok(Written::Event(i)) => i.clone(),
        other => panic!("not an event's result: {other:?}"),
    };
    // One batch: a, b, a again (a repeat inside the batch), the other
    // tenant's own a (a different event), and a save of nothing held.
    let id = w.deliver("held-before", w.t0).await.queued.remove(0);
    let done = write_batch(
        &w.db,
        &[
            event(&w.tenant, "a", true),
            event(&w.tenant, "b", true),
            event(&w.tenant, "a", true),
            event(&w.other, "a", false),
            Write::Save(Box::new(RunSave {
                tenant: w.tenant.clone(),
                id: id.clone(),
                attempt: None,
                at: at(0),
                context: "{}".into(),
                outcome: Outcome::Finished(RunStatus::Succeeded),
                error: None,
            })),
        ],
        w.t0,
    )
    .await;
    assert_eq!(done.len(), 5);
    let (a, b, again, other) = (
        ingested(&done[0]),
        ingested(&done[1]),
        ingested(&done[2]),
        ingested(&done[3]),
    );
    let Stored::New(first) = &a.stored else {
        panic!("a is new")
    };
    assert!(matches!(b.stored, Stored::New(_)));
    assert_eq!(
        again.stored,
        Stored::Duplicate(first.clone()),
        "the repeat names the first copy"
    );
    assert!(again.queued.is_empty(), "and starts nothing");
    assert!(
        matches!(other.stored, Stored::New(_)),
        "dedupe is per tenant"
    );
    assert_eq!((a.queued.len(), b.queued.len()), (1, 1));
    assert!(
        matches!(done[4], Ok(Written::Saved(false))),
        "a run nobody holds is not changed by a save in the batch"
    );
    // Across batches: a repeat of b stores nothing.
    let later = write_batch(&w.db, &[event(&w.tenant, "b", true)], w.t0).await;
    assert!(matches!(ingested(&later[0]).stored, Stored::Duplicate(_)));
    let runs = run::Entity::find()
        .filter(run::Column::TenantId.eq(w.tenant.to_string()))
        .count(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(runs, 3, "held-before, a and b: one run each");
}

#[tokio::test]
async fn a_batch_whose_commit_fails_fails_every_write_and_keeps_none() {
    let w = world().await;
    // A constraint checked at commit, broken by one event of the batch.
    for sql in [
        "CREATE TABLE poison (tenant_id TEXT REFERENCES tenants(id) DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TRIGGER poisoned AFTER INSERT ON inbound_events WHEN NEW.dedupe_key = 'poison' \
         BEGIN INSERT INTO poison VALUES ('no such tenant'); END",
    ] {
        w.db.conn.execute_unprepared(sql).await.unwrap();
    }
    let event = |key: &str| w.event(&w.tenant, key, vec![]);
    let done = write_batch(&w.db, &[event("x"), event("poison"), event("y")], w.t0).await;
    assert!(done.iter().all(Result::is_err), "{done:?}");
    let stored = inbound_event::Entity::find()
        .count(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing of the batch was kept");
    // Without the poison, the same writes go through.
    let done = write_batch(&w.db, &[event("x"), event("y")], w.t0).await;
    assert!(done.iter().all(Result::is_ok), "{done:?}");
}

#[tokio::test]
async fn one_failing_write_fails_alone_and_the_rest_of_its_batch_is_written_once() {
    let w = world().await;
    // A write refused by the database as it is made (not at commit).
    w.db.conn
        .execute_unprepared(
            "CREATE TRIGGER refused BEFORE INSERT ON inbound_events WHEN NEW.dedupe_key = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .await
        .unwrap();
    let event = |key: &str| w.event(&w.tenant, key, vec![w.new_run(key, true)]);
    let done = write_batch(&w.db, &[event("x"), event("bad"), event("y")], w.t0).await;
    assert!(done[0].is_ok() && done[2].is_ok(), "{done:?}");
    assert!(done[1].is_err(), "{done:?}");
    let events = inbound_event::Entity::find()
        .count(&w.db.conn)
        .await
        .unwrap();
    let runs = run::Entity::find().count(&w.db.conn).await.unwrap();
    assert_eq!(
        (events, runs),
        (2, 2),
        "x and y once each, with one run each"
    );
    // A later copy of x for the same record: stored as a repeat, no run.
    let again = write_batch(&w.db, &[event("x")], w.t0).await;
    assert!(matches!(
        again[0],
        Ok(Written::Event(Ingested {
            stored: Stored::Duplicate(_),
            ..
        }))
    ));
    assert_eq!(run::Entity::find().count(&w.db.conn).await.unwrap(), 2);
}
