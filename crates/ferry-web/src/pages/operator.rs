//! The operator console: tenants, their status and lifecycle. Operators see
//! names and counts, never a tenant's data or secrets.

use super::{LinkRequest, audit, send_link};
use crate::AppState;
use crate::error::AppError;
use crate::session::Operator;
use crate::templates::{FieldErrors, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::{
    EmailAddress, FieldError, InviteKind, PersonName, Role, TenantId, TenantName, TenantStatus,
};
use ferry_store::tenants::{self, Tenant};
use ferry_store::users;
use serde_json::json;

struct TenantRow {
    id: String,
    name: String,
    status: &'static str,
    users: u64,
    created: String,
}

#[derive(Template)]
#[template(path = "operator/tenants.html")]
struct TenantsPage {
    layout: Layout,
    rows: Vec<TenantRow>,
}

/// GET /operator/tenants
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    _op: Operator,
) -> Result<HttpResponse, AppError> {
    let rows = tenants::list_with_counts(&state.db)
        .await?
        .into_iter()
        .map(|s| TenantRow {
            id: s.tenant.id.to_string(),
            name: s.tenant.name,
            status: s.tenant.status.as_str(),
            users: s.users,
            created: s.tenant.created_at.format("%Y-%m-%d").to_string(),
        })
        .collect();
    render(
        &req,
        StatusCode::OK,
        &TenantsPage {
            layout: Layout::new(&req, "Tenants", "/operator/tenants"),
            rows,
        },
    )
}

/// The new-tenant form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NewTenantForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    admin_name: String,
    #[serde(default)]
    admin_email: String,
}

#[derive(Template)]
#[template(path = "operator/new_tenant.html")]
struct NewTenantPage {
    layout: Layout,
    form: NewTenantForm,
    errors: FieldErrors,
}

/// GET /operator/tenants/new
pub async fn new_page(req: HttpRequest, _op: Operator) -> Result<HttpResponse, AppError> {
    render(
        &req,
        StatusCode::OK,
        &NewTenantPage {
            layout: Layout::new(&req, "New tenant", "/operator/tenants"),
            form: NewTenantForm::default(),
            errors: FieldErrors::new(),
        },
    )
}

/// POST /operator/tenants: creates the tenant and invites its first admin.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    form: web::Form<NewTenantForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let name = errors.check(TenantName::parse("name", &form.name));
    let admin_name = errors.check(PersonName::parse("admin_name", &form.admin_name));
    let admin_email = errors.check(EmailAddress::parse("admin_email", &form.admin_email));
    if let Some(email) = &admin_email
        && users::find_by_email(&state.db, email).await?.is_some()
    {
        errors.push(FieldError::new(
            "admin_email",
            "This person already has a Ferry account; invite someone else.",
        ));
    }
    let valid = match (name, admin_name, admin_email) {
        (Some(n), Some(a), Some(e)) if errors.is_empty() => Some((n, a, e)),
        _ => None,
    };
    let Some((name, admin_name, admin_email)) = valid else {
        return render(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewTenantPage {
                layout: Layout::new(&req, "New tenant", "/operator/tenants"),
                form: truncate_form(form),
                errors,
            },
        );
    };
    let tenant = tenants::create(&state.db, &name, state.clock.now()).await?;
    send_link(
        &state,
        LinkRequest {
            kind: InviteKind::Invite,
            email: &admin_email,
            name: admin_name.as_str(),
            tenant: Some((&tenant.id, &tenant.name, Role::Admin)),
            user_id: None,
            invited_by: Some(&op.0),
            already_registered: false,
        },
    )
    .await?;
    audit(
        &state,
        &req,
        None,
        Some(&op.0),
        ferry_core::AuditAction::TenantCreated,
        "tenant",
        tenant.id.as_str(),
        json!({ "name": tenant.name }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/operator/tenants/{}", tenant.id),
        crate::templates::FlashKind::Success,
        &format!("Tenant created. An invite was emailed to its first admin, {admin_email}."),
    ))
}

