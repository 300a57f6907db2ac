//! Runs: one execution of a published workflow version for one inbound
//! event. The database is the source of truth for runs; the queue only
//! nudges workers. A run's working data (its context: the trigger payload and
//! every step's full output) is sealed with the tenant's data key; what pages
//! and exports show are the step records, whose PII fields are redacted
//! before they are stored.

use crate::entities::{echo_guard, inbound_event, run, run_step, verification, workflow};
use crate::inbound::{NewEvent, Stored};
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{EventId, RunId, TenantId, WorkflowId};
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};
use serde::Serialize;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker (new, retrying after a back-off, or resumed).
    Queued,
    /// A worker holds it.
    Running,
    /// Parked until its event arrives or its timeout passes.
    Waiting,
    /// Every step done (or a condition ended it).
    Succeeded,
    /// Stopped for good by a non-retryable error or a validation failure.
    Failed,
    /// The last retry failed: dead-lettered, needs a person.
    Dead,
    /// Not run: the record was processed already.
    Skipped,
}

impl RunStatus {
    /// Every status, for filters.
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Running,
        Self::Waiting,
        Self::Succeeded,
        Self::Failed,
        Self::Dead,
        Self::Skipped,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
        }
    }

    /// From storage or a filter.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Dead | Self::Skipped
        )
    }
}

/// A run as pages show it (no context).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The version it runs.
    pub version: i32,
    /// The event that started it.
    pub event_id: EventId,
    /// The record it concerns (e.g. the HubSpot contact id).
    pub record_id: Option<String>,
    /// Where it is.
    pub status: RunStatus,
    /// The step it is at (0-based).
    pub step_index: i32,
    /// Attempts made at that step.
    pub step_attempt: i32,
    /// When it will next be looked at (back-off or wait deadline).
    pub wake_at: Option<DateTime<Utc>>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// How often it was replayed.
    pub replays: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<run::Model> for Run {
    type Error = StoreError;
    fn try_from(m: run::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id.parse().map_err(|_| StoreError::Corrupt("runs.id"))?,
            workflow_id: m
                .workflow_id
                .parse()
                .map_err(|_| StoreError::Corrupt("runs.workflow_id"))?,
            version: m.version,
            event_id: m
                .event_id
                .parse()
                .map_err(|_| StoreError::Corrupt("runs.event_id"))?,
            record_id: m.record_id,
            status: RunStatus::parse(&m.status).ok_or(StoreError::Corrupt("runs.status"))?,
            step_index: m.step_index,
            step_attempt: m.step_attempt,
            wake_at: m.wake_at,
            error: m.error,
            replays: m.replays,
            created_at: m.created_at,
            updated_at: m.updated_at,
            finished_at: m.finished_at,
        })
    }
}

/// A run a worker holds, with its sealed context.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run.
    pub run: Run,
    /// The sealed context.
    pub context: String,
    /// The tenant.
    pub tenant: TenantId,
}

/// The published version of each of a tenant's published workflows (the
/// engine matches them to events; versions never change once published).
pub async fn published(db: &Db, tenant: &TenantId) -> Result<Vec<(WorkflowId, i32)>, StoreError> {
    let rows: Vec<(String, Option<i32>)> = workflow::Entity::find()
        .select_only()
        .column(workflow::Column::Id)
        .column(workflow::Column::PublishedVersion)
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::PublishedVersion.is_not_null())
        .into_tuple()
        .all(&db.conn)
        .await?;
    rows.into_iter()
        .filter_map(|(id, v)| v.map(|v| (id, v)))
        .map(|(id, v)| {
            Ok((
                id.parse()
                    .map_err(|_| StoreError::Corrupt("workflows.id"))?,
                v,
            ))
        })
        .collect()
}

/// A run to create with an event.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id (generated before sealing: the context is bound to it).
    pub id: RunId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The version.
    pub version: i32,
    /// The record the event concerns.
    pub record_id: Option<String>,
    /// The sealed context.
    pub context: String,
    /// Skip the run when the workflow already processed this record.
    pub once_per_record: bool,
}

