//! Each integration's generated documentation and its inventory row,
//! always read from the workflow as it is now (nothing to regenerate), and
//! the profile the admin fills where Ferry cannot know (the business
//! outcome, the manual step it replaces, the expected volume, the
//! escalation path).

use super::{Evidence, sanitize};
use crate::audit::{self as audit_entry, Target};
use crate::{Error, Member};
use chrono::{DateTime, Duration, Utc};
use ferry_core::catalog::{ConnectorKey, FieldClasses, FieldSchema, PiiClass, class_of};
use ferry_core::workflow::describe::{self, Line};
use ferry_core::workflow::{Definition, StepKind};
use ferry_core::{AuditAction, FieldError, FieldErrors, WorkflowId};
use ferry_store::runs::{self, RunStatus};
use ferry_store::{alerts, connections, tenants, workflows};
use serde_json::json;
use std::collections::BTreeSet;

/// What the admin tells Ferry about an integration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// The business outcome, in one sentence.
    pub outcome: String,
    /// The manual step it replaces.
    pub manual_step: String,
    /// Runs expected per week.
    pub expected_weekly: Option<u64>,
    /// Who to turn to beyond the alert recipients, in words.
    pub escalation: String,
}

/// The longest profile answer.
pub const MAX_ANSWER: usize = 300;

impl Profile {
    fn from_json(v: &serde_json::Value) -> Self {
        let text = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        Self {
            outcome: text("outcome"),
            manual_step: text("manual_step"),
            expected_weekly: v["expected_weekly"].as_u64(),
            escalation: text("escalation"),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "outcome": self.outcome,
            "manual_step": self.manual_step,
            "expected_weekly": self.expected_weekly,
            "escalation": self.escalation,
        })
    }

    /// Parses the form: texts trimmed and bounded, the volume a whole
    /// number. Messages name the field and the rule.
    pub fn parse(
        outcome: &str,
        manual_step: &str,
        expected_weekly: &str,
        escalation: &str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut text = |field: &'static str, raw: &str| {
            let t = raw.trim();
            if t.chars().count() > MAX_ANSWER {
                errors.push(FieldError::new(
                    field,
                    format!("Keep this under {MAX_ANSWER} characters."),
                ));
            }
            t.to_owned()
        };
        let outcome = text("outcome", outcome);
        let manual_step = text("manual_step", manual_step);
        let escalation = text("escalation", escalation);
        let expected_weekly = match expected_weekly.trim() {
            "" => None,
            n => match n.replace([',', ' ', '_'], "").parse::<u64>() {
                Ok(n) if n <= 100_000_000 => Some(n),
                _ => {
                    errors.push(FieldError::new(
                        "expected_weekly",
                        "Enter the runs you expect per week as a whole number (or leave it empty).",
                    ));
                    None
                }
            },
        };
        errors.into_result()?;
        Ok(Self {
            outcome,
            manual_step,
            expected_weekly,
            escalation,
        })
    }
}

/// One integration's generated documentation.
#[derive(Debug, Clone)]
pub struct Documentation {
    /// The workflow.
    pub id: WorkflowId,
    /// Its name.
    pub name: String,
    /// The business outcome (the profile's sentence, else the description).
    pub outcome: String,
    /// What it is for, as described.
    pub description: String,
    /// The trigger in words.
    pub trigger: String,
    /// Each system connected: (system, connection name, environment).
    pub systems: Vec<(String, String, String)>,
    /// Fields mapped: (step, system, field, source).
    pub mapped: Vec<(String, String, String, String)>,
    /// Validation rules: (step, field, rule).
    pub rules: Vec<(String, String, String)>,
    /// Each step: its title and lines.
    pub steps: Vec<(String, Vec<Line>)>,
    /// How failures are handled, in words.
    pub error_handling: Vec<String>,
    /// Who is told, then who next.
    pub escalation: Vec<String>,
    /// The person responsible.
    pub owner: String,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The version runs use, who published it and when.
    pub live: Option<(i32, String, DateTime<Utc>)>,
    /// What the draft changes from the live version.
    pub unpublished: Vec<String>,
    /// When the next review is due.
    pub review_due: Option<DateTime<Utc>>,
    /// Personal data it handles, by class.
    pub sensitivity: String,
    /// The admin's profile.
    pub profile: Profile,
    /// Sandbox or production.
    pub environment: String,
}

