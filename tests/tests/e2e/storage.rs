//! Storage behaviour that spans processes.

use ferry_store::Db;
use ferry_tests::fresh_database_url;

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
