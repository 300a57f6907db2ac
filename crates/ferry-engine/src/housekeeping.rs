//! Periodic clean-up: sessions past their timeouts, old login attempts and
//! metric rollups past their retention (minutes 48 h, hours 90 days).

use crate::mail::CancelSignal;
use chrono::Duration;
use ferry_core::Clock;
use ferry_store::{Db, login_attempts, sessions};
use std::sync::Arc;

/// Session lifetimes enforced on every request and swept here.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Ends a session after this long without a request.
    pub idle: Duration,
    /// Ends a session this long after login, active or not.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
        }
    }
}

/// One sweep; returns (sessions removed, login attempts removed).
pub async fn sweep(
    db: &Db,
    clock: &dyn Clock,
    policy: SessionPolicy,
) -> anyhow::Result<(u64, u64)> {
    let now = clock.now();
    let sessions = sessions::delete_expired(db, now, policy.idle, policy.absolute).await?;
    let attempts = login_attempts::prune(db, now - Duration::days(30)).await?;
    let rollups = ferry_store::metrics::purge(db, now).await?;
    if rollups > 0 {
        tracing::info!(rollups, "expired metric rollups removed");
    }
    Ok((sessions, attempts))
}

/// Sweeps every minute until `stop` flips.
pub async fn run(db: Db, clock: Arc<dyn Clock>, policy: SessionPolicy, mut stop: CancelSignal) {
    loop {
        match sweep(&db, clock.as_ref(), policy).await {
            Ok((s, a)) if s + a > 0 => {
                tracing::info!(sessions = s, login_attempts = a, "housekeeping swept")
            }
            Ok(_) => {}
            Err(error) => tracing::error!(error = %format!("{error:#}"), "housekeeping failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
