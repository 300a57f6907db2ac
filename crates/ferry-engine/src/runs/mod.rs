//! The run engine: turns accepted events into runs, executes their steps,
//! retries, parks and resumes waits, and sweeps up what was left behind.
//!
//! Every step attempt is recorded (redacted input and output, each HTTP
//! call). Calls with side effects carry the idempotency key
//! `{run id}:{step key}`, so a run resumed after its worker died repeats no
//! effect at the remote end.

mod dry_run;
mod execute;
mod ingest;

pub use dry_run::*;
use execute::*;

use crate::connections::{ConnectionService, ServiceError};
use crate::metrics::Recorder;
use crate::queue::{ExecuteRunV1, Handler, Queue};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use ferry_connectors::ConnectorError;
use ferry_core::catalog::{ConnectorKey, FieldSchema};
use ferry_core::redact::redact;
use ferry_core::workflow::{Decision, Definition, Step, StepKind, evaluate, kind_name};
use ferry_core::{Clock, ConnectionId, RunId, TenantId, WorkflowId};
use ferry_store::inbound::NewEvent;
use ferry_store::runs::{self, Ingested, NewRun, Outcome, RunStatus, StepRecord};
use ferry_store::workflows::Version;
use ferry_store::{Db, StoreError, workflows};
use serde_json::{Value, json};
use std::sync::Arc;

/// How long Ferry's own writes are recognised as echoes.
const ECHO_SECS: i64 = 3600;

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    connections: ConnectionService,
    clock: Arc<dyn Clock>,
    queue: Queue,
    lease: ChronoDuration,
    versions: VersionCache,
    local: Option<Arc<Local>>,
    metrics: Recorder,
    classes: ClassCache,
    writer: crate::writer::Writer,
}

/// Each tenant's reclassified field names (redacted from step records on
/// top of the catalog's classes), re-read every few seconds.
/// Field names a tenant made personal, with when they were read.
type Hidden = (std::time::Instant, Arc<std::collections::BTreeSet<String>>);

#[derive(Clone, Default)]
struct ClassCache(Arc<std::sync::Mutex<std::collections::HashMap<TenantId, Hidden>>>);

impl ClassCache {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(5);

    /// The field names the tenant made personal (none on a read error:
    /// the catalog's classes still apply).
    async fn hidden(&self, db: &Db, tenant: &TenantId) -> Arc<std::collections::BTreeSet<String>> {
        if let Some((at, names)) = self.0.lock().ok().and_then(|m| m.get(tenant).cloned())
            && at.elapsed() < Self::FRESH
        {
            return names;
        }
        let names: std::collections::BTreeSet<String> = match ferry_store::tenants::field_classes(
            db, tenant,
        )
        .await
        {
            Ok(classes) => classes
                .into_iter()
                .filter(|(_, c)| c.is_pii())
                .filter_map(|(k, _)| k.split_once('.').map(|(_, f)| f.to_owned()))
                .collect(),
            Err(e) => {
                tracing::warn!(tenant_id = %tenant, error = %e, "could not read the field classes");
                Default::default()
            }
        };
        let names = Arc::new(names);
        if let Ok(mut m) = self.0.lock() {
            m.insert(tenant.clone(), (std::time::Instant::now(), names.clone()));
        }
        names
    }
}

/// Published workflow versions never change: the ones runs use are kept
/// here (bounded) instead of being read and parsed for every run.
type VersionKey = (TenantId, WorkflowId, i32);

#[derive(Clone, Default)]
struct VersionCache(Arc<std::sync::Mutex<std::collections::HashMap<VersionKey, Arc<Version>>>>);

const VERSION_CACHE_MAX: usize = 4096;

impl VersionCache {
    async fn get(
        &self,
        db: &Db,
        tenant: &TenantId,
        workflow: &WorkflowId,
        version: i32,
    ) -> Result<Arc<Version>, StoreError> {
        let key = (tenant.clone(), workflow.clone(), version);
        if let Some(v) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let v = Arc::new(workflows::version(db, tenant, workflow, version).await?);
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= VERSION_CACHE_MAX {
                m.clear();
            }
            m.insert(key, v.clone());
        }
        Ok(v)
    }
}

