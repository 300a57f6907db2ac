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

/// CSV text: the header, then each row.
pub(crate) fn csv_text<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> Result<String, Error> {
    let io = |e: csv::Error| Error::Internal(anyhow::Error::new(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(io)?;
    for row in rows {
        w.write_record(row).map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(anyhow::Error::new(e)))
}

/// Audit entries as CSV: one row each, with the chain position and hash.
pub fn audit_rows_csv(rows: &[AuditEvent]) -> Result<String, Error> {
    csv_text(
        [
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
        ],
        rows.iter().map(|e| {
            [
                e.chain_seq.map(|s| s.to_string()).unwrap_or_default(),
                e.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                sanitize(&e.actor_label),
                e.action.clone(),
                AuditAction::parse(&e.action)
                    .map_or_else(|| e.action.clone(), |a| a.label().to_owned()),
                e.target_kind.clone(),
                sanitize(&e.target_id),
                e.workflow_id.clone().unwrap_or_default(),
                sanitize(e.record_id.as_deref().unwrap_or("")),
                sanitize(&e.details),
                e.client_ip.clone(),
                e.hash.clone().unwrap_or_default(),
            ]
        }),
    )
}

/// A cell a spreadsheet would run as a formula (it starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return, or their full-width forms) is
/// prefixed with `'`.
pub fn sanitize(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠']) {
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

/// One field a tenant may reclassify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    /// `<connector>.<field>`: the form's key.
    pub key: String,
    /// The app, for people.
    pub app: &'static str,
    /// The field, for people.
    pub label: &'static str,
    /// Its machine name.
    pub name: &'static str,
    /// The catalog's class.
    pub default: ferry_core::catalog::PiiClass,
    /// The class in force for the tenant.
    pub class: ferry_core::catalog::PiiClass,
}

impl Evidence {
    /// Every field of every app with its class, the catalog's and the
    /// tenant's.
    pub async fn field_classes(&self, admin: &Member) -> Result<Vec<FieldRow>, Error> {
        use ferry_core::catalog::{ConnectorKey, class_of, classifiable};
        admin.require_admin()?;
        let overrides = ferry_store::tenants::field_classes(&self.0.db, &admin.tenant_id).await?;
        let mut rows = Vec::new();
        for connector in [ConnectorKey::HubSpot, ConnectorKey::Verification] {
            for f in classifiable(connector) {
                rows.push(FieldRow {
                    key: format!("{}.{}", connector.as_str(), f.name),
                    app: connector.def().name,
                    label: f.label,
                    name: f.name,
                    default: f.pii,
                    class: class_of(connector, f, &overrides),
                });
            }
        }
        Ok(rows)
    }

    /// Reclassifies fields: `choices` are (key, class) pairs from the form.
    /// A field can be made stricter than the catalog, never less strict.
    /// Audited, naming the fields and classes (never a value).
    pub async fn set_field_classes(
        &self,
        admin: &Member,
        choices: &[(String, String)],
    ) -> Result<usize, Error> {
        use ferry_core::catalog::PiiClass;
        admin.require_admin()?;
        let rows = self.field_classes(admin).await?;
        let mut classes = ferry_core::catalog::FieldClasses::new();
        let mut changed = Vec::new();
        for (key, raw) in choices {
            let Some(row) = rows.iter().find(|r| &r.key == key) else {
                return Err(Error::field(
                    "fields",
                    "Choose classes for the listed fields only.",
                ));
            };
            let Some(class) = PiiClass::parse(raw) else {
                return Err(Error::field(
                    "fields",
                    "Choose not personal, contact data or identity data.",
                ));
            };
            if class < row.default {
                return Err(Error::field(
                    "fields",
                    format!(
                        "{} is {} in the catalog: a field can be made stricter, never less strict.",
                        row.label,
                        row.default.label()
                    ),
                ));
            }
            if class > row.default {
                classes.insert(key.clone(), class);
            }
            if class != row.class {
                changed.push(json!({ "field": key, "class": class.as_str() }));
            }
        }
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        ferry_store::tenants::set_field_classes(&tx, &admin.tenant_id, &classes, now).await?;
        audit_entry::record(
            &tx,
            &admin.actor(),
            AuditAction::FieldClassChanged,
            Target("tenant", admin.tenant_id.as_str()),
            json!({ "changed": changed }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(changed.len())
    }
}
