//! Password hashing: argon2id with OWASP ASVS 5.0 parameters (m = 19456 KiB,
//! t = 2, p = 1), stored as PHC strings.
//!
//! Every hash works through 19 MiB of memory. Run on tokio's blocking pool,
//! each hash allocated that afresh on whichever of up to 512 threads took it,
//! and glibc's per-thread malloc arenas kept the freed blocks: five failed
//! logins left the process ~80 MB larger for good. So hashing runs on a small
//! fixed pool of dedicated threads, one per core, each reusing one memory
//! block while work keeps coming and handing it back to the operating system
//! once it has been idle for [`LINGER`]. A semaphore of the same size admits
//! the work: a burst of logins queues in arrival order (a request that gives
//! up leaves the queue without costing a hash) instead of failing or
//! allocating, and the async workers never stall on a hash.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// ASVS 5.0's argon2id settings; existing hashes carry them in their PHC
/// string, so changing these affects new hashes only.
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// How long a hashing thread keeps its memory block after its last hash, so
/// a burst reuses one block per thread instead of mapping one per login.
const LINGER: Duration = Duration::from_secs(2);

/// Blocks (1 KiB each) reserved per thread: 33 MiB of address space, of which
/// a hash touches its 19 MiB. glibc's malloc gives a request this large (over
/// 32 MiB, the ceiling of its dynamic mmap threshold) a mapping of its own and
/// unmaps it when it is freed, so releasing the block really returns the
/// memory; a 19 MiB request would, after the first, come from a malloc arena
/// that keeps it. Untouched pages of the reservation cost no memory.
const RESERVED_BLOCKS: usize = 33 * 1024;

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A hashing thread's working memory: held while work keeps coming.
#[derive(Default)]
struct Memory(Option<Vec<Block>>);

impl Memory {
    /// At least `count` blocks (argon2 overwrites them; their content does
    /// not matter).
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        let blocks = self
            .0
            .get_or_insert_with(|| Vec::with_capacity(RESERVED_BLOCKS.max(count)));
        if blocks.len() < count {
            blocks.resize(count, Block::new());
        }
        blocks
    }

    fn release(&mut self) {
        self.0 = None;
    }

    fn is_held(&self) -> bool {
        self.0.is_some()
    }
}

/// The hashing threads and the semaphore that admits work to them.
struct Pool {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    size: usize,
}

/// Hashes running right now, and the most ever at once (tests check the
/// bound).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

static POOL: LazyLock<Pool> = LazyLock::new(Pool::start);

impl Pool {
    fn start() -> Self {
        let wanted = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut size = 0;
        for i in 0..wanted {
            let queue = queue.clone();
            match std::thread::Builder::new()
                .name(format!("ferry-hash-{i}"))
                .spawn(move || work(&queue))
            {
                Ok(_) => size += 1,
                Err(e) => tracing::error!(error = %e, "could not start a password-hashing thread"),
            }
        }
        let permits = Arc::new(Semaphore::new(size));
        if size == 0 {
            // Every caller gets an error rather than waiting forever.
            permits.close();
        }
        Self {
            jobs,
            permits,
            size,
        }
    }

    /// Runs `task` on a hashing thread once one is free; waits in line.
    async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        // The permit travels with the job and is released when the thread is
        // done with it, so no more jobs than threads are ever handed over.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| anyhow::anyhow!("no password-hashing threads are running"))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |memory: &mut Memory| {
                let running = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                PEAK.fetch_max(running, Ordering::SeqCst);
                let result = task(memory);
                RUNNING.fetch_sub(1, Ordering::SeqCst);
                drop(permit);
                let _ = reply.send(result);
            }))
            .map_err(|_| anyhow::anyhow!("the password-hashing threads stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("a password-hashing thread failed"))
    }
}

/// A hashing thread: takes jobs in turn, keeps its memory between jobs that
/// follow each other within [`LINGER`], frees it after.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory = Memory::default();
    loop {
        let next = {
            let queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if memory.is_held() {
                queue.recv_timeout(LINGER)
            } else {
                queue.recv().map_err(|_| RecvTimeoutError::Disconnected)
            }
        };
        match next {
            Ok(job) => {
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    job(&mut memory);
                }));
                if done.is_err() {
                    tracing::error!("a password-hashing job panicked");
                    memory.release();
                }
            }
            Err(RecvTimeoutError::Timeout) => memory.release(),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn params() -> Result<Params, argon2::Error> {
    Params::new(M_COST_KIB, T_COST, P_COST, None)
}

fn hash_with(memory: &mut Memory, password: &[u8]) -> anyhow::Result<String> {
    let salt_bytes: [u8; SALT_LEN] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let params = params().map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password,
            &salt_bytes,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the hash with the algorithm, version, parameters and salt the
/// PHC string names, and compares in constant time.
fn verify_with(memory: &mut Memory, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, memory.blocks(blocks))
        .is_err()
    {
        return false;
    }
    out.ct_eq(expected.as_bytes()).into()
}

/// Hashes a new password (argon2id PHC string).
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    POOL.run(move |memory| hash_with(memory, password.as_bytes()))
        .await?
}

/// Checks a password against a stored hash; with no hash, spends the same
/// time (a hash with the same parameters) and answers false, so a login
/// takes as long whether or not the account exists.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    let answer = POOL
        .run(move |memory| match stored {
            Some(phc) => verify_with(memory, password.as_bytes(), &phc),
            None => {
                let _ = hash_with(memory, password.as_bytes());
                false
            }
        })
        .await;
    answer.unwrap_or_else(|e| {
        tracing::error!(error = %e, "password check failed");
        false
    })
}

/// Hashing threads in this process (one per core).
pub fn hashing_threads() -> usize {
    POOL.size
}

/// The most hashes that ever ran at once in this process.
pub fn peak_concurrent_hashes() -> usize {
    PEAK.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn hashes_with_asvs_parameters_and_verifies() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
        assert!(!verify_password("anything".into(), Some("not a hash".into())).await);
    }

    #[tokio::test]
    async fn agrees_with_the_argon2_crates_own_hasher_both_ways() {
        // Hashes stored before the pool existed were made by the crate's
        // PasswordHasher; they must keep verifying, and ours must verify there.
        let context = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let old = context
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("an older password".into(), Some(old.clone())).await);
        assert!(!verify_password("an older passwore".into(), Some(old)).await);

        let new = hash_password("a newer password".into()).await.unwrap();
        let parsed = PasswordHash::new(&new).unwrap();
        assert!(
            context
                .verify_password(b"a newer password", &parsed)
                .is_ok()
        );
        assert_eq!(parsed.hash.map(|h| h.len()), Some(OUTPUT_LEN));
    }

    #[tokio::test]
    async fn other_parameters_named_in_the_string_are_honoured() {
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
        let phc = small.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(phc.contains("m=64,t=1,p=1"), "{phc}");
        assert!(verify_password("pw".into(), Some(phc.clone())).await);
        let tampered = phc.replace("t=1", "t=2");
        assert!(!verify_password("pw".into(), Some(tampered)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_burst_queues_and_never_hashes_more_at_once_than_there_are_threads() {
        let tasks: Vec<_> = (0..4 * hashing_threads() + 2)
            .map(|i| tokio::spawn(hash_password(format!("burst password {i}"))))
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert!(hashing_threads() >= 1);
        assert!(peak_concurrent_hashes() <= hashing_threads());
    }
}
