//! Who is asking: the client's address is the TCP peer's, unless the peer is
//! a proxy Ferry was told to trust (`FERRY_TRUSTED_PROXIES`); then it is the
//! right-most address in `X-Forwarded-For` that is not itself a trusted
//! proxy. Anything else in that header is the client's own say-so and is
//! ignored: from an untrusted peer the header counts for nothing, and a
//! malformed one is ignored altogether.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose `X-Forwarded-For` Ferry believes (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses (`10.0.0.7`) and CIDR
    /// ranges (`10.0.0.0/8`, `fd00::/8`); an empty list trusts no one. The
    /// error names the entry that is neither.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| entry.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical())))
                .map_err(|_| {
                    format!(
                        "'{entry}' is not an IP address or a CIDR range like 10.0.0.0/8 (separate entries with commas)"
                    )
                })?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying these
    /// `X-Forwarded-For` header values (`None`: a value that is not text).
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = Option<&'a str>>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in forwarded_for {
            let Some(value) = value else {
                return peer;
            };
            for hop in value.split(',') {
                match parse_hop(hop.trim()) {
                    Some(ip) => hops.push(ip),
                    None => return peer,
                }
            }
        }
        // Right to left, each trusted proxy vouches for the hop before it;
        // when every hop is a trusted proxy, the left-most is the origin.
        hops.iter()
            .rev()
            .find(|ip| !self.trusts(**ip))
            .or_else(|| hops.first())
            .copied()
            .unwrap_or(peer)
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`) or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(trusted: &str, peer: &str, headers: &[&str]) -> String {
        TrustedProxies::parse(trusted)
            .unwrap()
            .client(ip(peer), headers.iter().map(|h| Some(*h)))
            .to_string()
    }

    #[test]
    fn parses_addresses_and_ranges_and_names_a_bad_entry() {
        let t = TrustedProxies::parse(" 10.0.0.7, 192.168.0.0/16 ,fd00::/8,, ::1").unwrap();
        assert_eq!(t.0.len(), 4);
        assert!(t.trusts(ip("10.0.0.7")) && !t.trusts(ip("10.0.0.8")));
        assert!(t.trusts(ip("192.168.44.1")) && t.trusts(ip("fd12::1")) && t.trusts(ip("::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        // Host bits in a range are tolerated (the range is what it says).
        assert!(
            TrustedProxies::parse("10.1.2.3/8")
                .unwrap()
                .trusts(ip("10.200.0.1"))
        );
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1 10.0.0.2", "*"] {
            let e = TrustedProxies::parse(bad).unwrap_err();
            assert!(e.contains('\''), "{bad}: {e}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(client("", "192.0.2.9", &["203.0.113.1"]), "192.0.2.9");
        assert_eq!(
            client("10.0.0.0/8", "192.0.2.9", &["203.0.113.1"]),
            "192.0.2.9"
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        // The client may put anything on the left; only what the trusted
        // proxies appended counts.
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.1",
                &["1.1.1.1, 203.0.113.5, 10.0.0.2"]
            ),
            "203.0.113.5"
        );
        // Several header lines read as one list, in order.
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.1", &["198.51.100.3", "203.0.113.5"]),
            "203.0.113.5"
        );
        // Ports and brackets are tolerated; mapped IPv4 is IPv4.
        assert_eq!(
            client("10.0.0.1", "10.0.0.1", &["203.0.113.5:4711"]),
            "203.0.113.5"
        );
        assert_eq!(
            client("10.0.0.1", "::ffff:10.0.0.1", &["[2001:db8::5]:443"]),
            "2001:db8::5"
        );
        assert_eq!(
            client("10.0.0.1", "10.0.0.1", &["[2001:db8::5]"]),
            "2001:db8::5"
        );
        // All hops trusted: the left-most is where the request began.
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.1", &["10.9.9.9, 10.0.0.2"]),
            "10.9.9.9"
        );
        // No header: the proxy itself.
        assert_eq!(client("10.0.0.0/8", "10.0.0.1", &[]), "10.0.0.1");
    }

    #[test]
    fn a_malformed_header_is_ignored() {
        for bad in [
            "unknown",
            "203.0.113.5,",
            "",
            "203.0.113.5, nonsense",
            "2001:db8::5:443:1:2:3:4:5",
        ] {
            assert_eq!(client("10.0.0.1", "10.0.0.1", &[bad]), "10.0.0.1", "{bad}");
        }
        let t = TrustedProxies::parse("10.0.0.1").unwrap();
        assert_eq!(
            t.client(ip("10.0.0.1"), [Some("203.0.113.5"), None])
                .to_string(),
            "10.0.0.1"
        );
    }
}
