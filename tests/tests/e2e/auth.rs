//! Sign-in, sessions and throttling.

use ferry_tests::spawn_app;

#[tokio::test]
async fn a_member_signs_in_and_lands_on_the_overview() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme Accounting").await;
    let client = app.client();
    let res = client.login(&admin.email, &admin.password).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location.as_deref(), Some("/home"));
    let cookie = res.set_cookies.iter().find(|c| c.starts_with("ferry_session=")).expect("session cookie");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    let home = client.get("/home").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Acme Accounting"));
}
