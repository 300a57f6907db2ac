//! The team page: members and invites. Admins invite, change roles and
//! deactivate; staff see the list and change nothing.

use crate::error::AppError;
use crate::session::{Admin, Member};
use crate::state::AppState;
use crate::templates::{FieldErrors, FlashKind, Layout, redirect_with_flash, render};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_app::users::NewInvite;
use ferry_core::{EmailAddress, FieldError, PersonName, Role, UserId, UserStatus};

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
    let team = state.services.users.team(&member.actor).await?;
    let members = team
        .members
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
    let invites = team
        .invites
        .into_iter()
        .map(|i| InviteRow {
            name: i.name,
            email: i.email,
            role: i.role.map_or("Staff", Role::label),
            expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect();
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

impl TryFrom<&InviteForm> for NewInvite {
    type Error = FieldErrors;
    fn try_from(form: &InviteForm) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check(PersonName::parse("name", &form.name));
        let email = errors.check(EmailAddress::parse("email", &form.email));
        let role = Role::parse(&form.role);
        if role.is_none() {
            errors.push(FieldError::new("role", "Choose Admin or Staff."));
        }
        match (name, email, role) {
            (Some(name), Some(email), Some(role)) if errors.is_empty() => {
                Ok(Self { name, email, role })
            }
            _ => Err(errors),
        }
    }
}

/// POST /users/invite
pub async fn invite(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let result = match NewInvite::try_from(&form) {
        Err(errors) => Err(ferry_app::Error::Invalid(errors)),
        Ok(new) => state.services.users.invite(&admin.actor, new).await,
    };
    match result {
        Ok(invite) => Ok(redirect_with_flash(
            "/users",
            FlashKind::Success,
            &format!("Invite emailed to {}.", invite.email),
        )),
        Err(ferry_app::Error::Invalid(errors)) => {
            let cut = |s: String| s.chars().take(300).collect::<String>();
            let form = InviteForm {
                name: cut(form.name),
                email: cut(form.email),
                role: cut(form.role),
            };
            users_page(
                &state,
                &req,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
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
    let m = state
        .services
        .users
        .member(&admin.actor, &id.into_inner())
        .await?;
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
    Admin(admin): Admin,
    id: web::Path<UserId>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let users = &state.services.users;
    let Some(role) = Role::parse(&form.role) else {
        // Another tenant's id is a 404 before any message could reveal
        // anything.
        users.member(&admin.actor, &id).await?;
        return Ok(redirect_with_flash(
            &format!("/users/{id}"),
            FlashKind::Error,
            "Choose Admin or Staff.",
        ));
    };
    let after = users.change_role(&admin.actor, &id, role).await?;
    Ok(redirect_with_flash(
        &format!("/users/{id}"),
        FlashKind::Success,
        &format!(
            "{} is now {}.",
            after.user.name,
            after.role.label().to_lowercase()
        ),
    ))
}

async fn set_status(
    state: web::Data<AppState>,
    admin: Member,
    id: web::Path<UserId>,
    status: UserStatus,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let m = state
        .services
        .users
        .set_status(&admin.actor, &id, status)
        .await?;
    let message = match status {
        UserStatus::Deactivated => format!("{} is deactivated and signed out.", m.user.name),
        UserStatus::Active => format!("{} can sign in again.", m.user.name),
    };
    Ok(redirect_with_flash(
        &format!("/users/{id}"),
        FlashKind::Success,
        &message,
    ))
}

/// POST /users/{id}/deactivate
pub async fn deactivate(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<UserId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, admin, id, UserStatus::Deactivated).await
}

/// POST /users/{id}/reactivate
pub async fn reactivate(
    state: web::Data<AppState>,
    Admin(admin): Admin,
    id: web::Path<UserId>,
) -> Result<HttpResponse, AppError> {
    set_status(state, admin, id, UserStatus::Active).await
}
