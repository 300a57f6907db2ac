//! Cross-cutting page behaviour: CSRF, errors, assets, headers, health, outbox.

use ferry_core::Role;
use ferry_tests::{TestOptions, captured_logs, redis_url, spawn_app, spawn_app_with};

#[tokio::test]
async fn state_changing_requests_need_the_right_anti_forgery_token() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam", Role::Staff)
        .await;

    // Before login: the login form without a token, or with a made-up one.
    let anon = app.client();
    let res = anon
        .post_raw(
            "/login",
            &[("email", &admin.email), ("password", &admin.password)],
        )
        .await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("security token"));
    anon.get("/login").await;
    let res = anon
        .post_raw(
            "/login",
            &[
                ("email", &admin.email),
                ("password", &admin.password),
                ("csrf_token", &"0".repeat(64)),
            ],
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);

    // Logged in: missing, wrong, and another session's token.
    let client = app.login(&admin).await;
    let other = app.login(&staff).await;
    let other_token = other.get("/home").await.csrf().expect("token");
    let invite = [("name", "X"), ("email", "x@acme.test"), ("role", "admin")];
    assert_eq!(client.post_raw("/users/invite", &invite).await.status, 403);
    let mut with_wrong = invite.to_vec();
    with_wrong.push(("csrf_token", &other_token));
    assert_eq!(
        client.post_raw("/users/invite", &with_wrong).await.status,
        403
    );
    assert_eq!(client.post_raw("/logout", &[]).await.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM invites").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        2,
        "logout without a token did nothing"
    );
    // The header form works for scripts.
    let token = client.get("/home").await.csrf().expect("token");
    let res = client
        .http
        .post(format!("{}/users/invite", app.address))
        .header("X-CSRF-Token", token)
        .form(&invite)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 303);
}

#[tokio::test]
async fn unknown_pages_are_a_plain_404() {
    let app = spawn_app().await;
    let res = app.client().get("/no/such/page").await;
    assert_eq!(res.status, 404);
    assert!(res.body.contains("Page not found"));
    assert!(
        res.header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
}

#[tokio::test]
async fn an_unexpected_error_is_an_opaque_500_with_a_logged_request_id() {
    let app = spawn_app().await;
    let op = app.create_operator("op@ferry.test").await;
    let (tenant, _) = app.create_tenant("Acme").await;
    // A row changed behind Ferry's back cannot be read as a tenant.
    app.execute(&format!(
        "UPDATE tenants SET status = 'bogus' WHERE id = '{tenant}'"
    ))
    .await;
    let client = app.login(&op).await;
    let res = client.get(&format!("/operator/tenants/{tenant}")).await;
    assert_eq!(res.status, 500);
    let id = res.header("x-request-id").expect("request id").to_owned();
    assert!(res.body.contains(&id), "the page shows the request id");
    assert!(
        !res.body.contains("bogus") && !res.body.contains("tenants.status"),
        "no internal detail"
    );
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&id) && l.contains("request failed"))
        .expect("the failure is logged with its id");
    assert!(
        line.contains("corrupt stored value in tenants.status"),
        "{line}"
    );
}

#[tokio::test]
async fn assets_are_served_under_content_hashed_names() {
    let app = spawn_app().await;
    let client = app.client();
    let page = client.get("/login").await;
    let start = page.body.find("/static/app.").expect("stylesheet link");
    let href: String = page.body[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    assert!(
        href.ends_with(".css") && href.len() > "/static/app..css".len() + 8,
        "{href}"
    );
    let css = client.get(&href).await;
    assert_eq!(css.status, 200);
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        css.header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    assert!(css.body.contains(":focus-visible"), "visible focus styles");
    assert_eq!(client.get("/static/app.css").await.status, 404);
    assert_eq!(client.get("/static/app.000000000000.css").await.status, 404);
}

#[tokio::test]
async fn pages_carry_security_headers_and_are_not_cached() {
    let app = spawn_app().await;
    let page = app.client().get("/login").await;
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'"))
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app_with(TestOptions {
        redis_url: None,
        ..TestOptions::default()
    })
    .await;
    let client = app.client();
    let health = client.get("/healthz").await;
    assert_eq!(health.status, 200);
    let ready = client.get("/readyz").await;
    assert_eq!(ready.status, 200);
    let body: serde_json::Value = serde_json::from_str(&ready.body).expect("json");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["queue"], "ok (embedded)");
}