/// Keeps re-rendered inputs to a sane size (a 10 kB name is echoed back cut).
fn truncate_form(form: NewTenantForm) -> NewTenantForm {
    let cut = |s: String| s.chars().take(300).collect::<String>();
    NewTenantForm {
        name: cut(form.name),
        admin_name: cut(form.admin_name),
        admin_email: cut(form.admin_email),
    }
}

#[derive(Template)]
#[template(path = "operator/tenant.html")]
struct TenantPage {
    layout: Layout,
    id: String,
    name: String,
    status: &'static str,
    suspended: bool,
    users: u64,
    created: String,
    confirm_name: String,
    confirm_hint: String,
    errors: FieldErrors,
}

async fn tenant_page(
    state: &AppState,
    req: &HttpRequest,
    tenant: Tenant,
    status: StatusCode,
    confirm_name: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let users = tenants::member_count(&state.db, &tenant.id).await?;
    render(
        req,
        status,
        &TenantPage {
            layout: Layout::new(req, tenant.name.clone(), "/operator/tenants"),
            id: tenant.id.to_string(),
            suspended: tenant.status == TenantStatus::Suspended,
            status: tenant.status.as_str(),
            confirm_hint: format!("Type: {}", tenant.name),
            name: tenant.name,
            users,
            created: tenant.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            confirm_name,
            errors,
        },
    )
}

/// GET /operator/tenants/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    _op: Operator,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let tenant = tenants::get(&state.db, &id).await?;
    tenant_page(
        &state,
        &req,
        tenant,
        StatusCode::OK,
        String::new(),
        FieldErrors::new(),
    )
    .await
}

async fn set_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    id: web::Path<TenantId>,
    status: TenantStatus,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let tenant = tenants::set_status(&state.db, &id, status, state.clock.now()).await?;
    let (action, message) = match status {
        TenantStatus::Suspended => (
            ferry_core::AuditAction::TenantSuspended,
            "Tenant suspended: its users are signed out and cannot sign in.",
        ),
        TenantStatus::Active => (
            ferry_core::AuditAction::TenantReactivated,
            "Tenant reactivated: its users can sign in again.",
        ),
    };
    audit(
        &state,
        &req,
        None,
        Some(&op.0),
        action,
        "tenant",
        tenant.id.as_str(),
        json!({ "name": tenant.name }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/operator/tenants/{}", tenant.id),
        crate::templates::FlashKind::Success,
        message,
    ))
}

/// POST /operator/tenants/{id}/suspend
pub async fn suspend(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, req, op, id, TenantStatus::Suspended).await
}

/// POST /operator/tenants/{id}/reactivate
pub async fn reactivate(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, req, op, id, TenantStatus::Active).await
}

/// The typed confirmation for deleting a tenant.
#[derive(Debug, serde::Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm_name: String,
}

/// POST /operator/tenants/{id}/delete: only with the tenant's name typed.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    id: web::Path<TenantId>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let tenant = tenants::get(&state.db, &id).await?;
    if form.confirm_name.trim() != tenant.name {
        let mut errors = FieldErrors::new();
        errors.push(FieldError::new(
            "confirm_name",
            "Type the tenant's name exactly as shown to confirm.",
        ));
        let typed = form.confirm_name.chars().take(300).collect();
        return tenant_page(
            &state,
            &req,
            tenant,
            StatusCode::UNPROCESSABLE_ENTITY,
            typed,
            errors,
        )
        .await;
    }
    tenants::delete(&state.db, &id).await?;
    audit(
        &state,
        &req,
        None,
        Some(&op.0),
        ferry_core::AuditAction::TenantDeleted,
        "tenant",
        id.as_str(),
        json!({ "name": tenant.name }),
    )
    .await?;
    Ok(redirect_with_flash(
        "/operator/tenants",
        crate::templates::FlashKind::Success,
        &format!("Tenant “{}” deleted.", tenant.name),
    ))
}
