//! The web layer's errors and request ids. `AppError` is what a page
//! handler could not deal with itself (rendered by `error_page`, above the
//! templates); `ApiError` is answered in JSON to machines.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use ferry_store::StoreError;
use std::fmt;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id (or a fresh one outside a request).
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| new_request_id())
}

fn new_request_id() -> String {
    format!("req_{:016x}", rand::random::<u64>())
}

/// Gives every request an id (in the log, in `X-Request-Id`, on a 500 page)
/// and logs its outcome.
pub async fn request_id_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = new_request_id();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %loggable_path(req.path()));
    let started = std::time::Instant::now();
    let mut res = REQUEST_ID
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await?;
    let status = res.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}

/// Paths whose last segment is a secret (one-time links; HubSpot's token
/// endpoints, which the simulator serves).
const SECRET_PATHS: &[&str] = &[
    "/invite/",
    "/password/reset/",
    "/sandbox/hubspot/oauth/v1/access-tokens/",
    "/sandbox/hubspot/oauth/v1/refresh-tokens/",
];

/// The path as it may be logged: secret segments replaced.
pub fn loggable_path(path: &str) -> String {
    match SECRET_PATHS.iter().find(|p| path.starts_with(*p)) {
        Some(prefix) => format!("{prefix}[redacted]"),
        None => path.to_owned(),
    }
}

/// An error a handler could not deal with itself.
#[derive(Debug)]
pub enum AppError {
    /// No such thing for this user (also: it belongs to another tenant).
    NotFound,
    /// Logged in, but not allowed.
    Forbidden,
    /// Not logged in: go to the login page and come back to `next`.
    LoginRequired {
        /// Where to return after login.
        next: String,
    },
    /// The change breaks a rule; the message says which.
    Conflict(String),
    /// Input a handler did not show next to its form: a 422 page listing
    /// each field's rule.
    Invalid(ferry_core::FieldErrors),
    /// A system Ferry relies on refused; the message says what to do.
    Unavailable(String),
    /// Anything unexpected.
    Internal(anyhow::Error),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::Forbidden => f.write_str("forbidden"),
            Self::LoginRequired { .. } => f.write_str("login required"),
            Self::Conflict(m) | Self::Unavailable(m) => f.write_str(m),
            Self::Invalid(e) => write!(f, "invalid input: {e}"),
            Self::Internal(e) => write!(f, "internal error: {e:#}"),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(m) => Self::Conflict(m),
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The one mapping from the services' errors.
impl From<ferry_app::Error> for AppError {
    fn from(e: ferry_app::Error) -> Self {
        use ferry_app::Error as E;
        match e {
            E::NotFound => Self::NotFound,
            E::Forbidden => Self::Forbidden,
            E::Invalid(errors) => Self::Invalid(errors),
            E::Conflict(m) => Self::Conflict(m),
            E::Unavailable(m) => Self::Unavailable(m),
            E::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(anyhow::Error::new(e))
    }
}

/// An error answered in JSON (`{"error": "…"}`), for the machine doors:
/// webhooks and the API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl From<ferry_app::hooks::HookError> for ApiError {
    fn from(e: ferry_app::hooks::HookError) -> Self {
        use ferry_app::hooks::HookError as E;
        let status = match &e {
            E::NotFound => StatusCode::NOT_FOUND,
            E::Suspended => StatusCode::FORBIDDEN,
            E::Signature(_) => StatusCode::UNAUTHORIZED,
            E::Malformed(_) => StatusCode::BAD_REQUEST,
            E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match &e {
            E::Signature(reason) => {
                tracing::warn!(reason = %reason, "inbound request refused: signature")
            }
            E::Store(cause) => {
                tracing::error!(error = %cause, "inbound request could not be stored")
            }
            _ => {}
        }
        Self {
            status,
            message: e.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(serde_json::json!({ "error": self.message }))
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn secret_path_segments_are_not_logged() {
        assert_eq!(loggable_path("/invite/abc123"), "/invite/[redacted]");
        assert_eq!(
            loggable_path("/password/reset/abc"),
            "/password/reset/[redacted]"
        );
        assert_eq!(
            loggable_path("/sandbox/hubspot/oauth/v1/refresh-tokens/rt"),
            "/sandbox/hubspot/oauth/v1/refresh-tokens/[redacted]"
        );
        assert_eq!(loggable_path("/users/usr_1"), "/users/usr_1");
    }
}
