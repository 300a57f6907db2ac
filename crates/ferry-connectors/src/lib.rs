//! Connectors: the `Connector` trait and Ferry's connectors (HubSpot, the
//! identity-verification provider, generic HTTP, inbound webhook, SMTP),
//! OAuth 2.0 with PKCE, per-connection rate limits, and the SSRF guard every
//! tenant-supplied URL goes through.

pub mod connector;
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

/// Characters kept as they are in a URL path segment (RFC 3986's
/// unreserved set); everything else is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id from a provider or a record, made safe as one URL path segment:
/// `/`, `?`, `#`, `%`, spaces and dot segments cannot change the path.
pub fn path_segment(id: &str) -> String {
    match id {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => percent_encoding::utf8_percent_encode(id, SEGMENT).to_string(),
    }
}

pub use connector::{CallContext, Connector};
pub use net::{HttpClient, NetworkPolicy};
pub use ratelimit::RateLimiter;
pub use registry::Registry;

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(path_segment("chk_123-abc"), "chk_123-abc");
        assert_eq!(path_segment("../admin"), "..%2Fadmin");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("a b?c#d%e/f"), "a%20b%3Fc%23d%25e%2Ff");
        assert_eq!(path_segment("zoë"), "zo%C3%AB");
        let url = url::Url::parse("https://api.example.com/v1/checks/")
            .unwrap()
            .join(&path_segment("../../admin?x=1"))
            .unwrap();
        assert_eq!(url.path(), "/v1/checks/..%2F..%2Fadmin%3Fx%3D1");
        assert_eq!(url.query(), None);
    }
}
