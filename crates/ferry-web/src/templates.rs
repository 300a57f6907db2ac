//! The page layout shared by every template, flash messages, field errors
//! and the render helpers.

use crate::assets;
use crate::principal::{Principal, RequestAuth, cookie, removal, request_auth};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use ferry_core::Role;

/// The flash message's cookie.
pub const FLASH_COOKIE: &str = "ferry_flash";

/// A link in the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether it is the current section.
    pub active: bool,
}

/// The logged-in user, as shown in the header.
#[derive(Debug, Clone)]
pub struct NavUser {
    /// Their name.
    pub name: String,
    /// Their firm, or "Platform".
    pub context: String,
    /// Their role, as a label.
    pub role: &'static str,
}

/// A one-time message shown after a redirect.
#[derive(Debug, Clone)]
pub struct Flash {
    /// success, error or info.
    pub kind: &'static str,
    /// The text.
    pub message: String,
}

/// What every page's layout needs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page title.
    pub title: String,
    /// The stylesheet's hashed URL.
    pub css: &'static str,
    /// The icon's hashed URL.
    pub icon: &'static str,
    /// The header's user block.
    pub user: Option<NavUser>,
    /// The navigation for this user's role.
    pub nav: Vec<NavItem>,
    /// The anti-forgery token for the page's forms.
    pub csrf: String,
    /// A message from the previous request.
    pub flash: Option<Flash>,
}

impl Layout {
    /// The layout for `req`, with `active` the current section's path.
    pub fn new(req: &HttpRequest, title: impl Into<String>, active: &str) -> Self {
        let RequestAuth {
            user, csrf_token, ..
        } = request_auth(req);
        let mut nav: Vec<(&'static str, &'static str)> = Vec::new();
        let nav_user = user.map(|u| match &u.principal {
            Principal::Operator => {
                nav.extend([
                    ("/operator/tenants", "Tenants"),
                    ("/operator/audit", "Audit log"),
                ]);
                NavUser {
                    name: u.name.clone(),
                    context: "Ferry platform".into(),
                    role: "Operator",
                }
            }
            Principal::Member {
                tenant_name, role, ..
            } => {
                nav.extend([
                    ("/home", "Dashboard"),
                    ("/workflows", "Workflows"),
                    ("/runs", "Runs"),
                    ("/alerts", "Alerts"),
                    ("/verifications", "Verification status"),
                    ("/connections", "Connections"),
                    ("/users", "Team"),
                ]);
                if *role == Role::Admin {
                    nav.push(("/compliance", "Compliance"));
                }
                NavUser {
                    name: u.name.clone(),
                    context: tenant_name.clone(),
                    role: role.label(),
                }
            }
        });
        if nav_user.is_some() {
            nav.push(("/account", "Account"));
        }
        Self {
            title: title.into(),
            css: assets::url("app.css"),
            icon: assets::url("favicon.svg"),
            user: nav_user,
            nav: nav
                .into_iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    active: active.starts_with(href),
                })
                .collect(),
            csrf: csrf_token,
            flash: read_flash(req),
        }
    }

    /// A layout with no user block, for error pages.
    pub fn bare(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            css: assets::url("app.css"),
            icon: assets::url("favicon.svg"),
            user: None,
            nav: Vec::new(),
            csrf: String::new(),
            flash: None,
        }
    }
}

fn read_flash(req: &HttpRequest) -> Option<Flash> {
    let raw = req.cookie(FLASH_COOKIE)?;
    let (kind, encoded) = raw.value().split_once(':')?;
    let kind = match kind {
        "success" => "success",
        "error" => "error",
        _ => "info",
    };
    let message: String = url::form_urlencoded::parse(format!("m={encoded}").as_bytes())
        .find(|(k, _)| k == "m")
        .map(|(_, v)| v.into_owned())?;
    Some(Flash {
        kind,
        message: message.chars().take(300).collect(),
    })
}

pub use ferry_core::FieldErrors;

/// Renders a page for `req` with `status`, consuming any flash message.
pub fn render<T: Template>(
    req: &HttpRequest,
    status: StatusCode,
    page: &T,
) -> Result<HttpResponse, crate::error::AppError> {
    let body = page.render()?;
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if req.cookie(FLASH_COOKIE).is_some() {
        res.cookie(removal(FLASH_COOKIE, false));
    }
    Ok(res.body(body))
}

/// Renders a page outside a request's context (error pages).
pub fn render_bare<T: Template>(status: StatusCode, page: &T) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            HttpResponse::build(status).body(status.canonical_reason().unwrap_or("Error"))
        }
    }
}

/// A 303 redirect.
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// What a flash message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    /// Something was done.
    Success,
    /// Something went wrong.
    Error,
    /// For information.
    Info,
}

impl FlashKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Info => "info",
        }
    }
}

/// A 303 redirect that shows `message` on the next page. The cookie is
/// signed on its way out by the session layer (see `session::sign_flash`),
/// and a flash whose signature does not verify is never shown.
pub fn redirect_with_flash(location: &str, kind: FlashKind, message: &str) -> HttpResponse {
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    let kind = kind.as_str();
    let mut c = cookie(FLASH_COOKIE, format!("{kind}:{encoded}"), false);
    c.set_max_age(actix_web::cookie::time::Duration::minutes(5));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .cookie(c)
        .finish()
}

/// The error page's template.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Layout.
    pub layout: Layout,
    /// HTTP status.
    pub status: u16,
    /// What happened, for the user.
    pub message: String,
    /// The request id for a 500.
    pub request_id: Option<String>,
}
