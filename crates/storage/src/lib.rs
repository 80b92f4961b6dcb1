//! emdp's storage adapters: the raw and curated stores behind
//! [`emdp_app::ports::RecordStore`], on SQLite (the embedded default: a file, no server) and on
//! PostgreSQL (production and scale). Both apply their versioned SQL migrations at start-up
//! and pass the same contract test suite.

mod error;
pub mod postgres;
mod rows;
pub mod sqlite;

use std::sync::Arc;

use emdp_app::ports::{RecordStore, StoreError};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The database used when `DATABASE_URL` is not set: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://emdp.db";

/// Opens the store named by `url` (`sqlite://PATH` or `postgres://...`), creating the
/// SQLite file if needed and applying pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn RecordStore>, StoreError> {
    match backend(url)? {
        Backend::Sqlite => Ok(Arc::new(SqliteStore::open(url).await?)),
        Backend::Postgres => Ok(Arc::new(PostgresStore::open(url).await?)),
    }
}

/// Applies pending migrations to the database named by `url` and returns the versions applied.
pub async fn migrate(url: &str) -> Result<Vec<i64>, StoreError> {
    match backend(url)? {
        Backend::Sqlite => SqliteStore::migrate_url(url).await,
        Backend::Postgres => PostgresStore::migrate_url(url).await,
    }
}

/// The database a URL names.
enum Backend {
    Sqlite,
    Postgres,
}

fn backend(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Unavailable(format!(
            "unsupported database URL '{}': use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        )))
    }
}

/// A database URL with its password hidden, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://emdp.db"), "sqlite://emdp.db");
    }
}
