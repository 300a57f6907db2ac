//! The landing pages: the member overview and the account page.

use super::home_for;
use crate::error::AppError;
use crate::session::{CurrentUser, Member, request_auth};
use crate::state::AppState;
use crate::templates::{Layout, redirect, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::Role;

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
    let o = state.services.views.overview(&member.actor).await?;
    let activity = o
        .activity
        .into_iter()
        .map(|e| ActivityRow {
            when: e.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            who: e.actor_label,
            what: super::audit::describe(&e.action).to_owned(),
        })
        .collect();
    let runs = o.runs.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    render(
        &req,
        StatusCode::OK,
        &OverviewPage {
            runs,
            sandbox_portal: o.sandbox_portal,
            layout: Layout::new(&req, "Overview", "/home"),
            name: member.user.name.clone(),
            is_admin: member.role == Role::Admin,
            active_members: o.active_members,
            admins: o.admins,
            pending_invites: o.pending_invites,
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
    let stored = state.services.views.account(&user.user_id).await?;
    let (role, context) = match &user.principal {
        crate::principal::Principal::Operator => {
            ("Platform operator".to_owned(), "Ferry platform".to_owned())
        }
        crate::principal::Principal::Member {
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
