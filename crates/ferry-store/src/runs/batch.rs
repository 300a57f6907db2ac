//! Group commit: the writes of many requests and runs — accepted events
//! with the runs they start, step attempts with their runs' new state — in
//! one transaction, so that the cost of a commit (and on SQLite, of taking
//! the single write lock) is shared by everything that arrived meanwhile.

use super::*;
use crate::Exec;

/// An accepted event to store, with the runs it starts (owned: it waits
/// in the writer's queue).
#[derive(Debug, Clone)]
pub struct EventToStore {
    /// The tenant.
    pub tenant: TenantId,
    /// The connection it came through.
    pub connection_id: ConnectionId,
    /// `hubspot`, `webhook`, ...
    pub source: String,
    /// The event's type.
    pub event_type: String,
    /// The source's event id, or a hash of the payload.
    pub dedupe_key: String,
    /// The sealed payload.
    pub payload: String,
    /// The key waiting runs meet it on.
    pub correlation_key: Option<String>,
    /// Ferry's own write coming back (see [`is_echo`]): stored, starts
    /// nothing.
    pub echo: bool,
    /// The runs it starts.
    pub runs: Vec<NewRun>,
}

impl EventToStore {
    /// An accepted event (its payload already sealed) with its runs.
    pub fn new(
        tenant: &TenantId,
        event: &NewEvent<'_>,
        correlation_key: Option<&str>,
        echo: bool,
        runs: Vec<NewRun>,
    ) -> Self {
        Self {
            tenant: tenant.clone(),
            connection_id: event.connection_id.clone(),
            source: event.source.to_owned(),
            event_type: event.event_type.to_owned(),
            dedupe_key: event.dedupe_key.to_owned(),
            payload: event.payload.to_owned(),
            correlation_key: correlation_key.map(str::to_owned),
            echo,
            runs,
        }
    }
}

/// A step attempt that ended (if any) and its run's new state.
#[derive(Debug, Clone)]
pub struct RunSave {
    /// The tenant.
    pub tenant: TenantId,
    /// The run.
    pub id: RunId,
    /// The attempt, redacted.
    pub attempt: Option<StepRecord>,
    /// Where the run is.
    pub at: Position,
    /// Its sealed context.
    pub context: String,
    /// What it becomes.
    pub outcome: Outcome,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A worker taking a queued run (see [`claim`]).
#[derive(Debug, Clone)]
pub struct RunClaim {
    /// The tenant.
    pub tenant: TenantId,
    /// The run.
    pub id: RunId,
    /// Held until then unless saved again.
    pub lease_until: DateTime<Utc>,
}

/// One write of a batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// Store an accepted event with its runs.
    Event(Box<EventToStore>),
    /// Save a step attempt and its run.
    Save(Box<RunSave>),
    /// Take a queued run.
    Claim(RunClaim),
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum Written {
    /// The event's outcome.
    Event(Ingested),
    /// Whether the worker still held the run.
    Saved(bool),
    /// The run taken, or none (another worker has it, it is not due, or
    /// it ended).
    Claimed(Option<Box<Claimed>>),
}

async fn apply(
    c: &impl ConnectionTrait,
    w: &Write,
    now: DateTime<Utc>,
) -> Result<Written, StoreError> {
    match w {
        Write::Event(e) => Ok(Written::Event(store_event(c, e, now).await?)),
        Write::Save(s) => Ok(Written::Saved(save_run(c, s, now).await?)),
        Write::Claim(r) => Ok(Written::Claimed(
            claim_in(c, &r.tenant, &r.id, now, r.lease_until)
                .await?
                .map(Box::new),
        )),
    }
}

/// One write alone (in a transaction of its own).
pub(super) async fn write_one(
    db: &Db,
    write: Write,
    now: DateTime<Utc>,
) -> Result<Written, StoreError> {
    write_batch(db, std::slice::from_ref(&write), now)
        .await
        .pop()
        .unwrap_or(Err(StoreError::Corrupt("a write without a result")))
}

/// Writes `writes` in one transaction and gives each its result, in order.
/// When one write fails (the transaction is then lost), the writes are
/// made again one by one so that only the failing one fails; when the
/// commit fails, every write fails (nothing of the batch was saved).
pub async fn write_batch(
    db: &Db,
    writes: &[Write],
    now: DateTime<Utc>,
) -> Vec<Result<Written, StoreError>> {
    let mut done = match together(db, writes, now).await {
        Together::Committed(done) => done.into_iter().map(Ok).collect(),
        Together::CommitFailed(e) => {
            let why = e.to_string();
            tracing::error!(writes = writes.len(), error = %why, "a batch's commit failed: each of its writes fails");
            return writes
                .iter()
                .map(|_| {
                    Err(StoreError::Db(DbErr::Custom(format!(
                        "commit failed: {why}"
                    ))))
                })
                .collect();
        }
        Together::WriteFailed(e) if writes.len() == 1 => vec![Err(e)],
        Together::WriteFailed(_) => {
            tracing::warn!(
                writes = writes.len(),
                "a write of a batch failed: writing them one by one"
            );
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                out.push(alone(db, w, now).await);
            }
            out
        }
    };
    // A run that parked while the batch ran saw no event and was not seen
    // waiting by it: look again now that the events are committed.
    for (w, r) in writes.iter().zip(done.iter_mut()) {
        if let (Write::Event(e), Ok(Written::Event(i))) = (w, r)
            && let Some(key) = &e.correlation_key
            && matches!(i.stored, Stored::New(_))
        {
            match resume_waiting_on(&db.conn, &e.tenant, key, now).await {
                Ok(late) => i.resumed.extend(late),
                // The sweeper resumes it when its deadline passes at the
                // latest; the event itself is saved.
                Err(err) => {
                    tracing::warn!(tenant_id = %e.tenant, error = %err, "looking for runs that parked during the batch failed");
                }
            }
        }
    }
    done
}

