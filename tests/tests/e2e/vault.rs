//! The vault's master key rotation and the rate limits, against the real app.

use ferry_connectors::CallContext;
use ferry_connectors::{Connector, HttpClient, NetworkPolicy, RateLimiter};
use ferry_core::catalog::ConnectorKey;
use ferry_tests::{DbKind, db_kind, redis_url, spawn_app};
use std::time::Duration;

#[tokio::test]
async fn rotating_the_master_key_rewraps_data_keys_and_retires_the_old_key() {
    let app = spawn_app().await;
    let (tenant, admin) = app.create_tenant("Acme").await;
    let client = app.login(&admin).await;
    let (id, key) = app.connect_verification(&client).await;
    let old_vault = app.vault();
    let old_key_text = std::fs::read_to_string(app.data_dir.path().join("master.key")).unwrap();

    let data_dir = app.data_dir.path().display().to_string();
    let settings = ferry::Settings::from_pairs([
        ("database_url", app.database_url.as_str()),
        ("data_dir", data_dir.as_str()),
    ])
    .unwrap();
    let rotation = ferry::rotate_master_key(&settings).await.unwrap();
    assert_eq!(rotation.rewrapped, 1);
    let new_key_text = std::fs::read_to_string(app.data_dir.path().join("master.key")).unwrap();
    assert_ne!(new_key_text, old_key_text);
    assert!(!app.data_dir.path().join("master.key.new").exists());

    // The new key opens the same secret; the old one no longer matches.
    let creds = ferry_store::connections::with_credentials(&app.db, &app.vault(), &tenant, &id)
        .await
        .unwrap()
        .1;
    assert_eq!(creds.api_key(), Some(key.as_str()));
    let old_master = {
        use base64::Engine;
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(old_key_text.trim())
            .unwrap()
            .try_into()
            .unwrap();
        ferry_store::vault::MasterKey::new(bytes)
    };
    assert!(
        ferry_store::vault::verify_master_key(&app.db, &old_master)
            .await
            .is_err()
    );
    drop(old_vault);
    // A process started with the old key refuses to start.
    let stale = ferry::Settings::from_pairs([
        ("database_url", app.database_url.as_str()),
        ("data_dir", data_dir.as_str()),
        ("master_key", old_key_text.trim()),
        ("bind", "127.0.0.1:0"),
    ])
    .unwrap();
    let err = ferry::build(
        &stale,
        std::sync::Arc::new(ferry_core::SystemClock),
        ferry::Roles {
            web: false,
            worker: true,
        },
    )
    .await
    .err()
    .expect("refused");
    assert!(format!("{err:#}").contains("master key"), "{err:#}");
}

async fn hubspot_context(app: &ferry_tests::TestApp, limiter: RateLimiter) -> CallContext {
    let (tenant, admin) = app
        .create_tenant(&format!("Storm {}", rand::random::<u16>()))
        .await;
    let client = app.login(&admin).await;
    let id = app.connect_hubspot(&client).await;
    let creds = app.credentials(&tenant, &id).await;
    let origin = app.address.trim_start_matches("http://").to_owned();
    CallContext {
        connection_id: id.to_string(),
        base_url: format!("{}/sandbox/hubspot", app.address).parse().unwrap(),
        credentials: creds,
        http: HttpClient::new(
            NetworkPolicy {
                allow_private: false,
                allowed_origins: vec![origin],
            },
            Duration::from_secs(10),
        )
        .unwrap(),
        limiter,
        idempotency_key: None,
        log: Default::default(),
        rate_limit: None,
    }
}

async fn storm(ctx: CallContext, calls: usize, workers: usize) {
    let hubspot = ferry_connectors::hubspot::HubSpot;
    assert_eq!(hubspot.def().key, ConnectorKey::HubSpot);
    let per_worker = calls / workers;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                ferry_connectors::hubspot::HubSpot
                    .test(&ctx)
                    .await
                    .expect("call under the limit");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn portal_stats(app: &ferry_tests::TestApp) -> Vec<serde_json::Value> {
    app.json("/sandbox/hubspot/admin/portals")
        .await
        .as_array()
        .unwrap()
        .clone()
}

// About 100 seconds: 1,000 calls at HubSpot's 100 per 10 s. It exercises the
// limiter and the simulator, not the database, so it runs in the SQLite pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_1000_calls_never_exceeds_100_per_10_seconds_at_hubspot() {
    if db_kind() == DbKind::Postgres {
        eprintln!("storm test runs in the SQLite pass only (it does not touch the database)");
        return;
    }
    let app = spawn_app().await;
    let ctx = hubspot_context(&app, RateLimiter::memory()).await;
    storm(ctx, 1000, 50).await;
    let stats = portal_stats(&app).await;
    let p = &stats[0];
    assert_eq!(p["rejected429"], 0, "{p}");
    assert!(p["maxInTenSecondWindow"].as_u64().unwrap() <= 100, "{p}");
    assert!(p["accepted"].as_u64().unwrap() >= 1000, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_sharing_redis_share_one_limit() {
    if db_kind() == DbKind::Postgres {
        eprintln!("shared-limit test runs in the SQLite pass only");
        return;
    }
    let app = spawn_app().await;
    let prefix = format!("ferry-test-{:x}:", rand::random::<u64>());
    let client = redis::Client::open(redis_url()).unwrap();
    // Two limiters stand for two Ferry processes.
    let ctx = hubspot_context(&app, RateLimiter::redis(client.clone(), &prefix)).await;
    let mut other = ctx.clone();
    other.limiter = RateLimiter::redis(client, &prefix);
    let (a, b) = tokio::join!(storm(ctx, 150, 10), storm(other, 150, 10));
    let _ = (a, b);
    let p = &portal_stats(&app).await[0];
    assert_eq!(p["rejected429"], 0, "{p}");
    assert!(p["maxInTenSecondWindow"].as_u64().unwrap() <= 100, "{p}");
    assert!(p["accepted"].as_u64().unwrap() >= 300, "{p}");
}
