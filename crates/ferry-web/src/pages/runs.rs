//! Runs: the history of every transaction. A list filtered by workflow,
//! status, time range and record id with keyset pagination (also as JSON);
//! a run's timeline of steps and attempts with redacted payloads; replay of
//! a failed run from the step that failed; bulk replay of dead-lettered runs
//! in a time range; a run's log as JSON or CSV. And the staff view of
//! verification outcomes.

use crate::error::AppError;
use crate::session::{Admin, Member};
use crate::state::AppState;
use crate::templates::{FieldErrors, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ferry_core::{FieldError, Role, RunId, WorkflowId};
use ferry_store::runs::{Cursor, Filter, Run, RunStatus, StepRecord};
use serde_json::json;
use std::collections::HashMap;

/// Rows per page.
const PAGE: u64 = 50;

/// The list's query string.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    record: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

/// `2026-11-29`, `2026-11-29T10:30` (a browser's datetime-local) or RFC 3339,
/// read as UTC.
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M") {
        return Some(t.and_utc());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The filter a query asks for, or the field errors.
fn filter_of(q: &ListQuery) -> (Filter, Option<Cursor>, FieldErrors) {
    let mut errors = FieldErrors::new();
    let mut f = Filter::default();
    if !q.workflow.trim().is_empty() {
        match q.workflow.trim().parse::<WorkflowId>() {
            Ok(w) => f.workflow = Some(w),
            Err(_) => errors.push(FieldError::new(
                "workflow",
                "Choose a workflow from the list.",
            )),
        }
    }
    if !q.status.trim().is_empty() {
        match RunStatus::parse(q.status.trim()) {
            Some(s) => f.status = Some(s),
            None => errors.push(FieldError::new("status", "Choose a status from the list.")),
        }
    }
    for (field, raw, slot) in [("from", &q.from, &mut f.from), ("to", &q.to, &mut f.to)] {
        if !raw.trim().is_empty() {
            match parse_time(raw) {
                Some(t) => *slot = Some(t),
                None => errors.push(FieldError::new(
                    field,
                    "Enter a date like 2026-11-29 or a time like 2026-11-29T14:30 (UTC).",
                )),
            }
        }
    }
    if let (Some(a), Some(b)) = (f.from, f.to)
        && a >= b
    {
        errors.push(FieldError::new("to", "The end must come after the start."));
    }
    if q.q.chars().count() > 200 {
        errors.push(FieldError::new("q", "Search for at most 200 characters."));
    }
    let record = q.record.trim();
    if record.len() > 200 {
        errors.push(FieldError::new(
            "record",
            "A record id is at most 200 characters.",
        ));
    } else if !record.is_empty() {
        f.record = Some(record.to_owned());
    }
    let after = if q.after.trim().is_empty() {
        None
    } else {
        match Cursor::decode(q.after.trim()) {
            Some(c) => Some(c),
            None => {
                errors.push(FieldError::new(
                    "after",
                    "This page link is not valid; start again.",
                ));
                None
            }
        }
    };
    (f, after, errors)
}

struct RunRow {
    id: String,
    workflow: String,
    workflow_id: String,
    version: i32,
    record: String,
    name: String,
    status: &'static str,
    status_label: &'static str,
    step: String,
    created: String,
    error: String,
}

/// A run status in plain words ("failed permanently", not "dead").
pub(crate) fn status_label(s: RunStatus) -> &'static str {
    s.words()
}

#[derive(Template)]
#[template(path = "runs.html")]
struct ListPage {
    layout: Layout,
    is_admin: bool,
    query: ListQuery,
    errors: FieldErrors,
    workflows: Vec<(String, String)>,
    statuses: Vec<(&'static str, &'static str)>,
    rows: Vec<RunRow>,
    next: Option<String>,
    live: bool,
    script: &'static str,
    bulk_errors: FieldErrors,
    bulk_from: String,
    bulk_to: String,
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

async fn workflow_names(
    state: &AppState,
    member: &Member,
) -> Result<HashMap<String, (String, Vec<String>)>, AppError> {
    Ok(state.services.runs.workflow_names(&member.actor).await?)
}

fn next_link(q: &ListQuery, cursor: &Cursor) -> String {
    let pairs = [
        ("workflow", q.workflow.as_str()),
        ("status", q.status.as_str()),
        ("from", q.from.as_str()),
        ("to", q.to.as_str()),
        ("record", q.record.as_str()),
        ("q", q.q.as_str()),
    ];
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.trim().is_empty() {
            s.append_pair(k, v.trim());
        }
    }
    s.append_pair("after", &cursor.encode());
    format!("/runs?{}", s.finish())
}

