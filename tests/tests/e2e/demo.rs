//! `ferry demo`: the demo tenant with sandbox connections and the reference
//! workflow published, set up through the same services the pages call; a second start
//! refreshes rather than duplicates.

use ferry_core::SystemClock;
use ferry_tests::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_ready_to_click_through_and_a_restart_refreshes_it() {
    let app = spawn_app().await;
    for start in 1..=2 {
        let logins = ferry::demo::seed(&app.db, &SystemClock).await.unwrap();
        let admin = logins.iter().find(|l| l.role == "Tenant admin").unwrap();
        let sandbox = app.sandbox.as_ref().unwrap();
        ferry::demo::connect_sandbox(&app.db, &app.services, sandbox, &admin.email)
            .await
            .unwrap();
        assert_eq!(
            app.count("SELECT COUNT(*) FROM tenants WHERE name = 'Demo Accounting'")
                .await,
            1
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM connections WHERE status = 'healthy'")
                .await,
            2,
            "start {start}"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM workflows").await,
            1,
            "start {start}"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM workflow_versions").await,
            start,
            "published again with the fresh connections"
        );
        // The printed logins work.
        let client = app.client();
        assert_eq!(
            client.login(&admin.email, &admin.password).await.status,
            303
        );
        let page = client.get("/workflows").await;
        assert!(
            page.body.contains(&format!("published v{start}")),
            "{}",
            page.body
        );
    }
    // "Create sample contacts": events flow, runs fill the pages.
    let logins = ferry::demo::seed(&app.db, &SystemClock).await.unwrap();
    let admin = logins.iter().find(|l| l.role == "Tenant admin").unwrap();
    let client = app.client();
    client.login(&admin.email, &admin.password).await;
    let home = client.get("/home").await;
    assert!(
        home.body.contains("Create sample contacts"),
        "{}",
        home.body
    );
    let res = client.submit("/home", "/sandbox-samples", &[]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location.as_deref(), Some("/runs"));
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed')",
            6
        )
        .await,
        6,
        "three pass, one needs review, one is rejected, one fails validation: {:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE status = 'waiting'")
            .await,
        1,
        "one stays pending"
    );
    let staff = logins.iter().find(|l| l.role == "Staff").unwrap();
    let s = app.client();
    s.login(&staff.email, &staff.password).await;
    let page = s.get("/verifications").await;
    assert_eq!(
        page.body.matches("badge-outcome-pass").count(),
        3,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("badge-outcome-needs_review").count(), 1);
    assert_eq!(page.body.matches("badge-outcome-fail").count(), 1);
    assert_eq!(page.body.matches("badge-outcome-pending").count(), 1);
    // Staff cannot create CRM data.
    assert_eq!(s.submit("/home", "/sandbox-samples", &[]).await.status, 403);
}
