//! Outbound HTTP with the SSRF guard: a tenant-supplied URL may not reach
//! loopback, link-local (169.254.0.0/16, cloud metadata), private, or other
//! non-public addresses unless the operator allows it. The check runs on the
//! URL (IP literals) and inside DNS resolution (so a name that resolves, or
//! re-resolves, to a private address is refused too).

use crate::ConnectorError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const BLOCKED_MARK: &str = "ferry-ssrf-guard:";

/// Where outbound requests may go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// The operator allows private and loopback addresses (development).
    pub allow_private: bool,
    /// `host:port` origins allowed even when private (the sandbox).
    pub allowed_origins: Vec<String>,
}

/// Whether an address is reachable from the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80) // link local
}

impl NetworkPolicy {
    fn origin_allowed(&self, host: &str, port: u16) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o == &format!("{host}:{port}"))
    }

    /// Checks a URL before use: scheme, and IP-literal hosts.
    pub fn check_url(&self, url: &Url) -> Result<(), ConnectorError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectorError::Blocked(
                "Only http:// and https:// URLs are allowed.".into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| ConnectorError::Blocked("The URL has no host.".into()))?;
        self.check_host_name(host, url.port_or_known_default().unwrap_or(443))
    }

    /// Checks a host as written (IP literals, `localhost`), for any protocol.
    fn check_host_name(&self, host: &str, port: u16) -> Result<(), ConnectorError> {
        if self.allow_private || self.origin_allowed(host, port) {
            return Ok(());
        }
        let bare = host.trim_matches(|c| c == '[' || c == ']');
        if let Ok(ip) = bare.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Err(blocked(host));
        }
        if bare.eq_ignore_ascii_case("localhost")
            || bare.to_ascii_lowercase().ends_with(".localhost")
        {
            return Err(blocked(host));
        }
        Ok(())
    }

    /// Checks a host and port for any protocol (SMTP too): as written, then
    /// every address it resolves to now.
    pub async fn check_host(&self, host: &str, port: u16) -> Result<(), ConnectorError> {
        self.check_host_name(host, port)?;
        if self.allow_private || self.origin_allowed(host, port) {
            return Ok(());
        }
        let addrs = tokio::net::lookup_host((host.trim_matches(|c| c == '[' || c == ']'), port))
            .await
            .map_err(|_| {
                ConnectorError::Network(format!("The host {host} could not be resolved."))
            })?;
        for addr in addrs {
            if !is_public(addr.ip()) {
                return Err(blocked(host));
            }
        }
        Ok(())
    }

    /// Resolves the URL's host now and checks every address (for a clear
    /// message when a connection is saved; requests are checked again).
    pub async fn check_resolved(&self, url: &Url) -> Result<(), ConnectorError> {
        self.check_url(url)?;
        let host = url.host_str().unwrap_or_default();
        self.check_host(host, url.port_or_known_default().unwrap_or(443))
            .await
    }
}

fn blocked(host: &str) -> ConnectorError {
    ConnectorError::Blocked(format!(
        "The address {host} is on a private, loopback or link-local network, which connections may not reach. \
         An operator can allow it (FERRY_ALLOW_PRIVATE_NETWORKS)."
    ))
}

/// If a reqwest error came from the guard's resolver, its message.
pub fn blocked_reason(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if let Some(rest) = text.split(BLOCKED_MARK).nth(1) {
            return Some(blocked(rest.trim()).to_string());
        }
        source = s.source();
    }
    None
}

struct GuardedResolver {
    policy: NetworkPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| {
                    policy.allow_private
                        || is_public(a.ip())
                        || policy
                            .allowed_origins
                            .iter()
                            .any(|o| o.starts_with(&format!("{host}:")))
                })
                .collect();
            if allowed.is_empty() {
                return Err(format!("{BLOCKED_MARK} {host}").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// An HTTP client bound to a network policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: NetworkPolicy,
}

impl HttpClient {
    /// A client that enforces `policy`, with a per-request timeout.
    pub fn new(policy: NetworkPolicy, timeout: Duration) -> Result<Self, ConnectorError> {
        let inner = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Ferry/0.1")
            .build()
            .map_err(|e| ConnectorError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { inner, policy })
    }

    /// The policy.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// A request builder for a checked URL.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        self.policy.check_url(url)?;
        Ok(self.inner.request(method, url.clone()))
    }

    /// The underlying client (for the oauth2 crate, which takes one).
    pub fn raw(&self) -> &reqwest::Client {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn private_and_metadata_addresses_are_refused() {
        let p = NetworkPolicy::default();
        for bad in [
            "http://127.0.0.1/",
            "http://127.1.2.3:8080/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://localhost:8080/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            assert!(p.check_url(&url(bad)).is_err(), "{bad} allowed");
        }
        assert!(p.check_url(&url("https://api.hubapi.com/crm/v3")).is_ok());
        assert!(p.check_url(&url("http://93.184.216.34/")).is_ok());
    }

    #[test]
    fn the_operator_or_the_sandbox_origin_may_be_allowed() {
        let open = NetworkPolicy {
            allow_private: true,
            ..NetworkPolicy::default()
        };
        assert!(open.check_url(&url("http://127.0.0.1:9000/")).is_ok());
        let sandbox = NetworkPolicy {
            allow_private: false,
            allowed_origins: vec!["127.0.0.1:8080".into()],
        };
        assert!(
            sandbox
                .check_url(&url("http://127.0.0.1:8080/sandbox/hubspot"))
                .is_ok()
        );
        assert!(sandbox.check_url(&url("http://127.0.0.1:8081/")).is_err());
    }

    #[tokio::test]
    async fn hosts_of_any_protocol_are_checked() {
        let p = NetworkPolicy::default();
        for (host, port) in [
            ("127.0.0.1", 25),
            ("[::1]", 587),
            ("10.0.0.9", 465),
            ("localhost", 25),
            ("localhost.localdomain", 25),
        ] {
            assert!(p.check_host(host, port).await.is_err(), "{host} allowed");
        }
        let open = NetworkPolicy {
            allow_private: true,
            ..NetworkPolicy::default()
        };
        assert!(open.check_host("127.0.0.1", 25).await.is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_loopback_are_refused() {
        let p = NetworkPolicy::default();
        assert!(
            p.check_resolved(&url("http://localhost.localdomain:1/"))
                .await
                .is_err()
        );
        let client = HttpClient::new(p, Duration::from_secs(2)).unwrap();
        // An IP literal is refused before any connection is tried.
        let err = client
            .request(reqwest::Method::GET, &url("http://127.0.0.1:9/"))
            .err()
            .unwrap();
        assert!(matches!(err, ConnectorError::Blocked(_)));
    }
}
