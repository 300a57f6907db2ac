//! Workflows: list, create (from the reference template or a starting
//! point), the builder page (steps, connections, the definition checked on
//! save with errors naming step and field), publish as an immutable
//! version, roll back.

use super::{audit, parse_id};
use crate::AppState;
use crate::error::AppError;
use crate::session::{Admin, Member};
use crate::templates::{FieldErrors, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::catalog::ConnectorKey;
use ferry_core::mapping::{Expr, FieldPath, Transform};
use ferry_core::validate::{Check, Rule};
use ferry_core::workflow::{
    Definition, Issue, RetryPolicy, Step, StepKind, Trigger, reference_template,
};
use ferry_core::{
    ConnectionId, Environment, FieldError, PersonName, Role, UserId, UserStatus, WorkflowId,
};
use ferry_store::workflows::{self as store, Bindings, NewWorkflow, Workflow};
use ferry_store::{connections, users};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn starting_point() -> Definition {
    Definition {
        trigger: Trigger {
            connector: ConnectorKey::HubSpot,
            event: "contact.creation".into(),
        },
        steps: vec![Step {
            key: "fetch_contact".into(),
            kind: StepKind::Action {
                connector: ConnectorKey::HubSpot,
                action: "get_contact".into(),
                input: [(
                    "contact_id".to_owned(),
                    Expr::Path {
                        path: trigger_object_id(),
                    },
                )]
                .into(),
                retry: RetryPolicy::default(),
            },
        }],
    }
}

fn trigger_object_id() -> FieldPath {
    #[expect(
        clippy::expect_used,
        reason = "a constant, valid path; a test covers it"
    )]
    FieldPath::parse("trigger.objectId").expect("a valid constant path")
}

/// Connectors a definition uses.
fn connectors_used(d: &Definition) -> BTreeSet<ConnectorKey> {
    let mut used = BTreeSet::new();
    used.insert(d.trigger.connector);
    for s in &d.steps {
        match &s.kind {
            StepKind::Action { connector, .. } | StepKind::Wait { connector, .. } => {
                used.insert(*connector);
            }
            _ => {}
        }
    }
    used
}

struct Row {
    id: String,
    name: String,
    owner: String,
    environment: &'static str,
    status: String,
    trigger: String,
}

#[derive(Template)]
#[template(path = "workflows.html")]
struct ListPage {
    layout: Layout,
    is_admin: bool,
    rows: Vec<Row>,
}

async fn person(state: &AppState, id: &UserId) -> String {
    users::get(&state.db, id)
        .await
        .map_or_else(|_| "a former member".to_owned(), |u| u.name)
}

fn status(w: &Workflow) -> String {
    w.published_version
        .map_or_else(|| "draft".to_owned(), |v| format!("published v{v}"))
}

/// GET /workflows
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let mut rows = Vec::new();
    for w in store::list(&state.db, &member.tenant_id).await? {
        rows.push(Row {
            id: w.id.to_string(),
            owner: person(&state, &w.owner_id).await,
            environment: w.environment.as_str(),
            status: status(&w),
            trigger: format!(
                "{}: {}",
                w.draft.trigger.connector.def().name,
                w.draft.trigger.event
            ),
            name: w.name,
        });
    }
    render(
        &req,
        StatusCode::OK,
        &ListPage {
            layout: Layout::new(&req, "Workflows", "/workflows"),
            is_admin: member.role == Role::Admin,
            rows,
        },
    )
}

/// The new-workflow form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NewForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    template: String,
}

#[derive(Template)]
#[template(path = "workflow_new.html")]
struct NewPage {
    layout: Layout,
    form: NewForm,
    owners: Vec<(String, String)>,
    errors: FieldErrors,
}

async fn owners(state: &AppState, member: &Member) -> Result<Vec<(String, String)>, AppError> {
    Ok(users::members(&state.db, &member.tenant_id)
        .await?
        .into_iter()
        .filter(|m| m.status == UserStatus::Active)
        .map(|m| (m.user.id.to_string(), m.user.name))
        .collect())
}

