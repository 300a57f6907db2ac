//! Compliance pages (admins): the hub (inventory, reviews due, the audit
//! chain, evidence packs, a record's trail), the filtered audit log and
//! its CSV, each integration's documentation (page, Markdown, print), its
//! review form and log, the side-by-side version diff, and the packs.

use crate::error::AppError;
use crate::session::Admin;
use crate::state::AppState;
use crate::templates::{FieldErrors, FlashKind, Layout, redirect, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use ferry_app::evidence::{
    Answers, Documentation, InventoryRow, Profile, ReviewDue, ReviewForm, Trail,
};
use ferry_core::workflow::describe::{self, Line};
use ferry_core::{AuditAction, FieldError, WorkflowId};
use ferry_store::audit::{self, AuditEvent, ChainReport};

fn day(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn when(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// 200, or 422 when a form came back with errors.
fn status_of(errors: &FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

fn attachment(content_type: &str, filename: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body)
}

/// A date typed in a filter (`YYYY-MM-DD`), as the start of that day.
fn parse_day(field: &'static str, raw: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Some(d.and_utc()))
        .ok_or_else(|| FieldError::new(field, "Enter a date as YYYY-MM-DD."))
}

/// Dates as the compliance pages show them.
macro_rules! dates {
    ($($page:ty),*) => {$(
        #[allow(dead_code, reason = "not every page shows both")]
        impl $page {
            fn day(&self, d: &DateTime<Utc>) -> String {
                day(*d)
            }
            fn when(&self, d: &DateTime<Utc>) -> String {
                when(*d)
            }
        }
    )*};
}
dates!(HubPage, TrailPage, DocsPage, ReviewPage);

// ---------------------------------------------------------------- hub

#[derive(Template)]
#[template(path = "compliance.html")]
struct HubPage {
    layout: Layout,
    retention: String,
    errors: FieldErrors,
    inventory: Vec<InventoryRow>,
    reviews: Vec<ReviewDue>,
    today: String,
    month_ago: String,
}

async fn hub_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &crate::session::Member,
    retention: Option<String>,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let ev = &state.services.evidence;
    let inventory = ev.inventory(&admin.actor).await?;
    let reviews = ev.reviews_due(&admin.actor).await?;
    let retention = match retention {
        Some(typed) => typed,
        None => ev.retention(&admin.actor).await?.to_string(),
    };
    let now = state.clock.now();
    render(
        req,
        status_of(&errors),
        &HubPage {
            layout: Layout::new(req, "Compliance", "/compliance"),
            retention,
            errors,
            inventory,
            reviews,
            today: day(now + Duration::days(1)),
            month_ago: day(now - Duration::days(90)),
        },
    )
}

/// GET /compliance: the inventory, reviews due, a record's trail, the
/// audit log, retention and evidence packs, from one page.
pub async fn hub(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
) -> Result<HttpResponse, AppError> {
    hub_page(&state, &req, &admin, None, FieldErrors::new()).await
}

/// The retention form.
#[derive(Debug, serde::Deserialize)]
pub struct RetentionForm {
    #[serde(default)]
    retention_days: String,
}

/// POST /compliance/retention: how long run payloads are kept.
pub async fn save_retention(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    form: web::Form<RetentionForm>,
) -> Result<HttpResponse, AppError> {
    match state
        .services
        .evidence
        .set_retention(&admin.actor, &form.retention_days)
        .await
    {
        Ok(days) => Ok(redirect_with_flash(
            "/compliance#retention",
            FlashKind::Success,
            &format!("Run payloads are now kept for {days} days after a run ends."),
        )),
        Err(ferry_app::Error::Invalid(errors)) => {
            hub_page(
                &state,
                &req,
                &admin,
                Some(form.retention_days.clone()),
                errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// GET /inventory.csv: the integration inventory in the audit template.
pub async fn inventory_csv(
    state: web::Data<AppState>,
    Admin(admin): Admin,
) -> Result<HttpResponse, AppError> {
    let csv = state
        .services
        .evidence
        .inventory_export(&admin.actor)
        .await?;
    Ok(attachment(
        "text/csv; charset=utf-8",
        "inventory.csv",
        csv.into_bytes(),
    ))
}

// ---------------------------------------------------------------- audit

/// The audit log's filters, as typed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    record: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

impl AuditQuery {
    fn parse(&self) -> Result<audit::Filter, FieldErrors> {
        let mut errors = FieldErrors::new();
        let text = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.chars().take(200).collect::<String>())
        };
        let action = match self.action.trim() {
            "" => None,
            a => match AuditAction::parse(a) {
                Some(a) => Some(a.as_str().to_owned()),
                None => {
                    errors.push(FieldError::new("action", "Choose an action from the list."));
                    None
                }
            },
        };
        let workflow = match self.workflow.trim() {
            "" => None,
            w => match w.parse::<WorkflowId>() {
                Ok(id) => Some(id.to_string()),
                Err(_) => {
                    errors.push(FieldError::new(
                        "workflow",
                        "Choose a workflow from the list.",
                    ));
                    None
                }
            },
        };
        let from = parse_day("from", &self.from).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let to = parse_day("to", &self.to)
            .unwrap_or_else(|e| {
                errors.push(e);
                None
            })
            .map(|d| d + Duration::days(1));
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            errors.push(FieldError::new(
                "to",
                "The end date must not be before the start date.",
            ));
        }
        errors.into_result()?;
        Ok(audit::Filter {
            actor: text(&self.actor),
            action,
            workflow_id: workflow,
            record_id: text(&self.record),
            from,
            to,
            before_seq: self.before.trim().parse().ok(),
        })
    }

    fn encoded(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &self.actor)
            .append_pair("action", &self.action)
            .append_pair("workflow", &self.workflow)
            .append_pair("record", &self.record)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .finish()
    }
}

pub(crate) struct AuditRow {
    seq: String,
    when: String,
    who: String,
    action: String,
    description: String,
    target: String,
    record: String,
    record_href: String,
    details: String,
    client_ip: String,
    hash: String,
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl From<AuditEvent> for AuditRow {
    fn from(e: AuditEvent) -> Self {
        Self {
            seq: e.chain_seq.map(|s| s.to_string()).unwrap_or_default(),
            when: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            who: e.actor_label,
            description: super::audit::describe(&e.action).to_owned(),
            action: e.action,
            target: format!("{} {}", e.target_kind, e.target_id),
            record_href: format!("/records/{}", encode(e.record_id.as_deref().unwrap_or(""))),
            record: e.record_id.unwrap_or_default(),
            details: if e.details == "{}" {
                String::new()
            } else {
                e.details
            },
            client_ip: e.client_ip,
            hash: e
                .hash
                .map(|h| h[..12.min(h.len())].to_owned())
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    heading: &'static str,
    tenant: bool,
    rows: Vec<AuditRow>,
    query: AuditQuery,
    errors: FieldErrors,
    actions: Vec<(&'static str, &'static str)>,
    workflows: Vec<(String, String)>,
    export: String,
    next: Option<String>,
    chain: Option<ChainReport>,
}

const PAGE: u64 = 100;

async fn audit_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &crate::session::Member,
    query: AuditQuery,
    chain: Option<ChainReport>,
) -> Result<HttpResponse, AppError> {
    let workflows = state
        .services
        .workflows
        .list(&admin.actor)
        .await?
        .into_iter()
        .map(|w| (w.workflow.id.to_string(), w.workflow.name))
        .collect();
    let mut actions: Vec<(&'static str, &'static str)> = AuditAction::ALL
        .iter()
        .filter(|a| !a.as_str().starts_with("tenant.") && !a.as_str().starts_with("operator."))
        .map(|a| (a.as_str(), a.label()))
        .collect();
    actions.sort_by_key(|(_, l)| *l);
    let (status, rows, errors, next) = match query.parse() {
        Ok(filter) => {
            let rows = state
                .services
                .evidence
                .audit(&admin.actor, &filter, PAGE)
                .await?;
            let next = (rows.len() as u64 == PAGE)
                .then(|| {
                    rows.last()
                        .map(|r| format!("?{}&before={}", query.encoded(), r.seq))
                })
                .flatten();
            (StatusCode::OK, rows, FieldErrors::new(), next)
        }
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, vec![], errors, None),
    };
    render(
        req,
        status,
        &AuditPage {
            layout: Layout::new(req, "Audit log", "/compliance"),
            heading: "Audit log",
            tenant: true,
            rows: rows.into_iter().map(AuditRow::from).collect(),
            export: format!("/audit.csv?{}", query.encoded()),
            query,
            errors,
            actions,
            workflows,
            next,
            chain,
        },
    )
}

/// GET /audit: the tenant's audit log, filtered by actor, action,
/// workflow, record and time.
pub async fn audit_log(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    audit_page(&state, &req, &admin, query.into_inner(), None).await
}

/// GET /audit/verify: the tenant's chain verified now, above the log.
pub async fn audit_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
) -> Result<HttpResponse, AppError> {
    let report = state.services.evidence.verify(&admin.actor).await?;
    audit_page(&state, &req, &admin, AuditQuery::default(), Some(report)).await
}

/// GET /audit.csv: the filtered entries as CSV (the export is audited).
pub async fn audit_csv(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let filter = query.parse().map_err(AppError::Invalid)?;
    let csv = state
        .services
        .evidence
        .audit_csv(&admin.actor, &filter)
        .await?;
    Ok(attachment(
        "text/csv; charset=utf-8",
        "audit.csv",
        csv.into_bytes(),
    ))
}

/// GET /operator/audit: platform-level events (operators), with the
/// platform chain verified.
pub async fn platform(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: crate::session::Operator,
) -> Result<HttpResponse, AppError> {
    let rows = state.services.views.platform_audit(&op.0, 200).await?;
    let chain = state.services.evidence.verify_platform(&op.0).await?;
    render(
        &req,
        StatusCode::OK,
        &AuditPage {
            layout: Layout::new(&req, "Platform audit log", "/operator/audit"),
            heading: "Platform audit log",
            tenant: false,
            rows: rows.into_iter().map(AuditRow::from).collect(),
            query: AuditQuery::default(),
            errors: FieldErrors::new(),
            actions: vec![],
            workflows: vec![],
            export: String::new(),
            next: None,
            chain: Some(chain),
        },
    )
}

// ---------------------------------------------------------------- trail

/// The trail search form.
#[derive(Debug, serde::Deserialize)]
pub struct TrailQuery {
    #[serde(default)]
    record: String,
}

/// GET /records?record=…: to that record's trail.
pub async fn find_record(
    Admin(_admin): Admin,
    query: web::Query<TrailQuery>,
) -> Result<HttpResponse, AppError> {
    let record = query.record.trim();
    if record.is_empty() {
        return Ok(redirect_with_flash(
            "/compliance",
            FlashKind::Error,
            "Enter a record id (for example a HubSpot contact id) to see its trail.",
        ));
    }
    Ok(redirect(&format!("/records/{}", encode(record))))
}

#[derive(Template)]
#[template(path = "record.html")]
struct TrailPage {
    layout: Layout,
    record_q: String,
    trail: Trail,
}

/// GET /records/{record}: everything that concerned one CRM record.
pub async fn record_trail(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    record: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let trail = state
        .services
        .evidence
        .trail(&admin.actor, &record.into_inner())
        .await?;
    render(
        &req,
        StatusCode::OK,
        &TrailPage {
            layout: Layout::new(&req, "Record trail", "/compliance"),
            record_q: encode(&trail.record_id),
            trail,
        },
    )
}

// ---------------------------------------------------------------- docs

/// The profile form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    manual_step: String,
    #[serde(default)]
    expected_weekly: String,
    #[serde(default)]
    escalation: String,
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    layout: Layout,
    script: &'static str,
    doc: Documentation,
    form: ProfileForm,
    errors: FieldErrors,
}

async fn docs_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &crate::session::Member,
    id: &WorkflowId,
    form: Option<ProfileForm>,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let doc = state
        .services
        .evidence
        .documentation(&admin.actor, id)
        .await?;
    let form = form.unwrap_or_else(|| ProfileForm {
        outcome: doc.profile.outcome.clone(),
        manual_step: doc.profile.manual_step.clone(),
        expected_weekly: doc
            .profile
            .expected_weekly
            .map(|n| n.to_string())
            .unwrap_or_default(),
        escalation: doc.profile.escalation.clone(),
    });
    render(
        req,
        status_of(&errors),
        &DocsPage {
            layout: Layout::new(req, format!("{} — documentation", doc.name), "/workflows"),
            script: crate::assets::url("docs.js"),
            doc,
            form,
            errors,
        },
    )
}

