//! The landing pages: the member overview and the account page.

use super::home_for;
use crate::charts::Chart;
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
    runs: Vec<(&'static str, &'static str, u64)>,
    sandbox_portal: bool,
    charts: Vec<Chart>,
    health: Vec<HealthRow>,
    alerts: Vec<super::alerts::IncidentRow>,
    onboarding: Vec<ferry_app::overview::Onboarding>,
    onboarding_done: usize,
}

/// A workflow's line on the dashboard.
pub(crate) struct HealthRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) health: &'static str,
    pub(crate) reason: String,
    pub(crate) runs: u64,
    pub(crate) failures: u64,
    pub(crate) p95: String,
}

pub(crate) fn health_row(w: &ferry_app::alerts::Watched) -> HealthRow {
    HealthRow {
        id: w.id.to_string(),
        name: w.name.clone(),
        health: w.health.as_str(),
        reason: w.reason.clone(),
        runs: w.day.ended(),
        failures: w.day.failures(),
        p95: w.day.quantile_ms(0.95).map_or_else(
            || "—".to_owned(),
            |v| {
                if v >= 1000.0 {
                    format!("{:.1} s", v / 1000.0)
                } else {
                    format!("{v:.0} ms")
                }
            },
        ),
    }
}

/// GET /home: the firm's overview.
pub async fn overview(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let o = state.services.views.overview(&member.actor).await?;
    let d = state.services.alerts.dashboard(&member.actor, None).await?;
    let activity = o
        .activity
        .into_iter()
        .map(|e| ActivityRow {
            when: e.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            who: e.actor_label,
            what: super::audit::describe(&e.action).to_owned(),
        })
        .collect();
    let runs = o
        .runs
        .iter()
        .map(|(s, n)| (s.as_str(), super::runs::status_label(*s), *n))
        .collect();
    render(
        &req,
        StatusCode::OK,
        &OverviewPage {
            runs,
            sandbox_portal: o.sandbox_portal,
            charts: crate::charts::monitoring("tenant", &d.hours, &d.days),
            health: d.workflows.iter().map(health_row).collect(),
            alerts: d.open.iter().map(super::alerts::incident_row).collect(),
            layout: Layout::new(&req, "Dashboard", "/home"),
            name: member.user.name.clone(),
            is_admin: member.role == Role::Admin,
            active_members: o.active_members,
            admins: o.admins,
            pending_invites: o.pending_invites,
            activity,
            onboarding_done: o.onboarding.iter().filter(|s| s.done).count(),
            onboarding: o.onboarding,
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