/// GET /workflows/new
pub async fn new_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
) -> Result<HttpResponse, AppError> {
    let form = NewForm {
        name: "New contact → identity verification → outcome written back".into(),
        owner: admin.user.user_id.to_string(),
        environment: "sandbox".into(),
        template: "reference".into(),
        ..NewForm::default()
    };
    let owners = owners(&state, &admin).await?;
    render(
        &req,
        StatusCode::OK,
        &NewPage {
            layout: Layout::new(&req, "New workflow", "/workflows"),
            form,
            owners,
            errors: FieldErrors::new(),
        },
    )
}

/// POST /workflows
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    form: web::Form<NewForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let name = errors.check(PersonName::parse("name", &form.name).map_err(|e| {
        FieldError::new(
            "name",
            e.message.replace("a name", "a name for the workflow"),
        )
    }));
    if form.description.chars().count() > 2000 {
        errors.push(FieldError::new(
            "description",
            "Use at most 2000 characters.",
        ));
    }
    let owner: Option<UserId> = form.owner.parse().ok();
    let owner = match owner {
        Some(o)
            if users::member(&state.db, &admin.tenant_id, &o)
                .await
                .is_ok_and(|m| m.status == UserStatus::Active) =>
        {
            Some(o)
        }
        _ => {
            errors.push(FieldError::new(
                "owner",
                "Choose the person responsible from your firm.",
            ));
            None
        }
    };
    let environment = Environment::parse(&form.environment);
    if environment.is_none() {
        errors.push(FieldError::new(
            "environment",
            "Choose sandbox or production.",
        ));
    }
    let draft = match form.template.as_str() {
        "reference" => Some(reference_template()),
        "start" => Some(starting_point()),
        _ => {
            errors.push(FieldError::new("template", "Choose how to start."));
            None
        }
    };
    let (Some(name), Some(owner), Some(environment), Some(draft), true) =
        (name, owner, environment, draft, errors.is_empty())
    else {
        let owners = owners(&state, &admin).await?;
        let cut = |s: &str| s.chars().take(300).collect::<String>();
        let form = NewForm {
            name: cut(&form.name),
            description: cut(&form.description),
            ..form
        };
        return render(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewPage {
                layout: Layout::new(&req, "New workflow", "/workflows"),
                form,
                owners,
                errors,
            },
        );
    };
    // Bind each connector to the tenant's first matching connection.
    let available = connections::list(&state.db, &admin.tenant_id).await?;
    let bindings: Bindings = connectors_used(&draft)
        .into_iter()
        .filter_map(|k| {
            available
                .iter()
                .find(|c| c.connector == k && c.environment == environment)
                .map(|c| (k.as_str().to_owned(), c.id.clone()))
        })
        .collect();
    let wf = store::create(
        &state.db,
        &admin.tenant_id,
        NewWorkflow {
            name: name.as_str(),
            description: form.description.trim(),
            owner_id: &owner,
            environment,
            draft: &draft,
            bindings: &bindings,
        },
        state.clock.now(),
    )
    .await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "workflow.created",
        "workflow",
        wf.id.as_str(),
        json!({ "name": wf.name, "template": form.template }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{}", wf.id),
        "success",
        "Workflow created as a draft.",
    ))
}

/// What a refused change shows when the page is re-rendered.
#[derive(Default)]
struct Feedback {
    /// The submitted definition, kept as typed.
    definition: Option<String>,
    /// Problems, each naming step and field.
    issues: Vec<String>,
    /// Connector -> message, for the connections form.
    binding_errors: BTreeMap<String, String>,
    /// The dry run's sample payload, as typed.
    dry_payload: Option<String>,
    /// The dry run's steps, when one was made.
    dry_steps: Option<Vec<DryRow>>,
    /// Why the sample payload was refused.
    dry_error: Option<String>,
}