/// GET /runs
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let (filter, after, errors) = filter_of(&q);
    let names = workflow_names(&state, &member).await?;
    let (runs, next) = if errors.is_empty() {
        state
            .services
            .runs
            .list(&member.actor, &filter, Some(&q.q), after.as_ref(), PAGE)
            .await?
    } else {
        (Vec::new(), None)
    };
    let labels = state
        .services
        .runs
        .record_names(&member.actor, &runs)
        .await?;
    let rows = rows_of(runs, &names, &labels);
    let next = next.map(|c| next_link(&q, &c));
    render_list(
        &req,
        member.role == Role::Admin,
        q,
        errors,
        names,
        rows,
        next,
        Bulk::default(),
    )
}

fn rows_of(
    runs: Vec<Run>,
    names: &HashMap<String, (String, Vec<String>)>,
    labels: &HashMap<String, String>,
) -> Vec<RunRow> {
    runs.into_iter()
        .map(|r| {
            let (name, steps) = names
                .get(r.workflow_id.as_str())
                .cloned()
                .unwrap_or_else(|| ("(deleted workflow)".into(), vec![]));
            RunRow {
                id: r.id.to_string(),
                workflow: name,
                workflow_id: r.workflow_id.to_string(),
                version: r.version,
                record: r.record_id.clone().unwrap_or_default(),
                name: labels.get(r.id.as_str()).cloned().unwrap_or_default(),
                status: r.status.as_str(),
                status_label: status_label(r.status),
                step: if r.status.is_final() && r.status == RunStatus::Succeeded {
                    "done".into()
                } else {
                    steps
                        .get(usize::try_from(r.step_index).unwrap_or(usize::MAX))
                        .cloned()
                        .unwrap_or_else(|| "done".into())
                },
                created: when(r.created_at),
                error: r.error.unwrap_or_default(),
            }
        })
        .collect()
}

/// The bulk-replay form as submitted, with its problems.
#[derive(Default)]
struct Bulk {
    errors: FieldErrors,
    from: String,
    to: String,
}

/// The runs page: 422 when the filter (or the bulk-replay range) is wrong.
#[allow(clippy::too_many_arguments)]
fn render_list(
    req: &HttpRequest,
    is_admin: bool,
    query: ListQuery,
    errors: FieldErrors,
    names: HashMap<String, (String, Vec<String>)>,
    rows: Vec<RunRow>,
    next: Option<String>,
    bulk: Bulk,
) -> Result<HttpResponse, AppError> {
    let mut workflows: Vec<(String, String)> = names
        .into_iter()
        .map(|(id, (name, _))| (id, name))
        .collect();
    workflows.sort_by(|a, b| a.1.cmp(&b.1));
    let status = if errors.is_empty() && bulk.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        req,
        status,
        &ListPage {
            layout: Layout::new(req, "Runs", "/runs"),
            is_admin,
            live: query.after.trim().is_empty() && errors.is_empty(),
            script: crate::assets::url("runs.js"),
            query,
            errors,
            workflows,
            statuses: RunStatus::ALL
                .iter()
                .map(|s| (s.as_str(), status_label(*s)))
                .collect(),
            rows,
            next,
            bulk_errors: bulk.errors,
            bulk_from: bulk.from,
            bulk_to: bulk.to,
        },
    )
}

/// GET /api/runs: the same list as JSON, `next` is the cursor for `after`.
pub async fn api_list(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let (filter, after, errors) = filter_of(&query);
    if !errors.is_empty() {
        return Ok(HttpResponse::UnprocessableEntity().json(json!({
            "error": "invalid filter",
            "fields": errors.iter().map(|e| json!({"field": e.field, "message": e.message})).collect::<Vec<_>>(),
        })));
    }
    let (runs, next) = state
        .services
        .runs
        .list(&member.actor, &filter, Some(&query.q), after.as_ref(), PAGE)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "runs": runs,
        "next": next.map(|c| c.encode()),
    })))
}

