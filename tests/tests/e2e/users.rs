//! The team page: roles, invites, deactivation, and tenant isolation.

use ferry_core::Role;
use ferry_tests::{assert_escaped, spawn_app};

#[tokio::test]
async fn staff_see_the_team_read_only_and_cannot_use_admin_routes() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam Staff", Role::Staff)
        .await;
    let client = app.login(&staff).await;
    let team = client.get("/users").await;
    assert_eq!(team.status, 200);
    assert!(team.body.contains("Ada Admin") && team.body.contains("Sam Staff"));
    assert!(
        !team.body.contains("action=\"/users/invite\""),
        "no invite form for staff"
    );
    assert!(
        !team.body.contains("href=\"/users/usr_"),
        "no links to admin pages"
    );
    let home = client.get("/home").await;
    assert!(home.body.contains("read-only access"));
    assert!(!home.body.contains("href=\"/audit\""));

    let forbidden = [
        client
            .submit(
                "/users",
                "/users/invite",
                &[("name", "X"), ("email", "x@acme.test"), ("role", "admin")],
            )
            .await,
        client
            .submit(
                "/users",
                &format!("/users/{}/role", admin.user_id),
                &[("role", "staff")],
            )
            .await,
        client
            .submit(
                "/users",
                &format!("/users/{}/deactivate", admin.user_id),
                &[],
            )
            .await,
        client
            .submit(
                "/users",
                &format!("/users/{}/role", staff.user_id),
                &[("role", "admin")],
            )
            .await,
    ];
    for res in forbidden {
        assert_eq!(res.status, 403, "{}", res.body);
        assert!(res.body.contains("Your role does not allow this."));
    }
    assert_eq!(
        client
            .get(&format!("/users/{}", admin.user_id))
            .await
            .status,
        403
    );
    assert_eq!(client.get("/audit").await.status, 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM invites").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE role = 'admin'")
            .await,
        1
    );
}

#[tokio::test]
async fn an_admin_changes_roles_and_every_change_is_audited() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant, "staff@acme.test", "Sam Staff", Role::Staff)
        .await;
    let client = app.login(&admin).await;
    let page = format!("/users/{}", staff.user_id);
    let res = client
        .submit(
            &page,
            &format!("/users/{}/role", staff.user_id),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        client
            .get(&page)
            .await
            .body
            .contains("Sam Staff is now admin.")
    );
    let res = client
        .submit(
            &page,
            &format!("/users/{}/role", staff.user_id),
            &[("role", "superuser")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(
        client
            .get(&page)
            .await
            .body
            .contains("Choose Admin or Staff.")
    );
    client
        .submit(&page, &format!("/users/{}/deactivate", staff.user_id), &[])
        .await;
    client
        .submit(&page, &format!("/users/{}/reactivate", staff.user_id), &[])
        .await;
    let audit = client.get("/audit").await;
    assert_eq!(audit.status, 200);
    for action in [
        "user.role_changed",
        "user.deactivated",
        "user.reactivated",
        "user.logged_in",
    ] {
        assert!(
            audit.body.contains(action),
            "{action} missing from the audit page"
        );
    }
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM audit_events WHERE tenant_id = '{tenant}' AND action = 'user.role_changed'")).await,
        1
    );
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_or_deactivated() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let page = format!("/users/{}", admin.user_id);
    let res = client
        .submit(
            &page,
            &format!("/users/{}/role", admin.user_id),
            &[("role", "staff")],
        )
        .await;
    assert_eq!(res.status, 409);
    assert!(res.body.contains("At least one active admin must remain"));
    let res = client
        .submit(&page, &format!("/users/{}/deactivate", admin.user_id), &[])
        .await;
    assert_eq!(res.status, 409);
    // With a second admin, the first may step down.
    let second = app
        .add_member(&tenant, "second@acme.test", "Second Admin", Role::Admin)
        .await;
    let res = client
        .submit(
            &page,
            &format!("/users/{}/role", admin.user_id),
            &[("role", "staff")],
        )
        .await;
    assert_eq!(res.status, 303);
    // Now the second is the last admin; a deactivated admin does not count.
    let second_client = app.login(&second).await;
    let res = second_client
        .submit(
            "/users",
            &format!("/users/{}/deactivate", second.user_id),
            &[],
        )
        .await;
    assert_eq!(res.status, 409);
}

