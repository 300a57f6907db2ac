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

/// Every route of the web UI.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/{file}", web::get().to(crate::assets::serve))
        .route("/", web::get().to(home::root))
        .route("/home", web::get().to(home::overview))
        .route("/account", web::get().to(home::account))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/password/forgot", web::get().to(auth::forgot_page))
        .route("/password/forgot", web::post().to(auth::forgot))
        .route("/invite/{token}", web::get().to(auth::link_page))
        .route("/invite/{token}", web::post().to(auth::redeem_link))
        .route("/password/reset/{token}", web::get().to(auth::link_page))
        .route("/password/reset/{token}", web::post().to(auth::redeem_link))
        .route("/operator/tenants", web::get().to(operator::list))
        .route("/operator/tenants", web::post().to(operator::create))
        .route("/operator/tenants/new", web::get().to(operator::new_page))
        .route("/operator/tenants/{id}", web::get().to(operator::detail))
        .route(
            "/operator/tenants/{id}/suspend",
            web::post().to(operator::suspend),
        )
        .route(
            "/operator/tenants/{id}/reactivate",
            web::post().to(operator::reactivate),
        )
        .route(
            "/operator/tenants/{id}/delete",
            web::post().to(operator::delete),
        )
        .route("/operator/audit", web::get().to(audit::platform))
        .route("/users", web::get().to(users::list))
        .route("/users/invite", web::post().to(users::invite))
        .route("/users/{id}", web::get().to(users::detail))
        .route("/users/{id}/role", web::post().to(users::change_role))
        .route("/users/{id}/deactivate", web::post().to(users::deactivate))
        .route("/users/{id}/reactivate", web::post().to(users::reactivate))
        .route("/connections", web::get().to(connections::list))
        .route(
            "/connections/oauth/callback",
            web::get().to(connections::oauth_callback),
        )
        .route(
            "/connections/new/{connector}",
            web::get().to(connections::new_form),
        )
        .route(
            "/connections/new/{connector}",
            web::post().to(connections::create),
        )
        .route("/connections/{id}", web::get().to(connections::detail))
        .route("/connections/{id}/test", web::post().to(connections::test))
        .route(
            "/connections/{id}/revoke",
            web::post().to(connections::revoke),
        )
        .route("/hooks/hubspot", web::post().to(hooks::hubspot))
        .route("/hooks/webhook/{id}", web::post().to(hooks::generic))
        .route(
            "/hooks/verification/{id}",
            web::post().to(hooks::verification),
        )
        .route("/workflows", web::get().to(workflows::list))
        .route("/workflows", web::post().to(workflows::create))
        .route("/workflows/new", web::get().to(workflows::new_form))
        .route("/workflows/{id}", web::get().to(workflows::detail))
        .route(
            "/workflows/{id}/definition",
            web::post().to(workflows::save_definition),
        )
        .route(
            "/workflows/{id}/bindings",
            web::post().to(workflows::save_bindings),
        )
        .route(
            "/workflows/{id}/publish",
            web::post().to(workflows::publish),
        )
        .route(
            "/workflows/{id}/rollback",
            web::post().to(workflows::roll_back),
        )
        .route(
            "/sandbox-samples",
            web::post().to(connections::sample_contacts),
        )
        .route(
            "/workflows/{id}/steps",
            web::post().to(workflows::edit_steps),
        )
        .route(
            "/workflows/{id}/dry-run",
            web::post().to(workflows::dry_run),
        )
        .route("/runs", web::get().to(runs::list))
        .route("/runs/replay", web::post().to(runs::bulk_replay))
        .route("/runs/{id}", web::get().to(runs::detail))
        .route("/runs/{id}/replay", web::post().to(runs::replay))
        .route("/runs/{id}/log.json", web::get().to(runs::export_json))
        .route("/runs/{id}/log.csv", web::get().to(runs::export_csv))
        .route("/api/runs", web::get().to(runs::api_list))
        .route("/verifications", web::get().to(runs::verifications))
        .route("/audit", web::get().to(audit::tenant))
        .route("/outbox", web::get().to(outbox::list))
        .route("/outbox/{id}", web::get().to(outbox::detail));
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
    action: &str,
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
}

/// Creates a one-time link (stored hashed) and emails it.
pub(crate) async fn send_link(
    state: &AppState,
    link: LinkRequest<'_>,
) -> Result<invites::Invite, AppError> {
    let token = new_token();
    let now = state.clock.now();
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
            expires_at: now + state.config.link_ttl,
        },
        &token_hash(&token),
        now,
    )
    .await?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    let hours = state.config.link_ttl.num_hours();
    let (subject, body) = match link.kind {
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
                     Choose your password here (the link works once, for {hours} hours):\n\
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
                 Choose a new password here (the link works once, for {hours} hours):\n\
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
