//! Per-connection rate limits that match the remote platform. A sliding log,
//! not fixed windows: HubSpot counts a rolling 10 s, and fixed windows would
//! let twice the limit through across a boundary. With Redis the log is
//! shared by every Ferry process (a Lua script keeps check-and-record atomic,
//! on Redis's clock); without it, by the tasks of this process.

use crate::ConnectorError;
use ferry_core::catalog::RateLimit;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Slack added to every window: a request is counted remotely a little after
/// it is counted here.
const MARGIN: Duration = Duration::from_millis(250);

const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < max then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now + 1
";

/// Waits for permission to make a call. Cheap to clone.
#[derive(Clone)]
pub enum RateLimiter {
    /// This process only.
    Memory(Arc<Mutex<HashMap<String, VecDeque<Instant>>>>),
    /// Shared through Redis.
    Redis {
        /// The server.
        client: redis::Client,
        /// A connection, opened on first use.
        conn: Arc<OnceCell<redis::aio::MultiplexedConnection>>,
        /// Key prefix (tests give each app its own).
        prefix: String,
    },
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "RateLimiter::Memory",
            Self::Redis { .. } => "RateLimiter::Redis",
        })
    }
}

impl RateLimiter {
    /// A limiter for this process.
    pub fn memory() -> Self {
        Self::Memory(Arc::new(Mutex::new(HashMap::new())))
    }

    /// A limiter shared through the Redis at `url` (connected lazily).
    pub fn redis_url(url: &str, prefix: &str) -> Result<Self, ConnectorError> {
        let client = redis::Client::open(url)
            .map_err(|_| ConnectorError::Config("the Redis URL is not valid".into()))?;
        Ok(Self::redis(client, prefix))
    }

    /// A limiter shared through Redis.
    pub fn redis(client: redis::Client, prefix: &str) -> Self {
        Self::Redis {
            client,
            conn: Arc::new(OnceCell::new()),
            prefix: prefix.to_owned(),
        }
    }

    /// Waits (up to `max_wait`) until a call under `key` fits `limit`, then
    /// records it.
    pub async fn acquire(
        &self,
        key: &str,
        limit: RateLimit,
        max_wait: Duration,
    ) -> Result<(), ConnectorError> {
        let window = Duration::from_millis(limit.per_ms) + MARGIN;
        let deadline = Instant::now() + max_wait;
        loop {
            let wait = match self {
                Self::Memory(logs) => {
                    let mut logs = logs.lock().unwrap_or_else(PoisonError::into_inner);
                    let log = logs.entry(key.to_owned()).or_default();
                    let now = Instant::now();
                    while log
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= window)
                    {
                        log.pop_front();
                    }
                    if log.len() < limit.max as usize {
                        log.push_back(now);
                        return Ok(());
                    }
                    log.front().map_or(Duration::from_millis(10), |t| {
                        window.saturating_sub(now.duration_since(*t))
                    })
                }
                Self::Redis {
                    client,
                    conn,
                    prefix,
                } => {
                    let mut c = conn
                        .get_or_try_init(|| client.get_multiplexed_async_connection())
                        .await
                        .map_err(|e| ConnectorError::Network(format!("rate limiter (Redis): {e}")))?
                        .clone();
                    let wait_ms: i64 = redis::Script::new(SCRIPT)
                        .key(format!("{prefix}ratelimit:{key}"))
                        .arg(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
                        .arg(limit.max)
                        .arg(format!("{:016x}", rand::random::<u64>()))
                        .invoke_async(&mut c)
                        .await
                        .map_err(|e| {
                            ConnectorError::Network(format!("rate limiter (Redis): {e}"))
                        })?;
                    if wait_ms <= 0 {
                        return Ok(());
                    }
                    Duration::from_millis(u64::try_from(wait_ms).unwrap_or(10))
                }
            };
            if Instant::now() + wait > deadline {
                return Err(ConnectorError::RateLimited {
                    retry_after: Some(wait),
                });
            }
            tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_more_than_the_limit_in_any_window() {
        let limiter = RateLimiter::memory();
        let limit = RateLimit {
            max: 5,
            per_ms: 200,
        };
        let started = Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            limiter
                .acquire("k", limit, Duration::from_secs(5))
                .await
                .unwrap();
            times.push(started.elapsed());
        }
        // Any 6 consecutive calls span at least one window.
        for pair in times.windows(6) {
            assert!(pair[5] - pair[0] >= Duration::from_millis(200), "{times:?}");
        }
        // Other keys are independent.
        limiter
            .acquire("other", limit, Duration::from_millis(1))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_wait_longer_than_allowed_is_a_rate_limit_error() {
        let limiter = RateLimiter::memory();
        let limit = RateLimit {
            max: 1,
            per_ms: 10_000,
        };
        limiter
            .acquire("k", limit, Duration::from_millis(1))
            .await
            .unwrap();
        let err = limiter
            .acquire("k", limit, Duration::from_millis(1))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectorError::RateLimited { .. }));
    }
}