/// What storing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The event (new, or the first copy of a repeat).
    pub stored: Stored,
    /// Runs created queued (to enqueue).
    pub queued: Vec<RunId>,
    /// Runs created skipped (the record was processed already).
    pub skipped: Vec<RunId>,
    /// Waiting runs this event resumed (to enqueue).
    pub resumed: Vec<RunId>,
    /// The event was Ferry's own write coming back: no run.
    pub echo: bool,
}

/// The echo guard an event matches: `(record id, property, value)`.
pub type EchoKey<'a> = (&'a str, &'a str, &'a str);

/// Stores an inbound event and, in the same transaction, its runs and the
/// resumption of runs waiting for it. A repeat of a stored event changes
/// nothing. An event matching an echo guard (Ferry's own write) is stored as
/// `echo` and starts nothing.
pub async fn ingest(
    db: &Db,
    tenant: &TenantId,
    event: NewEvent<'_>,
    correlation_key: Option<&str>,
    echo: Option<EchoKey<'_>>,
    runs: Vec<NewRun>,
    now: DateTime<Utc>,
) -> Result<Ingested, StoreError> {
    let event_id = EventId::generate();
    // Read before the transaction: on SQLite a transaction that reads
    // before it writes cannot take the write lock under contention.
    let is_echo = match echo {
        Some((record, property, value)) => {
            echo_guard::Entity::find()
                .filter(echo_guard::Column::TenantId.eq(tenant.to_string()))
                .filter(echo_guard::Column::RecordId.eq(record))
                .filter(echo_guard::Column::Property.eq(property))
                .filter(echo_guard::Column::Value.eq(value))
                .filter(echo_guard::Column::ExpiresAt.gt(now))
                .count(&db.conn)
                .await?
                > 0
        }
        None => false,
    };
    let txn = db.conn.begin().await?;
    let inserted = inbound_event::Entity::insert(inbound_event::ActiveModel {
        id: Set(event_id.to_string()),
        tenant_id: Set(tenant.to_string()),
        connection_id: Set(event.connection_id.to_string()),
        source: Set(event.source.to_owned()),
        event_type: Set(event.event_type.to_owned()),
        dedupe_key: Set(event.dedupe_key.to_owned()),
        payload: Set(event.payload.to_owned()),
        status: Set(if is_echo { "echo" } else { "received" }.to_owned()),
        received_at: Set(now),
        correlation_key: Set(correlation_key.map(str::to_owned)),
    })
    .exec_without_returning(&txn)
    .await;
    if let Err(e) = inserted {
        txn.rollback().await?;
        if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            let first = crate::inbound::first_copy(db, tenant, event.dedupe_key).await?;
            return Ok(Ingested {
                stored: Stored::Duplicate(first),
                queued: vec![],
                skipped: vec![],
                resumed: vec![],
                echo: false,
            });
        }
        return Err(e.into());
    }
    let mut out = Ingested {
        stored: Stored::New(event_id.clone()),
        queued: vec![],
        skipped: vec![],
        resumed: vec![],
        echo: is_echo,
    };
    if !is_echo {
        for r in runs {
            let earlier = match (&r.record_id, r.once_per_record) {
                (Some(record), true) => run::Entity::find()
                    .filter(run::Column::TenantId.eq(tenant.to_string()))
                    .filter(run::Column::WorkflowId.eq(r.workflow_id.to_string()))
                    .filter(run::Column::RecordId.eq(record.clone()))
                    .filter(run::Column::Status.ne(RunStatus::Skipped.as_str()))
                    .one(&txn)
                    .await?
                    .map(|m| m.id),
                _ => None,
            };
            let (status, error) = match &earlier {
                Some(first) => (
                    RunStatus::Skipped,
                    Some(format!(
                        "record {} was already processed by run {first}",
                        r.record_id.as_deref().unwrap_or("")
                    )),
                ),
                None => (RunStatus::Queued, None),
            };
            run::Entity::insert(run::ActiveModel {
                id: Set(r.id.to_string()),
                tenant_id: Set(tenant.to_string()),
                workflow_id: Set(r.workflow_id.to_string()),
                version: Set(r.version),
                event_id: Set(event_id.to_string()),
                record_id: Set(r.record_id.clone()),
                status: Set(status.as_str().to_owned()),
                step_index: Set(0),
                step_attempt: Set(0),
                context: Set(r.context),
                wait_key: Set(None),
                wake_at: Set(None),
                // The caller enqueues at once; the sweeper nudges only later.
                lease_until: Set(Some(now + chrono::Duration::seconds(60))),
                error: Set(error),
                replays: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
                finished_at: Set(status.is_final().then_some(now)),
            })
            .exec_without_returning(&txn)
            .await?;
            if status == RunStatus::Skipped {
                out.skipped.push(r.id);
            } else {
                out.queued.push(r.id);
            }
        }
    }
    if let Some(key) = correlation_key {
        out.resumed = resume_waiting_on(&txn, tenant, key, now).await?;
    }
    txn.commit().await?;
    // A run that parked while this transaction ran saw no event and was
    // not seen waiting here: look again now that the event is committed.
    if let Some(key) = correlation_key {
        let late = resume_waiting_on(&db.conn, tenant, key, now).await?;
        out.resumed.extend(late);
    }
    Ok(out)
}

