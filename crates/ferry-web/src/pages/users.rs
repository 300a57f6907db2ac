//! The team page: members and invites. Admins invite, change roles and
//! deactivate; staff see the list and change nothing.

use super::{LinkRequest, audit, send_link};
use crate::AppState;
use crate::error::AppError;
use crate::session::{Admin, Member};
use crate::templates::{FieldErrors, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::{EmailAddress, FieldError, InviteKind, PersonName, Role, UserId, UserStatus};
use ferry_store::{invites, tenants, users};
use serde_json::json;

struct MemberRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    active: bool,
    last_login: String,
    is_you: bool,
}

struct InviteRow {
    name: String,
    email: String,
    role: &'static str,
    expires: String,
}

/// The invite form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    is_admin: bool,
    members: Vec<MemberRow>,
    invites: Vec<InviteRow>,
    form: InviteForm,
    errors: FieldErrors,
}

async fn users_page(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    status: StatusCode,
    form: InviteForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let is_admin = member.role == Role::Admin;
    let members = users::members(&state.db, &member.tenant_id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            is_you: m.user.id == member.user.user_id,
            id: m.user.id.to_string(),
            name: m.user.name,
            email: m.user.email,
            role: m.role.label(),
            active: m.status == UserStatus::Active,
            last_login: m.user.last_login_at.map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
        })
        .collect();
    let invites = if is_admin {
        invites::pending_for_tenant(&state.db, &member.tenant_id, state.clock.now())
            .await?
            .into_iter()
            .map(|i| InviteRow {
                name: i.name,
                email: i.email,
                role: i.role.map_or("Staff", Role::label),
                expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    render(
        req,
        status,
        &UsersPage {
            layout: Layout::new(req, "Team", "/users"),
            is_admin,
            members,
            invites,
            form,
            errors,
        },
    )
}

/// GET /users
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    member: Member,
) -> Result<HttpResponse, AppError> {
    let form = InviteForm {
        role: "staff".into(),
        ..InviteForm::default()
    };
    users_page(
        &state,
        &req,
        &member,
        StatusCode::OK,
        form,
        FieldErrors::new(),
    )
    .await
}

/// POST /users/invite
pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let mut errors = FieldErrors::new();
    let name = errors.check(PersonName::parse("name", &form.name));
    let email = errors.check(EmailAddress::parse("email", &form.email));
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.push(FieldError::new("role", "Choose Admin or Staff."));
    }
    // Whether the address has an account is said only when it is on this
    // team (visible on this page anyway). An account elsewhere (another firm,
    // an operator) looks like any invite to the inviter; its owner is told
    // by email, and the link it gets cannot create a second account.
    let mut already_registered = false;
    if let Some(email) = &email
        && let Some(existing) = users::find_by_email(&state.db, email).await?
    {
        let on_this_team = users::membership_of(&state.db, &existing.id)
            .await?
            .is_some_and(|m| m.tenant.id == admin.tenant_id);
        if on_this_team {
            errors.push(FieldError::new(
                "email",
                "This person is already on your team.",
            ));
        } else {
            already_registered = true;
        }
    }
    let (Some(name), Some(email), Some(role), true) = (name, email, role, errors.is_empty()) else {
        let cut = |s: String| s.chars().take(300).collect::<String>();
        let form = InviteForm {
            name: cut(form.name),
            email: cut(form.email),
            role: cut(form.role),
        };
        return users_page(
            &state,
            &req,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
        )
        .await;
    };
    let tenant = tenants::get(&state.db, &admin.tenant_id).await?;
    let invite = send_link(
        &state,
        LinkRequest {
            kind: InviteKind::Invite,
            email: &email,
            name: name.as_str(),
            tenant: Some((&tenant.id, &tenant.name, role)),
            user_id: None,
            invited_by: Some(&admin.user),
            already_registered,
        },
    )
    .await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        ferry_core::AuditAction::UserInvited,
        "invite",
        invite.id.as_str(),
        json!({ "email": email.as_str(), "role": role.as_str() }),
    )
    .await?;
    Ok(redirect_with_flash(
        "/users",
        crate::templates::FlashKind::Success,
        &format!("Invite emailed to {email}."),
    ))
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    layout: Layout,
    id: String,
    name: String,
    email: String,
    role: &'static str,
    active: bool,
    joined: String,
    last_login: String,
    is_you: bool,
}

