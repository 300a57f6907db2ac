//! Storage: sea-orm entities and the queries Ferry runs. This is the only
//! crate that builds queries; every function over tenant-owned rows takes
//! the `TenantId` first, so a handler cannot forget to scope a lookup.

mod db;
pub mod entities;
mod error;

pub mod alerts;
pub mod audit;
pub mod connections;
pub mod emails;
pub mod inbound;
pub mod invites;
pub mod login_attempts;
pub mod metrics;
pub mod runs;
pub mod sessions;
pub mod system;
pub mod tenants;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod users;
pub mod vault;
pub mod workflows;

pub use db::{Backend, Db, Exec, Tx};
pub use error::StoreError;

/// The hex SHA-256 of a secret token: what is stored instead of the token.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh 256-bit random token, hex encoded, for links and sessions.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}
