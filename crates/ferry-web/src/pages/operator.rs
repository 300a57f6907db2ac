//! The operator console: tenants, their status and lifecycle. Operators see
//! names and counts, never a tenant's data or secrets.

use crate::error::AppError;
use crate::session::Operator;
use crate::state::AppState;
use crate::templates::{FieldErrors, FlashKind, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_app::tenants::{NewTenant, TenantView};
use ferry_core::{EmailAddress, PersonName, TenantId, TenantName, TenantStatus};

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
    op: Operator,
) -> Result<HttpResponse, AppError> {
    let rows = state
        .services
        .tenants
        .list(&op.0)
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

impl TryFrom<&NewTenantForm> for NewTenant {
    type Error = FieldErrors;
    fn try_from(form: &NewTenantForm) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check(TenantName::parse("name", &form.name));
        let admin_name = errors.check(PersonName::parse("admin_name", &form.admin_name));
        let admin_email = errors.check(EmailAddress::parse("admin_email", &form.admin_email));
        match (name, admin_name, admin_email) {
            (Some(name), Some(admin_name), Some(admin_email)) => Ok(Self {
                name,
                admin_name,
                admin_email,
            }),
            _ => Err(errors),
        }
    }
}

/// POST /operator/tenants: creates the tenant and invites its first admin.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    form: web::Form<NewTenantForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let result = match NewTenant::try_from(&form) {
        Err(errors) => Err(ferry_app::Error::Invalid(errors)),
        Ok(new) => {
            let email = new.admin_email.clone();
            state
                .services
                .tenants
                .create(&op.0, new)
                .await
                .map(|t| (t, email))
        }
    };
    match result {
        Ok((tenant, email)) => Ok(redirect_with_flash(
            &format!("/operator/tenants/{}", tenant.id),
            FlashKind::Success,
            &format!("Tenant created. An invite was emailed to its first admin, {email}."),
        )),
        Err(ferry_app::Error::Invalid(errors)) => render(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewTenantPage {
                layout: Layout::new(&req, "New tenant", "/operator/tenants"),
                form: truncate_form(form),
                errors,
            },
        ),
        Err(e) => Err(e.into()),
    }
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

fn tenant_page(
    req: &HttpRequest,
    view: TenantView,
    status: StatusCode,
    confirm_name: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let (tenant, users) = (view.tenant, view.members);
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
    op: Operator,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, AppError> {
    let view = state.services.tenants.get(&op.0, &id.into_inner()).await?;
    tenant_page(
        &req,
        view,
        StatusCode::OK,
        String::new(),
        FieldErrors::new(),
    )
}

async fn set_status(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<TenantId>,
    status: TenantStatus,
) -> Result<HttpResponse, AppError> {
    let tenant = state
        .services
        .tenants
        .set_status(&op.0, &id.into_inner(), status)
        .await?;
    let message = match status {
        TenantStatus::Suspended => "Tenant suspended: its users are signed out and cannot sign in.",
        TenantStatus::Active => "Tenant reactivated: its users can sign in again.",
    };
    Ok(redirect_with_flash(
        &format!("/operator/tenants/{}", tenant.id),
        FlashKind::Success,
        message,
    ))
}

/// POST /operator/tenants/{id}/suspend
pub async fn suspend(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, op, id, TenantStatus::Suspended).await
}

/// POST /operator/tenants/{id}/reactivate
pub async fn reactivate(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, op, id, TenantStatus::Active).await
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
    let tenants = &state.services.tenants;
    match tenants.delete(&op.0, &id, &form.confirm_name).await {
        Ok(tenant) => Ok(redirect_with_flash(
            "/operator/tenants",
            FlashKind::Success,
            &format!("Tenant “{}” deleted.", tenant.name),
        )),
        Err(ferry_app::Error::Invalid(errors)) => {
            let view = tenants.get(&op.0, &id).await?;
            let typed = form.confirm_name.chars().take(300).collect();
            tenant_page(&req, view, StatusCode::UNPROCESSABLE_ENTITY, typed, errors)
        }
        Err(e) => Err(e.into()),
    }
}
