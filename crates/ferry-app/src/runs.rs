//! Runs: the list (filtered, paged), one run with its step records, its
//! log for export, the verification status per client, and replays.

use crate::audit::{self, Target};
use crate::{Error, Member, Parts};
use chrono::{DateTime, Utc};
use ferry_core::{AuditAction, RunId};
use ferry_store::runs::{self as store, Cursor, Filter, Run, StepRecord, Verification};
use ferry_store::workflows;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs.
#[derive(Clone)]
pub struct Runs(pub(crate) Arc<Parts>);

/// One run and what its page shows.
#[derive(Debug, Clone)]
pub struct RunView {
    /// The run.
    pub run: Run,
    /// Every step attempt, in order.
    pub steps: Vec<StepRecord>,
    /// Its workflow's name (or "(deleted workflow)").
    pub workflow: String,
    /// The names of the steps of the version it runs, in order.
    pub step_titles: Vec<String>,
}

/// Each workflow's name and step names, by workflow id.
pub type WorkflowNames = HashMap<String, (String, Vec<String>)>;

impl Runs {
    /// A page of the tenant's runs, newest first, and the cursor of the
    /// next. `search` (a name word, a full name or an email) is looked up
    /// through its keyed hash: the runs keep no plaintext to match.
    pub async fn list(
        &self,
        who: &Member,
        filter: &Filter,
        search: Option<&str>,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<(Vec<Run>, Option<Cursor>), Error> {
        let mut filter = filter.clone();
        if let Some(q) = search
            .map(ferry_core::search::normalize)
            .filter(|q| !q.is_empty())
        {
            filter.search_key = Some(
                self.0
                    .connections
                    .vault()
                    .keyed_hash(&who.tenant_id, "record-search", &q)
                    .await?,
            );
        }
        Ok(store::list(&self.0.db, &who.tenant_id, &filter, after, limit).await?)
    }

    /// The names of the runs' records, opened, by run id: for admins only
    /// (staff see record ids; names are personal data).
    pub async fn record_names(
        &self,
        who: &Member,
        runs: &[Run],
    ) -> Result<HashMap<String, String>, Error> {
        let mut out = HashMap::new();
        if who.role != ferry_core::Role::Admin {
            return Ok(out);
        }
        let vault = self.0.connections.vault();
        for r in runs {
            if let Some(sealed) = &r.record_label
                && let Ok(plain) = vault
                    .open(&who.tenant_id, sealed, &format!("label:{}", r.id))
                    .await
            {
                out.insert(
                    r.id.to_string(),
                    String::from_utf8_lossy(&plain).into_owned(),
                );
            }
        }
        Ok(out)
    }

    /// The tenant's workflows' names and step names (to label runs).
    pub async fn workflow_names(&self, who: &Member) -> Result<WorkflowNames, Error> {
        Ok(workflows::list(&self.0.db, &who.tenant_id)
            .await?
            .into_iter()
            .map(|w| {
                let titles = w.draft.steps.iter().map(|s| s.title()).collect();
                (w.id.to_string(), (w.name, titles))
            })
            .collect())
    }

    /// One run with its steps.
    pub async fn view(&self, who: &Member, id: &RunId) -> Result<RunView, Error> {
        let db = &self.0.db;
        let run = store::get(db, &who.tenant_id, id).await?;
        let steps = store::steps(db, &who.tenant_id, id).await?;
        let workflow = match workflows::name_of(db, &who.tenant_id, &run.workflow_id).await {
            Ok((name, false)) => name,
            Ok((name, true)) => format!("{name} (deleted)"),
            Err(_) => "(deleted workflow)".to_owned(),
        };
        let step_titles = workflows::version(db, &who.tenant_id, &run.workflow_id, run.version)
            .await
            .map(|v| v.definition.steps.iter().map(|s| s.title()).collect())
            .unwrap_or_default();
        Ok(RunView {
            run,
            steps,
            workflow,
            step_titles,
        })
    }

    /// The verification outcome per client contact, newest first.
    pub async fn verifications(
        &self,
        who: &Member,
        search: &str,
        outcome: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Verification>, Error> {
        Ok(store::verifications(&self.0.db, &who.tenant_id, Some(search), outcome, limit).await?)
    }

    /// The verification outcomes for a CSV download: the same rows as the
    /// page (at most `limit`), and the export is audited (it carries names
    /// and emails), with its filters but never a person's data.
    pub async fn export_verifications(
        &self,
        who: &Member,
        search: &str,
        outcome: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Verification>, Error> {
        let db = &self.0.db;
        let rows = store::verifications(db, &who.tenant_id, Some(search), outcome, limit).await?;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        audit::record(
            &tx,
            &who.actor(),
            AuditAction::VerificationsExported,
            Target("verifications", "csv"),
            json!({ "rows": rows.len(), "filtered": !search.trim().is_empty() || outcome.is_some() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Replays a failed or dead-lettered run from the step that failed
    /// (steps that succeeded are not repeated), or with `from_start` from
    /// its first step (the source record fetched again).
    pub async fn replay(&self, admin: &Member, id: &RunId, from_start: bool) -> Result<(), Error> {
        admin.require_admin()?;
        let run = store::get(&self.0.db, &admin.tenant_id, id).await?;
        if let Ok((_, true)) =
            workflows::name_of(&self.0.db, &admin.tenant_id, &run.workflow_id).await
        {
            return Err(Error::Conflict(
                "This run's workflow was deleted: its runs are kept for the record and do not run again.".into(),
            ));
        }
        if run.purged_at.is_some() {
            return Err(Error::Conflict(
                "This run's data was purged after the tenant's retention period: it cannot run again. Its record and audit entries are kept.".into(),
            ));
        }
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        if !store::replay_from(&tx, &admin.tenant_id, id, from_start, now).await? {
            return Err(Error::Conflict(format!(
                "This run is {}: only failed or dead-lettered runs can be replayed.",
                run.status.as_str()
            )));
        }
        let workflow_id = run.workflow_id.to_string();
        audit::record_about(
            &tx,
            &admin.actor(),
            AuditAction::RunReplayed,
            Target("run", id.as_str()),
            ferry_store::audit::About {
                workflow_id: Some(&workflow_id),
                record_id: run.record_id.as_deref(),
            },
            json!({
                "from_step": if from_start { 0 } else { run.step_index },
                "previous_status": run.status.as_str(),
                "from_start": from_start,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        self.0.engine.enqueue(&admin.tenant_id, id).await;
        tracing::info!(tenant_id = %admin.tenant_id, run_id = %id, "run replayed from its failed step");
        Ok(())
    }

    /// Replays every dead-lettered run created in `[from, to)`; returns how
    /// many.
    pub async fn bulk_replay(
        &self,
        admin: &Member,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<usize, Error> {
        admin.require_admin()?;
        let ids = store::dead_between(&self.0.db, &admin.tenant_id, from, to).await?;
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        let mut replayed = Vec::new();
        for id in ids {
            if store::replay(&tx, &admin.tenant_id, &id, now).await? {
                replayed.push(id);
            }
        }
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::RunsBulkReplayed,
            Target("runs", ""),
            json!({ "from": from.to_rfc3339(), "to": to.to_rfc3339(), "replayed": replayed.len() }),
            now,
        )
        .await?;
        tx.commit().await?;
        for id in &replayed {
            self.0.engine.enqueue(&admin.tenant_id, id).await;
        }
        Ok(replayed.len())
    }
}
