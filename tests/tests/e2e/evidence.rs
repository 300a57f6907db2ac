//! Compliance evidence: the hash-chained audit log (tampering found and
//! named, concurrent appends kept in order), a record's trail, the
//! generated documentation and inventory, 90-day reviews and their
//! reminders, the change note, and the evidence pack and its verification.

use ferry_core::{AuditAction, Role, TenantId};
use ferry_store::audit::{self, NewAuditEvent};
use ferry_tests::{TestApp, spawn_app};
use std::process::Command;

/// Runs `ferry admin …` against the app's database; (exit code, stdout).
fn admin_cli(app: &TestApp, args: &[&str]) -> (i32, String) {
    let out = Command::new(ferry_tests::ferry_bin())
        .arg("admin")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FERRY_DATABASE_URL", &app.database_url)
        .env("FERRY_DATA_DIR", app.data_dir.path())
        .env("FERRY_LOG", "warn")
        .output()
        .expect("run ferry admin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn append(
    db: &ferry_store::Db,
    tenant: &TenantId,
    n: usize,
    clock: &ferry_core::ManualClock,
) {
    for i in 0..n {
        audit::record(
            db,
            NewAuditEvent {
                tenant_id: Some(tenant),
                actor_user_id: None,
                actor_label: "test",
                action: AuditAction::WorkflowRenamed,
                target_kind: "workflow",
                target_id: "wf_test",
                details: serde_json::json!({ "n": i }),
                client_ip: "-",
            },
            ferry_core::Clock::now(clock),
        )
        .await
        .unwrap();
    }
}

async fn verify(app: &TestApp, tenant: &TenantId) -> audit::ChainReport {
    audit::verify_chain(&app.db, &tenant.to_string())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_audit_names_an_edited_a_deleted_an_inserted_and_a_reordered_entry() {
    let app = spawn_app().await;
    let mut tenants = Vec::new();
    for name in ["Edited", "Deleted", "Inserted", "Reordered", "Truncated"] {
        let (t, _) = app.create_tenant(name).await;
        append(&app.db, &t, 6, &app.clock).await;
        let ok = verify(&app, &t).await;
        assert!(ok.broken.is_none(), "{name}: {ok:?}");
        tenants.push(t);
    }
    let len = verify(&app, &tenants[0]).await.entries;
    assert!(len >= 6, "the tenant's own entries and the six: {len}");
    let (edited, deleted, inserted, reordered, truncated) = (
        &tenants[0],
        &tenants[1],
        &tenants[2],
        &tenants[3],
        &tenants[4],
    );
    let at = |t: &TenantId, seq: i64| format!("chain = '{t}' AND chain_seq = {seq}");

    // Edited: one entry's details changed in place.
    app.execute(&format!(
        "UPDATE audit_events SET details = '{{\"n\":99}}' WHERE {}",
        at(edited, len - 3)
    ))
    .await;
    let r = verify(&app, edited).await;
    let b = r.broken.expect("an edit is found");
    assert_eq!(b.seq, len - 3);
    assert!(b.reason.contains("changed"), "{}", b.reason);

    // Deleted: an entry in the middle removed.
    app.execute(&format!(
        "DELETE FROM audit_events WHERE {}",
        at(deleted, len - 2)
    ))
    .await;
    let b = verify(&app, deleted)
        .await
        .broken
        .expect("a deletion is found");
    assert_eq!(b.seq, len - 2);
    assert!(b.reason.contains("missing"), "{}", b.reason);

    // Inserted: an entry added outside the chain, and one forged at its end.
    app.execute(&format!(
        "INSERT INTO audit_events (id, tenant_id, actor_label, action, target_kind, target_id, details, client_ip, created_at) \
         SELECT 'aud_forged0', tenant_id, actor_label, action, target_kind, target_id, details, client_ip, created_at \
         FROM audit_events WHERE {}",
        at(inserted, 2)
    ))
    .await;
    let b = verify(&app, inserted)
        .await
        .broken
        .expect("an insertion is found");
    assert!(b.reason.contains("outside the chain"), "{}", b.reason);
    assert_eq!(b.entry_id.as_deref(), Some("aud_forged0"));
    app.execute("DELETE FROM audit_events WHERE id = 'aud_forged0'")
        .await;
    app.execute(&format!(
        "INSERT INTO audit_events (id, tenant_id, actor_label, action, target_kind, target_id, details, client_ip, created_at, chain, chain_seq, prev_hash, hash) \
         SELECT 'aud_forged1', tenant_id, actor_label, action, target_kind, target_id, details, client_ip, created_at, chain, chain_seq + 1, hash, hash \
         FROM audit_events WHERE {}",
        at(inserted, len)
    ))
    .await;
    let b = verify(&app, inserted)
        .await
        .broken
        .expect("a forged entry is found");
    assert_eq!(b.seq, len + 1);

    // Re-ordered: two entries swap places.
    app.execute(&format!(
        "UPDATE audit_events SET chain_seq = -1 WHERE {}",
        at(reordered, 3)
    ))
    .await;
    app.execute(&format!(
        "UPDATE audit_events SET chain_seq = 3 WHERE {}",
        at(reordered, 4)
    ))
    .await;
    app.execute(&format!(
        "UPDATE audit_events SET chain_seq = 4 WHERE chain = '{reordered}' AND chain_seq = -1"
    ))
    .await;
    let b = verify(&app, reordered)
        .await
        .broken
        .expect("a re-ordering is found");
    assert_eq!(b.seq, 3);
    assert!(b.reason.contains("does not link"), "{}", b.reason);

    // Truncated: the newest entry removed (the head remembers it).
    app.execute(&format!(
        "DELETE FROM audit_events WHERE {}",
        at(truncated, len)
    ))
    .await;
    let b = verify(&app, truncated)
        .await
        .broken
        .expect("a truncation is found");
    assert!(
        b.reason.contains("newest entries were removed"),
        "{}",
        b.reason
    );

    // A removed head does not hide its chain.
    let (headless, _) = app.create_tenant("Headless").await;
    append(&app.db, &headless, 3, &app.clock).await;
    app.execute(&format!(
        "DELETE FROM audit_heads WHERE chain = '{headless}'"
    ))
    .await;
    let b = verify(&app, &headless)
        .await
        .broken
        .expect("a removed head is found");
    assert!(b.reason.contains("head record was removed"), "{}", b.reason);
    assert!(
        audit::chains(&app.db)
            .await
            .unwrap()
            .contains(&headless.to_string()),
        "the periodic check still lists it"
    );
    // An entry moved to another chain is not a link of its own.
    app.execute(&format!(
        "UPDATE audit_events SET chain = 'elsewhere' WHERE {}",
        at(truncated, 1)
    ))
    .await;

    // The command line names the first broken link and exits non-zero;
    // an intact chain verifies with exit 0.
    let (code, out) = admin_cli(&app, &["verify-audit", "--tenant", &edited.to_string()]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("BROKEN at entry {}", len - 3)),
        "{out}"
    );
    let (fine, _) = app.create_tenant("Intact").await;
    append(&app.db, &fine, 3, &app.clock).await;
    let (code, out) = admin_cli(&app, &["verify-audit", "--tenant", "Intact"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified"), "{out}");
    let (code, out) = admin_cli(&app, &["verify-audit"]);
    assert_ne!(code, 0, "every chain, five of them broken: {out}");
    assert_eq!(
        out.matches("BROKEN").count(),
        7,
        "five tampered, the headless one and the 'elsewhere' one: {out}"
    );
    assert!(
        out.contains(&format!("{fine}: ")) && out.contains("— verified"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_through_two_connection_pools_keep_one_valid_chain() {
    let app = spawn_app().await;
    let (tenant, _) = app.create_tenant("Busy").await;
    let before = verify(&app, &tenant).await.entries;
    // A second pool on the same database: what a second process holds.
    let other = ferry_store::Db::connect(&app.database_url, 4)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for pool in [app.db.clone(), other.clone(), app.db.clone(), other.clone()] {
        let tenant = tenant.clone();
        let clock = app.clock.clone();
        tasks.push(tokio::spawn(async move {
            append(&pool, &tenant, 25, &clock).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = verify(&app, &tenant).await;
    assert!(r.broken.is_none(), "{r:?}");
    assert_eq!(r.entries, before + 100, "every append is in the chain once");
    let (seq, hash) = audit::head(&app.db, &tenant.to_string()).await.unwrap();
    assert_eq!((seq, hash), (r.entries, r.head_hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_is_sealed_into_the_chain_and_a_record_trail_shows_every_step_with_its_hash() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let staff = app
        .add_member(&tenant, "sam@acme.test", "Sam", Role::Staff)
        .await;
    let (_, other) = app.create_tenant("Globex").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let contact = app
        .create_contact(
            app.portal().await,
            serde_json::json!({"email": "ann@client.test", "firstname": "Ann", "lastname": "Lee"}),
        )
        .await;
    app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
        .await;
    let sealed = ferry_engine::evidence::seal_all(&app.db, &app.clock)
        .await
        .unwrap();
    let steps = app.count("SELECT COUNT(*) FROM run_steps").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE audit_seq IS NULL")
            .await,
        0,
        "every step attempt is in the chain ({sealed} sealed now, the rest by the worker)"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'run.step' AND record_id = '{contact}'"
        ))
        .await,
        steps,
        "one chained entry per step attempt, naming the record"
    );
    assert!(verify(&app, &tenant).await.broken.is_none());

    let page = client.get(&format!("/records/{contact}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for what in [
        "Event received",
        "Fetch the new contact",
        "Start the identity check",
        "Write the outcome back",
        "write-back",
        "Chain head",
    ] {
        assert!(page.body.contains(what), "the trail shows {what}");
    }
    let hash = app
        .json_rows(&format!(
            "SELECT hash FROM audit_events WHERE action = 'run.step' AND record_id = '{contact}'"
        ))
        .await[0][0]
        .clone()
        .unwrap();
    assert!(page.body.contains(&hash[..16]), "with the audit hashes");
    assert!(!page.body.contains("ann@client.test"), "no personal value");
    // Staff may not; another tenant finds nothing; an unknown record is 404.
    assert_eq!(
        app.login(&staff)
            .await
            .get(&format!("/records/{contact}"))
            .await
            .status,
        403
    );
    assert_eq!(
        app.login(&other)
            .await
            .get(&format!("/records/{contact}"))
            .await
            .status,
        404
    );
    assert_eq!(client.get("/records/999999999").await.status, 404);
    // The search form leads there.
    let found = client.get(&format!("/records?record=+{contact}+")).await;
    assert_eq!(
        found.location.as_deref(),
        Some(format!("/records/{contact}").as_str())
    );

    // The audit log filters by record and exports what it shows; the
    // export is itself audited.
    let log = client
        .get(&format!("/audit?record={contact}&action=run.step"))
        .await;
    assert_eq!(log.status, 200);
    assert!(log.body.contains("Ran a step"));
    let (status, csv) = client
        .get_bytes(&format!("/audit.csv?record={contact}"))
        .await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("chain_seq,at,actor,action"), "{csv}");
    assert_eq!(
        csv.lines().count() as i64,
        steps + 1,
        "a header and one row per entry for the record"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'audit.exported'")
            .await,
        1
    );
    let bad = client.get("/audit?from=yesterday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("Enter a date as YYYY-MM-DD."));
    let verified = client.get("/audit/verify").await;
    assert!(
        verified.body.contains("Verified."),
        "the chain verifies on the page"
    );
    // A tampered step entry shows on the page as the break it is.
    app.execute(&format!(
        "UPDATE audit_events SET details = REPLACE(details, '\"ok\"', '\"failed\"') WHERE action = 'run.step' AND record_id = '{contact}'"
    ))
    .await;
    let broken = client.get("/audit/verify").await;
    assert!(
        broken.body.contains("The chain is broken at entry"),
        "{}",
        broken.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn documentation_inventory_versions_and_reviews_follow_the_workflow() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let (_, other) = app.create_tenant("Globex").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let id = app.publish_reference(&client, &admin).await;

    // Publishing asks for a change note.
    let refused = client
        .submit(
            &format!("/workflows/{id}/publish"),
            &format!("/workflows/{id}/publish"),
            &[("note", "  ")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("Say in a sentence what changed and why")
    );

    let docs = client.get(&format!("/workflows/{id}/docs")).await;
    assert_eq!(docs.status, 200);
    for what in [
        "Fields mapped",
        "identity_verification_status",
        "Validation rules",
        "must be an email address",
        "Error handling",
        "Escalation path",
        "Personal: contact data",
        "Version 1",
    ] {
        assert!(docs.body.contains(what), "the documentation has {what}");
    }
    let inv = String::from_utf8(client.get_bytes("/inventory.csv").await.1).unwrap();
    assert!(inv.contains("HubSpot CRM"), "{inv}");
    assert!(inv.contains("identity_verification_status"), "{inv}");

    // An edit shows at once in both.
    let saved = client
        .submit(
            &format!("/workflows/{id}/docs"),
            &format!("/workflows/{id}/profile"),
            &[
                (
                    "outcome",
                    "Every new client is identity-checked within a day.",
                ),
                ("manual_step", "Checking passports by hand"),
                ("expected_weekly", "40"),
                ("escalation", "The compliance officer"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let renamed = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/rename"),
            &[("name", "Client onboarding checks")],
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let docs = client.get(&format!("/workflows/{id}/docs")).await;
    assert!(docs.body.contains("Client onboarding checks"));
    assert!(
        docs.body
            .contains("Every new client is identity-checked within a day.")
    );
    let md = String::from_utf8(
        client
            .get_bytes(&format!("/workflows/{id}/docs.md"))
            .await
            .1,
    )
    .unwrap();
    assert!(md.starts_with("# Client onboarding checks"), "{md}");
    assert!(md.contains("Beyond that: The compliance officer"), "{md}");
    let inv = String::from_utf8(client.get_bytes("/inventory.csv").await.1).unwrap();
    assert!(inv.contains("Client onboarding checks"), "{inv}");
    assert!(inv.contains("Checking passports by hand,40,"), "{inv}");
    let bad = client
        .submit(
            &format!("/workflows/{id}/docs"),
            &format!("/workflows/{id}/profile"),
            &[("expected_weekly", "lots")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("as a whole number"));

    // A second version, with its note; the diff shows both side by side.
    let published = client
        .submit(
            &format!("/workflows/{id}/publish"),
            &format!("/workflows/{id}/publish"),
            &[("note", "Republished after the rename, for the audit.")],
        )
        .await;
    assert_eq!(published.status, 303, "{}", published.body);
    let diff = client
        .get(&format!("/workflows/{id}/versions?a=1&b=2"))
        .await;
    assert_eq!(diff.status, 200);
    assert!(
        diff.body
            .contains("Republished after the rename, for the audit.")
    );
    assert!(diff.body.contains("Version 1") && diff.body.contains("Version 2"));
    assert_eq!(
        client
            .get(&format!("/workflows/{id}/versions?a=1&b=9"))
            .await
            .status,
        404
    );

    // Reviews: due 90 days after the first publish; the owner is reminded
    // when the clock passes it.
    let form = client.get(&format!("/workflows/{id}/review")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Measured:"));
    app.clock.advance(chrono::Duration::days(91));
    let mail = app.wait_for_mail(&admin.email, "is due").await;
    assert!(
        mail.body.contains(&format!("/workflows/{id}/review")),
        "{}",
        mail.body
    );
    // Two weeks later, unreviewed: the owner's review-overdue alert opens
    // (an incident, acknowledged and escalated like any other).
    app.clock.advance(chrono::Duration::days(
        ferry_core::alerts::REVIEW_GRACE_DAYS,
    ));
    let firing = app
        .wait_for_mail(&admin.email, "[Ferry] FIRING: the 90-day review is")
        .await;
    assert!(
        firing.body.contains(&format!("/workflows/{id}/review")),
        "{}",
        firing.body
    );
    // Three months on, the session has long ended: sign in again.
    let client = app.login(&admin).await;
    let alerts = client.get("/alerts").await;
    assert!(
        alerts.body.contains("Review overdue") && alerts.body.contains("days past its due date"),
        "an open incident on the alerts page: {}",
        alerts.body
    );
    let unanswered = client
        .submit(
            &format!("/workflows/{id}/review"),
            &format!("/workflows/{id}/review"),
            &[("delivering", "yes")],
        )
        .await;
    assert_eq!(unanswered.status, 422);
    assert!(unanswered.body.contains("Answer yes or no."));
    let no_notes = client
        .submit(
            &format!("/workflows/{id}/review"),
            &format!("/workflows/{id}/review"),
            &[
                ("delivering", "yes"),
                ("silent_errors", "yes"),
                ("manual_steps", "no"),
            ],
        )
        .await;
    assert_eq!(no_notes.status, 422, "a problem needs a note");
    let done = client
        .submit(
            &format!("/workflows/{id}/review"),
            &format!("/workflows/{id}/review"),
            &[
                ("delivering", "yes"),
                ("silent_errors", "no"),
                ("manual_steps", "no"),
                ("notes", "All good; volumes as expected."),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    app.clock.advance(chrono::Duration::minutes(2));
    app.wait_for_mail(&admin.email, "[Ferry] RESOLVED: review no longer overdue")
        .await;
    let log = client.get(&format!("/workflows/{id}/review")).await;
    assert!(
        log.body.contains("All good; volumes as expected."),
        "in the review log"
    );
    let hub = client.get("/compliance").await;
    assert!(hub.body.contains("Client onboarding checks"));
    assert!(!hub.body.contains("due now"), "reviewed: not due any more");

    // Another tenant gets 404 for each of them.
    let b = app.login(&other).await;
    for path in [
        "docs",
        "docs.md",
        "review",
        "versions",
        "evidence.zip",
        "publish",
    ] {
        assert_eq!(
            b.get(&format!("/workflows/{id}/{path}")).await.status,
            404,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_evidence_pack_verifies_and_fails_after_one_byte_is_changed() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    let id = app.publish_reference(&client, &admin).await;
    let (status, zip) = client
        .get_bytes(&format!("/workflows/{id}/evidence.zip"))
        .await;
    assert_eq!(status, 200);
    let key =
        ferry_engine::connections::derived_key(&app.master_key(), b"ferry evidence pack signature");
    let report = ferry_app::evidence::verify_pack(&zip, Some(&key)).unwrap();
    assert!(report.ok, "{:#?}", report.lines);
    for file in [
        "documentation.md",
        "versions.md",
        "versions.json",
        "reviews.json",
        "alerts.csv",
        "inventory.csv",
        "audit.csv",
        "audit-chain.txt",
    ] {
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.starts_with(&format!("{file}: ok"))),
            "{file}: {:#?}",
            report.lines
        );
    }
    let head = audit::head(&app.db, &admin.tenant.clone().unwrap().to_string())
        .await
        .unwrap();
    assert!(!report.chain_head.is_empty());
    assert!(head.0 > 0);

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("pack.zip");
    std::fs::write(&good, &zip).unwrap();
    let (code, out) = admin_cli(&app, &["verify-evidence", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("evidence pack verified"), "{out}");

    // One byte of the documentation changed.
    let at = zip
        .windows(b"## Fields mapped".len())
        .position(|w| w == b"## Fields mapped")
        .expect("the documentation is stored as is");
    let mut bad = zip.clone();
    bad[at + 3] = b'f';
    let report = ferry_app::evidence::verify_pack(&bad, Some(&key)).unwrap();
    assert!(!report.ok, "{:#?}", report.lines);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.starts_with("documentation.md: CHANGED")),
        "{:#?}",
        report.lines
    );
    let tampered = dir.path().join("tampered.zip");
    std::fs::write(&tampered, &bad).unwrap();
    let (code, out) = admin_cli(&app, &["verify-evidence", tampered.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("documentation.md: CHANGED"), "{out}");
    // Another installation's key does not match the signature.
    let report = ferry_app::evidence::verify_pack(&zip, Some(&[7u8; 32])).unwrap();
    assert!(!report.ok);
    // The tenant's pack, for a period; a reversed period is refused.
    let (status, _) = client
        .get_bytes("/evidence.zip?from=2020-01-01&to=2030-01-01")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        client
            .get("/evidence.zip?from=2030-01-01&to=2020-01-01")
            .await
            .status,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_purges_run_payloads_and_the_chain_still_verifies() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    app.create_contact(
        app.portal().await,
        serde_json::json!({"email": "ann@client.test", "firstname": "Ann", "lastname": "Lee"}),
    )
    .await;
    app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
        .await;
    ferry_engine::evidence::seal_all(&app.db, &app.clock)
        .await
        .unwrap();
    // The period is validated, then set (audited).
    let bad = client
        .submit(
            "/compliance",
            "/compliance/retention",
            &[("retention_days", "3")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body
            .contains("Enter a whole number of days from 7 to 3650.")
    );
    let ok = client
        .submit(
            "/compliance",
            "/compliance/retention",
            &[("retention_days", "7")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // Six days on nothing goes; eight days on the payloads do.
    let now = ferry_core::Clock::now(&app.clock);
    assert_eq!(
        ferry_engine::housekeeping::purge_expired(&app.db, now + chrono::Duration::days(6))
            .await
            .unwrap(),
        0
    );
    let purged =
        ferry_engine::housekeeping::purge_expired(&app.db, now + chrono::Duration::days(8))
            .await
            .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE input <> 'null' OR output <> 'null'")
            .await,
        0,
        "no step input or output left"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM runs WHERE context <> '' OR record_label IS NOT NULL OR purged_at IS NULL").await,
        0,
        "no run data or record name left"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound_events WHERE payload <> ''")
            .await,
        0,
        "no event payload left"
    );
    // What happened is still on record, and the chain verifies.
    assert!(
        app.count("SELECT COUNT(*) FROM run_steps WHERE status = 'ok'")
            .await
            >= 4
    );
    let r = verify(&app, &tenant).await;
    assert!(r.broken.is_none(), "{r:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'runs.payloads_purged'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.retention_changed'")
            .await,
        1
    );
    // The run page still opens.
    let run = app.json_rows("SELECT id FROM runs").await[0][0]
        .clone()
        .unwrap();
    assert_eq!(client.get(&format!("/runs/{run}")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_tenant_destroys_its_data_key_so_nothing_it_sealed_opens() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Doomed Partners").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    let vault = app.vault();
    let sealed = vault.seal(&tenant, b"a secret", "probe").await.unwrap();
    assert_eq!(
        vault.open(&tenant, &sealed, "probe").await.unwrap(),
        b"a secret"
    );
    let ciphertext = app
        .json_rows("SELECT secret_ciphertext FROM connections")
        .await[0][0]
        .clone()
        .unwrap();
    assert!(!ciphertext.is_empty());

    let op = app.create_operator("op@ferry.test").await;
    let ops = app.login(&op).await;
    let res = ops
        .submit(
            &format!("/operator/tenants/{tenant}"),
            &format!("/operator/tenants/{tenant}/delete"),
            &[("confirm_name", "Doomed Partners")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM tenant_keys WHERE tenant_id = '{tenant}'"
        ))
        .await,
        0,
        "the data key is gone"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM connections").await, 0);
    // A copy of a sealed secret (a backup, a leaked row) no longer opens:
    // not through a fresh vault, not through the app's own.
    assert!(app.vault().open(&tenant, &sealed, "probe").await.is_err());
    assert!(
        app.connections
            .vault()
            .open(&tenant, &sealed, "probe")
            .await
            .is_err()
    );
    // The deletion is in the platform's chain, which verifies.
    let platform = audit::verify_chain(&app.db, audit::PLATFORM_CHAIN)
        .await
        .unwrap();
    assert!(platform.broken.is_none(), "{platform:?}");
    assert!(platform.entries >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_publish_gate_passes_the_template_and_blocks_a_workflow_without_validation_or_idempotency()
 {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    // The template passes, and the evidence is stored with the version.
    let id = app.publish_reference(&client, &admin).await;
    let gate: serde_json::Value = serde_json::from_str(
        app.json_rows(&format!(
            "SELECT gate FROM workflow_versions WHERE workflow_id = '{id}' AND version = 1"
        ))
        .await[0][0]
            .as_deref()
            .expect("the checklist is stored with the version"),
    )
    .unwrap();
    assert_eq!(gate["passed"], true, "{gate:#}");
    let checks = gate["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 5);
    for c in checks {
        assert_eq!(c["passed"], true, "{c:#}");
        assert!(!c["evidence"].as_array().unwrap().is_empty(), "{c:#}");
    }
    let failed_call = checks.iter().find(|c| c["key"] == "failed_call").unwrap();
    let ev = failed_call["evidence"].to_string();
    assert!(
        ev.contains("→ 500") && ev.contains("→ 200"),
        "the outage and the retry are on record: {ev}"
    );
    let versions = client.get(&format!("/workflows/{id}/versions")).await;
    assert!(versions.body.contains("passed"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'workflow.gate_run'")
            .await,
        1
    );

    // Without its validation step, a missing field is written: blocked.
    let mut definition = ferry_core::workflow::reference_template();
    definition.steps.retain(|s| s.key != "validate_contact");
    let saved = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/definition"),
            &[("definition", &serde_json::to_string(&definition).unwrap())],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let blocked = client
        .submit(
            &format!("/workflows/{id}/publish"),
            &format!("/workflows/{id}/publish"),
            &[("note", "Drop the validation step.")],
        )
        .await;
    assert_eq!(blocked.status, 422, "{}", blocked.body);
    assert!(
        blocked
            .body
            .contains("Not published: 1 of 5 checks failed."),
        "{}",
        blocked.body
    );
    assert!(
        blocked.body.contains("No validation step stopped it"),
        "{}",
        blocked.body
    );
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM workflow_versions WHERE workflow_id = '{id}'"
        ))
        .await,
        1,
        "nothing was published"
    );

    // On a property-change trigger with nothing to recognise a processed
    // contact, a processed record runs again: blocked.
    let mut definition = ferry_core::workflow::reference_template();
    definition.trigger.event = "contact.propertyChange".into();
    let saved = client
        .submit(
            &format!("/workflows/{id}"),
            &format!("/workflows/{id}/definition"),
            &[("definition", &serde_json::to_string(&definition).unwrap())],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let blocked = client
        .submit(
            &format!("/workflows/{id}/publish"),
            &format!("/workflows/{id}/publish"),
            &[("note", "Run on every change.")],
        )
        .await;
    assert_eq!(blocked.status, 422, "{}", blocked.body);
    assert!(
        blocked.body.contains("nothing stops it"),
        "{}",
        blocked.body
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'workflow.gate_run'")
            .await,
        3,
        "each run of the checklist is audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_field_made_personal_is_redacted_from_run_records_and_none_can_be_made_less_strict() {
    let app = spawn_app().await;
    let (_, admin) = app.create_tenant("Acme").await;
    let (_, other) = app.create_tenant("Globex").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let page = client.get("/compliance/fields").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Country") && page.body.contains("identity data"));
    let weaker = client
        .submit(
            "/compliance/fields",
            "/compliance/fields",
            &[("hubspot.email", "none")],
        )
        .await;
    assert_eq!(weaker.status, 422);
    assert!(weaker.body.contains("never less strict"), "{}", weaker.body);
    let saved = client
        .submit(
            "/compliance/fields",
            "/compliance/fields",
            &[("hubspot.country", "contact")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let country = |body: &str| {
        let at = body
            .find(r#"name="hubspot.country""#)
            .expect("the country field");
        let end = at + body[at..].find("</select>").unwrap();
        body[at..end].to_owned()
    };
    let ours = country(&client.get("/compliance/fields").await.body);
    assert!(
        ours.contains(r#"<option value="contact" selected>"#),
        "{ours}"
    );
    // Another tenant's classes are its own.
    let theirs = country(&app.login(&other).await.get("/compliance/fields").await.body);
    assert!(
        theirs.contains(r#"<option value="none" selected>"#),
        "{theirs}"
    );
    app.create_contact(
        app.portal().await,
        serde_json::json!({"email": "kenji@client.test", "firstname": "Kenji", "lastname": "Sato", "country": "JP"}),
    )
    .await;
    app.wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 1)
        .await;
    let outputs = app
        .json_rows("SELECT output FROM run_steps WHERE step_key = 'fetch_contact'")
        .await;
    let output = outputs[0][0].clone().unwrap();
    assert!(output.contains("\"country\":\"[redacted]\""), "{output}");
    assert!(!output.contains("JP"), "{output}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'tenant.field_class_changed'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_periodic_verification_emails_every_operator_once_about_a_broken_chain() {
    let app = spawn_app().await;
    let (tenant, _) = app.create_tenant("Acme").await;
    append(&app.db, &tenant, 3, &app.clock).await;
    let op = app.create_operator("op@ferry.test").await;
    assert!(
        ferry_engine::evidence::verify_all(&app.db)
            .await
            .unwrap()
            .is_empty(),
        "every chain verifies"
    );
    app.execute(&format!(
        "UPDATE audit_events SET details = '{{}}' WHERE chain = '{tenant}' AND chain_seq = 2"
    ))
    .await;
    let broken = ferry_engine::evidence::verify_all(&app.db).await.unwrap();
    assert_eq!(broken.len(), 1);
    // What the worker's loop does each hour, with a mailer of its own.
    let mailer =
        ferry_engine::Mailer::new(app.db.clone(), std::sync::Arc::new(app.clock.clone()), true);
    let mut told = std::collections::HashSet::new();
    let sent = ferry_engine::evidence::alert_operators(&app.db, &mailer, &broken, &mut told)
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let again = ferry_engine::evidence::alert_operators(&app.db, &mailer, &broken, &mut told)
        .await
        .unwrap();
    assert_eq!(again, 0, "once per break");
    let mail = app
        .wait_for_mail(&op.email, "an audit chain failed verification")
        .await;
    assert!(mail.body.contains("broken at entry 2"), "{}", mail.body);
    assert!(mail.body.contains("ferry admin verify-audit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_worker_processes_seal_every_step_once_into_one_valid_chain() {
    let app = ferry_tests::spawn_app_with(ferry_tests::TestOptions {
        worker: false,
        ..ferry_tests::TestOptions::default()
    })
    .await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    app.connect_hubspot(&client).await;
    app.connect_sandbox_verification(&client).await;
    app.publish_reference(&client, &admin).await;
    let portal = app.portal().await;
    for i in 0..6 {
        app.create_contact(
            portal,
            serde_json::json!({"email": format!("c{i}@client.test"), "firstname": "Cli", "lastname": format!("Ent{i}")}),
        )
        .await;
    }
    let mut workers = [
        app.start_worker("worker1", &[("FERRY_LOG", "warn")]),
        app.start_worker("worker2", &[("FERRY_LOG", "warn")]),
    ];
    let done = app
        .wait_count("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'", 6)
        .await;
    let mut unsealed = -1;
    for _ in 0..100 {
        unsealed = app
            .count("SELECT COUNT(*) FROM run_steps WHERE audit_seq IS NULL")
            .await;
        if unsealed == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for w in &mut workers {
        w.kill().ok();
        w.wait().ok();
    }
    assert_eq!(done, 6);
    assert_eq!(unsealed, 0, "both workers sealed, nothing left");
    let steps = app.count("SELECT COUNT(*) FROM run_steps").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'run.step'")
            .await,
        steps,
        "each step attempt sealed exactly once"
    );
    let r = verify(&app, &tenant).await;
    assert!(r.broken.is_none(), "{r:?}");
}
