//! What a connector call can fail with. Messages never carry a secret, and
//! never the remote system's own words: a status and a short machine
//! category (`VALIDATION_ERROR`, `invalid_grant`), not a body that may hold
//! personal data.

use std::time::Duration;

/// A failed connector call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The remote platform said slow down.
    #[error("rate limited by the remote system (retry after {retry_after:?})")]
    RateLimited {
        /// How long it asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The credential was refused (expired, revoked or wrong).
    #[error("the remote system refused the credential: {0}")]
    Unauthorized(String),
    /// The credential lacks a scope or permission.
    #[error("the remote system refused the call: {0}")]
    Forbidden(String),
    /// No such remote object.
    #[error("not found at the remote system")]
    NotFound,
    /// The remote system rejected the input (4xx other than the above).
    #[error("the remote system rejected the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The remote error's machine category, or what Ferry found wrong.
        message: String,
    },
    /// The remote system failed (5xx).
    #[error("the remote system failed ({status}): {message}")]
    Remote {
        /// HTTP status.
        status: u16,
        /// The remote error's machine category, or what Ferry found wrong.
        message: String,
    },
    /// The remote system's answer was longer than Ferry reads.
    #[error("the remote system's answer was larger than the {limit_bytes}-byte limit")]
    TooLarge {
        /// The limit, in bytes.
        limit_bytes: usize,
    },
    /// No answer in time.
    #[error("the remote system did not answer in time")]
    Timeout,
    /// Could not reach it.
    #[error("could not reach the remote system: {0}")]
    Network(String),
    /// The URL points where tenants may not send requests.
    #[error("{0}")]
    Blocked(String),
    /// The connection is not set up for this call.
    #[error("{0}")]
    Config(String),
}

impl ConnectorError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Remote { .. } | Self::Timeout | Self::Network(_)
        )
    }

    /// The remote message, cut to a length fit for logs and pages.
    pub fn short(message: &str) -> String {
        message.chars().take(300).collect()
    }
}

impl From<reqwest::Error> for ConnectorError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if let Some(blocked) = net::blocked_reason(&e) {
            Self::Blocked(blocked)
        } else {
            // reqwest's Display may include the URL; URLs never carry secrets here.
            Self::Network(Self::short(&e.without_url().to_string()))
        }
    }
}

use crate::net;
