//! The invite flow in headless Chromium (Debian's), driven by Playwright:
//! operator creates a tenant → the admin accepts the emailed invite → invites
//! staff → staff signs in to read-only pages. Screenshots of every page land
//! in `target/screenshots/`.

use ferry_tests::{TestOptions, spawn_app_with};
use std::path::PathBuf;
use std::process::Command;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

fn run_flow(address: &str, email: &str, password: &str, args: &[&str]) -> String {
    let script = browser_dir().join("flow.mjs");
    let out = Command::new("node")
        .arg(&script)
        .args(args)
        .env("FERRY_URL", address)
        .env("OPERATOR_EMAIL", email)
        .env("OPERATOR_PASSWORD", password)
        .env("SCREENSHOT_DIR", screenshot_dir())
        .current_dir(browser_dir())
        .output()
        .expect("node must be installed to run the browser test (scripts/test installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
    eprintln!("{stdout}");
    stdout.into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_flow_works_in_a_real_browser() {
    if std::env::var("FERRY_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("FERRY_SKIP_BROWSER=1: browser test skipped");
        return;
    }
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "run `npm ci` in tests/browser first (scripts/test does)"
    );
    // Mail goes to the outbox, which the browser reads like a person would.
    let app = spawn_app_with(TestOptions {
        smtp: false,
        ..TestOptions::default()
    })
    .await;
    let op = app.create_operator("olive@ferry.test").await;
    let (broken, _) = app.create_tenant("Broken Ltd").await;
    let (address, email, password) = (app.address.clone(), op.email.clone(), op.password.clone());
    tokio::task::spawn_blocking(move || run_flow(&address, &email, &password, &["main"]))
        .await
        .expect("flow");

    // The flow's effects, checked in storage.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE role = 'staff'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = 'sol@harbor.test'")
            .await,
        1
    );

    // A row changed behind Ferry's back, to photograph the 500 page.
    app.execute(&format!(
        "UPDATE tenants SET status = 'bogus' WHERE id = '{broken}'"
    ))
    .await;
    let (address, email, password) = (app.address.clone(), op.email.clone(), op.password.clone());
    let tenant = broken.to_string();
    tokio::task::spawn_blocking(move || {
        run_flow(&address, &email, &password, &["error500", &tenant])
    })
    .await
    .expect("flow");
    for shot in [
        "01-login",
        "16-team-admin",
        "22-team-staff",
        "29-server-error",
        "45-runs",
        "47-verification-status",
        "52-run-replayed",
        "53-workflow-dry-run",
    ] {
        assert!(
            screenshot_dir().join(format!("{shot}.png")).exists(),
            "{shot}.png"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_admin_builds_tests_and_publishes_the_reference_flow_from_scratch() {
    if std::env::var("FERRY_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("FERRY_SKIP_BROWSER=1: browser test skipped");
        return;
    }
    let app = spawn_app_with(TestOptions::default()).await;
    let (tenant, admin) = app.create_tenant("Fresh & Co").await;
    let (address, email, password) = (
        app.address.clone(),
        admin.email.clone(),
        admin.password.clone(),
    );
    let said = tokio::task::spawn_blocking(move || {
        run_flow(
            &address,
            "unused@ferry.test",
            "unused",
            &["builder", &email, &password],
        )
    })
    .await
    .expect("flow");
    // The count of interactions the person needed, as the flow measured it.
    let count: usize = said
        .split("published in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the flow reports its interaction count");
    assert!(count <= 31, "{count} interactions");
    // What the browser built is what storage holds: published, five steps,
    // no JSON editor used (every save came from the builder's cards).
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM workflows WHERE tenant_id = '{tenant}' AND published_version = 1"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'workflow.tested'")
            .await,
        1
    );
    assert!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")
            .await
            >= 3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_production_hubspot_reaches_its_consent_screen_under_the_csp() {
    if std::env::var("FERRY_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("FERRY_SKIP_BROWSER=1: browser test skipped");
        return;
    }
    let app = spawn_app_with(TestOptions {
        settings: vec![
            ("hubspot_client_id", "production-app".into()),
            (
                "hubspot_client_secret",
                "production-secret-0123456789".into(),
            ),
        ],
        ..TestOptions::default()
    })
    .await;
    let page = app.client().get("/login").await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("form-action 'self' https://app.hubspot.com;"),
        "{csp}"
    );
    let (_, admin) = app.create_tenant("Acme").await;
    let (address, email, password) = (
        app.address.clone(),
        admin.email.clone(),
        admin.password.clone(),
    );
    tokio::task::spawn_blocking(move || {
        run_flow(
            &address,
            "unused@ferry.test",
            "unused",
            &["production-hubspot", &email, &password],
        )
    })
    .await
    .expect("flow");
}
