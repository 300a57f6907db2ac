//! No open redirect: whatever `next=` a sign-in carries — in the login form
//! or in the `?next=` of the login page — the `Location` it answers with,
//! resolved the way a browser resolves it, stays on Ferry.

use ferry_tests::{Account, TestApp, TestClient, spawn_app};
use url::Url;

/// Known open-redirect bypass forms; none may lead off Ferry, and none is
/// followed at all (the sign-in lands on the overview instead).
const BYPASSES: &[&str] = &[
    "//evil.com",
    "///evil.com",
    "//evil.com/%2f..",
    "/\\evil.com",
    "/\\\\evil.com",
    "\\/evil.com",
    "\\/\\/evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "\t//evil.com",
    " //evil.com",
    "/ /evil.com",
    "\x0b//evil.com",
    "/\x0b/evil.com",
    "/\x00",
    "/\x7f/evil.com",
    "/%09/evil.com",
    "/%0a/evil.com",
    "/%0D/evil.com",
    "/%0d%0aSet-Cookie:x=y",
    "https:evil.com",
    "https:/evil.com",
    "http://evil.com",
    "HTTPS://evil.com",
    "http:\\\\evil.com",
    "javascript:alert(1)",
    "data:text/html,x",
    "evil.com",
    "/.//evil.com",
    "/..//evil.com",
    "/%2e%2e//evil.com",
    "/\u{85}/evil.com",
    "/\u{a0}/evil.com",
    "/\u{2028}/evil.com",
    "/／evil.com",
    "／／evil.com",
    "/⁄evil.com",
    "/＼evil.com",
];

/// Legitimate paths on Ferry, followed as given.
const LOCAL: &[&str] = &["/runs?status=failed", "/users", "/home#recent"];

fn very_long() -> String {
    format!("/runs?q={}", "a".repeat(5000))
}

fn shown(next: &str) -> String {
    next.escape_debug().take(60).collect()
}

/// How askama escaped a hidden input's value.
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
}

/// Signs in with `next` in the form; returns the `Location` answered.
async fn login_with_form_next(app: &TestApp, account: &Account, next: &str) -> String {
    let client = app.client();
    let res = client
        .submit(
            "/login",
            "/login",
            &[
                ("email", &account.email),
                ("password", &account.password),
                ("next", next),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}: {}", shown(next), res.body);
    res.location.unwrap_or_default()
}

/// Opens `/login?next=…` as a browser would, then submits its form as is
/// (with the `next` the page carried); returns the `Location` answered.
async fn login_with_query_next(app: &TestApp, account: &Account, next: &str) -> String {
    let client: TestClient = app.client();
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let page = client.get(&format!("/login?next={encoded}")).await;
    assert_eq!(page.status, 200, "{}", shown(next));
    let csrf = page.csrf().expect("csrf token");
    let marker = "name=\"next\" value=\"";
    let start = page.body.find(marker).expect("next field") + marker.len();
    let end = page.body[start..].find('"').expect("end of value") + start;
    let carried = unescape(&page.body[start..end]);
    let res = client
        .post_raw(
            "/login",
            &[
                ("email", &account.email),
                ("password", &account.password),
                ("next", &carried),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}: {}", shown(next), res.body);
    res.location.unwrap_or_default()
}

/// Resolves `location` against the login page as a browser does and
/// asserts the origin is the app's own.
fn assert_stays_on(app: &TestApp, next: &str, location: &str) -> Url {
    assert!(!location.is_empty(), "no Location for {}", shown(next));
    let page = Url::parse(&format!("{}/login", app.address)).unwrap();
    let resolved = page
        .join(location)
        .unwrap_or_else(|e| panic!("{location:?} does not resolve: {e}"));
    assert_eq!(
        resolved.origin(),
        page.origin(),
        "next={} led to {resolved}",
        shown(next)
    );
    resolved
}

#[tokio::test]
async fn no_next_value_leads_off_ferry_after_sign_in() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let long = very_long();
    let refused = BYPASSES.iter().copied().chain([long.as_str()]);
    for next in refused {
        let via_form = login_with_form_next(&app, &admin, next).await;
        assert_stays_on(&app, next, &via_form);
        assert_eq!(via_form, "/home", "next={} was followed", shown(next));
        let via_query = login_with_query_next(&app, &admin, next).await;
        assert_stays_on(&app, next, &via_query);
        assert_eq!(via_query, "/home", "?next={} was followed", shown(next));
    }
    for next in LOCAL {
        let via_form = login_with_form_next(&app, &admin, next).await;
        assert_eq!(via_form, *next);
        assert_stays_on(&app, next, &via_form);
        let via_query = login_with_query_next(&app, &admin, next).await;
        assert_eq!(via_query, *next);
        assert_stays_on(&app, next, &via_query);
    }
}

#[tokio::test]
async fn a_signed_out_visitor_comes_back_to_the_filtered_runs_list() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.client();
    let res = client.get("/runs?status=failed").await;
    assert_eq!(res.status, 303);
    let to_login = res.location.expect("to login");
    assert_eq!(to_login, "/login?next=%2Fruns%3Fstatus%3Dfailed");
    let page = client.get(&to_login).await;
    assert!(
        page.body
            .contains("name=\"next\" value=\"/runs?status=failed\""),
        "{}",
        page.body
    );
    let back = login_with_query_next(&app, &admin, "/runs?status=failed").await;
    assert_eq!(back, "/runs?status=failed");
    let resolved = assert_stays_on(&app, "/runs?status=failed", &back);
    assert_eq!(resolved.query(), Some("status=failed"));
}