struct DryRow {
    key: String,
    kind: &'static str,
    status: &'static str,
    input: String,
    output: String,
    note: String,
}

struct StepRow {
    key: String,
    kind: &'static str,
    summary: String,
}

struct BindingRow {
    connector: &'static str,
    label: &'static str,
    options: Vec<(String, String, bool)>,
    error: Option<String>,
}

struct VersionRow {
    version: i32,
    published_by: String,
    published_at: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "workflow.html")]
struct WorkflowPage {
    layout: Layout,
    is_admin: bool,
    id: String,
    name: String,
    description: String,
    owner: String,
    environment: &'static str,
    status: String,
    trigger: String,
    steps: Vec<StepRow>,
    bindings: Vec<BindingRow>,
    versions: Vec<VersionRow>,
    definition: String,
    issues: Vec<String>,
    dry_payload: String,
    dry_steps: Option<Vec<DryRow>>,
    dry_error: Option<String>,
    fields: Vec<FieldChoice>,
    actions: Vec<(String, String)>,
    events: Vec<(String, String)>,
    targets: Vec<(String, String)>,
    validate_steps: Vec<String>,
}

fn summary(kind: &StepKind) -> (&'static str, String) {
    match kind {
        StepKind::Action {
            connector,
            action,
            input,
            retry,
        } => {
            let label = connector
                .def()
                .action(action)
                .map_or(action.as_str(), |a| a.label);
            (
                "action",
                format!(
                    "{} — {label}; maps {}; {} attempt(s)",
                    connector.def().name,
                    input.keys().cloned().collect::<Vec<_>>().join(", "),
                    retry.attempts
                ),
            )
        }
        StepKind::Validate { rules } => (
            "validate",
            format!(
                "{} rule(s): {}",
                rules.len(),
                rules
                    .iter()
                    .map(|r| r.path.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        StepKind::Map { output } => (
            "map",
            format!(
                "computes {}",
                output.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        StepKind::Wait {
            connector,
            event,
            timeout_secs,
            ..
        } => (
            "wait",
            format!(
                "for {} {event}, up to {} h",
                connector.def().name,
                timeout_secs / 3600
            ),
        ),
        StepKind::Condition {
            path,
            equals,
            negate,
        } => (
            "condition",
            format!(
                "go on when {path} {} {equals}",
                if *negate { "is not" } else { "is" }
            ),
        ),
    }
}

async fn workflow_page(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    wf: Workflow,
    status_code: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, AppError> {
    let available = connections::list(&state.db, &member.tenant_id).await?;
    let bindings = connectors_used(&wf.draft)
        .into_iter()
        .map(|k| BindingRow {
            connector: k.as_str(),
            label: k.def().name,
            options: available
                .iter()
                .filter(|c| c.connector == k && c.environment == wf.environment)
                .map(|c| {
                    (
                        c.id.to_string(),
                        c.name.clone(),
                        wf.bindings.get(k.as_str()) == Some(&c.id),
                    )
                })
                .collect(),
            error: feedback.binding_errors.get(k.as_str()).cloned(),
        })
        .collect();
    let mut versions = Vec::new();
    for v in store::versions(&state.db, &member.tenant_id, &wf.id).await? {
        versions.push(VersionRow {
            version: v.version,
            published_by: person(state, &v.published_by).await,
            published_at: v.published_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            current: wf.published_version == Some(v.version),
        });
    }
    let steps = wf
        .draft
        .steps
        .iter()
        .map(|s| {
            let (kind, summary) = summary(&s.kind);
            StepRow {
                key: s.key.clone(),
                kind,
                summary,
            }
        })
        .collect();
    let definition = feedback
        .definition
        .unwrap_or_else(|| serde_json::to_string_pretty(&wf.draft).unwrap_or_default());
    render(
        req,
        status_code,
        &WorkflowPage {
            layout: Layout::new(req, wf.name.clone(), "/workflows"),
            is_admin: member.role == Role::Admin,
            id: wf.id.to_string(),
            owner: person(state, &wf.owner_id).await,
            environment: wf.environment.as_str(),
            status: status(&wf),
            trigger: format!(
                "{}: {}",
                wf.draft.trigger.connector.def().name,
                wf.draft.trigger.event
            ),
            steps,
            bindings,
            versions,
            definition: definition.chars().take(200_000).collect(),
            issues: feedback.issues,
            dry_payload: feedback
                .dry_payload
                .unwrap_or_else(|| sample_payload(&wf.draft)),
            dry_steps: feedback.dry_steps,
            dry_error: feedback.dry_error,
            fields: field_choices(&wf.draft),
            actions: ConnectorKey::ALL
                .iter()
                .flat_map(|c| {
                    c.def().actions.iter().map(move |a| {
                        (
                            format!("{}:{}", c.as_str(), a.key),
                            format!("{} — {}", c.def().name, a.label),
                        )
                    })
                })
                .collect(),
            events: ConnectorKey::ALL
                .iter()
                .flat_map(|c| {
                    c.def().triggers.iter().map(move |t| {
                        (
                            format!("{}:{}", c.as_str(), t.key),
                            format!("{} — {}", c.def().name, t.label),
                        )
                    })
                })
                .collect(),
            targets: wf
                .draft
                .steps
                .iter()
                .flat_map(|s| match &s.kind {
                    StepKind::Action {
                        connector, action, ..
                    } => connector
                        .def()
                        .action(action)
                        .map(|a| {
                            a.input
                                .iter()
                                .map(|f| {
                                    (
                                        format!("{}:{}", s.key, f.name),
                                        format!(
                                            "{} → {}{}",
                                            s.key,
                                            f.label,
                                            if f.required { " (required)" } else { "" }
                                        ),
                                    )
                                })
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default(),
                    _ => vec![],
                })
                .collect(),
            validate_steps: wf
                .draft
                .steps
                .iter()
                .filter(|s| matches!(s.kind, StepKind::Validate { .. }))
                .map(|s| s.key.clone())
                .collect(),
            name: wf.name,
            description: wf.description,
        },
    )
}

/// A sample trigger payload for the dry-run form.
fn sample_payload(d: &Definition) -> String {
    let sample = match (d.trigger.connector, d.trigger.event.as_str()) {
        (ConnectorKey::HubSpot, event) => json!({
            "subscriptionType": event,
            "objectId": "1",
            "portalId": 0,
            "eventId": 1,
        }),
        (ConnectorKey::Verification, _) => json!({
            "type": "check.completed",
            "check": { "id": "chk_sample", "result": "clear" },
        }),
        _ => json!({ "id": "1", "email": "client@example.com" }),
    };
    serde_json::to_string_pretty(&sample).unwrap_or_default()
}

/// The dry-run form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DryRunForm {
    #[serde(default)]
    payload: String,
}

/// POST /workflows/{id}/dry-run (admin): the draft on a sample payload;
/// nothing is written anywhere.
pub async fn dry_run(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: Admin,
    id: web::Path<String>,
    form: web::Form<DryRunForm>,
) -> Result<HttpResponse, AppError> {
    let member = admin.0;
    let id: WorkflowId = parse_id(&id)?;
    let wf = store::get(&state.db, &member.tenant_id, &id).await?;
    let text = form.payload.trim().to_owned();
    let parsed = if text.len() > 64 * 1024 {
        Err("The sample payload is too long (at most 64 KiB).".to_owned())
    } else {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            Ok(_) => Err("The sample payload must be a JSON object.".to_owned()),
            Err(e) => Err(format!("The sample payload is not valid JSON: {e}.")),
        }
    };
    let (status, feedback) = match parsed {
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                dry_payload: Some(text),
                dry_error: Some(message),
                ..Feedback::default()
            },
        ),
        Ok(payload) => {
            let steps = state
                .engine
                .dry_run(&member.tenant_id, &wf.draft, &wf.bindings, payload)
                .await;
            let pretty = |v: &serde_json::Value| {
                if v.is_null() {
                    String::new()
                } else {
                    serde_json::to_string_pretty(v).unwrap_or_default()
                }
            };
            (
                StatusCode::OK,
                Feedback {
                    dry_payload: Some(text),
                    dry_steps: Some(
                        steps
                            .iter()
                            .map(|s| DryRow {
                                key: s.key.clone(),
                                kind: s.kind,
                                status: s.status,
                                input: pretty(&s.input),
                                output: pretty(&s.output),
                                note: s.note.clone(),
                            })
                            .collect(),
                    ),
                    ..Feedback::default()
                },
            )
        }
    };
    workflow_page(&state, &req, &member, wf, status, feedback).await
}

/// GET /workflows/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: WorkflowId = parse_id(&id)?;
    let wf = store::get(&state.db, &member.tenant_id, &id).await?;
    workflow_page(
        &state,
        &req,
        &member,
        wf,
        StatusCode::OK,
        Feedback::default(),
    )
    .await
}

/// The definition editor.
#[derive(Debug, serde::Deserialize)]
pub struct DefinitionForm {
    #[serde(default)]
    definition: String,
}

/// Saves a draft that passed its check, audits it, and goes back to the
/// workflow page with `message`.
async fn save_checked(
    state: &AppState,
    req: &HttpRequest,
    admin: &Member,
    wf: &Workflow,
    draft: &Definition,
    mut details: serde_json::Value,
    message: &str,
) -> Result<HttpResponse, AppError> {
    store::save_draft(
        &state.db,
        &admin.tenant_id,
        &wf.id,
        draft,
        &wf.bindings,
        state.clock.now(),
    )
    .await?;
    details["steps"] = json!(draft.steps.len());
    audit(
        state,
        req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "workflow.draft_saved",
        "workflow",
        wf.id.as_str(),
        details,
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{}", wf.id),
        "success",
        message,
    ))
}

/// POST /workflows/{id}/definition: parsed, then checked against the
/// connectors' schemas; any problem re-renders with 422, naming step and field.
pub async fn save_definition(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
    form: web::Form<DefinitionForm>,
) -> Result<HttpResponse, AppError> {
    let id: WorkflowId = parse_id(&id)?;
    let wf = store::get(&state.db, &admin.tenant_id, &id).await?;
    let issues: Vec<String> = match serde_json::from_str::<Definition>(&form.definition) {
        Err(e) => vec![format!("The definition is not valid: {e}")],
        Ok(d) => {
            let found: Vec<Issue> = d.check();
            if found.is_empty() {
                return save_checked(&state, &req, &admin, &wf, &d, json!({}), "Draft saved.")
                    .await;
            }
            found.iter().map(ToString::to_string).collect()
        }
    };
    workflow_page(
        &state,
        &req,
        &admin,
        wf,
        StatusCode::UNPROCESSABLE_ENTITY,
        Feedback {
            definition: Some(form.definition.clone()),
            issues,
            ..Feedback::default()
        },
    )
    .await
}

/// POST /workflows/{id}/bindings: which connection each connector uses.
pub async fn save_bindings(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
    form: web::Form<BTreeMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let id: WorkflowId = parse_id(&id)?;
    let wf = store::get(&state.db, &admin.tenant_id, &id).await?;
    let available = connections::list(&state.db, &admin.tenant_id).await?;
    let mut bindings = Bindings::new();
    let mut errors = BTreeMap::new();
    for k in connectors_used(&wf.draft) {
        let chosen = form
            .get(&format!("bind_{}", k.as_str()))
            .and_then(|v| v.parse::<ConnectionId>().ok());
        match chosen.and_then(|c| {
            available
                .iter()
                .find(|x| x.id == c && x.connector == k && x.environment == wf.environment)
        }) {
            Some(c) => {
                bindings.insert(k.as_str().to_owned(), c.id.clone());
            }
            None => {
                errors.insert(
                    k.as_str().to_owned(),
                    format!(
                        "Choose a {} connection in {}.",
                        k.def().name,
                        wf.environment.as_str()
                    ),
                );
            }
        }
    }
    if !errors.is_empty() {
        return workflow_page(
            &state,
            &req,
            &admin,
            wf,
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                binding_errors: errors,
                ..Feedback::default()
            },
        )
        .await;
    }
    store::save_draft(
        &state.db,
        &admin.tenant_id,
        &id,
        &wf.draft,
        &bindings,
        state.clock.now(),
    )
    .await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "workflow.connections_set",
        "workflow",
        id.as_str(),
        json!({ "bindings": bindings }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{id}"),
        "success",
        "Connections saved.",
    ))
}

