//! A workflow's life after it is built: pause and resume (events that came
//! while paused are held; the admin runs or discards them), unpublish,
//! rename, duplicate, delete (the typed name confirms it; rows, versions
//! and runs stay for the audit). Each change and its audit entry are one
//! transaction.

use super::*;
use ferry_store::runs;

/// What to do with the runs held while a workflow was paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldRuns {
    /// Run them now, as if their events had just come.
    Run,
    /// End them without running (`skipped`, with the reason).
    Discard,
}

impl HeldRuns {
    /// From its form value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "run" => Some(Self::Run),
            "discard" => Some(Self::Discard),
            _ => None,
        }
    }
}

impl Workflows {
    /// Pauses a published workflow: events are still received and kept,
    /// their runs are held until it is resumed.
    pub async fn pause(&self, admin: &Member, id: &WorkflowId) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        if wf.published_version.is_none() {
            return Err(Error::Conflict(
                "Only a published workflow runs, so only a published one can be paused.".into(),
            ));
        }
        if wf.paused_at.is_some() {
            return Ok(());
        }
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        store::set_paused(&tx, &admin.tenant_id, id, Some(now), now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowPaused,
            Target("workflow", id.as_str()),
            json!({ "version": wf.published_version }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resumes a paused workflow; the runs held meanwhile are run or
    /// discarded as `held` says (required when there are any: `Invalid`,
    /// field `held`). Returns how many were run or discarded.
    pub async fn resume(
        &self,
        admin: &Member,
        id: &WorkflowId,
        held: Option<HeldRuns>,
    ) -> Result<usize, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        // Unpausing first locks the workflow's row: the held runs counted
        // and settled below are the ones this resume decides on.
        store::set_paused(&tx, &admin.tenant_id, id, None, now).await?;
        let waiting = runs::count_held(&tx, &admin.tenant_id, id).await?;
        if wf.paused_at.is_none() && waiting == 0 {
            return Ok(0);
        }
        let choice = match (held, waiting) {
            (_, 0) => HeldRuns::Run,
            (Some(c), _) => c,
            (None, n) => {
                return Err(Error::field(
                    "held",
                    format!(
                        "Choose whether to run or discard the {n} event{} that came while the workflow was paused.",
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
        };
        // Run: on the version published now, as if the events had just come.
        let settled = runs::settle_held(
            &tx,
            &admin.tenant_id,
            id,
            choice == HeldRuns::Discard,
            wf.published_version,
            now,
        )
        .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowResumed,
            Target("workflow", id.as_str()),
            json!({
                "held": settled.len(),
                "held_runs": if choice == HeldRuns::Run { "run" } else { "discarded" },
                "version": wf.published_version,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        if choice == HeldRuns::Run {
            for run in &settled {
                self.0.engine.enqueue(&admin.tenant_id, run).await;
            }
        }
        Ok(settled.len())
    }

    /// Unpublishes a workflow: new events start nothing (runs under way
    /// finish); its versions stay and it can be published again. Refused
    /// while runs are held (resume first, running or discarding them).
    pub async fn unpublish(&self, admin: &Member, id: &WorkflowId) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        let Some(version) = wf.published_version else {
            return Ok(());
        };
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        store::unpublish(&tx, &admin.tenant_id, id, now).await?;
        let held = runs::count_held(&tx, &admin.tenant_id, id).await?;
        if held > 0 {
            return Err(Error::Conflict(format!(
                "{held} event{} came while the workflow was paused: resume it and choose whether to run or discard them first.",
                if held == 1 { "" } else { "s" }
            )));
        }
        store::set_paused(&tx, &admin.tenant_id, id, None, now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowUnpublished,
            Target("workflow", id.as_str()),
            json!({ "version": version }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renames a workflow.
    pub async fn rename(
        &self,
        admin: &Member,
        id: &WorkflowId,
        name: &PersonName,
    ) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        if wf.name == name.as_str() {
            return Ok(());
        }
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        store::rename(&tx, &admin.tenant_id, id, name.as_str(), now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowRenamed,
            Target("workflow", id.as_str()),
            json!({ "from": wf.name, "to": name.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Copies a workflow's draft and connections into a new unpublished
    /// workflow ("Copy of …"), owned by the same person while they are an
    /// active member (else by the admin), watched by the default rules.
    pub async fn duplicate(&self, admin: &Member, id: &WorkflowId) -> Result<WorkflowId, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        let owner = match users::member(db, &admin.tenant_id, &wf.owner_id).await {
            Ok(m) if m.status == UserStatus::Active => wf.owner_id.clone(),
            _ => admin.user_id.clone(),
        };
        let name: String = format!("Copy of {}", wf.name).chars().take(100).collect();
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        let copy = store::create(
            &tx,
            &admin.tenant_id,
            store::NewWorkflow {
                name: name.trim_end(),
                description: &wf.description,
                owner_id: &owner,
                environment: wf.environment,
                draft: &wf.draft,
                bindings: &wf.bindings,
            },
            now,
        )
        .await?;
        ferry_store::alerts::create_defaults(&tx, &admin.tenant_id, &copy.id, &owner, now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowDuplicated,
            Target("workflow", copy.id.as_str()),
            json!({ "from": id.as_str(), "name": copy.name }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(copy.id)
    }

    /// Deletes a workflow when `typed` is its name: it leaves every list,
    /// stops starting runs, its held runs are discarded and its alert rules
    /// retired; its row, versions, runs and audit entries stay.
    pub async fn delete(&self, admin: &Member, id: &WorkflowId, typed: &str) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        if typed.trim() != wf.name {
            return Err(Error::field(
                "confirm",
                "Type the workflow's name exactly as shown to delete it.",
            ));
        }
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        // Deleting first locks the row: a resume cannot run the held runs
        // this delete discards.
        store::delete(&tx, &admin.tenant_id, id, now).await?;
        let discarded = runs::settle_held(&tx, &admin.tenant_id, id, true, None, now).await?;
        store::delete_sample(&tx, &admin.tenant_id, id).await?;
        ferry_store::alerts::retire_workflow(&tx, &admin.tenant_id, id, now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowDeleted,
            Target("workflow", id.as_str()),
            json!({
                "name": wf.name,
                "published_version": wf.published_version,
                "held_discarded": discarded.len(),
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
