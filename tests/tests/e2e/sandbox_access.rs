//! Who reaches the simulators: nobody on a production-style `serve`; on a
//! shared sandbox (`FERRY_SANDBOX=true`) each tenant's admin reaches only
//! their own portals and accounts, the raw admin API needs an operator, forms
//! carry anti-forgery tokens, creation is capped, and the simulators' own
//! webhooks go through the guarded client.

use ferry_core::Role;
use ferry_tests::{TestApp, TestOptions, receiver, spawn_app_with};
use serde_json::{Value, json};
use std::time::Duration;

fn with_sandbox(mode: &str) -> TestOptions {
    TestOptions {
        settings: vec![("sandbox", mode.to_owned())],
        ..TestOptions::default()
    }
}

async fn status(method: reqwest::Method, url: String) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .request(method, url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn admin_key(app: &TestApp) -> String {
    ferry_engine::connections::sandbox_admin_key(&app.master_key())
}

/// A request to the admin API with the admin key (as Ferry's pages send it).
fn keyed(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(admin_key(app))
}

#[tokio::test]
async fn a_production_style_serve_exposes_no_simulator() {
    let app = spawn_app_with(with_sandbox("false")).await;
    for (method, path) in [
        (reqwest::Method::GET, "/sandbox/hubspot/admin"),
        (reqwest::Method::GET, "/sandbox/hubspot/admin/portals"),
        (reqwest::Method::POST, "/sandbox/hubspot/admin/portals"),
        (reqwest::Method::GET, "/sandbox/hubspot/oauth/authorize"),
        (reqwest::Method::POST, "/sandbox/hubspot/oauth/v1/token"),
        (
            reqwest::Method::GET,
            "/sandbox/hubspot/crm/v3/objects/contacts",
        ),
        (reqwest::Method::POST, "/sandbox/verify/admin/accounts"),
        (reqwest::Method::POST, "/sandbox/verify/v1/checks"),
    ] {
        assert_eq!(
            status(method.clone(), format!("{}{path}", app.address)).await,
            404,
            "{method} {path}"
        );
    }
    // Nor is a sandbox connection offered.
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let form = client.get("/connections/new/hubspot").await;
    assert_eq!(form.status, 200);
    let res = client
        .submit(
            "/connections/new/hubspot",
            "/connections/new/hubspot",
            &[("name", "HubSpot"), ("environment", "sandbox")],
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.body.contains("FERRY_SANDBOX"), "{}", res.body);
    // And the default is off: a Ferry configured with nothing serves none.
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().display().to_string();
    let defaults = ferry::Settings::from_pairs([("data_dir", dir.as_str())]).unwrap();
    assert_eq!(defaults.sandbox, ferry::config::SandboxMode::Off);
}

#[tokio::test]
async fn the_raw_admin_api_needs_an_operator_or_the_key_even_from_this_machine() {
    let app = spawn_app_with(with_sandbox("true")).await;
    for (method, path) in [
        (reqwest::Method::GET, "/sandbox/hubspot/admin/portals"),
        (reqwest::Method::POST, "/sandbox/hubspot/admin/portals"),
        (reqwest::Method::GET, "/sandbox/hubspot/admin/deliveries"),
        (
            reqwest::Method::PUT,
            "/sandbox/hubspot/admin/apps/ferry-sandbox-app/webhooks",
        ),
        (
            reqwest::Method::POST,
            "/sandbox/hubspot/admin/oauth/expire-codes",
        ),
        (reqwest::Method::POST, "/sandbox/verify/admin/accounts"),
        (reqwest::Method::GET, "/sandbox/verify/admin/accounts"),
    ] {
        assert_eq!(
            status(method.clone(), format!("{}{path}", app.address)).await,
            403,
            "{method} {path}"
        );
    }
    // Nor does spelling the path another way.
    assert_eq!(
        status(
            reqwest::Method::GET,
            format!("{}/sandbox/hubspot/%61dmin/portals", app.address)
        )
        .await,
        403
    );
    // A tenant admin's session does not open the raw API either.
    let (_, admin) = app.create_tenant("Acme").await;
    let tenant_admin = app.login(&admin).await;
    assert_eq!(
        tenant_admin
            .get("/sandbox/hubspot/admin/portals")
            .await
            .status,
        403
    );
    // An operator's does; so does the admin key.
    let op = app.create_operator("op@ferry.test").await;
    let operator = app.login(&op).await;
    assert_eq!(
        operator.get("/sandbox/hubspot/admin/portals").await.status,
        200
    );
    let res = keyed(&app, reqwest::Method::GET, "/sandbox/hubspot/admin/portals")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The fault-knob page sends a visitor without a session to sign in.
    let anonymous = app.client().get("/sandbox/hubspot/admin").await;
    assert_eq!(anonymous.status, 303);
    assert!(
        anonymous
            .location
            .unwrap_or_default()
            .starts_with("/login?next=")
    );
}

#[tokio::test]
async fn one_tenant_cannot_see_control_or_use_another_tenants_sandbox() {
    let app = spawn_app_with(with_sandbox("true")).await;
    let (tenant_a, alice) = app.create_tenant("Acme").await;
    let (_, bob) = app.create_tenant("Globex").await;
    let a = app.login(&alice).await;
    let b = app.login(&bob).await;

    // A connects sandbox HubSpot through the consent screen, signed in.
    let consent = app.start_hubspot(&a, "HubSpot (sandbox)").await;
    let done = app.approve_and_follow(&a, &consent, "new").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let op = app.create_operator("op@ferry.test").await;
    let operator = app.login(&op).await;
    let portals: Value =
        serde_json::from_str(&operator.get("/sandbox/hubspot/admin/portals").await.body).unwrap();
    let portal_a = portals[0]["portalId"].as_u64().unwrap().to_string();

    // B's consent screen offers only B's portals (none yet), and choosing
    // A's portal by id is refused.
    let consent_b = app.start_hubspot(&b, "HubSpot (sandbox)").await;
    let screen = b.follow(&consent_b).await;
    assert_eq!(screen.status, 200);
    assert!(!screen.body.contains(&portal_a), "A's portal offered to B");
    let taken = app.consent_as(&b, &consent_b, "approve", &portal_a).await;
    assert_eq!(taken.status, 400, "{}", taken.body);
    assert!(taken.location.is_none());
    // A's own screen offers A's portal.
    let screen_a = a.follow(&consent).await;
    assert!(screen_a.body.contains(&portal_a));

    // The fault-knob page: B (with a portal of its own) sees none of A's
    // portals, and B's form for A's portal (with B's own valid token) is
    // refused.
    let own = app.consent_as(&b, &consent_b, "approve", "new").await;
    assert_eq!(own.status, 302, "{}", own.body);
    let page_b = b.get("/sandbox/hubspot/admin").await;
    assert_eq!(page_b.status, 200);
    assert!(!page_b.body.contains(&portal_a));
    let token_b = page_b.csrf().expect("token on the page");
    let forced = b
        .post_raw(
            &format!("/sandbox/hubspot/admin/ui/portals/{portal_a}/faults"),
            &[("force", "500"), ("csrf_token", &token_b)],
        )
        .await;
    assert_eq!(forced.status, 404);
    let revoked = b
        .post_raw(
            &format!("/sandbox/hubspot/admin/ui/portals/{portal_a}/revoke-tokens"),
            &[("csrf_token", &token_b)],
        )
        .await;
    assert_eq!(revoked.status, 404);
    // A can, on A's page, with A's token; without a token, not even A.
    let page_a = a.get("/sandbox/hubspot/admin").await;
    assert!(page_a.body.contains(&portal_a));
    let no_token = a
        .post_raw(
            &format!("/sandbox/hubspot/admin/ui/portals/{portal_a}/faults"),
            &[("force", "500")],
        )
        .await;
    assert_eq!(no_token.status, 403);
    let set = a
        .post_raw(
            &format!("/sandbox/hubspot/admin/ui/portals/{portal_a}/faults"),
            &[("force", "429"), ("csrf_token", &page_a.csrf().unwrap())],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    let portal: Value = serde_json::from_str(
        &operator
            .get(&format!("/sandbox/hubspot/admin/portals/{portal_a}"))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(portal["faults"]["force"], "429");

    // Staff do not use the sandbox's pages; a consent without a token is refused.
    let staff = app
        .add_member(&tenant_a, "sam@acme.test", "Sam", Role::Staff)
        .await;
    let s = app.login(&staff).await;
    assert_eq!(s.follow(&consent).await.status, 403);
    let forged = a
        .post_raw(
            "/sandbox/hubspot/oauth/authorize",
            &[
                ("client_id", "ferry-sandbox-app"),
                ("redirect_uri", "http://evil.example/cb"),
                ("decision", "approve"),
                ("portal", "new"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Codes go only to Ferry's registered callback.
    let mut elsewhere = consent.clone();
    let pairs: Vec<(String, String)> = consent
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" {
                "http://evil.example/cb".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    elsewhere.query_pairs_mut().clear().extend_pairs(pairs);
    let screen = a.follow(&elsewhere).await;
    assert_eq!(screen.status, 400);
    assert!(screen.body.contains("redirect_uri"));
}

#[tokio::test]
async fn creation_is_capped_per_tenant() {
    let app = spawn_app_with(with_sandbox("true")).await;
    let (_, alice) = app.create_tenant("Acme").await;
    let a = app.login(&alice).await;
    let consent = app.start_hubspot(&a, "HubSpot (sandbox)").await;
    for n in 0..ferry_sandbox::access::MAX_PER_OWNER {
        let res = app.consent_as(&a, &consent, "approve", "new").await;
        assert_eq!(res.status, 302, "portal {n}: {}", res.body);
    }
    let over = app.consent_as(&a, &consent, "approve", "new").await;
    assert_eq!(over.status, 429, "{}", over.body);
    // Accounts at the provider, created on a tenant's behalf, likewise.
    for _ in 0..ferry_sandbox::access::MAX_PER_OWNER {
        let res = keyed(
            &app,
            reqwest::Method::POST,
            "/sandbox/verify/admin/accounts",
        )
        .header("X-Sandbox-Owner", "ten_capped")
        .send()
        .await
        .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = keyed(
        &app,
        reqwest::Method::POST,
        "/sandbox/verify/admin/accounts",
    )
    .header("X-Sandbox-Owner", "ten_capped")
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 429);
    // The owner sees only its own accounts.
    let list: Value = keyed(&app, reqwest::Method::GET, "/sandbox/verify/admin/accounts")
        .header("X-Sandbox-Owner", "ten_other")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn the_simulators_webhooks_go_through_the_guarded_client() {
    let app = spawn_app_with(with_sandbox("true")).await;
    let portal: Value = keyed(
        &app,
        reqwest::Method::POST,
        "/sandbox/hubspot/admin/portals",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let portal = portal["portalId"].as_u64().unwrap();
    let set_target = |target: String| {
        keyed(
            &app,
            reqwest::Method::PUT,
            "/sandbox/hubspot/admin/apps/ferry-sandbox-app/webhooks",
        )
        .json(&json!({ "target_url": target, "subscriptions": ["contact.creation"], "base_delay_ms": 10, "max_attempts": 2 }))
        .send()
    };
    let create = || {
        keyed(
            &app,
            reqwest::Method::POST,
            &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
        )
        .json(&json!({ "properties": { "email": "probe@client.test" } }))
        .send()
    };
    let deliveries = || async {
        keyed(
            &app,
            reqwest::Method::GET,
            "/sandbox/hubspot/admin/deliveries",
        )
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
    };

    // A private address that is not Ferry: refused, not retried, nothing sent.
    let rx = receiver(0).await;
    assert_eq!(set_target(rx.url.clone()).await.unwrap().status(), 204);
    assert_eq!(create().await.unwrap().status(), 201);
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = deliveries().await;
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["status"], 0);
    assert!(
        rx.seen.lock().unwrap().is_empty(),
        "the receiver was reached"
    );

    // Ferry's own origin is reachable, and a redirect is not followed: a
    // POST there that answers 303 is recorded as 303.
    let own = format!(
        "{}/sandbox/hubspot/admin/ui/portals/{portal}/faults",
        app.address
    );
    assert_eq!(set_target(own).await.unwrap().status(), 204);
    assert_eq!(create().await.unwrap().status(), 201);
    let mut last = Value::Null;
    for _ in 0..50 {
        let all = deliveries().await;
        if all.len() > 1 {
            last = all[1].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last["status"], 303, "{last}");
}

#[tokio::test]
async fn a_local_sandbox_refuses_other_sites_and_rebound_names() {
    let app = spawn_app_with(with_sandbox("local")).await;
    let url = format!("{}/sandbox/hubspot/admin/portals", app.address);
    let client = reqwest::Client::new();
    let ok = client.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // A page on another site whose name resolves to 127.0.0.1.
    let rebound = client
        .get(&url)
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // A request another site started in the local user's browser.
    let cross = client
        .post(format!("{}/sandbox/hubspot/admin/portals", app.address))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
}

/// What a caller got from a simulator route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Login,
    Forbidden,
    NotFound,
    Served,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_simulator_route_has_a_decided_answer_on_a_shared_sandbox() {
    let app = spawn_app_with(with_sandbox("true")).await;
    let (tenant_a, alice) = app.create_tenant("Acme").await;
    let (_, bob) = app.create_tenant("Globex").await;
    let sam = app
        .add_member(&tenant_a, "sam@acme.test", "Sam", Role::Staff)
        .await;
    let op = app.create_operator("op@ferry.test").await;
    let a = app.login(&alice).await;
    let consent = app.start_hubspot(&a, "HubSpot (sandbox)").await;
    app.approve_and_follow(&a, &consent, "new").await;
    app.connect_sandbox_verification(&a).await;
    let portal = app
        .json_rows("SELECT external_account FROM connections WHERE connector = 'hubspot'")
        .await[0][0]
        .clone()
        .unwrap();
    let contact = keyed(
        &app,
        reqwest::Method::POST,
        &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
    )
    .json(&json!({ "properties": { "email": "ann@client.test" } }))
    .send()
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = keyed(&app, reqwest::Method::GET, "/sandbox/verify/admin/accounts")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()[0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let consent_path = format!("{}?{}", consent.path(), consent.query().unwrap());

    let routes = ferry_sandbox::Sandbox::route_table();
    assert!(routes.len() > 35, "the simulators' routes were enumerated");
    // The decision per route: who gets what.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Policy {
        /// Token- or key-authenticated machine API: a Ferry session changes
        /// nothing (every caller gets the same answer).
        Machine,
        Public,
        /// The consent screen: tenant admins only (each sees their own).
        Consent,
        /// The fault-knob page: tenant admins (their own) and operators.
        Knobs,
        /// A fault-knob form for tenant A's portal.
        KnobsOwn,
        /// The raw admin API: operators (or the key) only.
        AdminApi,
    }
    let decide = |method: &str, path: &str| -> Option<Policy> {
        Some(match path {
            "/sandbox/hubspot/static/sim.css" => Policy::Public,
            "/sandbox/hubspot/oauth/authorize" => Policy::Consent,
            "/sandbox/hubspot/admin" if method == "GET" => Policy::Knobs,
            p if p.starts_with("/sandbox/hubspot/admin/ui/") => Policy::KnobsOwn,
            p if p.starts_with("/sandbox/hubspot/admin/")
                || p.starts_with("/sandbox/verify/admin/") =>
            {
                Policy::AdminApi
            }
            p if p.starts_with("/sandbox/hubspot/oauth/v1/")
                || p.starts_with("/sandbox/hubspot/crm/")
                || p.starts_with("/sandbox/verify/v1/") =>
            {
                Policy::Machine
            }
            _ => return None,
        })
    };
    let undecided: Vec<String> = routes
        .iter()
        .filter(|(m, p)| decide(m, p).is_none())
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(undecided.is_empty(), "undecided: {undecided:?}");

    let who = ["anonymous", "staff", "other admin", "admin", "operator"];
    let mut machine: std::collections::BTreeMap<String, Vec<u16>> = Default::default();
    let mut wrong = Vec::new();
    for name in who {
        let client = match name {
            "anonymous" => app.client(),
            "staff" => app.login(&sam).await,
            "other admin" => app.login(&bob).await,
            "admin" => app.login(&alice).await,
            _ => app.login(&op).await,
        };
        // The simulators' own form token, from whichever page this caller sees.
        let mut token = client.get(&consent_path).await.csrf();
        if token.is_none() {
            token = client.get("/sandbox/hubspot/admin").await.csrf();
        }
        let token = token.unwrap_or_default();
        for (method, pattern) in &routes {
            let path = pattern
                .replace(
                    "/admin/accounts/{id}",
                    &format!("/admin/accounts/{account}"),
                )
                .replace("{id}", &portal)
                .replace("{contact}", &contact)
                .replace("{token}", &"f".repeat(40))
                .replace("{client_id}", "ferry-sandbox-app")
                .replace("{name}", "email");
            let path = if path == "/sandbox/hubspot/oauth/authorize" {
                consent_path.clone()
            } else {
                path
            };
            let url = format!("{}{path}", app.address);
            let request = client.http.request(method.parse().unwrap(), &url);
            let request = match *method {
                "GET" | "DELETE" => request,
                _ if path.contains("/admin/ui/") || path.contains("/oauth/authorize") => {
                    request.form(&[("csrf_token", token.as_str()), ("decision", "deny")])
                }
                _ => request.json(&json!({})),
            };
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let got = match status {
                303 if location.starts_with("/login") => Got::Login,
                403 => Got::Forbidden,
                404 => Got::NotFound,
                _ => Got::Served,
            };
            let policy = decide(method, pattern).unwrap();
            let expected: &[Got] = match (policy, name) {
                (Policy::Machine, _) => {
                    machine
                        .entry(format!("{method} {pattern}"))
                        .or_default()
                        .push(status);
                    continue;
                }
                (Policy::Public, _) => &[Got::Served],
                (Policy::AdminApi, "operator") => &[Got::Served, Got::NotFound],
                (Policy::AdminApi, _) => &[Got::Forbidden],
                (_, "anonymous") => &[Got::Login],
                (_, "staff") => &[Got::Forbidden],
                (Policy::Consent, "operator") => &[Got::Forbidden],
                (Policy::KnobsOwn, "other admin") => &[Got::NotFound],
                _ => &[Got::Served],
            };
            if !expected.contains(&got) {
                wrong.push(format!("{method} {pattern} as {name}: {got:?} ({status})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // A Ferry session opens nothing on the machine APIs: every caller got
    // the same answer, and none of them a success.
    for (route, statuses) in &machine {
        assert!(
            statuses.windows(2).all(|w| w[0] == w[1]),
            "{route}: {statuses:?}"
        );
        assert!(
            !(200..300).contains(&statuses[0]) || route.starts_with("DELETE"),
            "{route}: {statuses:?}"
        );
    }
}
