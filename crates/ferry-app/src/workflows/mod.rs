//! Workflows: create (from the reference template or a starting point),
//! edit the draft (whole, or one typed [`StepOp`] at a time; every change
//! checked, problems naming step and field), choose connections, publish
//! an immutable version, roll back, and dry-run the draft.

use crate::audit::{self, Target};
use crate::{Error, Member, Parts};
use ferry_core::catalog::ConnectorKey;
use ferry_core::workflow::{Definition, StepOp, reference_template, starting_point};
use ferry_core::{
    AuditAction, ConnectionId, ConnectionStatus, Environment, FieldError, FieldErrors, PersonName,
    UserId, UserStatus, WorkflowId,
};
use ferry_engine::runs::DryStep;
use ferry_store::connections::{self, Connection};
use ferry_store::users;
use ferry_store::workflows::{self as store, Bindings, Version, Workflow};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

mod build;
pub mod gate;
mod lifecycle;

pub use build::{Edited, SampleData, TestRecord, Tested};
pub use lifecycle::HeldRuns;

/// Workflows.
#[derive(Clone)]
pub struct Workflows(pub(crate) Arc<Parts>);

/// How a new workflow starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The reference workflow (contact → check → outcome written back).
    Reference,
    /// A trigger and one fetch step.
    Start,
    /// Only a trigger (a new HubSpot contact): built step by step.
    Blank,
}

impl Template {
    /// Its form value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Start => "start",
            Self::Blank => "blank",
        }
    }

    /// From its form value.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "reference" => Some(Self::Reference),
            "start" => Some(Self::Start),
            "blank" => Some(Self::Blank),
            _ => None,
        }
    }

    fn definition(self) -> Definition {
        match self {
            Self::Reference => reference_template(),
            Self::Start => starting_point(),
            Self::Blank => Definition {
                steps: vec![],
                ..starting_point()
            },
        }
    }
}

/// A new workflow.
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    /// Its name.
    pub name: PersonName,
    /// What it replaces, in words (at most 2000 characters).
    pub description: String,
    /// The person responsible (an active member of the tenant).
    pub owner: UserId,
    /// Sandbox or production.
    pub environment: Environment,
    /// How it starts.
    pub template: Template,
}

/// A published version and who published it.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// The version.
    pub version: Version,
    /// Who published it (or "a former member").
    pub published_by: String,
}

/// A workflow's page content.
#[derive(Debug, Clone)]
pub struct WorkflowView {
    /// The workflow.
    pub workflow: Workflow,
    /// Its owner's name.
    pub owner: String,
    /// The tenant's connections (to choose bindings from).
    pub connections: Vec<Connection>,
    /// Its published versions, newest first.
    pub versions: Vec<VersionRow>,
    /// What the draft changes from the version runs use, in words (empty
    /// when they are the same or nothing is published).
    pub unpublished_changes: Vec<String>,
    /// Runs held while it was paused.
    pub held: u64,
}

/// A workflow in the list.
#[derive(Debug, Clone)]
pub struct WorkflowRow {
    /// The workflow.
    pub workflow: Workflow,
    /// Its owner's name.
    pub owner: String,
}

use crate::person_name as person;

/// What publishing did.
#[derive(Debug, Clone)]
pub enum Published {
    /// A new version, with the checklist it passed (none when it could not
    /// run: `not_run` says why, and the version records it).
    Version {
        /// Its number.
        version: i32,
        /// The checklist's report.
        checklist: Option<gate::GateReport>,
        /// Why the checklist did not run.
        not_run: Option<String>,
    },
    /// The checklist failed: nothing was published.
    Blocked(gate::GateReport),
}

/// The longest change note.
pub const MAX_NOTE: usize = 500;

impl Workflows {
    /// The tenant's workflows.
    pub async fn list(&self, who: &Member) -> Result<Vec<WorkflowRow>, Error> {
        let mut rows = Vec::new();
        for w in store::list(&self.0.db, &who.tenant_id).await? {
            rows.push(WorkflowRow {
                owner: person(&self.0.db, &w.owner_id).await,
                workflow: w,
            });
        }
        Ok(rows)
    }