#[tokio::test]
async fn readiness_checks_redis_when_it_is_the_queue() {
    let app = spawn_app_with(TestOptions {
        redis_url: Some(redis_url()),
        ..TestOptions::default()
    })
    .await;
    let ready = app.client().get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("ok (redis)"));

    // A Redis nobody listens on: 503 naming the queue.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let app = spawn_app_with(TestOptions {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        ..TestOptions::default()
    })
    .await;
    let ready = app.client().get("/readyz").await;
    assert_eq!(ready.status, 503);
    let body: serde_json::Value = serde_json::from_str(&ready.body).expect("json");
    assert_eq!(body["failing"], serde_json::json!(["queue"]));
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn without_smtp_mail_lands_in_the_local_outbox() {
    let app = spawn_app_with(TestOptions {
        smtp: false,
        ..TestOptions::default()
    })
    .await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    client
        .submit(
            "/users",
            "/users/invite",
            &[
                ("name", "Sam"),
                ("email", "sam@acme.test"),
                ("role", "staff"),
            ],
        )
        .await;
    // Only a platform operator reads the outbox: it holds everyone's links.
    assert_eq!(app.client().get("/outbox").await.status, 303);
    assert_eq!(client.get("/outbox").await.status, 403);
    let op = app.create_operator("op@ferry.test").await;
    let operator = app.login(&op).await;
    let outbox = operator.get("/outbox").await;
    assert_eq!(outbox.status, 200);
    assert!(
        outbox.body.contains("sam@acme.test") && outbox.body.contains("You are invited to Ferry")
    );
    let start = outbox.body.find("href=\"/outbox/eml_").expect("email link") + "href=\"".len();
    let href: String = outbox.body[start..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    assert_eq!(app.client().get(&href).await.status, 303);
    let email = operator.get(&href).await;
    assert!(
        email.body.contains("<a href=\"http://127.0.0.1:"),
        "links are clickable"
    );
    assert!(email.body.contains("/invite/"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM emails WHERE status = 'outbox'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_outbox_is_hidden_when_smtp_is_configured_or_the_install_is_public() {
    let app = spawn_app().await;
    let op = app.create_operator("op@ferry.test").await;
    assert_eq!(app.login(&op).await.get("/outbox").await.status, 404);
    let app = spawn_app_with(TestOptions {
        smtp: false,
        public_url: Some("https://ferry.example.com".into()),
        ..TestOptions::default()
    })
    .await;
    // Anonymous visitors are sent to sign in, never shown the mail.
    let anonymous = app.client().get("/outbox").await;
    assert_eq!(anonymous.status, 303);
    assert!(!anonymous.body.contains("eml_"));
}

#[tokio::test]
async fn under_https_cookies_are_secure_and_host_prefixed() {
    let app = spawn_app_with(TestOptions {
        public_url: Some("https://ferry.example.com".into()),
        ..TestOptions::default()
    })
    .await;
    let page = app.client().get("/login").await;
    let cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-ferry_csrf="))
        .expect("csrf cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    // HSTS under https, and no cookie without Secure (the flash message too).
    assert_eq!(
        page.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    // The test client speaks plain http, so its jar would not send Secure
    // cookies back: send the anti-forgery cookie by hand.
    let token = cookie
        .trim_start_matches("__Host-ferry_csrf=")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/password/forgot", app.address))
        .header("cookie", format!("__Host-ferry_csrf={token}"))
        .form(&[
            ("email", "nobody@acme.test"),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let flash: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        flash.iter().any(|c| c.starts_with("ferry_flash=")),
        "{flash:?}"
    );
    for c in flash {
        assert!(c.contains("; Secure"), "{c}");
    }
}

#[tokio::test]
async fn plain_http_has_no_hsts() {
    let app = spawn_app().await;
    let page = app.client().get("/login").await;
    assert_eq!(page.header("strict-transport-security"), None);
}

#[tokio::test]
async fn flash_messages_are_signed_and_a_forged_one_is_never_shown() {
    let app = spawn_app().await;
    let client = app.client();
    client.set_cookie("ferry_flash=error:Your%20account%20is%20locked%2C%20call%20us");
    let page = client.get("/login").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("call us"), "a forged flash was shown");
    // A signature from elsewhere does not verify either.
    client.set_cookie(&format!("ferry_flash=error:Forged.{}", "0".repeat(64)));
    assert!(!client.get("/login").await.body.contains("Forged"));
    // Ferry's own flash messages still arrive, signed.
    let (_, admin) = app.create_tenant("Acme").await;
    let signed_in = app.login(&admin).await;
    let res = signed_in
        .submit(
            "/users",
            "/users/invite",
            &[
                ("name", "Pat"),
                ("email", "pat@acme.test"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let cookie = res
        .set_cookies
        .iter()
        .find(|c| c.starts_with("ferry_flash="))
        .expect("a flash cookie");
    let value = cookie
        .trim_start_matches("ferry_flash=")
        .split(';')
        .next()
        .unwrap();
    assert!(
        value
            .rsplit_once('.')
            .is_some_and(|(_, sig)| sig.len() == 64),
        "{cookie}"
    );
    let next = signed_in.get("/users").await;
    assert!(
        next.body.contains("Invite emailed to pat@acme.test"),
        "{}",
        next.body
    );
}
