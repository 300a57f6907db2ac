//! Workflows: list, create (from the reference template or a starting
//! point), the builder page (steps, connections, the definition checked on
//! save with errors naming step and field), publish as an immutable
//! version, roll back.

mod build;
mod edit;
mod lifecycle;
mod page;

pub use build::*;
pub use edit::*;
pub use lifecycle::*;
pub use page::*;

use crate::error::AppError;
use crate::session::{Admin, Member};
use crate::state::AppState;
use crate::templates::{FieldErrors, FlashKind, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_app::workflows::{NewWorkflow, Template as Start};
use ferry_core::catalog::ConnectorKey;
use ferry_core::workflow::{Definition, NewStep, StepKind, StepOp};
use ferry_core::{ConnectionId, FieldError, Role, WorkflowId};
use ferry_store::workflows::Workflow;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub(super) struct Row {
    id: String,
    name: String,
    owner: String,
    environment: &'static str,
    status: String,
    trigger: String,
    health: &'static str,
    health_reason: String,
}

#[derive(Template)]
#[template(path = "workflows.html")]
pub(super) struct ListPage {
    layout: Layout,
    is_admin: bool,
    rows: Vec<Row>,
}

pub(super) fn status(w: &Workflow) -> String {
    match (w.published_version, w.paused_at) {
        (None, _) => "draft, not published".to_owned(),
        (Some(v), None) => format!("published v{v}"),
        (Some(v), Some(_)) => format!("published v{v}, paused"),
    }
}

/// GET /workflows
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let health = state.services.alerts.health(&member.actor).await?;
    let rows = state
        .services
        .workflows
        .list(&member.actor)
        .await?
        .into_iter()
        .map(|r| {
            let w = r.workflow;
            let h = health.get(&w.id);
            Row {
                health: h.map_or("silent", |h| h.health.as_str()),
                health_reason: h.map(|h| h.reason.clone()).unwrap_or_default(),
                id: w.id.to_string(),
                owner: r.owner,
                environment: w.environment.as_str(),
                status: status(&w),
                trigger: format!(
                    "{}: {}",
                    w.draft.trigger.connector.def().name,
                    w.draft.trigger.event
                ),
                name: w.name,
            }
        })
        .collect();
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
pub(super) struct NewPage {
    layout: Layout,
    form: NewForm,
    owners: Vec<(String, String)>,
    errors: FieldErrors,
}

pub(super) async fn owners(
    state: &AppState,
    member: &Member,
) -> Result<Vec<(String, String)>, AppError> {
    Ok(state
        .services
        .users
        .active(&member.actor)
        .await?
        .into_iter()
        .map(|m| (m.user.id.to_string(), m.user.name))
        .collect())
}

/// The new-workflow page's query: how to start, chosen on the list.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    template: String,
}

/// GET /workflows/new
pub async fn new_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    query: web::Query<NewQuery>,
) -> Result<HttpResponse, AppError> {
    let template = Start::parse(query.template.trim()).unwrap_or(Start::Reference);
    let form = NewForm {
        name: "New contact → identity verification → outcome written back".into(),
        owner: admin.user.user_id.to_string(),
        environment: "sandbox".into(),
        template: template.as_str().into(),
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

impl TryFrom<&NewForm> for NewWorkflow {
    type Error = FieldErrors;
    fn try_from(form: &NewForm) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check(super::parse_name(&form.name, "workflow"));
        let owner = form.owner.parse().ok();
        if owner.is_none() {
            errors.push(FieldError::new(
                "owner",
                "Choose the person responsible from your firm.",
            ));
        }
        let environment = errors.check(super::parse_environment(&form.environment));
        let template = Start::parse(&form.template);
        if template.is_none() {
            errors.push(FieldError::new("template", "Choose how to start."));
        }
        match (name, owner, environment, template) {
            (Some(name), Some(owner), Some(environment), Some(template)) if errors.is_empty() => {
                Ok(Self {
                    name,
                    description: form.description.clone(),
                    owner,
                    environment,
                    template,
                })
            }
            _ => Err(errors),
        }
    }
}

/// POST /workflows
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    form: web::Form<NewForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let result = match NewWorkflow::try_from(&form) {
        Err(errors) => Err(ferry_app::Error::Invalid(errors)),
        Ok(new) => state.services.workflows.create(&admin.actor, new).await,
    };
    let errors = match result {
        // From scratch: straight into the builder.
        Ok(id) if form.template == "blank" => {
            return Ok(redirect_with_flash(
                &format!("/workflows/{id}/build"),
                FlashKind::Success,
                "Workflow created as a draft. Add its first step below.",
            ));
        }
        Ok(id) => {
            return Ok(redirect_with_flash(
                &format!("/workflows/{id}"),
                FlashKind::Success,
                "Workflow created as a draft.",
            ));
        }
        Err(ferry_app::Error::Invalid(errors)) => errors,
        Err(e) => return Err(e.into()),
    };
    let owners = owners(&state, &admin).await?;
    // Every field's problem at once: an owner who is not an active member
    // is named even when another field stopped the form before the service.
    let mut errors = errors;
    if errors.get("owner").is_none() && !owners.iter().any(|(id, _)| *id == form.owner) {
        errors.push(FieldError::new(
            "owner",
            "Choose the person responsible from your firm.",
        ));
    }
    let cut = |s: &str| s.chars().take(300).collect::<String>();
    let form = NewForm {
        name: cut(&form.name),
        description: cut(&form.description),
        ..form
    };
    render(
        &req,
        StatusCode::UNPROCESSABLE_ENTITY,
        &NewPage {
            layout: Layout::new(&req, "New workflow", "/workflows"),
            form,
            owners,
            errors,
        },
    )
}