/// Moves a tenant's runs waiting on `key` back to the queue; returns them.
async fn resume_waiting_on(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Vec<RunId>, StoreError> {
    let waiting: Vec<String> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::WaitKey.eq(key))
        .filter(run::Column::Status.eq(RunStatus::Waiting.as_str()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut resumed = Vec::new();
    for id in waiting {
        if resume_waiting(conn, &id, now).await? {
            resumed.push(id.parse().map_err(|_| StoreError::Corrupt("runs.id"))?);
        }
    }
    Ok(resumed)
}

pub(crate) async fn resume_waiting(
    conn: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let r = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
        .col_expr(
            run::Column::WakeAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            run::Column::LeaseUntil,
            Expr::value(Some(now + chrono::Duration::seconds(60))),
        )
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::Id.eq(id))
        .filter(run::Column::Status.eq(RunStatus::Waiting.as_str()))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// The event with this correlation key, if it arrived: its dedupe key and
/// its (sealed) payload.
pub async fn correlated_event(
    db: &Db,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(inbound_event::Entity::find()
        .filter(inbound_event::Column::TenantId.eq(tenant.to_string()))
        .filter(inbound_event::Column::CorrelationKey.eq(key))
        .order_by_asc(inbound_event::Column::ReceivedAt)
        .one(&db.conn)
        .await?
        .map(|m| (m.dedupe_key, m.payload)))
}

/// Takes a queued run whose time has come; `None` if another worker has
/// it, it is not due, or it has ended.
pub async fn claim(
    db: &Db,
    tenant: &TenantId,
    id: &RunId,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Claimed>, StoreError> {
    // One statement: the compare-and-set and the row it leaves.
    let Some(m) = run::Entity::update_many()
        .col_expr(
            run::Column::Status,
            Expr::value(RunStatus::Running.as_str()),
        )
        .col_expr(run::Column::LeaseUntil, Expr::value(Some(lease_until)))
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::Id.eq(id.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
        .filter(
            Condition::any()
                .add(run::Column::WakeAt.is_null())
                .add(run::Column::WakeAt.lte(now)),
        )
        .exec_with_returning(&db.conn)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let tenant = m
        .tenant_id
        .parse()
        .map_err(|_| StoreError::Corrupt("runs.tenant_id"))?;
    let context = m.context.clone();
    Ok(Some(Claimed {
        run: m.try_into()?,
        context,
        tenant,
    }))
}

/// What a worker leaves a run as.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Still running; progress saved (lease extended).
    Progress {
        /// Lease until.
        lease_until: DateTime<Utc>,
    },
    /// Try the step again at `at`.
    RetryAt(DateTime<Utc>),
    /// Park until the event with `key` arrives or `deadline` passes.
    Wait {
        /// Correlation key.
        key: String,
        /// Deadline.
        deadline: DateTime<Utc>,
    },
    /// Ended.
    Finished(RunStatus),
}

/// Where a run stands: the step it is at and that step's attempts so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Step position.
    pub step_index: i32,
    /// Attempts of that step so far.
    pub step_attempt: i32,
}

/// Saves the step attempt that just ended (if any) together with a held
/// run's position, context and state, in one transaction. Only the holder
/// (status `running`) can change the run; returns false when the run was
/// taken from it (the attempt is recorded all the same: it happened).
#[allow(clippy::too_many_arguments)] // one row's columns, named at the call
pub async fn save(
    db: &Db,
    tenant: &TenantId,
    id: &RunId,
    attempt: Option<&StepRecord>,
    at: Position,
    context: &str,
    outcome: Outcome,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut q = run::Entity::update_many()
        .col_expr(run::Column::StepIndex, Expr::value(at.step_index))
        .col_expr(run::Column::StepAttempt, Expr::value(at.step_attempt))
        .col_expr(run::Column::Context, Expr::value(context.to_owned()))
        .col_expr(run::Column::Error, Expr::value(error.map(str::to_owned)))
        .col_expr(run::Column::UpdatedAt, Expr::value(now));
    let none = Option::<DateTime<Utc>>::None;
    q = match outcome {
        Outcome::Progress { lease_until } => q
            .col_expr(run::Column::LeaseUntil, Expr::value(Some(lease_until)))
            .col_expr(run::Column::WaitKey, Expr::value(Option::<String>::None)),
        Outcome::RetryAt(at) => q
            .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
            .col_expr(run::Column::WakeAt, Expr::value(Some(at)))
            .col_expr(run::Column::LeaseUntil, Expr::value(none)),
        Outcome::Wait { key, deadline } => q
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::Waiting.as_str()),
            )
            .col_expr(run::Column::WaitKey, Expr::value(Some(key)))
            .col_expr(run::Column::WakeAt, Expr::value(Some(deadline)))
            .col_expr(run::Column::LeaseUntil, Expr::value(none)),
        Outcome::Finished(status) => q
            .col_expr(run::Column::Status, Expr::value(status.as_str()))
            .col_expr(run::Column::WakeAt, Expr::value(none))
            .col_expr(run::Column::LeaseUntil, Expr::value(none))
            .col_expr(run::Column::WaitKey, Expr::value(Option::<String>::None))
            .col_expr(run::Column::FinishedAt, Expr::value(Some(now))),
    };
    let q = q
        .filter(run::Column::Id.eq(id.to_string()))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Running.as_str()));
    let Some(s) = attempt else {
        return Ok(q.exec(&db.conn).await?.rows_affected == 1);
    };
    let txn = db.conn.begin().await?;
    run_step::Entity::insert(step_row(tenant, id, s))
        .exec_without_returning(&txn)
        .await?;
    let held = q.exec(&txn).await?.rows_affected == 1;
    txn.commit().await?;
    Ok(held)
}

