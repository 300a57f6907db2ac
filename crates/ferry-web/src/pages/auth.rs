//! Login, logout, password reset and one-time links.

use super::{home_for, safe_next};
use crate::error::AppError;
use crate::error_page::error_page;
use crate::password::{hash_password, verify_password};
use crate::principal::Principal;
use crate::session::{CurrentUser, cookie, removal, request_auth, session_cookie_name};
use crate::state::AppState;
use crate::templates::{FieldErrors, Layout, redirect_with_flash, render};
use crate::throttle::{self, LoginLocks, Reason, Verdict};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_core::{EmailAddress, FieldError, InviteKind, Password, TenantStatus, UserStatus};
use ferry_store::invites::LinkState;
use ferry_store::{
    StoreError, audit as audit_log, invites, login_attempts, new_token, sessions, tenants,
    token_hash, users,
};

/// Reset links emailed to one address per hour, at most.
const GENERIC_FAILURE: &str = "Invalid email or password.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    error: Option<String>,
    errors: FieldErrors,
}

/// The login form.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `?next=` on the login page.
#[derive(Debug, serde::Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

fn login_page_with(
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<String>,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    render(
        req,
        status,
        &LoginPage {
            layout: Layout::new(req, "Sign in", "/login"),
            email: email.chars().take(254).collect(),
            next: safe_next(next).unwrap_or("").to_owned(),
            error,
            errors,
        },
    )
}

/// GET /login
pub async fn login_page(
    req: HttpRequest,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    if let Some(user) = request_auth(&req).user {
        return Ok(crate::templates::redirect(home_for(&user)));
    }
    login_page_with(
        &req,
        StatusCode::OK,
        "",
        &query.next,
        None,
        FieldErrors::new(),
    )
}

/// POST /login
pub async fn login(
    state: web::Data<AppState>,
    locks: web::Data<LoginLocks>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let auth = request_auth(&req);
    let key: String = form.email.trim().to_lowercase().chars().take(254).collect();
    let client = throttle::client_key(&auth.client_ip);

    // The check, the password and the record of the outcome happen as one
    // step per (account, client) pair, so parallel guesses queue behind it.
    let _turn = locks.lock(&key, &client).await;
    let now = state.clock.now();
    if let Verdict::Wait { until, reason } = throttle::check(&state.db, &key, &client, now).await? {
        let wait = throttle::describe_wait(until - now);
        let message = match reason {
            Reason::Pair => format!(
                "Too many failed sign-in attempts for this email address from your network. \
                 Try again in {wait}, or reset your password."
            ),
            Reason::Address => {
                format!("Too many failed sign-in attempts from your network. Try again in {wait}.")
            }
        };
        tracing::warn!(client_ip = %auth.client_ip, ?reason, "login throttled");
        let mut res = login_page_with(
            &req,
            StatusCode::TOO_MANY_REQUESTS,
            &form.email,
            &form.next,
            Some(message),
            FieldErrors::new(),
        )?;
        let seconds = u64::try_from((until - now).num_milliseconds())
            .unwrap_or(0)
            .div_ceil(1000)
            .max(1);
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        return Ok(res);
    }

    let mut errors = FieldErrors::new();
    let email = errors.check(EmailAddress::parse("email", &form.email));
    if form.password.is_empty() {
        errors.push(FieldError::new("password", "Enter your password."));
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return login_page_with(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.email,
            &form.next,
            None,
            errors,
        );
    };

    let user = users::find_by_email(&state.db, &email).await?;
    let verified = verify_password(
        form.password,
        user.as_ref().and_then(|u| u.password_hash.clone()),
    )
    .await;
    let Some(user) = user.filter(|_| verified) else {
        login_attempts::record(&state.db, &key, &client, false, now).await?;
        return login_page_with(
            &req,
            StatusCode::UNAUTHORIZED,
            &form.email,
            &form.next,
            Some(GENERIC_FAILURE.into()),
            FieldErrors::new(),
        );
    };

    // The password proved who this is, so a specific reason may be given.
    let refuse = |message: String| {
        login_page_with(
            &req,
            StatusCode::FORBIDDEN,
            &form.email,
            &form.next,
            Some(message),
            FieldErrors::new(),
        )
    };
    if user.status != UserStatus::Active {
        return refuse("Your access to Ferry has been deactivated.".into());
    }
    let tenant = if user.is_operator {
        None
    } else {
        match users::membership_of(&state.db, &user.id).await? {
            Some(m) if m.tenant.status == TenantStatus::Suspended => {
                return refuse(
                    "Your firm's access to Ferry is suspended. Contact your Ferry operator.".into(),
                );
            }
            Some(m) if m.status != UserStatus::Active => {
                return refuse(format!(
                    "Your access to {} has been deactivated. Ask an admin of your firm.",
                    m.tenant.name
                ));
            }
            Some(m) => Some(m.tenant.id),
            None => return refuse("Your account does not belong to a firm.".into()),
        }
    };

    login_attempts::record(&state.db, &key, &client, true, now).await?;
    // A new session id at every login: a planted cookie is worth nothing.
    if let Some(old) = &auth.user {
        sessions::delete(&state.db, &old.session_hash).await?;
    }
    let token = new_token();
    sessions::create(
        &state.db,
        &token_hash(&token),
        &user.id,
        tenant.as_ref(),
        &new_token(),
        &auth.client_ip,
        now,
    )
    .await?;
    users::record_login(&state.db, &user.id, now).await?;
    audit_log::record(
        &state.db,
        audit_log::NewAuditEvent {
            tenant_id: tenant.as_ref(),
            actor_user_id: Some(&user.id),
            actor_label: &user.email,
            action: ferry_core::AuditAction::UserLoggedIn,
            target_kind: "user",
            target_id: user.id.as_str(),
            details: serde_json::json!({}),
            client_ip: &auth.client_ip,
        },
        now,
    )
    .await?;

    let landing = if user.is_operator {
        "/operator/tenants"
    } else {
        "/home"
    };
    let target = safe_next(&form.next).unwrap_or(landing);
    let secure = state.config.secure_cookies();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target.to_owned()))
        .cookie(cookie(session_cookie_name(secure), token, secure))
        .finish())
}