enum Together {
    Committed(Vec<Written>),
    CommitFailed(DbErr),
    WriteFailed(StoreError),
}

async fn together(db: &Db, writes: &[Write], now: DateTime<Utc>) -> Together {
    // On SQLite an immediate transaction: the write lock first.
    let txn = match db.begin().await {
        Ok(t) => t,
        Err(StoreError::Db(e)) => return Together::CommitFailed(e),
        Err(e) => return Together::CommitFailed(DbErr::Custom(e.to_string())),
    };
    let done = match bulk(txn.conn(), writes, now).await {
        Ok(done) => done,
        Err(e) => {
            drop(txn); // rolls back
            return Together::WriteFailed(e);
        }
    };
    match txn.commit().await {
        Ok(()) => Together::Committed(done),
        Err(StoreError::Db(e)) => Together::CommitFailed(e),
        Err(e) => Together::CommitFailed(DbErr::Custom(e.to_string())),
    }
}

/// A batch's writes with as few statements as their kinds allow: the
/// events in one insert (when a key was already stored or repeats, which
/// copy was kept is read back in one query), their runs in one insert, the
/// claims in one update (and their workflows' gates in one query), the
/// step attempts in one insert; each run's new state is its own update.
/// Taken in one order whatever the arrival (events by tenant and key, then
/// runs by id), so that two processes' batches take their row locks in
/// the same order and cannot deadlock on PostgreSQL. Results in the order of `writes`.
async fn bulk(
    c: &impl ConnectionTrait,
    writes: &[Write],
    now: DateTime<Utc>,
) -> Result<Vec<Written>, StoreError> {
    let mut done: Vec<Option<Written>> = vec![None; writes.len()];
    let mut order: Vec<usize> = (0..writes.len()).collect();
    order.sort_by(|a, b| lock_key(&writes[*a]).cmp(&lock_key(&writes[*b])));
    let mut events = Vec::new();
    let mut claims = Vec::new();
    let mut saves = Vec::new();
    for i in order {
        match &writes[i] {
            Write::Event(e) => events.push((i, e.as_ref())),
            Write::Claim(r) => claims.push((i, r)),
            Write::Save(s) => saves.push((i, s.as_ref())),
        }
    }
    // Events that resume waits, or start runs once per record, need the
    // rows before them in the batch: one at a time.
    let simple = events
        .iter()
        .all(|(_, e)| e.correlation_key.is_none() && e.runs.iter().all(|r| !r.once_per_record));
    if simple {
        store_events(c, &events, now, &mut done).await?;
    } else {
        for (i, e) in &events {
            done[*i] = Some(Written::Event(store_event(c, e, now).await?));
        }
    }
    claim_runs(c, &claims, now, &mut done).await?;
    let steps: Vec<run_step::ActiveModel> = saves
        .iter()
        .filter_map(|(_, s)| s.attempt.as_ref().map(|a| step_row(&s.tenant, &s.id, a)))
        .collect();
    if !steps.is_empty() {
        run_step::Entity::insert_many(steps)
            .exec_without_returning(c)
            .await?;
    }
    for (i, s) in &saves {
        let held = save_update(s, now).exec(c).await?.rows_affected == 1;
        done[*i] = Some(Written::Saved(held));
    }
    done.into_iter()
        .map(|d| d.ok_or(StoreError::Corrupt("batch: a write without a result")))
        .collect()
}