/// Runs this process executes itself, straight after storing them, when it
/// is also a worker: no queue round trip. Bounded by `permits`; beyond it
/// (and once shutting down) runs go through the queue. A run started here
/// is held by a lease like any other, so if the process dies the sweeper
/// hands it to another worker.
struct Local {
    permits: Arc<tokio::sync::Semaphore>,
    total: u32,
    closed: std::sync::atomic::AtomicBool,
    /// To the task that starts them (a spawn from `enqueue` itself would
    /// make `execute` a future that contains itself).
    starts:
        tokio::sync::mpsc::UnboundedSender<(TenantId, RunId, tokio::sync::OwnedSemaphorePermit)>,
    /// Runs stored here while every permit was taken, executed by the next
    /// permit that frees (bounded by `BACKLOG_MAX`; beyond it, the queue).
    /// Each is a queued row with a lease, so if the process dies the
    /// sweeper hands it to another worker.
    backlog: std::sync::Mutex<Backlog>,
}

/// Runs waiting for a permit, in order, each once.
#[derive(Default)]
struct Backlog {
    order: std::collections::VecDeque<(TenantId, RunId)>,
    ids: std::collections::HashSet<RunId>,
}

/// Runs a process keeps for itself while its permits are taken.
const BACKLOG_MAX: usize = 20_000;

impl Local {
    fn next(&self) -> Option<(TenantId, RunId)> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let mut b = self.backlog.lock().ok()?;
        let next = b.order.pop_front()?;
        b.ids.remove(&next.1);
        Some(next)
    }

    /// Starts the next waiting run if a permit is free: a run kept while
    /// every permit was taken, and a permit freed while the run was being
    /// kept, would otherwise miss each other (both sides call this after
    /// their change).
    fn start_waiting(&self) {
        if self.backlog.lock().is_ok_and(|b| b.order.is_empty()) {
            return;
        }
        if let Ok(permit) = self.permits.clone().try_acquire_owned()
            && let Some((tenant, id)) = self.next()
            && let Err(e) = self.starts.send((tenant, id, permit))
        {
            let (tenant, id, _) = e.0;
            tracing::warn!(tenant_id = %tenant, run_id = %id, "could not start a run here; the sweeper will");
        }
    }

    /// Keeps a run for the next free permit; false when the backlog is full.
    fn keep(&self, tenant: &TenantId, id: &RunId) -> bool {
        let Ok(mut b) = self.backlog.lock() else {
            return false;
        };
        if b.ids.contains(id) {
            return true;
        }
        if b.order.len() >= BACKLOG_MAX {
            return false;
        }
        b.ids.insert(id.clone());
        b.order.push_back((tenant.clone(), id.clone()));
        true
    }
}

/// Starts each run handed over on `starts`, each on its own task.
async fn start_local(
    engine: Engine,
    mut starts: tokio::sync::mpsc::UnboundedReceiver<(
        TenantId,
        RunId,
        tokio::sync::OwnedSemaphorePermit,
    )>,
) {
    while let Some((tenant, id, permit)) = starts.recv().await {
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut next = Some((tenant, id));
            // The permit goes on to the runs that waited for one.
            while let Some((tenant, id)) = next {
                if let Err(e) = engine.execute(&tenant, &id).await {
                    tracing::error!(run_id = %id, error = %e, "run execution failed; will be picked up again");
                }
                next = engine.local.as_ref().and_then(|l| l.next());
            }
            drop(permit);
            if let Some(local) = engine.local.as_ref() {
                local.start_waiting();
            }
        });
    }
}

/// Where an inbound event came from, for matching it to workflows.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    /// The connector (`hubspot`, `verification`, `webhook`).
    pub connector: ConnectorKey,
    /// The connection it came through.
    pub connection: &'a ConnectionId,
}