/// Moves a waiting run back to the queue if its event has arrived by now
/// (the event may have come between the check and the park).
pub async fn resume_if_waiting(
    db: &Db,
    id: &RunId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    resume_waiting(&db.conn, id.as_str(), now).await
}

/// One step attempt, redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// Step position.
    pub step_index: i32,
    /// Step key.
    pub step_key: String,
    /// action, validate, map, wait, condition.
    pub kind: String,
    /// 1, 2, 3…
    pub attempt: i32,
    /// ok, failed, retrying, waiting, timed_out, stopped, skipped.
    pub status: String,
    /// Redacted input (JSON).
    pub input: serde_json::Value,
    /// Redacted output (JSON).
    pub output: serde_json::Value,
    /// HTTP exchanges (JSON array).
    pub http_calls: serde_json::Value,
    /// What went wrong.
    pub error: Option<String>,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Ended.
    pub finished_at: DateTime<Utc>,
}

fn step_row(tenant: &TenantId, run: &RunId, s: &StepRecord) -> run_step::ActiveModel {
    run_step::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        run_id: Set(run.to_string()),
        step_index: Set(s.step_index),
        step_key: Set(s.step_key.clone()),
        kind: Set(s.kind.clone()),
        attempt: Set(s.attempt),
        status: Set(s.status.clone()),
        input: Set(s.input.to_string()),
        output: Set(s.output.to_string()),
        http_calls: Set(s.http_calls.to_string()),
        error: Set(s.error.clone()),
        started_at: Set(s.started_at),
        finished_at: Set(s.finished_at),
        ..Default::default()
    }
}

