//! Changing a workflow: the definition (checked on save, errors naming
//! step and field), its bindings, publishing an immutable version, rolling
//! back.

use super::*;

/// GET /workflows/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
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
    pub(super) definition: String,
}

/// Saves a draft that passed its check, audits it, and goes back to the
/// workflow page with `message`.
pub(super) async fn save_checked(
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
        ferry_core::AuditAction::WorkflowDraftSaved,
        "workflow",
        wf.id.as_str(),
        details,
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{}", wf.id),
        crate::templates::FlashKind::Success,
        message,
    ))
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
    id: web::Path<WorkflowId>,
    form: web::Form<BTreeMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
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
        ferry_core::AuditAction::WorkflowConnectionsSet,
        "workflow",
        id.as_str(),
        json!({ "bindings": bindings }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{id}"),
        crate::templates::FlashKind::Success,
        "Connections saved.",
    ))
}

/// POST /workflows/{id}/publish: the checked draft becomes the next version.
pub async fn publish(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
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
        ferry_core::AuditAction::WorkflowPublished,
        "workflow",
        id.as_str(),
        json!({ "version": version }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{id}"),
        crate::templates::FlashKind::Success,
        &format!("Published version {version}."),
    ))
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
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<RollbackForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    store::get(&state.db, &admin.tenant_id, &id).await?;
    let Ok(version) = form.version.parse::<i32>() else {
        return Ok(redirect_with_flash(
            &format!("/workflows/{id}"),
            crate::templates::FlashKind::Error,
            "Choose a version to roll back to.",
        ));
    };
    store::roll_back(&state.db, &admin.tenant_id, &id, version, state.clock.now()).await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        ferry_core::AuditAction::WorkflowRolledBack,
        "workflow",
        id.as_str(),
        json!({ "version": version }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{id}"),
        crate::templates::FlashKind::Success,
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