/// One row of the integration inventory (the audit template).
#[derive(Debug, Clone)]
pub struct InventoryRow {
    /// The workflow.
    pub id: WorkflowId,
    /// Its name.
    pub name: String,
    /// Where events come from.
    pub source: String,
    /// Where it writes.
    pub destinations: String,
    /// The trigger event.
    pub trigger: String,
    /// The fields it writes back to the source system.
    pub written_back: String,
    /// The manual step it replaces (the admin's answer).
    pub manual_step: String,
    /// Runs expected per week (the admin's answer).
    pub expected_weekly: Option<u64>,
    /// Runs in the last 7 days.
    pub measured_weekly: u64,
    /// Personal data it handles.
    pub sensitivity: String,
    /// Live version, if published.
    pub version: Option<i32>,
    /// The owner.
    pub owner: String,
    /// When the next review is due.
    pub review_due: Option<DateTime<Utc>>,
}

use crate::person_name as person;

/// The schema field a path reads, if the catalog knows it.
fn field_of(
    d: &Definition,
    path: &ferry_core::mapping::FieldPath,
) -> Option<(ConnectorKey, &'static FieldSchema)> {
    let (connector, fields): (ConnectorKey, &'static [FieldSchema]) = match path.step() {
        None => (
            d.trigger.connector,
            d.trigger.connector.def().trigger(&d.trigger.event)?.fields,
        ),
        Some(key) => match &d.steps.iter().find(|s| s.key == key)?.kind {
            StepKind::Action {
                connector, action, ..
            } => (*connector, connector.def().action(action)?.output),
            _ => return None,
        },
    };
    fields
        .iter()
        .find(|f| f.name == path.field())
        .map(|f| (connector, f))
}