#[tokio::test]
async fn tenant_b_gets_404_for_tenant_a_people() {
    let app = spawn_app().await;
    let (tenant_a, admin_a) = app.create_tenant("Alpha").await;
    let staff_a = app
        .add_member(&tenant_a, "staff@alpha.test", "Alice", Role::Staff)
        .await;
    let (_, admin_b) = app.create_tenant("Bravo").await;
    let b = app.login(&admin_b).await;
    for id in [&admin_a.user_id, &staff_a.user_id] {
        assert_eq!(b.get(&format!("/users/{id}")).await.status, 404);
        assert_eq!(
            b.submit("/users", &format!("/users/{id}/role"), &[("role", "admin")])
                .await
                .status,
            404
        );
        assert_eq!(
            b.submit("/users", &format!("/users/{id}/deactivate"), &[])
                .await
                .status,
            404
        );
        assert_eq!(
            b.submit("/users", &format!("/users/{id}/reactivate"), &[])
                .await
                .status,
            404
        );
    }
    let team = b.get("/users").await;
    assert!(!team.body.contains("alpha.test"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE role = 'staff' AND status = 'active'")
            .await,
        1
    );
    let audit = b.get("/audit").await;
    assert!(
        !audit.body.contains("alpha.test"),
        "tenant B's audit log shows only B"
    );
}

#[tokio::test]
async fn invite_input_is_validated_and_markup_is_escaped_everywhere() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let res = client
        .submit(
            "/users",
            "/users/invite",
            &[("name", ""), ("email", "nope"), ("role", "owner")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Enter a name.") && res.body.contains("Choose Admin or Staff."));
    let res = client
        .submit(
            "/users",
            "/users/invite",
            &[
                ("name", &"n".repeat(10_240)),
                ("email", "ok@acme.test"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("Use at most 100 characters."));
    // Someone already on the team cannot be invited again.
    let res = client
        .submit(
            "/users",
            "/users/invite",
            &[("name", "Dup"), ("email", &admin.email), ("role", "staff")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert!(res.body.contains("already on your team"));

    let nasty = "<script>alert('x')</script> \"O'Brien\"";
    let sql = "Robert'); DROP TABLE users;--";
    for name in [nasty, sql] {
        let res = client
            .submit(
                "/users",
                "/users/invite",
                &[
                    ("name", name),
                    ("email", &format!("p{}@acme.test", name.len())),
                    ("role", "staff"),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let team = client.get("/users").await;
    assert_escaped(&team, nasty);
    assert_escaped(&team, sql);
    assert!(
        app.count("SELECT COUNT(*) FROM users").await >= 1,
        "the users table survived"
    );
    let mail = app
        .wait_for_mail(&format!("p{}@acme.test", sql.len()), "invited")
        .await;
    assert!(
        mail.body.contains(sql),
        "mail is plain text: the name is shown as typed"
    );
}

#[tokio::test]
async fn markup_in_every_stored_text_is_escaped_on_every_page() {
    let app = spawn_app().await;
    let firm = "<script>alert(\"firm\")</script> & 'Co'";
    let person = "<img src=x onerror=alert(1)> \"Quote\" O'Neil";
    let (tenant, admin) = app.create_tenant(firm).await;
    let staff = app
        .add_member(&tenant, "staff@firm.test", person, Role::Staff)
        .await;
    let admin_client = app.login(&admin).await;
    let staff_client = app.login(&staff).await;
    // An invite whose name is markup, to show on the pending list and the
    // acceptance page.
    let res = admin_client
        .submit(
            "/users",
            "/users/invite",
            &[
                ("name", person),
                ("email", "new@firm.test"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let link = app
        .wait_for_mail("new@firm.test", "invited")
        .await
        .link_containing("/invite/")
        .expect("link");
    let invite_path = link.parse::<url::Url>().expect("url").path().to_owned();

    let admin_pages = [
        "/home",
        "/users",
        &format!("/users/{}", staff.user_id),
        "/account",
        "/audit",
    ];
    for path in admin_pages {
        let page = admin_client.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_escaped(&page, firm);
    }
    for path in ["/users", &format!("/users/{}", staff.user_id)] {
        assert_escaped(&admin_client.get(path).await, person);
    }
    for path in ["/home", "/users", "/account"] {
        let page = staff_client.get(path).await;
        assert_escaped(&page, firm);
        assert_escaped(&page, person);
    }
    let accept = app.client().get(&invite_path).await;
    assert_escaped(&accept, firm);

    let op = app.create_operator("op@ferry.test").await;
    let operator = app.login(&op).await;
    for path in [
        "/operator/tenants".to_owned(),
        format!("/operator/tenants/{tenant}"),
    ] {
        assert_escaped(&operator.get(&path).await, firm);
    }
}

#[tokio::test]
async fn the_invite_form_does_not_reveal_an_account_at_another_firm() {
    let app = ferry_tests::spawn_app().await;
    let (_, other) = app.create_tenant("Globex").await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let invite = |email: String| {
        let client = &client;
        async move {
            client
                .submit(
                    "/users",
                    "/users/invite",
                    &[("name", "Pat"), ("email", &email), ("role", "staff")],
                )
                .await
        }
    };
    let taken = invite(other.email.clone()).await;
    let free = invite("pat@acme.test".to_owned()).await;
    // The inviter sees the same thing either way.
    assert_eq!(taken.status, 303, "{}", taken.body);
    assert_eq!(free.status, taken.status);
    assert_eq!(free.location, taken.location);
    let flash = |page: &ferry_tests::Page, email: &str| {
        // The message without its signature (which differs with the text).
        page.set_cookies
            .iter()
            .find(|c| c.starts_with("ferry_flash="))
            .and_then(|c| c.split(';').next())
            .and_then(|v| v.rsplit_once('.'))
            .map(|(payload, _)| payload.replace(&email.replace('@', "%40"), "EMAIL"))
    };
    assert_eq!(flash(&taken, &other.email), flash(&free, "pat@acme.test"));
    let list = client.get("/users").await;
    assert!(list.body.contains(&other.email) && list.body.contains("pat@acme.test"));
    // The owner of the existing account is told, with no usable link.
    let mail = app.wait_for_mail(&other.email, "invited").await;
    assert!(
        mail.body.contains("already has a Ferry account"),
        "{}",
        mail.body
    );
    assert!(mail.link_containing("/invite/").is_none());
    let normal = app.wait_for_mail("pat@acme.test", "invited").await;
    assert!(normal.link_containing("/invite/").is_some());
}
