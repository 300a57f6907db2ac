//! The SSRF guard and the capped client, tested.
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
