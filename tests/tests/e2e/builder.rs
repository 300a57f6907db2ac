//! The builder, through its plain HTML forms (no JavaScript): the
//! reference flow built from scratch card by card, field errors named at
//! the field and nothing saved, the step operations, a test on a real
//! sandbox contact (its writes really made, its data kept only sealed),
//! publishing it, and who may do what.

use ferry_tests::{TestApp, TestClient, spawn_app};
use serde_json::{Value, json};

async fn draft(app: &TestApp, id: &str) -> Value {
    let rows = app
        .raw
        .text_rows(&format!("SELECT draft FROM workflows WHERE id = '{id}'"))
        .await
        .unwrap();
    serde_json::from_str(rows[0][0].as_deref().unwrap()).unwrap()
}

fn keys(d: &Value) -> Vec<String> {
    d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_owned())
        .collect()
}

/// Adds a step at the end; returns its key (from the redirect).
async fn add(client: &TestClient, id: &str, choice: &str) -> String {
    let build = format!("/workflows/{id}/build");
    let at = "99";
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/insert"),
            &[("at", at), ("choice", choice)],
        )
        .await;
    assert_eq!(res.status, 303, "{choice}: {}", res.body);
    let location = res.location.unwrap();
    let key = location
        .split("open=")
        .nth(1)
        .and_then(|k| k.split('#').next())
        .unwrap()
        .to_owned();
    // The new step's card is the one shown open.
    let page = client.get(&location).await.body;
    assert!(
        page.contains(&format!("id=\"step-{key}\"")),
        "the card of {key}"
    );
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_flow_is_built_from_scratch_tested_on_a_real_contact_and_published() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let res = client
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "KYC, built by hand"),
                ("owner", admin.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "blank"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let location = res.location.unwrap();
    assert!(
        location.ends_with("/build"),
        "from scratch lands in the builder"
    );
    let id = location
        .trim_start_matches("/workflows/")
        .trim_end_matches("/build")
        .to_owned();
    let build = format!("/workflows/{id}/build");
    let page = client.get(&build).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("When: HubSpot CRM — A contact is created")
    );
    assert!(page.body.contains("Add a step"));

    // 1. Get the contact: its id is filled in from the trigger.
    let fetch = add(&client, &id, "action:hubspot:get_contact").await;
    assert_eq!(fetch, "get_a_contact");
    let d = draft(&app, &id).await;
    assert_eq!(
        d["steps"][0]["input"]["contact_id"]["path"],
        "trigger.objectId"
    );

    // 2. Check the data: one choice per field.
    let check = add(&client, &id, "validate").await;
    let card = format!("/workflows/{id}/build/step/{check}");
    let res = client
        .submit(
            &build,
            &card,
            &[
                ("op", "save"),
                ("label", "Check the contact"),
                (&format!("rule.steps.{fetch}.firstname"), "required"),
                (&format!("rule.steps.{fetch}.lastname"), "required"),
                (&format!("rule.steps.{fetch}.email"), "required_format"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let d = draft(&app, &id).await;
    assert_eq!(d["steps"][1]["label"], "Check the contact");
    assert_eq!(d["steps"][1]["rules"].as_array().unwrap().len(), 4, "{d}");

    // 3. Start the check: names and email suggested, identity data not.
    let start = add(&client, &id, "action:verification:create_check").await;
    let d = draft(&app, &id).await;
    let input = &d["steps"][2]["input"];
    assert_eq!(
        input["first_name"]["path"],
        format!("steps.{fetch}.firstname")
    );
    assert_eq!(input["email"]["path"], format!("steps.{fetch}.email"));
    assert!(input.get("date_of_birth").is_none());

    // 4. Wait for the result: correlated on the check's id.
    let wait = add(&client, &id, "wait:verification:check.completed").await;
    let d = draft(&app, &id).await;
    assert_eq!(
        d["steps"][3]["correlation"]["path"],
        format!("steps.{start}.id")
    );

    // 5. Write back: the outcome through a lookup table, and the reference.
    let write = add(&client, &id, "action:hubspot:update_contact").await;
    let card = format!("/workflows/{id}/build/step/{write}");
    let status = "properties.identity_verification_status";
    // A mistake first: named at its field, nothing saved.
    let res = client
        .submit(
            &build,
            &card,
            &[
                ("op", "save"),
                ("v.contact_id", "{{trigger.objectId"),
                (&format!("v.{status}"), "pending"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains("A {{ is not closed with }}"),
        "{}",
        res.body
    );
    assert!(res.body.contains("{{trigger.objectId"), "kept as typed");
    let before = draft(&app, &id).await;
    let pick = format!("steps.{wait}.check.result");
    let fields = [
        ("op".to_owned(), "save".to_owned()),
        ("v.contact_id".into(), "{{trigger.objectId}}".into()),
        (format!("v.{status}"), String::new()),
        (format!("pick.{status}"), pick.clone()),
        (format!("tf.{status}"), "lookup".into()),
        (format!("lk.{status}.from.0"), "clear".into()),
        (format!("lk.{status}.to.0"), "pass".into()),
        (format!("lk.{status}.from.1"), "consider".into()),
        (format!("lk.{status}.to.1"), "needs_review".into()),
        (format!("lk.{status}.from.2"), "rejected".into()),
        (format!("lk.{status}.to.2"), "fail".into()),
        (format!("lk.{status}.else"), "pending".into()),
        (
            "pick.properties.identity_verification_ref".into(),
            format!("steps.{start}.id"),
        ),
        ("attempts".into(), "3".into()),
    ];
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        before,
        draft(&app, &id).await,
        "the refused save changed nothing"
    );
    let res = client.submit(&build, &card, &pairs).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let d = draft(&app, &id).await;
    let props = &d["steps"][4]["input"]["properties"]["fields"];
    assert_eq!(
        props["identity_verification_status"]["transform"]["table"],
        json!({"clear": "pass", "consider": "needs_review", "rejected": "fail"})
    );
    assert_eq!(
        props["identity_verification_ref"]["path"],
        format!("steps.{start}.id")
    );
    // The card shows what was saved, the lookup as a table.
    let page = client.get(&format!("{build}?open={write}")).await.body;
    assert!(page.contains(&format!("name=\"lk.{status}.to.1\"")));
    assert!(page.contains("<option value=\"needs_review\" selected>"));

    // Test it on a real sandbox contact: every step ran, the writes made.
    let portal = app.portal().await;
    let contact = app
        .create_contact(
            portal,
            json!({"email": "ada@client.test", "firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await;
    let page = client.get(&build).await.body;
    assert!(
        page.contains(&format!("Ada Lovelace · ada@client.test (#{contact})")),
        "the newest contacts are offered"
    );
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/test"),
            &[("record", &contact)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains("written through the bound connection"),
        "{}",
        res.body
    );
    assert!(
        res.body.contains("arrived"),
        "the result webhook was awaited"
    );
    assert!(
        res.body.contains("ada@client.test"),
        "shown unredacted to the admin"
    );
    assert!(!res.body.contains("badge-step-failed"), "{}", res.body);
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"
        ))
        .await;
    assert_eq!(
        c["properties"]["identity_verification_status"], "pass",
        "{c}"
    );
    // Kept only sealed: the sample holds no plaintext; no run was recorded.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM workflow_samples WHERE sealed LIKE '%ada@client.test%'")
            .await,
        0
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM workflow_samples").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM runs").await, 0);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'workflow.tested' AND target_id = '{id}' AND tenant_id = '{tenant}'"
        ))
        .await,
        1
    );
    // The sample's values appear beside the fields.
    let page = client.get(&format!("{build}?open={write}")).await.body;
    assert!(
        page.contains("Get a contact → First name: Ada"),
        "pills show sample values"
    );

    // Publish; a new contact then runs through it.
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let grace = app
        .create_contact(
            portal,
            json!({"email": "grace@client.test", "firstname": "Grace", "lastname": "Consider"}),
        )
        .await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    let c = app
        .json(&format!(
            "/sandbox/hubspot/admin/portals/{portal}/contacts/{grace}"
        ))
        .await;
    assert_eq!(
        c["properties"]["identity_verification_status"],
        "needs_review"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_are_inserted_moved_duplicated_renamed_and_removed() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let res = client
        .submit(
            "/workflows/new",
            "/workflows",
            &[
                ("name", "Ops"),
                ("owner", admin.user_id.as_str()),
                ("environment", "sandbox"),
                ("template", "start"),
            ],
        )
        .await;
    let id = res
        .location
        .unwrap()
        .trim_start_matches("/workflows/")
        .to_owned();
    let build = format!("/workflows/{id}/build");
    // Inserted first, before the fetch it would read: allowed (reads the trigger).
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/insert"),
            &[
                ("at", "0"),
                ("choice", "validate"),
                ("label", "Check first"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        keys(&draft(&app, &id).await),
        ["check_first", "fetch_contact"]
    );
    // A map step reading the fetched email, then moved above the fetch: refused.
    let tidy = add(&client, &id, "map").await;
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/step/{tidy}"),
            &[
                ("op", "save"),
                ("okey.out.0", "email"),
                ("v.out.~0", "{{steps.fetch_contact.email}}"),
                ("tf.out.~0", "lower"),
                ("okey.out.1", "greeting"),
                ("v.out.~1", "Dear {{steps.fetch_contact.firstname}}"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let d = draft(&app, &id).await;
    assert_eq!(d["steps"][2]["output"]["greeting"]["kind"], "concat");
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/step/{tidy}"),
            &[("op", "up")],
        )
        .await;
    assert_eq!(res.status, 422, "above the step it reads");
    assert!(res.body.contains("does not come before"), "{}", res.body);
    // Dragging a card is a move to a position, checked like any change.
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/step/check_first"),
            &[("op", "move_to"), ("to", "1")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        keys(&draft(&app, &id).await)[..2],
        ["fetch_contact", "check_first"]
    );
    // Duplicate, rename through the card, remove.
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/step/fetch_contact"),
            &[("op", "duplicate")],
        )
        .await;
    assert_eq!(res.status, 303);
    let d = draft(&app, &id).await;
    assert!(
        keys(&d).contains(&"copy_of_get_a_contact".to_owned()),
        "{d}"
    );
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/step/copy_of_get_a_contact"),
            &[("op", "remove")],
        )
        .await;
    assert_eq!(res.status, 303);
    let res = client
        .submit(
            &build,
            &format!("/workflows/{id}/build/step/check_first"),
            &[("op", "save"), ("label", "")],
        )
        .await;
    assert_eq!(res.status, 422, "a step needs a name");
    // Bad choices are refused by name, never saved.
    for (path, fields, message) in [
        (
            format!("/workflows/{id}/build/insert"),
            vec![("at", "1"), ("choice", "action:hubspot:delete_everything")],
            "Choose an action.",
        ),
        (
            format!("/workflows/{id}/build/insert"),
            vec![("at", "1"), ("choice", "nonsense")],
            "Choose what the step does from the list.",
        ),
        (
            format!("/workflows/{id}/build/step/ghost"),
            vec![("op", "remove")],
            "There is no step ghost.",
        ),
    ] {
        let before = draft(&app, &id).await;
        let res = client.submit(&build, &path, &fields).await;
        assert_eq!(res.status, 422, "{fields:?}");
        assert!(res.body.contains(message), "{message}: {}", res.body);
        assert_eq!(before, draft(&app, &id).await);
    }
    let fetch_audits = app
        .count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'workflow.draft_saved' AND target_id = '{id}'"
        ))
        .await;
    assert!(fetch_audits >= 5, "every saved change is audited");

    // Staff cannot open the builder or change a step; another tenant gets 404.
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam", ferry_core::Role::Staff)
        .await;
    let s = app.login(&staff).await;
    assert_eq!(s.get(&build).await.status, 403);
    assert_eq!(
        s.submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/build/insert"),
            &[("at", "0"), ("choice", "validate")]
        )
        .await
        .status,
        403
    );
    let (_, other) = app.create_tenant("Other").await;
    let o = app.login(&other).await;
    assert_eq!(o.get(&build).await.status, 404);
    for path in [
        format!("/workflows/{id}/build/insert"),
        format!("/workflows/{id}/build/step/fetch_contact"),
        format!("/workflows/{id}/build/test"),
        format!("/workflows/{id}/build/trigger"),
    ] {
        let res = o
            .submit(
                "/workflows",
                &path,
                &[
                    ("choice", "validate"),
                    ("op", "remove"),
                    ("record", "1"),
                    ("trigger", "hubspot:contact.creation"),
                ],
            )
            .await;
        assert_eq!(res.status, 404, "{path}");
    }
}