/// A run's step attempts, in order.
pub async fn steps(db: &Db, tenant: &TenantId, run: &RunId) -> Result<Vec<StepRecord>, StoreError> {
    run_step::Entity::find()
        .filter(run_step::Column::TenantId.eq(tenant.to_string()))
        .filter(run_step::Column::RunId.eq(run.to_string()))
        .order_by_asc(run_step::Column::Id)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| {
            let json =
                |s: &str| serde_json::from_str(s).map_err(|_| StoreError::Corrupt("run_steps"));
            Ok(StepRecord {
                step_index: m.step_index,
                step_key: m.step_key,
                kind: m.kind,
                attempt: m.attempt,
                status: m.status,
                input: json(&m.input)?,
                output: json(&m.output)?,
                http_calls: json(&m.http_calls)?,
                error: m.error,
                started_at: m.started_at,
                finished_at: m.finished_at,
            })
        })
        .collect()
}

/// One run of the tenant.
pub async fn get(db: &Db, tenant: &TenantId, id: &RunId) -> Result<Run, StoreError> {
    run::Entity::find_by_id(id.to_string())
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .one(&db.conn)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// Filters for the run list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One workflow.
    pub workflow: Option<WorkflowId>,
    /// One status.
    pub status: Option<RunStatus>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// One record id.
    pub record: Option<String>,
}

/// A keyset cursor: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Its creation time.
    pub created_at: DateTime<Utc>,
    /// Its id.
    pub id: RunId,
}