    /// One workflow with what its page shows.
    pub async fn view(&self, who: &Member, id: &WorkflowId) -> Result<WorkflowView, Error> {
        let db = &self.0.db;
        let workflow = store::get(db, &who.tenant_id, id).await?;
        let mut versions = Vec::new();
        for v in store::versions(db, &who.tenant_id, id).await? {
            versions.push(VersionRow {
                published_by: person(db, &v.published_by).await,
                version: v,
            });
        }
        let connections = connections::list(db, &who.tenant_id).await?;
        let unpublished_changes = match workflow.published_version {
            None => vec![],
            Some(n) => match versions.iter().find(|v| v.version.version == n) {
                None => vec![],
                Some(live) => {
                    let mut said =
                        ferry_core::workflow::changes(&live.version.definition, &workflow.draft);
                    let name = |c: &ConnectionId| {
                        connections
                            .iter()
                            .find(|x| &x.id == c)
                            .map_or_else(|| "a removed connection".to_owned(), |x| x.name.clone())
                    };
                    for (k, c) in &workflow.bindings {
                        if live.version.bindings.get(k) != Some(c) {
                            let label = ConnectorKey::parse(k).map_or(k.as_str(), |k| k.def().name);
                            said.push(format!("{label} connection changed to “{}”.", name(c)));
                        }
                    }
                    said
                }
            },
        };
        Ok(WorkflowView {
            owner: person(db, &workflow.owner_id).await,
            held: ferry_store::runs::count_held(db, &who.tenant_id, id).await?,
            connections,
            workflow,
            versions,
            unpublished_changes,
        })
    }

