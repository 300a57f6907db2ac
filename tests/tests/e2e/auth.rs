//! Sign-in, sign-out, sessions and throttling.

use chrono::Duration;
use ferry_core::Role;
use ferry_tests::spawn_app;

#[tokio::test]
async fn a_member_signs_in_and_lands_on_the_overview() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme Accounting").await;
    let client = app.client();
    let res = client.login(&admin.email, &admin.password).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location.as_deref(), Some("/home"));
    let cookie = res
        .set_cookies
        .iter()
        .find(|c| c.starts_with("ferry_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain-http cookies cannot be Secure: {cookie}"
    );
    // 256-bit token, hex.
    let value = cookie
        .trim_start_matches("ferry_session=")
        .split(';')
        .next()
        .unwrap_or("");
    assert_eq!(value.len(), 64);
    let home = client.get("/home").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Acme Accounting"));
    // Only the hash of the token is stored.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM sessions WHERE token_hash = '{value}'"
        ))
        .await,
        0
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
}

#[tokio::test]
async fn an_operator_lands_on_the_tenant_console() {
    let app = spawn_app().await;
    let op = app.create_operator("op@ferry.test").await;
    let client = app.client();
    let res = client.login(&op.email, &op.password).await;
    assert_eq!(res.location.as_deref(), Some("/operator/tenants"));
    assert_eq!(client.get("/operator/tenants").await.status, 200);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_generic_answer() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    let wrong = client.login(&admin.email, "not the password").await;
    let unknown = client
        .login("nobody@nowhere.test", "not the password")
        .await;
    for res in [&wrong, &unknown] {
        assert_eq!(res.status, 401);
        assert!(res.body.contains("Invalid email or password."));
        assert!(
            !res.set_cookies
                .iter()
                .any(|c| c.starts_with("ferry_session=") && !c.contains("Max-Age=0"))
        );
    }
    assert!(!unknown.body.contains("no account"));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

#[tokio::test]
async fn an_invalid_email_or_empty_password_is_a_field_error() {
    let app = spawn_app().await;
    let client = app.client();
    let res = client.login("not-an-email", "").await;
    assert_eq!(res.status, 422);
    assert!(
        res.body
            .contains("Enter an email address like name@example.com.")
    );
    assert!(res.body.contains("Enter your password."));
    assert!(res.body.contains("aria-invalid=\"true\""));
    // The user's input is kept.
    assert!(res.body.contains("value=\"not-an-email\""));
}

#[tokio::test]
async fn five_failures_lock_the_account_even_for_the_right_password() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    for _ in 0..5 {
        assert_eq!(
            client.login(&admin.email, "wrong password!").await.status,
            401
        );
    }
    let locked = client.login(&admin.email, &admin.password).await;
    assert_eq!(locked.status, 429);
    assert!(
        locked.body.contains("Too many failed sign-in attempts"),
        "{}",
        locked.body
    );
    assert!(
        locked.body.contains("try again in 15 minutes"),
        "{}",
        locked.body
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    // After the window the right password works again.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        client.login(&admin.email, &admin.password).await.status,
        303
    );
}

#[tokio::test]
async fn five_failures_from_one_address_lock_out_other_accounts_too() {
    let app = spawn_app().await;
    let (tenant, _) = app.create_tenant("Acme").await;
    let other = app
        .add_member(&tenant, "staff@acme.test", "Sam", Role::Staff)
        .await;
    let client = app.client();
    for i in 0..5 {
        let res = client
            .login(&format!("guess{i}@acme.test"), "wrong password!")
            .await;
        assert_eq!(res.status, 401);
    }
    let res = client.login(&other.email, &other.password).await;
    assert_eq!(res.status, 429, "{}", res.body);
}

#[tokio::test]
async fn a_success_resets_the_account_count() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    for _ in 0..3 {
        client.login(&admin.email, "wrong password!").await;
    }
    assert_eq!(
        client.login(&admin.email, &admin.password).await.status,
        303
    );
    let fresh = app.client();
    // Two more failures after the success do not lock (3 + 2 would).
    let _ = fresh.login(&admin.email, "wrong password!").await;
    assert_eq!(fresh.login(&admin.email, &admin.password).await.status, 303);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let cookie_before = client.cookies();
    let res = client.submit("/home", "/logout", &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location.as_deref(), Some("/login"));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    // Replaying the old cookie gets nowhere.
    let replay = app.client();
    replay.set_cookie(
        cookie_before
            .split("; ")
            .find(|c| c.starts_with("ferry_session="))
            .expect("cookie"),
    );
    let page = replay.get("/home").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/login?next=%2Fhome"));
}