/// Every catalog field the definition reads or writes, with its class.
fn classified(d: &Definition, overrides: &FieldClasses) -> Vec<(String, PiiClass)> {
    let mut out = BTreeSet::new();
    let mut note = |(connector, f): (ConnectorKey, &FieldSchema)| {
        out.insert((f.label.to_owned(), class_of(connector, f, overrides)));
    };
    for step in &d.steps {
        match &step.kind {
            StepKind::Action {
                connector,
                action,
                input,
                ..
            } => {
                for e in input.values() {
                    for p in e.paths() {
                        if let Some(f) = field_of(d, p) {
                            note(f);
                        }
                    }
                }
                if let Some(a) = connector.def().action(action) {
                    for (k, e) in input {
                        if let Some(f) = a.input.iter().find(|f| f.name == k) {
                            if let ferry_core::mapping::Expr::Object { fields } = e {
                                for name in fields.keys() {
                                    if let Some(sub) = f.fields.iter().find(|x| x.name == name) {
                                        note((*connector, sub));
                                    }
                                }
                            } else {
                                note((*connector, f));
                            }
                        }
                    }
                }
            }
            StepKind::Validate { rules } => {
                for r in rules {
                    if let Some(f) = field_of(d, &r.path) {
                        note(f);
                    }
                }
            }
            StepKind::Map { output } => {
                for e in output.values() {
                    for p in e.paths() {
                        if let Some(f) = field_of(d, p) {
                            note(f);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.into_iter().collect()
}

/// Personal data a definition handles, in words.
pub(crate) fn sensitivity(d: &Definition, overrides: &FieldClasses) -> String {
    let fields = classified(d, overrides);
    let of = |c: PiiClass| -> Vec<String> {
        fields
            .iter()
            .filter(|(_, k)| *k == c)
            .map(|(l, _)| l.to_lowercase())
            .collect()
    };
    let identity = of(PiiClass::Identity);
    let contact = of(PiiClass::Contact);
    match (identity.is_empty(), contact.is_empty()) {
        (false, _) => format!(
            "High: identity data ({}){}",
            identity.join(", "),
            if contact.is_empty() {
                String::new()
            } else {
                format!(" and contact data ({})", contact.join(", "))
            }
        ),
        (true, false) => format!("Personal: contact data ({})", contact.join(", ")),
        (true, true) => "None: no personal data".into(),
    }
}

/// The systems a definition writes to.
fn destinations(d: &Definition) -> Vec<ConnectorKey> {
    let mut out = Vec::new();
    for s in &d.steps {
        if let StepKind::Action {
            connector, action, ..
        } = &s.kind
            && connector
                .def()
                .action(action)
                .is_some_and(|a| a.side_effect)
            && !out.contains(connector)
        {
            out.push(*connector);
        }
    }
    out
}

/// The fields written back to the trigger's system (the record's own
/// properties; not the id that names the record).
fn written_back(d: &Definition) -> Vec<String> {
    let mut out = Vec::new();
    for s in &d.steps {
        let StepKind::Action {
            connector,
            action,
            input,
            ..
        } = &s.kind
        else {
            continue;
        };
        let Some(def) = connector.def().action(action) else {
            continue;
        };
        if *connector != d.trigger.connector || !def.side_effect {
            continue;
        }
        for (k, e) in input {
            match e {
                ferry_core::mapping::Expr::Object { fields } => {
                    out.extend(fields.keys().cloned());
                }
                _ if def
                    .input
                    .iter()
                    .any(|f| f.name == k && f.ty == ferry_core::catalog::FieldType::Id) => {}
                _ => out.push(k.clone()),
            }
        }
    }
    out
}

impl Evidence {
    /// One integration's documentation, as it is now.
    pub async fn documentation(
        &self,
        admin: &Member,
        id: &WorkflowId,
    ) -> Result<Documentation, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let tenant = &admin.tenant_id;
        let wf = workflows::get(db, tenant, id).await?;
        let d = &wf.draft;
        let profile = Profile::from_json(&wf.profile);
        let conns = connections::list(db, tenant).await?;
        let systems = d
            .connectors()
            .into_iter()
            .map(|k| {
                let conn = wf
                    .bindings
                    .get(k.as_str())
                    .and_then(|c| conns.iter().find(|x| &x.id == c));
                (
                    k.def().name.to_owned(),
                    conn.map_or_else(|| "(none chosen)".to_owned(), |c| c.name.clone()),
                    conn.map_or_else(String::new, |c| c.environment.as_str().to_owned()),
                )
            })
            .collect();
        let mut rules = Vec::new();
        let mut error_handling = Vec::new();
        for s in &d.steps {
            match &s.kind {
                StepKind::Validate { rules: rs } => {
                    for r in rs {
                        rules.push((
                            s.title(),
                            r.path.to_string(),
                            describe::check_text(&r.check),
                        ));
                    }
                }
                StepKind::Action { retry, .. } => error_handling.push(format!(
                    "{}: a failed call is tried {} time(s) in all, with exponential back-off from {} ms and jitter (honouring Retry-After); after the last attempt the run is dead-lettered and alerted.",
                    s.title(),
                    retry.attempts,
                    retry.backoff_ms
                )),
                StepKind::Wait { timeout_secs, .. } => error_handling.push(format!(
                    "{}: when the awaited event does not come within {}, the run times out and the outcome-deadline alert fires.",
                    s.title(),
                    describe::duration_text(*timeout_secs)
                )),
                _ => {}
            }
        }
        error_handling.push(
            "A record that fails validation is not written; the run fails with the field and the rule named, and counts towards the error-rate alert.".into(),
        );
        error_handling.push(
            "The same event delivered twice starts one run; a record already processed is skipped with a log line saying so.".into(),
        );
        let mut escalation = Vec::new();
        for rule in alerts::list(db, tenant, Some(id)).await? {
            if !rule.enabled {
                continue;
            }
            let mut line = format!(
                "{}: {}",
                rule.kind.label(),
                person(db, &rule.recipient_id).await
            );
            if let Some(e) = &rule.escalation_id {
                line.push_str(&format!(
                    ", then {} after {} min unacknowledged",
                    person(db, e).await,
                    rule.escalate_after_minutes
                ));
            }
            escalation.push(line);
        }
        if !profile.escalation.is_empty() {
            escalation.push(format!("Beyond that: {}", profile.escalation));
        }
        let versions = workflows::versions(db, tenant, id).await?;
        let live_version = wf
            .published_version
            .and_then(|n| versions.iter().find(|v| v.version == n));
        let live = match live_version {
            Some(v) => Some((v.version, person(db, &v.published_by).await, v.published_at)),
            None => None,
        };
        let unpublished = live_version
            .map(|v| ferry_core::workflow::changes(&v.definition, d))
            .unwrap_or_default();
        Ok(Documentation {
            id: wf.id.clone(),
            name: wf.name.clone(),
            outcome: if profile.outcome.is_empty() {
                wf.description.clone()
            } else {
                profile.outcome.clone()
            },
            description: wf.description.clone(),
            trigger: describe::trigger_text(d),
            systems,
            mapped: describe::mapped_fields(d),
            rules,
            steps: d
                .steps
                .iter()
                .map(|s| (s.title(), describe::step_lines(s)))
                .collect(),
            error_handling,
            escalation,
            owner: person(db, &wf.owner_id).await,
            updated_at: wf.updated_at,
            live,
            unpublished,
            review_due: wf.review_due_at,
            sensitivity: sensitivity(d, &tenants::field_classes(db, tenant).await?),
            profile,
            environment: wf.environment.as_str().to_owned(),
        })
    }

    /// The tenant's integration inventory: one row per workflow.
    pub async fn inventory(&self, admin: &Member) -> Result<Vec<InventoryRow>, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let tenant = &admin.tenant_id;
        let now = self.0.clock.now();
        let classes = tenants::field_classes(db, tenant).await?;
        let mut rows = Vec::new();
        for wf in workflows::list(db, tenant).await? {
            rows.push(self.inventory_row(admin, &wf, &classes, now).await?);
        }
        Ok(rows)
    }

    /// One workflow's inventory row.
    pub async fn inventory_of(
        &self,
        admin: &Member,
        id: &WorkflowId,
    ) -> Result<InventoryRow, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = workflows::get(db, &admin.tenant_id, id).await?;
        let classes = tenants::field_classes(db, &admin.tenant_id).await?;
        self.inventory_row(admin, &wf, &classes, self.0.clock.now())
            .await
    }

    async fn inventory_row(
        &self,
        admin: &Member,
        wf: &workflows::Workflow,
        classes: &FieldClasses,
        now: DateTime<Utc>,
    ) -> Result<InventoryRow, Error> {
        let db = &self.0.db;
        let d = &wf.draft;
        let profile = Profile::from_json(&wf.profile);
        let measured_weekly: u64 =
            runs::counts_between(db, &admin.tenant_id, &wf.id, now - Duration::days(7), now)
                .await?
                .into_iter()
                .filter(|(s, _)| *s != RunStatus::Skipped)
                .map(|(_, n)| n)
                .sum();
        let source = d.trigger.connector.def().name.to_owned();
        let written: Vec<String> = written_back(d);
        Ok(InventoryRow {
            id: wf.id.clone(),
            name: wf.name.clone(),
            source,
            destinations: destinations(d)
                .iter()
                .map(|k| k.def().name)
                .collect::<Vec<_>>()
                .join(", "),
            trigger: describe::trigger_text(d),
            written_back: if written.is_empty() {
                "nothing".into()
            } else {
                written.join(", ")
            },
            manual_step: profile.manual_step,
            expected_weekly: profile.expected_weekly,
            measured_weekly,
            sensitivity: sensitivity(d, classes),
            version: wf.published_version,
            owner: person(db, &wf.owner_id).await,
            review_due: wf.review_due_at,
        })
    }

    /// Replaces a workflow's profile (audited).
    pub async fn set_profile(
        &self,
        admin: &Member,
        id: &WorkflowId,
        profile: &Profile,
    ) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        workflows::set_profile(&tx, &admin.tenant_id, id, &profile.to_json(), now).await?;
        audit_entry::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowProfileChanged,
            Target("workflow", id.as_str()),
            json!({
                "outcome": !profile.outcome.is_empty(),
                "manual_step": !profile.manual_step.is_empty(),
                "expected_weekly": profile.expected_weekly,
                "escalation": !profile.escalation.is_empty(),
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The inventory as CSV.
    pub async fn inventory_export(&self, admin: &Member) -> Result<String, Error> {
        let rows = self.inventory(admin).await?;
        inventory_csv(&rows)
    }
}

/// Inventory rows as CSV, in the audit template's columns.
pub fn inventory_csv(rows: &[InventoryRow]) -> Result<String, Error> {
    super::csv_text(
        [
            "workflow",
            "source_system",
            "destination",
            "trigger_event",
            "data_written_back",
            "manual_step_replaced",
            "weekly_volume_expected",
            "weekly_volume_measured",
            "data_sensitivity",
            "live_version",
            "owner",
            "review_due",
        ],
        rows.iter().map(|r| {
            [
                sanitize(&r.name),
                sanitize(&r.source),
                sanitize(&r.destinations),
                sanitize(&r.trigger),
                sanitize(&r.written_back),
                sanitize(&r.manual_step),
                r.expected_weekly.map(|n| n.to_string()).unwrap_or_default(),
                r.measured_weekly.to_string(),
                sanitize(&r.sensitivity),
                r.version.map(|n| n.to_string()).unwrap_or_default(),
                sanitize(&r.owner),
                r.review_due
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ]
        }),
    )
}

/// Markdown text escaped for a table cell or a line.
fn md(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .replace('<', "&lt;")
}

/// The documentation as Markdown.
pub fn markdown(doc: &Documentation) -> String {
    let mut out = String::new();
    let date = |d: DateTime<Utc>| d.format("%Y-%m-%d %H:%M UTC").to_string();
    out.push_str(&format!("# {}\n\n", md(&doc.name)));
    out.push_str(&format!("**Business outcome:** {}\n\n", md(&doc.outcome)));
    out.push_str(&format!("- **Trigger:** {}\n", md(&doc.trigger)));
    out.push_str(&format!("- **Owner:** {}\n", md(&doc.owner)));
    out.push_str(&format!("- **Environment:** {}\n", doc.environment));
    match &doc.live {
        Some((v, by, at)) => out.push_str(&format!(
            "- **Live version:** {v}, published by {} on {}\n",
            md(by),
            date(*at)
        )),
        None => out.push_str("- **Live version:** not published\n"),
    }
    out.push_str(&format!("- **Last updated:** {}\n", date(doc.updated_at)));
    if let Some(d) = doc.review_due {
        out.push_str(&format!(
            "- **Next review due:** {}\n",
            d.format("%Y-%m-%d")
        ));
    }
    out.push_str(&format!(
        "- **Data sensitivity:** {}\n",
        md(&doc.sensitivity)
    ));
    if !doc.profile.manual_step.is_empty() {
        out.push_str(&format!(
            "- **Manual step it replaces:** {}\n",
            md(&doc.profile.manual_step)
        ));
    }
    if !doc.unpublished.is_empty() {
        out.push_str(&format!(
            "\n> The draft has unpublished changes: {}\n",
            md(&doc.unpublished.join(" "))
        ));
    }
    out.push_str(
        "\n## Systems connected\n\n| System | Connection | Environment |\n|---|---|---|\n",
    );
    for (s, c, e) in &doc.systems {
        out.push_str(&format!("| {} | {} | {} |\n", md(s), md(c), md(e)));
    }
    out.push_str("\n## Fields mapped\n\n| Step | System | Field | From |\n|---|---|---|---|\n");
    for (step, sys, field, from) in &doc.mapped {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            md(step),
            md(sys),
            md(field),
            md(from)
        ));
    }
    out.push_str("\n## Validation rules\n\n");
    if doc.rules.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("| Step | Field | Rule |\n|---|---|---|\n");
        for (step, field, rule) in &doc.rules {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                md(step),
                md(field),
                md(rule)
            ));
        }
    }
    out.push_str("\n## Steps\n\n");
    for (i, (title, lines)) in doc.steps.iter().enumerate() {
        out.push_str(&format!("{}. **{}**\n", i + 1, md(title)));
        for l in lines {
            out.push_str(&format!("   - {}: {}\n", md(&l.label), md(&l.value)));
        }
    }
    out.push_str("\n## Error handling\n\n");
    for l in &doc.error_handling {
        out.push_str(&format!("- {}\n", md(l)));
    }
    out.push_str("\n## Escalation path\n\n");
    if doc.escalation.is_empty() {
        out.push_str("No alert rule is enabled.\n");
    }
    for l in &doc.escalation {
        out.push_str(&format!("- {}\n", md(l)));
    }
    out
}