    /// Creates a draft; each connector is bound to the tenant's first
    /// connection of it in the workflow's environment.
    pub async fn create(&self, admin: &Member, new: NewWorkflow) -> Result<WorkflowId, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let mut errors = FieldErrors::new();
        if new.description.chars().count() > 2000 {
            errors.push(FieldError::new(
                "description",
                "Use at most 2000 characters.",
            ));
        }
        let owner_ok = users::member(db, &admin.tenant_id, &new.owner)
            .await
            .is_ok_and(|m| m.status == UserStatus::Active);
        if !owner_ok {
            errors.push(FieldError::new(
                "owner",
                "Choose the person responsible from your firm.",
            ));
        }
        errors.into_result()?;
        let draft = new.template.definition();
        let available = connections::list(db, &admin.tenant_id).await?;
        let bindings: Bindings = draft
            .connectors()
            .into_iter()
            .filter_map(|k| {
                available
                    .iter()
                    .find(|c| c.connector == k && c.environment == new.environment)
                    .map(|c| (k.as_str().to_owned(), c.id.clone()))
            })
            .collect();
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        let wf = store::create(
            &tx,
            &admin.tenant_id,
            store::NewWorkflow {
                name: new.name.as_str(),
                description: new.description.trim(),
                owner_id: &new.owner,
                environment: new.environment,
                draft: &draft,
                bindings: &bindings,
            },
            now,
        )
        .await?;
        // Every workflow is watched from the start: the seven rules, told to
        // its owner.
        ferry_store::alerts::create_defaults(&tx, &admin.tenant_id, &wf.id, &new.owner, now)
            .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowCreated,
            Target("workflow", wf.id.as_str()),
            json!({ "name": wf.name, "template": new.template.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(wf.id)
    }

    async fn save_checked(
        &self,
        admin: &Member,
        wf: &Workflow,
        draft: &Definition,
        mut details: serde_json::Value,
    ) -> Result<(), Error> {
        let found = draft.check();
        if !found.is_empty() {
            let mut errors = FieldErrors::new();
            for issue in found {
                errors.push(FieldError::new("definition", issue.to_string()));
            }
            return Err(Error::Invalid(errors));
        }
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        store::save_draft(
            &tx,
            &admin.tenant_id,
            &wf.id,
            draft,
            &wf.bindings,
            wf.updated_at,
            now,
        )
        .await?;
        details["steps"] = json!(draft.steps.len());
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowDraftSaved,
            Target("workflow", wf.id.as_str()),
            details,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the draft with `draft` when it passes the check (problems
    /// are `Invalid`, field `definition`, each naming step and field).
    pub async fn save_definition(
        &self,
        admin: &Member,
        id: &WorkflowId,
        draft: Definition,
    ) -> Result<(), Error> {
        admin.require_admin()?;
        let wf = store::get(&self.0.db, &admin.tenant_id, id).await?;
        self.save_checked(admin, &wf, &draft, json!({})).await
    }

    /// Chooses the connection each connector of the draft uses; every
    /// connector needs one of its kind in the workflow's environment
    /// (errors are keyed by the connector).
    pub async fn bind(
        &self,
        admin: &Member,
        id: &WorkflowId,
        chosen: &BTreeMap<ConnectorKey, ConnectionId>,
    ) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        let available = connections::list(db, &admin.tenant_id).await?;
        let mut bindings = Bindings::new();
        let mut errors = FieldErrors::new();
        for k in wf.draft.connectors() {
            match chosen.get(&k).and_then(|c| {
                available
                    .iter()
                    .find(|x| &x.id == c && x.connector == k && x.environment == wf.environment)
            }) {
                Some(c) => {
                    bindings.insert(k.as_str().to_owned(), c.id.clone());
                }
                None => errors.push(FieldError::new(
                    k.as_str(),
                    format!(
                        "Choose a {} connection in {}.",
                        k.def().name,
                        wf.environment.as_str()
                    ),
                )),
            }
        }
        errors.into_result()?;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        store::save_draft(
            &tx,
            &admin.tenant_id,
            id,
            &wf.draft,
            &bindings,
            wf.updated_at,
            now,
        )
        .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowConnectionsSet,
            Target("workflow", id.as_str()),
            json!({ "bindings": bindings }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Publishes the checked draft as the next immutable version, after
    /// the edge-case checklist passed against its sandbox connections (the
    /// report is stored with the version; a failed check blocks, and the
    /// report says why). Problems (the note, the check, a missing or broken
    /// connection) are `Invalid`, fields `note` and `publish`.
    pub async fn publish(
        &self,
        admin: &Member,
        id: &WorkflowId,
        note: &str,
    ) -> Result<Published, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        let mut problems = FieldErrors::new();
        let note = note.trim();
        if note.is_empty() {
            problems.push(FieldError::new(
                "note",
                "Say in a sentence what changed and why: the note stays with the version.",
            ));
        } else if note.chars().count() > MAX_NOTE {
            problems.push(FieldError::new(
                "note",
                format!("Keep the change note under {MAX_NOTE} characters."),
            ));
        }
        for issue in wf.draft.publish_issues() {
            problems.push(FieldError::new("publish", issue.to_string()));
        }
        let available = connections::list(db, &admin.tenant_id).await?;
        for k in wf.draft.connectors() {
            let bound = wf
                .bindings
                .get(k.as_str())
                .and_then(|c| available.iter().find(|x| &x.id == c));
            match bound {
                None => problems.push(FieldError::new(
                    "publish",
                    format!(
                        "No {} connection is chosen for this workflow.",
                        k.def().name
                    ),
                )),
                Some(c) if c.status == ConnectionStatus::Broken => {
                    problems.push(FieldError::new(
                        "publish",
                        format!(
                            "The connection “{}” is broken: fix it before publishing.",
                            c.name
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        problems.into_result()?;
        // The edge-case checklist, against the sandbox: a failure blocks.
        let gate = match self.run_gate(admin, &wf).await {
            Ok(report) => report.to_json(),
            Err(Error::Unavailable(why)) => json!({ "passed": false, "not_run": why }),
            Err(e) => return Err(e),
        };
        let now = self.0.clock.now();
        let passed = gate["passed"] == true;
        if gate.get("not_run").is_none() {
            let checks = gate["checks"].as_array().map_or(0, Vec::len);
            let ok = gate["checks"]
                .as_array()
                .map_or(0, |c| c.iter().filter(|c| c["passed"] == true).count());
            audit::record(
                db,
                &admin.actor(),
                AuditAction::WorkflowGateRun,
                Target("workflow", id.as_str()),
                json!({ "passed": passed, "checks": checks, "checks_passed": ok }),
                now,
            )
            .await?;
            if !passed {
                return Ok(Published::Blocked(
                    gate::GateReport::from_json(&gate).ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("the checklist's report did not read back"))
                    })?,
                ));
            }
        }
        let tx = db.begin().await?;
        let version = store::publish(
            &tx,
            &admin.tenant_id,
            id,
            &admin.user_id,
            store::Publication {
                note: Some(note),
                gate: Some(&gate),
                checked_at: Some(wf.updated_at),
            },
            now,
        )
        .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowPublished,
            Target("workflow", id.as_str()),
            json!({ "version": version, "checklist": if passed { "passed" } else { "not run" } }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Published::Version {
            version,
            checklist: gate::GateReport::from_json(&gate),
            not_run: gate["not_run"].as_str().map(str::to_owned),
        })
    }

    /// Makes runs use an earlier published version again.
    pub async fn roll_back(
        &self,
        admin: &Member,
        id: &WorkflowId,
        version: i32,
    ) -> Result<(), Error> {
        admin.require_admin()?;
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        store::get(&tx, &admin.tenant_id, id).await?;
        store::roll_back(&tx, &admin.tenant_id, id, version, now).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowRolledBack,
            Target("workflow", id.as_str()),
            json!({ "version": version }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs the draft on a sample payload; nothing is written anywhere.
    pub async fn dry_run(
        &self,
        admin: &Member,
        id: &WorkflowId,
        payload: serde_json::Value,
    ) -> Result<Vec<DryStep>, Error> {
        admin.require_admin()?;
        let wf = store::get(&self.0.db, &admin.tenant_id, id).await?;
        Ok(self
            .0
            .engine
            .dry_run(&admin.tenant_id, &wf.draft, &wf.bindings, payload)
            .await)
    }
}
