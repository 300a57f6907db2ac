//! The access-control matrix, built from the router itself: every route ×
//! {anonymous, staff, admin, operator, another tenant's admin} answers as
//! decided here. A route added without a decision fails this test.

use ferry_core::Role;
use ferry_tests::{TestClient, TestOptions, spawn_app_with};
use std::collections::BTreeMap;

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    OtherTenantAdmin,
    Staff,
    Admin,
    Operator,
}

/// What they get, as a browser would tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    /// Sent to sign in (303 to /login).
    Login,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// Served (any other answer: the page, a redirect elsewhere, a 422 for
    /// the empty form, a 401 for a missing signature, a 410 for a dead link).
    Served,
}

/// The decision for a route.
#[derive(Debug, Clone, Copy)]
enum Policy {
    /// Anyone (health, assets, sign-in, password reset requests).
    Public,
    /// One-time links: the token decides (an unknown one is 404 for all).
    Link,
    /// Inbound hooks: the signature decides, never a session.
    Hook,
    /// Anyone signed in.
    SignedIn,
    /// Signing out: everyone ends on the sign-in page.
    Logout,
    /// Tenant members (staff and admins); operators see no tenant data.
    Member,
    /// A tenant member, on tenant A's resource: another tenant gets 404.
    MemberOwn,
    /// Tenant admins.
    Admin,
    /// A tenant admin, on tenant A's resource: another tenant gets 404.
    AdminOwn,
    /// Platform operators.
    Operator,
    /// A metrics scraper with its token; nobody with a session.
    Scraper,
}

fn decision(method: &str, path: &str) -> Option<Policy> {
    use Policy::*;
    Some(match (method, path) {
        ("GET", "/healthz" | "/readyz" | "/static/{file}" | "/login" | "/password/forgot") => {
            Public
        }
        ("POST", "/login" | "/password/forgot") => Public,
        (_, "/invite/{token}" | "/password/reset/{token}") => Link,
        (_, p) if p.starts_with("/hooks/") => Hook,
        ("GET", "/" | "/account") => SignedIn,
        ("POST", "/logout") => Logout,
        // Prometheus: served only with FERRY_METRICS_TOKEN and its bearer
        // token (tested in alerts.rs); without one, nobody's.
        ("GET", "/metrics") => Scraper,
        (
            "GET",
            "/home" | "/workflows" | "/runs" | "/api/runs" | "/verifications"
            | "/verifications.csv" | "/alerts" | "/alerts/rules",
        ) => Member,
        // Staff see the rules and incidents read-only.
        ("GET", "/alerts/{id}" | "/alerts/rules/{id}") => MemberOwn,
        (
            "GET",
            "/workflows/{id}" | "/runs/{id}" | "/runs/{id}/log.json" | "/runs/{id}/log.csv",
        ) => MemberOwn,
        // Staff see the team and the connections read-only; a person's
        // page (role, deactivation) is the admins'.
        ("GET", "/users" | "/connections") => Member,
        ("GET", "/connections/{id}") => MemberOwn,
        ("GET", "/users/{id}") => AdminOwn,
        // The builder is the admins' (staff see the steps on the overview).
        ("GET", "/workflows/{id}/build") => AdminOwn,
        (
            "GET",
            "/connections/oauth/callback"
            | "/connections/new/{connector}"
            | "/workflows/new"
            | "/audit"
            | "/audit/verify"
            | "/audit.csv"
            | "/compliance"
            | "/inventory.csv"
            | "/evidence.zip"
            | "/records"
            | "/compliance/fields",
        ) => Admin,
        // Compliance evidence is the admins'; another tenant's is a 404.
        ("GET", "/records/{record}") => AdminOwn,
        (
            "GET",
            "/workflows/{id}/docs"
            | "/workflows/{id}/docs.md"
            | "/workflows/{id}/review"
            | "/workflows/{id}/versions"
            | "/workflows/{id}/evidence.zip"
            | "/workflows/{id}/publish",
        ) => AdminOwn,
        (
            "POST",
            "/users/invite"
            | "/connections/new/{connector}"
            | "/workflows"
            | "/sandbox-samples"
            | "/runs/replay"
            | "/compliance/retention"
            | "/compliance/fields",
        ) => Admin,
        ("POST", p)
            if p.starts_with("/users/{id}/")
                || p.starts_with("/connections/{id}/")
                || p.starts_with("/workflows/{id}/")
                || p.starts_with("/runs/{id}/")
                || p.starts_with("/alerts/") =>
        {
            AdminOwn
        }
        (_, p) if p.starts_with("/operator/") => Operator,
        ("GET", "/outbox" | "/outbox/{id}") => Operator,
        _ => return None,
    })
}

