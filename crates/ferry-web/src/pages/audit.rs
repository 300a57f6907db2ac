//! The audit log pages: a tenant's (admins) and the platform's (operators).

use crate::error::AppError;
use crate::session::{Admin, Operator};
use crate::state::AppState;
use crate::templates::{Layout, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_store::audit::AuditEvent;

/// A human description of an audit action (the code itself for one this
/// version does not know).
pub fn describe(action: &str) -> &str {
    match ferry_core::AuditAction::parse(action) {
        Some(known) => known.label(),
        None => action,
    }
}

struct AuditRow {
    when: String,
    who: String,
    action: String,
    description: String,
    target: String,
    details: String,
    client_ip: String,
}

impl From<AuditEvent> for AuditRow {
    fn from(e: AuditEvent) -> Self {
        Self {
            when: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            who: e.actor_label,
            description: describe(&e.action).to_owned(),
            action: e.action,
            target: format!("{} {}", e.target_kind, e.target_id),
            details: if e.details == "{}" {
                String::new()
            } else {
                e.details
            },
            client_ip: e.client_ip,
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    heading: &'static str,
    rows: Vec<AuditRow>,
}

/// GET /audit: the tenant's audit log (admins).
pub async fn tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: Admin,
) -> Result<HttpResponse, AppError> {
    let rows = state
        .services
        .views
        .tenant_audit(&admin.0.actor, 200)
        .await?;
    render(
        &req,
        StatusCode::OK,
        &AuditPage {
            layout: Layout::new(&req, "Audit log", "/audit"),
            heading: "Audit log",
            rows: rows.into_iter().map(AuditRow::from).collect(),
        },
    )
}

/// GET /operator/audit: platform-level events (operators).
pub async fn platform(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
) -> Result<HttpResponse, AppError> {
    let rows = state.services.views.platform_audit(&op.0, 200).await?;
    render(
        &req,
        StatusCode::OK,
        &AuditPage {
            layout: Layout::new(&req, "Platform audit log", "/operator/audit"),
            heading: "Platform audit log",
            rows: rows.into_iter().map(AuditRow::from).collect(),
        },
    )
}