/// GET /workflows/{id}/docs: the integration's documentation.
pub async fn docs(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    docs_page(&state, &req, &admin, &id, None, FieldErrors::new()).await
}

/// GET /workflows/{id}/docs.md: the documentation as Markdown.
pub async fn docs_markdown(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    let doc = state
        .services
        .evidence
        .documentation(&admin.actor, &id)
        .await?;
    Ok(attachment(
        "text/markdown; charset=utf-8",
        &format!("documentation-{id}.md"),
        ferry_app::evidence::markdown(&doc).into_bytes(),
    ))
}

/// POST /workflows/{id}/profile: what Ferry cannot know about it.
pub async fn save_profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<ProfileForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let profile = match Profile::parse(
        &form.outcome,
        &form.manual_step,
        &form.expected_weekly,
        &form.escalation,
    ) {
        Ok(p) => p,
        Err(errors) => return docs_page(&state, &req, &admin, &id, Some(form), errors).await,
    };
    match state
        .services
        .evidence
        .set_profile(&admin.actor, &id, &profile)
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            &format!("/workflows/{id}/docs"),
            FlashKind::Success,
            "Saved: the documentation and the inventory show it now.",
        )),
        Err(ferry_app::Error::Invalid(errors)) => {
            docs_page(&state, &req, &admin, &id, Some(form), errors).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- reviews

/// The review form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReviewInput {
    #[serde(default)]
    delivering: String,
    #[serde(default)]
    silent_errors: String,
    #[serde(default)]
    manual_steps: String,
    #[serde(default)]
    notes: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    layout: Layout,
    id: String,
    form: ReviewForm,
    hints: [String; 3],
    input: ReviewInput,
    errors: FieldErrors,
}

