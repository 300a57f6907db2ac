//! Workflows: created from the template, checked on save, published as
//! immutable versions, rolled back; isolation and roles.

use ferry_core::Role;
use ferry_tests::{assert_escaped, spawn_app};

fn id_from(location: &str) -> String {
    location.trim_start_matches("/workflows/").to_owned()
}

#[tokio::test]
async fn the_reference_workflow_is_created_bound_published_and_rolled_back() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_verification(&client).await;
    let res = client
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "KYC for new clients"),
                ("description", "Replaces the manual ID check"),
                ("owner", admin.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "reference"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let id = id_from(res.location.as_deref().unwrap());
    let page = client.get(&format!("/workflows/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<a href=\"/workflows\" aria-current=\"page\">Workflows</a>"),
        "in the navigation"
    );
    for key in [
        "fetch_contact",
        "validate_contact",
        "start_check",
        "wait_result",
        "write_back",
    ] {
        assert!(page.body.contains(key), "{key}");
    }
    assert!(
        page.body.contains(">HubSpot (sandbox)</a>"),
        "HubSpot bound automatically"
    );

    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(
        client
            .get(&format!("/workflows/{id}"))
            .await
            .body
            .contains("Published version 1.")
    );

    // Edit: a shorter wait, saved and published as v2.
    let definition = client.get(&format!("/workflows/{id}")).await.body;
    let at = definition.find("name=\"definition\"").unwrap();
    let start = at + definition[at..].find('>').unwrap() + 1;
    let end = definition[start..].find("</textarea>").unwrap() + start;
    let json_text = definition[start..end]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&");
    let edited = json_text.replace("86400", "43200");
    assert_ne!(edited, json_text);
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/definition"),
            &[("definition", &edited)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    let page = client.get(&format!("/workflows/{id}")).await;
    assert!(page.body.contains("published v2"));
    assert!(page.body.contains("up to 12 h"));

    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/rollback"),
            &[("version", "1")],
        )
        .await;
    assert_eq!(res.status, 303);
    let page = client.get(&format!("/workflows/{id}")).await;
    assert!(page.body.contains("Runs now use version 1.") && page.body.contains("published v1"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM workflow_versions").await,
        2,
        "versions are immutable: a rollback adds none"
    );
    assert_eq!(
        client
            .submit(
                &format!("/workflows/{id}"),
                &format!("/workflows/{id}/rollback"),
                &[("version", "9")]
            )
            .await
            .status,
        404
    );
    for action in [
        "workflow.created",
        "workflow.published",
        "workflow.draft_saved",
        "workflow.rolled_back",
    ] {
        assert!(
            app.count(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'"
            ))
            .await
                >= 1,
            "{action}"
        );
    }
}

#[tokio::test]
async fn a_bad_definition_is_refused_naming_the_step_and_field() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let res = client
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "Start"),
                ("owner", admin.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "start"),
            ],
        )
        .await;
    let id = id_from(res.location.as_deref().unwrap());
    let bad = r#"{"trigger":{"connector":"hubspot","event":"contact.creation"},"steps":[
        {"key":"fetch","type":"action","connector":"hubspot","action":"get_contact","input":{"contact_id":{"kind":"path","path":"trigger.objectId"}}},
        {"key":"check","type":"action","connector":"verification","action":"create_check","input":{
            "first_name":{"kind":"path","path":"steps.fetch.firstname"},
            "email":{"kind":"path","path":"steps.fetch.shoe_size"},
            "nickname":{"kind":"literal","value":"<script>alert(1)</script>"}}}]}"#;
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/definition"),
            &[("definition", bad)],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains(
            "step check, field email: steps.fetch.shoe_size: there is no field shoe_size"
        ),
        "{}",
        res.body
    );
    assert!(
        res.body
            .contains("step check, field nickname: Start a check has no input field nickname")
    );
    assert!(
        res.body
            .contains("step check, field last_name: Last name is required and not mapped")
    );
    assert_escaped(&res, "<script>alert(1)</script>");
    let malformed = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/definition"),
            &[("definition", "{ not json")],
        )
        .await;
    assert_eq!(malformed.status, 422);
    assert!(malformed.body.contains("The definition is not valid"));
    // Nothing was saved.
    assert!(
        client
            .get(&format!("/workflows/{id}"))
            .await
            .body
            .contains("fetch_contact")
    );
    // Publishing with no HubSpot connection chosen is refused.
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("No HubSpot CRM connection is chosen"));
    assert_eq!(app.count("SELECT COUNT(*) FROM workflow_versions").await, 0);
}

