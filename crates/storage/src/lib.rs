//! emdp's storage adapters: the raw and curated stores behind
//! [`emdp_app::ports::RecordStore`], on SQLite (the embedded default: a file, no server) and on
//! PostgreSQL (production and scale). Both apply their versioned SQL migrations at start-up
//! and pass the same contract test suite.

/// The admissions of raw rows that repeat a kept version instead of being one, as an SQL list:
/// `x.admission NOT IN repeats!()` selects the kept versions (checked against
/// [`emdp_domain::Admission::keeps_version`] by a test below).
macro_rules! repeats {
    () => {
        "('exact', 'redelivered')"
    };
}

mod alerts_sql;
mod dead_letters_sql;
mod error;
mod pool;
pub mod postgres;
mod quality_sql;
mod rows;
mod sql;
pub mod sqlite;
// The two modules that call SQLite's C API (rusqlite on sqlx's handle, aggregate callbacks):
// the workspace denies unsafe code everywhere else.
#[allow(unsafe_code)]
mod sqlite_bulk;
#[allow(unsafe_code)]
mod sqlite_functions;
mod store;
mod url;

use std::sync::Arc;

use emdp_app::ports::{
    AlertStore, AnalyticsStore, DeadLetterStore, DuplicateStore, KeyStore, QualityStore, RecordStore, StoreError,
};

pub use pool::{DEFAULT_ACQUIRE_TIMEOUT, OpenOptions, io_reason};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
use store::SqlStore;
pub use url::{DatabaseUrl, DatabaseUrlError};

/// The database used when `DATABASE_URL` is not set: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://emdp.db";

/// Opens the store named by `url` (`sqlite://PATH` or `postgres://...`), creating the
/// SQLite file if needed and applying pending migrations.
pub async fn open(url: &str) -> Result<Arc<dyn RecordStore>, StoreError> {
    Ok(open_stores(url).await?.records)
}

/// Every port on one database, sharing one connection pool.
#[derive(Clone)]
pub struct Stores {
    /// The raw and curated stores.
    pub records: Arc<dyn RecordStore>,
    /// The analytical views (VALID records only).
    pub analytics: Arc<dyn AnalyticsStore>,
    /// The quality report's aggregates.
    pub quality: Arc<dyn QualityStore>,
    /// Conflict groups and resolution decisions.
    pub duplicates: Arc<dyn DuplicateStore>,
    /// The API keys.
    pub keys: Arc<dyn KeyStore>,
    /// Alert rules, alerts, their event log and webhook deliveries.
    pub alerts: Arc<dyn AlertStore>,
    /// MQTT messages given up on, kept raw with their error.
    pub dead_letters: Arc<dyn DeadLetterStore>,
}

/// Opens the database named by `url` like [`open`] and returns every port over one pool.
pub async fn open_stores(url: &str) -> Result<Stores, StoreError> {
    open_stores_with(&parsed(url)?, &OpenOptions::default()).await
}

/// Opens the database named by `url` as `options` say (whether a missing SQLite file is
/// created, how long a request waits for a connection), applies pending migrations and
/// returns every port over one pool.
pub async fn open_stores_with(url: &DatabaseUrl, options: &OpenOptions) -> Result<Stores, StoreError> {
    if url.is_postgres() {
        Ok(Stores::over(PostgresStore::open(url, options).await?))
    } else {
        Ok(Stores::over(SqliteStore::open(url, options).await?))
    }
}

/// `url` parsed, or why not as a store error.
fn parsed(url: &str) -> Result<DatabaseUrl, StoreError> {
    DatabaseUrl::parse(url).map_err(|err| StoreError::Unavailable(err.to_string()))
}

impl Stores {
    /// Every port on one backend.
    fn over<B: sql::Backend>(backend: B) -> Stores
    where
        SqlStore<B>: RecordStore,
    {
        let store = Arc::new(SqlStore(backend));
        Stores {
            records: store.clone(),
            analytics: store.clone(),
            quality: store.clone(),
            duplicates: store.clone(),
            alerts: store.clone(),
            dead_letters: store.clone(),
            keys: store,
        }
    }
}

/// Applies pending migrations to the database named by `url` (creating a missing SQLite
/// file) and returns the versions applied.
pub async fn migrate(url: &DatabaseUrl) -> Result<Vec<i64>, StoreError> {
    let options = OpenOptions::default();
    if url.is_postgres() {
        applied(PostgresStore::open(url, &options).await?).await
    } else {
        applied(SqliteStore::open(url, &options).await?).await
    }
}

/// Every migration applied to the database of a backend just opened (which applied the
/// pending ones); closes its pool.
async fn applied<B: sql::Backend>(backend: B) -> Result<Vec<i64>, StoreError> {
    use sql::Cols;
    let store = SqlStore(backend);
    let sql = store.sql("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version", Vec::new());
    let versions = store.rows(&sql).await?.iter().map(|row| row.int(0)).collect();
    sql::Backend::pool(&store.0).close().await;
    versions
}

/// A database URL with its passwords hidden, for messages and logs: the one in its user
/// information (`postgres://u:***@h/db`) and any given as a query parameter
/// (`?password=***`, `&sslpassword=***`).
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match base[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
            None => base.to_owned(),
        },
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if ["password", "sslpassword"].iter().any(|secret| key.eq_ignore_ascii_case(secret)) => {
                    format!("{key}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://emdp.db"), "sqlite://emdp.db");
    }

    #[test]
    fn redacts_passwords_given_as_query_parameters() {
        assert_eq!(redact("postgres://u@h/db?password=secret"), "postgres://u@h/db?password=***");
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=x"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://u:a@h/db?password=b&application_name=emdp"),
            "postgres://u:***@h/db?password=***&application_name=emdp"
        );
        assert_eq!(redact("postgres://h/db?sslpassword=k&user=u"), "postgres://h/db?sslpassword=***&user=u");
        assert_eq!(redact("postgres://u@h/db?sslmode=require"), "postgres://u@h/db?sslmode=require");
        assert_eq!(redact("sqlite://emdp.db?mode=rwc"), "sqlite://emdp.db?mode=rwc");
    }

    #[test]
    fn repeats_are_the_admissions_that_keep_no_version() {
        use emdp_domain::Admission;
        let names: Vec<String> = Admission::ALL
            .into_iter()
            .filter(|admission| !admission.keeps_version())
            .map(|admission| format!("'{}'", admission.as_str()))
            .collect();
        assert_eq!(repeats!(), format!("({})", names.join(", ")));
    }
}
