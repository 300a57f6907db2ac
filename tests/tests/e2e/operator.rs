//! The operator console: tenants and their lifecycle.

use ferry_core::Role;
use ferry_tests::{assert_escaped, spawn_app};

#[tokio::test]
async fn an_operator_creates_a_tenant_and_its_first_admin_is_invited() {
    let app = spawn_app().await;
    let op = app.create_operator("op@ferry.test").await;
    let client = app.login(&op).await;
    let res = client
        .submit(
            "/operator/tenants/new",
            "/operator/tenants",
            &[
                ("name", "Baker & Sons LLP"),
                ("admin_name", "Bea Baker"),
                ("admin_email", "bea@baker.test"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let detail = client.get(res.location.as_deref().expect("location")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("Tenant created"));
    assert_escaped(&detail, "Baker & Sons LLP");
    let list = client.get("/operator/tenants").await;
    assert_escaped(&list, "Baker & Sons LLP");
    let mail = app.wait_for_mail("bea@baker.test", "invited").await;
    assert!(mail.body.contains("as admin"), "{}", mail.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.created' AND tenant_id IS NULL").await, 1);

    // The admin joins; the operator then sees a count, not the person.
    let path: String = mail
        .link_containing("/invite/")
        .expect("link")
        .parse::<url::Url>()
        .expect("url")
        .path()
        .to_owned();
    let admin = app.client();
    admin
        .submit(
            &path,
            &path,
            &[
                ("password", "bea's passphrase"),
                ("password_confirmation", "bea's passphrase"),
            ],
        )
        .await;
    assert_eq!(
        admin
            .login("bea@baker.test", "bea's passphrase")
            .await
            .status,
        303
    );
    let list = client.get("/operator/tenants").await;
    assert!(
        list.body.contains("<td class=\"num\">1</td>"),
        "{}",
        list.body
    );
    let detail = client.get(res.location.as_deref().expect("location")).await;
    assert!(
        !detail.body.contains("bea@baker.test"),
        "operators never see tenant members"
    );
}

#[tokio::test]
async fn the_new_tenant_form_rejects_bad_input_with_field_errors() {
    let app = spawn_app().await;
    let op = app.create_operator("op@ferry.test").await;
    let client = app.login(&op).await;
    let huge = "x".repeat(10 * 1024);
    let res = client
        .submit(
            "/operator/tenants/new",
            "/operator/tenants",
            &[
                ("name", &huge),
                ("admin_name", ""),
                ("admin_email", "\"><script>alert(1)</script>"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Use at most 100 characters."));
    assert!(res.body.contains("Enter a name."));
    assert!(
        res.body
            .contains("Enter an email address like name@example.com.")
    );
    assert!(res.body.contains("Please correct the 3 fields"));
    assert_escaped(&res, "\"><script>alert(1)</script>");
    assert_eq!(app.count("SELECT COUNT(*) FROM tenants").await, 0);
    // An email that already has an account.
    let res = client
        .submit(
            "/operator/tenants/new",
            "/operator/tenants",
            &[
                ("name", "Dup"),
                ("admin_name", "Olive"),
                ("admin_email", "op@ferry.test"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("already has a Ferry account"));
    assert_eq!(app.count("SELECT COUNT(*) FROM tenants").await, 0);
}

#[tokio::test]
async fn deleting_a_tenant_needs_its_name_typed() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Doomed Partners").await;
    app.add_member(&tenant, "staff@doomed.test", "Sam", Role::Staff)
        .await;
    let op = app.create_operator("op@ferry.test").await;
    let client = app.login(&op).await;
    let page = format!("/operator/tenants/{tenant}");
    let action = format!("/operator/tenants/{tenant}/delete");
    let wrong = client
        .submit(&page, &action, &[("confirm_name", "doomed partners")])
        .await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong
            .body
            .contains("Type the tenant&#39;s name exactly as shown to confirm."),
        "{}",
        wrong.body
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM tenants").await, 1);
    let ok = client
        .submit(&page, &action, &[("confirm_name", "Doomed Partners")])
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM tenants").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM memberships").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE is_operator = false")
            .await,
        0
    );
    assert_eq!(
        app.client()
            .login(&admin.email, &admin.password)
            .await
            .status,
        401
    );
    // The audit trail outlives the tenant.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.deleted'")
            .await,
        1
    );
    assert_eq!(client.get(&page).await.status, 404);
}

#[tokio::test]
async fn only_operators_reach_the_console_and_operators_reach_no_tenant_pages() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam", Role::Staff)
        .await;
    for account in [&admin, &staff] {
        let client = app.login(account).await;
        assert_eq!(client.get("/operator/tenants").await.status, 403);
        assert_eq!(
            client
                .get(&format!("/operator/tenants/{tenant}"))
                .await
                .status,
            403
        );
        assert_eq!(client.get("/operator/audit").await.status, 403);
        let res = client
            .submit("/home", &format!("/operator/tenants/{tenant}/suspend"), &[])
            .await;
        assert_eq!(res.status, 403);
        let res = client
            .submit(
                "/home",
                "/operator/tenants",
                &[
                    ("name", "Evil"),
                    ("admin_name", "E"),
                    ("admin_email", "e@evil.test"),
                ],
            )
            .await;
        assert_eq!(res.status, 403);
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tenants WHERE status = 'active'")
            .await,
        1
    );
    let op = app.create_operator("op@ferry.test").await;
    let operator = app.login(&op).await;
    for path in [
        "/home",
        "/users",
        "/audit",
        &format!("/users/{}", admin.user_id),
    ] {
        assert_eq!(operator.get(path).await.status, 403, "{path}");
    }
}

#[tokio::test]
async fn suspend_is_a_post_only_action() {
    let app = spawn_app().await;
    let (tenant, _) = app.create_tenant("Acme").await;
    let op = app.create_operator("op@ferry.test").await;
    let client = app.login(&op).await;
    // No state change on GET.
    assert_eq!(
        client
            .get(&format!("/operator/tenants/{tenant}/suspend"))
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .get(&format!("/operator/tenants/{tenant}/delete"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM tenants WHERE status = 'active'")
            .await,
        1
    );
    // Unknown and malformed tenant ids.
    assert_eq!(
        client
            .get("/operator/tenants/ten_00000000000000000000000000000000")
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .get("/operator/tenants/usr_00000000000000000000000000000000")
            .await
            .status,
        404
    );
    assert_eq!(
        client.get("/operator/tenants/1%20OR%201=1").await.status,
        404
    );
}
