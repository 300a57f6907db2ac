//! Keeping the audit trail whole: step attempts sealed into their tenant's
//! chain within seconds, and every chain verified periodically; a broken
//! chain is logged and emailed to every platform operator (once per break).

use crate::mail::{CancelSignal, Mailer, OutgoingEmail};
use ferry_core::{Clock, EmailAddress};
use ferry_store::{Db, audit, users};
use std::collections::HashSet;
use std::sync::Arc;

/// Seals every step attempt not yet in a chain; returns how many.
pub async fn seal_all(db: &Db, clock: &dyn Clock) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = audit::seal_steps(db, 500, clock.now()).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Verifies every chain; returns the broken ones.
pub async fn verify_all(db: &Db) -> anyhow::Result<Vec<audit::ChainReport>> {
    let mut broken = Vec::new();
    for chain in audit::chains(db).await? {
        let report = audit::verify_chain(db, &chain).await?;
        if report.broken.is_some() {
            broken.push(report);
        }
    }
    Ok(broken)
}

/// Tells the operators about broken chains they have not been told about
/// (`told` remembers, per process, which breaks were reported).
pub async fn alert_operators(
    db: &Db,
    mailer: &Mailer,
    broken: &[audit::ChainReport],
    told: &mut HashSet<(String, i64)>,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    for report in broken {
        let Some(b) = &report.broken else { continue };
        if !told.insert((report.chain.clone(), b.seq)) {
            continue;
        }
        tracing::error!(chain = %report.chain, entry = b.seq, reason = %b.reason, "audit chain verification failed");
        let chain = if report.chain == audit::PLATFORM_CHAIN {
            "the platform audit log".to_owned()
        } else {
            format!("the audit log of tenant {}", report.chain)
        };
        for op in users::operators(db).await? {
            let Ok(to) = EmailAddress::parse("email", &op.email) else {
                continue;
            };
            mailer
                .send(OutgoingEmail {
                    tenant: None,
                    to,
                    subject: "Ferry: an audit chain failed verification".into(),
                    body: format!(
                        "Ferry's periodic check found {chain} broken at entry {}: {}.\n\n\
                         Entries may have been changed, removed or inserted outside Ferry. \
                         Run `ferry admin verify-audit` for the details, and treat the database \
                         as possibly tampered with until you know why.\n",
                        b.seq, b.reason
                    ),
                    html: None,
                })
                .await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Seals step attempts every two seconds and verifies every chain every
/// `verify_every`, until `stop` flips.
pub async fn run(
    db: Db,
    clock: Arc<dyn Clock>,
    mailer: Mailer,
    verify_every: std::time::Duration,
    mut stop: CancelSignal,
) {
    let mut told = HashSet::new();
    let mut last_verify: Option<std::time::Instant> = None;
    loop {
        if let Err(error) = seal_all(&db, clock.as_ref()).await {
            tracing::error!(error = %format!("{error:#}"), "sealing step attempts into the audit chain failed");
        }
        if last_verify.is_none_or(|at| at.elapsed() >= verify_every) {
            last_verify = Some(std::time::Instant::now());
            match verify_all(&db).await {
                Ok(broken) => {
                    if let Err(error) = alert_operators(&db, &mailer, &broken, &mut told).await {
                        tracing::error!(error = %format!("{error:#}"), "could not alert operators");
                    }
                }
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "verifying the audit chains failed")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
