//! What can go wrong in storage, in terms the web layer maps to HTTP.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row in the caller's tenant (also: it exists in another tenant).
    #[error("not found")]
    NotFound,
    /// The change breaks a rule; the message says which, for the user.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    /// Sealing or opening a secret failed (never carries the secret).
    #[error("vault: {0}")]
    Crypto(&'static str),
    /// A stored value no longer parses: the row was changed outside Ferry.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    /// The database could not be reached for a write (its writer stopped:
    /// the process is shutting down).
    pub fn unavailable(what: &str) -> Self {
        Self::Db(sea_orm::DbErr::Custom(what.to_owned()))
    }
}
