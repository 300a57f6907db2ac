//! Sessions and anti-forgery tokens.
//!
//! One middleware resolves the session cookie into a [`CurrentUser`] (once
//! per request, enforcing the idle and absolute timeouts and the user's and
//! tenant's status), and refuses any state-changing request whose
//! anti-forgery token does not match: the session's token once logged in, a
//! double-submit cookie before. Extractors then give handlers the principal
//! they need, or answer 303-to-login or 403.

use crate::error::AppError;
use crate::error_page::csrf_rejected;
use crate::state::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use ferry_core::{Role, TenantStatus, UserStatus};
use ferry_store::{sessions, token_hash, users};
use std::future::{Ready, ready};
use subtle::ConstantTimeEq;

use crate::principal::csrf_cookie_name;
pub use crate::principal::{
    CurrentUser, Principal, RequestAuth, cookie, removal, request_auth, session_cookie_name,
};

fn is_token_shape(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn tokens_match(submitted: Option<&str>, expected: &str) -> bool {
    submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

/// Finds the live session for a cookie value, ending it if it timed out or
/// its user or tenant lost access.
async fn resolve(state: &AppState, token: &str) -> anyhow::Result<Option<CurrentUser>> {
    if !is_token_shape(token) {
        return Ok(None);
    }
    let hash = token_hash(token);
    let Some(session) = sessions::find(&state.db, &hash).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let policy = state.config.session;
    if now - session.last_seen_at > policy.idle || now - session.created_at > policy.absolute {
        sessions::delete(&state.db, &hash).await?;
        return Ok(None);
    }
    let user = users::get(&state.db, &session.user_id).await?;
    let principal = if user.is_operator {
        Principal::Operator
    } else {
        match users::membership_of(&state.db, &user.id).await? {
            Some(m)
                if Some(&m.tenant.id) == session.tenant_id.as_ref()
                    && m.status == UserStatus::Active
                    && m.tenant.status == TenantStatus::Active =>
            {
                Principal::Member {
                    tenant_id: m.tenant.id,
                    tenant_name: m.tenant.name,
                    role: m.role,
                }
            }
            _ => {
                sessions::delete(&state.db, &hash).await?;
                return Ok(None);
            }
        }
    };
    if user.status != UserStatus::Active {
        sessions::delete(&state.db, &hash).await?;
        return Ok(None);
    }
    // Writing on every request would serialise SQLite; a minute of slack
    // in the idle timeout is harmless.
    if now - session.last_seen_at > chrono::Duration::seconds(60) {
        sessions::touch(&state.db, &hash, now).await?;
    }
    Ok(Some(CurrentUser {
        user_id: user.id,
        email: user.email,
        name: user.name,
        principal,
        csrf_token: session.csrf_token,
        session_hash: hash,
    }))
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Resolves the session and enforces anti-forgery tokens.
pub async fn session_layer(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The simulators stand for other companies' systems: they decide access
    // to their pages and admin API themselves (ferry_sandbox::access, which
    // asks `user_of` for the session) and carry their own anti-forgery
    // tokens. Inbound hooks authenticate by signature, not by session.
    if req.path().starts_with("/sandbox/") || req.path().starts_with("/hooks/") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError(
            "application state missing",
        ));
    };
    // Before any cookie is read: a flash message is shown only if Ferry
    // signed it.
    verify_flash(req.headers_mut(), &state.flash_key);
    let secure = state.config.secure_cookies();
    let client_ip = req.peer_addr().map_or_else(
        || "-".to_owned(),
        |peer| {
            let forwarded_for = req
                .headers()
                .get_all("x-forwarded-for")
                .map(|v| v.to_str().ok());
            state
                .config
                .trusted_proxies
                .client(peer.ip(), forwarded_for)
                .to_string()
        },
    );

    let session_cookie = req.cookie(session_cookie_name(secure));
    let user = match &session_cookie {
        Some(c) => resolve(&state, c.value())
            .await
            .map_err(|e| AppError::Internal(e.context("resolving the session")))?,
        None => None,
    };
    let clear_session_cookie = session_cookie.is_some() && user.is_none();

    let mut new_csrf_cookie = None;
    let csrf_token = match &user {
        Some(u) => u.csrf_token.clone(),
        None => match req.cookie(csrf_cookie_name(secure)) {
            Some(c) if is_token_shape(c.value()) => c.value().to_owned(),
            _ => {
                let t = ferry_store::new_token();
                new_csrf_cookie = Some(t.clone());
                t
            }
        },
    };

    if is_state_changing(req.method()) && !req.path().starts_with("/static/") {
        let header_token = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let submitted = match header_token {
            Some(t) => Some(t),
            None => {
                let body = req.extract::<web::Bytes>().await?;
                let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                    .ok()
                    .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf_token"))
                    .map(|(_, v)| v);
                req.set_payload(Payload::from(body));
                token
            }
        };
        // Before login the token is only valid if the browser already had
        // the cookie: a freshly minted one proves nothing.
        let valid = new_csrf_cookie.is_none() && tokens_match(submitted.as_deref(), &csrf_token);
        if !valid {
            tracing::warn!(path = %req.path(), "state-changing request without a valid anti-forgery token");
            return Ok(req.into_response(csrf_rejected()).map_into_right_body());
        }
    }

    req.extensions_mut().insert(RequestAuth {
        user,
        csrf_token,
        client_ip,
    });
    let mut res = next.call(req).await?;
    if let Some(token) = new_csrf_cookie {
        res.response_mut()
            .add_cookie(&cookie(csrf_cookie_name(secure), token, secure))?;
    }
    // A handler that logged someone in or out set the cookie itself.
    let handler_set_session = res.headers().get_all(header::SET_COOKIE).any(|v| {
        v.to_str()
            .is_ok_and(|s| s.starts_with(session_cookie_name(secure)))
    });
    if clear_session_cookie && !handler_set_session {
        res.response_mut()
            .add_cookie(&removal(session_cookie_name(secure), secure))?;
    }
    sign_flash(res.response_mut().headers_mut(), &state.flash_key);
    if secure {
        secure_every_cookie(res.response_mut().headers_mut());
    }
    Ok(res.map_into_left_body())
}

/// The signed-in user of a request the session layer passes through (the
/// simulators' pages, which decide access themselves), from its session
/// cookie; `None` without a live session.
pub async fn user_of(req: &HttpRequest) -> Option<CurrentUser> {
    let state = req.app_data::<web::Data<AppState>>()?.clone();
    let cookie = req.cookie(session_cookie_name(state.config.secure_cookies()))?;
    match resolve(&state, cookie.value()).await {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "resolving a session for the sandbox failed");
            None
        }
    }
}