/// Which copy of each key is stored: ours (new) or an earlier one. Both
/// columns of the unique index, so the lookup uses it.
async fn kept_copies(
    c: &impl ConnectionTrait,
    events: &[(usize, &EventToStore)],
) -> Result<std::collections::HashMap<(String, String), String>, StoreError> {
    let mut keys: Vec<&str> = events.iter().map(|(_, e)| e.dedupe_key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut tenants: Vec<String> = events.iter().map(|(_, e)| e.tenant.to_string()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let kept: Vec<(String, String, String)> = inbound_event::Entity::find()
        .select_only()
        .column(inbound_event::Column::Id)
        .column(inbound_event::Column::TenantId)
        .column(inbound_event::Column::DedupeKey)
        .filter(inbound_event::Column::TenantId.is_in(tenants))
        .filter(inbound_event::Column::DedupeKey.is_in(keys))
        .into_tuple()
        .all(c)
        .await?;
    Ok(kept
        .into_iter()
        .map(|(id, tenant, key)| ((tenant, key), id))
        .collect())
}

/// Events without waits or once-per-record runs, in one statement (two
/// when a key was stored before or repeats within the batch) and
/// one more for their runs.
async fn store_events(
    c: &impl ConnectionTrait,
    events: &[(usize, &EventToStore)],
    now: DateTime<Utc>,
    done: &mut [Option<Written>],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<EventId> = events.iter().map(|_| EventId::generate()).collect();
    let rows = events
        .iter()
        .zip(&ids)
        .map(|((_, e), id)| event_row(e, id, now));
    let inserted: u64 = match inbound_event::Entity::insert_many(rows)
        .on_conflict(crate::inbound::repeat_inserts_nothing())
        .exec_without_returning(c)
        .await
    {
        Ok(n) => n,
        Err(DbErr::RecordNotInserted) => 0,
        Err(e) => return Err(e.into()),
    };
    let kept = if inserted == events.len() as u64 {
        // Every copy was new (so every key distinct): each kept copy is
        // ours, and there is nothing to read back.
        events
            .iter()
            .zip(&ids)
            .map(|((_, e), id)| ((e.tenant.to_string(), e.dedupe_key.clone()), id.to_string()))
            .collect()
    } else {
        kept_copies(c, events).await?
    };
    let mut runs = Vec::new();
    for ((i, e), id) in events.iter().zip(&ids) {
        let first = kept
            .get(&(e.tenant.to_string(), e.dedupe_key.clone()))
            .ok_or(StoreError::NotFound)?;
        let mut out = Ingested {
            stored: Stored::New(id.clone()),
            queued: vec![],
            skipped: vec![],
            held: vec![],
            resumed: vec![],
            echo: e.echo,
        };
        if *first != id.to_string() {
            out.stored = Stored::Duplicate(
                first
                    .parse()
                    .map_err(|_| StoreError::Corrupt("inbound_events.id"))?,
            );
            out.echo = false;
        } else if !e.echo {
            for r in &e.runs {
                let status = if r.held {
                    out.held.push(r.id.clone());
                    RunStatus::Held
                } else {
                    out.queued.push(r.id.clone());
                    RunStatus::Queued
                };
                runs.push(run_row(&e.tenant, id, r, status, None, now));
            }
        }
        done[*i] = Some(Written::Event(out));
    }
    if !runs.is_empty() {
        run::Entity::insert_many(runs)
            .exec_without_returning(c)
            .await?;
    }
    Ok(())
}

/// The batch's claims in one update, and their workflows' gates in one
/// query.
async fn claim_runs(
    c: &impl ConnectionTrait,
    claims: &[(usize, &RunClaim)],
    now: DateTime<Utc>,
    done: &mut [Option<Written>],
) -> Result<(), StoreError> {
    let Some(lease) = claims.iter().map(|(_, r)| r.lease_until).max() else {
        return Ok(());
    };
    let ids: Vec<String> = claims.iter().map(|(_, r)| r.id.to_string()).collect();
    let mut tenants: Vec<String> = claims.iter().map(|(_, r)| r.tenant.to_string()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let taken = claim_update(now, lease)
        .filter(run::Column::Id.is_in(ids))
        .filter(run::Column::TenantId.is_in(tenants))
        .exec_with_returning(c)
        .await?;
    let mut flows: Vec<String> = taken.iter().map(|m| m.workflow_id.clone()).collect();
    flows.sort_unstable();
    flows.dedup();
    let gates: std::collections::HashMap<String, Gate> = if flows.is_empty() {
        Default::default()
    } else {
        type Stamps = (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
        let rows: Vec<Stamps> = workflow::Entity::find()
            .select_only()
            .column(workflow::Column::Id)
            .column(workflow::Column::PausedAt)
            .column(workflow::Column::DeletedAt)
            .filter(workflow::Column::Id.is_in(flows))
            .into_tuple()
            .all(c)
            .await?;
        rows.into_iter()
            .map(|(id, paused, deleted)| (id, Gate::of(paused, deleted)))
            .collect()
    };
    let mut taken: std::collections::HashMap<String, run::Model> =
        taken.into_iter().map(|m| (m.id.clone(), m)).collect();
    for (i, r) in claims {
        let claimed = match taken.remove(&r.id.to_string()) {
            Some(m) if m.tenant_id == r.tenant.to_string() => {
                let context = m.context.clone();
                let gate = gates.get(&m.workflow_id).copied().unwrap_or(Gate::Deleted);
                Some(Box::new(Claimed {
                    run: m.try_into()?,
                    context,
                    tenant: r.tenant.clone(),
                    gate: Some(gate),
                }))
            }
            _ => None,
        };
        done[*i] = Some(Written::Claimed(claimed));
    }
    Ok(())
}

/// The order a batch's writes take their locks in.
fn lock_key(w: &Write) -> (u8, &str, &str) {
    match w {
        Write::Event(e) => (0, e.tenant.as_str(), e.dedupe_key.as_str()),
        Write::Claim(c) => (1, c.id.as_str(), ""),
        Write::Save(s) => (1, s.id.as_str(), ""),
    }
}

async fn alone(db: &Db, w: &Write, now: DateTime<Utc>) -> Result<Written, StoreError> {
    let txn = db.begin().await?;
    let done = apply(txn.conn(), w, now).await?;
    txn.commit().await?;
    Ok(done)
}
