//! One-time links: invites and password resets, delivered over real SMTP.

use chrono::Duration;
use ferry_tests::spawn_app;

fn path_of(link: &str) -> String {
    let url: url::Url = link.parse().expect("a URL");
    url.path().to_owned()
}

#[tokio::test]
async fn an_invited_person_sets_a_password_once_and_signs_in() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let admin_client = app.login(&admin).await;
    let res = admin_client
        .submit(
            "/users",
            "/users/invite",
            &[
                ("name", "Sam Staff"),
                ("email", "Sam.Staff@Acme.test"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let mail = app.wait_for_mail("sam.staff@acme.test", "invited").await;
    assert!(
        mail.body.contains("join Acme on Ferry as staff"),
        "{}",
        mail.body
    );
    let link = mail.link_containing("/invite/").expect("invite link");
    assert!(link.starts_with(&app.address));
    let path = path_of(&link);
    let token = path.trim_start_matches("/invite/");
    // The token is stored only hashed, and never logged.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM invites WHERE token_hash = '{token}'"
        ))
        .await,
        0
    );
    // A delivered email's body (which holds the link) is purged from the outbox.
    for _ in 0..50 {
        if app
            .count("SELECT COUNT(*) FROM emails WHERE status = 'sent'")
            .await
            >= 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM emails WHERE body_text LIKE '%{token}%'"
        ))
        .await,
        0
    );

    let invitee = app.client();
    let page = invitee.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Join Acme"));
    let short = invitee
        .submit(
            &path,
            &path,
            &[("password", "short"), ("password_confirmation", "short")],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(short.body.contains("Use at least 12 characters."));
    let mismatch = invitee
        .submit(
            &path,
            &path,
            &[
                ("password", "a long passphrase"),
                ("password_confirmation", "another passphrase"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 422);
    assert!(mismatch.body.contains("The two passwords do not match."));
    let ok = invitee
        .submit(
            &path,
            &path,
            &[
                ("password", "a long passphrase"),
                ("password_confirmation", "a long passphrase"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(
        invitee
            .login("sam.staff@acme.test", "a long passphrase")
            .await
            .status,
        303
    );
    let team = invitee.get("/users").await;
    assert!(team.body.contains("Read-only"));

    // The link works once.
    let again = app.client().get(&path).await;
    assert_eq!(again.status, 410);
    assert!(again.body.contains("already used"));
    let reuse = app
        .client()
        .submit(
            "/login",
            &path,
            &[
                ("password", "another long one"),
                ("password_confirmation", "another long one"),
            ],
        )
        .await;
    assert_eq!(reuse.status, 410);
    // The link was opened four times; its token is in no log line.
    assert!(
        !ferry_tests::captured_logs().contains(token),
        "an invite token was logged"
    );
}

#[tokio::test]
async fn an_invite_expires_after_72_hours() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let admin_client = app.login(&admin).await;
    admin_client
        .submit(
            "/users",
            "/users/invite",
            &[
                ("name", "Late Larry"),
                ("email", "larry@acme.test"),
                ("role", "admin"),
            ],
        )
        .await;
    let link = app
        .wait_for_mail("larry@acme.test", "invited")
        .await
        .link_containing("/invite/")
        .expect("link");
    app.clock.advance(Duration::hours(71));
    assert_eq!(app.client().get(&path_of(&link)).await.status, 200);
    app.clock.advance(Duration::hours(2));
    let page = app.client().get(&path_of(&link)).await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("expired"));
}

#[tokio::test]
async fn forged_links_are_not_found() {
    let app = spawn_app().await;
    let client = app.client();
    for path in [
        format!("/invite/{}", "0".repeat(64)),
        "/invite/short".to_owned(),
        format!("/password/reset/{}", "f".repeat(64)),
        "/invite/%27%20OR%201%3D1".to_owned(),
    ] {
        assert_eq!(client.get(&path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn a_password_reset_replaces_the_password_and_ends_sessions() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let old_session = app.login(&admin).await;
    let client = app.client();
    let res = client
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", &admin.email)],
        )
        .await;
    assert_eq!(res.status, 303);
    let mail = app.wait_for_mail(&admin.email, "Reset").await;
    let link = mail
        .link_containing("/password/reset/")
        .expect("reset link");
    // An invite path with a reset token is not a thing.
    let token = path_of(&link)
        .trim_start_matches("/password/reset/")
        .to_owned();
    assert_eq!(client.get(&format!("/invite/{token}")).await.status, 404);
    let path = path_of(&link);
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
        old_session.get("/home").await.status,
        303,
        "old sessions end at a reset"
    );
    assert_eq!(
        app.client()
            .login(&admin.email, &admin.password)
            .await
            .status,
        401
    );
    assert_eq!(
        app.client()
            .login(&admin.email, "brand new passphrase")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_reset_for_an_unknown_address_says_the_same_and_sends_nothing() {
    let app = spawn_app().await;
    let client = app.client();
    let res = client
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", "ghost@nowhere.test")],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = client.get("/login").await;
    assert!(page.body.contains("If an account exists for that address"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.smtp.as_ref().expect("smtp").messages().is_empty());
    let bad = client
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", "<b>not an email")],
        )
        .await;
    assert_eq!(bad.status, 422);
    ferry_tests::assert_escaped(&bad, "<b>not an email");
}

#[tokio::test]
async fn reset_links_are_capped_at_three_an_hour_per_account() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    for _ in 0..5 {
        let res = client
            .submit(
                "/password/forgot",
                "/password/forgot",
                &[("email", &admin.email)],
            )
            .await;
        assert_eq!(res.status, 303);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sent = app
        .smtp
        .as_ref()
        .expect("smtp")
        .messages()
        .iter()
        .filter(|m| m.to.contains(&admin.email))
        .count();
    assert_eq!(sent, 3);
    app.clock.advance(Duration::minutes(61));
    client
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", &admin.email)],
        )
        .await;
    app.wait_for_mail(&admin.email, "Reset").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM invites WHERE kind = 'reset'")
            .await,
        4
    );
}

#[tokio::test]
async fn a_reset_link_lives_one_hour_and_the_reset_is_audited_in_the_users_tenant() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    let fields = [("email", admin.email.as_str())];
    let ask = || client.submit("/password/forgot", "/password/forgot", &fields);
    assert_eq!(ask().await.status, 303);
    let mail = app.wait_for_mail(&admin.email, "Reset").await;
    assert!(mail.body.contains("for 1 hour"), "{}", mail.body);
    let stale = path_of(&mail.link_containing("/password/reset/").unwrap());
    app.clock.advance(Duration::minutes(61));
    assert_eq!(client.get(&stale).await.status, 410);

    // A fresh link works within the hour; the reset is in the tenant's log.
    assert_eq!(ask().await.status, 303);
    let sink = app.smtp.as_ref().unwrap();
    for _ in 0..100 {
        if sink.messages().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let fresh = path_of(
        &sink
            .messages()
            .last()
            .unwrap()
            .link_containing("/password/reset/")
            .unwrap(),
    );
    assert_ne!(fresh, stale);
    app.clock.advance(Duration::minutes(59));
    let res = client
        .submit(
            &fresh,
            &fresh,
            &[
                ("password", "a brand new passphrase"),
                ("password_confirmation", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'user.password_reset' AND tenant_id = '{tenant}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'user.password_reset' AND tenant_id IS NULL")
            .await,
        0
    );
}
