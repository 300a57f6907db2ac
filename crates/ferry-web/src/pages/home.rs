//! The landing pages: the member overview and the account page.

use super::home_for;
use crate::AppState;
use crate::error::AppError;
use crate::session::{CurrentUser, Member, request_auth};
use crate::templates::{Layout, redirect, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::{Role, UserStatus};
use ferry_store::{audit as audit_log, invites, users};

/// GET /: where each kind of user starts.
pub async fn root(req: HttpRequest) -> HttpResponse {
    match request_auth(&req).user {
        Some(user) => redirect(home_for(&user)),
        None => redirect("/login"),
    }
}

/// One line of recent activity.
struct ActivityRow {
    when: String,
    who: String,
    what: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct OverviewPage {
    layout: Layout,
    name: String,
    is_admin: bool,
    active_members: usize,
    admins: usize,
    pending_invites: usize,
    activity: Vec<ActivityRow>,
    runs: Vec<(&'static str, u64)>,
    sandbox_portal: bool,
}

/// GET /home: the firm's overview.
pub async fn overview(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let members = users::members(&state.db, &member.tenant_id).await?;
    let active: Vec<_> = members
        .iter()
        .filter(|m| m.status == UserStatus::Active)
        .collect();
    let is_admin = member.role == Role::Admin;
    let (pending_invites, activity) = if is_admin {
        let pending = invites::pending_for_tenant(&state.db, &member.tenant_id, state.clock.now())
            .await?
            .len();
        let events = audit_log::for_tenant(&state.db, &member.tenant_id, 8).await?;
        (
            pending,
            events
                .into_iter()
                .map(|e| ActivityRow {
                    when: e.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    who: e.actor_label,
                    what: super::audit::describe(&e.action).to_owned(),
                })
                .collect(),
        )
    } else {
        (0, Vec::new())
    };
    let counts = ferry_store::runs::count_by_status(&state.db, &member.tenant_id).await?;
    let runs = ferry_store::runs::RunStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str(),
                counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let sandbox_portal = is_admin
        && state.services.connections.sandbox_available()
        && state
            .services
            .connections
            .sandbox_portal(&member.actor)
            .await?
            .is_some();
    render(
        &req,
        StatusCode::OK,
        &OverviewPage {
            runs,
            sandbox_portal,
            layout: Layout::new(&req, "Overview", "/home"),
            name: member.user.name.clone(),
            is_admin,
            active_members: active.len(),
            admins: active.iter().filter(|m| m.role == Role::Admin).count(),
            pending_invites,
            activity,
        },
    )
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    name: String,
    email: String,
    role: String,
    context: String,
    last_login: String,
}

/// GET /account: who you are signed in as.
pub async fn account(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let stored = users::get(&state.db, &user.user_id).await?;
    let (role, context) = match &user.principal {
        crate::Principal::Operator => ("Platform operator".to_owned(), "Ferry platform".to_owned()),
        crate::Principal::Member {
            tenant_name, role, ..
        } => (role.label().to_owned(), tenant_name.clone()),
    };
    render(
        &req,
        StatusCode::OK,
        &AccountPage {
            layout: Layout::new(&req, "Account", "/account"),
            name: stored.name,
            email: stored.email,
            role,
            context,
            last_login: stored.last_login_at.map_or_else(
                || "—".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
        },
    )
}
