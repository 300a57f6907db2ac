//! The `ferry` binary as a user runs it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ferry(
    data_dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FERRY_DATA_DIR", data_dir)
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn ferry");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("ferry output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["worker", "--help"],
        vec!["migrate", "--help"],
        vec!["demo", "--help"],
        vec!["sandbox", "--help"],
        vec!["admin", "rotate-master-key", "--help"],
        vec!["admin", "--help"],
        vec!["admin", "create-operator", "--help"],
    ] {
        let out = ferry(dir.path(), &args, &[], None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn a_bad_setting_stops_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("FERRY_BIND", "not-an-address"),
        ("FERRY_DATABASE_URL", "mysql://localhost/db"),
        ("FERRY_SMTP_URL", "mailto:someone"),
        ("FERRY_PUBLIC_URL", "ftp://example.com"),
        ("FERRY_MASTER_KEY", "too-short"),
    ] {
        let out = ferry(dir.path(), &["migrate"], &[(var, value)], None);
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = text(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{var}: {err}");
        assert!(
            err.starts_with(&format!("configuration error: {var}:")),
            "{err}"
        );
    }
}

#[test]
fn a_config_file_is_read_and_the_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "bind = \"bogus-from-file\"\n",
    )
    .unwrap();
    let out = ferry(dir.path(), &["migrate"], &[], None);
    assert!(
        text(&out.stderr).starts_with("configuration error: FERRY_BIND:"),
        "the file's bind is read and refused: {}",
        text(&out.stderr)
    );
    let out = ferry(
        dir.path(),
        &["migrate"],
        &[("FERRY_BIND", "127.0.0.1:0")],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn numbers_and_booleans_in_the_environment_are_read_as_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(
        dir.path(),
        &["migrate"],
        &[
            ("FERRY_SANDBOX", "false"),
            ("FERRY_WEB_WORKERS", "3"),
            ("FERRY_WORKER_CONCURRENCY", "8"),
            ("FERRY_RUN_LEASE_SECS", "60"),
            ("FERRY_IN_PROCESS_RUNS", "0"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ferry(
        dir.path(),
        &["migrate"],
        &[("FERRY_IN_PROCESS_RUNS", "many")],
        None,
    );
    assert_eq!(
        text(&out.stderr).trim(),
        "configuration error: FERRY_IN_PROCESS_RUNS: must be a whole number, 0 or more"
    );
    let out = ferry(
        dir.path(),
        &["migrate"],
        &[("FERRY_WORKER_CONCURRENCY", "0")],
        None,
    );
    assert_eq!(
        text(&out.stderr).trim(),
        "configuration error: FERRY_WORKER_CONCURRENCY: 0 is not a number from 1 to 64"
    );
}

#[test]
fn migrate_creates_the_database_and_a_private_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(dir.path(), &["migrate"], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("database is up to date"));
    assert!(dir.path().join("ferry.db").exists());
    let key = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Running again is a no-op.
    assert!(ferry(dir.path(), &["migrate"], &[], None).status.success());
}

#[test]
fn create_operator_takes_a_password_from_stdin_or_prints_an_invite_link() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(
        dir.path(),
        &[
            "admin",
            "create-operator",
            "--email",
            "Root@Ferry.test",
            "--password-stdin",
        ],
        &[],
        Some("a very long operator password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created platform operator root@ferry.test"));

    let again = ferry(
        dir.path(),
        &[
            "admin",
            "create-operator",
            "--email",
            "root@ferry.test",
            "--password-stdin",
        ],
        &[],
        Some("another long password\n"),
    );
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"));

    let short = ferry(
        dir.path(),
        &[
            "admin",
            "create-operator",
            "--email",
            "x@ferry.test",
            "--password-stdin",
        ],
        &[],
        Some("short\n"),
    );
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("at least 12 characters"));

    let bad = ferry(
        dir.path(),
        &["admin", "create-operator", "--email", "not-an-email"],
        &[],
        None,
    );
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("--email"));

    let link = ferry(
        dir.path(),
        &["admin", "create-operator", "--email", "second@ferry.test"],
        &[],
        None,
    );
    assert!(link.status.success(), "{}", text(&link.stderr));
    let stdout = text(&link.stdout);
    let url = stdout
        .lines()
        .find(|l| l.contains("/invite/"))
        .expect("an invite link");
    assert!(url.starts_with("http://127.0.0.1:8080/invite/"), "{url}");
    assert_eq!(url.rsplit('/').next().unwrap().len(), 64);
}

#[test]
fn the_sandbox_serves_standalone() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("sandbox")
        .env("FERRY_DATA_DIR", dir.path())
        .env("FERRY_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut answered = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read;
            s.write_all(b"GET /sandbox/hubspot/crm/v3/objects/contacts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = String::new();
            let _ = s.read_to_string(&mut response);
            answered =
                response.starts_with("HTTP/1.1 401") && response.contains("INVALID_AUTHENTICATION");
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        answered,
        "the standalone HubSpot simulator answered a tokenless call with 401"
    );
}
