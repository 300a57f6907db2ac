//! No personal data in errors: every sample and edge-case contact goes
//! through the reference flow, and none of their email addresses or dates of
//! birth appears in any page, export or email, and no personal field of
//! theirs (names included) in any log line. Messages name the field and the
//! rule, never the value.

use ferry_tests::{TestOptions, spawn_app_with};
use serde_json::{Value, json};

/// A contact's personal fields, each made unique to this test (the log is
/// shared by the tests running in this process).
struct Person {
    first: String,
    last: Option<String>,
    email: Option<String>,
    birth: Option<String>,
    phone: Option<String>,
}

fn people(tag: &str) -> Vec<Person> {
    let p = |first: &str,
             last: Option<&str>,
             email: Option<&str>,
             birth: Option<&str>,
             phone: Option<&str>| Person {
        first: format!("{first}{tag}"),
        last: last.map(|l| format!("{l}{tag}")),
        email: email.map(|e| e.replace('@', &format!(".{tag}@"))),
        birth: birth.map(str::to_owned),
        phone: phone.map(str::to_owned),
    };
    vec![
        // The demo's samples: pass, flagged, pending, missing last name.
        p(
            "Grace",
            Some("Hopper"),
            Some("grace@clients.example"),
            Some("1906-12-09"),
            None,
        ),
        p(
            "Mallory",
            Some("Consider"),
            Some("mallory@clients.example"),
            Some("1971-03-04"),
            None,
        ),
        p(
            "Penny",
            Some("Pending"),
            Some("penny@clients.example"),
            None,
            None,
        ),
        p("Nolan", None, Some("nolan@clients.example"), None, None),
        // Edge cases: formats at and past the edge of what is accepted.
        p(
            "Zoë",
            Some("Ünicode"),
            Some("zoe+kyc@exämple.test"),
            Some("2000-02-29"),
            Some("+44 20 7946 0018"),
        ),
        p(
            "Bad",
            Some("Email"),
            Some("not-an-email@@clients.example"),
            Some("1999-01-01"),
            None,
        ),
        p(
            "Bad",
            Some("Birthdate"),
            Some("bad.dob@clients.example"),
            Some("31/02/1990"),
            None,
        ),
        p(
            "  Spaced  ",
            Some("  Out  "),
            Some("spaced@clients.example"),
            Some("1980-06-15"),
            Some("not a phone 12"),
        ),
        p(
            "Very",
            Some(&"Long".repeat(60)),
            Some("long@clients.example"),
            Some("1950-10-10"),
            None,
        ),
        p("No", Some("Email"), None, Some("1961-08-04"), None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_personal_data_reaches_pages_exports_emails_or_logs() {
    let app = spawn_app_with(TestOptions::default()).await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let portal = app.portal().await;
    let tag = format!("q{:08x}", rand::random::<u32>());
    let people = people(&tag);
    for person in &people {
        let mut props = json!({ "firstname": person.first });
        for (name, value) in [
            ("lastname", &person.last),
            ("email", &person.email),
            ("date_of_birth", &person.birth),
            ("phone", &person.phone),
        ] {
            if let Some(v) = value {
                props[name] = json!(v);
            }
        }
        app.create_contact(portal, props).await;
    }
    let n = i64::try_from(people.len()).unwrap();
    assert_eq!(
        app.wait_count(
            "SELECT COUNT(*) FROM runs WHERE status IN ('succeeded', 'failed', 'waiting', 'dead')",
            n
        )
        .await,
        n,
        "{:?}",
        app.json_rows("SELECT status, error FROM runs").await
    );
    // Some failed validation, and their errors name field and rule.
    let errors = app
        .json_rows("SELECT error FROM runs WHERE error IS NOT NULL")
        .await;
    assert!(
        errors.len() >= 3,
        "validation failures were recorded: {errors:?}"
    );

    // Everything a person (or an export) can see.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut look = |what: String, body: String| seen.push((what, body));
    let runs: Value = serde_json::from_str(&client.get("/api/runs").await.body).unwrap();
    look("/api/runs".into(), runs.to_string());
    for path in [
        "/runs",
        "/runs?status=failed",
        "/runs?status=succeeded",
        "/audit",
        "/home",
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        look(path.into(), page.body);
    }
    // The verification view is where the firm tells its clients apart: it
    // shows name and email (issue 10), never a date of birth.
    let verifications = client.get("/verifications").await;
    assert_eq!(verifications.status, 200);
    for person in &people {
        if let Some(birth) = person.birth.as_deref() {
            assert!(
                !verifications.body.contains(birth),
                "{birth} on /verifications"
            );
        }
    }
    let ids: Vec<String> = app
        .json_rows("SELECT id FROM runs")
        .await
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    assert_eq!(ids.len(), people.len());
    for id in &ids {
        for path in [
            format!("/runs/{id}"),
            format!("/runs/{id}/log.json"),
            format!("/runs/{id}/log.csv"),
        ] {
            let page = client.get(&path).await;
            assert_eq!(page.status, 200, "{path}");
            look(path, page.body);
        }
    }
    let mails = app
        .json_rows("SELECT to_address, subject, body_text FROM emails")
        .await;
    look("emails".into(), format!("{mails:?}"));
    if let Some(smtp) = &app.smtp {
        look("smtp".into(), format!("{:?}", smtp.messages()));
    }

    let logs = ferry_tests::captured_logs();
    for person in &people {
        let mut never_shown: Vec<&str> = Vec::new();
        never_shown.extend(person.email.as_deref());
        never_shown.extend(person.birth.as_deref());
        for value in &never_shown {
            for (what, body) in &seen {
                assert!(!body.contains(value), "{value} appears in {what}");
            }
        }
        // No personal field at all in the log, names included.
        let mut personal: Vec<&str> = vec![person.first.trim()];
        personal.extend(person.last.as_deref().map(str::trim));
        personal.extend(person.phone.as_deref());
        personal.extend(never_shown);
        for value in personal {
            let line = logs.lines().find(|l| l.contains(value));
            assert!(line.is_none(), "{value} in the log: {line:?}");
        }
    }
    // At rest, inbound payloads are sealed: no email in the events table.
    let stored = app.json_rows("SELECT payload FROM inbound_events").await;
    assert!(!stored.is_empty());
    for person in &people {
        if let Some(email) = &person.email {
            assert!(
                !format!("{stored:?}").contains(email.as_str()),
                "{email} stored in clear"
            );
        }
    }
    // The log was read: this test's runs are in it.
    assert!(logs.contains(&ids[0]), "the runs were logged");
}