#[tokio::test]
async fn the_new_workflow_form_validates_its_fields() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let res = client
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", ""),
                ("owner", "usr_00000000000000000000000000000000"),
                ("environment", "staging"),
                ("template", "magic"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    for m in [
        "Enter a name for the workflow.",
        "Choose the person responsible from your firm.",
        "Choose sandbox or production.",
        "Choose how to start.",
    ] {
        assert!(res.body.contains(m), "{m}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM workflows").await, 0);
}

#[tokio::test]
async fn tenant_b_gets_404_and_staff_change_nothing() {
    let app = spawn_app().await;
    let (tenant_a, admin_a) = app.create_tenant("Alpha").await;
    let (_, admin_b) = app.create_tenant("Bravo").await;
    let a = app.login(&admin_a).await;
    let b = app.login(&admin_b).await;
    let (conn_a, _) = app.connect_verification(&a).await;
    let res = a
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "Alpha flow"),
                ("owner", admin_a.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "start"),
            ],
        )
        .await;
    let id = id_from(res.location.as_deref().unwrap());
    assert_eq!(b.get(&format!("/workflows/{id}")).await.status, 404);
    for action in ["publish", "definition", "bindings", "rollback"] {
        assert_eq!(
            b.submit(
                "/workflows",
                &format!("/workflows/{id}/{action}"),
                &[("definition", "{}"), ("version", "1")]
            )
            .await
            .status,
            404,
            "{action}"
        );
    }
    assert!(!b.get("/workflows").await.body.contains("Alpha flow"));
    // B cannot bind A's connection to B's workflow.
    let res = b
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "Bravo flow"),
                ("owner", admin_b.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "start"),
            ],
        )
        .await;
    let bid = id_from(res.location.as_deref().unwrap());
    let res = b
        .submit(
            &format!("/workflows/{bid}"),
            &format!("/workflows/{bid}/bindings"),
            &[("bind_hubspot", conn_a.as_str())],
        )
        .await;
    assert_eq!(res.status, 422);
    let staff = app
        .add_member(&tenant_a, "staff@alpha.test", "Sam", Role::Staff)
        .await;
    let s = app.login(&staff).await;
    assert_eq!(s.get(&format!("/workflows/{id}")).await.status, 200);
    assert!(
        !s.get(&format!("/workflows/{id}"))
            .await
            .body
            .contains("Publish draft")
    );
    assert_eq!(
        s.submit("/workflows", &format!("/workflows/{id}/publish"), &[])
            .await
            .status,
        403
    );
    assert_eq!(s.get("/workflows/new").await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_shows_each_step_and_writes_nothing() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let res = client
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "KYC"),
                ("owner", admin.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "reference"),
            ],
        )
        .await;
    let id = id_from(res.location.as_deref().unwrap());
    let portal = app.portal().await;
    let contact = app
        .create_contact(portal, serde_json::json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}))
        .await;
    let page = client.get(&format!("/workflows/{id}")).await;
    assert!(page.body.contains("Sample trigger payload"));

    let payload =
        format!("{{\"objectId\": {contact}, \"subscriptionType\": \"contact.creation\"}}");
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/dry-run"),
            &[("payload", &payload)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    for key in [
        "fetch_contact",
        "validate_contact",
        "start_check",
        "wait_result",
        "write_back",
    ] {
        assert!(res.body.contains(key), "{key}");
    }
    assert!(res.body.contains("read from the bound connection"));
    assert_eq!(
        res.body
            .matches("not called: a dry run writes nothing")
            .count(),
        2,
        "{}",
        res.body
    );
    assert!(
        res.body.contains("[redacted]") && !res.body.contains("Lovelace"),
        "PII redacted in the dry run too"
    );
    assert!(
        res.body.contains("identity_verification_status"),
        "the write-back's input is shown"
    );
    // Nothing was written anywhere.
    let stats = app.json("/sandbox/verify/admin/accounts").await;
    assert_eq!(stats[0]["create_requests"], 0, "{stats}");
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert!(
        c["properties"]
            .get("identity_verification_status")
            .is_none()
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM runs").await, 0);

    // A contact failing validation stops the dry run there.
    let bad = app
        .create_contact(
            portal,
            serde_json::json!({"email": "x@client.test", "firstname": "X"}),
        )
        .await;
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/dry-run"),
            &[("payload", &format!("{{\"objectId\": \"{bad}\"}}"))],
        )
        .await;
    assert!(
        res.body.contains("badge-step-failed") && res.body.contains("lastname"),
        "{}",
        res.body
    );
    assert!(
        !res.body.contains("start_check <span"),
        "stops at the failed step"
    );

    // Bad input.
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/dry-run"),
            &[("payload", "{not json")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("not valid JSON"));
    let res = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/dry-run"),
            &[("payload", "[1, 2]")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("must be a JSON object"));
}
