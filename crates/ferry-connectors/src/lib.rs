//! Connectors: the `Connector` trait and Ferry's connectors (HubSpot, the
//! identity-verification provider, generic HTTP, inbound webhook, SMTP),
//! OAuth 2.0 with PKCE, per-connection rate limits, and the SSRF guard every
//! tenant-supplied URL goes through.

pub mod error;
pub mod hubspot;
pub mod net;
pub mod oauth;
pub mod ratelimit;
pub mod registry;
pub mod verification;
pub mod webhook;

#[cfg(test)]
mod test_server;

pub use error::ConnectorError;
pub use net::{HttpClient, NetworkPolicy};
pub use ratelimit::RateLimiter;
pub use registry::{CallContext, Connector, Registry};