fn flash_signature(key: &crate::state::FlashKey, payload: &str) -> String {
    use hmac::Mac;
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key.0.as_slice())
        .expect("HMAC accepts keys of any length");
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Signs every flash message this response sets: `payload.signature`.
fn sign_flash(headers: &mut actix_web::http::header::HeaderMap, key: &crate::state::FlashKey) {
    let prefix = format!("{}=", crate::templates::FLASH_COOKIE);
    let cookies: Vec<header::HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
    if !cookies
        .iter()
        .any(|c| c.to_str().is_ok_and(|v| v.starts_with(&prefix)))
    {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for value in cookies {
        let signed = value.to_str().ok().and_then(|v| {
            let rest = v.strip_prefix(&prefix)?;
            let (payload, attributes) = rest.split_once(';').unwrap_or((rest, ""));
            if payload.is_empty() {
                return None; // a removal
            }
            let signature = flash_signature(key, payload);
            let attributes = if attributes.is_empty() {
                String::new()
            } else {
                format!(";{attributes}")
            };
            header::HeaderValue::from_str(&format!("{prefix}{payload}.{signature}{attributes}"))
                .ok()
        });
        headers.append(header::SET_COOKIE, signed.unwrap_or(value));
    }
}

/// Keeps a request's flash cookie only if Ferry signed it, without its
/// signature (so templates read the payload); drops it otherwise.
fn verify_flash(headers: &mut actix_web::http::header::HeaderMap, key: &crate::state::FlashKey) {
    let prefix = format!("{}=", crate::templates::FLASH_COOKIE);
    // Every Cookie header (HTTP/2 may send one per cookie), as one.
    let cookie_header = headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    if !cookie_header.contains(&prefix) {
        return;
    }
    let kept: Vec<String> = cookie_header
        .split(';')
        .map(str::trim)
        .filter_map(|pair| match pair.strip_prefix(&prefix) {
            None => Some(pair.to_owned()),
            Some(value) => {
                let (payload, signature) = value.rsplit_once('.')?;
                let expected = flash_signature(key, payload);
                bool::from(signature.as_bytes().ct_eq(expected.as_bytes()))
                    .then(|| format!("{prefix}{payload}"))
            }
        })
        .collect();
    match header::HeaderValue::from_str(&kept.join("; ")) {
        Ok(v) => {
            headers.insert(header::COOKIE, v);
        }
        Err(_) => {
            headers.remove(header::COOKIE);
        }
    }
}

/// Under TLS every cookie Ferry sets is `Secure`, including those set by
/// helpers that do not know the scheme (the flash message).
fn secure_every_cookie(headers: &mut actix_web::http::header::HeaderMap) {
    let cookies: Vec<header::HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for value in cookies {
        let secured = value.to_str().ok().and_then(|v| {
            let has_secure = v
                .split(';')
                .any(|part| part.trim().eq_ignore_ascii_case("secure"));
            (!has_secure)
                .then(|| header::HeaderValue::from_str(&format!("{v}; Secure")).ok())
                .flatten()
        });
        headers.append(header::SET_COOKIE, secured.unwrap_or(value));
    }
}

fn login_required(req: &HttpRequest) -> AppError {
    let next = match req.uri().path_and_query() {
        Some(pq) if req.method() == Method::GET => pq.as_str().to_owned(),
        _ => "/".to_owned(),
    };
    AppError::LoginRequired { next }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(request_auth(req).user.ok_or_else(|| login_required(req)))
    }
}