impl Cursor {
    /// As it travels in a URL: `<micros>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id)
    }

    /// From a URL; `None` when malformed.
    pub fn decode(s: &str) -> Option<Self> {
        let (t, id) = s.split_once('.')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(t.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// A page of runs, newest first, after `cursor`; the next cursor if more.
pub async fn list(
    db: &Db,
    tenant: &TenantId,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<(Vec<Run>, Option<Cursor>), StoreError> {
    let mut q = run::Entity::find().filter(run::Column::TenantId.eq(tenant.to_string()));
    if let Some(w) = &filter.workflow {
        q = q.filter(run::Column::WorkflowId.eq(w.to_string()));
    }
    if let Some(s) = filter.status {
        q = q.filter(run::Column::Status.eq(s.as_str()));
    }
    if let Some(from) = filter.from {
        q = q.filter(run::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(run::Column::CreatedAt.lt(to));
    }
    if let Some(r) = &filter.record {
        q = q.filter(run::Column::RecordId.eq(r.clone()));
    }
    if let Some(c) = after {
        q = q.filter(
            Condition::any()
                .add(run::Column::CreatedAt.lt(c.created_at))
                .add(
                    Condition::all()
                        .add(run::Column::CreatedAt.eq(c.created_at))
                        .add(run::Column::Id.lt(c.id.to_string())),
                ),
        );
    }
    let rows = q
        .order_by(run::Column::CreatedAt, Order::Desc)
        .order_by(run::Column::Id, Order::Desc)
        .limit(limit + 1)
        .all(&db.conn)
        .await?;
    let more = rows.len() as u64 > limit;
    let runs: Vec<Run> = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(Run::try_from)
        .collect::<Result<_, _>>()?;
    let next = if more {
        runs.last().map(|r| Cursor {
            created_at: r.created_at,
            id: r.id.clone(),
        })
    } else {
        None
    };
    Ok((runs, next))
}

/// Puts a failed or dead-lettered run back in the queue at the step that
/// failed; the steps that succeeded are not repeated. Returns false when the
/// run is not in a replayable state.
pub async fn replay(
    db: &Db,
    tenant: &TenantId,
    id: &RunId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let none = Option::<DateTime<Utc>>::None;
    let r = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
        .col_expr(run::Column::StepAttempt, Expr::value(0))
        .col_expr(run::Column::WakeAt, Expr::value(none))
        .col_expr(
            run::Column::LeaseUntil,
            Expr::value(Some(now + chrono::Duration::seconds(60))),
        )
        .col_expr(run::Column::FinishedAt, Expr::value(none))
        .col_expr(run::Column::Replays, Expr::col(run::Column::Replays).add(1))
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::Id.eq(id.to_string()))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::Status.is_in([RunStatus::Failed.as_str(), RunStatus::Dead.as_str()]))
        .exec(&db.conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Dead-lettered runs of the tenant created in `[from, to)`.
pub async fn dead_between(
    db: &Db,
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RunId>, StoreError> {
    let ids: Vec<String> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Dead.as_str()))
        .filter(run::Column::CreatedAt.gte(from))
        .filter(run::Column::CreatedAt.lt(to))
        .order_by_asc(run::Column::CreatedAt)
        .into_tuple()
        .all(&db.conn)
        .await?;
    ids.into_iter()
        .map(|i| i.parse().map_err(|_| StoreError::Corrupt("runs.id")))
        .collect()
}

/// What the sweeper found to do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Runs to enqueue: due, never picked up, or taken back from a worker
    /// that died.
    pub enqueue: Vec<(TenantId, RunId)>,
    /// Runs whose worker's lease lapsed.
    pub orphaned: Vec<(TenantId, RunId)>,
    /// Waiting runs whose deadline passed.
    pub timed_out: Vec<(TenantId, RunId)>,
}

/// Remembers a property value Ferry wrote, so the change event it causes
/// is recognised as an echo until `expires_at`.
pub async fn guard_echo(
    db: &Db,
    tenant: &TenantId,
    record: &str,
    property: &str,
    value: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    echo_guard::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        record_id: Set(record.to_owned()),
        property: Set(property.to_owned()),
        value: Set(value.to_owned()),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(&db.conn)
    .await?;
    Ok(())
}

/// A client contact's verification, for staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// The CRM record id.
    pub record_id: String,
    /// The contact's name.
    pub name: String,
    /// pass, fail or pending.
    pub outcome: String,
    /// When the outcome was known.
    pub checked_at: Option<DateTime<Utc>>,
    /// The provider's check id.
    pub check_ref: Option<String>,
    /// The run that produced it.
    pub run_id: RunId,
}

/// Records (or updates) a contact's verification.
pub async fn upsert_verification(
    db: &Db,
    tenant: &TenantId,
    v: &Verification,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let existing = verification::Entity::find()
        .filter(verification::Column::TenantId.eq(tenant.to_string()))
        .filter(verification::Column::RecordId.eq(v.record_id.clone()))
        .one(&db.conn)
        .await?;
    match existing {
        Some(m) => {
            let mut a: verification::ActiveModel = m.into();
            if !v.name.is_empty() {
                a.name = Set(v.name.clone());
            }
            a.outcome = Set(v.outcome.clone());
            a.check_ref = Set(v.check_ref.clone());
            a.checked_at = Set(v.checked_at);
            a.run_id = Set(v.run_id.to_string());
            a.updated_at = Set(now);
            a.update(&db.conn).await?;
        }
        None => {
            verification::ActiveModel {
                id: Set(format!("ver_{}", hex::encode(rand::random::<[u8; 16]>()))),
                tenant_id: Set(tenant.to_string()),
                record_id: Set(v.record_id.clone()),
                name: Set(v.name.clone()),
                outcome: Set(v.outcome.clone()),
                check_ref: Set(v.check_ref.clone()),
                checked_at: Set(v.checked_at),
                run_id: Set(v.run_id.to_string()),
                updated_at: Set(now),
            }
            .insert(&db.conn)
            .await?;
        }
    }
    Ok(())
}

/// The tenant's verifications matching `search` (name, record id or check
/// reference) and `outcome`, by name.
pub async fn verifications(
    db: &Db,
    tenant: &TenantId,
    search: Option<&str>,
    outcome: Option<&str>,
    limit: u64,
) -> Result<Vec<Verification>, StoreError> {
    let mut q =
        verification::Entity::find().filter(verification::Column::TenantId.eq(tenant.to_string()));
    if let Some(o) = outcome {
        q = q.filter(verification::Column::Outcome.eq(o));
    }
    if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(
            Condition::any()
                .add(verification::Column::Name.contains(s))
                .add(verification::Column::RecordId.eq(s))
                .add(verification::Column::CheckRef.eq(s)),
        );
    }
    q.order_by_asc(verification::Column::Name)
        .limit(limit)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| {
            Ok(Verification {
                record_id: m.record_id,
                name: m.name,
                outcome: m.outcome,
                checked_at: m.checked_at,
                check_ref: m.check_ref,
                run_id: m
                    .run_id
                    .parse()
                    .map_err(|_| StoreError::Corrupt("verifications.run_id"))?,
            })
        })
        .collect()
}

