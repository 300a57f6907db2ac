//! The run engine: turns accepted events into runs, executes their steps,
//! retries, parks and resumes waits, and sweeps up what was left behind.
//!
//! Every step attempt is recorded (redacted input and output, each HTTP
//! call). Calls with side effects carry the idempotency key
//! `{run id}:{step key}`, so a run resumed after its worker died repeats no
//! effect at the remote end.

use crate::connections::{ConnectionService, ServiceError};
use crate::queue::{ExecuteRunV1, Handler, Queue};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use ferry_connectors::ConnectorError;
use ferry_core::catalog::{ConnectorKey, FieldSchema};
use ferry_core::redact::{redact, redact_all};
use ferry_core::validate::{validate, validate_input};
use ferry_core::workflow::{Definition, Step, StepKind};
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
            if let Err(e) = engine.execute(&tenant, &id).await {
                tracing::error!(run_id = %id, error = %e, "run execution failed; will be picked up again");
            }
            drop(permit);
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

/// What a step did.
enum StepResult {
    /// Done; its output.
    Next(Value),
    /// Failed, may succeed later.
    Retry {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Failed for good.
    Fail(String),
    /// Park until the event arrives.
    Wait {
        key: String,
        deadline: DateTime<Utc>,
    },
    /// A condition ended the run.
    Stop(String),
}

/// The run's working data (sealed at rest).
fn data(context: &Value) -> Value {
    json!({ "trigger": context["trigger"], "steps": context["steps"] })
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
            db,
            connections,
            clock,
            queue,
            lease: ChronoDuration::minutes(5),
            versions: VersionCache::default(),
            local: None,
        }
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

    /// Stores an accepted event with the runs it starts (and the waiting
    /// runs it resumes) in one transaction, then enqueues them. A failed
    /// enqueue is logged; the sweeper enqueues the run later.
    pub async fn ingest(
        &self,
        tenant: &TenantId,
        source: Source<'_>,
        event: NewEvent<'_>,
        correlation_key: Option<&str>,
        echo: Option<runs::EchoKey<'_>>,
        record_id: Option<&str>,
    ) -> Result<Ingested, StoreError> {
        let now = self.clock.now();
        let triggered = self.triggered_by(tenant, &source, event.event_type).await?;
        let payload: Value = serde_json::from_str(event.payload).unwrap_or(Value::Null);
        // Payloads carry personal data: at rest they are sealed like run
        // contexts, bound to the event's dedupe key.
        let sealed_payload = self
            .connections
            .vault()
            .seal(
                tenant,
                event.payload.as_bytes(),
                &ferry_store::inbound::payload_aad(event.dedupe_key),
            )
            .await?;
        let event = NewEvent {
            payload: &sealed_payload,
            ..event
        };
        let mut new_runs = Vec::new();
        for (workflow_id, t) in triggered {
            let id = RunId::generate();
            // A generic webhook's trigger is its whole body (schema: `body`).
            let trigger = if source.connector == ConnectorKey::Webhook {
                json!({ "body": payload })
            } else {
                payload.clone()
            };
            let context = json!({ "trigger": trigger, "steps": {}, "deadlines": {} });
            let sealed = self
                .connections
                .vault()
                .seal(tenant, context.to_string().as_bytes(), id.as_str())
                .await?;
            new_runs.push(NewRun {
                id,
                workflow_id,
                version: t.version,
                record_id: record_id.map(str::to_owned),
                context: sealed,
                once_per_record: t.definition.trigger.event.ends_with(".creation"),
            });
        }
        let ingested = runs::ingest(
            &self.db,
            tenant,
            event,
            correlation_key,
            echo,
            new_runs,
            now,
        )
        .await?;
        if ingested.echo {
            tracing::info!(tenant_id = %tenant, "event is Ferry's own write coming back (echo): no run");
        }
        for id in &ingested.skipped {
            tracing::info!(tenant_id = %tenant, run_id = %id, record_id = record_id.unwrap_or(""), "record already processed: run skipped");
        }
        for id in ingested.queued.iter().chain(&ingested.resumed) {
            self.enqueue(tenant, id).await;
        }
        Ok(ingested)
    }

