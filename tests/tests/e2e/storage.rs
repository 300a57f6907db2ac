//! Storage behaviour that spans processes.

use ferry_store::Db;
use ferry_store::test_support::RawSql;
use ferry_tests::{DbKind, db_kind, fresh_database_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_together_migrate_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await.unwrap();
    // Four pools stand for four processes (web, worker, two replicas).
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        starts.push(tokio::spawn(async move {
            let db = Db::connect(&url, 4).await?;
            db.migrate().await?;
            db.ping().await
        }));
    }
    for start in starts {
        start.await.unwrap().unwrap();
    }
    // And again, with the schema in place: a no-op.
    Db::connect(&url, 2).await.unwrap().migrate().await.unwrap();
}

/// PostgreSQL plans each execution for its values: a statement prepared
/// while the tables were empty must not keep a generic plan that finds a
/// run by its tenant instead of its id (each update then read every run of
/// the tenant, and throughput fell as the table grew).
#[tokio::test]
async fn postgres_connections_plan_each_statement_for_its_values() {
    if db_kind() != DbKind::Postgres {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await.unwrap();
    let db = Db::connect(&url, 2).await.unwrap();
    let raw = RawSql::through(&db);
    for _ in 0..3 {
        let rows = raw.text_rows("SHOW plan_cache_mode").await.unwrap();
        assert_eq!(rows, vec![vec![Some("force_custom_plan".to_owned())]]);
    }
}
