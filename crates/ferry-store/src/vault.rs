//! The credential vault: envelope encryption with AES-256-GCM. Each tenant
//! has a random data key; the data key is stored wrapped (encrypted) by the
//! master key from the environment or a key file. Secrets are sealed with the
//! tenant's data key and bound (as associated data) to the row they belong
//! to, so a ciphertext copied to another row or tenant does not open.
//! Rotating the master key re-wraps the data keys; secrets stay as they are.

use crate::entities::tenant_key;
use crate::{Db, Exec, StoreError};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chrono::{DateTime, Utc};
use ferry_core::TenantId;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

const PREFIX: &str = "v1.";

/// The 256-bit master key, with a short id derived from it.
pub struct MasterKey {
    /// Zeroized when dropped.
    key: secrecy::SecretBox<[u8; 32]>,
    id: String,
}

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn new(key: [u8; 32]) -> Self {
        let id = hex::encode(Sha256::digest(Sha256::digest(key)))
            .get(..16)
            .unwrap_or_default()
            .to_owned();
        Self {
            key: secrecy::SecretBox::new(Box::new(key)),
            id,
        }
    }

    /// A fingerprint naming this key (not secret: a hash of a hash).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

fn seal_with(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<String, StoreError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let nonce: [u8; 12] = rand::random();
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| StoreError::Crypto("sealing failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(format!("{PREFIX}{}", B64.encode(out)))
}

fn open_with(key: &[u8; 32], sealed: &str, aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    let raw = sealed
        .strip_prefix(PREFIX)
        .and_then(|b| B64.decode(b).ok())
        .ok_or(StoreError::Crypto("not a sealed value"))?;
    if raw.len() < 12 + 16 {
        return Err(StoreError::Crypto("sealed value too short"));
    }
    let (nonce, ciphertext) = raw.split_at(12);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| {
            StoreError::Crypto("a sealed value did not open: wrong key, or moved from its row")
        })
}

/// Seals and opens tenants' secrets. Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    db: Db,
    master: Arc<MasterKey>,
    data_keys: Arc<Mutex<HashMap<String, [u8; 32]>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({:?})", self.master)
    }
}

impl Vault {
    /// A vault over `db` with the master key.
    pub fn new(db: Db, master: MasterKey) -> Self {
        Self {
            db,
            master: Arc::new(master),
            data_keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    async fn data_key(&self, tenant: &TenantId) -> Result<[u8; 32], StoreError> {
        if let Some(key) = self
            .data_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant.as_str())
        {
            return Ok(*key);
        }
        let aad = format!("tenant-key:{tenant}");
        let stored = tenant_key::Entity::find_by_id(tenant.to_string())
            .one(&self.db.conn)
            .await?;
        let key = match stored {
            Some(row) => self.unwrap_row(&row, &aad)?,
            None => {
                let fresh: [u8; 32] = rand::random();
                let now = Utc::now();
                let inserted = tenant_key::ActiveModel {
                    tenant_id: Set(tenant.to_string()),
                    wrapped_key: Set(seal_with(
                        self.master.key.expose_secret(),
                        &fresh,
                        aad.as_bytes(),
                    )?),
                    master_key_id: Set(self.master.id.clone()),
                    created_at: Set(now),
                    rotated_at: Set(now),
                }
                .insert(&self.db.conn)
                .await;
                match inserted {
                    Ok(_) => fresh,
                    // Another request created it first: use theirs.
                    Err(_) => {
                        let row = tenant_key::Entity::find_by_id(tenant.to_string())
                            .one(&self.db.conn)
                            .await?
                            .ok_or(StoreError::Crypto("tenant data key vanished"))?;
                        self.unwrap_row(&row, &aad)?
                    }
                }
            }
        };
        self.data_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.to_string(), key);
        Ok(key)
    }

    fn unwrap_row(&self, row: &tenant_key::Model, aad: &str) -> Result<[u8; 32], StoreError> {
        if row.master_key_id != self.master.id {
            return Err(StoreError::Crypto(
                "a tenant data key is wrapped by a different master key (FERRY_MASTER_KEY does not match this database)",
            ));
        }
        let bytes = open_with(
            self.master.key.expose_secret(),
            &row.wrapped_key,
            aad.as_bytes(),
        )?;
        bytes
            .try_into()
            .map_err(|_| StoreError::Crypto("a data key has the wrong length"))
    }

