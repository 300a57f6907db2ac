//! Alerts: the incident history (per tenant and per workflow), an incident
//! with its emails and their delivery, acknowledging it, and the rules
//! (listed, edited, a test alert). Staff see everything read-only.

use crate::error::AppError;
use crate::session::{Admin, Member};
use crate::state::AppState;
use crate::templates::{FlashKind, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_app::alerts::{Escalation, IncidentView, RuleChange, RuleDetail, RuleView};
use ferry_core::alerts::{RuleKind, window_label};
use ferry_core::{AlertRuleId, FieldError, FieldErrors, IncidentId, Role, WorkflowId};

/// "error rate" → "Error rate", for headings and first columns.
pub(crate) fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An incident as a row.
pub(crate) struct IncidentRow {
    pub(crate) id: String,
    pub(crate) workflow: String,
    pub(crate) rule: String,
    pub(crate) summary: String,
    pub(crate) state: &'static str,
    pub(crate) opened: String,
    pub(crate) resolved: String,
}

pub(crate) fn incident_row(v: &IncidentView) -> IncidentRow {
    let i = &v.incident;
    IncidentRow {
        id: i.id.to_string(),
        workflow: v.workflow.clone(),
        rule: capitalised(v.rule),
        summary: i.summary.clone(),
        state: if i.resolved_at.is_some() {
            "resolved"
        } else if i.acknowledged_at.is_some() {
            "acknowledged"
        } else {
            "firing"
        },
        opened: when(i.opened_at),
        resolved: i.resolved_at.map_or_else(|| "—".to_owned(), when),
    }
}

/// `?workflow=` on the lists.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ForWorkflow {
    #[serde(default)]
    workflow: String,
}

impl ForWorkflow {
    /// The workflow asked for; an id that does not parse is nobody's (404).
    fn id(&self) -> Result<Option<WorkflowId>, AppError> {
        let raw = self.workflow.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse().map(Some).map_err(|_| AppError::NotFound)
    }
}

/// The workflow a list is filtered to, as `(id, name)`; another tenant's
/// is a 404.
async fn named(
    state: &AppState,
    member: &Member,
    workflow: Option<&WorkflowId>,
) -> Result<Option<(String, String)>, AppError> {
    Ok(match workflow {
        Some(w) => Some((
            w.to_string(),
            state
                .services
                .alerts
                .workflow_name(&member.actor, w)
                .await?,
        )),
        None => None,
    })
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct HistoryPage {
    layout: Layout,
    rows: Vec<IncidentRow>,
    workflow: Option<(String, String)>,
}

/// GET /alerts: every incident, newest first (or one workflow's).
pub async fn history(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    query: web::Query<ForWorkflow>,
) -> Result<HttpResponse, AppError> {
    let workflow = query.id()?;
    let incidents = state
        .services
        .alerts
        .incidents(&member.actor, workflow.as_ref())
        .await?;
    let name = named(&state, &member, workflow.as_ref()).await?;
    render(
        &req,
        StatusCode::OK,
        &HistoryPage {
            layout: Layout::new(&req, "Alerts", "/alerts"),
            rows: incidents.iter().map(incident_row).collect(),
            workflow: name,
        },
    )
}

struct NoticeRow {
    kind: &'static str,
    recipient: String,
    subject: String,
    status: String,
    delivery: &'static str,
    attempts: i32,
    at: String,
}

fn delivery(status: &str) -> &'static str {
    match status {
        "sent" => "sent",
        "queued" => "waiting to send",
        "outbox" => "not sent: no mail server",
        "failed" => "failed",
        _ => "unknown",
    }
}

fn notice_kind(kind: &str) -> &'static str {
    match kind {
        "opened" => "Alert opened",
        "escalated" => "Escalated",
        "resolved" => "Resolved",
        _ => "Other",
    }
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    layout: Layout,
    row: IncidentRow,
    runs_links: Vec<(&'static str, String)>,
    no_mail_server: bool,
    workflow_id: String,
    rule_id: String,
    acknowledged: String,
    escalated: String,
    notices: Vec<NoticeRow>,
    can_acknowledge: bool,
}

