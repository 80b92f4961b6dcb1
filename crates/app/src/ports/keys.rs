//! API keys: who may call the HTTP API, with which role. Only a SHA-256 hash of each key is
//! stored; the key itself is shown once, when it is created.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::VariantArray;

use crate::ports::StoreError;

/// What a key may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::Display, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Reads (GET).
    Reader,
    /// Reads, validates and ingests.
    Ingester,
    /// Everything: updates, deletions, duplicate resolution, alert rules, key management.
    Admin,
}

impl Role {
    /// The role's name as stored and shown (`reader`, `ingester`, `admin`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl FromStr for Role {
    type Err = String;

    /// Parses a role's name, trimmed and case-insensitively.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim().to_ascii_lowercase();
        Role::VARIANTS
            .iter()
            .copied()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| format!("unknown role '{name}': expected reader, ingester or admin"))
    }
}

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The first characters of the key, to recognise it (`emdp_AbCd`).
    pub prefix: String,
    /// The SHA-256 of the key, lowercase hex.
    #[serde(skip)]
    pub hash: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used (updated at most about once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Its unique name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The first characters of the key.
    pub prefix: String,
    /// The SHA-256 of the key, lowercase hex.
    pub hash: String,
    /// When it is created.
    pub created_at: DateTime<Utc>,
}

/// Where keys are kept.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new key. A name already taken is [`StoreError::Conflict`].
    async fn insert_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError>;
    /// Every key, revoked ones included, in id order.
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// The key with this hash, if any (revoked or not).
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Revokes the key with this name (or, when `name_or_id` is a number, this id) and returns
    /// it; an unknown key is [`StoreError::NotFound`]. Revoking twice keeps the first time.
    async fn revoke_key(&self, name_or_id: &str, at: DateTime<Utc>) -> Result<ApiKey, StoreError>;
    /// Records a use of the key.
    async fn touch_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Whether any key (revoked or not) exists: auth is on by default when one does.
    async fn any_key(&self) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_pinned() {
        for (role, name) in [(Role::Reader, "reader"), (Role::Ingester, "ingester"), (Role::Admin, "admin")] {
            assert_eq!(role.as_str(), name, "stored with every key: never change it");
            assert_eq!(role.to_string(), name);
            assert_eq!(serde_json::to_value(role).unwrap(), name, "serde and strum agree");
            assert_eq!(format!(" {} ", name.to_uppercase()).parse::<Role>(), Ok(role));
        }
        assert_eq!("Root ".parse::<Role>(), Err("unknown role 'root': expected reader, ingester or admin".to_owned()));
    }
}