    /// Drops the tenant's data key from this process's memory (after the
    /// tenant is deleted: nothing it sealed opens again here).
    pub fn forget(&self, tenant: &TenantId) {
        self.data_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant.as_str());
    }

    /// Makes sure the tenant's data key exists (creating it if new), so a
    /// later seal inside a transaction writes nothing else.
    pub async fn prepare(&self, tenant: &TenantId) -> Result<(), StoreError> {
        self.data_key(tenant).await.map(|_| ())
    }

    /// Encrypts `plaintext` for `tenant`, bound to `aad` (e.g. the row id).
    pub async fn seal(
        &self,
        tenant: &TenantId,
        plaintext: &[u8],
        aad: &str,
    ) -> Result<String, StoreError> {
        let key = self.data_key(tenant).await?;
        seal_with(&key, plaintext, format!("{tenant}|{aad}").as_bytes())
    }

    /// A keyed hash of `value` for `tenant` (HMAC-SHA256 under a key
    /// derived from the tenant's data key, per `purpose`), hex: equal
    /// values match without the value being stored; another tenant's
    /// hashes of the same value differ; destroying the data key makes them
    /// meaningless.
    pub async fn keyed_hash(
        &self,
        tenant: &TenantId,
        purpose: &str,
        value: &str,
    ) -> Result<String, StoreError> {
        use hmac::{Hmac, Mac};
        let key = self.data_key(tenant).await?;
        let mut derive = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key)
            .map_err(|_| StoreError::Crypto("a data key of the wrong length"))?;
        derive.update(format!("ferry:keyed-hash:{purpose}").as_bytes());
        let derived = derive.finalize().into_bytes();
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&derived)
            .map_err(|_| StoreError::Crypto("a derived key of the wrong length"))?;
        mac.update(value.as_bytes());
        Ok(hex::encode(&mac.finalize().into_bytes()[..12]))
    }

    /// Decrypts what [`Vault::seal`] produced for the same tenant and `aad`.
    pub async fn open(
        &self,
        tenant: &TenantId,
        sealed: &str,
        aad: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let key = self.data_key(tenant).await?;
        open_with(&key, sealed, format!("{tenant}|{aad}").as_bytes())
    }
}

/// Re-wraps every tenant data key from `old` to `new`, in one transaction;
/// returns how many. Secrets sealed with the data keys are untouched.
pub async fn rotate_master_key(
    db: &Db,
    old: &MasterKey,
    new: &MasterKey,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let txn = db.begin_write().await?;
    let rows = tenant_key::Entity::find().all(&txn).await?;
    let count = rows.len();
    for row in rows {
        let aad = format!("tenant-key:{}", row.tenant_id);
        if row.master_key_id != old.id {
            return Err(StoreError::Crypto(
                "a tenant data key is not wrapped by the current master key",
            ));
        }
        let key = open_with(old.key.expose_secret(), &row.wrapped_key, aad.as_bytes())?;
        let mut active: tenant_key::ActiveModel = row.into();
        active.wrapped_key = Set(seal_with(new.key.expose_secret(), &key, aad.as_bytes())?);
        active.master_key_id = Set(new.id.clone());
        active.rotated_at = Set(now);
        active.update(&txn).await?;
    }
    txn.commit().await?;
    Ok(count)
}

/// Checks that every stored data key opens with `master` (at start-up, so
/// a wrong key is a clear error, not a failure on first use).
pub async fn verify_master_key(db: &Db, master: &MasterKey) -> Result<(), StoreError> {
    for row in tenant_key::Entity::find().all(&db.conn).await? {
        if row.master_key_id != master.id {
            return Err(StoreError::Crypto(
                "the master key does not match the one this database's data keys are wrapped with",
            ));
        }
        open_with(
            master.key.expose_secret(),
            &row.wrapped_key,
            format!("tenant-key:{}", row.tenant_id).as_bytes(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = [7u8; 32];
        let sealed = seal_with(&key, b"secret-token", b"row-1").unwrap();
        assert!(!sealed.contains("secret-token"));
        assert_eq!(open_with(&key, &sealed, b"row-1").unwrap(), b"secret-token");
        assert!(
            open_with(&key, &sealed, b"row-2").is_err(),
            "moved to another row"
        );
        assert!(
            open_with(&[8u8; 32], &sealed, b"row-1").is_err(),
            "another key"
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(open_with(&key, &tampered, b"row-1").is_err(), "tampered");
        // A fresh nonce each time.
        assert_ne!(
            seal_with(&key, b"x", b"r").unwrap(),
            seal_with(&key, b"x", b"r").unwrap()
        );
    }

    #[test]
    fn master_key_ids_differ_and_do_not_reveal_the_key() {
        let a = MasterKey::new([1u8; 32]);
        let b = MasterKey::new([2u8; 32]);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        assert!(!format!("{a:?}").contains("0101"));
    }
}
