//! A record's trail: from a CRM record id, every event, run, step attempt
//! (checks and write-backs among them) and replay that concerned it, in
//! order, each with its audit-chain position and hash where it has one.

use super::Evidence;
use crate::{Error, Member};
use chrono::{DateTime, Utc};
use ferry_core::AuditAction;
use ferry_core::catalog::ConnectorKey;
use ferry_core::workflow::StepKind;
use ferry_store::audit::{self, AuditEvent};
use ferry_store::runs::{self, Filter};
use ferry_store::{inbound, workflows};
use std::collections::HashMap;

/// One thing that happened to the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailItem {
    /// When.
    pub at: DateTime<Utc>,
    /// event, run, check, write-back, step, replay, change.
    pub kind: &'static str,
    /// What, in words.
    pub title: String,
    /// The outcome or the detail (never a personal value).
    pub detail: String,
    /// The run it belongs to.
    pub run_id: Option<String>,
    /// Its place in the tenant's audit chain.
    pub chain_seq: Option<i64>,
    /// Its audit hash.
    pub hash: Option<String>,
}

/// A record's trail.
#[derive(Debug, Clone)]
pub struct Trail {
    /// The record id asked for.
    pub record_id: String,
    /// Runs that concerned it.
    pub runs: usize,
    /// Everything, oldest first.
    pub items: Vec<TrailItem>,
    /// The tenant chain's head when the trail was read: (length, hash).
    pub chain_head: (i64, String),
}

/// What the trail needs of a step of the version a run ran.
struct StepInfo {
    key: String,
    title: String,
    /// It talks to the identity-verification provider.
    checks: bool,
    /// It acts on the system the record lives in (the trigger's).
    on_source: bool,
}

impl StepInfo {
    fn of(s: &ferry_core::workflow::Step, source: ConnectorKey) -> Self {
        let connector = match &s.kind {
            StepKind::Action { connector, .. } | StepKind::Wait { connector, .. } => {
                Some(*connector)
            }
            _ => None,
        };
        Self {
            key: s.key.clone(),
            title: s.title(),
            checks: connector == Some(ConnectorKey::Verification),
            on_source: connector == Some(source),
        }
    }
}

/// The most runs a trail reads.
const MAX_RUNS: u64 = 500;

impl Evidence {
    /// Every event, run, step attempt and replay that concerned `record_id`
    /// in the admin's tenant; `NotFound` when nothing did.
    pub async fn trail(&self, admin: &Member, record_id: &str) -> Result<Trail, Error> {
        admin.require_admin()?;
        let record_id = record_id.trim();
        if record_id.is_empty() || record_id.chars().count() > 200 {
            return Err(Error::NotFound);
        }
        let db = &self.0.db;
        let tenant = &admin.tenant_id;
        let filter = Filter {
            record: Some(record_id.to_owned()),
            ..Filter::default()
        };
        let (found, _) = runs::list(db, tenant, &filter, None, MAX_RUNS).await?;
        let entries = audit::search(
            db,
            tenant,
            &audit::Filter {
                record_id: Some(record_id.to_owned()),
                ..audit::Filter::default()
            },
            20_000,
        )
        .await?;
        if found.is_empty() && entries.is_empty() {
            return Err(Error::NotFound);
        }
        // Step entries by the step record they seal.
        let mut sealed: HashMap<i64, &AuditEvent> = HashMap::new();
        let mut items = Vec::new();
        for e in &entries {
            let details: serde_json::Value =
                serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null);
            if e.action == AuditAction::RunStep.as_str() {
                if let Some(id) = details["step_record"].as_i64() {
                    sealed.insert(id, e);
                }
                continue;
            }
            let label = AuditAction::parse(&e.action)
                .map_or_else(|| e.action.clone(), |a| a.label().to_owned());
            let kind = if e.action == AuditAction::RunReplayed.as_str() {
                "replay"
            } else {
                "change"
            };
            items.push(TrailItem {
                at: e.created_at,
                kind,
                title: format!("{label} ({})", e.actor_label),
                detail: if kind == "replay" {
                    if details["from_start"].as_bool() == Some(true) {
                        "from the first step".into()
                    } else {
                        format!(
                            "from step {}",
                            details["from_step"].as_i64().unwrap_or(0) + 1
                        )
                    }
                } else {
                    String::new()
                },
                run_id: (e.target_kind == "run").then(|| e.target_id.clone()),
                chain_seq: e.chain_seq,
                hash: e.hash.clone(),
            });
        }
        let event_ids: Vec<String> = found.iter().map(|r| r.event_id.to_string()).collect();
        let events: HashMap<String, inbound::EventSummary> =
            inbound::summaries(db, tenant, &event_ids)
                .await?
                .into_iter()
                .map(|e| (e.id.clone(), e))
                .collect();
        let mut names: HashMap<String, (String, Vec<StepInfo>)> = HashMap::new();
        for run in &found {
            let wid = run.workflow_id.to_string();
            if !names.contains_key(&wid) {
                let name = workflows::name_of(db, tenant, &run.workflow_id)
                    .await
                    .map_or_else(|_| "(deleted workflow)".to_owned(), |(n, _)| n);
                let steps = workflows::version(db, tenant, &run.workflow_id, run.version)
                    .await
                    .map(|v| {
                        let source = v.definition.trigger.connector;
                        v.definition
                            .steps
                            .iter()
                            .map(|s| StepInfo::of(s, source))
                            .collect()
                    })
                    .unwrap_or_default();
                names.insert(wid.clone(), (name, steps));
            }
            let (workflow, steps) = &names[&wid];
            if let Some(ev) = events.get(&run.event_id.to_string()) {
                items.push(TrailItem {
                    at: ev.received_at,
                    kind: "event",
                    title: format!("Event received: {} {}", ev.source, ev.event_type),
                    detail: format!("dedupe key {}", ev.dedupe_key),
                    run_id: Some(run.id.to_string()),
                    chain_seq: None,
                    hash: None,
                });
            }
            items.push(TrailItem {
                at: run.created_at,
                kind: "run",
                title: format!("Run of “{workflow}” (version {})", run.version),
                detail: format!(
                    "{}{}",
                    run.status.words(),
                    run.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
                run_id: Some(run.id.to_string()),
                chain_seq: None,
                hash: None,
            });
            for (id, step) in runs::steps_with_ids(db, tenant, &run.id).await? {
                let entry = sealed.get(&id);
                let info = steps.iter().find(|i| i.key == step.step_key);
                let title = info.map_or_else(|| step.step_key.clone(), |i| i.title.clone());
                let writes = step.http_calls.as_array().is_some_and(|calls| {
                    calls
                        .iter()
                        .any(|c| c["method"].as_str().is_some_and(|m| m != "GET"))
                });
                let kind = match info {
                    Some(i) if i.checks => "check",
                    Some(i) if i.on_source && writes => "write-back",
                    _ => "step",
                };
                items.push(TrailItem {
                    at: step.finished_at,
                    kind,
                    title: format!("{title} (attempt {})", step.attempt),
                    detail: format!(
                        "{}{}",
                        step.status,
                        step.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                    run_id: Some(run.id.to_string()),
                    chain_seq: entry.and_then(|e| e.chain_seq),
                    hash: entry.and_then(|e| e.hash.clone()),
                });
            }
        }
        items.sort_by(|a, b| a.at.cmp(&b.at).then(a.chain_seq.cmp(&b.chain_seq)));
        Ok(Trail {
            record_id: record_id.to_owned(),
            runs: found.len(),
            items,
            chain_head: audit::head(db, &tenant.to_string()).await?,
        })
    }
}
