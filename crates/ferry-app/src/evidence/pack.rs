//! The evidence pack: one zip for an auditor, per workflow or per tenant,
//! holding the documentation, the inventory, the version history with its
//! diffs and publish-checklist evidence, the review log, the alert history
//! and the audit entries of a period, with a manifest listing each file's
//! SHA-256 and the audit chain's head (verified when the pack was made),
//! signed with a key derived from the installation's master key.

use super::{Evidence, audit_rows_csv, docs, sanitize};
use crate::audit::{self as audit_entry, Target};
use crate::{Error, Member};
use chrono::{DateTime, Utc};
use ferry_core::{AuditAction, WorkflowId};
use ferry_store::{alerts, audit, workflows};
use hmac::Mac;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// The manifest's format name.
pub const FORMAT: &str = "ferry-evidence/1";

/// What checking a pack found.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// Everything checks out.
    pub ok: bool,
    /// Files checked.
    pub files: usize,
    /// The audit chain head the manifest records.
    pub chain_head: String,
    /// One line per check, for people.
    pub lines: Vec<String>,
}

fn sign(key: &[u8], manifest: &[u8]) -> String {
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac =
        <hmac::Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(manifest);
    hex::encode(mac.finalize().into_bytes())
}

fn zip_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("writing the evidence pack: {e}"))
}

