//! Outbound HTTP with the SSRF guard: a tenant-supplied URL may not reach
//! loopback, link-local (169.254.0.0/16, cloud metadata), private, or other
//! non-public addresses unless the operator allows it. The check runs on the
//! URL (IP literals) and inside DNS resolution (so a name that resolves, or
//! re-resolves, to a private address is refused too). Other protocols (SMTP)
//! resolve once with [`NetworkPolicy::resolve_checked`] and dial the address
//! that was checked. Clients ignore the `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`
//! environment (a proxy would resolve names itself, past the guard), and
//! answers are read through [`read_capped`], never unbounded.

use crate::ConnectorError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::future::Future;
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
        IpAddr::V6(v6) => is_public_v6(v6),
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
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 192 && b == 88 && ip.octets()[2] == 99) // 6to4 relay anycast
        || a >= 240)
}

/// IPv6: only global unicast (`2000::/3`) minus its special-purpose
/// ranges. Of the forms that embed an IPv4 address, the two a connection
/// actually reaches that IPv4 address through are judged by it: IPv4-mapped
/// (`::ffff:a.b.c.d`, the OS connects over IPv4) and the well-known NAT64
/// prefix (`64:ff9b::/96`, where a DNS64 resolver puts public IPv4
/// addresses on IPv6-only hosts). Every other embedding form is refused
/// whatever it embeds: IPv4-compatible (`::a.b.c.d`, deprecated),
/// IPv4-translated (`::ffff:0:a.b.c.d`), local-use NAT64 (`64:ff9b:1::/48`),
/// 6to4 (`2002::/16`) and Teredo (`2001::/32`).
fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., a, b, c, d] = ip.octets();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    // Outside 2000::/3: unspecified, loopback, IPv4-compatible and
    // -translated, local-use NAT64, discard-only (100::/64), unique local
    // (fc00::/7), link-local (fe80::/10), site-local (fec0::/10), multicast.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    match s[0] {
        // 2001::/23: IETF protocol assignments (Teredo, benchmarking,
        // ORCHID…); 2001:db8::/32: documentation.
        0x2001 => s[1] >= 0x0200 && s[1] != 0x0db8,
        // 6to4.
        0x2002 => false,
        // 3fff::/20: documentation.
        0x3fff => s[1] >= 0x1000,
        _ => true,
    }
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
    /// every address it resolves to now (a message when a connection is
    /// saved; use [`Self::resolve_checked`] to connect).
    pub async fn check_host(&self, host: &str, port: u16) -> Result<(), ConnectorError> {
        self.check_host_name(host, port)?;
        if self.allow_private || self.origin_allowed(host, port) {
            return Ok(());
        }
        self.resolve_checked(host, port).await.map(|_| ())
    }

    /// Resolves `host` once, checks every address it resolves to, and
    /// returns the address to dial: a connection made to it reaches exactly
    /// what was checked (no second resolution a DNS answer could change in
    /// between). An IP literal is not resolved.
    pub async fn resolve_checked(
        &self,
        host: &str,
        port: u16,
    ) -> Result<SocketAddr, ConnectorError> {
        self.resolve_checked_with(host, port, system_resolve).await
    }

    /// [`Self::resolve_checked`] with the resolver given (tests).
    pub async fn resolve_checked_with<F, Fut>(
        &self,
        host: &str,
        port: u16,
        resolve: F,
    ) -> Result<SocketAddr, ConnectorError>
    where
        F: FnOnce(String, u16) -> Fut,
        Fut: Future<Output = std::io::Result<Vec<SocketAddr>>>,
    {
        self.check_host_name(host, port)?;
        let bare = host.trim_matches(|c| c == '[' || c == ']');
        let addrs = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => resolve(bare.to_owned(), port).await.map_err(|_| {
                ConnectorError::Network(format!("The host {host} could not be resolved."))
            })?,
        };
        let open = self.allow_private || self.origin_allowed(host, port);
        if !open && addrs.iter().any(|a| !is_public(a.ip())) {
            return Err(blocked(host));
        }
        addrs
            .first()
            .map(|a| SocketAddr::new(a.ip(), port))
            .ok_or_else(|| {
                ConnectorError::Network(format!("The host {host} could not be resolved."))
            })
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

/// The system resolver: every address `name` has, with `port`.
pub async fn system_resolve(name: String, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((name.as_str(), port))
        .await?
        .collect())
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
    body_limit: usize,
}

/// The most of an answer's body Ferry reads from a connected system.
pub const DEFAULT_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// Reads a response's body, at most `limit` bytes of it: a longer body (by
/// its `Content-Length`, or as it streams in) fails with
/// [`ConnectorError::TooLarge`] without being read any further. The error
/// names the limit only, never any of the body.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ConnectorError> {
    let too_large = || ConnectorError::TooLarge { limit_bytes: limit };
    if response
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl HttpClient {
    /// A client that enforces `policy`, with a per-request timeout.
    pub fn new(policy: NetworkPolicy, timeout: Duration) -> Result<Self, ConnectorError> {
        let inner = reqwest::Client::builder()
            // A proxy from the environment would resolve names itself, past
            // the guarded resolver: never use one.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Ferry/0.1")
            .build()
            .map_err(|e| ConnectorError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner,
            policy,
            body_limit: DEFAULT_BODY_LIMIT,
        })
    }

    /// The same client with another limit on the bodies it reads.
    #[must_use]
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Reads a response's body within this client's limit ([`read_capped`]).
    pub async fn read_body(&self, response: reqwest::Response) -> Result<Vec<u8>, ConnectorError> {
        read_capped(response, self.body_limit).await
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

    /// Sends an `oauth2` request through the guarded client and reads the
    /// answer within the body limit (the `oauth2` crate's own reqwest
    /// integration would read any length).
    pub async fn oauth_call(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, ConnectorError> {
        let request = reqwest::Request::try_from(request)?;
        self.policy.check_url(request.url())?;
        let response = self.inner.execute(request).await?;
        let mut answer = oauth2::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let body = self.read_body(response).await?;
        answer.body(body).map_err(|_| {
            ConnectorError::Network("the token endpoint's answer was malformed".into())
        })
    }
}

/// Token requests of the `oauth2` crate go through [`HttpClient::oauth_call`].
impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = ConnectorError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, ConnectorError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.oauth_call(request))
    }
}

#[cfg(test)]
mod tests;
