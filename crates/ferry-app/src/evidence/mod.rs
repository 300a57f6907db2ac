//! Compliance evidence: the audit log (filtered, exported, verified), a
//! record's trail, each integration's generated documentation and
//! inventory row, its 90-day reviews, and the evidence pack an auditor is
//! handed. Admins only: it is the firm's own account of its integrations.

mod docs;
mod pack;
mod reviews;
mod trail;

pub use docs::{Documentation, InventoryRow, Profile, inventory_csv, markdown};
pub use pack::{FORMAT, PackReport, verify_pack};
pub use reviews::{Answers, Measured, ReviewDue, ReviewForm};
pub use trail::{Trail, TrailItem};

use crate::audit::{self as audit_entry, Target};
use crate::{Error, Member, Operator, Parts};
use ferry_core::AuditAction;
use ferry_store::audit::{self, AuditEvent, ChainReport};
use serde_json::json;
use std::sync::Arc;

/// Compliance evidence.
#[derive(Clone)]
pub struct Evidence(pub(crate) Arc<Parts>);

/// The most rows one audit export holds.
pub const EXPORT_LIMIT: u64 = 100_000;

impl Evidence {
    /// The tenant's audit entries matching `filter`, newest first.
    pub async fn audit(
        &self,
        admin: &Member,
        filter: &audit::Filter,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, Error> {
        admin.require_admin()?;
        Ok(audit::search(&self.0.db, &admin.tenant_id, filter, limit).await?)
    }

    /// The entries matching `filter` as CSV (the export is itself audited).
    pub async fn audit_csv(&self, admin: &Member, filter: &audit::Filter) -> Result<String, Error> {
        admin.require_admin()?;
        let rows = audit::search(&self.0.db, &admin.tenant_id, filter, EXPORT_LIMIT).await?;
        let csv = audit_rows_csv(&rows)?;
        let now = self.0.clock.now();
        audit_entry::record(
            &self.0.db,
            &admin.actor(),
            AuditAction::AuditExported,
            Target("audit", "csv"),
            json!({ "rows": rows.len() }),
            now,
        )
        .await?;
        Ok(csv)
    }

    /// Verifies the tenant's chain.
    pub async fn verify(&self, admin: &Member) -> Result<ChainReport, Error> {
        admin.require_admin()?;
        Ok(audit::verify_chain(&self.0.db, &admin.tenant_id.to_string()).await?)
    }

    /// Verifies the platform's chain.
    pub async fn verify_platform(&self, _operator: &Operator) -> Result<ChainReport, Error> {
        Ok(audit::verify_chain(&self.0.db, audit::PLATFORM_CHAIN).await?)
    }
}

/// Audit entries as CSV: one row each, with the chain position and hash.
pub fn audit_rows_csv(rows: &[AuditEvent]) -> Result<String, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::Internal(anyhow::Error::new(e));
    w.write_record([
        "chain_seq",
        "at",
        "actor",
        "action",
        "what",
        "target_kind",
        "target_id",
        "workflow_id",
        "record_id",
        "details",
        "client_ip",
        "hash",
    ])
    .map_err(io)?;
    for e in rows {
        let what = AuditAction::parse(&e.action)
            .map_or_else(|| e.action.clone(), |a| a.label().to_owned());
        w.write_record([
            e.chain_seq
                .map(|s| s.to_string())
                .unwrap_or_default()
                .as_str(),
            e.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_str(),
            &sanitize(&e.actor_label),
            &e.action,
            &what,
            &e.target_kind,
            &e.target_id,
            e.workflow_id.as_deref().unwrap_or(""),
            &sanitize(e.record_id.as_deref().unwrap_or("")),
            &sanitize(&e.details),
            &e.client_ip,
            e.hash.as_deref().unwrap_or(""),
        ])
        .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(anyhow::Error::new(e)))
}

/// A cell a spreadsheet would run as a formula is prefixed with `'`.
pub fn sanitize(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

impl Evidence {
    /// Days the tenant keeps run payloads.
    pub async fn retention(&self, admin: &Member) -> Result<i32, Error> {
        admin.require_admin()?;
        Ok(ferry_store::tenants::get(&self.0.db, &admin.tenant_id)
            .await?
            .retention_days)
    }

    /// Sets the retention period from the form's text (a whole number of
    /// days within the allowed range); audited.
    pub async fn set_retention(&self, admin: &Member, days: &str) -> Result<i32, Error> {
        admin.require_admin()?;
        let range = ferry_store::tenants::RETENTION_DAYS;
        let days = match days.trim().parse::<i32>() {
            Ok(d) if range.contains(&d) => d,
            _ => {
                return Err(Error::field(
                    "retention_days",
                    format!(
                        "Enter a whole number of days from {} to {}.",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        };
        let before = self.retention(admin).await?;
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        ferry_store::tenants::set_retention(&tx, &admin.tenant_id, days, now).await?;
        audit_entry::record(
            &tx,
            &admin.actor(),
            AuditAction::RetentionChanged,
            Target("tenant", admin.tenant_id.as_str()),
            json!({ "from_days": before, "to_days": days }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(days)
    }
}
