//! A workflow's lifecycle buttons: pause, resume (run or discard what was
//! held), unpublish, rename, duplicate, delete. Each parses, calls one
//! service and redirects with a message; a refused field re-renders the
//! page with 422 and the message beside the field.

use super::*;
use ferry_app::workflows::HeldRuns;

/// Re-renders the page with the refused fields beside the lifecycle forms.
async fn refused_fields(
    state: &AppState,
    req: &HttpRequest,
    admin: &Member,
    id: &WorkflowId,
    error: ferry_app::Error,
) -> Result<HttpResponse, AppError> {
    refused(state, req, admin, id, error, |errors| Feedback {
        manage_errors: errors
            .iter()
            .map(|e| (e.field.to_owned(), e.message.clone()))
            .collect(),
        ..Feedback::default()
    })
    .await
}

/// POST /workflows/{id}/pause
pub async fn pause(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    state.services.workflows.pause(&admin.actor, &id).await?;
    Ok(saved(
        &id,
        "Paused. Events are still received and kept; their runs wait until you resume.",
    ))
}

/// The resume form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ResumeForm {
    #[serde(default)]
    held: String,
}

/// POST /workflows/{id}/resume
pub async fn resume(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<ResumeForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let choice = HeldRuns::parse(form.held.trim());
    match state
        .services
        .workflows
        .resume(&admin.actor, &id, choice)
        .await
    {
        Ok(0) => Ok(saved(&id, "Resumed: new events start runs again.")),
        Ok(n) => Ok(saved(
            &id,
            &match choice {
                Some(HeldRuns::Discard) => format!(
                    "Resumed. {n} held run{} discarded.",
                    if n == 1 { "" } else { "s" }
                ),
                _ => format!(
                    "Resumed. {n} held run{} started.",
                    if n == 1 { "" } else { "s" }
                ),
            },
        )),
        Err(e) => refused_fields(&state, &req, &admin, &id, e).await,
    }
}

/// POST /workflows/{id}/unpublish
pub async fn unpublish(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    state
        .services
        .workflows
        .unpublish(&admin.actor, &id)
        .await?;
    Ok(saved(
        &id,
        "Unpublished: new events no longer start runs. Runs under way finish; publish again at any time.",
    ))
}

/// The rename form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

/// POST /workflows/{id}/rename
pub async fn rename(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<RenameForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let result = match crate::pages::parse_name(&form.name, "workflow") {
        Err(e) => Err(ferry_app::Error::field("name", e.message)),
        Ok(name) => {
            state
                .services
                .workflows
                .rename(&admin.actor, &id, &name)
                .await
        }
    };
    match result {
        Ok(()) => Ok(saved(&id, "Renamed.")),
        Err(e) => refused_fields(&state, &req, &admin, &id, e).await,
    }
}

/// POST /workflows/{id}/duplicate
pub async fn duplicate(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    let copy = state
        .services
        .workflows
        .duplicate(&admin.actor, &id.into_inner())
        .await?;
    Ok(saved(
        &copy,
        "Copied as a new draft with the same steps and connections. It is not published.",
    ))
}

/// The delete form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// POST /workflows/{id}/delete
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    match state
        .services
        .workflows
        .delete(&admin.actor, &id, &form.confirm)
        .await
    {
        Ok(()) => Ok(redirect_with_flash(
            "/workflows",
            FlashKind::Success,
            "Workflow deleted. Its runs and audit entries are kept.",
        )),
        Err(e) => refused_fields(&state, &req, &admin, &id, e).await,
    }
}
