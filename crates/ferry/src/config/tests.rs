//! The settings' types and checks, tested through the same path as start-up.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

fn with<'a>(dir: &'a str, pairs: &[(&'a str, &'a str)]) -> anyhow::Result<Settings> {
    let mut all = vec![("data_dir", dir)];
    all.extend_from_slice(pairs);
    Settings::from_pairs(all)
}

fn message(r: anyhow::Result<Settings>) -> String {
    match r {
        Ok(_) => String::from("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_valid_and_generate_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = with(d, &[]).unwrap();
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
    assert!(s.is_sqlite());
    assert!(s.redis_url.is_none() && s.smtp_url.is_none());
    assert_eq!(s.sandbox, SandboxMode::Off);
    let key_path = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A second start reads the same key.
    let again = with(d, &[]).unwrap();
    assert_eq!(again.master_key_file, Some(key_path.clone()));
    assert_eq!(
        again.master_key.expose_secret(),
        s.master_key.expose_secret()
    );
}

#[test]
fn values_arrive_typed_whatever_their_look() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = with(
        d,
        &[
            ("web_workers", "3"),
            ("sandbox", "local"),
            ("allow_private_networks", "true"),
            ("log_format", "json"),
            ("run_lease_secs", "60"),
        ],
    )
    .unwrap();
    assert_eq!(s.web_workers, 3);
    assert_eq!(s.sandbox, SandboxMode::Local);
    assert!(s.allow_private_networks && s.log_json);
    assert_eq!(s.run_lease_secs, 60);
    assert_eq!(
        with(d, &[("sandbox", "true")]).unwrap().sandbox,
        SandboxMode::Shared
    );
    // Text settings stay text, whatever they look like.
    let digits = with(
        d,
        &[
            ("queue_name", "12345"),
            ("hubspot_client_id", "678"),
            ("hubspot_client_secret", "9"),
        ],
    )
    .unwrap();
    assert_eq!(digits.queue_name, "12345");
    assert_eq!(
        digits.hubspot_app.as_ref().map(|(id, _)| id.as_str()),
        Some("678")
    );
    // An empty variable counts as unset.
    assert!(with(d, &[("redis_url", ""), ("web_workers", " ")]).is_ok());
}

#[test]
fn bad_settings_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("bind", "nonsense", "FERRY_BIND"),
        ("database_url", "mysql://x", "FERRY_DATABASE_URL"),
        ("redis_url", "http://x", "FERRY_REDIS_URL"),
        ("smtp_url", "not a url", "FERRY_SMTP_URL"),
        ("public_url", "ftp://x", "FERRY_PUBLIC_URL"),
        ("master_key", "c2hvcnQ=", "FERRY_MASTER_KEY"),
        (
            "master_key_file",
            "/nonexistent/key",
            "FERRY_MASTER_KEY_FILE",
        ),
        ("log_format", "xml", "FERRY_LOG_FORMAT"),
        ("web_workers", "0", "FERRY_WEB_WORKERS"),
        ("web_workers", "many", "FERRY_WEB_WORKERS"),
        ("worker_concurrency", "-1", "FERRY_WORKER_CONCURRENCY"),
        ("sandbox", "maybe", "FERRY_SANDBOX"),
        (
            "allow_private_networks",
            "perhaps",
            "FERRY_ALLOW_PRIVATE_NETWORKS",
        ),
        ("mail_from", "nobody", "FERRY_MAIL_FROM"),
        (
            "trusted_proxies",
            "10.0.0.1, proxy.internal",
            "FERRY_TRUSTED_PROXIES",
        ),
    ];
    for (key, value, setting) in cases {
        let m = message(with(d, &[(key, value)]));
        assert!(
            m.starts_with(&format!("configuration error: {setting}:")),
            "{setting}: {m}"
        );
        assert!(!m.contains('\n'));
    }
}

#[test]
fn trusted_proxies_are_addresses_and_ranges_separated_by_commas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(with(d, &[]).unwrap().trusted_proxies.is_empty());
    let s = with(
        d,
        &[("trusted_proxies", " 10.0.0.7, 172.16.0.0/12,fd00::/8 ")],
    )
    .unwrap();
    assert_eq!(
        s.trusted_proxies,
        ferry_web::TrustedProxies::parse("10.0.0.7,172.16.0.0/12,fd00::/8").unwrap()
    );
    let m = message(with(d, &[("trusted_proxies", "10.0.0.0/40")]));
    assert!(
        m.starts_with("configuration error: FERRY_TRUSTED_PROXIES: '10.0.0.0/40' is not"),
        "{m}"
    );
}

#[cfg(unix)]
#[test]
fn a_world_readable_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, B64.encode([7u8; 32])).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = dir.path().to_str().unwrap();
    let p = path.to_str().unwrap();
    assert!(message(with(d, &[("master_key_file", p)])).contains("chmod 600"));
}

#[test]
fn checking_settings_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let given = |_: Option<&str>, _: Option<&Path>, _: &Path| {
        Ok((SecretBox::new(Box::new([1u8; 32])), None))
    };
    let raw = RawSettings {
        data_dir: dir.path().join("never"),
        ..RawSettings::default()
    };
    Settings::validate(raw, given).unwrap();
    assert!(!dir.path().join("never").exists());
    // A setting that fails a check leaves no key file behind.
    let d = dir.path().to_str().unwrap();
    assert!(with(d, &[("log_format", "xml")]).is_err());
    assert!(with(d, &[("public_url", "ftp://x")]).is_err());
    assert!(!dir.path().join("master.key").exists());
}