/// A platform operator (as the actor services take); 403 for anyone else.
pub struct Operator(pub ferry_app::Operator);

impl FromRequest for Operator {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = request_auth(req);
        ready(match auth.user {
            Some(u) if u.principal == Principal::Operator => {
                let actor = ferry_app::Operator {
                    user_id: u.user_id.clone(),
                    name: u.name.clone(),
                    label: u.audit_label().to_owned(),
                    client_ip: auth.client_ip,
                };
                Ok(Self(actor))
            }
            Some(_) => Err(AppError::Forbidden),
            None => Err(login_required(req)),
        })
    }
}

/// A member of a tenant (admin or staff); 403 for an operator.
pub struct Member {
    /// The user.
    pub user: CurrentUser,
    /// Their role.
    pub role: Role,
    /// The actor services take (their tenant is in it).
    pub actor: ferry_app::Member,
}

impl FromRequest for Member {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = request_auth(req);
        ready(match auth.user {
            Some(user) => match user.principal.clone() {
                Principal::Member {
                    tenant_id, role, ..
                } => Ok(Self {
                    actor: ferry_app::Member {
                        user_id: user.user_id.clone(),
                        tenant_id,
                        role,
                        name: user.name.clone(),
                        label: user.audit_label().to_owned(),
                        client_ip: auth.client_ip,
                    },
                    user,
                    role,
                }),
                Principal::Operator => Err(AppError::Forbidden),
            },
            None => Err(login_required(req)),
        })
    }
}

/// A tenant admin; 403 for staff and operators.
pub struct Admin(pub Member);

impl FromRequest for Admin {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(match Member::from_request(req, payload).into_inner() {
            Ok(m) if m.role == Role::Admin => Ok(Self(m)),
            Ok(_) => Err(AppError::Forbidden),
            Err(e) => Err(e),
        })
    }
}
