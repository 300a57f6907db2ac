//! Login, logout, password reset and one-time links.

use super::{home_for, safe_next};
use crate::error::AppError;
use crate::error_page::error_page;
use crate::principal::Principal;
use crate::session::{CurrentUser, cookie, removal, request_auth, session_cookie_name};
use crate::state::AppState;
use crate::templates::{FieldErrors, Layout, redirect_with_flash, render};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ferry_app::auth::{GENERIC_FAILURE, LinkProblem, LinkView, SignIn, SignInOutcome};
use ferry_core::{EmailAddress, InviteKind, Password};

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

/// POST /login: the auth service decides; this renders its answer.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let auth = request_auth(&req);
    let outcome = state
        .services
        .auth
        .sign_in(SignIn {
            email: &form.email,
            password: form.password,
            client_ip: &auth.client_ip,
            previous_session: auth.user.as_ref().map(|u| u.session_hash.as_str()),
        })
        .await?;
    let page = |status, error, errors| {
        login_page_with(&req, status, &form.email, &form.next, error, errors)
    };
    match outcome {
        SignInOutcome::SignedIn { token, operator } => {
            let landing = if operator {
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
        SignInOutcome::Throttled {
            message,
            retry_after_secs,
        } => {
            let mut res = page(
                StatusCode::TOO_MANY_REQUESTS,
                Some(message),
                FieldErrors::new(),
            )?;
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
            Ok(res)
        }
        SignInOutcome::Invalid(errors) => page(StatusCode::UNPROCESSABLE_ENTITY, None, errors),
        SignInOutcome::Failed => page(
            StatusCode::UNAUTHORIZED,
            Some(GENERIC_FAILURE.into()),
            FieldErrors::new(),
        ),
        SignInOutcome::Refused(message) => {
            page(StatusCode::FORBIDDEN, Some(message), FieldErrors::new())
        }
    }
}

/// POST /logout: ends the session on the server.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let tenant = match &user.principal {
        Principal::Member { tenant_id, .. } => Some(tenant_id.clone()),
        Principal::Operator => None,
    };
    state
        .services
        .auth
        .sign_out(
            &user.session_hash,
            &user.user_id,
            user.audit_label(),
            tenant.as_ref(),
            &request_auth(&req).client_ip,
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

/// The link for this path's token, or the answer to give instead.
async fn valid_link(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
) -> Result<Result<LinkView, HttpResponse>, AppError> {
    match state.services.auth.link(token, link_kind(req)).await? {
        Ok(view) => Ok(Ok(view)),
        Err(problem) => gone(problem).map(Err),
    }
}

fn gone(problem: LinkProblem) -> Result<HttpResponse, AppError> {
    match problem {
        LinkProblem::Unknown => Err(AppError::NotFound),
        LinkProblem::Gone(message) => Ok(error_page(
            StatusCode::GONE,
            "Link no longer valid",
            &message,
            None,
        )),
    }
}

fn set_password_page(
    req: &HttpRequest,
    view: &LinkView,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    render(
        req,
        status,
        &SetPasswordPage {
            layout: Layout::new(req, view.heading.clone(), "/login"),
            heading: view.heading.clone(),
            intro: view.intro.clone(),
            email: view.invite.email.clone(),
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
        Ok(view) => set_password_page(&req, &view, StatusCode::OK, FieldErrors::new()),
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
    let view = match valid_link(&state, &req, &token).await? {
        Ok(view) => view,
        Err(gone) => return Ok(gone),
    };
    let mut errors = FieldErrors::new();
    let Some(password) = errors.check(Password::parse_new(
        "password",
        &form.password,
        &form.password_confirmation,
    )) else {
        return set_password_page(&req, &view, StatusCode::UNPROCESSABLE_ENTITY, errors);
    };
    let client_ip = request_auth(&req).client_ip;
    match state
        .services
        .auth
        .redeem(&token, &view.invite, password, &client_ip)
        .await?
    {
        Ok(()) => Ok(redirect_with_flash(
            "/login",
            crate::templates::FlashKind::Success,
            "Your password is set. Sign in to continue.",
        )),
        Err(problem) => gone(problem),
    }
}