/// POST /logout: ends the session on the server.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    sessions::delete(&state.db, &user.session_hash).await?;
    let tenant = match &user.principal {
        Principal::Member { tenant_id, .. } => Some(tenant_id.clone()),
        Principal::Operator => None,
    };
    audit_log::record(
        &state.db,
        audit_log::NewAuditEvent {
            tenant_id: tenant.as_ref(),
            actor_user_id: Some(&user.user_id),
            actor_label: user.audit_label(),
            action: ferry_core::AuditAction::UserLoggedOut,
            target_kind: "user",
            target_id: user.user_id.as_str(),
            details: serde_json::json!({}),
            client_ip: &request_auth(&req).client_ip,
        },
        state.clock.now(),
    )
    .await?;
    let secure = state.config.secure_cookies();
    let mut res = redirect_with_flash(
        "/login",
        crate::templates::FlashKind::Success,
        "You have signed out.",
    );
    res.add_cookie(&removal(session_cookie_name(secure), secure))
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    Ok(res)
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
    email: String,
    errors: FieldErrors,
}

/// The forgotten-password form.
#[derive(Debug, serde::Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// GET /password/forgot
pub async fn forgot_page(req: HttpRequest) -> Result<HttpResponse, AppError> {
    render(
        &req,
        StatusCode::OK,
        &ForgotPage {
            layout: Layout::new(&req, "Reset your password", "/login"),
            email: String::new(),
            errors: FieldErrors::new(),
        },
    )
}

/// POST /password/forgot: emails a reset link if the account exists, and
/// says the same thing either way.
pub async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    let Some(email) = errors.check(EmailAddress::parse("email", &form.email)) else {
        return render(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            &ForgotPage {
                layout: Layout::new(&req, "Reset your password", "/login"),
                email: form.email.chars().take(254).collect(),
                errors,
            },
        );
    };
    state.services.users.request_password_reset(&email).await?;
    Ok(redirect_with_flash(
        "/login",
        crate::templates::FlashKind::Info,
        "If an account exists for that address, we have emailed it a link to choose a new password.",
    ))
}

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage {
    layout: Layout,
    heading: String,
    intro: String,
    email: String,
    action: String,
    errors: FieldErrors,
}

/// The choose-a-password form.
#[derive(Debug, serde::Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

fn link_kind(req: &HttpRequest) -> InviteKind {
    if req.path().starts_with("/invite/") {
        InviteKind::Invite
    } else {
        InviteKind::PasswordReset
    }
}