struct StepView {
    key: String,
    kind: String,
    attempt: i32,
    status: String,
    started: String,
    duration_ms: i64,
    input: String,
    output: String,
    calls: Vec<CallView>,
    error: String,
}

struct CallView {
    method: String,
    path: String,
    status: u64,
    duration_ms: u64,
    attempt: u64,
}

#[derive(Template)]
#[template(path = "run.html")]
struct DetailPage {
    layout: Layout,
    is_admin: bool,
    run: Run,
    workflow: String,
    status: &'static str,
    created: String,
    finished: String,
    wake: String,
    steps: Vec<StepView>,
    replayable: bool,
    status_label: &'static str,
    /// What a replay runs again: the step it resumes at and those after.
    replay_steps: Vec<String>,
    /// The failure was in the data: replaying from the step repeats it.
    data_problem: bool,
}

fn pretty(v: &serde_json::Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        serde_json::to_string_pretty(v).unwrap_or_default()
    }
}

fn step_view(s: &StepRecord) -> StepView {
    let calls = s
        .http_calls
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| CallView {
                    method: c["method"].as_str().unwrap_or("").to_owned(),
                    path: c["path"].as_str().unwrap_or("").to_owned(),
                    status: c["status"].as_u64().unwrap_or(0),
                    duration_ms: c["duration_ms"].as_u64().unwrap_or(0),
                    attempt: c["attempt"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    StepView {
        key: s.step_key.clone(),
        kind: s.kind.clone(),
        attempt: s.attempt,
        status: s.status.clone(),
        started: when(s.started_at),
        duration_ms: (s.finished_at - s.started_at).num_milliseconds(),
        input: pretty(&s.input),
        output: pretty(&s.output),
        calls,
        error: s.error.clone().unwrap_or_default(),
    }
}

/// GET /runs/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<RunId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let ferry_app::runs::RunView {
        run,
        steps,
        workflow,
        step_titles,
    } = state.services.runs.view(&member.actor, &id).await?;
    let from = usize::try_from(run.step_index).unwrap_or(0);
    let replay_steps = step_titles.into_iter().skip(from).collect();
    let data_problem = run
        .error
        .as_deref()
        .is_some_and(|e| e.contains("validation failed") || e.starts_with("mapping"));
    render(
        &req,
        StatusCode::OK,
        &DetailPage {
            layout: Layout::new(&req, format!("Run {id}"), "/runs"),
            is_admin: member.role == Role::Admin,
            workflow,
            status: run.status.as_str(),
            created: when(run.created_at),
            finished: run.finished_at.map(when).unwrap_or_default(),
            wake: run.wake_at.map(when).unwrap_or_default(),
            replayable: matches!(run.status, RunStatus::Failed | RunStatus::Dead),
            status_label: status_label(run.status),
            replay_steps,
            data_problem,
            steps: steps.iter().map(step_view).collect(),
            run,
        },
    )
}

/// The replay form: `from=start` begins again at the first step.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReplayForm {
    #[serde(default)]
    from: String,
}

/// POST /runs/{id}/replay (admin)
pub async fn replay(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<RunId>,
    form: web::Form<ReplayForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let from_start = form.from == "start";
    state
        .services
        .runs
        .replay(&admin.actor, &id, from_start)
        .await?;
    Ok(redirect_with_flash(
        &format!("/runs/{id}"),
        crate::templates::FlashKind::Success,
        if from_start {
            "Replay started from the first step: the source record is fetched again."
        } else {
            "Replay started from the step that failed; steps that succeeded are not repeated."
        },
    ))
}

