//! The end-to-end harness. `spawn_app()` starts the real application (the
//! same `ferry::build` as `ferry serve`) on port 0 with its own database — a
//! fresh SQLite file, or a fresh PostgreSQL database when
//! `FERRY_TEST_DB=postgres` — its own SMTP server that captures mail, and a
//! clock the test can move.
//!
//! The harness is test code under the workspace lints; its helpers assert
//! with `expect`, which is a test failing with its reason.
#![expect(
    clippy::expect_used,
    reason = "test harness: a failed expectation is a failed test, with its reason"
)]

mod app;
mod client;
mod fixtures;
mod processes;
mod receivers;
pub mod smtp;

use anyhow::Context;
use std::sync::{Arc, Mutex, OnceLock};

pub use app::{TestApp, TestOptions, spawn_app, spawn_app_with};
pub use client::{Page, TestClient, assert_escaped, escaped};
pub use fixtures::Account;
pub use processes::ferry_bin;
pub use receivers::{Received, Receiver, Request, receiver, wait_for};
pub use smtp::{CapturedMail, SmtpSink};

/// Which database the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// A fresh SQLite file per test (the default).
    Sqlite,
    /// A fresh PostgreSQL database per test.
    Postgres,
}

/// `FERRY_TEST_DB=postgres` switches the whole suite to PostgreSQL.
pub fn db_kind() -> DbKind {
    match std::env::var("FERRY_TEST_DB").as_deref() {
        Ok("postgres") => DbKind::Postgres,
        _ => DbKind::Sqlite,
    }
}

/// The PostgreSQL server tests create databases on.
pub fn postgres_base_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The Redis server for tests that need one.
pub fn redis_url() -> String {
    std::env::var("FERRY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Every log line the app wrote during the test run (the subscriber is
/// process-wide), so tests can look for request ids or leaked secrets.
pub fn captured_logs() -> String {
    LOGS.get()
        .map(|buf| {
            String::from_utf8_lossy(
                &buf.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
            .into_owned()
        })
        .unwrap_or_default()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn init_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,sqlx=warn,sea_orm=warn,actix_server=warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// A URL for a new, empty database of the suite's kind: a file in `dir`
/// (SQLite) or a freshly created PostgreSQL database.
pub async fn fresh_database_url(dir: &std::path::Path) -> anyhow::Result<String> {
    Ok(match db_kind() {
        DbKind::Sqlite => format!("sqlite://{}", dir.join("ferry.db").display()),
        DbKind::Postgres => {
            let name = format!("ferry_test_{:016x}", rand::random::<u64>());
            ferry_store::Db::create_postgres_database(&postgres_base_url(), &name)
                .await
                .context("creating a database on PostgreSQL (FERRY_TEST_POSTGRES_URL)")?
        }
    })
}
