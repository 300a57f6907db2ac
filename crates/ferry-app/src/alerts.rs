//! Monitoring and alerts as a member sees them: the dashboard's numbers
//! (from the rollups the engine keeps), each workflow's health, the alert
//! rules (admins edit them, send a test alert), the incidents with the
//! emails they sent, and acknowledging one. Staff see all of it read-only.

use crate::audit::{self, Target};
use crate::{Error, Member, Parts};
use chrono::{DateTime, Duration, Utc};
use ferry_core::alerts::RuleKind;
use ferry_core::metrics::{Rollup, Span};
use ferry_core::{
    AlertRuleId, AuditAction, FieldError, FieldErrors, IncidentId, UserId, UserStatus, WorkflowId,
};
use ferry_engine::alerts::Evaluator;
use ferry_store::alerts::{self as store, Incident, Notice, Rule, RuleEdit};
use ferry_store::{StoreError, metrics, users, workflows};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Monitoring and alerts.
#[derive(Clone)]
pub struct Alerts(pub(crate) Arc<Parts>);

/// One point of a series: a period's start and its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The start of the hour or day.
    pub at: DateTime<Utc>,
    /// Its counts.
    pub rollup: Rollup,
}

/// How a workflow is doing, at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Runs go through; no alert open.
    Healthy,
    /// Working, but slower than usual or with some failures.
    Degraded,
    /// An alert about failures, writes, credentials or deadlines is open.
    Failing,
    /// Nothing is coming in (not published, or no events for 7 days).
    Silent,
}

impl Health {
    /// Its word on badges.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Failing => "failing",
            Self::Silent => "silent",
        }
    }
}

/// A workflow in the dashboard's list.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Its id.
    pub id: WorkflowId,
    /// Its name.
    pub name: String,
    /// Whether a version is published.
    pub published: bool,
    /// How it is doing.
    pub health: Health,
    /// Why, in a few words.
    pub reason: String,
    /// Its last 24 hours.
    pub day: Rollup,
}

/// The numbers of a dashboard (a tenant's, or one workflow's).
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The last 24 hours, hour by hour (oldest first).
    pub hours: Vec<Point>,
    /// The last 7 days, day by day (oldest first).
    pub days: Vec<Point>,
    /// The workflows and their health.
    pub workflows: Vec<Watched>,
    /// Incidents open now.
    pub open: Vec<IncidentView>,
}

/// An incident with what pages show beside it.
#[derive(Debug, Clone)]
pub struct IncidentView {
    /// The incident.
    pub incident: Incident,
    /// Its workflow's name.
    pub workflow: String,
    /// Its rule's name (error rate, …).
    pub rule: &'static str,
}

/// One incident in full.
#[derive(Debug, Clone)]
pub struct IncidentDetail {
    /// The incident.
    pub view: IncidentView,
    /// Its emails, with recipient names and delivery status.
    pub notices: Vec<(Notice, String)>,
    /// Who acknowledged it, by name.
    pub acknowledged_by: Option<String>,
}

/// A rule with the names pages show.
#[derive(Debug, Clone)]
pub struct RuleView {
    /// The rule.
    pub rule: Rule,
    /// Its workflow's name.
    pub workflow: String,
    /// Its recipient's name.
    pub recipient: String,
    /// Its escalation recipient's name.
    pub escalation: Option<String>,
}

/// A rule and who it may be sent to (the active team).
#[derive(Debug, Clone)]
pub struct RuleDetail {
    /// The rule.
    pub view: RuleView,
    /// Active members, `(id, name)`.
    pub team: Vec<(UserId, String)>,
    /// Its latest incidents.
    pub incidents: Vec<IncidentView>,
}

/// An admin's change to a rule, parsed at the door.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleChange {
    /// The threshold (percent, factor or expected events).
    pub threshold: Option<f64>,
    /// Minimum runs before judging.
    pub min_runs: Option<u64>,
    /// The window, minutes.
    pub window_minutes: u32,
    /// Who is told (none: what was chosen is not a person's id).
    pub recipient: Option<UserId>,
    /// Who is told when nobody acknowledges.
    pub escalation: Escalation,
    /// After how long, minutes.
    pub escalate_after_minutes: u32,
    /// Evaluated or not.
    pub enabled: bool,
}

/// The escalation recipient as chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escalation {
    /// Nobody.
    Nobody,
    /// This person.
    To(UserId),
    /// Not a person's id.
    Invalid,
}

