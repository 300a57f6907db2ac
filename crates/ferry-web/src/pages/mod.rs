//! Routes, one file per area.

mod audit;
mod auth;
mod connections;
mod health;
mod home;
mod hooks;
mod operator;
mod outbox;
mod runs;
mod users;
mod workflows;

use crate::AppState;
use crate::error::AppError;
use crate::session::CurrentUser;
use actix_web::{HttpRequest, HttpResponse, web};
use ferry_core::{EmailAddress, InviteKind, Role, TenantId, UserId};
use ferry_engine::OutgoingEmail;
use ferry_store::{audit as audit_log, invites, new_token, token_hash};

pub(crate) use crate::redirect::safe_next;

/// Records every route as it is mounted, so the access-control test can
/// enumerate the router itself (a route added without a decision there
/// fails the suite).
struct Router<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    seen: Vec<(&'static str, &'static str)>,
}

impl Router<'_> {
    fn add<F, Args>(
        &mut self,
        method: &'static str,
        path: &'static str,
        route: actix_web::Route,
        handler: F,
    ) where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.seen.push((method, path));
        if let Some(cfg) = self.cfg.as_deref_mut() {
            cfg.route(path, route.to(handler));
        }
    }

    fn get<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.add("GET", path, web::get(), handler);
    }

    fn post<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.add("POST", path, web::post(), handler);
    }
}

/// Every route of the web UI.
pub fn routes(cfg: &mut web::ServiceConfig) {
    register(&mut Router {
        cfg: Some(cfg),
        seen: Vec::new(),
    });
}

/// Every (method, path pattern) the web UI serves, in mounting order.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    let mut r = Router {
        cfg: None,
        seen: Vec::new(),
    };
    register(&mut r);
    r.seen
}

fn register(r: &mut Router<'_>) {
    r.get("/healthz", health::healthz);
    r.get("/readyz", health::readyz);
    r.get("/static/{file}", crate::assets::serve);
    r.get("/", home::root);
    r.get("/home", home::overview);
    r.get("/account", home::account);
    r.get("/login", auth::login_page);
    r.post("/login", auth::login);
    r.post("/logout", auth::logout);
    r.get("/password/forgot", auth::forgot_page);
    r.post("/password/forgot", auth::forgot);
    r.get("/invite/{token}", auth::link_page);
    r.post("/invite/{token}", auth::redeem_link);
    r.get("/password/reset/{token}", auth::link_page);
    r.post("/password/reset/{token}", auth::redeem_link);
    r.get("/operator/tenants", operator::list);
    r.post("/operator/tenants", operator::create);
    r.get("/operator/tenants/new", operator::new_page);
    r.get("/operator/tenants/{id}", operator::detail);
    r.post("/operator/tenants/{id}/suspend", operator::suspend);
    r.post("/operator/tenants/{id}/reactivate", operator::reactivate);
    r.post("/operator/tenants/{id}/delete", operator::delete);
    r.get("/operator/audit", audit::platform);
    r.get("/users", users::list);
    r.post("/users/invite", users::invite);
    r.get("/users/{id}", users::detail);
    r.post("/users/{id}/role", users::change_role);
    r.post("/users/{id}/deactivate", users::deactivate);
    r.post("/users/{id}/reactivate", users::reactivate);
    r.get("/connections", connections::list);
    r.get("/connections/oauth/callback", connections::oauth_callback);
    r.get("/connections/new/{connector}", connections::new_form);
    r.post("/connections/new/{connector}", connections::create);
    r.get("/connections/{id}", connections::detail);
    r.post("/connections/{id}/test", connections::test);
    r.post("/connections/{id}/revoke", connections::revoke);
    r.post("/hooks/hubspot", hooks::hubspot);
    r.post("/hooks/hubspot/sandbox", hooks::hubspot_sandbox);
    r.post("/hooks/webhook/{id}", hooks::generic);
    r.post("/hooks/verification/{id}", hooks::verification);
    r.get("/workflows", workflows::list);
    r.post("/workflows", workflows::create);
    r.get("/workflows/new", workflows::new_form);
    r.get("/workflows/{id}", workflows::detail);
    r.post("/workflows/{id}/definition", workflows::save_definition);
    r.post("/workflows/{id}/bindings", workflows::save_bindings);
    r.post("/workflows/{id}/publish", workflows::publish);
    r.post("/workflows/{id}/rollback", workflows::roll_back);
    r.post("/sandbox-samples", connections::sample_contacts);
    r.post("/workflows/{id}/steps", workflows::edit_steps);
    r.post("/workflows/{id}/dry-run", workflows::dry_run);
    r.get("/runs", runs::list);
    r.post("/runs/replay", runs::bulk_replay);
    r.get("/runs/{id}", runs::detail);
    r.post("/runs/{id}/replay", runs::replay);
    r.get("/runs/{id}/log.json", runs::export_json);
    r.get("/runs/{id}/log.csv", runs::export_csv);
    r.get("/api/runs", runs::api_list);
    r.get("/verifications", runs::verifications);
    r.get("/audit", audit::tenant);
    r.get("/outbox", outbox::list);
    r.get("/outbox/{id}", outbox::detail);
}

