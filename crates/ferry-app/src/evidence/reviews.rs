//! 90-day reviews: the form with the three questions, pre-filled with what
//! Ferry measured (error-rate trend, scopes the connections lack, failures
//! that point at upstream changes); the review log; what is due.

use super::Evidence;
use crate::audit::{self as audit_entry, Target};
use crate::{Error, Member};
use chrono::{DateTime, Duration, Utc};
use ferry_core::workflow::{Definition, StepKind};
use ferry_core::{AuditAction, FieldError, FieldErrors, WorkflowId};
use ferry_store::connections;
use ferry_store::runs::{self, RunStatus};
use ferry_store::workflows::{self, Review};
use serde_json::json;

/// What Ferry measured for a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// Runs in the last 30 days, and how many failed.
    pub recent: (u64, u64),
    /// Runs in the 60 days before, and how many failed.
    pub before: (u64, u64),
    /// The error-rate trend in words.
    pub trend: String,
    /// Scopes a bound connection lacks for what the workflow does.
    pub missing_scopes: Vec<String>,
    /// Failed step attempts in 90 days, per kind: drift upstream shows
    /// here (validation failures: the data changed shape; action
    /// failures: the API changed or refused).
    pub failures: Vec<(String, u64)>,
}

impl Measured {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "recent_runs": self.recent.0, "recent_failed": self.recent.1,
            "before_runs": self.before.0, "before_failed": self.before.1,
            "trend": self.trend,
            "missing_scopes": self.missing_scopes,
            "failures": self.failures.iter().map(|(k, n)| json!({"kind": k, "count": n})).collect::<Vec<_>>(),
        })
    }

    /// What the measures suggest for each question, in words.
    pub fn hints(&self) -> [String; 3] {
        let delivering = if self.recent.0 == 0 {
            "No runs in the last 30 days: check the outcome is still wanted and the trigger still fires.".to_owned()
        } else {
            format!(
                "{} runs in the last 30 days, {} failed ({}).",
                self.recent.0, self.recent.1, self.trend
            )
        };
        let upstream = {
            let mut said = Vec::new();
            if !self.missing_scopes.is_empty() {
                said.push(format!(
                    "connections lack scopes: {}",
                    self.missing_scopes.join(", ")
                ));
            }
            for (k, n) in &self.failures {
                said.push(format!("{n} failed {k} attempt(s) in 90 days"));
            }
            if said.is_empty() {
                "No scope changes and no failed attempts seen in 90 days.".to_owned()
            } else {
                format!("Seen: {}.", said.join("; "))
            }
        };
        let manual = "Ferry cannot see work done by hand: ask the people who used to do this step."
            .to_owned();
        [delivering, upstream, manual]
    }
}

/// The review form's content.
#[derive(Debug, Clone)]
pub struct ReviewForm {
    /// The workflow's name.
    pub name: String,
    /// When the review is due.
    pub due: Option<DateTime<Utc>>,
    /// What Ferry measured.
    pub measured: Measured,
    /// The reviews so far, newest first.
    pub log: Vec<Review>,
}

/// A reviewer's answers: yes or no to each of the three questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answers {
    /// Still delivering the outcome it was built for?
    pub delivering: bool,
    /// Silent errors from upstream changes (API updates, renamed fields,
    /// changed scopes)?
    pub silent_errors: bool,
    /// Manual steps re-introduced around it?
    pub manual_steps: bool,
}

/// The longest review note.
pub const MAX_NOTES: usize = 4000;

impl Answers {
    /// Parses the form's yes/no answers; each question must be answered.
    pub fn parse(
        delivering: &str,
        silent_errors: &str,
        manual_steps: &str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut yes_no = |field: &'static str, raw: &str| match raw {
            "yes" => true,
            "no" => false,
            _ => {
                errors.push(FieldError::new(field, "Answer yes or no."));
                false
            }
        };
        let a = Self {
            delivering: yes_no("delivering", delivering),
            silent_errors: yes_no("silent_errors", silent_errors),
            manual_steps: yes_no("manual_steps", manual_steps),
        };
        errors.into_result()?;
        Ok(a)
    }
}

/// A workflow whose review is due, for the dashboard.
#[derive(Debug, Clone)]
pub struct ReviewDue {
    /// The workflow.
    pub id: WorkflowId,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// When it is (was) due.
    pub due: Option<DateTime<Utc>>,
    /// Past due.
    pub overdue: bool,
    /// The last review, if any.
    pub last: Option<DateTime<Utc>>,
}

fn rate((runs, failed): (u64, u64)) -> f64 {
    if runs == 0 {
        0.0
    } else {
        failed as f64 / runs as f64
    }
}

fn split(counts: &[(RunStatus, u64)]) -> (u64, u64) {
    let ended: u64 = counts
        .iter()
        .filter(|(s, _)| s.is_final() && *s != RunStatus::Skipped)
        .map(|(_, n)| n)
        .sum();
    let failed: u64 = counts
        .iter()
        .filter(|(s, _)| matches!(s, RunStatus::Failed | RunStatus::Dead))
        .map(|(_, n)| n)
        .sum();
    (ended, failed)
}

