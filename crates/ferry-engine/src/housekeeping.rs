//! Periodic clean-up: sessions past their timeouts, old login attempts,
//! metric rollups past their retention (minutes 48 h, hours 90 days), and
//! once an hour run payloads past each tenant's retention period.

use crate::mail::CancelSignal;
use chrono::{Duration, Timelike};
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
    let hour = now
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);
    if ferry_store::alerts::claim_tick(db, "retention-purge", hour).await? {
        purge_expired(db, now).await?;
    }
    Ok((sessions, attempts))
}

/// Purges the payloads of runs that ended longer ago than their tenant's
/// retention period; each purge is an entry in the tenant's audit chain.
/// Returns the runs purged.
pub async fn purge_expired(db: &Db, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
    let mut total = 0;
    for (tenant, days) in ferry_store::tenants::retention_periods(db).await? {
        let before = now - Duration::days(i64::from(days));
        let purged = ferry_store::runs::purge_payloads(db, &tenant, before, now).await?;
        if purged.runs + purged.events == 0 {
            continue;
        }
        total += purged.runs;
        ferry_store::audit::record(
            db,
            ferry_store::audit::NewAuditEvent {
                tenant_id: Some(&tenant),
                actor_user_id: None,
                actor_label: "Ferry retention",
                action: ferry_core::AuditAction::PayloadsPurged,
                target_kind: "runs",
                target_id: "",
                details: serde_json::json!({
                    "retention_days": days,
                    "ended_before": before.to_rfc3339(),
                    "runs": purged.runs,
                    "steps": purged.steps,
                    "events": purged.events,
                }),
                client_ip: "-",
            },
            now,
        )
        .await?;
        tracing::info!(tenant_id = %tenant, runs = purged.runs, events = purged.events, "run payloads purged past retention");
    }
    Ok(total)
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
