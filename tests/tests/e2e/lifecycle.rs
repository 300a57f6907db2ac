//! A workflow's lifecycle after it is built (pause with held runs, resume
//! running or discarding them, unpublish, rename, duplicate, delete), the
//! "unpublished changes" marker, and revoking a connection in use — each
//! audited, each refused for another tenant.

use ferry_tests::spawn_app;
use serde_json::json;

fn contact(n: u32) -> serde_json::Value {
    json!({"email": format!("client{n}@example.test"), "firstname": "Client", "lastname": format!("Number{n}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_workflow_holds_its_runs_until_resumed_then_runs_or_discards_them() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let id = app.publish_reference(&client, &admin).await;
    let page = format!("/workflows/{id}");
    let portal = app.portal().await;

    let res = client
        .submit(&page, &format!("/workflows/{id}/pause"), &[])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let shown = client.get(&page).await.body;
    assert!(shown.contains("Paused since"), "{shown}");
    assert!(shown.contains("published v1, paused"));

    // An event while paused: stored, its run held, nothing sent anywhere.
    app.create_contact(portal, contact(1)).await;
    let held = "SELECT COUNT(*) FROM runs WHERE status = 'held'";
    assert_eq!(app.wait_count(held, 1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM run_steps").await, 0);
    assert!(
        client
            .get(&page)
            .await
            .body
            .contains("1 run held while paused")
    );
    assert!(
        client
            .get("/runs?status=held")
            .await
            .body
            .contains("badge-run-held")
    );

    // Resuming asks what to do with it.
    let res = client
        .submit(&page, &format!("/workflows/{id}/resume"), &[])
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains(
            "Choose whether to run or discard the 1 event that came while the workflow was paused."
        ),
        "{}",
        res.body
    );
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/resume"),
            &[("held", "run")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
            .await,
        1,
        "the held run ran: {:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );

    // Paused again; this time the held run is discarded.
    client
        .submit(&page, &format!("/workflows/{id}/pause"), &[])
        .await;
    app.create_contact(portal, contact(2)).await;
    assert_eq!(app.wait_count(held, 1).await, 1);
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/resume"),
            &[("held", "discard")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.count(held).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'skipped' AND error LIKE 'discarded by an admin%'")
            .await,
        1
    );
    assert!(!client.get(&page).await.body.contains("Paused since"));
    // New events run again.
    app.create_contact(portal, contact(3)).await;
    assert_eq!(
        app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 2)
            .await,
        2
    );
    for (action, n) in [("workflow.paused", 2), ("workflow.resumed", 2)] {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = '{action}' AND target_id = '{id}'"
            ))
            .await,
            n,
            "{action}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpublish_rename_duplicate_and_delete_are_audited_and_isolated() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let id = app.publish_reference(&client, &admin).await;
    let page = format!("/workflows/{id}");
    let portal = app.portal().await;

    // Another tenant gets 404 for every lifecycle route on this workflow,
    // and nothing changes.
    let (_, other) = app.create_tenant("Other").await;
    let intruder = app.login(&other).await;
    for (action, fields) in [
        ("pause", vec![]),
        ("resume", vec![("held", "run")]),
        ("unpublish", vec![]),
        ("rename", vec![("name", "Mine now")]),
        ("duplicate", vec![]),
        ("delete", vec![("confirm", "KYC for new clients")]),
    ] {
        let res = intruder
            .submit("/workflows", &format!("/workflows/{id}/{action}"), &fields)
            .await;
        assert_eq!(res.status, 404, "{action}");
    }
    // Staff may look, not change.
    let staff_account = app
        .add_member(
            &tenant,
            "staff@acme.test",
            "Sam Staff",
            ferry_core::Role::Staff,
        )
        .await;
    let staff = app.login(&staff_account).await;
    let res = staff
        .submit(&page, &format!("/workflows/{id}/pause"), &[])
        .await;
    assert_eq!(res.status, 403);
    assert!(!staff.get(&page).await.body.contains("Pause workflow"));

    // Unpublish: events are received and start nothing.
    let res = client
        .submit(&page, &format!("/workflows/{id}/unpublish"), &[])
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(
        client
            .get(&page)
            .await
            .body
            .contains("draft, not published")
    );
    app.create_contact(portal, contact(1)).await;
    app.wait_count("SELECT COUNT(*) FROM inbound_events", 1)
        .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM runs").await, 0);

    // Rename: the name is checked and the message names the field.
    let res = client
        .submit(&page, &format!("/workflows/{id}/rename"), &[("name", "  ")])
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("rename-error"), "{}", res.body);
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/rename"),
            &[("name", "KYC <v2>")],
        )
        .await;
    assert_eq!(res.status, 303);
    ferry_tests::assert_escaped(&client.get(&page).await, "KYC <v2>");

    // Duplicate: a new unpublished draft with the same steps, watched.
    let res = client
        .submit(&page, &format!("/workflows/{id}/duplicate"), &[])
        .await;
    assert_eq!(res.status, 303);
    let copy = res
        .location
        .unwrap()
        .trim_start_matches("/workflows/")
        .to_owned();
    assert_ne!(copy, id);
    let copied = client.get(&format!("/workflows/{copy}")).await;
    assert!(
        copied.body.contains("Copy of KYC &#60;v2&#62;"),
        "{}",
        copied.body
    );
    assert!(copied.body.contains("write_back"));
    assert!(copied.body.contains("draft, not published"));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM alert_rules WHERE workflow_id = '{copy}' AND enabled = TRUE"
        ))
        .await,
        i64::try_from(ferry_core::alerts::RuleKind::defaults().len()).unwrap(),
        "the copy has the default rules, enabled"
    );

    // Delete: the typed name confirms it; history stays.
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/delete"),
            &[("confirm", "KYC")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body
            .contains("Type the workflow&#39;s name exactly as shown to delete it.")
            || res
                .body
                .contains("Type the workflow's name exactly as shown to delete it."),
        "{}",
        res.body
    );
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/delete"),
            &[("confirm", "KYC <v2>")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location.as_deref(), Some("/workflows"));
    assert_eq!(client.get(&page).await.status, 404);
    let list = client.get("/workflows").await.body;
    assert!(!list.contains(&id) && list.contains(&copy));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM workflows WHERE id = '{id}' AND deleted_at IS NOT NULL"
        ))
        .await,
        1,
        "the row stays for the audit"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM alert_rules WHERE workflow_id = '{id}' AND enabled = TRUE"
        ))
        .await,
        0,
        "its alert rules are retired"
    );
    for action in [
        "workflow.unpublished",
        "workflow.renamed",
        "workflow.deleted",
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = '{action}' AND target_id = '{id}'"
            ))
            .await,
            1,
            "{action}"
        );
    }
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'workflow.duplicated' AND target_id = '{copy}'"
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn draft_changes_and_rebinding_are_marked_unpublished_until_published() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let id = app.publish_reference(&client, &admin).await;
    let page = format!("/workflows/{id}");
    assert!(!client.get(&page).await.body.contains("Unpublished changes"));
    assert!(
        client
            .get(&page)
            .await
            .body
            .contains("part of the draft: a change takes effect when you publish")
    );

    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/build/step/fetch_contact"),
            &[("op", "duplicate")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let shown = client.get(&page).await.body;
    assert!(shown.contains("Unpublished changes"), "{shown}");
    assert!(shown.contains(" added."), "{shown}");

    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(!client.get(&page).await.body.contains("Unpublished changes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_a_connection_in_use_lists_the_workflows_and_asks_first() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let hubspot = app.connect_hubspot(&client).await;
    let (verification, _) = app.connect_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let page = format!("/connections/{hubspot}");
    let shown = client.get(&page).await.body;
    assert!(shown.contains("KYC for new clients"), "used by: {shown}");
    assert!(
        shown.contains("Access token expires"),
        "an OAuth token expires"
    );
    let key_page = client
        .get(&format!("/connections/{verification}"))
        .await
        .body;
    assert!(
        !key_page.contains("Access token expires"),
        "an API key has no access token"
    );

    let res = client
        .submit(&page, &format!("/connections/{hubspot}/revoke"), &[])
        .await;
    assert_eq!(res.status, 422);
    assert!(
        res.body.contains(
            "1 published workflow uses this connection and will fail until it is replaced"
        ),
        "{}",
        res.body
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM connections WHERE id = '{hubspot}'"
        ))
        .await,
        1,
        "nothing revoked"
    );
    let res = client
        .submit(
            &page,
            &format!("/connections/{hubspot}/revoke"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM connections WHERE id = '{hubspot}'"
        ))
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_connection_is_reconnected_in_place_and_its_workflow_carries_on() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let hubspot = app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let workflow = app.publish_reference(&client, &admin).await;
    let portal = app.portal().await;
    // HubSpot revokes every token: the next run is refused and the
    // connection is flagged broken.
    let res = reqwest::Client::new()
        .post(format!(
            "{}/sandbox/hubspot/admin/portals/{portal}/revoke-tokens",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    app.create_contact(portal, contact(1)).await;
    let broken =
        format!("SELECT COUNT(*) FROM connections WHERE id = '{hubspot}' AND status = 'broken'");
    assert_eq!(app.wait_count(&broken, 1).await, 1, "flagged broken on use");
    let page = format!("/connections/{hubspot}");
    assert!(client.get(&page).await.body.contains(">Reconnect</button>"));

    // Reconnect: the consent screen selects the connection's own account.
    async fn start(client: &ferry_tests::TestClient, page: &str, action: &str) -> url::Url {
        let res = client.submit(page, action, &[]).await;
        assert_eq!(res.status, 303, "{}", res.body);
        res.location.unwrap().parse::<url::Url>().unwrap()
    }
    let action = format!("/connections/{hubspot}/reconnect");
    let consent = start(&client, &page, &action).await;
    let screen = app.client().follow(&consent).await.body;
    assert!(
        screen.contains(&format!("value=\"{portal}\" checked")),
        "{screen}"
    );
    // Choosing another account changes nothing.
    let other = app
        .consent_as(&app.client(), &consent, "approve", "new")
        .await;
    let callback: url::Url = other.location.unwrap().parse().unwrap();
    let refused = client.follow(&callback).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("Nothing was changed"),
        "{}",
        refused.body
    );
    assert_eq!(app.count(&broken).await, 1);
    // The same account: the same connection gets the new grant.
    let consent = start(&client, &page, &action).await;
    let same = app
        .consent_as(&app.client(), &consent, "approve", &portal.to_string())
        .await;
    let callback: url::Url = same.location.unwrap().parse().unwrap();
    let done = client.follow(&callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(page.as_str()));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM connections WHERE id = '{hubspot}' AND status = 'healthy'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM connections WHERE connector = 'hubspot'")
            .await,
        1,
        "no new connection"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'connection.reconnected'")
            .await,
        1
    );
    // The workflow, untouched (not rebound, not republished), runs again.
    let before = app
        .count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'")
        .await;
    app.create_contact(portal, contact(2)).await;
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM runs WHERE status = 'succeeded'",
            before + 1
        )
        .await,
        before + 1,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM workflow_versions WHERE workflow_id = '{workflow}'"
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_workflow_runs_nothing_held_runs_take_the_version_published_now_and_a_deleted_ones_runs_end()
 {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let id = app.publish_reference(&client, &admin).await;
    let page = format!("/workflows/{id}");
    let portal = app.portal().await;
    // A run that fails on its data (no last name).
    app.create_contact(
        portal,
        json!({"email": "nolan@example.test", "firstname": "Nolan"}),
    )
    .await;
    let failed = "SELECT COUNT(*) FROM runs WHERE status = 'failed'";
    assert_eq!(app.wait_count(failed, 1).await, 1);
    let run = app.json_rows("SELECT id FROM runs").await[0][0]
        .clone()
        .unwrap();

    // Paused: even a replay does not run; it waits, held.
    client
        .submit(&page, &format!("/workflows/{id}/pause"), &[])
        .await;
    let res = client
        .submit(
            &format!("/runs/{run}"),
            &format!("/runs/{run}/replay"),
            &[("from", "start")],
        )
        .await;
    assert_eq!(res.status, 303);
    let held = "SELECT COUNT(*) FROM runs WHERE status = 'held'";
    assert_eq!(app.wait_count(held, 1).await, 1, "the replay is held");
    // A new event while paused is held too; meanwhile v2 is published.
    app.create_contact(portal, contact(7)).await;
    assert_eq!(app.wait_count(held, 2).await, 2);
    let res = client
        .submit(
            &format!("{page}/build"),
            &format!("/workflows/{id}/build/step/wait_result"),
            &[("op", "save"), ("hours", "12")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    client
        .submit(
            &page,
            &format!("/workflows/{id}/publish"),
            &[("note", "Publishing for the test.")],
        )
        .await;
    // Run them now: on the version published now.
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/resume"),
            &[("held", "run")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.count(held).await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE version = 2")
            .await,
        2,
        "{:?}",
        app.json_rows("SELECT status, version FROM runs").await
    );
    assert_eq!(
        app.wait_count(failed, 1).await,
        1,
        "the data is still wrong"
    );

    // Deleted: a replay is refused, and the runs are kept.
    let name = "KYC for new clients";
    let res = client
        .submit(
            &page,
            &format!("/workflows/{id}/delete"),
            &[("confirm", name)],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let res = client
        .submit(&format!("/runs/{run}"), &format!("/runs/{run}/replay"), &[])
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    assert!(res.body.contains("workflow was deleted"));
    assert!(
        client
            .get(&format!("/runs/{run}"))
            .await
            .body
            .contains("(deleted)")
    );
}
