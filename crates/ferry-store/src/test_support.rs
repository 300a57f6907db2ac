//! For tests only, behind the `test-support` feature (no production build
//! carries it): raw SQL for end-to-end tests that inspect or tamper with
//! rows, so the test crate needs no ORM of its own, and a seeded in-memory
//! database for the store's and the engine's unit tests.

use crate::vault::{MasterKey, Vault};
use crate::{Db, StoreError, tenants, users};
use chrono::{DateTime, Utc};
use ferry_core::{EmailAddress, Role, TenantId, TenantName, UserId};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

/// A connection of its own to a test's database.
#[derive(Debug, Clone)]
pub struct RawSql {
    conn: DatabaseConnection,
}

impl RawSql {
    /// Connects to `url` (the app's database).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Database::connect(url).await?,
        })
    }

    /// Statements through the app's own pool (its connections' settings).
    pub fn through(db: &Db) -> Self {
        Self {
            conn: db.conn.clone(),
        }
    }

    /// Runs statements (tests that tamper).
    pub async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_unprepared(sql).await?;
        Ok(())
    }

    /// The number a `SELECT COUNT(*) …` answers.
    pub async fn count(&self, sql: &str) -> Result<i64, StoreError> {
        let backend = self.conn.get_database_backend();
        let row = self
            .conn
            .query_one_raw(Statement::from_string(backend, sql))
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }

    /// Rows of a query whose columns are all text (or null).
    pub async fn text_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let backend = self.conn.get_database_backend();
        let rows = self
            .conn
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (0..)
                    .map_while(|i| r.try_get_by_index::<Option<String>>(i).ok())
                    .collect()
            })
            .collect())
    }
}

/// An in-memory database with two tenants and an admin of the first.
#[derive(Debug)]
pub struct Seeded {
    /// The database (SQLite in memory, migrated).
    pub db: Db,
    /// The tenant under test.
    pub tenant: TenantId,
    /// Another tenant, for isolation checks.
    pub other: TenantId,
    /// An admin of `tenant`.
    pub owner: UserId,
    /// A vault over the database.
    pub vault: Vault,
}

/// Seeds a fresh in-memory database at `now`.
pub async fn seeded(now: DateTime<Utc>) -> Result<Seeded, StoreError> {
    let db = Db::connect("sqlite::memory:", 1).await?;
    db.migrate().await?;
    let name = |n: &str| TenantName::parse("name", n).map_err(|e| StoreError::Conflict(e.message));
    let tenant = tenants::create(&db, &name("Acme")?, now).await?.id;
    let other = tenants::create(&db, &name("Other")?, now).await?.id;
    let email = EmailAddress::parse("email", "owner@acme.test")
        .map_err(|e| StoreError::Conflict(e.message))?;
    let owner = users::create_member(
        &db,
        &tenant,
        &email,
        "Owner",
        "hash".into(),
        Role::Admin,
        now,
    )
    .await?
    .id;
    let vault = Vault::new(db.clone(), MasterKey::new([3u8; 32]));
    Ok(Seeded {
        db,
        tenant,
        other,
        owner,
        vault,
    })
}
