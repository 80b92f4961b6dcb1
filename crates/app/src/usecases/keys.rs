//! Use case: API keys (`emdp keys`, the HTTP API's authentication).
//!
//! A key is 32 random bytes shown once as `emdp_<base64url>`; only its SHA-256 (hex) is
//! stored, with the first characters for display. A presented key is hashed, looked up by
//! hash, and the hashes are compared again in constant time. Its last use is written at most
//! once a minute per key, so authentication does not cost a write per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ports::{ApiKey, KeyStore, NewApiKey, Role, StoreError};

/// Every key starts with this.
pub const KEY_PREFIX: &str = "emdp_";

/// How many characters of a key are kept for display (`emdp_` and 8 more).
const DISPLAY_CHARS: usize = KEY_PREFIX.len() + 8;

/// A key's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The name is empty, too long or contains control characters.
    #[error("invalid key name: {0}")]
    InvalidName(String),
    /// A key with this name exists already.
    #[error("a key named '{0}' exists already")]
    NameTaken(String),
    /// No such key.
    #[error("no key named or numbered '{0}'")]
    UnknownKey(String),
    /// The random source failed.
    #[error("cannot generate a key: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// A key just created: the only time the key itself is known.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// The secret, `emdp_<base64url>`: show it once.
    pub secret: String,
}

/// Who a valid key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id.
    pub id: i64,
    /// The key's name.
    pub name: String,
    /// The key's role.
    pub role: Role,
}

/// The SHA-256 of `secret` as lowercase hex.
pub fn hash_key(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
    }
    hex
}

/// A fresh random key: 32 bytes from the operating system, base64url without padding.
pub fn generate_key() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| KeyError::Random(err.to_string()))?;
    Ok(format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

fn check_name(name: &str) -> Result<String, KeyError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(KeyError::InvalidName("the name is empty".into()));
    }
    if name.chars().count() > 64 {
        return Err(KeyError::InvalidName("longer than 64 characters".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(KeyError::InvalidName("contains a control character".into()));
    }
    Ok(name.to_owned())
}

/// Creates, lists, revokes and checks keys.
#[derive(Clone)]
pub struct KeyService {
    store: Arc<dyn KeyStore>,
    touched: Arc<Mutex<HashMap<i64, DateTime<Utc>>>>,
}

impl KeyService {
    /// The use case over `store`.
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        KeyService { store, touched: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Creates a key named `name` with `role`; the returned secret is not stored anywhere.
    pub async fn create(&self, name: &str, role: Role) -> Result<CreatedKey, KeyError> {
        let name = check_name(name)?;
        let secret = generate_key()?;
        let new = NewApiKey {
            name: name.clone(),
            role,
            prefix: secret.chars().take(DISPLAY_CHARS).collect(),
            hash: hash_key(&secret),
            created_at: Utc::now(),
        };
        match self.store.insert_key(new).await {
            Ok(key) => Ok(CreatedKey { key, secret }),
            Err(StoreError::Conflict(_)) => Err(KeyError::NameTaken(name)),
            Err(err) => Err(KeyError::Store(err)),
        }
    }

    /// Every key, revoked ones included.
    pub async fn list(&self) -> Result<Vec<ApiKey>, KeyError> {
        self.store.list_keys().await.map_err(KeyError::Store)
    }

    /// Revokes the key named (or numbered) `name_or_id`.
    pub async fn revoke(&self, name_or_id: &str) -> Result<ApiKey, KeyError> {
        match self.store.revoke_key(name_or_id.trim(), Utc::now()).await {
            Ok(key) => Ok(key),
            Err(StoreError::NotFound) => Err(KeyError::UnknownKey(name_or_id.trim().to_owned())),
            Err(err) => Err(KeyError::Store(err)),
        }
    }

    /// Whether any key exists.
    pub async fn any(&self) -> Result<bool, KeyError> {
        self.store.any_key().await.map_err(KeyError::Store)
    }

    /// The owner of `secret`, or `None` when the key is unknown or revoked. Records the use
    /// (at most once a minute per key).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, KeyError> {
        if !secret.starts_with(KEY_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let hash = hash_key(secret);
        let Some(key) = self.store.key_by_hash(&hash).await.map_err(KeyError::Store)? else {
            return Ok(None);
        };
        if !bool::from(key.hash.as_bytes().ct_eq(hash.as_bytes())) || key.revoked_at.is_some() {
            return Ok(None);
        }
        let now = Utc::now();
        let due = {
            let mut touched = self.touched.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let last = touched.get(&key.id).copied().or(key.last_used_at);
            let due = last.is_none_or(|last| now - last >= TOUCH_EVERY);
            if due {
                touched.insert(key.id, now);
            }
            due
        };
        if due {
            // A failed touch must not refuse a valid key.
            let _ = self.store.touch_key(key.id, now).await;
        }
        Ok(Some(Principal { id: key.id, name: key.name, role: key.role }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed_as_hex() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Reader < Role::Ingester && Role::Ingester < Role::Admin);
    }
}
