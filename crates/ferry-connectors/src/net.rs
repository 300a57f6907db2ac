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
            "http://192.0.0.8/",
            "http://192.88.99.1/",
            "http://198.18.0.1/",
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

    /// Every IPv6 form that embeds an IPv4 address, each with loopback,
    /// a private address and the cloud metadata address; and the special
    /// ranges around global unicast.
    #[test]
    fn ipv6_forms_embedding_private_ipv4_and_special_ranges_are_refused() {
        let p = NetworkPolicy::default();
        for bad in [
            // NAT64, well-known prefix: 127.0.0.1, 10.0.0.1, 169.254.169.254.
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
            // NAT64, local-use prefix.
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:7f00:1::",
            "64:ff9b:1::a9fe:a9fe",
            // IPv4-compatible.
            "::7f00:1",
            "::a00:1",
            "::a9fe:a9fe",
            // IPv4-mapped.
            "::ffff:7f00:1",
            "::ffff:a00:1",
            "::ffff:a9fe:a9fe",
            // IPv4-translated.
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "::ffff:0:a9fe:a9fe",
            // 6to4.
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            // Teredo: the server field, and the (inverted) client field.
            "2001:0:7f00:1::1",
            "2001:0:a00:1::1",
            "2001:0:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:0:4136:e378:8000:63bf:5601:5601",
            // Site-local, documentation, discard-only, benchmarking, ORCHID.
            "fec0::1",
            "fec0::7f00:1",
            "2001:db8::1",
            "2001:db8::a9fe:a9fe",
            "3fff::1",
            "100::1",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            // Unique local, link-local, multicast, unspecified, loopback,
            // and anything outside 2000::/3.
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "ff0e::1",
            "::",
            "::1",
            "4000::1",
            "8000::1",
            "e000::1",
        ] {
            let ip: Ipv6Addr = bad.parse().unwrap();
            assert!(!is_public(IpAddr::V6(ip)), "{bad} counted as public");
            assert!(
                p.check_url(&url(&format!("http://[{bad}]:8080/"))).is_err(),
                "{bad} allowed"
            );
        }
        for good in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001:830::200e",
            "2620:fe::fe",
            // A public IPv4 address through DNS64/NAT64, or IPv4-mapped.
            "64:ff9b::5db8:d822",
            "::ffff:5db8:d822",
        ] {
            let ip: Ipv6Addr = good.parse().unwrap();
            assert!(is_public(IpAddr::V6(ip)), "{good} refused");
            assert!(p.check_url(&url(&format!("https://[{good}]/"))).is_ok());
        }
    }

    fn answers(addrs: &[&str]) -> std::io::Result<Vec<SocketAddr>> {
        Ok(addrs.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[tokio::test]
    async fn the_address_dialled_is_the_one_resolved_and_checked() {
        let p = NetworkPolicy::default();
        let addr = p
            .resolve_checked_with("mail.example.com", 587, |name, port| {
                assert_eq!((name.as_str(), port), ("mail.example.com", 587));
                async { answers(&["93.184.216.34:587", "93.184.216.35:587"]) }
            })
            .await
            .unwrap();
        assert_eq!(addr, "93.184.216.34:587".parse::<SocketAddr>().unwrap());

        // One private address among the answers refuses the name.
        for rebinding in [
            ["93.184.216.34:25", "127.0.0.1:25"],
            ["10.0.0.1:25", "93.184.216.34:25"],
            ["[64:ff9b::a9fe:a9fe]:25", "93.184.216.34:25"],
        ] {
            let err = p
                .resolve_checked_with(
                    "rebind.example",
                    25,
                    |_, _| async move { answers(&rebinding) },
                )
                .await;
            assert!(matches!(err, Err(ConnectorError::Blocked(_))), "{err:?}");
        }

        // IP literals are not resolved at all.
        let not_resolved = |_: String, _: u16| async {
            Err::<Vec<SocketAddr>, _>(std::io::Error::other("resolved an IP literal"))
        };
        assert_eq!(
            p.resolve_checked_with("93.184.216.34", 465, not_resolved)
                .await
                .unwrap(),
            "93.184.216.34:465".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            p.resolve_checked_with("[2606:4700:4700::1111]", 465, not_resolved)
                .await
                .unwrap(),
            "[2606:4700:4700::1111]:465".parse::<SocketAddr>().unwrap()
        );
        for private in ["127.0.0.1", "[::1]", "[::ffff:7f00:1]", "169.254.169.254"] {
            assert!(matches!(
                p.resolve_checked_with(private, 25, not_resolved).await,
                Err(ConnectorError::Blocked(_))
            ));
        }

        // No address at all.
        assert!(matches!(
            p.resolve_checked_with("empty.example", 25, |_, _| async { answers(&[]) })
                .await,
            Err(ConnectorError::Network(_))
        ));

        // The operator's allowance lets private answers through, still dialled as resolved.
        let open = NetworkPolicy {
            allow_private: true,
            ..NetworkPolicy::default()
        };
        assert_eq!(
            open.resolve_checked_with("relay.internal", 25, |_, _| async {
                answers(&["10.1.2.3:25"])
            })
            .await
            .unwrap(),
            "10.1.2.3:25".parse::<SocketAddr>().unwrap()
        );
    }

    const PROXY_PROBE: &str = "FERRY_TEST_PROXY_PROBE";

    /// Runs [`proxy_probe`] in a child process whose environment names an
    /// unreachable proxy for every scheme (the environment is
    /// process-global, so it is not changed in this process).
    #[test]
    fn proxy_environment_variables_are_ignored() {
        let dead = "http://127.0.0.1:9";
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "net::tests::proxy_probe",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PROXY_PROBE, "1")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("REQUEST_METHOD");
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            child.env(name, dead);
        }
        let out = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("proxy probe: direct connection answered 200"),
            "the probe did not run: {stdout}"
        );
    }

    #[tokio::test]
    #[ignore = "run by proxy_environment_variables_are_ignored, in a child process"]
    async fn proxy_probe() {
        if std::env::var_os(PROXY_PROBE).is_none() {
            return;
        }
        assert_eq!(
            std::env::var("HTTP_PROXY").as_deref(),
            Ok("http://127.0.0.1:9")
        );
        let server = crate::test_server::http(crate::test_server::json(200, "{}")).await;
        let client = HttpClient::new(
            NetworkPolicy {
                allow_private: true,
                ..NetworkPolicy::default()
            },
            Duration::from_secs(5),
        )
        .unwrap();
        let response = client
            .request(reqwest::Method::GET, &url(&format!("http://{server}/")))
            .unwrap()
            .send()
            .await
            .unwrap();
        println!(
            "proxy probe: direct connection answered {}",
            response.status().as_u16()
        );
    }

    fn open_client() -> HttpClient {
        HttpClient::new(
            NetworkPolicy {
                allow_private: true,
                ..NetworkPolicy::default()
            },
            Duration::from_secs(10),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit_and_no_further() {
        use crate::test_server::{Answer, http, json};
        let client = open_client().with_body_limit(1024);
        let get = |addr: SocketAddr| {
            client
                .request(reqwest::Method::GET, &url(&format!("http://{addr}/")))
                .unwrap()
                .send()
        };

        let small = http(json(200, r#"{"ok":true}"#)).await;
        let body = client.read_body(get(small).await.unwrap()).await.unwrap();
        assert_eq!(body, br#"{"ok":true}"#);

        let exact = http(json(200, &"x".repeat(1024))).await;
        assert_eq!(
            client
                .read_body(get(exact).await.unwrap())
                .await
                .unwrap()
                .len(),
            1024
        );

        // Refused by its Content-Length, before reading.
        let secret = "Ada Lovelace <ada@example.com>";
        let declared = http(json(200, &format!("{secret}{}", "x".repeat(2000)))).await;
        let err = client
            .read_body(get(declared).await.unwrap())
            .await
            .unwrap_err();
        assert_eq!(err, ConnectorError::TooLarge { limit_bytes: 1024 });
        assert!(!err.to_string().contains("Ada"), "{err}");

        // A chunked body that never ends is cut off at the limit.
        let endless = http(Answer::EndlessChunked).await;
        let err = read_capped(get(endless).await.unwrap(), 1024)
            .await
            .unwrap_err();
        assert_eq!(err, ConnectorError::TooLarge { limit_bytes: 1024 });
        assert!(!err.is_retryable());

        // The default is 10 MiB, and an endless body stops there.
        let client = open_client();
        assert_eq!(client.body_limit, DEFAULT_BODY_LIMIT);
        let response = client
            .request(reqwest::Method::GET, &url(&format!("http://{endless}/")))
            .unwrap()
            .send()
            .await
            .unwrap();
        assert_eq!(
            client.read_body(response).await.unwrap_err(),
            ConnectorError::TooLarge {
                limit_bytes: 10 * 1024 * 1024
            }
        );
    }
}
