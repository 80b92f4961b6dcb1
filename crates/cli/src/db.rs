//! The database a command works on, and the async runtime for commands that need one.

use std::future::Future;
use std::sync::Arc;

use emdp_app::ports::RecordStore;
use emdp_storage::{DatabaseUrl, OpenOptions, Stores};

use crate::error::CliError;

/// `--database-url`, shared by every command that uses the stores.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// The database: `sqlite://PATH` (the default, `sqlite://emdp.db`; commands that write
    /// create a missing file, commands that only read refuse it) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = emdp_storage::DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

/// What a command does with its database: only a command that writes creates a missing
/// SQLite file. A command that only reads would find a new, empty file and report no data,
/// and a user would conclude the data is gone rather than that the path is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads what is stored (`report`, `records list`, `keys list`, ...).
    Read,
    /// Writes (`ingest`, `keys create`, `duplicates resolve`, ...).
    Write,
}

impl DatabaseArgs {
    /// The database URL, checked ([`DatabaseUrl::parse`]); an unusable one is a usage error
    /// (exit 2) naming it.
    pub fn url(&self) -> Result<DatabaseUrl, CliError> {
        DatabaseUrl::parse(&self.database_url).map_err(|err| CliError::Usage(format!("--database-url: {err}")))
    }

    /// Runs `work` on the stores of this database, which must exist; see [`with_stores`].
    pub async fn with_stores<T, Work>(&self, work: impl FnOnce(Stores) -> Work) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        with_stores(&self.url()?, Access::Read, work).await
    }

    /// Runs `work` on the raw and curated stores of this database, which must exist; see
    /// [`with_stores`].
    pub async fn with_store<T, Work>(&self, work: impl FnOnce(Arc<dyn RecordStore>) -> Work) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        self.with_stores(|stores| work(stores.records)).await
    }

    /// Runs `work`, which writes, on the stores of this database, created if missing; see
    /// [`with_stores`].
    pub async fn with_writable_stores<T, Work>(&self, work: impl FnOnce(Stores) -> Work) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        with_stores(&self.url()?, Access::Write, work).await
    }

    /// Runs `work`, which writes, on the raw and curated stores of this database, created if
    /// missing; see [`with_stores`].
    pub async fn with_writable_store<T, Work>(
        &self,
        work: impl FnOnce(Arc<dyn RecordStore>) -> Work,
    ) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        self.with_writable_stores(|stores| work(stores.records)).await
    }
}

/// Opens the stores of the database at `url` (applying pending migrations), runs `work` on
/// them, then closes them ([`RecordStore::close`]) whether `work` succeeded or not: what it
/// committed before an error is kept either way, and a SQLite file is left whole, without
/// pages waiting in its WAL (a read-only command writes there too when it migrates the
/// schema of an older file).
///
/// A missing SQLite file is created for [`Access::Write`]; for [`Access::Read`] it is an
/// error naming the path ([`CliError::NoDatabase`]), and nothing is created.
///
/// A failure to close is a warning, not the command's failure: closing only moves committed
/// pages from SQLite's WAL into the database file, and pages left in the WAL are read from
/// there. On a full disk that copy cannot grow the file; failing there kept every read
/// command (`records list`, `report`) from showing what the database holds.
pub async fn with_stores<T, Work>(
    url: &DatabaseUrl,
    access: Access,
    work: impl FnOnce(Stores) -> Work,
) -> Result<T, CliError>
where
    Work: Future<Output = Result<T, CliError>>,
{
    if access == Access::Read
        && let Some(path) = url.sqlite_file()
        && std::fs::metadata(path).is_err_and(|err| err.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(CliError::NoDatabase(path.to_path_buf()));
    }
    let options = OpenOptions { create: access == Access::Write, ..OpenOptions::default() };
    let stores = emdp_storage::open_stores_with(url, &options).await.map_err(CliError::Store)?;
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