/// The 404 page for any unknown path.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Parses an id from a path segment; a malformed id is simply not found.
fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

/// Appends to the audit log on behalf of `actor`.
#[allow(clippy::too_many_arguments)]
async fn audit(
    state: &AppState,
    req: &HttpRequest,
    tenant: Option<&TenantId>,
    actor: Option<&CurrentUser>,
    action: ferry_core::AuditAction,
    target_kind: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<(), AppError> {
    let auth = crate::session::request_auth(req);
    audit_log::record(
        &state.db,
        audit_log::NewAuditEvent {
            tenant_id: tenant,
            actor_user_id: actor.map(|a| &a.user_id),
            actor_label: actor.map_or("anonymous", |a| a.audit_label()),
            action,
            target_kind,
            target_id,
            details,
            client_ip: &auth.client_ip,
        },
        state.clock.now(),
    )
    .await?;
    Ok(())
}

/// Who receives a one-time link, and what it grants.
pub(crate) struct LinkRequest<'a> {
    pub kind: InviteKind,
    pub email: &'a EmailAddress,
    pub name: &'a str,
    pub tenant: Option<(&'a TenantId, &'a str, Role)>,
    pub user_id: Option<&'a UserId>,
    pub invited_by: Option<&'a CurrentUser>,
    /// The address already has a Ferry account elsewhere: the email tells
    /// its owner so, without a usable link (and the inviter is not told).
    pub already_registered: bool,
}

/// Creates a one-time link (stored hashed) and emails it.
pub(crate) async fn send_link(
    state: &AppState,
    link: LinkRequest<'_>,
) -> Result<invites::Invite, AppError> {
    let token = new_token();
    let now = state.clock.now();
    let ttl = match link.kind {
        InviteKind::Invite => state.config.link_ttl,
        InviteKind::PasswordReset => state.config.reset_ttl,
    };
    let invite = invites::create(
        &state.db,
        invites::NewInvite {
            kind: link.kind,
            email: link.email,
            name: link.name,
            tenant_id: link.tenant.map(|(t, _, _)| t),
            role: link.tenant.map(|(_, _, r)| r),
            user_id: link.user_id,
            invited_by: link.invited_by.map(|u| &u.user_id),
            expires_at: now + ttl,
        },
        &token_hash(&token),
        now,
    )
    .await?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    let hours = match ttl.num_hours() {
        1 => "1 hour".to_owned(),
        n => format!("{n} hours"),
    };
    let (subject, body) = match link.kind {
        InviteKind::Invite if link.already_registered => {
            let (tenant_name, inviter) = (
                link.tenant.map_or("a firm", |(_, n, _)| n),
                link.invited_by.map_or("Someone", |u| u.name.as_str()),
            );
            (
                "You are invited to Ferry".to_owned(),
                format!(
                    "Hello {name},\n\n{inviter} invited you to join {tenant_name} on Ferry.\n\n\
                     This email address already has a Ferry account, and an account belongs to \
                     one firm only, so this invitation cannot be accepted with it. If you should \
                     join {tenant_name}, reply to {inviter} with another address.\n\n\
                     If you did not expect this, ignore this email.\n",
                    name = link.name,
                ),
            )
        }
        InviteKind::Invite => {
            let what = match link.tenant {
                Some((_, tenant_name, role)) => {
                    format!(
                        "join {tenant_name} on Ferry as {}",
                        role.label().to_lowercase()
                    )
                }
                None => "become a Ferry platform operator".to_owned(),
            };
            let inviter = link
                .invited_by
                .map_or("Ferry".to_owned(), |u| u.name.clone());
            (
                "You are invited to Ferry".to_owned(),
                format!(
                    "Hello {name},\n\n{inviter} invited you to {what}.\n\n\
                     Choose your password here (the link works once, for {hours}):\n\
                     {base}/invite/{token}\n\n\
                     If you did not expect this, ignore this email.\n",
                    name = link.name,
                ),
            )
        }
        InviteKind::PasswordReset => (
            "Reset your Ferry password".to_owned(),
            format!(
                "Hello {name},\n\nSomeone (hopefully you) asked to reset your Ferry password.\n\n\
                 Choose a new password here (the link works once, for {hours}):\n\
                 {base}/password/reset/{token}\n\n\
                 If you did not ask for this, ignore this email: your password stays as it is.\n",
                name = link.name,
            ),
        ),
    };
    state
        .mailer
        .send(OutgoingEmail {
            tenant: link.tenant.map(|(t, _, _)| t.clone()),
            to: link.email.clone(),
            subject,
            body,
        })
        .await?;
    Ok(invite)
}

/// Redirect target after login, for each kind of user.
fn home_for(user: &CurrentUser) -> &'static str {
    match user.principal {
        crate::Principal::Operator => "/operator/tenants",
        crate::Principal::Member { .. } => "/home",
    }
}