fn expected(policy: Policy, who: Who) -> &'static [Got] {
    use Got::{Forbidden, Login, NotFound, Served};
    use Policy as P;
    match (policy, who) {
        (P::Public, _) => &[Served],
        (P::Link | P::Scraper, _) => &[NotFound],
        (P::Hook, _) => &[Served, NotFound],
        (P::Logout, _) => &[Login],
        (_, Who::Anonymous) => &[Login],
        (P::SignedIn, _) => &[Served],
        (P::Member | P::Admin | P::MemberOwn | P::AdminOwn, Who::Operator) => &[Forbidden],
        (P::Admin | P::AdminOwn, Who::Staff) => &[Forbidden],
        (P::MemberOwn | P::AdminOwn, Who::OtherTenantAdmin) => &[NotFound],
        (P::Member | P::Admin | P::MemberOwn | P::AdminOwn, _) => &[Served],
        (P::Operator, Who::Operator) => &[Served],
        (P::Operator, _) => &[Forbidden],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_has_a_decided_answer_for_every_kind_of_caller() {
    // No SMTP: the local outbox exists, so its decision is tested too.
    let app = spawn_app_with(TestOptions {
        smtp: false,
        ..TestOptions::default()
    })
    .await;
    let (tenant_a, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant_a, "sam@acme.test", "Sam", Role::Staff)
        .await;
    let (_, other) = app.create_tenant("Globex").await;
    let (spare_tenant, _) = app.create_tenant("Spare").await;
    let op = app.create_operator("op@ferry.test").await;

    let admin_client = app.login(&admin).await;
    let connection = app.connect_hubspot(&admin_client).await;
    app.connect_sandbox_verification(&admin_client).await;
    let workflow = app.publish_reference(&admin_client, &admin).await;
    app.create_contact(
        app.portal().await,
        serde_json::json!({"email": "ann@client.test", "firstname": "Ann", "lastname": "Lee"}),
    )
    .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs", 1).await,
        1,
        "a run to look at"
    );
    let run = app.json_rows("SELECT id FROM runs").await[0][0]
        .clone()
        .unwrap();
    let record = app.json_rows("SELECT record_id FROM runs").await[0][0]
        .clone()
        .unwrap();
    let rule = app
        .json_rows("SELECT id FROM alert_rules WHERE kind = 'error_rate'")
        .await[0][0]
        .clone()
        .unwrap();
    // An incident to look at and acknowledge.
    app.engine.metrics().count(
        &tenant_a,
        &workflow.parse().unwrap(),
        ferry_core::Clock::now(&app.clock),
        |r| r.dead += 10,
    );
    app.evaluate_alerts().await;
    let incident = app.json_rows("SELECT id FROM alert_incidents").await[0][0]
        .clone()
        .unwrap();
    let invited = admin_client
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
    assert_eq!(invited.status, 303, "an email in the outbox");
    let email = app.json_rows("SELECT id FROM emails").await[0][0]
        .clone()
        .unwrap();

    // The stylesheet, by its content-hashed name.
    let login_page = app.client().get("/login").await.body;
    let css_at = login_page.find("/static/app.").expect("stylesheet link") + "/static/".len();
    let css: String = login_page[css_at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let fill = |path: &str| -> String {
        let id = if path.starts_with("/users/") {
            staff.user_id.to_string()
        } else if path.starts_with("/connections/") || path.starts_with("/hooks/") {
            connection.to_string()
        } else if path.starts_with("/workflows/") {
            workflow.clone()
        } else if path.starts_with("/runs/") {
            run.clone()
        } else if path.starts_with("/alerts/rules/") {
            rule.clone()
        } else if path.starts_with("/alerts/") {
            incident.clone()
        } else if path.starts_with("/operator/") {
            spare_tenant.to_string()
        } else if path.starts_with("/outbox/") {
            email.clone()
        } else {
            String::new()
        };
        path.replace("{id}", &id)
            .replace("{token}", &"a".repeat(64))
            .replace("{connector}", "hubspot")
            .replace("{key}", "fetch_contact")
            .replace("{record}", &record)
            .replace("{file}", &css)
    };

    let mut routes = ferry_web::route_table();
    assert!(routes.len() > 50, "the router was enumerated");
    // Signing out ends the session: last.
    routes.sort_by_key(|(m, p)| (*m, *p) == ("POST", "/logout"));
    let undecided: Vec<String> = routes
        .iter()
        .filter(|(m, p)| decision(m, p).is_none())
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        undecided.is_empty(),
        "routes without an access decision: {undecided:?}"
    );

    let mut wrong: BTreeMap<String, String> = BTreeMap::new();
    // Other tenants and staff first, admins and operators (who change
    // things) after.
    for who in [
        Who::Anonymous,
        Who::OtherTenantAdmin,
        Who::Staff,
        Who::Admin,
        Who::Operator,
    ] {
        let client: TestClient = match who {
            Who::Anonymous => app.client(),
            Who::OtherTenantAdmin => app.login(&other).await,
            Who::Staff => app.login(&staff).await,
            Who::Admin => app.login(&admin).await,
            Who::Operator => app.login(&op).await,
        };
        // The form token of this client's session (or of its pre-login
        // cookie): the matrix tests access decisions, not CSRF.
        let token = client.get("/login").await.csrf().unwrap_or_default();
        let token = if token.is_empty() {
            client.get("/account").await.csrf().unwrap_or_default()
        } else {
            token
        };
        for (method, pattern) in &routes {
            let path = fill(pattern);
            let res = match *method {
                "GET" => client.get(&path).await,
                _ => client.post_raw(&path, &[("csrf_token", &token)]).await,
            };
            let got = match res.status {
                303 if res
                    .location
                    .as_deref()
                    .is_some_and(|l| l.starts_with("/login")) =>
                {
                    Got::Login
                }
                403 => Got::Forbidden,
                404 => Got::NotFound,
                _ => Got::Served,
            };
            let policy = decision(method, pattern).expect("decided above");
            if !expected(policy, who).contains(&got) {
                wrong.insert(
                    format!("{method} {pattern} as {who:?}"),
                    format!(
                        "{got:?} ({}), expected {:?} ({policy:?})",
                        res.status,
                        expected(policy, who)
                    ),
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn a_path_id_that_does_not_parse_is_a_404_page() {
    let app = spawn_app_with(TestOptions::default()).await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    for path in [
        "/workflows/not-an-id",
        "/workflows/run_0123456789abcdef0123456789abcdef",
        "/runs/%00",
        "/connections/con_",
        "/users/ten_0123456789abcdef0123456789abcdef",
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.body.contains("<html"), "{path}: the 404 page");
    }
}
