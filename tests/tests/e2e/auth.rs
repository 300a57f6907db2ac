//! Sign-in, sign-out, sessions and throttling.

use chrono::Duration;
use ferry_core::Role;
use ferry_tests::{Page, TestApp, TestOptions, spawn_app, spawn_app_with};

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

/// The seconds a 429 asks the client to wait (`Retry-After`).
fn retry_after(page: &Page) -> i64 {
    assert_eq!(page.status, 429, "{}", page.body);
    page.header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a 429 carries Retry-After")
}

fn trusting_the_local_proxy() -> TestOptions {
    TestOptions {
        settings: vec![("trusted_proxies", "127.0.0.1".into())],
        ..TestOptions::default()
    }
}

#[tokio::test]
async fn after_three_failures_each_try_waits_twice_as_long_up_to_fifteen_minutes() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    for _ in 0..3 {
        assert_eq!(
            client.login(&admin.email, "wrong password!").await.status,
            401
        );
    }
    // The fourth try must wait 2 s, whatever the password.
    let early = client.login(&admin.email, &admin.password).await;
    assert!(
        (1..=2).contains(&retry_after(&early)),
        "{:?}",
        early.headers
    );
    assert!(
        early.body.contains("Too many failed sign-in attempts")
            && early.body.contains("Try again in 2 seconds"),
        "{}",
        early.body
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // Each further failure doubles the wait: 2, 4, 8 … 512 s, then 15 min.
    let mut waits = Vec::new();
    let mut page = early;
    for _ in 0..11 {
        let wait = retry_after(&page);
        waits.push(wait);
        app.clock.advance(Duration::seconds(wait));
        assert_eq!(
            client.login(&admin.email, "wrong password!").await.status,
            401
        );
        page = client.login(&admin.email, "wrong password!").await;
    }
    waits.push(retry_after(&page));
    let expected = [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900];
    for (got, want) in waits.iter().zip(expected) {
        assert!(*got <= want && *got >= want - 1, "{waits:?}");
    }
    assert!(
        page.body.contains("Try again in 15 minutes"),
        "{}",
        page.body
    );
    // A throttled try is not a failure: it does not make the wait longer.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM login_attempts WHERE succeeded = false")
            .await,
        14
    );
    // Just before the end of the wait: still refused; at its end, the right
    // password gets in.
    app.clock.advance(Duration::seconds(retry_after(&page) - 5));
    assert_eq!(
        client.login(&admin.email, &admin.password).await.status,
        429
    );
    app.clock.advance(Duration::seconds(5));
    assert_eq!(
        client.login(&admin.email, &admin.password).await.status,
        303
    );
}

