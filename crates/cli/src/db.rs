//! The database a command works on, and the async runtime for commands that need one.

use std::future::Future;
use std::sync::Arc;

use emdp_app::ports::RecordStore;
use emdp_storage::Stores;

use crate::error::CliError;

/// `--database-url`, shared by every command that uses the stores.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// The database: `sqlite://PATH` (the default, `sqlite://emdp.db`, is created if missing)
    /// or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = emdp_storage::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

impl DatabaseArgs {
    /// Runs `work` on the stores of this database; see [`with_stores`].
    pub async fn with_stores<T, Work>(&self, work: impl FnOnce(Stores) -> Work) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        with_stores(&self.database_url, work).await
    }

    /// Runs `work` on the raw and curated stores of this database; see [`with_stores`].
    pub async fn with_store<T, Work>(&self, work: impl FnOnce(Arc<dyn RecordStore>) -> Work) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        self.with_stores(|stores| work(stores.records)).await
    }
}

/// Opens the stores of the database at `url` (applying pending migrations), runs `work` on
/// them, then closes them ([`RecordStore::close`]) whether `work` succeeded or not: what it
/// committed before an error is kept either way, and a SQLite file is left whole, without
/// pages waiting in its WAL (a read-only command writes there too when it creates the
/// schema of a new file).
///
/// A failure to close is a warning, not the command's failure: closing only moves committed
/// pages from SQLite's WAL into the database file, and pages left in the WAL are read from
/// there. On a full disk that copy cannot grow the file; failing there kept every read
/// command (`records list`, `report`) from showing what the database holds.
pub async fn with_stores<T, Work>(url: &str, work: impl FnOnce(Stores) -> Work) -> Result<T, CliError>
where
    Work: Future<Output = Result<T, CliError>>,
{
    let stores = emdp_storage::open_stores(url).await.map_err(CliError::Store)?;
    // All the ports share one pool: closing the record store closes it for every one.
    let records = Arc::clone(&stores.records);
    let result = work(stores).await;
    if let Err(err) = records.close().await {
        eprintln!("emdp: warning: closing the database: {err}; everything committed is kept");
    }
    result
}

/// Runs an async command to completion on a multi-threaded runtime.
pub fn block_on<T>(future: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::Usage(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(future)
}