/// GET /alerts/{id}: one incident, its emails and their delivery.
pub async fn incident(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<IncidentId>,
) -> Result<HttpResponse, AppError> {
    let d = state
        .services
        .alerts
        .incident(&member.actor, &id.into_inner())
        .await?;
    let i = &d.view.incident;
    let acknowledged = match (&d.acknowledged_by, i.acknowledged_at) {
        (Some(who), Some(at)) => format!("{who}, {}", when(at)),
        (None, Some(at)) => when(at),
        _ => String::new(),
    };
    let wf = &i.workflow_id;
    let since = i.opened_at.format("%Y-%m-%dT%H:%M").to_string();
    let runs_links = if i.kind == "error_rate" {
        vec![
            (
                "Runs that gave up after their retries",
                format!("/runs?workflow={wf}&status=dead"),
            ),
            (
                "Runs that failed",
                format!("/runs?workflow={wf}&status=failed"),
            ),
        ]
    } else if i.kind == "authentication" {
        vec![("Connections", "/connections".to_owned())]
    } else if i.kind == "review_overdue" {
        vec![("The review form", format!("/workflows/{wf}/review"))]
    } else {
        vec![(
            "The workflow's runs since it opened",
            format!("/runs?workflow={wf}&from={since}"),
        )]
    };
    let page = IncidentPage {
        layout: Layout::new(&req, "Alert", "/alerts"),
        runs_links,
        no_mail_server: d.notices.iter().any(|(n, _)| n.email.status == "outbox"),
        row: incident_row(&d.view),
        workflow_id: i.workflow_id.to_string(),
        rule_id: i.rule_id.to_string(),
        acknowledged,
        escalated: i.escalated_at.map_or_else(String::new, when),
        can_acknowledge: member.role == Role::Admin
            && i.resolved_at.is_none()
            && i.acknowledged_at.is_none(),
        notices: d
            .notices
            .iter()
            .map(|(n, name)| NoticeRow {
                kind: notice_kind(&n.kind),
                recipient: name.clone(),
                subject: n.email.subject.clone(),
                status: n.email.status.clone(),
                delivery: delivery(&n.email.status),
                attempts: n.email.attempts,
                at: when(n.email.created_at),
            })
            .collect(),
    };
    render(&req, StatusCode::OK, &page)
}

/// Back to `to` with `done` said, or with why the service refused.
fn answered(
    to: &str,
    result: Result<(), ferry_app::Error>,
    done: &str,
) -> Result<HttpResponse, AppError> {
    match result {
        Ok(()) => Ok(redirect_with_flash(to, FlashKind::Success, done)),
        Err(ferry_app::Error::Conflict(why)) => Ok(redirect_with_flash(to, FlashKind::Error, &why)),
        Err(e) => Err(e.into()),
    }
}

/// POST /alerts/{id}/acknowledge (admin).
pub async fn acknowledge(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<IncidentId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let to = format!("/alerts/{id}");
    let done = state.services.alerts.acknowledge(&admin.actor, &id).await;
    answered(
        &to,
        done,
        "Acknowledged: the rule's second contact will not be emailed. You still get an email when it resolves.",
    )
}

struct RuleRow {
    id: String,
    workflow: String,
    workflow_id: String,
    rule: String,
    condition: String,
    recipient: String,
    escalation: String,
    enabled: bool,
    state: &'static str,
}

fn condition(kind: &RuleKind, window_minutes: u32) -> String {
    let w = window_label(window_minutes);
    match kind {
        RuleKind::ErrorRate {
            max_percent,
            min_runs,
        } => format!("more than {max_percent}% of runs fail in {w} (from {min_runs} runs)"),
        RuleKind::Latency { factor, min_runs } => {
            format!("p95 over {w} above {factor}× the usual (from {min_runs} runs)")
        }
        RuleKind::Volume { min_expected } => {
            format!("no events in {w} when at least {min_expected} are usual")
        }
        RuleKind::DestinationWrites { max_percent } => {
            format!("more than {max_percent}% of writes fail in {w}, or none land")
        }
        RuleKind::OutcomeDeadline => format!("an outcome deadline missed in {w}"),
        RuleKind::Authentication => {
            "a connection stops working or its credential expires within 7 days".into()
        }
        RuleKind::ReviewOverdue => format!(
            "the 90-day review is {} days past its due date",
            ferry_core::alerts::REVIEW_GRACE_DAYS
        ),
    }
}