/// POST /workflows/{id}/publish: the checked draft becomes the next version.
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id: WorkflowId = parse_id(&id)?;
    let wf = store::get(&state.db, &admin.tenant_id, &id).await?;
    let mut problems: Vec<String> = wf.draft.check().iter().map(ToString::to_string).collect();
    let available = connections::list(&state.db, &admin.tenant_id).await?;
    for k in connectors_used(&wf.draft) {
        let bound = wf
            .bindings
            .get(k.as_str())
            .and_then(|c| available.iter().find(|x| &x.id == c));
        match bound {
            None => problems.push(format!(
                "No {} connection is chosen for this workflow.",
                k.def().name
            )),
            Some(c) if c.status == ferry_core::ConnectionStatus::Broken => problems.push(format!(
                "The connection “{}” is broken: fix it before publishing.",
                c.name
            )),
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return workflow_page(
            &state,
            &req,
            &admin,
            wf,
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                issues: problems,
                ..Feedback::default()
            },
        )
        .await;
    }
    let version = store::publish(
        &state.db,
        &admin.tenant_id,
        &id,
        &admin.user.user_id,
        state.clock.now(),
    )
    .await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "workflow.published",
        "workflow",
        id.as_str(),
        json!({ "version": version }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{id}"),
        "success",
        &format!("Published version {version}."),
    ))
}

