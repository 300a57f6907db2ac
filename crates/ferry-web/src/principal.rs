//! Who a request is from, as the session layer resolved it: the principal,
//! the logged-in user, the request's anti-forgery token and client address,
//! and Ferry's cookie attributes. Plain data that pages, templates and the
//! session layer all read; it imports nothing of theirs.

use crate::error::AppError;
use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpMessage, HttpRequest};
use ferry_core::{Role, TenantId, UserId};

/// Who a logged-in user is acting as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A platform operator: manages tenants, sees no tenant data.
    Operator,
    /// A member of one tenant.
    Member {
        /// The tenant, derived from the session, never from the request.
        tenant_id: TenantId,
        /// Its name, for the header.
        tenant_name: String,
        /// Their role there.
        role: Role,
    },
}

/// The logged-in user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Their id.
    pub user_id: UserId,
    /// Their login address.
    pub email: String,
    /// Their display name.
    pub name: String,
    /// Operator or tenant member.
    pub principal: Principal,
    /// The session's anti-forgery token.
    pub csrf_token: String,
    /// The session's key, to end it at logout.
    pub session_hash: String,
}

impl CurrentUser {
    /// The tenant and role of a member; `Forbidden` for an operator.
    pub fn member(&self) -> Result<(&TenantId, Role), AppError> {
        match &self.principal {
            Principal::Member {
                tenant_id, role, ..
            } => Ok((tenant_id, *role)),
            Principal::Operator => Err(AppError::Forbidden),
        }
    }

    /// Who to name in the audit log.
    pub fn audit_label(&self) -> &str {
        &self.email
    }
}

/// What the middleware learned about a request, for extractors and layouts.
#[derive(Debug, Clone)]
pub struct RequestAuth {
    /// The logged-in user, if any.
    pub user: Option<CurrentUser>,
    /// The token forms must carry.
    pub csrf_token: String,
    /// The client address: the TCP peer, or what a trusted proxy says in
    /// `X-Forwarded-For` (see `client`).
    pub client_ip: String,
}

/// Name of the session cookie (`__Host-` prefixed under TLS).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-ferry_session"
    } else {
        "ferry_session"
    }
}

pub(crate) fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-ferry_csrf"
    } else {
        "ferry_csrf"
    }
}

/// A cookie with Ferry's attributes: HttpOnly, SameSite=Lax, Path=/, and
/// Secure under TLS.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

/// A cookie that deletes `name` in the browser.
pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.set_max_age(time::Duration::ZERO);
    c.set_expires(time::OffsetDateTime::UNIX_EPOCH);
    c
}

/// What the middleware stored for this request.
pub fn request_auth(req: &HttpRequest) -> RequestAuth {
    req.extensions()
        .get::<RequestAuth>()
        .cloned()
        .unwrap_or_else(|| RequestAuth {
            user: None,
            csrf_token: String::new(),
            client_ip: "-".into(),
        })
}
