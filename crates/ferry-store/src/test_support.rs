//! Raw SQL for end-to-end tests that inspect or tamper with rows, so the
//! test crate needs no ORM of its own. Behind the `test-support` feature:
//! no production build carries it.

use crate::StoreError;
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