/// The roll-back form.
#[derive(Debug, serde::Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    version: String,
}

/// POST /workflows/{id}/rollback: runs use an earlier version again.
pub async fn roll_back(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
    form: web::Form<RollbackForm>,
) -> Result<HttpResponse, AppError> {
    let id: WorkflowId = parse_id(&id)?;
    store::get(&state.db, &admin.tenant_id, &id).await?;
    let Ok(version) = form.version.parse::<i32>() else {
        return Ok(redirect_with_flash(
            &format!("/workflows/{id}"),
            "error",
            "Choose a version to roll back to.",
        ));
    };
    store::roll_back(&state.db, &admin.tenant_id, &id, version, state.clock.now()).await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        "workflow.rolled_back",
        "workflow",
        id.as_str(),
        json!({ "version": version }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{id}"),
        "success",
        &format!("Runs now use version {version}."),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_starting_point_passes_the_check() {
        assert!(super::starting_point().check().is_empty());
    }
}

/// A field a mapping may read, for the builder's choices.
pub(crate) struct FieldChoice {
    pub path: String,
    pub label: String,
}

/// Every field the draft's steps can read: the trigger's, then each step's
/// output as its schema describes it (a map step's own names).
pub(crate) fn field_choices(d: &Definition) -> Vec<FieldChoice> {
    use ferry_core::catalog::FieldSchema;
    let describe = |prefix: &str, fields: &[FieldSchema]| -> Vec<FieldChoice> {
        fields
            .iter()
            .map(|f| FieldChoice {
                path: format!("{prefix}.{}", f.name),
                label: format!(
                    "{} — {}{}",
                    f.label,
                    ferry_core::workflow::type_name(f.ty),
                    if f.pii.is_pii() { ", personal" } else { "" }
                ),
            })
            .collect()
    };
    let mut out = d
        .trigger
        .connector
        .def()
        .trigger(&d.trigger.event)
        .map(|t| describe("trigger", t.fields))
        .unwrap_or_default();
    for s in &d.steps {
        let prefix = format!("steps.{}", s.key);
        match &s.kind {
            StepKind::Action {
                connector, action, ..
            } => {
                if let Some(a) = connector.def().action(action) {
                    out.extend(describe(&prefix, a.output));
                }
            }
            StepKind::Wait {
                connector, event, ..
            } => {
                if let Some(t) = connector.def().trigger(event) {
                    out.extend(describe(&prefix, t.fields));
                }
            }
            StepKind::Map { output } => out.extend(output.keys().map(|k| FieldChoice {
                path: format!("{prefix}.{k}"),
                label: "computed".into(),
            })),
            StepKind::Validate { .. } | StepKind::Condition { .. } => {}
        }
    }
    out
}

/// The step editor's form: one operation per submission.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StepForm {
    #[serde(default)]
    op: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    new_key: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    transform: String,
    #[serde(default)]
    check: String,
    #[serde(default)]
    arg: String,
}

