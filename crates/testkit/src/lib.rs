//! Shared test fixtures: every test gets its own fresh database, so tests run in parallel.
//!
//! - [`sqlite`]: a new SQLite file in a temporary directory.
//! - [`postgres`]: a new PostgreSQL database on the server named by `EMDP_TEST_POSTGRES_URL`
//!   (set by `scripts/test`); `None` (with a printed notice) when the variable is unset, so a
//!   laptop without PostgreSQL skips those tests. CI sets it and fails when the server is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use emdp_app::ports::RecordStore;
use sqlx::Connection;

/// A store on a fresh database, and what keeps that database alive.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn RecordStore>,
    /// The database URL, for tests that open a second connection or run the CLI on it.
    pub url: String,
    /// Removes the SQLite file's directory when dropped.
    _dir: Option<tempfile::TempDir>,
    /// Drops the PostgreSQL database when dropped.
    _database: Option<DropDatabase>,
}

/// Drops a test database (terminating its connections) when the test ends.
struct DropDatabase {
    admin_url: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await
                    .ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("emdp.db").display());
    let store = emdp_storage::open(&url).await.expect("open SQLite store");
    TestStore { store, url, _dir: Some(dir), _database: None }
}

/// The PostgreSQL server tests use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("EMDP_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())
}

/// A brand-new, empty PostgreSQL database (its URL, and a guard that drops it), or `None`
/// when no server is configured.
async fn postgres_database() -> Option<(String, DropDatabase)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(admin_url) = postgres_url() else {
        eprintln!("NOTICE: EMDP_TEST_POSTGRES_URL is not set: skipping a PostgreSQL test");
        return None;
    };
    let name = format!(
        "emdp_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    Some((url, DropDatabase { admin_url, name }))
}

/// A store on a new PostgreSQL database, or `None` when no server is configured.
pub async fn postgres() -> Option<TestStore> {
    let (url, guard) = postgres_database().await?;
    let store = emdp_storage::open(&url).await.expect("open PostgreSQL store");
    Some(TestStore { store, url, _dir: None, _database: Some(guard) })
}