fn rule_row(v: &RuleView) -> RuleRow {
    RuleRow {
        id: v.rule.id.to_string(),
        workflow: v.workflow.clone(),
        workflow_id: v.rule.workflow_id.to_string(),
        rule: capitalised(v.rule.kind.label()),
        condition: condition(&v.rule.kind, v.rule.window_minutes),
        recipient: v.recipient.clone(),
        escalation: v.escalation.clone().unwrap_or_else(|| "—".into()),
        enabled: v.rule.enabled,
        state: match v.rule.state {
            ferry_core::alerts::Incident::Firing {
                acknowledged: true, ..
            } => "acknowledged",
            ferry_core::alerts::Incident::Firing { .. } => "firing",
            ferry_core::alerts::Incident::Ok { .. } => "ok",
        },
    }
}

#[derive(Template)]
#[template(path = "alert_rules.html")]
struct RulesPage {
    layout: Layout,
    rows: Vec<RuleRow>,
    workflow: Option<(String, String)>,
    is_admin: bool,
}

/// GET /alerts/rules: every rule (or one workflow's).
pub async fn rules(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    query: web::Query<ForWorkflow>,
) -> Result<HttpResponse, AppError> {
    let workflow = query.id()?;
    let name = named(&state, &member, workflow.as_ref()).await?;
    let rules = state
        .services
        .alerts
        .rules(&member.actor, workflow.as_ref())
        .await?;
    render(
        &req,
        StatusCode::OK,
        &RulesPage {
            layout: Layout::new(&req, "Alert rules", "/alerts"),
            rows: rules.iter().map(rule_row).collect(),
            workflow: name,
            is_admin: member.role == Role::Admin,
        },
    )
}

/// The rule form, as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    min_runs: String,
    #[serde(default)]
    window_minutes: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    escalation: String,
    #[serde(default)]
    escalate_after_minutes: String,
    #[serde(default)]
    enabled: String,
}

impl RuleForm {
    fn of(v: &RuleView) -> Self {
        let r = &v.rule;
        Self {
            threshold: format!("{}", r.kind.threshold()),
            min_runs: r.kind.min_runs().to_string(),
            window_minutes: r.window_minutes.to_string(),
            recipient: r.recipient_id.to_string(),
            escalation: r
                .escalation_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            escalate_after_minutes: r.escalate_after_minutes.to_string(),
            enabled: if r.enabled {
                "on".into()
            } else {
                String::new()
            },
        }
    }
}

impl TryFrom<&RuleForm> for RuleChange {
    type Error = FieldErrors;
    fn try_from(f: &RuleForm) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let whole = |raw: &str| raw.trim().parse::<u32>().ok();
        let threshold = if f.threshold.trim().is_empty() {
            None
        } else if f.threshold.contains(',') {
            // "2,5" is 2.5 to some and 25 to others: neither is guessed.
            errors.push(FieldError::new(
                "threshold",
                "Use a dot for decimals (2.5) and no thousands separator.",
            ));
            None
        } else {
            let v = f
                .threshold
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite());
            if v.is_none() {
                errors.push(FieldError::new("threshold", "Enter a number."));
            }
            v
        };
        let min_runs = if f.min_runs.trim().is_empty() {
            None
        } else {
            let v = f.min_runs.trim().parse::<u64>().ok();
            if v.is_none() {
                errors.push(FieldError::new("min_runs", "Enter a whole number of runs."));
            }
            v
        };
        let window_minutes = whole(&f.window_minutes);
        if window_minutes.is_none() {
            errors.push(FieldError::new("window_minutes", "Choose a window."));
        }
        let escalate_after_minutes = whole(&f.escalate_after_minutes);
        if escalate_after_minutes.is_none() {
            errors.push(FieldError::new(
                "escalate_after_minutes",
                "Choose after how long to escalate.",
            ));
        }
        // A recipient that is not a person's id is reported by the service
        // with the rest (it knows who is an active member).
        let recipient = f.recipient.trim().parse().ok();
        let escalation = match f.escalation.trim() {
            "" => Escalation::Nobody,
            raw => raw.parse().map_or(Escalation::Invalid, Escalation::To),
        };
        match (window_minutes, escalate_after_minutes) {
            (Some(window_minutes), Some(escalate_after_minutes)) if errors.is_empty() => {
                Ok(RuleChange {
                    threshold,
                    min_runs,
                    window_minutes,
                    recipient,
                    escalation,
                    escalate_after_minutes,
                    enabled: !f.enabled.is_empty(),
                })
            }
            _ => Err(errors),
        }
    }
}