impl Engine {
    /// An engine over the database, the connections and the queue.
    pub fn new(
        db: Db,
        connections: ConnectionService,
        clock: Arc<dyn Clock>,
        queue: Queue,
    ) -> Self {
        Self {
            writer: crate::writer::Writer::new(db.clone(), clock.clone()),
            db,
            connections,
            clock,
            queue,
            lease: ChronoDuration::minutes(5),
            versions: VersionCache::default(),
            local: None,
            metrics: Recorder::default(),
            classes: ClassCache::default(),
        }
    }

    /// What the engine counts as it works (flushed by the caller's
    /// flusher, see [`Recorder::run_flusher`]).
    pub fn metrics(&self) -> &Recorder {
        &self.metrics
    }

    /// Counts a run that ended (only by the worker whose save ended it).
    pub(super) fn ended(&self, tenant: &TenantId, run: &runs::Run, status: RunStatus) {
        let now = self.clock.now();
        let latency = u64::try_from((now - run.created_at).num_milliseconds()).unwrap_or(0);
        self.metrics
            .run_ended((tenant, &run.workflow_id), status, latency, now);
    }

    /// Lets this process execute up to `concurrency` runs itself as soon
    /// as it has stored them (or they become due), instead of sending each
    /// through the queue; the queue takes the rest. For processes that are
    /// workers; `0` turns it off.
    /// Must be called within the Tokio runtime.
    pub fn with_in_process(mut self, concurrency: u32) -> Self {
        if concurrency == 0 {
            self.local = None;
            return self;
        }
        let (starts, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.local = Some(Arc::new(Local {
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency as usize)),
            total: concurrency,
            closed: std::sync::atomic::AtomicBool::new(false),
            starts,
            backlog: std::sync::Mutex::new(Backlog::default()),
        }));
        tokio::spawn(start_local(self.clone(), receiver));
        self
    }

    /// Stops starting runs in this process and waits (up to `limit`) for
    /// the ones it is executing to finish.
    pub async fn drain(&self, limit: std::time::Duration) {
        if let Some(local) = &self.local {
            local
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            // The runs waiting here go to the queue, for another worker or
            // the next start.
            let kept: Vec<(TenantId, RunId)> = local
                .backlog
                .lock()
                .map(|mut b| {
                    b.ids.clear();
                    b.order.drain(..).collect()
                })
                .unwrap_or_default();
            for (tenant, id) in kept {
                if let Err(e) = self
                    .queue
                    .push(ExecuteRunV1 {
                        tenant_id: tenant,
                        run_id: id.clone(),
                    })
                    .await
                {
                    tracing::warn!(run_id = %id, error = %e, "could not enqueue a waiting run at shutdown; the sweeper will");
                }
            }
            let all = local.permits.acquire_many(local.total);
            if tokio::time::timeout(limit, all).await.is_err() {
                tracing::warn!(
                    "runs still executing at shutdown; their leases will lapse and another worker takes them"
                );
            }
        }
    }

    /// How long a worker holds a run between saves before the sweeper
    /// gives it to another (default 5 minutes).
    pub fn with_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = ChronoDuration::from_std(lease).unwrap_or(self.lease);
        self
    }

    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
    /// Hands a run to a worker: this process when it executes runs itself
    /// and has room, otherwise the queue. A failed enqueue is logged, not
    /// returned (the sweeper enqueues again).
    pub async fn enqueue(&self, tenant: &TenantId, id: &RunId) {
        if let Some(local) = &self.local
            && !local.closed.load(std::sync::atomic::Ordering::SeqCst)
        {
            if let Ok(permit) = local.permits.clone().try_acquire_owned() {
                if local
                    .starts
                    .send((tenant.clone(), id.clone(), permit))
                    .is_ok()
                {
                    return;
                }
            } else if local.keep(tenant, id) {
                local.start_waiting();
                return;
            }
        }
        if let Err(e) = self
            .queue
            .push(ExecuteRunV1 {
                tenant_id: tenant.clone(),
                run_id: id.clone(),
            })
            .await
        {
            tracing::warn!(run_id = %id, error = %e, "could not enqueue run; the sweeper will");
        }
    }

    /// One sweep: re-queue runs of dead workers and waits past their
    /// deadline; enqueue what is due. Returns how many runs were enqueued.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let found = ferry_store::system::sweep(&self.db, now, 500).await?;
        for (tenant, id) in &found.orphaned {
            tracing::warn!(tenant_id = %tenant, run_id = %id, "run's worker stopped holding it; re-queued");
        }
        for (tenant, id) in &found.timed_out {
            tracing::info!(tenant_id = %tenant, run_id = %id, "wait deadline passed; run re-queued");
        }
        for (tenant, id) in found.enqueue.iter().chain(&found.timed_out) {
            self.enqueue(tenant, id).await;
        }
        Ok(found.enqueue.len() + found.timed_out.len())
    }

    /// Sweeps every `every` until `stop` is set.
    pub async fn run_sweeper(
        self,
        every: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut stop = stop;
        let mut ticks: u64 = 0;
        loop {
            if let Err(e) = self.sweep().await {
                tracing::error!(error = %e, "run sweep failed");
            }
            // Expired echo guards go about once a minute, not every sweep.
            if ticks.is_multiple_of(60)
                && let Err(e) =
                    ferry_store::system::purge_echo_guards(&self.db, self.clock.now()).await
            {
                tracing::warn!(error = %e, "purging expired echo guards failed");
            }
            ticks = ticks.wrapping_add(1);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[async_trait::async_trait]
impl Handler for Engine {
    async fn handle(&self, job: ExecuteRunV1) {
        let (tenant, id) = (job.tenant_id, job.run_id);
        if let Err(e) = self.execute(&tenant, &id).await {
            // The run stays where it was saved; the sweeper takes it again
            // when its lease lapses.
            tracing::error!(run_id = %id, error = %e, "run execution failed; will be picked up again");
        }
    }
}

/// The key a wait step and an inbound event meet on.
pub fn correlation_key(connector: ConnectorKey, event: &str, value: &str) -> String {
    format!("{connector}:{event}:{value}")
}

/// Exponential back-off with jitter (×0.5–1.5), never shorter than the
/// remote's `Retry-After`.
pub fn backoff(
    base_ms: u64,
    attempt: i32,
    retry_after: Option<std::time::Duration>,
) -> ChronoDuration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(0);
    let raw = base_ms.saturating_mul(1u64 << exp);
    let jitter = 0.5 + rand::random::<f64>();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let ms = (raw as f64 * jitter) as u64;
    let floor = retry_after.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    ChronoDuration::milliseconds(i64::try_from(ms.max(floor)).unwrap_or(i64::MAX / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_back_is_confirmed_by_the_record_the_app_answers() {
        let input =
            json!({"contact_id": "1", "properties": {"identity_verification_status": "pass"}});
        let hs = ConnectorKey::HubSpot;
        let landed = json!({"id": "1", "identity_verification_status": "pass"});
        assert_eq!(unconfirmed(hs, "update_contact", &input, &landed), None);
        let other = json!({"id": "1", "identity_verification_status": "fail"});
        assert_eq!(
            unconfirmed(hs, "update_contact", &input, &other).as_deref(),
            Some("identity_verification_status")
        );
        let silent = json!({"id": "1"});
        assert_eq!(unconfirmed(hs, "update_contact", &input, &silent), None);
        assert_eq!(unconfirmed(hs, "get_contact", &input, &other), None);
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        for attempt in 1..6 {
            let d = backoff(1000, attempt, None).num_milliseconds();
            let base = 1000 * (1 << (attempt - 1));
            assert!(d >= base / 2 && d <= base * 3 / 2, "{attempt}: {d}");
        }
        let d = backoff(100, 1, Some(std::time::Duration::from_secs(10)));
        assert!(d.num_milliseconds() >= 10_000);
    }
}

#[cfg(test)]
mod lifecycle_tests;
