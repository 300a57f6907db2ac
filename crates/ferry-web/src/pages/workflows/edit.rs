//! Changing a workflow: the definition (checked on save, errors naming
//! step and field), its bindings, publishing an immutable version, rolling
//! back. Each handler parses, calls one service, and renders; a refused
//! change re-renders the workflow page with 422.

use super::*;

/// GET /workflows/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    workflow_page(
        &state,
        &req,
        &member,
        &id.into_inner(),
        StatusCode::OK,
        Feedback::default(),
    )
    .await
}

/// The definition editor.
#[derive(Debug, serde::Deserialize)]
pub struct DefinitionForm {
    #[serde(default)]
    pub(super) definition: String,
}

/// Where a change that was saved goes: the workflow page, with `message`.
pub(super) fn saved(id: &WorkflowId, message: &str) -> HttpResponse {
    redirect_with_flash(&format!("/workflows/{id}"), FlashKind::Success, message)
}

/// The messages of a refused change, for the page's problem list.
pub(super) fn issues_of(errors: &FieldErrors) -> Vec<String> {
    errors.iter().map(|e| e.message.clone()).collect()
}

/// Re-renders the page for a refused change, or passes any other error on.
pub(super) async fn refused(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    id: &WorkflowId,
    error: ferry_app::Error,
    feedback: impl FnOnce(FieldErrors) -> Feedback,
) -> Result<HttpResponse, AppError> {
    match error {
        ferry_app::Error::Invalid(errors) => {
            workflow_page(
                state,
                req,
                member,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                feedback(errors),
            )
            .await
        }
        other => Err(other.into()),
    }
}

/// POST /workflows/{id}/definition: parsed, then checked against the
/// connectors' schemas; any problem re-renders with 422, naming step and field.
pub async fn save_definition(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<DefinitionForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let typed = form.into_inner().definition;
    let result = match serde_json::from_str::<Definition>(&typed) {
        Err(e) => Err(ferry_app::Error::field(
            "definition",
            format!("The definition is not valid: {e}"),
        )),
        Ok(d) => {
            state
                .services
                .workflows
                .save_definition(&admin.actor, &id, d)
                .await
        }
    };
    match result {
        Ok(()) => Ok(saved(&id, "Draft saved.")),
        Err(e) => {
            refused(&state, &req, &admin, &id, e, |errors| Feedback {
                definition: Some(typed),
                issues: issues_of(&errors),
                ..Feedback::default()
            })
            .await
        }
    }
}

/// POST /workflows/{id}/bindings: which connection each connector uses
/// (`bind_<connector>` fields).
pub async fn save_bindings(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<BTreeMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let chosen: BTreeMap<ConnectorKey, ConnectionId> = ConnectorKey::ALL
        .iter()
        .filter_map(|k| {
            let raw = form.get(&format!("bind_{}", k.as_str()))?;
            Some((*k, raw.parse().ok()?))
        })
        .collect();
    match state
        .services
        .workflows
        .bind(&admin.actor, &id, &chosen)
        .await
    {
        Ok(()) if form.get("from").is_some_and(|f| f == "build") => Ok(redirect_with_flash(
            &format!("/workflows/{id}/build"),
            FlashKind::Success,
            "Connections saved in the draft: they take effect when you publish.",
        )),
        Ok(()) => Ok(saved(
            &id,
            "Connections saved in the draft: they take effect when you publish.",
        )),
        Err(e) if form.get("from").is_some_and(|f| f == "build") => {
            refused_build(&state, &req, &admin, &id, e, BuildFeedback::default()).await
        }
        Err(e) => {
            refused(&state, &req, &admin, &id, e, |errors| Feedback {
                issues: issues_of(&errors),
                ..Feedback::default()
            })
            .await
        }
    }
}

use ferry_app::workflows::Published;
use ferry_app::workflows::gate::GateReport;

/// The publish form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PublishForm {
    #[serde(default)]
    pub(super) note: String,
}

#[derive(Template)]
#[template(path = "publish.html")]
struct PublishPage {
    layout: Layout,
    id: String,
    name: String,
    live: Option<i32>,
    changes: Vec<String>,
    note: String,
    errors: FieldErrors,
    blocked: Option<GateReport>,
}

async fn publish_page(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    id: &WorkflowId,
    note: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    publish_page_with(state, req, member, id, note, errors, None).await
}

async fn publish_page_with(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    id: &WorkflowId,
    note: String,
    errors: FieldErrors,
    blocked: Option<GateReport>,
) -> Result<HttpResponse, AppError> {
    let view = state.services.workflows.view(&member.actor, id).await?;
    let changes = if view.workflow.published_version.is_some() {
        view.unpublished_changes.clone()
    } else {
        vec!["First version: nothing is published yet.".to_owned()]
    };
    render(
        req,
        if errors.is_empty() && blocked.is_none() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &PublishPage {
            layout: Layout::new(req, format!("Publish {}", view.workflow.name), "/workflows"),
            id: id.to_string(),
            name: view.workflow.name.clone(),
            live: view.workflow.published_version,
            changes,
            note,
            errors,
            blocked,
        },
    )
}

/// GET /workflows/{id}/publish: what publishing changes, and the change
/// note it asks for.
pub async fn publish_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    publish_page(&state, &req, &admin, &id, String::new(), FieldErrors::new()).await
}

/// POST /workflows/{id}/publish: the checked draft becomes the next
/// version; a refusal re-renders the publish page (422) saying why.
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<PublishForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let note = form.into_inner().note;
    match state
        .services
        .workflows
        .publish(&admin.actor, &id, &note)
        .await
    {
        Ok(Published::Version {
            version,
            checklist,
            not_run,
        }) => Ok(saved(
            &id,
            &match (checklist, not_run) {
                (Some(c), _) => format!(
                    "Published version {version}. The publish checklist passed ({} of {}).",
                    c.checks.len(),
                    c.checks.len()
                ),
                (None, Some(why)) => {
                    format!("Published version {version}. The publish checklist did not run: {why}")
                }
                (None, None) => format!("Published version {version}."),
            },
        )),
        Ok(Published::Blocked(report)) => {
            publish_page_with(
                &state,
                &req,
                &admin,
                &id,
                note,
                FieldErrors::new(),
                Some(report),
            )
            .await
        }
        Err(ferry_app::Error::Invalid(errors)) => {
            publish_page(&state, &req, &admin, &id, note, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The roll-back form.
#[derive(Debug, serde::Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    pub(super) version: String,
}

/// POST /workflows/{id}/rollback: runs use an earlier version again.
pub async fn roll_back(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<RollbackForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let Ok(version) = form.version.parse::<i32>() else {
        // The workflow must be the member's before anything is said.
        state.services.workflows.view(&admin.actor, &id).await?;
        return Ok(redirect_with_flash(
            &format!("/workflows/{id}"),
            FlashKind::Error,
            "Choose a version to roll back to.",
        ));
    };
    state
        .services
        .workflows
        .roll_back(&admin.actor, &id, version)
        .await?;
    Ok(saved(&id, &format!("Runs now use version {version}.")))
}
