//! Login throttling that slows guessers without locking anyone out.
//!
//! - Per (account, client) pair: the first [`FREE_FAILURES`] failures cost
//!   nothing; after that each further attempt must wait 2^(n-2) seconds after
//!   the n-th failure (2 s, 4 s, 8 s, …) up to [`MAX_DELAY`]. A success (or a
//!   password reset) from that client clears its count; failures are
//!   remembered for [`MEMORY`].
//!   Failures from one client never delay another, so a stranger cannot
//!   lock an account: a correct password from a client with no recent
//!   failures on the account always gets in.
//! - Per client address (credential stuffing: many accounts from one place):
//!   once [`ADDRESS_MAX_ACCOUNTS`] distinct accounts have failed from an
//!   address within [`ADDRESS_WINDOW`], that address is refused for accounts
//!   it has not signed in to before, until the count falls. The limit counts
//!   accounts, not attempts, and is high enough for an office of 50 people
//!   behind one NAT who all mistype.
//!
//! A client is its IPv4 address, or its IPv6 /64 (one subscriber's network:
//! an attacker there has 2^64 addresses to rotate through).
//!
//! Within one process the attempts of one pair run one at a time
//! ([`LoginLocks`]), so a burst of parallel guesses cannot all pass the check
//! before the first failure is recorded.

use chrono::{DateTime, Duration, Utc};
use ferry_store::{Db, StoreError, login_attempts};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OwnedMutexGuard;

/// Failures of a pair that cost no delay.
pub const FREE_FAILURES: usize = 3;
/// The longest a pair is made to wait between attempts.
pub const MAX_DELAY: Duration = Duration::minutes(15);
/// How long a pair's failures count (a success clears them sooner). Longer
/// than the climb to [`MAX_DELAY`], so a patient guesser stays at the cap.
pub const MEMORY: Duration = Duration::hours(24);
/// Distinct accounts failing from one address that make it a stuffer.
pub const ADDRESS_MAX_ACCOUNTS: usize = 100;
/// The window for [`ADDRESS_MAX_ACCOUNTS`].
pub const ADDRESS_WINDOW: Duration = Duration::minutes(15);
/// A pair with a success this recent is someone who signs in from there:
/// the address limit does not apply to it (attempts older than this are
/// pruned anyway).
pub const KNOWN_PAIR: Duration = Duration::days(30);

/// Failures fetched per pair: enough to reach [`MAX_DELAY`].
const FAILURES_NEEDED: u64 = 16;

/// Why an attempt must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// This client failed for this account too often.
    Pair,
    /// Too many accounts failed from this address.
    Address,
}

/// The answer for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Allowed,
    /// Refuse (429) until `until`.
    Wait {
        /// When the client may try again.
        until: DateTime<Utc>,
        /// Which limit.
        reason: Reason,
    },
}

/// The key a client is throttled by: an IPv4 address, or an IPv6 /64.
pub fn client_key(client_ip: &str) -> String {
    match client_ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => client_ip.to_owned(),
    }
}

/// The wait after a pair's `failures`-th failure.
pub fn delay_after(failures: usize) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::zero();
    }
    let exponent = u32::try_from(failures - 2).unwrap_or(u32::MAX);
    let seconds = 1i64.checked_shl(exponent).filter(|s| *s > 0);
    seconds.map_or(MAX_DELAY, |s| Duration::seconds(s).min(MAX_DELAY))
}

/// Whether `account` may be tried from `client` (a [`client_key`]) at `now`.
pub async fn check(
    db: &Db,
    account: &str,
    client: &str,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    let pair =
        login_attempts::pair_history(db, account, client, now - MEMORY, FAILURES_NEEDED).await?;
    if let Some(last) = pair.failures.first() {
        let until = *last + delay_after(pair.failures.len());
        if until > now {
            return Ok(Verdict::Wait {
                until,
                reason: Reason::Pair,
            });
        }
    }
    if pair.last_success.is_some_and(|t| t > now - KNOWN_PAIR) {
        return Ok(Verdict::Allowed);
    }
    let accounts = login_attempts::accounts_failed_from(db, client, now - ADDRESS_WINDOW).await?;
    if let Some(excess) = accounts.len().checked_sub(ADDRESS_MAX_ACCOUNTS) {
        // Accounts age out oldest first; the address is let back in when
        // one fewer than the limit remain.
        let until = accounts.get(excess).map_or(now, |t| *t + ADDRESS_WINDOW);
        if until > now {
            return Ok(Verdict::Wait {
                until,
                reason: Reason::Address,
            });
        }
    }
    Ok(Verdict::Allowed)
}

/// "8 seconds", "1 minute", "15 minutes": a wait, rounded up.
pub fn describe_wait(wait: Duration) -> String {
    let seconds = wait.num_seconds().max(0) + i64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    if seconds < 60 {
        let s = if seconds == 1 { "" } else { "s" };
        format!("{seconds} second{s}")
    } else {
        let minutes = (seconds + 59) / 60;
        let s = if minutes == 1 { "" } else { "s" };
        format!("{minutes} minute{s}")
    }
}

/// One login attempt at a time per (account, client) pair in this process.
#[derive(Clone, Default)]
pub struct LoginLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

/// Held while an attempt is checked, verified and recorded.
pub struct PairGuard {
    locks: LoginLocks,
    key: String,
    _held: OwnedMutexGuard<()>,
}

impl LoginLocks {
    /// Waits for the pair's turn.
    pub async fn lock(&self, account: &str, client: &str) -> PairGuard {
        let key = format!("{client} {account}");
        let lock = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        PairGuard {
            locks: self.clone(),
            key,
            _held: lock.lock_owned().await,
        }
    }
}

impl Drop for PairGuard {
    fn drop(&mut self) {
        let mut map = self.locks.0.lock().unwrap_or_else(PoisonError::into_inner);
        // The map's reference and ours: nobody else is waiting, so the
        // entry goes (the map holds only pairs in flight).
        if map
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_after_three_failures_up_to_fifteen_minutes() {
        let secs = |n| delay_after(n).num_seconds();
        assert_eq!((secs(0), secs(1), secs(2)), (0, 0, 0));
        assert_eq!((secs(3), secs(4), secs(5), secs(6)), (2, 4, 8, 16));
        assert_eq!(secs(11), 512);
        assert_eq!(secs(12), 900);
        assert_eq!(secs(70), 900);
        assert_eq!(secs(usize::MAX), 900);
    }

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_networks() {
        assert_eq!(client_key("203.0.113.5"), "203.0.113.5");
        assert_eq!(client_key("::ffff:203.0.113.5"), "203.0.113.5");
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(client_key("-"), "-");
    }

    #[test]
    fn waits_are_described_rounded_up() {
        assert_eq!(describe_wait(Duration::milliseconds(300)), "1 second");
        assert_eq!(describe_wait(Duration::milliseconds(1500)), "2 seconds");
        assert_eq!(describe_wait(Duration::seconds(59)), "59 seconds");
        assert_eq!(describe_wait(Duration::seconds(60)), "1 minute");
        assert_eq!(describe_wait(Duration::seconds(61)), "2 minutes");
        assert_eq!(describe_wait(MAX_DELAY), "15 minutes");
    }

    #[tokio::test]
    async fn a_pair_waits_for_its_turn_and_the_map_empties() {
        let locks = LoginLocks::default();
        let first = locks.lock("a@x.test", "1.2.3.4").await;
        let other = locks.lock("b@x.test", "1.2.3.4").await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { drop(locks.lock("a@x.test", "1.2.3.4").await) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        drop(other);
        assert!(locks.0.lock().unwrap().is_empty());
    }
}