/// The bulk replay form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// POST /runs/replay (admin): every dead-lettered run created in the range.
pub async fn bulk_replay(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: Admin,
    form: web::Form<BulkForm>,
) -> Result<HttpResponse, AppError> {
    let member = admin.0;
    let q = ListQuery {
        from: form.from.clone(),
        to: form.to.clone(),
        status: "dead".into(),
        ..ListQuery::default()
    };
    let (mut filter, _, errors) = filter_of(&q);
    // The range's problems are shown at the bulk form; the list stays.
    let mut bulk = FieldErrors::new();
    for e in errors.iter() {
        bulk.push(FieldError::new(
            if e.field == "from" {
                "bulk_from"
            } else {
                "bulk_to"
            },
            e.message.clone(),
        ));
    }
    if form.from.trim().is_empty() {
        bulk.push(FieldError::new(
            "bulk_from",
            "Enter the start of the range.",
        ));
    }
    if form.to.trim().is_empty() {
        bulk.push(FieldError::new("bulk_to", "Enter the end of the range."));
    }
    if !bulk.is_empty() {
        let names = workflow_names(&state, &member).await?;
        let (runs, next) = state
            .services
            .runs
            .list(&member.actor, &Filter::default(), None, None, PAGE)
            .await?;
        let labels = state
            .services
            .runs
            .record_names(&member.actor, &runs)
            .await?;
        let rows = rows_of(runs, &names, &labels);
        let list = ListQuery::default();
        let next = next.map(|c| next_link(&list, &c));
        let cut = |s: &str| s.chars().take(40).collect::<String>();
        return render_list(
            &req,
            true,
            list,
            FieldErrors::new(),
            names,
            rows,
            next,
            Bulk {
                errors: bulk,
                from: cut(&form.from),
                to: cut(&form.to),
            },
        );
    }
    let (Some(from), Some(to)) = (filter.from.take(), filter.to.take()) else {
        return Err(AppError::NotFound);
    };
    let replayed = state
        .services
        .runs
        .bulk_replay(&member.actor, from, to)
        .await?;
    Ok(redirect_with_flash(
        "/runs?status=queued",
        crate::templates::FlashKind::Success,
        &format!(
            "{replayed} dead-lettered run{} replayed from the step that failed.",
            if replayed == 1 { "" } else { "s" }
        ),
    ))
}

/// GET /runs/{id}/log.json
pub async fn export_json(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<RunId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let ferry_app::runs::RunView { run, steps, .. } =
        state.services.runs.view(&member.actor, &id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{id}.json\""),
        ))
        .json(json!({ "run": run, "steps": steps })))
}

/// GET /runs/{id}/log.csv: one line per step attempt and HTTP call.
pub async fn export_csv(
    state: web::Data<AppState>,
    member: Member,
    id: web::Path<RunId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let steps = state.services.runs.view(&member.actor, &id).await?.steps;
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "run_id",
        "step_index",
        "step",
        "kind",
        "attempt",
        "status",
        "started_at",
        "finished_at",
        "input",
        "output",
        "error",
        "http_method",
        "http_path",
        "http_status",
        "http_ms",
        "http_attempt",
    ];
    let fail = |e: csv::Error| AppError::Internal(e.into());
    w.write_record(header).map_err(fail)?;
    for s in &steps {
        let base = [
            id.to_string(),
            s.step_index.to_string(),
            s.step_key.clone(),
            s.kind.clone(),
            s.attempt.to_string(),
            s.status.clone(),
            s.started_at.to_rfc3339(),
            s.finished_at.to_rfc3339(),
            s.input.to_string(),
            s.output.to_string(),
            s.error.clone().unwrap_or_default(),
        ];
        let calls = s.http_calls.as_array().cloned().unwrap_or_default();
        if calls.is_empty() {
            let mut row: Vec<String> = base.to_vec();
            row.extend(std::iter::repeat_n(String::new(), 5));
            w.write_record(&row).map_err(fail)?;
        }
        for c in calls {
            let mut row: Vec<String> = base.to_vec();
            row.extend([
                c["method"].as_str().unwrap_or("").to_owned(),
                c["path"].as_str().unwrap_or("").to_owned(),
                c["status"].to_string(),
                c["duration_ms"].to_string(),
                c["attempt"].to_string(),
            ]);
            w.write_record(&row).map_err(fail)?;
        }
    }
    let bytes = w.into_inner().map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{id}.csv\""),
        ))
        .body(bytes))
}

/// The verification view's query.
#[derive(Debug, Default, serde::Deserialize)]
pub struct VerificationQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    outcome: String,
}

/// The outcomes a check can have, as stored and as said to people.
const OUTCOMES: [(&str, &str); 4] = [
    ("pass", "pass"),
    ("needs_review", "needs review"),
    ("fail", "fail"),
    ("pending", "pending"),
];

