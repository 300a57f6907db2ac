//! The group-commit writer: accepted events, run claims and run saves from
//! every request and worker of this process wait in one queue; a writer
//! task takes everything waiting (up to a batch's size), writes it in one
//! transaction, and answers each caller once that transaction committed.
//! Nothing is answered before it is saved: an event gets its 2xx only
//! after its batch's commit, and a failed commit fails every caller of the
//! batch. While a batch commits the next one gathers, so under load the
//! batches grow by themselves and at rest a write waits for nobody.

use ferry_core::Clock;
use ferry_store::runs::{Write, Written, write_batch};
use ferry_store::{Db, StoreError};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<Result<Written, StoreError>>;
type Queue = mpsc::Sender<(Write, Reply)>;

/// Writes the most in one transaction.
pub const BATCH_MAX: usize = 256;

/// Writes waiting at most (callers beyond it wait to be queued: the
/// backpressure that keeps a flood of requests from filling memory).
const QUEUE_MAX: usize = 4096;

/// Writer tasks on PostgreSQL: a commit there is a network round trip and
/// a flush of the server's log, so several batches are in flight at once
/// (their row locks are taken in one order, so they cannot deadlock).
/// SQLite has one writer at a time: one task.
const POSTGRES_WRITERS: usize = 4;

/// Hands writes to the writer tasks. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    db: Db,
    clock: Arc<dyn Clock>,
    queues: Arc<OnceLock<Vec<Queue>>>,
    turn: Arc<std::sync::atomic::AtomicUsize>,
}

impl Writer {
    /// A writer over `db`. Its task starts now on the current Tokio
    /// runtime when there is one — the process's main runtime, which
    /// outlives the web server's workers, so a graceful shutdown still
    /// writes what those workers accepted — and otherwise with the first
    /// write.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        let writer = Self {
            db,
            clock,
            queues: Arc::new(OnceLock::new()),
            turn: Arc::default(),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            writer.queue();
        }
        writer
    }

    fn queue(&self) -> &Queue {
        let queues = self.queues.get_or_init(|| {
            let n = match self.db.backend() {
                ferry_store::Backend::Postgres => POSTGRES_WRITERS,
                ferry_store::Backend::Sqlite => 1,
            };
            (0..n)
                .map(|_| {
                    let (tx, rx) = mpsc::channel(QUEUE_MAX);
                    tokio::spawn(run(self.db.clone(), self.clock.clone(), rx));
                    tx
                })
                .collect()
        });
        let i = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &queues[i % queues.len()]
    }

    /// Writes `w` with whatever else is waiting; answers once it is
    /// committed (or failed).
    pub async fn write(&self, w: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue().send((w, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::unavailable("the writer stopped")
}

/// The writer task: a batch at a time for as long as the process runs.
async fn run(db: Db, clock: Arc<dyn Clock>, mut rx: mpsc::Receiver<(Write, Reply)>) {
    let mut writes = Vec::with_capacity(BATCH_MAX);
    let mut replies: Vec<Reply> = Vec::with_capacity(BATCH_MAX);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some((w, r)) = next.take() {
            // An event or a claim whose caller went away (its request was
            // cancelled: no 2xx was given, nobody will run the claim) is
            // not written; a save is (the attempt happened).
            if !(r.is_closed() && matches!(w, Write::Event(_) | Write::Claim(_))) {
                writes.push(w);
                replies.push(r);
            }
            if writes.len() < BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        if writes.is_empty() {
            continue;
        }
        let done = write_batch(&db, &writes, clock.now()).await;
        for (reply, result) in replies.drain(..).zip(done) {
            // A caller that went away meanwhile still had its write saved;
            // nobody is left to tell.
            let _ = reply.send(result);
        }
        writes.clear();
    }
}