#[tokio::test]
async fn every_login_issues_a_new_session_id() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let first = client.cookies();
    // Signing in again from a logged-in page (the form's token is the session's).
    let again = client
        .submit(
            "/home",
            "/login",
            &[("email", &admin.email), ("password", &admin.password)],
        )
        .await;
    assert_eq!(again.status, 303);
    let second = client.cookies();
    assert_ne!(first, second);
    // The first session is gone, not just superseded.
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
}

#[tokio::test]
async fn an_idle_session_expires_after_30_minutes() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(client.get("/home").await.status, 200);
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        client.get("/home").await.status,
        200,
        "activity keeps the session alive"
    );
    app.clock.advance(Duration::minutes(31));
    let res = client.get("/home").await;
    assert_eq!(res.status, 303);
    assert!(
        res.set_cookies
            .iter()
            .any(|c| c.starts_with("ferry_session=;") || c.contains("Max-Age=0"))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

#[tokio::test]
async fn an_active_session_still_ends_after_12_hours() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    for _ in 0..35 {
        app.clock.advance(Duration::minutes(20));
        assert_eq!(client.get("/home").await.status, 200);
    }
    // 11 h 40 min so far; two more steps pass 12 h.
    app.clock.advance(Duration::minutes(20));
    app.clock.advance(Duration::minutes(5));
    assert_eq!(client.get("/home").await.status, 303);
}

#[tokio::test]
async fn forged_and_malformed_session_cookies_are_ignored() {
    let app = spawn_app().await;
    for forged in [
        format!("ferry_session={}", "a".repeat(64)),
        "ferry_session=' OR '1'='1".to_owned(),
        "ferry_session=".to_owned(),
        format!("ferry_session={}", "z".repeat(5000)),
    ] {
        let client = app.client();
        client.set_cookie(&forged);
        let res = client.get("/home").await;
        assert_eq!(res.status, 303, "{forged}");
        assert!(
            res.location
                .as_deref()
                .is_some_and(|l| l.starts_with("/login"))
        );
    }
}

#[tokio::test]
async fn login_follows_only_local_next_paths() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    let res = client
        .submit(
            "/login",
            "/login",
            &[
                ("email", &admin.email),
                ("password", &admin.password),
                ("next", "/users"),
            ],
        )
        .await;
    assert_eq!(res.location.as_deref(), Some("/users"));
    let client = app.client();
    let res = client
        .submit(
            "/login",
            "/login",
            &[
                ("email", &admin.email),
                ("password", &admin.password),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(res.location.as_deref(), Some("/home"));
}

#[tokio::test]
async fn a_suspended_tenants_users_cannot_sign_in_and_are_signed_out() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let signed_in = app.login(&admin).await;
    let op = app.create_operator("op@ferry.test").await;
    let operator = app.login(&op).await;
    let res = operator
        .submit(
            &format!("/operator/tenants/{tenant}"),
            &format!("/operator/tenants/{tenant}/suspend"),
            &[],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        signed_in.get("/home").await.status,
        303,
        "existing session ended"
    );
    let res = app.client().login(&admin.email, &admin.password).await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("suspended"));
    // Reactivation restores access.
    operator
        .submit(
            &format!("/operator/tenants/{tenant}"),
            &format!("/operator/tenants/{tenant}/reactivate"),
            &[],
        )
        .await;
    assert_eq!(
        app.client()
            .login(&admin.email, &admin.password)
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_deactivated_member_cannot_sign_in() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam Staff", Role::Staff)
        .await;
    let staff_client = app.login(&staff).await;
    let admin_client = app.login(&admin).await;
    let res = admin_client
        .submit(
            &format!("/users/{}", staff.user_id),
            &format!("/users/{}/deactivate", staff.user_id),
            &[],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(staff_client.get("/home").await.status, 303);
    let res = app.client().login(&staff.email, &staff.password).await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("deactivated"));
}