/// GET /users/{id} (admins)
pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<UserId>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let m = users::member(&state.db, &admin.tenant_id, &id).await?;
    render(
        &req,
        StatusCode::OK,
        &UserPage {
            layout: Layout::new(&req, m.user.name.clone(), "/users"),
            is_you: m.user.id == admin.user.user_id,
            id: m.user.id.to_string(),
            name: m.user.name,
            email: m.user.email,
            role: m.role.as_str(),
            active: m.status == UserStatus::Active,
            joined: m.joined_at.format("%Y-%m-%d").to_string(),
            last_login: m.user.last_login_at.map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
        },
    )
}

/// The change-role form.
#[derive(Debug, serde::Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// POST /users/{id}/role
pub async fn change_role(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<UserId>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    // Look the member up first, so another tenant's id is a 404 before any
    // validation message could reveal anything.
    let before = users::member(&state.db, &admin.tenant_id, &id).await?;
    let Some(role) = Role::parse(&form.role) else {
        return Ok(redirect_with_flash(
            &format!("/users/{id}"),
            crate::templates::FlashKind::Error,
            "Choose Admin or Staff.",
        ));
    };
    let after = users::set_role(&state.db, &admin.tenant_id, &id, role).await?;
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        ferry_core::AuditAction::UserRoleChanged,
        "user",
        id.as_str(),
        json!({ "from": before.role.as_str(), "to": after.role.as_str() }),
    )
    .await?;
    Ok(redirect_with_flash(
        &format!("/users/{id}"),
        crate::templates::FlashKind::Success,
        &format!(
            "{} is now {}.",
            after.user.name,
            after.role.label().to_lowercase()
        ),
    ))
}

async fn set_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    admin: Member,
    id: web::Path<UserId>,
    status: UserStatus,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let m = users::set_member_status(&state.db, &admin.tenant_id, &id, status).await?;
    let (action, message) = match status {
        UserStatus::Deactivated => (
            ferry_core::AuditAction::UserDeactivated,
            format!("{} is deactivated and signed out.", m.user.name),
        ),
        UserStatus::Active => (
            ferry_core::AuditAction::UserReactivated,
            format!("{} can sign in again.", m.user.name),
        ),
    };
    audit(
        &state,
        &req,
        Some(&admin.tenant_id),
        Some(&admin.user),
        action,
        "user",
        id.as_str(),
        json!({}),
    )
    .await?;
    if status == UserStatus::Deactivated {
        flag_connections_of(&state, &admin, &m.user).await?;
    }
    Ok(redirect_with_flash(
        &format!("/users/{id}"),
        crate::templates::FlashKind::Success,
        &message,
    ))
}

/// POST /users/{id}/deactivate
pub async fn deactivate(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<UserId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, req, admin, id, UserStatus::Deactivated).await
}

/// POST /users/{id}/reactivate
pub async fn reactivate(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<UserId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, req, admin, id, UserStatus::Active).await
}

/// Credentials must not outlive the access of the person who issued them:
/// flag their connections for rotation, record it, and tell the admins.
async fn flag_connections_of(
    state: &AppState,
    admin: &Member,
    person: &users::User,
) -> Result<(), AppError> {
    let now = state.clock.now();
    let flagged =
        ferry_store::connections::flag_created_by(&state.db, &admin.tenant_id, &person.id, now)
            .await?;
    if flagged.is_empty() {
        return Ok(());
    }
    let mut names = Vec::new();
    for c in &flagged {
        let message = format!(
            "{} created this connection and was deactivated: replace its credential.",
            person.name
        );
        ferry_store::connections::record_auth_event(
            &state.db,
            &admin.tenant_id,
            &c.id,
            "creator_deactivated",
            &message,
            now,
        )
        .await?;
        names.push(format!("- {} ({})", c.name, c.connector.def().name));
    }
    let base = state.config.public_url.as_str().trim_end_matches('/');
    for m in users::members(&state.db, &admin.tenant_id).await? {
        if m.role != Role::Admin || m.status != UserStatus::Active {
            continue;
        }
        let Ok(to) = EmailAddress::parse("email", &m.user.email) else {
            continue;
        };
        state
            .mailer
            .send(ferry_engine::OutgoingEmail {
                tenant: Some(admin.tenant_id.clone()),
                to,
                subject: "Connections need new credentials".into(),
                body: format!(
                    "Hello {},\n\n{} was deactivated. These connections use credentials they issued, \
                     which must not outlive their access. Reconnect or replace the credential of each:\n\n{}\n\n{base}/connections\n",
                    m.user.name,
                    person.name,
                    names.join("\n")
                ),
            })
            .await?;
    }
    Ok(())
}