/// Shortest and longest windows a rule may look at.
pub const WINDOW_MINUTES: (u32, u32) = (5, 7 * 24 * 60);
/// Shortest and longest escalation delays.
pub const ESCALATE_MINUTES: (u32, u32) = (15, 7 * 24 * 60);

fn names(members: &[users::Member]) -> HashMap<String, String> {
    members
        .iter()
        .map(|m| (m.user.id.to_string(), m.user.name.clone()))
        .collect()
}

impl Alerts {
    /// The dashboard: the tenant's (or one workflow's) last 24 hours and 7
    /// days, each workflow's health, and the incidents open.
    pub async fn dashboard(
        &self,
        who: &Member,
        workflow: Option<&WorkflowId>,
    ) -> Result<Dashboard, Error> {
        let db = &self.0.db;
        let now = self.0.clock.now();
        let flows = workflows::list(db, &who.tenant_id).await?;
        if let Some(w) = workflow
            && !flows.iter().any(|f| &f.id == w)
        {
            return Err(Error::NotFound);
        }
        let this_hour = Span::Hour.start(now);
        let week_start = this_hour - Duration::days(7) + Duration::hours(1);
        let rows = metrics::of_tenant(db, &who.tenant_id, workflow, Span::Hour, week_start).await?;
        let open = store::open_incidents(db, &who.tenant_id).await?;
        let flow_names: HashMap<&WorkflowId, &str> =
            flows.iter().map(|f| (&f.id, f.name.as_str())).collect();
        let view = |i: Incident| IncidentView {
            workflow: flow_names
                .get(&i.workflow_id)
                .map_or_else(String::new, |n| (*n).to_owned()),
            rule: RuleKind::parse(&i.kind, 0.0, 0).map_or("alert", |k| k.label()),
            incident: i,
        };
        // Hour by hour for 24 h; day by day (ending with this hour) for 7.
        let mut hours: Vec<Point> = (0..24)
            .rev()
            .map(|h| Point {
                at: this_hour - Duration::hours(h),
                rollup: Rollup::default(),
            })
            .collect();
        let mut days: Vec<Point> = (0..7)
            .rev()
            .map(|d| Point {
                at: this_hour - Duration::days(d) - Duration::hours(23),
                rollup: Rollup::default(),
            })
            .collect();
        let mut per_flow: HashMap<&WorkflowId, (Rollup, Rollup)> = HashMap::new();
        for r in &rows {
            if let Some(p) = hours.iter_mut().find(|p| p.at == r.at) {
                p.rollup.add(&r.rollup);
            }
            if let Some(p) = days.iter_mut().rev().find(|p| p.at <= r.at) {
                p.rollup.add(&r.rollup);
            }
            let entry = per_flow.entry(&r.workflow_id).or_default();
            if r.at > this_hour - Duration::hours(24) {
                entry.0.add(&r.rollup);
            }
            entry.1.add(&r.rollup);
        }
        let workflows = flows
            .iter()
            .filter(|f| workflow.is_none_or(|w| &f.id == w))
            .map(|f| {
                let (day, week) = per_flow.get(&f.id).copied().unwrap_or_default();
                let kinds: Vec<&str> = open
                    .iter()
                    .filter(|i| i.workflow_id == f.id)
                    .map(|i| i.kind.as_str())
                    .collect();
                let (health, reason) =
                    judge_health(f.published_version.is_some(), &kinds, &day, &week);
                Watched {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    published: f.published_version.is_some(),
                    health,
                    reason,
                    day,
                }
            })
            .collect();
        let open = open
            .into_iter()
            .filter(|i| workflow.is_none_or(|w| &i.workflow_id == w))
            .map(view)
            .collect();
        Ok(Dashboard {
            hours,
            days,
            workflows,
            open,
        })
    }

    /// Each workflow's health (the workflows list's badges).
    pub async fn health(&self, who: &Member) -> Result<HashMap<WorkflowId, Watched>, Error> {
        Ok(self
            .dashboard(who, None)
            .await?
            .workflows
            .into_iter()
            .map(|w| (w.id.clone(), w))
            .collect())
    }

    /// A workflow's name (lists filtered to one workflow say which); not
    /// found for another tenant's.
    pub async fn workflow_name(&self, who: &Member, id: &WorkflowId) -> Result<String, Error> {
        Ok(workflows::get(&self.0.db, &who.tenant_id, id).await?.name)
    }