async fn review_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &crate::session::Member,
    id: &WorkflowId,
    input: ReviewInput,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let form = state
        .services
        .evidence
        .review_form(&admin.actor, id)
        .await?;
    render(
        req,
        status_of(&errors),
        &ReviewPage {
            layout: Layout::new(req, format!("Review {}", form.name), "/compliance"),
            id: id.to_string(),
            hints: form.measured.hints(),
            form,
            input,
            errors,
        },
    )
}

/// GET /workflows/{id}/review: the 90-day review form and the log.
pub async fn review(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    review_page(
        &state,
        &req,
        &admin,
        &id,
        ReviewInput::default(),
        FieldErrors::new(),
    )
    .await
}

/// POST /workflows/{id}/review: records the review.
pub async fn submit_review(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<ReviewInput>,
) -> Result<HttpResponse, AppError> {
    let input = form.into_inner();
    let answers = match Answers::parse(&input.delivering, &input.silent_errors, &input.manual_steps)
    {
        Ok(a) => a,
        Err(errors) => return review_page(&state, &req, &admin, &id, input, errors).await,
    };
    match state
        .services
        .evidence
        .submit_review(&admin.actor, &id, answers, &input.notes)
        .await
    {
        Ok(due) => Ok(redirect_with_flash(
            &format!("/workflows/{id}/review"),
            FlashKind::Success,
            &format!("Review recorded. The next one is due on {}.", day(due)),
        )),
        Err(ferry_app::Error::Invalid(errors)) => {
            review_page(&state, &req, &admin, &id, input, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- versions

/// Which versions to compare.
#[derive(Debug, serde::Deserialize)]
pub struct DiffQuery {
    a: Option<i32>,
    b: Option<i32>,
}

pub(crate) struct DiffRow {
    title: String,
    state: &'static str,
    left: Vec<(Line, bool)>,
    right: Vec<(Line, bool)>,
}

pub(crate) struct VersionInfo {
    version: i32,
    by: String,
    at: String,
    note: String,
    gate: Option<bool>,
}

#[derive(Template)]
#[template(path = "versions.html")]
struct VersionsPage {
    layout: Layout,
    id: String,
    name: String,
    versions: Vec<VersionInfo>,
    a: i32,
    b: i32,
    rows: Vec<DiffRow>,
    changes: Vec<String>,
    checklist: Option<ferry_app::workflows::gate::GateReport>,
    not_run: Option<String>,
}

fn mark(mine: &[Line], other: &[Line]) -> Vec<(Line, bool)> {
    mine.iter()
        .map(|l| (l.clone(), !other.contains(l)))
        .collect()
}

/// GET /workflows/{id}/versions?a=&b=: two versions side by side (the
/// newest against the one before, unless chosen).
pub async fn versions(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    query: web::Query<DiffQuery>,
) -> Result<HttpResponse, AppError> {
    let view = state.services.workflows.view(&admin.actor, &id).await?;
    let versions = &view.versions;
    if versions.is_empty() {
        return Ok(redirect_with_flash(
            &format!("/workflows/{id}"),
            FlashKind::Info,
            "Nothing to compare yet: this workflow has no published version.",
        ));
    }
    let newest = versions[0].version.version;
    let b = query.b.unwrap_or(newest);
    let a = query.a.unwrap_or_else(|| (b - 1).max(1));
    let find = |n: i32| versions.iter().find(|v| v.version.version == n);
    let (Some(va), Some(vb)) = (find(a), find(b)) else {
        return Err(AppError::NotFound);
    };
    let (da, db) = (&va.version.definition, &vb.version.definition);
    let mut rows = vec![];
    let trig = |d: &ferry_core::workflow::Definition| {
        vec![Line {
            label: "Trigger".into(),
            value: describe::trigger_text(d),
        }]
    };
    let (ta, tb) = (trig(da), trig(db));
    rows.push(DiffRow {
        title: "Trigger".into(),
        state: if ta == tb { "same" } else { "changed" },
        left: mark(&ta, &tb),
        right: mark(&tb, &ta),
    });
    let mut keys: Vec<&str> = db.steps.iter().map(|s| s.key.as_str()).collect();
    for s in &da.steps {
        if !keys.contains(&s.key.as_str()) {
            keys.push(&s.key);
        }
    }
    for key in keys {
        let sa = da.steps.iter().find(|s| s.key == key);
        let sb = db.steps.iter().find(|s| s.key == key);
        let la = sa.map(describe::step_lines).unwrap_or_default();
        let lb = sb.map(describe::step_lines).unwrap_or_default();
        rows.push(DiffRow {
            title: sb.or(sa).map(|s| s.title()).unwrap_or_default(),
            state: match (sa, sb) {
                (None, _) => "added",
                (_, None) => "removed",
                _ if la == lb && sa.map(|s| &s.label) == sb.map(|s| &s.label) => "same",
                _ => "changed",
            },
            left: mark(&la, &lb),
            right: mark(&lb, &la),
        });
    }
    let bind = |v: &ferry_store::workflows::Version| -> Vec<Line> {
        v.bindings
            .iter()
            .map(|(k, c)| Line {
                label: k.clone(),
                value: view
                    .connections
                    .iter()
                    .find(|x| &x.id == c)
                    .map_or_else(|| "a removed connection".to_owned(), |x| x.name.clone()),
            })
            .collect()
    };
    let (ba, bb) = (bind(&va.version), bind(&vb.version));
    rows.push(DiffRow {
        title: "Connections".into(),
        state: if ba == bb { "same" } else { "changed" },
        left: mark(&ba, &bb),
        right: mark(&bb, &ba),
    });
    let changes = ferry_core::workflow::changes(da, db);
    let gate = vb.version.gate.clone().unwrap_or(serde_json::Value::Null);
    let checklist = ferry_app::workflows::gate::GateReport::from_json(&gate);
    let not_run = gate["not_run"].as_str().map(str::to_owned);
    render(
        &req,
        StatusCode::OK,
        &VersionsPage {
            layout: Layout::new(
                &req,
                format!("{} — versions", view.workflow.name),
                "/workflows",
            ),
            id: id.to_string(),
            name: view.workflow.name.clone(),
            versions: versions
                .iter()
                .map(|v| VersionInfo {
                    version: v.version.version,
                    by: v.published_by.clone(),
                    at: when(v.version.published_at),
                    note: v.version.change_note.clone().unwrap_or_default(),
                    gate: v
                        .version
                        .gate
                        .as_ref()
                        .map(|g| g["passed"].as_bool() == Some(true)),
                })
                .collect(),
            a,
            b,
            rows,
            changes,
            checklist,
            not_run,
        },
    )
}

// ---------------------------------------------------------------- packs

/// The pack's period.
#[derive(Debug, serde::Deserialize)]
pub struct PackQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl PackQuery {
    fn period(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), AppError> {
        let mut errors = FieldErrors::new();
        let from = parse_day("from", &self.from).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let to = parse_day("to", &self.to).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        errors.into_result().map_err(AppError::Invalid)?;
        let to = to.map_or(now, |t| t + Duration::days(1));
        let from = from.unwrap_or(to - Duration::days(90));
        if from >= to {
            let mut e = FieldErrors::new();
            e.push(FieldError::new(
                "from",
                "The period must start before it ends.",
            ));
            return Err(AppError::Invalid(e));
        }
        Ok((from, to))
    }
}

/// GET /evidence.zip: the tenant's evidence pack for a period.
pub async fn tenant_pack(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    query: web::Query<PackQuery>,
) -> Result<HttpResponse, AppError> {
    let (from, to) = query.period(state.clock.now())?;
    let zip = state
        .services
        .evidence
        .pack(&admin.actor, None, from, to)
        .await?;
    Ok(attachment(
        "application/zip",
        &format!("evidence-{}.zip", day(state.clock.now())),
        zip,
    ))
}

/// GET /workflows/{id}/evidence.zip: one workflow's evidence pack.
pub async fn workflow_pack(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    query: web::Query<PackQuery>,
) -> Result<HttpResponse, AppError> {
    let (from, to) = query.period(state.clock.now())?;
    let zip = state
        .services
        .evidence
        .pack(&admin.actor, Some(&id), from, to)
        .await?;
    Ok(attachment(
        "application/zip",
        &format!("evidence-{id}-{}.zip", day(state.clock.now())),
        zip,
    ))
}

// ---------------------------------------------------------------- fields

#[derive(Template)]
#[template(path = "fields.html")]
struct FieldsPage {
    layout: Layout,
    rows: Vec<ferry_app::evidence::FieldRow>,
    errors: FieldErrors,
}

impl FieldsPage {
    /// The classes a field may take: its catalog class and stricter ones.
    fn choices(
        &self,
        row: &ferry_app::evidence::FieldRow,
    ) -> Vec<(&'static str, &'static str, bool)> {
        use ferry_core::catalog::PiiClass;
        [PiiClass::None, PiiClass::Contact, PiiClass::Identity]
            .into_iter()
            .filter(|c| *c >= row.default)
            .map(|c| (c.as_str(), c.label(), c == row.class))
            .collect()
    }
}

async fn fields_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &crate::session::Member,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let rows = state.services.evidence.field_classes(&admin.actor).await?;
    render(
        req,
        status_of(&errors),
        &FieldsPage {
            layout: Layout::new(req, "Field classification", "/compliance"),
            rows,
            errors,
        },
    )
}

/// GET /compliance/fields: each app field's class, with the tenant's own.
pub async fn fields(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
) -> Result<HttpResponse, AppError> {
    fields_page(&state, &req, &admin, FieldErrors::new()).await
}

/// POST /compliance/fields: reclassifies fields (stricter only).
pub async fn save_fields(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let choices: Vec<(String, String)> = form
        .into_inner()
        .into_iter()
        .filter(|(k, _)| k != "csrf_token")
        .collect();
    match state
        .services
        .evidence
        .set_field_classes(&admin.actor, &choices)
        .await
    {
        Ok(n) => Ok(redirect_with_flash(
            "/compliance/fields",
            FlashKind::Success,
            &format!(
                "Saved ({n} change{}): run records redact these fields from now on, and the documentation and inventory count them.",
                if n == 1 { "" } else { "s" }
            ),
        )),
        Err(ferry_app::Error::Invalid(errors)) => fields_page(&state, &req, &admin, errors).await,
        Err(e) => Err(e.into()),
    }
}