    /// The payload of the event with this correlation key, opened (rows
    /// stored before payloads were sealed are read as they are).
    async fn correlated_payload(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((dedupe_key, stored)) = runs::correlated_event(&self.db, tenant, key).await?
        else {
            return Ok(None);
        };
        let aad = ferry_store::inbound::payload_aad(&dedupe_key);
        match self.connections.vault().open(tenant, &stored, &aad).await {
            Ok(plain) => Ok(Some(plain)),
            Err(_) if stored.starts_with('{') || stored.starts_with('[') => {
                Ok(Some(stored.into_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// The published workflows (their versions) an event from `source` of
    /// type `event` starts: trigger and bound connection match.
    async fn triggered_by(
        &self,
        tenant: &TenantId,
        source: &Source<'_>,
        event: &str,
    ) -> Result<Vec<(WorkflowId, Arc<Version>)>, StoreError> {
        let mut out = Vec::new();
        for (workflow, version) in runs::published(&self.db, tenant).await? {
            let v = match self
                .versions
                .get(&self.db, tenant, &workflow, version)
                .await
            {
                Ok(v) => v,
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let trigger = &v.definition.trigger;
            if trigger.connector == source.connector
                && trigger.event == event
                && v.bindings.get(source.connector.as_str()) == Some(source.connection)
            {
                out.push((workflow, v));
            }
        }
        Ok(out)
    }

    /// Hands a run to a worker: this process when it executes runs itself
    /// and has room, otherwise the queue. A failed enqueue is logged, not
    /// returned (the sweeper enqueues again).
    pub async fn enqueue(&self, tenant: &TenantId, id: &RunId) {
        if let Some(local) = &self.local
            && !local.closed.load(std::sync::atomic::Ordering::SeqCst)
            && let Ok(permit) = local.permits.clone().try_acquire_owned()
            && local
                .starts
                .send((tenant.clone(), id.clone(), permit))
                .is_ok()
        {
            return;
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

    /// Replays a failed or dead-lettered run from the step that failed.
    pub async fn replay(&self, tenant: &TenantId, id: &RunId) -> Result<bool, StoreError> {
        let ok = runs::replay(&self.db, tenant, id, self.clock.now()).await?;
        if ok {
            tracing::info!(tenant_id = %tenant, run_id = %id, "run replayed from its failed step");
            self.enqueue(tenant, id).await;
        }
        Ok(ok)
    }

    /// Executes a run of `tenant` as far as it can go now. Every log line
    /// inside (steps, connector calls, failures) carries the tenant, the
    /// workflow and the run.
    #[tracing::instrument(
        name = "execute_run",
        skip_all,
        fields(tenant_id = %tenant, run_id = %id, workflow_id = tracing::field::Empty)
    )]
    pub async fn execute(&self, tenant: &TenantId, id: &RunId) -> Result<(), StoreError> {
        let now = self.clock.now();
        let Some(claimed) = runs::claim(&self.db, tenant, id, now, now + self.lease).await? else {
            return Ok(());
        };
        let tenant = claimed.tenant.clone();
        let run = claimed.run;
        tracing::Span::current().record("workflow_id", tracing::field::display(&run.workflow_id));
        let vault = self.connections.vault();
        let mut context: Value =
            serde_json::from_slice(&vault.open(&tenant, &claimed.context, id.as_str()).await?)
                .map_err(|_| StoreError::Corrupt("runs.context"))?;
        let version = match self
            .versions
            .get(&self.db, &tenant, &run.workflow_id, run.version)
            .await
        {
            Ok(v) => v,
            Err(StoreError::NotFound) => {
                self.persist(
                    &tenant,
                    id,
                    None,
                    (run.step_index, 0),
                    &context,
                    Outcome::Finished(RunStatus::Failed),
                    Some("the workflow version no longer exists"),
                )
                .await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let steps = &version.definition.steps;
        let mut index = usize::try_from(run.step_index).unwrap_or(0);
        let mut attempt = run.step_attempt;
        // A step that went well is saved with the next step's progress (or
        // with the run's end), in one transaction.
        let mut done: Option<StepRecord> = None;
        tracing::info!(tenant_id = %tenant, run_id = %id, step = index, "run started or resumed");
        while let Some(step) = steps.get(index) {
            attempt += 1;
            let started = self.clock.now();
            let (result, record) = self
                .step(
                    &tenant,
                    id,
                    &run,
                    &version.definition,
                    &version.bindings,
                    step,
                    &mut context,
                    attempt,
                )
                .await;
            let step_at = i32::try_from(index).unwrap_or(i32::MAX);
            let mut record = record;
            record.step_index = step_at;
            record.attempt = attempt;
            record.started_at = started;
            record.finished_at = self.clock.now();
            // Every way a step ends but success: the attempt and what the
            // run becomes, saved together.
            let (outcome, error, at, parked): (Outcome, Option<String>, i32, Option<String>) =
                match result {
                    StepResult::Next(output) => {
                        if record.status.is_empty() {
                            record.status = "ok".into();
                        }
                        context["steps"][&step.key] = output;
                        index += 1;
                        attempt = 0;
                        if index >= steps.len() {
                            done = Some(record);
                            break;
                        }
                        let now = self.clock.now();
                        let held = self
                            .persist(
                                &tenant,
                                id,
                                Some(&record),
                                (i32::try_from(index).unwrap_or(i32::MAX), 0),
                                &context,
                                Outcome::Progress {
                                    lease_until: now + self.lease,
                                },
                                None,
                            )
                            .await?;
                        if !held {
                            tracing::warn!(run_id = %id, "run was taken back while running; stopping");
                            return Ok(());
                        }
                        continue;
                    }
                    StepResult::Retry { error, retry_after } => {
                        let policy = match &step.kind {
                            StepKind::Action { retry, .. } => *retry,
                            _ => Default::default(),
                        };
                        let last = u32::try_from(attempt).unwrap_or(u32::MAX) >= policy.attempts;
                        record.status = if last { "failed" } else { "retrying" }.into();
                        record.error = Some(error.clone());
                        if last {
                            let message = format!(
                                "step {} failed after {attempt} attempts: {error}",
                                step.key
                            );
                            tracing::error!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, step = %step.key, error = %error, "run dead-lettered");
                            (
                                Outcome::Finished(RunStatus::Dead),
                                Some(message),
                                attempt,
                                None,
                            )
                        } else {
                            let delay = backoff(policy.backoff_ms, attempt, retry_after);
                            tracing::warn!(tenant_id = %tenant, run_id = %id, step = %step.key, attempt, delay_ms = delay.num_milliseconds(), error = %error, "step failed; will retry");
                            (
                                Outcome::RetryAt(self.clock.now() + delay),
                                Some(error),
                                attempt,
                                None,
                            )
                        }
                    }
                    StepResult::Fail(error) => {
                        record.status = "failed".into();
                        record.error = Some(error.clone());
                        let message = format!("step {} failed: {error}", step.key);
                        tracing::error!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, step = %step.key, error = %error, "run failed");
                        (
                            Outcome::Finished(RunStatus::Failed),
                            Some(message),
                            attempt,
                            None,
                        )
                    }
                    StepResult::Wait { key, deadline } => {
                        record.status = "waiting".into();
                        (
                            Outcome::Wait {
                                key: key.clone(),
                                deadline,
                            },
                            None,
                            0,
                            Some(key),
                        )
                    }
                    StepResult::Stop(reason) => {
                        record.status = "stopped".into();
                        record.error = Some(reason.clone());
                        (
                            Outcome::Finished(RunStatus::Succeeded),
                            Some(reason),
                            0,
                            None,
                        )
                    }
                };
            self.persist(
                &tenant,
                id,
                Some(&record),
                (step_at, at),
                &context,
                outcome,
                error.as_deref(),
            )
            .await?;
            // A wait: the event may have arrived between the look and the park.
            if let Some(key) = parked
                && runs::correlated_event(&self.db, &tenant, &key)
                    .await?
                    .is_some()
                && runs::resume_if_waiting(&self.db, id, self.clock.now()).await?
            {
                self.enqueue(&tenant, id).await;
            }
            return Ok(());
        }
        // Past the last step: pages show the run as done.
        let end = i32::try_from(steps.len()).unwrap_or(i32::MAX);
        self.persist(
            &tenant,
            id,
            done.as_ref(),
            (end, 0),
            &context,
            Outcome::Finished(RunStatus::Succeeded),
            None,
        )
        .await?;
        tracing::info!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, "run succeeded");
        Ok(())
    }

    /// Seals the run's context and saves the step attempt that just ended
    /// (if any) with where the run is (`(step index, attempt)`) and what it
    /// becomes, in one transaction; false when the run was taken from this
    /// worker (the attempt is recorded all the same).
    #[allow(clippy::too_many_arguments)] // the run's row, named at the call
    async fn persist(
        &self,
        tenant: &TenantId,
        id: &RunId,
        attempt: Option<&StepRecord>,
        (step_index, step_attempt): (i32, i32),
        context: &Value,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let sealed = self
            .connections
            .vault()
            .seal(tenant, context.to_string().as_bytes(), id.as_str())
            .await?;
        runs::save(
            &self.db,
            tenant,
            id,
            attempt,
            runs::Position {
                step_index,
                step_attempt,
            },
            &sealed,
            outcome,
            error,
            self.clock.now(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        definition: &Definition,
        bindings: &workflows::Bindings,
        step: &Step,
        context: &mut Value,
        attempt: i32,
    ) -> (StepResult, StepRecord) {
        let mut record = StepRecord {
            step_index: 0,
            step_key: step.key.clone(),
            kind: kind_name(&step.kind).into(),
            attempt,
            status: String::new(),
            input: Value::Null,
            output: Value::Null,
            http_calls: json!([]),
            error: None,
            started_at: self.clock.now(),
            finished_at: self.clock.now(),
        };
        let data = data(context);
        let result = match &step.kind {
            StepKind::Action {
                connector,
                action,
                input,
                ..
            } => {
                let def = connector.def();
                let Some(action_def) = def.action(action) else {
                    return (
                        StepResult::Fail(format!("{} has no action {action}", def.name)),
                        record,
                    );
                };
                let (input_value, problem) = action_input(action_def, input, &data);
                record.input = redact(action_def.input, action_def.output, &input_value);
                // Validation before every write: nothing invalid leaves Ferry.
                if let Some(problem) = problem {
                    return (StepResult::Fail(problem), record);
                }
                let Some(connection) = bindings.get(connector.as_str()) else {
                    return (
                        StepResult::Fail(format!("no {} connection is bound", def.name)),
                        record,
                    );
                };
                self.action(
                    tenant,
                    id,
                    run,
                    *connector,
                    action,
                    action_def.side_effect,
                    connection,
                    &step.key,
                    &input_value,
                    action_def.output,
                    &mut record,
                )
                .await
            }
            StepKind::Validate { rules } => {
                record.input = json!(rules.iter().map(|r| r.path.to_string()).collect::<Vec<_>>());
                let violations = validate(rules, &data);
                if violations.is_empty() {
                    StepResult::Next(json!({ "valid": true }))
                } else {
                    let reasons: Vec<String> = violations
                        .iter()
                        .map(|v| format!("{}: {}", v.field, v.message))
                        .collect();
                    record.output = json!({ "valid": false, "violations": violations });
                    StepResult::Fail(format!(
                        "validation failed, nothing written: {}",
                        reasons.join("; ")
                    ))
                }
            }
            StepKind::Map { output } => {
                let mut out = serde_json::Map::new();
                let mut failed = None;
                for (name, e) in output {
                    match e.eval(&data) {
                        Ok(v) => {
                            out.insert(name.clone(), v);
                        }
                        Err(err) => failed = Some(format!("{name}: {}", err.0)),
                    }
                }
                let out = Value::Object(out);
                record.output = redact_all(&out);
                match failed {
                    Some(f) => StepResult::Fail(format!("mapping failed: {f}")),
                    None => StepResult::Next(out),
                }
            }
            StepKind::Wait {
                connector,
                event,
                correlation,
                timeout_secs,
                ..
            } => {
                let value = match correlation.eval(&data) {
                    Ok(Value::String(s)) if !s.is_empty() => s,
                    Ok(Value::Number(n)) => n.to_string(),
                    _ => {
                        return (
                            StepResult::Fail("the correlation value is empty".into()),
                            record,
                        );
                    }
                };
                let key = correlation_key(*connector, event, &value);
                record.input = json!({ "correlation": key });
                let fields = connector.def().trigger(event).map_or(&[][..], |t| t.fields);
                match self.correlated_payload(tenant, &key).await {
                    Ok(Some(payload)) => {
                        let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                        record.output = redact(fields, &[], &v);
                        StepResult::Next(v)
                    }
                    Ok(None) => {
                        let now = self.clock.now();
                        let deadline = context["deadlines"][&step.key]
                            .as_str()
                            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                            .map(|d| d.with_timezone(&Utc))
                            .unwrap_or_else(|| {
                                now + ChronoDuration::seconds(
                                    i64::try_from(*timeout_secs).unwrap_or(i64::MAX / 2),
                                )
                            });
                        context["deadlines"][&step.key] = json!(deadline.to_rfc3339());
                        if now >= deadline {
                            tracing::warn!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, step = %step.key, event = "outcome_deadline", "no {event} event before the deadline; going on without it");
                            record.error = Some(format!(
                                "outcome deadline: no {event} event within {}",
                                human_secs(*timeout_secs)
                            ));
                            record.status = "timed_out".into();
                            StepResult::Next(json!({ "timed_out": true }))
                        } else {
                            StepResult::Wait { key, deadline }
                        }
                    }
                    Err(e) => StepResult::Retry {
                        error: e.to_string(),
                        retry_after: None,
                    },
                }
            }
            StepKind::Condition {
                path,
                equals,
                negate,
            } => {
                let v = path.get(&data).cloned().unwrap_or(Value::Null);
                let matched = (&v == equals) != *negate;
                record.input = json!({ "path": path.to_string() });
                record.output = json!({ "passed": matched });
                if matched {
                    StepResult::Next(json!({ "passed": true }))
                } else {
                    StepResult::Stop(format!("condition on {path} not met: the run ends here",))
                }
            }
        };
        let _ = definition;
        (result, record)
    }

    #[allow(clippy::too_many_arguments)]
    async fn action(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        connector: ConnectorKey,
        action: &str,
        side_effect: bool,
        connection: &ConnectionId,
        step_key: &str,
        input: &Value,
        output_schema: &[FieldSchema],
        record: &mut StepRecord,
    ) -> StepResult {
        let (conn, mut ctx) = match self.connections.context(tenant, connection).await {
            Ok(c) => c,
            Err(e) => return classify(e),
        };
        if side_effect {
            ctx.idempotency_key = Some(format!("{id}:{step_key}"));
        }
        let Some(c) = self.connections.registry().get(connector) else {
            return StepResult::Fail(format!("no connector {connector}"));
        };
        let now = self.clock.now();
        if connector == ConnectorKey::HubSpot && action == "update_contact" {
            // Ferry's write will come back as change events: remember it
            // first, so they are recognised as echoes, not triggers.
            let contact = input["contact_id"].as_str().unwrap_or("");
            if let Some(props) = input["properties"].as_object() {
                for (k, v) in props {
                    let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    if let Err(e) = runs::guard_echo(
                        &self.db,
                        tenant,
                        contact,
                        k,
                        &value,
                        now + ChronoDuration::seconds(ECHO_SECS),
                    )
                    .await
                    {
                        return StepResult::Retry {
                            error: e.to_string(),
                            retry_after: None,
                        };
                    }
                }
            }
        }
        let outcome = c.call(action, input, &ctx).await;
        let calls = ctx.log.lock().map(|l| l.clone()).unwrap_or_default();
        record.http_calls = serde_json::to_value(&calls).unwrap_or(json!([]));
        match outcome {
            Ok(output) => {
                record.output = redact(output_schema, &[], &output);
                // "Last used" to the minute: one write a minute per busy
                // connection, not one per call (a broken one is healed now).
                let fresh = conn.status == ferry_core::ConnectionStatus::Healthy
                    && conn
                        .last_used_at
                        .is_some_and(|t| self.clock.now() - t < ChronoDuration::minutes(1));
                if !fresh {
                    let _ = ferry_store::connections::mark_used(
                        &self.db,
                        tenant,
                        connection,
                        self.clock.now(),
                    )
                    .await;
                }
                if let Err(e) = self
                    .note_verification(tenant, id, run, connector, action, input, &output)
                    .await
                {
                    tracing::warn!(run_id = %id, error = %e, "could not update the verification view");
                }
                StepResult::Next(output)
            }
            Err(e) => classify(ServiceError::Connector(e)),
        }
    }

    /// Keeps the staff view of verification outcomes current: a started
    /// check is `pending`; the outcome written back to the CRM settles it.
    #[allow(clippy::too_many_arguments)]
    async fn note_verification(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        connector: ConnectorKey,
        action: &str,
        input: &Value,
        output: &Value,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let view = match (connector, action) {
            (ConnectorKey::Verification, "create_check") => {
                let Some(record) = run.record_id.clone() else {
                    return Ok(());
                };
                let name = [input["first_name"].as_str(), input["last_name"].as_str()]
                    .into_iter()
                    .flatten()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ");
                runs::Verification {
                    record_id: record,
                    name,
                    outcome: "pending".into(),
                    checked_at: None,
                    check_ref: output["id"].as_str().map(str::to_owned),
                    run_id: id.clone(),
                }
            }
            (ConnectorKey::HubSpot, "update_contact") => {
                let props = &input["properties"];
                let Some(outcome) = props["identity_verification_status"].as_str() else {
                    return Ok(());
                };
                runs::Verification {
                    record_id: input["contact_id"].as_str().unwrap_or("").to_owned(),
                    name: String::new(),
                    outcome: outcome.to_owned(),
                    checked_at: (outcome != "pending").then_some(now),
                    check_ref: props["identity_verification_ref"]
                        .as_str()
                        .map(str::to_owned),
                    run_id: id.clone(),
                }
            }
            _ => return Ok(()),
        };
        runs::upsert_verification(&self.db, tenant, &view, now).await
    }
}

/// One step of a dry run, as shown to the builder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DryStep {
    /// The step's key.
    pub key: String,
    /// action, validate, map, wait, condition.
    pub kind: &'static str,
    /// ok, failed, skipped (a write not made), stopped, waiting.
    pub status: &'static str,
    /// What the step was given (PII redacted).
    pub input: Value,
    /// What it produced (PII redacted).
    pub output: Value,
    /// Why it failed, or what a real run would do here.
    pub note: String,
}

impl Engine {
    /// Runs `definition` on a sample trigger payload without writing
    /// anything: mappings, validation and conditions are evaluated, actions
    /// that only read are called through their bound connections, actions
    /// with side effects are shown with the input they would get and not
    /// called, and waits are assumed to time out. Stops at the first failure.
    pub async fn dry_run(
        &self,
        tenant: &TenantId,
        definition: &Definition,
        bindings: &workflows::Bindings,
        trigger: Value,
    ) -> Vec<DryStep> {
        let trigger = if definition.trigger.connector == ConnectorKey::Webhook {
            json!({ "body": trigger })
        } else {
            trigger
        };
        let mut context = json!({ "trigger": trigger, "steps": {} });
        let mut out = Vec::new();
        for step in &definition.steps {
            let data = data(&context);
            let mut row = DryStep {
                key: step.key.clone(),
                kind: kind_name(&step.kind),
                status: "ok",
                input: Value::Null,
                output: Value::Null,
                note: String::new(),
            };
            let mut output = Value::Null;
            match &step.kind {
                StepKind::Action {
                    connector,
                    action,
                    input,
                    ..
                } => {
                    let Some(def) = connector.def().action(action) else {
                        row.status = "failed";
                        row.note = format!("{} has no action {action}", connector.def().name);
                        out.push(row);
                        break;
                    };
                    let (value, problem) = action_input(def, input, &data);
                    row.input = redact(def.input, def.output, &value);
                    if let Some(f) = problem {
                        row.status = "failed";
                        row.note = f;
                        out.push(row);
                        break;
                    }
                    if def.side_effect {
                        row.status = "skipped";
                        row.note = "not called: a dry run writes nothing".into();
                    } else {
                        let called = match bindings.get(connector.as_str()) {
                            None => Err(format!("no {} connection is bound", connector.def().name)),
                            Some(c) => match self.connections.context(tenant, c).await {
                                Err(e) => Err(e.to_string()),
                                Ok((_, ctx)) => match self.connections.registry().get(*connector) {
                                    None => Err(format!("no connector {connector}")),
                                    Some(conn) => conn
                                        .call(action, &value, &ctx)
                                        .await
                                        .map_err(|e| e.to_string()),
                                },
                            },
                        };
                        match called {
                            Ok(v) => {
                                row.output = redact(def.output, &[], &v);
                                row.note = "read from the bound connection".into();
                                output = v;
                            }
                            Err(e) => {
                                row.status = "failed";
                                row.note = e;
                                out.push(row);
                                break;
                            }
                        }
                    }
                }
                StepKind::Validate { rules } => {
                    row.input = json!(rules.iter().map(|r| r.path.to_string()).collect::<Vec<_>>());
                    let violations = validate(rules, &data);
                    if !violations.is_empty() {
                        row.status = "failed";
                        row.output = json!({ "violations": violations });
                        row.note =
                            "validation failed: a real run would stop here and write nothing"
                                .into();
                        out.push(row);
                        break;
                    }
                    output = json!({ "valid": true });
                    row.output = output.clone();
                }
                StepKind::Map { output: fields } => {
                    let mut m = serde_json::Map::new();
                    for (name, e) in fields {
                        m.insert(name.clone(), e.eval(&data).unwrap_or(Value::Null));
                    }
                    output = Value::Object(m);
                    row.output = redact_all(&output);
                }
                StepKind::Wait {
                    connector,
                    event,
                    correlation,
                    timeout_secs,
                    ..
                } => {
                    let value = correlation.eval(&data).unwrap_or(Value::Null);
                    row.status = "waiting";
                    row.input = json!({ "correlation": value });
                    row.note = format!(
                        "a real run waits up to {} for {} {event}; the dry run goes on as if it timed out",
                        human_secs(*timeout_secs),
                        connector.def().name
                    );
                    output = json!({ "timed_out": true });
                    row.output = output.clone();
                }
                StepKind::Condition {
                    path,
                    equals,
                    negate,
                } => {
                    let v = path.get(&data).cloned().unwrap_or(Value::Null);
                    let passed = (&v == equals) != *negate;
                    row.input = json!({ "path": path.to_string() });
                    row.output = json!({ "passed": passed });
                    if !passed {
                        row.status = "stopped";
                        row.note = "the condition is not met: a real run ends here".into();
                        out.push(row);
                        break;
                    }
                    output = json!({ "passed": true });
                }
            }
            context["steps"][&step.key] = output;
            out.push(row);
        }
        out
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

/// An action's input from the run's data: each mapped field (a number
/// made text for a text or id field), then the schema's checks. The problem,
/// if any, is a mapping error or the validation failure ("nothing written").
fn action_input(
    def: &ferry_core::catalog::ActionDef,
    input: &std::collections::BTreeMap<String, ferry_core::mapping::Expr>,
    data: &Value,
) -> (Value, Option<String>) {
    let mut values = serde_json::Map::new();
    for (name, e) in input {
        match e.eval(data) {
            Ok(Value::Null) => {}
            Ok(v) => {
                values.insert(name.clone(), coerce(def.input, name, v));
            }
            Err(err) => {
                return (
                    Value::Object(values),
                    Some(format!("mapping {name}: {}", err.0)),
                );
            }
        }
    }
    let violations = validate_input(def.input, &values);
    let problem = (!violations.is_empty()).then(|| {
        format!(
            "validation failed, nothing written: {}",
            violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    (Value::Object(values), problem)
}

/// A number mapped into a text or id field becomes its decimal text (a
/// HubSpot `objectId` is a number in events, a string in paths).
fn coerce(schema: &[FieldSchema], name: &str, v: Value) -> Value {
    use ferry_core::catalog::FieldType;
    match (schema.iter().find(|f| f.name == name).map(|f| f.ty), v) {
        (Some(FieldType::Id | FieldType::Text), Value::Number(n)) => Value::String(n.to_string()),
        (_, v) => v,
    }
}

fn kind_name(k: &StepKind) -> &'static str {
    match k {
        StepKind::Action { .. } => "action",
        StepKind::Validate { .. } => "validate",
        StepKind::Map { .. } => "map",
        StepKind::Wait { .. } => "wait",
        StepKind::Condition { .. } => "condition",
    }
}

fn human_secs(s: u64) -> String {
    if s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn classify(e: ServiceError) -> StepResult {
    match e {
        ServiceError::Connector(c) if c.is_retryable() => StepResult::Retry {
            retry_after: match &c {
                ConnectorError::RateLimited { retry_after } => *retry_after,
                _ => None,
            },
            error: c.to_string(),
        },
        ServiceError::Connector(c) => StepResult::Fail(c.to_string()),
        ServiceError::Store(StoreError::NotFound) => {
            StepResult::Fail("the bound connection no longer exists".into())
        }
        ServiceError::Store(s) => StepResult::Retry {
            error: s.to_string(),
            retry_after: None,
        },
    }
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