    /// A tenant's rules (one workflow's, or all).
    pub async fn rules(
        &self,
        who: &Member,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<RuleView>, Error> {
        let db = &self.0.db;
        let rules = store::list(db, &who.tenant_id, workflow).await?;
        let flows = workflows::list(db, &who.tenant_id).await?;
        let people = names(&users::members(db, &who.tenant_id).await?);
        Ok(rules
            .into_iter()
            .map(|rule| view_rule(rule, &flows, &people))
            .collect())
    }

    /// One rule, who it may go to, and its latest incidents.
    pub async fn rule(&self, who: &Member, id: &AlertRuleId) -> Result<RuleDetail, Error> {
        let db = &self.0.db;
        let rule = store::get(db, &who.tenant_id, id).await?;
        let flows = workflows::list(db, &who.tenant_id).await?;
        let members = users::members(db, &who.tenant_id).await?;
        let people = names(&members);
        let incidents = store::incidents(db, &who.tenant_id, Some(&rule.workflow_id), 50)
            .await?
            .into_iter()
            .filter(|i| i.rule_id == rule.id)
            .take(10)
            .map(|i| IncidentView {
                workflow: String::new(),
                rule: rule.kind.label(),
                incident: i,
            })
            .collect();
        let team = members
            .iter()
            .filter(|m| m.status == UserStatus::Active)
            .map(|m| (m.user.id.clone(), m.user.name.clone()))
            .collect();
        Ok(RuleDetail {
            view: view_rule(rule, &flows, &people),
            team,
            incidents,
        })
    }

    /// Saves an admin's change to a rule, with its audit entry.
    pub async fn update_rule(
        &self,
        admin: &Member,
        id: &AlertRuleId,
        change: RuleChange,
    ) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let rule = store::get(db, &admin.tenant_id, id).await?;
        let mut errors = FieldErrors::new();
        let kind = match &rule.kind {
            RuleKind::ErrorRate { .. } => RuleKind::ErrorRate {
                max_percent: percent(change.threshold, &mut errors),
                min_runs: runs(change.min_runs, &mut errors),
            },
            RuleKind::DestinationWrites { .. } => RuleKind::DestinationWrites {
                max_percent: percent(change.threshold, &mut errors),
            },
            RuleKind::Latency { .. } => RuleKind::Latency {
                factor: match change.threshold {
                    Some(f) if (1.1..=100.0).contains(&f) => f,
                    _ => {
                        errors.push(FieldError::new(
                            "threshold",
                            "Enter how many times slower than usual, from 1.1 to 100.",
                        ));
                        2.0
                    }
                },
                min_runs: runs(change.min_runs, &mut errors),
            },
            RuleKind::Volume { .. } => RuleKind::Volume {
                min_expected: match change.threshold {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Some(n) if (1.0..=1_000_000.0).contains(&n) && n.fract() == 0.0 => n as u64,
                    _ => {
                        errors.push(FieldError::new(
                            "threshold",
                            "Enter a whole number of events from 1 to 1,000,000.",
                        ));
                        1
                    }
                },
            },
            other => other.clone(),
        };
        if !(WINDOW_MINUTES.0..=WINDOW_MINUTES.1).contains(&change.window_minutes)
            && rule.kind.windowed()
        {
            errors.push(FieldError::new(
                "window_minutes",
                "Choose a window from 5 minutes to 7 days.",
            ));
        }
        if !(ESCALATE_MINUTES.0..=ESCALATE_MINUTES.1).contains(&change.escalate_after_minutes) {
            errors.push(FieldError::new(
                "escalate_after_minutes",
                "Choose from 15 minutes to 7 days.",
            ));
        }
        let recipient = match &change.recipient {
            Some(r) if active(db, admin, r).await => Some(r.clone()),
            _ => {
                errors.push(FieldError::new(
                    "recipient",
                    "Choose a person of your firm who is active.",
                ));
                None
            }
        };
        let escalation = match &change.escalation {
            Escalation::Nobody => None,
            Escalation::To(e) if recipient.as_ref() == Some(e) => {
                errors.push(FieldError::new(
                    "escalation",
                    "Choose someone other than the recipient, or nobody.",
                ));
                None
            }
            Escalation::To(e) if active(db, admin, e).await => Some(e.clone()),
            _ => {
                errors.push(FieldError::new(
                    "escalation",
                    "Choose a person of your firm who is active, or nobody.",
                ));
                None
            }
        };
        errors.into_result()?;
        let Some(recipient) = recipient else {
            return Err(Error::Internal(anyhow::anyhow!("recipient checked above")));
        };
        let window_minutes = if rule.kind.windowed() {
            change.window_minutes
        } else {
            rule.window_minutes
        };
        let edit = RuleEdit {
            kind,
            window_minutes,
            recipient_id: recipient,
            escalation_id: escalation,
            escalate_after_minutes: change.escalate_after_minutes,
            enabled: change.enabled,
        };
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        store::update(&tx, &admin.tenant_id, id, &edit, now).await?;
        // Turned off while firing: its incident closes, saying so, with no
        // "resolved" email (nothing was resolved).
        if !edit.enabled
            && let Some(open) = &rule.incident_id
        {
            let incident = store::incident(&tx, &admin.tenant_id, open).await?;
            let fresh = store::get(&tx, &admin.tenant_id, id).await?;
            store::silence(&tx, &fresh, &incident, now).await?;
        }
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::AlertRuleChanged,
            Target("alert_rule", id.as_str()),
            json!({
                "workflow": rule.workflow_id,
                "rule": rule.kind.key(),
                "threshold": edit.kind.threshold(),
                "min_runs": edit.kind.min_runs(),
                "window_minutes": edit.window_minutes,
                "recipient": edit.recipient_id,
                "escalation": edit.escalation_id,
                "escalate_after_minutes": edit.escalate_after_minutes,
                "enabled": edit.enabled,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Emails a test alert for a rule to its recipient.
    pub async fn send_test(&self, admin: &Member, id: &AlertRuleId) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let rule = store::get(db, &admin.tenant_id, id).await?;
        let wf = workflows::get(db, &admin.tenant_id, &rule.workflow_id).await?;
        let sent = self.evaluator().send_test(&rule, &wf.name).await?;
        if !sent {
            return Err(Error::Conflict(
                "The rule's recipient is not an active member any more: choose another first."
                    .into(),
            ));
        }
        audit::record(
            db,
            &admin.actor(),
            AuditAction::AlertRuleTested,
            Target("alert_rule", id.as_str()),
            json!({ "workflow": rule.workflow_id, "rule": rule.kind.key() }),
            self.0.clock.now(),
        )
        .await?;
        Ok(())
    }

    fn evaluator(&self) -> Evaluator {
        Evaluator::new(
            self.0.db.clone(),
            self.0.clock.clone(),
            self.0.mailer.clone(),
            &self.0.links.public_url,
        )
    }

    /// The alert history: incidents newest first, one workflow's or all.
    pub async fn incidents(
        &self,
        who: &Member,
        workflow: Option<&WorkflowId>,
    ) -> Result<Vec<IncidentView>, Error> {
        let db = &self.0.db;
        let flows = workflows::list(db, &who.tenant_id).await?;
        if let Some(w) = workflow
            && !flows.iter().any(|f| &f.id == w)
        {
            return Err(Error::NotFound);
        }
        Ok(store::incidents(db, &who.tenant_id, workflow, 200)
            .await?
            .into_iter()
            .map(|i| IncidentView {
                workflow: flows
                    .iter()
                    .find(|f| f.id == i.workflow_id)
                    .map_or_else(String::new, |f| f.name.clone()),
                rule: RuleKind::parse(&i.kind, 0.0, 0).map_or("alert", |k| k.label()),
                incident: i,
            })
            .collect())
    }

    /// One incident with its emails and their delivery status.
    pub async fn incident(&self, who: &Member, id: &IncidentId) -> Result<IncidentDetail, Error> {
        let db = &self.0.db;
        let incident = store::incident(db, &who.tenant_id, id).await?;
        let people = names(&users::members(db, &who.tenant_id).await?);
        let workflow = match workflows::get(db, &who.tenant_id, &incident.workflow_id).await {
            Ok(w) => w.name,
            Err(StoreError::NotFound) => String::new(),
            Err(e) => return Err(e.into()),
        };
        let notices = store::notices(db, &who.tenant_id, id)
            .await?
            .into_iter()
            .map(|n| {
                let name = people
                    .get(n.recipient_id.as_str())
                    .cloned()
                    .unwrap_or_default();
                (n, name)
            })
            .collect();
        let acknowledged_by = incident
            .acknowledged_by
            .as_ref()
            .and_then(|u| people.get(u.as_str()).cloned());
        Ok(IncidentDetail {
            view: IncidentView {
                workflow,
                rule: RuleKind::parse(&incident.kind, 0.0, 0).map_or("alert", |k| k.label()),
                incident,
            },
            notices,
            acknowledged_by,
        })
    }

    /// Acknowledges an open incident: no escalation, no reminders.
    pub async fn acknowledge(&self, admin: &Member, id: &IncidentId) -> Result<(), Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let incident = store::incident(db, &admin.tenant_id, id).await?;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        if !store::acknowledge(&tx, &admin.tenant_id, id, &admin.user_id, now).await? {
            return Err(Error::Conflict(
                "This alert is already acknowledged or resolved.".into(),
            ));
        }
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::IncidentAcknowledged,
            Target("incident", id.as_str()),
            json!({ "workflow": incident.workflow_id, "rule": incident.kind }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn active(db: &ferry_store::Db, admin: &Member, user: &UserId) -> bool {
    users::member(db, &admin.tenant_id, user)
        .await
        .is_ok_and(|m| m.status == UserStatus::Active)
}

fn view_rule(
    rule: Rule,
    flows: &[workflows::Workflow],
    people: &HashMap<String, String>,
) -> RuleView {
    RuleView {
        workflow: flows
            .iter()
            .find(|f| f.id == rule.workflow_id)
            .map_or_else(String::new, |f| f.name.clone()),
        recipient: people
            .get(rule.recipient_id.as_str())
            .cloned()
            .unwrap_or_default(),
        escalation: rule
            .escalation_id
            .as_ref()
            .and_then(|e| people.get(e.as_str()).cloned()),
        rule,
    }
}

fn percent(v: Option<f64>, errors: &mut FieldErrors) -> f64 {
    match v {
        Some(p) if (0.0..=100.0).contains(&p) => p,
        _ => {
            errors.push(FieldError::new(
                "threshold",
                "Enter a percentage from 0 to 100.",
            ));
            2.0
        }
    }
}

fn runs(v: Option<u64>, errors: &mut FieldErrors) -> u64 {
    match v {
        Some(n) if (1..=1_000_000).contains(&n) => n,
        _ => {
            errors.push(FieldError::new(
                "min_runs",
                "Enter a whole number of runs from 1 to 1,000,000.",
            ));
            5
        }
    }
}

/// A workflow's health from its open incidents and its numbers.
fn judge_health(published: bool, open: &[&str], day: &Rollup, week: &Rollup) -> (Health, String) {
    const FAILING: [&str; 4] = [
        "error_rate",
        "destination_writes",
        "authentication",
        "outcome_deadline",
    ];
    if let Some(k) = open.iter().find(|k| FAILING.contains(k)) {
        let label = RuleKind::parse(k, 0.0, 0).map_or("an", |r| r.label());
        return (Health::Failing, format!("{label} alert open"));
    }
    if open.contains(&"volume") {
        return (Health::Silent, "no events where some were expected".into());
    }
    if !published {
        return (Health::Silent, "not published".into());
    }
    if open.contains(&"latency") {
        return (Health::Degraded, "slower than usual".into());
    }
    if day.failures() > 0 {
        return (
            Health::Degraded,
            format!("{} of {} runs failed in 24 h", day.failures(), day.ended()),
        );
    }
    if week.events == 0 {
        return (Health::Silent, "no events in 7 days".into());
    }
    (Health::Healthy, "runs going through".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_incidents_then_numbers() {
        let busy = Rollup {
            events: 10,
            succeeded: 10,
            ..Rollup::default()
        };
        let failing = Rollup {
            events: 10,
            succeeded: 9,
            dead: 1,
            ..Rollup::default()
        };
        assert_eq!(
            judge_health(true, &["error_rate"], &busy, &busy).0,
            Health::Failing
        );
        assert_eq!(
            judge_health(true, &["latency"], &busy, &busy).0,
            Health::Degraded
        );
        assert_eq!(
            judge_health(true, &[], &failing, &failing).0,
            Health::Degraded
        );
        assert_eq!(
            judge_health(true, &[], &Rollup::default(), &Rollup::default()).0,
            Health::Silent
        );
        assert_eq!(judge_health(false, &[], &busy, &busy).0, Health::Silent);
        assert_eq!(judge_health(true, &[], &busy, &busy).0, Health::Healthy);
    }
}