async fn valid_link(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<Result<invites::Invite, HttpResponse>, AppError> {
    let gone = |message: &str| {
        Ok(Err(error_page(
            StatusCode::GONE,
            "Link no longer valid",
            message,
            None,
        )))
    };
    if token.len() != 64 {
        return Err(AppError::NotFound);
    }
    match invites::lookup(&state.db, &token_hash(token), state.clock.now()).await? {
        LinkState::Valid(invite) if invite.kind == link_kind(req) => Ok(Ok(invite)),
        LinkState::Valid(_) | LinkState::Unknown => Err(AppError::NotFound),
        LinkState::Expired => gone(
            "This link has expired. Ask whoever sent it for a new one, or use “Forgot your password?” on the sign-in page.",
        ),
        LinkState::Used => gone(
            "This link was already used. Sign in with your password, or use “Forgot your password?” on the sign-in page.",
        ),
    }
}

async fn set_password_page(
    state: &AppState,
    req: &HttpRequest,
    invite: &invites::Invite,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let (heading, intro) = match (invite.kind, &invite.tenant_id) {
        (InviteKind::Invite, Some(tenant_id)) => {
            let tenant = tenants::get(&state.db, tenant_id).await?;
            let role = invite.role.map_or("member", |r| r.label());
            (
                format!("Join {}", tenant.name),
                format!("You were invited as {}. Choose a password to finish setting up your account.", role.to_lowercase()),
            )
        }
        (InviteKind::Invite, None) => (
            "Join the Ferry platform".to_owned(),
            "You were invited as a platform operator. Choose a password to finish setting up your account.".to_owned(),
        ),
        (InviteKind::PasswordReset, _) => ("Choose a new password".to_owned(), "Signing in again will be needed everywhere.".to_owned()),
    };
    render(
        req,
        status,
        &SetPasswordPage {
            layout: Layout::new(req, heading.clone(), "/login"),
            heading,
            intro,
            email: invite.email.clone(),
            action: req.path().to_owned(),
            errors,
        },
    )
}

/// GET /invite/{token} and /password/reset/{token}
pub async fn link_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    match valid_link(&state, &req, &token).await? {
        Ok(invite) => {
            set_password_page(&state, &req, &invite, StatusCode::OK, FieldErrors::new()).await
        }
        Err(gone) => Ok(gone),
    }
}

/// POST /invite/{token} and /password/reset/{token}
pub async fn redeem_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    form: web::Form<SetPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let invite = match valid_link(&state, &req, &token).await? {
        Ok(invite) => invite,
        Err(gone) => return Ok(gone),
    };
    let mut errors = FieldErrors::new();
    let Some(password) = errors.check(Password::parse_new(
        "password",
        &form.password,
        &form.password_confirmation,
    )) else {
        return set_password_page(
            &state,
            &req,
            &invite,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
        )
        .await;
    };
    let hash = hash_password(password.expose().to_owned()).await?;
    let user = match invites::redeem(&state.db, &token_hash(&token), hash, state.clock.now()).await
    {
        Ok(user) => user,
        Err(StoreError::Conflict(message)) => {
            return Ok(error_page(
                StatusCode::GONE,
                "Link no longer valid",
                &message,
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let action = match invite.kind {
        InviteKind::Invite => ferry_core::AuditAction::InviteAccepted,
        InviteKind::PasswordReset => ferry_core::AuditAction::UserPasswordReset,
    };
    // A tenant member's reset belongs in their tenant's log (the reset
    // link itself names no tenant); an operator's in the platform log.
    let tenant = match invite.kind {
        InviteKind::Invite => invite.tenant_id.clone(),
        InviteKind::PasswordReset => users::membership_of(&state.db, &user.id)
            .await?
            .map(|m| m.tenant.id),
    };
    let auth = request_auth(&req);
    // Whoever set the password holds the mailbox: this client's failures on
    // the account (guesses at the old password) no longer delay it, as the
    // throttled login page promised.
    login_attempts::record(
        &state.db,
        &user.email.to_lowercase(),
        &throttle::client_key(&auth.client_ip),
        true,
        state.clock.now(),
    )
    .await?;
    audit_log::record(
        &state.db,
        audit_log::NewAuditEvent {
            tenant_id: tenant.as_ref(),
            actor_user_id: Some(&user.id),
            actor_label: &user.email,
            action,
            target_kind: "user",
            target_id: user.id.as_str(),
            details: serde_json::json!({ "invite_id": invite.id.as_str() }),
            client_ip: &auth.client_ip,
        },
        state.clock.now(),
    )
    .await?;
    Ok(redirect_with_flash(
        "/login",
        crate::templates::FlashKind::Success,
        "Your password is set. Sign in to continue.",
    ))
}
