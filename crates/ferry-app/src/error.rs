//! The services' one error type. Doors map it once: `Invalid` re-renders
//! the form (422 with field messages, or a JSON body listing them),
//! `NotFound` is the 404 (also for another tenant's id), `Forbidden` the
//! 403, `Conflict` and `Unavailable` a page that says what to do.

use ferry_core::{FieldError, FieldErrors};
use ferry_store::StoreError;

/// What went wrong in a service call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such thing for this actor (also: it belongs to another tenant).
    #[error("not found")]
    NotFound,
    /// The actor may not do this.
    #[error("forbidden")]
    Forbidden,
    /// The input breaks a rule; each message names the field and the rule,
    /// never the value.
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// The change conflicts with the state of things; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// A system Ferry relies on (the sandbox, a provider) refused or could
    /// not be reached; the message says what to do.
    #[error("{0}")]
    Unavailable(String),
    /// Anything unexpected (logged with its cause chain, shown opaquely).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// One field's error.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.push(FieldError::new(field, message));
        Self::Invalid(errors)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(m) => Self::Conflict(m),
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<FieldErrors> for Error {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}
