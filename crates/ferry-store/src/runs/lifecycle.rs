//! A run's life: claimed by a worker, saved after each step attempt,
//! resumed, replayed from its failed step.

use super::*;

/// Takes a queued run whose time has come; `None` if another worker has
/// it, it is not due, or it has ended.
pub async fn claim(
    db: &Db,
    tenant: &TenantId,
    id: &RunId,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Claimed>, StoreError> {
    claim_in(&db.conn, tenant, id, now, lease_until).await
}

/// [`claim`] within `c` (a batch's transaction).
pub(super) async fn claim_in(
    c: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &RunId,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Claimed>, StoreError> {
    // One statement: the compare-and-set and the row it leaves.
    let Some(m) = claim_update(now, lease_until)
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::Id.eq(id.to_string()))
        .exec_with_returning(c)
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
        gate: None,
    }))
}

/// Takes the queued, due runs the caller filters to (the compare-and-set
/// of every claim).
pub(super) fn claim_update(
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> sea_orm::UpdateMany<run::Entity> {
    run::Entity::update_many()
        .col_expr(
            run::Column::Status,
            Expr::value(RunStatus::Running.as_str()),
        )
        .col_expr(run::Column::LeaseUntil, Expr::value(Some(lease_until)))
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
        .filter(
            Condition::any()
                .add(run::Column::WakeAt.is_null())
                .add(run::Column::WakeAt.lte(now)),
        )
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
    let write = Write::Save(Box::new(RunSave {
        tenant: tenant.clone(),
        id: id.clone(),
        attempt: attempt.cloned(),
        at,
        context: context.to_owned(),
        outcome,
        error: error.map(str::to_owned),
    }));
    match write_one(db, write, now).await? {
        Written::Saved(held) => Ok(held),
        _ => Err(StoreError::Corrupt("save: not a save's result")),
    }
}

/// Saves a step attempt and its run within `c` (a transaction shared with
/// the rest of its batch); false when the run was taken from its worker.
pub(super) async fn save_run(
    c: &impl ConnectionTrait,
    s: &RunSave,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if let Some(a) = &s.attempt {
        run_step::Entity::insert(step_row(&s.tenant, &s.id, a))
            .exec_without_returning(c)
            .await?;
    }
    Ok(save_update(s, now).exec(c).await?.rows_affected == 1)
}

/// The update that leaves a held run as `s` says.
pub(super) fn save_update(s: &RunSave, now: DateTime<Utc>) -> sea_orm::UpdateMany<run::Entity> {
    let mut q = run::Entity::update_many()
        .col_expr(run::Column::StepIndex, Expr::value(s.at.step_index))
        .col_expr(run::Column::StepAttempt, Expr::value(s.at.step_attempt))
        .col_expr(run::Column::Context, Expr::value(s.context.clone()))
        .col_expr(run::Column::Error, Expr::value(s.error.clone()))
        .col_expr(run::Column::UpdatedAt, Expr::value(now));
    let none = Option::<DateTime<Utc>>::None;
    q = match s.outcome.clone() {
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
    q.filter(run::Column::Id.eq(s.id.to_string()))
        .filter(run::Column::TenantId.eq(s.tenant.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
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

pub(super) fn step_row(tenant: &TenantId, run: &RunId, s: &StepRecord) -> run_step::ActiveModel {
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

/// Puts a failed or dead-lettered run back in the queue at the step that
/// failed; the steps that succeeded are not repeated. Returns false when the
/// run is not in a replayable state.
pub async fn replay(
    db: &impl crate::Exec,
    tenant: &TenantId,
    id: &RunId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    replay_from(db, tenant, id, false, now).await
}

/// Like [`replay`]; with `from_start` the run begins again at its first
/// step (the source record is fetched again; writes keep their
/// idempotency keys, so none is made twice).
pub async fn replay_from(
    db: &impl crate::Exec,
    tenant: &TenantId,
    id: &RunId,
    from_start: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let none = Option::<DateTime<Utc>>::None;
    let mut update = run::Entity::update_many();
    if from_start {
        update = update.col_expr(run::Column::StepIndex, Expr::value(0));
    }
    let r = update
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
        // A purged run has no data left to run on.
        .filter(run::Column::PurgedAt.is_null())
        .exec(db.conn())
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

/// How many runs of the workflow are held (created while it was paused).
pub async fn count_held(
    db: &impl crate::Exec,
    tenant: &TenantId,
    workflow: &WorkflowId,
) -> Result<u64, StoreError> {
    Ok(run::Entity::find()
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::WorkflowId.eq(workflow.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Held.as_str()))
        .count(db.conn())
        .await?)
}

/// Moves the workflow's held runs to the queue on `version` (the one
/// published now: "as if their events had just come"), or, with `discard`,
/// ends them skipped with that reason. Returns the runs it changed (to
/// enqueue). Callers lock the workflow row first in the same transaction.
pub async fn settle_held(
    db: &impl crate::Exec,
    tenant: &TenantId,
    workflow: &WorkflowId,
    discard: bool,
    version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<Vec<RunId>, StoreError> {
    let mut update = run::Entity::update_many()
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::WorkflowId.eq(workflow.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Held.as_str()));
    update = if discard {
        update
            .col_expr(
                run::Column::Status,
                Expr::value(RunStatus::Skipped.as_str()),
            )
            .col_expr(
                run::Column::Error,
                Expr::value(Some(
                    "discarded by an admin: the event came while the workflow was paused",
                )),
            )
            .col_expr(run::Column::FinishedAt, Expr::value(Some(now)))
    } else {
        let update = update
            .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
            .col_expr(
                run::Column::LeaseUntil,
                Expr::value(Some(now + chrono::Duration::seconds(60))),
            );
        match version {
            Some(v) => update.col_expr(run::Column::Version, Expr::value(v)),
            None => update,
        }
    };
    update
        .exec_with_returning(db.conn())
        .await?
        .into_iter()
        .map(|m| m.id.parse().map_err(|_| StoreError::Corrupt("runs.id")))
        .collect()
}

/// Whether a run's workflow may run it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Published and not paused (or unpublished: runs under way finish).
    Open,
    /// Paused: the run waits, held.
    Paused,
    /// Deleted: the run ends.
    Deleted,
}

/// The gate of `workflow` for its runs.
pub async fn gate(db: &Db, tenant: &TenantId, workflow: &WorkflowId) -> Result<Gate, StoreError> {
    type Stamps = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let row: Option<Stamps> = workflow::Entity::find_by_id(workflow.to_string())
        .select_only()
        .column(workflow::Column::PausedAt)
        .column(workflow::Column::DeletedAt)
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .into_tuple()
        .one(&db.conn)
        .await?;
    Ok(row.map_or(Gate::Deleted, |(paused, deleted)| Gate::of(paused, deleted)))
}

impl Gate {
    /// The gate of a workflow paused and deleted when these say.
    pub(super) fn of(paused: Option<DateTime<Utc>>, deleted: Option<DateTime<Utc>>) -> Self {
        match (paused, deleted) {
            (_, Some(_)) => Self::Deleted,
            (Some(_), None) => Self::Paused,
            (None, None) => Self::Open,
        }
    }
}

/// Puts a claimed run of a paused workflow back, held.
pub async fn hold(
    db: &Db,
    tenant: &TenantId,
    id: &RunId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(RunStatus::Held.as_str()))
        .col_expr(
            run::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::Id.eq(id.to_string()))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Gives a run its record's name (sealed) and the keyed hashes it can be
/// found by, unless it has them already.
pub async fn set_record_label(
    db: &impl crate::Exec,
    tenant: &TenantId,
    id: &RunId,
    sealed_label: &str,
    search_keys: &[String],
) -> Result<(), StoreError> {
    run::Entity::update_many()
        .col_expr(
            run::Column::RecordLabel,
            Expr::value(Some(sealed_label.to_owned())),
        )
        .col_expr(
            run::Column::SearchKeys,
            Expr::value(Some(format!(" {} ", search_keys.join(" ")))),
        )
        .filter(run::Column::Id.eq(id.to_string()))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::RecordLabel.is_null())
        .exec(db.conn())
        .await?;
    Ok(())
}
