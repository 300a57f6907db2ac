//! The one mapping from `AppError` to HTTP. Validation errors never get
//! here: handlers re-render their form with 422. What does get here becomes
//! the 404, 403 or 409 page, or an opaque 500 that shows the request id,
//! which is in the log next to the cause chain.

use crate::error::{AppError, current_request_id};
use crate::templates::{ErrorPage, Layout, render_bare};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::LoginRequired { .. } => StatusCode::SEE_OTHER,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::LoginRequired { next } => {
                let target = format!("/login?next={}", urlencode(next));
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, target))
                    .finish()
            }
            Self::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here, or you do not have access to it.",
                None,
            ),
            Self::Forbidden => error_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your role does not allow this. Ask an admin of your firm if you need it.",
                None,
            ),
            Self::Conflict(message) => {
                error_page(StatusCode::CONFLICT, "That cannot be done", message, None)
            }
            Self::Invalid(errors) => {
                let message: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
                error_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Please check what you entered",
                    &message.join(" "),
                    None,
                )
            }
            Self::Unavailable(message) => error_page(
                StatusCode::BAD_GATEWAY,
                "Another system did not answer as expected",
                message,
                None,
            ),
            Self::Internal(error) => {
                let request_id = current_request_id();
                tracing::error!(request_id = %request_id, error = %format!("{error:#}"), "request failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Ferry could not complete this request. It has been logged; \
                     quote the reference below if you contact support.",
                    Some(request_id),
                )
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Renders an error page with no internal detail.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: Option<String>,
) -> HttpResponse {
    let page = ErrorPage {
        layout: Layout::bare(title),
        status: status.as_u16(),
        message: message.to_owned(),
        request_id,
    };
    render_bare(status, &page)
}

/// The 403 for a state-changing request without a valid anti-forgery token.
pub fn csrf_rejected() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form was not submitted from a current Ferry page (its security token is missing or wrong). \
         Go back, reload the page and try again.",
        None,
    )
}

/// Turns an unreadable or oversized form body into a clear 400 or 413.
pub fn form_error(err: actix_web::error::UrlencodedError, _req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::UrlencodedError as E;
    let response = match &err {
        E::Overflow { .. } | E::UnknownLength => error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Form too large",
            "The form sent more data than Ferry accepts (64 KiB).",
            None,
        ),
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Form not understood",
            "The form data could not be read. Reload the page and try again.",
            None,
        ),
    };
    actix_web::error::InternalError::from_response(err, response).into()
}