fn default_for(ty: ferry_core::catalog::FieldType) -> Expr {
    use ferry_core::catalog::FieldType as T;
    Expr::Literal {
        value: match ty {
            T::Number => json!(0),
            T::Boolean => json!(false),
            T::Object => json!({}),
            _ => json!(""),
        },
    }
}

/// Applies one builder operation to a draft; `Err` is a message for the
/// person (the draft is then left as it was).
fn apply_step_op(d: &mut Definition, f: &StepForm) -> Result<String, String> {
    let index = |key: &str| {
        d.steps
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| format!("There is no step {key}."))
    };
    let path = |raw: &str| {
        FieldPath::parse(raw.trim())
            .map_err(|_| format!("Choose a field to read ({raw:?} is not one)."))
    };
    match f.op.as_str() {
        "up" | "down" => {
            let i = index(&f.key)?;
            let j = if f.op == "up" {
                i.checked_sub(1).ok_or("The step is first already.")?
            } else if i + 1 < d.steps.len() {
                i + 1
            } else {
                return Err("The step is last already.".into());
            };
            d.steps.swap(i, j);
            Ok(format!("Step {} moved {}.", f.key, f.op))
        }
        "remove" => {
            let i = index(&f.key)?;
            d.steps.remove(i);
            Ok(format!("Step {} removed.", f.key))
        }
        "add" => {
            let key = f.new_key.trim().to_owned();
            let kind = match f.kind.as_str() {
                "action" => {
                    let (c, a) = f.action.split_once(':').ok_or("Choose an action.")?;
                    let connector = ConnectorKey::parse(c).ok_or("Choose an action.")?;
                    let def = connector.def().action(a).ok_or("Choose an action.")?;
                    StepKind::Action {
                        connector,
                        action: a.to_owned(),
                        input: def
                            .input
                            .iter()
                            .filter(|i| i.required)
                            .map(|i| (i.name.to_owned(), default_for(i.ty)))
                            .collect(),
                        retry: RetryPolicy::default(),
                    }
                }
                "validate" => StepKind::Validate { rules: vec![] },
                "map" => StepKind::Map {
                    output: BTreeMap::new(),
                },
                "wait" => {
                    let (c, e) = f
                        .event
                        .split_once(':')
                        .ok_or("Choose the event to wait for.")?;
                    let connector =
                        ConnectorKey::parse(c).ok_or("Choose the event to wait for.")?;
                    let trigger = connector
                        .def()
                        .trigger(e)
                        .ok_or("Choose the event to wait for.")?;
                    let field = trigger
                        .fields
                        .iter()
                        .find(|x| x.ty == ferry_core::catalog::FieldType::Id)
                        .or_else(|| trigger.fields.first())
                        .ok_or("That event carries no field to correlate on.")?;
                    StepKind::Wait {
                        connector,
                        event: e.to_owned(),
                        correlation: Expr::Path {
                            path: path(&f.source)?,
                        },
                        event_field: field.name.to_owned(),
                        timeout_secs: 24 * 3600,
                    }
                }
                "condition" => StepKind::Condition {
                    path: path(&f.source)?,
                    equals: json!(f.arg.trim()),
                    negate: false,
                },
                _ => return Err("Choose the kind of step.".into()),
            };
            d.steps.push(Step {
                key: key.clone(),
                kind,
            });
            Ok(format!("Step {key} added."))
        }
        "map" => {
            let (step, field) = f
                .target
                .split_once(':')
                .ok_or("Choose the field to fill.")?;
            let i = index(step)?;
            let mut expr = Expr::Path {
                path: path(&f.source)?,
            };
            expr = match f.transform.as_str() {
                "" => expr,
                "trim" => expr.then(Transform::Trim),
                "lower" => expr.then(Transform::Trim).then(Transform::Lower),
                "upper" => expr.then(Transform::Trim).then(Transform::Upper),
                _ => return Err("Choose a transform from the list.".into()),
            };
            match &mut d.steps[i].kind {
                StepKind::Action { input, .. } => {
                    input.insert(field.to_owned(), expr);
                }
                StepKind::Map { output } => {
                    output.insert(field.to_owned(), expr);
                }
                _ => return Err(format!("Step {step} has no fields to fill.")),
            }
            Ok(format!("{step}.{field} now reads {}.", f.source.trim()))
        }
        "rule" => {
            let i = index(&f.key)?;
            let check = match f.check.as_str() {
                "required" => Check::Required,
                "email" => Check::Email,
                "phone" => Check::Phone,
                "date" => Check::Date,
                "country" => Check::Country,
                "max_len" => Check::MaxLen {
                    max: f
                        .arg
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("Enter the longest length allowed, a number above 0.")?,
                },
                "one_of" => {
                    let values: Vec<String> = f
                        .arg
                        .split(',')
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                        .collect();
                    if values.is_empty() {
                        return Err("List the allowed values, separated by commas.".into());
                    }
                    Check::OneOf { values }
                }
                _ => return Err("Choose a check from the list.".into()),
            };
            let StepKind::Validate { rules } = &mut d.steps[i].kind else {
                return Err(format!("Step {} is not a validation step.", f.key));
            };
            rules.push(Rule {
                path: path(&f.source)?,
                check,
            });
            Ok(format!("Rule added to {}.", f.key))
        }
        _ => Err("Unknown operation.".into()),
    }
}

/// POST /workflows/{id}/steps (admin): add, move, remove a step, fill an
/// input from a field, add a validation rule. The result is checked like
/// any draft; a problem leaves the draft as it was and is shown (422).
pub async fn edit_steps(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<String>,
    form: web::Form<StepForm>,
) -> Result<HttpResponse, AppError> {
    let id: WorkflowId = parse_id(&id)?;
    let wf = store::get(&state.db, &admin.tenant_id, &id).await?;
    let mut draft = wf.draft.clone();
    let issues = match apply_step_op(&mut draft, &form) {
        Err(message) => vec![message],
        Ok(done) => {
            let found = draft.check();
            if found.is_empty() {
                return save_checked(
                    &state,
                    &req,
                    &admin,
                    &wf,
                    &draft,
                    json!({ "op": form.op }),
                    &format!("{done} Draft saved."),
                )
                .await;
            }
            found.iter().map(ToString::to_string).collect()
        }
    };
    workflow_page(
        &state,
        &req,
        &admin,
        wf,
        StatusCode::UNPROCESSABLE_ENTITY,
        Feedback {
            issues,
            ..Feedback::default()
        },
    )
    .await
}
