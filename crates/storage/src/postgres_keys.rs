//! API keys on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use emdp_app::ports::{ApiKey, KeyStore, NewApiKey, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::store_error;
use crate::postgres::PostgresStore;

const COLUMNS: &str = "id, name, role, prefix, hash, created_at, last_used_at, revoked_at";

fn key_row(row: &PgRow) -> Result<ApiKey, StoreError> {
    let role: String = row.try_get(2).map_err(store_error)?;
    Ok(ApiKey {
        id: row.try_get(0).map_err(store_error)?,
        name: row.try_get(1).map_err(store_error)?,
        role: role.parse().map_err(StoreError::Other)?,
        prefix: row.try_get(3).map_err(store_error)?,
        hash: row.try_get(4).map_err(store_error)?,
        created_at: row.try_get(5).map_err(store_error)?,
        last_used_at: row.try_get(6).map_err(store_error)?,
        revoked_at: row.try_get(7).map_err(store_error)?,
    })
}

fn sql(text: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text)
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn insert_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let row = sqlx::query(sql(format!(
            "INSERT INTO api_keys (name, role, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        )))
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.prefix)
        .bind(&key.hash)
        .bind(key.created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        key_row(&row)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(sql(format!("SELECT {COLUMNS} FROM api_keys ORDER BY id")))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(key_row).collect()
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(sql(format!("SELECT {COLUMNS} FROM api_keys WHERE hash = $1")))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(key_row).transpose()
    }

    async fn revoke_key(&self, name_or_id: &str, at: DateTime<Utc>) -> Result<ApiKey, StoreError> {
        let id: Option<i64> = name_or_id.parse().ok();
        let row = sqlx::query(sql(format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = (SELECT id FROM api_keys WHERE name = $2 UNION ALL SELECT id FROM api_keys WHERE id = $3 LIMIT 1) \
             RETURNING {COLUMNS}"
        )))
        .bind(at)
        .bind(name_or_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        row.as_ref().map(key_row).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn touch_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn any_key(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1::BIGINT FROM api_keys LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(found.is_some())
    }
}