impl Evidence {
    /// Builds the evidence pack of one workflow (or, with `None`, of every
    /// workflow of the tenant) for the audit entries in `[from, to)`.
    /// Downloading it is audited.
    pub async fn pack(
        &self,
        admin: &Member,
        workflow: Option<&WorkflowId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<u8>, Error> {
        admin.require_admin()?;
        if from >= to {
            return Err(Error::field(
                "from",
                "The period must start before it ends.",
            ));
        }
        let db = &self.0.db;
        let tenant = &admin.tenant_id;
        let now = self.0.clock.now();
        let chosen: Vec<WorkflowId> = match workflow {
            Some(id) => vec![workflows::get(db, tenant, id).await?.id],
            None => workflows::list(db, tenant)
                .await?
                .into_iter()
                .map(|w| w.id)
                .collect(),
        };
        // The chain is verified first: a pack states what it found.
        let chain = audit::verify_chain(db, &tenant.to_string()).await?;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut inventory = Vec::new();
        for id in &chosen {
            let dir = if workflow.is_some() {
                String::new()
            } else {
                format!("workflows/{id}/")
            };
            let doc = self.documentation(admin, id).await?;
            files.push((
                format!("{dir}documentation.md"),
                docs::markdown(&doc).into_bytes(),
            ));
            inventory.push(self.inventory_of(admin, id).await?);
            files.push((
                format!("{dir}versions.md"),
                self.versions_md(admin, id).await?.into_bytes(),
            ));
            let versions: Vec<serde_json::Value> = workflows::versions(db, tenant, id)
                .await?
                .into_iter()
                .map(|v| {
                    json!({
                        "version": v.version,
                        "published_by": v.published_by.to_string(),
                        "published_at": v.published_at.to_rfc3339(),
                        "change_note": v.change_note,
                        "publish_checklist": v.gate,
                        "definition": v.definition,
                        "bindings": v.bindings,
                    })
                })
                .collect();
            files.push((
                format!("{dir}versions.json"),
                serde_json::to_vec_pretty(&versions).map_err(zip_err)?,
            ));
            let reviews: Vec<serde_json::Value> = workflows::reviews(db, tenant, id)
                .await?
                .into_iter()
                .map(|r| {
                    json!({
                        "reviewed_at": r.reviewed_at.to_rfc3339(),
                        "reviewer": r.reviewer,
                        "answers": r.answers,
                        "notes": r.notes,
                        "measured": r.measured,
                    })
                })
                .collect();
            files.push((
                format!("{dir}reviews.json"),
                serde_json::to_vec_pretty(&reviews).map_err(zip_err)?,
            ));
            files.push((
                format!("{dir}alerts.csv"),
                self.alerts_csv(admin, id).await?.into_bytes(),
            ));
        }
        files.push((
            "inventory.csv".into(),
            docs::inventory_csv(&inventory)?.into_bytes(),
        ));
        let mut entries = Vec::new();
        let mut before = None;
        loop {
            let page = audit::search(
                db,
                tenant,
                &audit::Filter {
                    workflow_id: workflow.map(ToString::to_string),
                    from: Some(from),
                    to: Some(to),
                    before_seq: before,
                    ..audit::Filter::default()
                },
                5000,
            )
            .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.seq);
            entries.extend(page);
        }
        entries.reverse();
        files.push(("audit.csv".into(), audit_rows_csv(&entries)?.into_bytes()));
        files.push((
            "audit-chain.txt".into(),
            format!(
                "Audit chain of tenant {}\nEntries: {}\nHead hash: {}\nVerified at: {}\nResult: {}\n",
                chain.chain,
                chain.entries,
                chain.head_hash,
                now.to_rfc3339(),
                match &chain.broken {
                    None => "verified: every entry links to the one before it and its content matches its hash".to_owned(),
                    Some(b) => format!("BROKEN at entry {}: {}", b.seq, b.reason),
                }
            )
            .into_bytes(),
        ));
        let manifest = json!({
            "format": FORMAT,
            "tenant": tenant.to_string(),
            "workflow": workflow.map(ToString::to_string),
            "period": { "from": from.to_rfc3339(), "to": to.to_rfc3339() },
            "generated_at": now.to_rfc3339(),
            "generated_by": admin.label,
            "audit_chain": {
                "chain": chain.chain,
                "entries": chain.entries,
                "head_hash": chain.head_hash,
                "verified": chain.broken.is_none(),
            },
            "files": files.iter().map(|(name, bytes)| json!({
                "name": name,
                "bytes": bytes.len(),
                "sha256": hex::encode(Sha256::digest(bytes)),
            })).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec_pretty(&manifest).map_err(zip_err)?;
        let signature = sign(&self.0.evidence_key, &manifest);
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .chain([
                ("manifest.json", manifest.as_slice()),
                ("manifest.sig", signature.as_bytes()),
            ])
        {
            zip.start_file(name, options).map_err(zip_err)?;
            zip.write_all(bytes).map_err(zip_err)?;
        }
        let bytes = zip.finish().map_err(zip_err)?.into_inner();
        audit_entry::record(
            db,
            &admin.actor(),
            AuditAction::EvidenceExported,
            Target(
                if workflow.is_some() {
                    "workflow"
                } else {
                    "tenant"
                },
                &workflow.map_or_else(|| tenant.to_string(), ToString::to_string),
            ),
            json!({
                "from": from.to_rfc3339(),
                "to": to.to_rfc3339(),
                "files": files.len(),
                "chain_head": chain.head_hash,
            }),
            now,
        )
        .await?;
        Ok(bytes)
    }

    /// The version history in words: each version's publisher, note and
    /// checklist result, and what changed from the one before.
    pub async fn versions_md(&self, admin: &Member, id: &WorkflowId) -> Result<String, Error> {
        let db = &self.0.db;
        let mut versions = workflows::versions(db, &admin.tenant_id, id).await?;
        versions.reverse();
        let mut out = String::from("# Version history\n\n");
        if versions.is_empty() {
            out.push_str("Not published yet.\n");
        }
        for (i, v) in versions.iter().enumerate() {
            let who = crate::person_name(db, &v.published_by).await;
            out.push_str(&format!(
                "## Version {}\n\n- Published by {} on {}\n- Change note: {}\n",
                v.version,
                who,
                v.published_at.format("%Y-%m-%d %H:%M UTC"),
                v.change_note.as_deref().unwrap_or("(none recorded)")
            ));
            match &v.gate {
                Some(g) => out.push_str(&format!(
                    "- Publish checklist: {}\n",
                    if g["passed"].as_bool() == Some(true) {
                        "passed"
                    } else {
                        "not passed"
                    }
                )),
                None => out.push_str(
                    "- Publish checklist: not run (published before the checklist existed)\n",
                ),
            }
            let changes = match i.checked_sub(1).and_then(|p| versions.get(p)) {
                Some(prev) => ferry_core::workflow::changes(&prev.definition, &v.definition),
                None => vec!["First version.".into()],
            };
            out.push_str("- Changes:\n");
            if changes.is_empty() {
                out.push_str("  - No change to the steps (connections or settings only).\n");
            }
            for c in changes {
                out.push_str(&format!("  - {c}\n"));
            }
            out.push('\n');
        }
        Ok(out)
    }

    async fn alerts_csv(&self, admin: &Member, id: &WorkflowId) -> Result<String, Error> {
        let rows = alerts::incidents(&self.0.db, &admin.tenant_id, Some(id), 10_000).await?;
        let at = |d: Option<DateTime<Utc>>| d.map(|d| d.to_rfc3339()).unwrap_or_default();
        super::csv_text(
            [
                "opened_at",
                "kind",
                "summary",
                "acknowledged_at",
                "escalated_at",
                "resolved_at",
            ],
            rows.into_iter().map(|r| {
                [
                    r.opened_at.to_rfc3339(),
                    sanitize(&r.kind),
                    sanitize(&r.summary),
                    at(r.acknowledged_at),
                    at(r.escalated_at),
                    at(r.resolved_at),
                ]
            }),
        )
    }
}

/// Checks a pack: the manifest is there and names this format, every file
/// it lists is present with its SHA-256 and size, no file is missing or
/// added, and (given the installation's key) the signature matches.
pub fn verify_pack(bytes: &[u8], key: Option<&[u8]>) -> anyhow::Result<PackReport> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| anyhow::anyhow!("not an evidence pack (not a readable zip): {e}"))?;
    let mut contents = std::collections::BTreeMap::new();
    let mut lines = Vec::new();
    let mut ok = true;
    for i in 0..archive.len() {
        let mut f = archive.by_index(i)?;
        let name = f.name()?.into_owned();
        let mut buf = Vec::new();
        // A changed byte usually fails the zip's own checksum first.
        if let Err(e) = f.read_to_end(&mut buf) {
            ok = false;
            lines.push(format!("{name}: CHANGED (unreadable: {e})"));
            continue;
        }
        contents.insert(name, buf);
    }
    let Some(manifest_bytes) = contents.get("manifest.json") else {
        if !ok {
            return Ok(PackReport {
                ok,
                files: 0,
                chain_head: String::new(),
                lines,
            });
        }
        anyhow::bail!("not an evidence pack: manifest.json is missing");
    };
    let manifest: serde_json::Value = serde_json::from_slice(manifest_bytes)
        .map_err(|_| anyhow::anyhow!("manifest.json is not valid JSON"))?;
    if manifest["format"] != FORMAT {
        anyhow::bail!("manifest.json does not name the format {FORMAT}");
    }
    match key {
        Some(key) => {
            let expected = sign(key, manifest_bytes);
            let found = contents
                .get("manifest.sig")
                .map(|s| String::from_utf8_lossy(s).trim().to_owned());
            if found.as_deref() == Some(expected.as_str()) {
                lines.push("manifest signature: matches this installation's key".to_owned());
            } else {
                ok = false;
                lines.push("manifest signature: DOES NOT MATCH (the manifest was changed, or the pack comes from another installation or before a master-key rotation)".to_owned());
            }
        }
        None => lines.push("manifest signature: not checked (no key)".to_owned()),
    }
    let listed = manifest["files"].as_array().cloned().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    for f in &listed {
        let name = f["name"].as_str().unwrap_or("");
        seen.insert(name.to_owned());
        match contents.get(name) {
            None if lines
                .iter()
                .any(|l| l.starts_with(&format!("{name}: CHANGED"))) => {}
            None => {
                ok = false;
                lines.push(format!("{name}: MISSING"));
            }
            Some(b) => {
                let sha = hex::encode(Sha256::digest(b));
                if Some(sha.as_str()) == f["sha256"].as_str()
                    && f["bytes"].as_u64() == Some(b.len() as u64)
                {
                    lines.push(format!("{name}: ok ({} bytes, sha256 {sha})", b.len()));
                } else {
                    ok = false;
                    lines.push(format!(
                        "{name}: CHANGED (its SHA-256 does not match the manifest)"
                    ));
                }
            }
        }
    }
    for name in contents.keys() {
        if name != "manifest.json" && name != "manifest.sig" && !seen.contains(name) {
            ok = false;
            lines.push(format!("{name}: NOT IN THE MANIFEST (added)"));
        }
    }
    let chain_head = manifest["audit_chain"]["head_hash"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if manifest["audit_chain"]["verified"] != true {
        ok = false;
        lines.push("audit chain: the chain did NOT verify when the pack was made".to_owned());
    } else {
        lines.push(format!(
            "audit chain: verified when the pack was made; {} entries, head {chain_head}",
            manifest["audit_chain"]["entries"]
        ));
    }
    Ok(PackReport {
        ok,
        files: listed.len(),
        chain_head,
        lines,
    })
}