/// Scopes the definition needs from each connector.
fn scopes_needed(d: &Definition) -> Vec<(ferry_core::catalog::ConnectorKey, &'static str)> {
    let mut out = Vec::new();
    if let Some(t) = d.trigger.connector.def().trigger(&d.trigger.event) {
        out.extend(t.scopes.iter().map(|s| (d.trigger.connector, *s)));
    }
    for s in &d.steps {
        if let StepKind::Action {
            connector, action, ..
        } = &s.kind
            && let Some(a) = connector.def().action(action)
        {
            out.extend(a.scopes.iter().map(|s| (*connector, *s)));
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Evidence {
    /// What Ferry measured about a workflow for its review.
    async fn measure(&self, admin: &Member, wf: &workflows::Workflow) -> Result<Measured, Error> {
        let db = &self.0.db;
        let tenant = &admin.tenant_id;
        let now = self.0.clock.now();
        let recent =
            split(&runs::counts_between(db, tenant, &wf.id, now - Duration::days(30), now).await?);
        let before = split(
            &runs::counts_between(
                db,
                tenant,
                &wf.id,
                now - Duration::days(90),
                now - Duration::days(30),
            )
            .await?,
        );
        let (r, b) = (rate(recent), rate(before));
        let trend = if recent.0 == 0 && before.0 == 0 {
            "no runs to compare".to_owned()
        } else if (r - b).abs() < 0.005 {
            format!("error rate steady at {:.1}%", r * 100.0)
        } else if r > b {
            format!("error rate up from {:.1}% to {:.1}%", b * 100.0, r * 100.0)
        } else {
            format!(
                "error rate down from {:.1}% to {:.1}%",
                b * 100.0,
                r * 100.0
            )
        };
        let conns = connections::list(db, tenant).await?;
        let mut missing_scopes = Vec::new();
        for (connector, scope) in scopes_needed(&wf.draft) {
            let Some(c) = wf
                .bindings
                .get(connector.as_str())
                .and_then(|id| conns.iter().find(|c| &c.id == id))
            else {
                continue;
            };
            // Connections that list no scopes (API keys) grant everything.
            if !c.scopes.is_empty() && !c.scopes.iter().any(|s| s == scope) {
                missing_scopes.push(format!("{} ({})", scope, c.name));
            }
        }
        let failures =
            runs::failed_steps_since(db, tenant, &wf.id, now - Duration::days(90)).await?;
        Ok(Measured {
            recent,
            before,
            trend,
            missing_scopes,
            failures,
        })
    }

    /// The review form of a workflow, pre-filled with what Ferry measured,
    /// and its review log.
    pub async fn review_form(&self, admin: &Member, id: &WorkflowId) -> Result<ReviewForm, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let wf = workflows::get(db, &admin.tenant_id, id).await?;
        Ok(ReviewForm {
            measured: self.measure(admin, &wf).await?,
            log: workflows::reviews(db, &admin.tenant_id, id).await?,
            name: wf.name,
            due: wf.review_due_at,
        })
    }

    /// Records a review (with what Ferry measured now) and sets the next
    /// due date; returns it.
    pub async fn submit_review(
        &self,
        admin: &Member,
        id: &WorkflowId,
        answers: Answers,
        notes: &str,
    ) -> Result<DateTime<Utc>, Error> {
        admin.require_admin()?;
        let notes = notes.trim();
        if notes.chars().count() > MAX_NOTES {
            return Err(Error::field(
                "notes",
                format!("Keep the notes under {MAX_NOTES} characters."),
            ));
        }
        if (!answers.delivering || answers.silent_errors || answers.manual_steps)
            && notes.is_empty()
        {
            return Err(Error::field(
                "notes",
                "An answer shows a problem: say in the notes what was found and what will be done.",
            ));
        }
        let db = &self.0.db;
        let wf = workflows::get(db, &admin.tenant_id, id).await?;
        let measured = self.measure(admin, &wf).await?.to_json();
        let answers_json = json!({
            "delivering": answers.delivering,
            "silent_errors": answers.silent_errors,
            "manual_steps": answers.manual_steps,
        });
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        let due = workflows::add_review(
            &tx,
            &admin.tenant_id,
            id,
            workflows::NewReview {
                reviewer_id: &admin.user_id,
                reviewer_label: &admin.label,
                answers: &answers_json,
                notes,
                measured: &measured,
            },
            now,
        )
        .await?;
        audit_entry::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowReviewed,
            Target("workflow", id.as_str()),
            json!({ "answers": answers_json, "next_due": due.format("%Y-%m-%d").to_string() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(due)
    }

    /// Every workflow's review standing, soonest due first.
    pub async fn reviews_due(&self, admin: &Member) -> Result<Vec<ReviewDue>, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let now = self.0.clock.now();
        let mut out = Vec::new();
        for wf in workflows::list(db, &admin.tenant_id).await? {
            let last = workflows::reviews(db, &admin.tenant_id, &wf.id)
                .await?
                .first()
                .map(|r| r.reviewed_at);
            out.push(ReviewDue {
                owner: crate::person_name(db, &wf.owner_id).await,
                overdue: wf.review_due_at.is_some_and(|d| d <= now),
                due: wf.review_due_at,
                last,
                id: wf.id,
                name: wf.name,
            });
        }
        out.sort_by_key(|r| (r.due.is_none(), r.due));
        Ok(out)
    }
}
