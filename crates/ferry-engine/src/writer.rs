//! The group-commit writer: accepted events and run saves from every
//! request and worker of this process wait in one queue; a writer task
//! takes everything waiting (up to a batch's size), writes it in one
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

/// Writes the most in one transaction.
pub const BATCH_MAX: usize = 256;

/// Hands writes to the writer task (started on first use). Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    db: Db,
    clock: Arc<dyn Clock>,
    queue: Arc<OnceLock<mpsc::UnboundedSender<(Write, Reply)>>>,
}

impl Writer {
    /// A writer over `db` (its task starts with the first write).
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            queue: Arc::new(OnceLock::new()),
        }
    }

    /// Writes `w` with whatever else is waiting; answers once it is
    /// committed (or failed).
    pub async fn write(&self, w: Write) -> Result<Written, StoreError> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(self.db.clone(), self.clock.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        queue.send((w, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::unavailable("the writer stopped")
}

/// The writer task: a batch at a time until every sender is gone (so a
/// graceful shutdown writes what was accepted before it answers).
async fn run(db: Db, clock: Arc<dyn Clock>, mut rx: mpsc::UnboundedReceiver<(Write, Reply)>) {
    let mut writes = Vec::with_capacity(BATCH_MAX);
    let mut replies = Vec::with_capacity(BATCH_MAX);
    while let Some((w, r)) = rx.recv().await {
        writes.push(w);
        replies.push(r);
        while writes.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok((w, r)) => {
                    writes.push(w);
                    replies.push(r);
                }
                Err(_) => break,
            }
        }
        let done = write_batch(&db, &writes, clock.now()).await;
        for (reply, result) in replies.drain(..).zip(done) {
            // A caller that went away (its request was cancelled) still
            // had its write saved; nobody is left to tell.
            let _ = reply.send(result);
        }
        writes.clear();
    }
}