/// How many runs the tenant has per status (for the overview).
pub async fn count_by_status(
    db: &Db,
    tenant: &TenantId,
) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = run::Entity::find()
        .select_only()
        .column(run::Column::Status)
        .column_as(run::Column::Id.count(), "n")
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .group_by(run::Column::Status)
        .into_tuple()
        .all(&db.conn)
        .await?;
    rows.into_iter()
        .map(|(s, n)| {
            Ok((
                RunStatus::parse(&s).ok_or(StoreError::Corrupt("runs.status"))?,
                u64::try_from(n).unwrap_or(0),
            ))
        })
        .collect()
}

/// Inserts `n` finished runs of `workflow` (benchmarks: a large history
/// for the runs page), one second apart ending at `end`; returns how many.
pub async fn insert_history(
    db: &Db,
    tenant: &TenantId,
    workflow: &WorkflowId,
    n: usize,
    end: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(1000);
        let rows = (done..done + chunk).map(|i| {
            let at = end - chrono::Duration::seconds(i64::try_from(n - i).unwrap_or(0));
            let status = match i % 20 {
                0 => RunStatus::Failed,
                1 => RunStatus::Dead,
                2 => RunStatus::Skipped,
                _ => RunStatus::Succeeded,
            };
            run::ActiveModel {
                id: Set(RunId::generate().to_string()),
                tenant_id: Set(tenant.to_string()),
                workflow_id: Set(workflow.to_string()),
                version: Set(1),
                event_id: Set(EventId::generate().to_string()),
                record_id: Set(Some((i % 50_000).to_string())),
                status: Set(status.as_str().to_owned()),
                step_index: Set(1),
                step_attempt: Set(0),
                context: Set(String::new()),
                wait_key: Set(None),
                wake_at: Set(None),
                lease_until: Set(None),
                error: Set(None),
                replays: Set(0),
                created_at: Set(at),
                updated_at: Set(at),
                finished_at: Set(Some(at)),
            }
        });
        let txn = db.conn.begin().await?;
        run::Entity::insert_many(rows).exec(&txn).await?;
        txn.commit().await?;
        done += chunk;
    }
    Ok(done)
}