#[derive(Template)]
#[template(path = "alert_rule.html")]
struct RulePage {
    layout: Layout,
    row: RuleRow,
    describe: &'static str,
    threshold_label: Option<&'static str>,
    has_min_runs: bool,
    has_window: bool,
    form: RuleForm,
    team: Vec<(String, String)>,
    windows: Vec<(String, String)>,
    delays: Vec<(String, String)>,
    errors: FieldErrors,
    incidents: Vec<IncidentRow>,
    is_admin: bool,
}

const WINDOWS: [u32; 9] = [5, 15, 30, 60, 120, 240, 720, 1440, 10080];
const DELAYS: [u32; 7] = [15, 30, 60, 120, 240, 480, 1440];

fn choices(values: &[u32], current: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = values
        .iter()
        .map(|m| (m.to_string(), window_label(*m)))
        .collect();
    // A value set earlier (or typed) that is not a preset stays choosable.
    if let Ok(m) = current.parse::<u32>()
        && !values.contains(&m)
    {
        out.push((m.to_string(), window_label(m)));
    }
    out
}

fn rule_page(
    req: &HttpRequest,
    d: &RuleDetail,
    form: RuleForm,
    errors: FieldErrors,
    is_admin: bool,
) -> RulePage {
    let kind = &d.view.rule.kind;
    RulePage {
        layout: Layout::new(req, format!("Alert rule: {}", kind.label()), "/alerts"),
        row: rule_row(&d.view),
        describe: kind.describe(),
        threshold_label: kind.threshold_label(),
        has_min_runs: matches!(kind, RuleKind::ErrorRate { .. } | RuleKind::Latency { .. }),
        has_window: kind.windowed(),
        windows: choices(&WINDOWS, &form.window_minutes),
        delays: choices(&DELAYS, &form.escalate_after_minutes),
        form,
        team: d
            .team
            .iter()
            .map(|(id, name)| (id.to_string(), name.clone()))
            .collect(),
        errors,
        incidents: d.incidents.iter().map(incident_row).collect(),
        is_admin,
    }
}

/// GET /alerts/rules/{id}: the rule, as a form for admins.
pub async fn rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<AlertRuleId>,
) -> Result<HttpResponse, AppError> {
    let d = state
        .services
        .alerts
        .rule(&member.actor, &id.into_inner())
        .await?;
    let form = RuleForm::of(&d.view);
    render(
        &req,
        StatusCode::OK,
        &rule_page(
            &req,
            &d,
            form,
            FieldErrors::new(),
            member.role == Role::Admin,
        ),
    )
}

/// POST /alerts/rules/{id} (admin): saves the rule; 422 with the fields'
/// problems.
pub async fn save_rule(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<AlertRuleId>,
    form: web::Form<RuleForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let form = form.into_inner();
    let result = match RuleChange::try_from(&form) {
        Err(errors) => Err(ferry_app::Error::Invalid(errors)),
        Ok(change) => {
            state
                .services
                .alerts
                .update_rule(&admin.actor, &id, change)
                .await
        }
    };
    match result {
        Ok(()) => Ok(redirect_with_flash(
            &format!("/alerts/rules/{id}"),
            FlashKind::Success,
            "Rule saved. It applies from the next evaluation (within a minute).",
        )),
        Err(ferry_app::Error::Invalid(errors)) => {
            let d = state.services.alerts.rule(&admin.actor, &id).await?;
            let cut = |s: &str| s.chars().take(40).collect::<String>();
            let form = RuleForm {
                threshold: cut(&form.threshold),
                min_runs: cut(&form.min_runs),
                window_minutes: cut(&form.window_minutes),
                escalate_after_minutes: cut(&form.escalate_after_minutes),
                ..form
            };
            render(
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                &rule_page(&req, &d, form, errors, true),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /alerts/rules/{id}/test (admin): emails a test alert to the
/// rule's recipient.
pub async fn test_rule(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<AlertRuleId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let to = format!("/alerts/rules/{id}");
    let done = state.services.alerts.send_test(&admin.actor, &id).await;
    answered(&to, done, "Test alert sent to the rule's recipient.")
}
