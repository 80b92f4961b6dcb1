//! Shared test fixtures: every test gets its own fresh database, so tests run in parallel.
//!
//! - [`sqlite`]: a new SQLite file in a temporary directory.
//! - [`postgres`]: a new PostgreSQL database on the server named by `EMDP_TEST_POSTGRES_URL`
//!   (set by `scripts/test`); without the variable it panics: a PostgreSQL test that cannot
//!   run fails, and is never counted as passed.
//! - [`every_backend!`]: one test per backend (SQLite, PostgreSQL) for each of a list of async
//!   test functions; [`needs_postgres!`] for a hand-written PostgreSQL test. PostgreSQL
//!   tests are `#[ignore]`d, so that a plain `cargo test` reports them as skipped;
//!   `scripts/test` runs them (`--run-ignored all`) when PostgreSQL is up.

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
fn postgres_url() -> Option<String> {
    std::env::var("EMDP_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())
}

/// A brand-new, empty PostgreSQL database: its URL, and a guard that drops it.
///
/// # Panics
/// When `EMDP_TEST_POSTGRES_URL` is not set: run PostgreSQL tests through `scripts/test`, or
/// set the variable.
async fn postgres_database() -> (String, DropDatabase) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin_url = postgres_url().expect(
        "EMDP_TEST_POSTGRES_URL is not set: this PostgreSQL test cannot run (scripts/test sets it when PostgreSQL is up)",
    );
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
    (url, DropDatabase { admin_url, name })
}

/// A store on a new PostgreSQL database.
///
/// # Panics
/// When `EMDP_TEST_POSTGRES_URL` is not set (see [`needs_postgres!`]).
pub async fn postgres() -> TestStore {
    let (url, guard) = postgres_database().await;
    let store = emdp_storage::open(&url).await.expect("open PostgreSQL store");
    TestStore { store, url, _dir: None, _database: Some(guard) }
}

/// Marks PostgreSQL tests `#[ignore]`d: skipped (and reported so) unless ignored tests are
/// asked for, as `scripts/test` does when PostgreSQL is up. Such a test takes its database
/// from [`postgres`], which fails without one, so it never passes without running.
///
/// ```ignore
/// emdp_testkit::needs_postgres! {
///     #[tokio::test(flavor = "multi_thread")]
///     async fn postgres_only_behaviour() {
///         let fixture = emdp_testkit::postgres().await;
///     }
/// }
/// ```
#[macro_export]
macro_rules! needs_postgres {
    ($($(#[$meta:meta])* async fn $name:ident() $body:block)+) => {
        $(
            $(#[$meta])*
            #[ignore = "needs PostgreSQL: EMDP_TEST_POSTGRES_URL, set by scripts/test"]
            async fn $name() $body
        )+
    };
}

/// Generates, for each listed async test function, a test per backend: `sqlite::NAME` on a new
/// SQLite file and `postgres::NAME` on a new PostgreSQL database, the latter marked by
/// [`needs_postgres!`].
///
/// Each group names the fixture (a [`TestStore`]), the expression the functions are called
/// with, and the functions:
///
/// ```ignore
/// emdp_testkit::every_backend! {
///     |fixture| Arc::clone(&fixture.store) => [first_ingest_stores_every_row, reingest_is_idempotent],
///     |fixture| start_with(fixture, 1024).await => [bodies_over_the_limit_are_413],
/// }
/// ```
///
/// The expression is evaluated inside the generated module, which sees the calling module's
/// items; the tests run on a two-thread Tokio runtime.
#[macro_export]
macro_rules! every_backend {
    ($(|$fixture:ident| $argument:expr => [$($name:ident),+ $(,)?]),+ $(,)?) => {
        #[allow(unused_imports)]
        mod sqlite {
            use super::*;
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $fixture = $crate::sqlite().await;
                    super::$name($argument).await;
                }
            )+)+
        }

        #[allow(unused_imports)]
        mod postgres {
            use super::*;
            $($(
                $crate::needs_postgres! {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let $fixture = $crate::postgres().await;
                        super::$name($argument).await;
                    }
                }
            )+)+
        }
    };
}