/// How an outcome is said to people (`needs_review` is "needs review").
fn outcome_label(stored: &str) -> String {
    OUTCOMES
        .iter()
        .find(|(k, _)| *k == stored)
        .map_or(stored, |(_, l)| l)
        .to_owned()
}

impl VerificationQuery {
    /// The search and the outcome filter, or the fields that are wrong.
    fn parse(&self) -> Result<(&str, Option<&str>), FieldErrors> {
        let mut errors = FieldErrors::new();
        let outcome = self.outcome.trim();
        if !outcome.is_empty() && !OUTCOMES.iter().any(|(k, _)| *k == outcome) {
            errors.push(FieldError::new(
                "outcome",
                "Choose pass, needs review, fail or pending.",
            ));
        }
        if self.q.chars().count() > 200 {
            errors.push(FieldError::new("q", "Search for at most 200 characters."));
        }
        errors.into_result()?;
        Ok((self.q.trim(), (!outcome.is_empty()).then_some(outcome)))
    }

    /// This query as a query string (for the export link).
    fn encoded(&self) -> String {
        serde_urlencoded::to_string([("q", self.q.trim()), ("outcome", self.outcome.trim())])
            .unwrap_or_default()
    }
}

struct VerificationRow {
    name: String,
    email: String,
    record_id: String,
    outcome: String,
    outcome_label: String,
    checked: String,
    check_ref: String,
    run_id: String,
}

#[derive(Template)]
#[template(path = "verifications.html")]
struct VerificationPage {
    layout: Layout,
    q: String,
    outcome: String,
    outcomes: &'static [(&'static str, &'static str)],
    export: String,
    errors: FieldErrors,
    rows: Vec<VerificationRow>,
}

/// GET /verifications: one row per client contact, read-only, for everyone
/// in the tenant.
pub async fn verifications(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    query: web::Query<VerificationQuery>,
) -> Result<HttpResponse, AppError> {
    let (rows, errors) = match query.parse() {
        Ok((q, outcome)) => (
            state
                .services
                .runs
                .verifications(&member.actor, q, outcome, 500)
                .await?
                .into_iter()
                .map(|v| VerificationRow {
                    name: v.name,
                    email: v.email.unwrap_or_default(),
                    record_id: v.record_id,
                    outcome_label: outcome_label(&v.outcome),
                    outcome: v.outcome,
                    checked: v.checked_at.map(when).unwrap_or_default(),
                    check_ref: v.check_ref.unwrap_or_default(),
                    run_id: v.run_id.to_string(),
                })
                .collect(),
            FieldErrors::new(),
        ),
        Err(errors) => (vec![], errors),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        &req,
        status,
        &VerificationPage {
            layout: Layout::new(&req, "Verification status", "/verifications"),
            q: query.q.clone(),
            outcome: query.outcome.trim().to_owned(),
            outcomes: &OUTCOMES,
            export: query.encoded(),
            errors,
            rows,
        },
    )
}

use ferry_app::evidence::sanitize as sheet_safe;

/// GET /verifications.csv: the rows the page shows for the same query, as
/// CSV (audited: it carries names and emails).
pub async fn verifications_csv(
    state: web::Data<AppState>,
    member: Member,
    query: web::Query<VerificationQuery>,
) -> Result<HttpResponse, AppError> {
    let (q, outcome) = query
        .parse()
        .map_err(|e| AppError::from(ferry_app::Error::Invalid(e)))?;
    let rows = state
        .services
        .runs
        .export_verifications(&member.actor, q, outcome, 10_000)
        .await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| AppError::Internal(e.into());
    w.write_record([
        "name",
        "email",
        "contact_id",
        "outcome",
        "checked_at",
        "check_reference",
        "run_id",
    ])
    .map_err(fail)?;
    for v in rows {
        w.write_record([
            sheet_safe(&v.name),
            sheet_safe(v.email.as_deref().unwrap_or("")),
            sheet_safe(&v.record_id),
            sheet_safe(&v.outcome),
            v.checked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            sheet_safe(v.check_ref.as_deref().unwrap_or("")),
            v.run_id.to_string(),
        ])
        .map_err(fail)?;
    }
    let bytes = w.into_inner().map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"verifications.csv\"",
        ))
        .body(bytes))
}
