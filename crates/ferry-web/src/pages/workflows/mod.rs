//! Workflows: list, create (from the reference template or a starting
//! point), the builder page (steps, connections, the definition checked on
//! save with errors naming step and field), publish as an immutable
//! version, roll back.

mod builder;
mod edit;
mod page;

pub use builder::*;
pub use edit::*;
pub use page::*;

use super::audit;
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

pub(super) fn starting_point() -> Definition {
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

pub(super) fn trigger_object_id() -> FieldPath {
    #[expect(
        clippy::expect_used,
        reason = "a constant, valid path; a test covers it"
    )]
    FieldPath::parse("trigger.objectId").expect("a valid constant path")
}

/// Connectors a definition uses.
pub(super) fn connectors_used(d: &Definition) -> BTreeSet<ConnectorKey> {
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

pub(super) struct Row {
    id: String,
    name: String,
    owner: String,
    environment: &'static str,
    status: String,
    trigger: String,
}

#[derive(Template)]
#[template(path = "workflows.html")]
pub(super) struct ListPage {
    layout: Layout,
    is_admin: bool,
    rows: Vec<Row>,
}

pub(super) async fn person(state: &AppState, id: &UserId) -> String {
    users::get(&state.db, id)
        .await
        .map_or_else(|_| "a former member".to_owned(), |u| u.name)
}

pub(super) fn status(w: &Workflow) -> String {
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
        ferry_core::AuditAction::WorkflowCreated,
        "workflow",
        wf.id.as_str(),
        json!({ "name": wf.name, "template": form.template }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/workflows/{}", wf.id),
        crate::templates::FlashKind::Success,
        "Workflow created as a draft.",
    ))
}
