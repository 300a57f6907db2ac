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
    // In one order whatever the arrival (events by tenant and key, then
    // runs by id), so that two processes' batches take their row locks in
    // the same order and cannot deadlock on PostgreSQL.
    let mut order: Vec<usize> = (0..writes.len()).collect();
    order.sort_by(|a, b| lock_key(&writes[*a]).cmp(&lock_key(&writes[*b])));
    let mut done: Vec<Option<Written>> = vec![None; writes.len()];
    for i in order {
        match apply(txn.conn(), &writes[i], now).await {
            Ok(d) => done[i] = Some(d),
            Err(e) => {
                drop(txn); // rolls back
                return Together::WriteFailed(e);
            }
        }
    }
    let done: Vec<Written> = done.into_iter().flatten().collect();
    match txn.commit().await {
        Ok(()) => Together::Committed(done),
        Err(StoreError::Db(e)) => Together::CommitFailed(e),
        Err(e) => Together::CommitFailed(DbErr::Custom(e.to_string())),
    }
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
