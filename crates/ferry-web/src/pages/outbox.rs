//! The local mail outbox: with no SMTP configured, emails stay here and this
//! page shows them. It exists only on a local install (public URL on this
//! machine), answers only requests from this machine, and only to a platform
//! operator's session, because the mail holds one-time links for everyone.

use crate::error::AppError;
use crate::session::{Operator, request_auth};
use crate::state::AppState;
use crate::templates::{Layout, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::EmailId;

fn allowed(state: &AppState, req: &HttpRequest) -> bool {
    let from_here = request_auth(req)
        .client_ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback());
    !state.mailer.smtp_configured() && state.config.is_local() && from_here
}

struct OutboxRow {
    id: String,
    when: String,
    to: String,
    subject: String,
    status: String,
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    layout: Layout,
    rows: Vec<OutboxRow>,
}

/// GET /outbox
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
) -> Result<HttpResponse, AppError> {
    if !allowed(&state, &req) {
        return Err(AppError::NotFound);
    }
    let rows = state
        .services
        .views
        .outbox(&op.0, 100)
        .await?
        .into_iter()
        .map(|e| OutboxRow {
            id: e.id.to_string(),
            when: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            to: e.to,
            subject: e.subject,
            status: e.status,
        })
        .collect();
    render(
        &req,
        StatusCode::OK,
        &OutboxPage {
            layout: Layout::new(&req, "Mail outbox", "/outbox"),
            rows,
        },
    )
}

#[derive(Template)]
#[template(path = "outbox_email.html")]
struct EmailPage {
    layout: Layout,
    when: String,
    to: String,
    subject: String,
    lines: Vec<BodyLine>,
}

/// A line of a plain-text email; links are made clickable.
struct BodyLine {
    text: String,
    is_link: bool,
}

/// GET /outbox/{id}
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    op: Operator,
    id: web::Path<EmailId>,
) -> Result<HttpResponse, AppError> {
    if !allowed(&state, &req) {
        return Err(AppError::NotFound);
    }
    let email = state
        .services
        .views
        .outbox_email(&op.0, &id.into_inner())
        .await?;
    render(
        &req,
        StatusCode::OK,
        &EmailPage {
            layout: Layout::new(&req, email.subject.clone(), "/outbox"),
            when: email.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            to: email.to,
            subject: email.subject,
            lines: email
                .body
                .lines()
                .map(|l| BodyLine {
                    is_link: l.starts_with("http://") || l.starts_with("https://"),
                    text: l.to_owned(),
                })
                .collect(),
        },
    )
}