#[tokio::test]
async fn resetting_the_password_lifts_the_wait_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    let mut failures = 0;
    while failures < 10 {
        let res = client.login(&admin.email, "wrong password!").await;
        match res.status {
            401 => failures += 1,
            _ => app.clock.advance(Duration::seconds(retry_after(&res))),
        }
    }
    let waiting = client.login(&admin.email, &admin.password).await;
    assert!(
        waiting.body.contains("or reset your password"),
        "{}",
        waiting.body
    );
    assert!(retry_after(&waiting) > 60);

    client
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", &admin.email)],
        )
        .await;
    let link = app
        .wait_for_mail(&admin.email, "Reset")
        .await
        .link_containing("/password/reset/")
        .expect("reset link");
    let path = url::Url::parse(&link).expect("a URL").path().to_owned();
    let res = client
        .submit(
            &path,
            &path,
            &[
                ("password", "brand new passphrase"),
                ("password_confirmation", "brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        client
            .login(&admin.email, "brand new passphrase")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_stranger_failing_fifty_times_cannot_lock_the_owner_out() {
    let app = spawn_app_with(trusting_the_local_proxy()).await;
    let (_, alice) = app.create_tenant("Acme").await;
    let attacker = app.client_forwarded_for("203.0.113.66");
    let mut failures = 0;
    while failures < 50 {
        let page = attacker.login(&alice.email, "guessed password 1").await;
        match page.status {
            401 => failures += 1,
            429 => app.clock.advance(Duration::seconds(retry_after(&page))),
            other => panic!("unexpected {other}: {}", page.body),
        }
    }
    // The attacker is held back, even with the right password…
    assert_eq!(
        attacker.login(&alice.email, &alice.password).await.status,
        429
    );
    // …while Alice, from her own address, signs in at once.
    let own = app.client_forwarded_for("198.51.100.7");
    let res = own.login(&alice.email, &alice.password).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location.as_deref(), Some("/home"));
}

/// `times` failed sign-ins for each of `person{i}@acme.test`, ten accounts
/// at a time, all from the test's address.
async fn fail_from_here(app: &TestApp, accounts: std::ops::Range<usize>, times: usize) {
    for chunk in accounts.collect::<Vec<_>>().chunks(10) {
        let tries = chunk.iter().map(|i| async move {
            let client = app.client();
            for _ in 0..times {
                let res = client
                    .login(&format!("person{i}@acme.test"), "wrong password!")
                    .await;
                assert_eq!(res.status, 401, "person{i}: {}", res.body);
            }
        });
        futures_util::future::join_all(tries).await;
    }
}

#[tokio::test]
async fn many_accounts_failing_from_one_address_close_it_to_new_sign_ins_only() {
    let app = spawn_app().await;
    let (tenant, alice) = app.create_tenant("Acme").await;
    let bob = app
        .add_member(&tenant, "bob@acme.test", "Bob", Role::Staff)
        .await;
    let carol = app
        .add_member(&tenant, "carol@acme.test", "Carol", Role::Staff)
        .await;
    // Bob has signed in from here before.
    app.login(&bob).await;

    // An office of fifty behind one address, each mistyping twice: nobody
    // is held back.
    fail_from_here(&app, 0..50, 2).await;
    assert_eq!(
        app.client()
            .login(&alice.email, &alice.password)
            .await
            .status,
        303
    );

    // A hundred accounts failing from one address within 15 minutes is
    // credential stuffing: the address may not try accounts new to it…
    fail_from_here(&app, 50..100, 1).await;
    let refused = app.client().login(&carol.email, &carol.password).await;
    let wait = retry_after(&refused);
    assert!((14 * 60..=15 * 60).contains(&wait), "{wait}");
    assert!(
        refused
            .body
            .contains("Too many failed sign-in attempts from your network"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.client()
            .login("person100@acme.test", "wrong password!")
            .await
            .status,
        429
    );
    // …but people who signed in from there before still can.
    assert_eq!(
        app.client().login(&bob.email, &bob.password).await.status,
        303
    );
    assert_eq!(
        app.client()
            .login(&alice.email, &alice.password)
            .await
            .status,
        303
    );
    // When the failures age out of the window, the address is open again.
    app.clock.advance(Duration::seconds(wait));
    assert_eq!(
        app.client()
            .login(&carol.email, &carol.password)
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_success_clears_the_pairs_failures() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    for _ in 0..3 {
        client.login(&admin.email, "wrong password!").await;
    }
    app.clock.advance(Duration::seconds(2));
    assert_eq!(
        client.login(&admin.email, &admin.password).await.status,
        303
    );
    // Three more failures after the success cost no wait (six would).
    let fresh = app.client();
    for _ in 0..3 {
        assert_eq!(
            fresh.login(&admin.email, "wrong password!").await.status,
            401
        );
    }
    assert_eq!(
        fresh.login(&admin.email, "wrong password!").await.status,
        429
    );
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    // A guesser cannot escape the delay by making up a new address each time.
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let res = app
            .client_forwarded_for(ip)
            .login(&admin.email, "wrong password!")
            .await;
        assert_eq!(res.status, 401);
    }
    let res = app
        .client_forwarded_for("203.0.113.4")
        .login(&admin.email, &admin.password)
        .await;
    assert_eq!(res.status, 429);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM login_attempts WHERE client_ip <> '127.0.0.1'")
            .await,
        0
    );
    app.clock.advance(Duration::seconds(2));
    let res = app
        .client_forwarded_for("203.0.113.5")
        .login(&admin.email, &admin.password)
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE client_ip = '127.0.0.1'")
            .await,
        1
    );
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_names_the_client() {
    let app = spawn_app_with(trusting_the_local_proxy()).await;
    let (_, admin) = app.create_tenant("Acme").await;
    // What the client wrote itself (on the left) counts for nothing; the
    // right-most address the trusted proxy did not vouch for is the client.
    let res = app
        .client_forwarded_for("10.9.9.9, 203.0.113.5")
        .login(&admin.email, &admin.password)
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE client_ip = '203.0.113.5'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'user.logged_in' AND client_ip = '203.0.113.5'"
        )
        .await,
        1
    );
    // One forwarded client's failures do not delay another's.
    let guesser = app.client_forwarded_for("198.51.100.1");
    for _ in 0..3 {
        assert_eq!(
            guesser.login(&admin.email, "wrong password!").await.status,
            401
        );
    }
    assert_eq!(
        guesser.login(&admin.email, "wrong password!").await.status,
        429
    );
    assert_eq!(
        app.client_forwarded_for("198.51.100.2")
            .login(&admin.email, &admin.password)
            .await
            .status,
        303
    );
    // A malformed header is ignored: the proxy itself is the client.
    let res = app
        .client_forwarded_for("203.0.113.5, not-an-address")
        .login(&admin.email, &admin.password)
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE client_ip = '127.0.0.1'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_burst_of_logins_queues_for_the_hashing_threads_and_every_one_completes() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Burst").await;
    let mut accounts = vec![admin];
    for i in 0..3 {
        accounts.push(
            app.add_member(&tenant, &format!("staff{i}@burst.test"), "Sam", Role::Staff)
                .await,
        );
    }
    let good = accounts
        .iter()
        .flat_map(|a| std::iter::repeat_n(a, 4))
        .map(|a| {
            let client = app.client();
            async move { client.login(&a.email, &a.password).await.status }
        });
    let bad = (0..8).map(|i| {
        let client = app.client();
        async move {
            client
                .login(&format!("nobody{i}@burst.test"), "wrong password!")
                .await
                .status
        }
    });
    let (good, bad) = tokio::join!(
        futures_util::future::join_all(good),
        futures_util::future::join_all(bad)
    );
    assert_eq!(good, vec![303; 16]);
    assert_eq!(bad, vec![401; 8]);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 16);
    assert!(ferry_web::hashing_threads() >= 1);
    assert!(
        ferry_web::peak_concurrent_hashes() <= ferry_web::hashing_threads(),
        "{} hashes ran at once on {} threads",
        ferry_web::peak_concurrent_hashes(),
        ferry_web::hashing_threads()
    );
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
