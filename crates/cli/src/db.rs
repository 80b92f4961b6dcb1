//! The database a command works on, and the async runtime for commands that need one.

use std::future::Future;
use std::sync::Arc;

use emdp_app::ports::RecordStore;

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
    /// Opens the stores, applying pending migrations.
    pub async fn open(&self) -> Result<Arc<dyn RecordStore>, CliError> {
        emdp_storage::open(&self.database_url).await.map_err(CliError::Store)
    }

    /// Runs `work` on the opened stores, then closes them ([`RecordStore::close`]) whether
    /// `work` succeeded or not: what it committed before an error is kept either way. The
    /// work's error comes first.
    pub async fn with_store<T, Work>(&self, work: impl FnOnce(Arc<dyn RecordStore>) -> Work) -> Result<T, CliError>
    where
        Work: Future<Output = Result<T, CliError>>,
    {
        let store = self.open().await?;
        let result = work(Arc::clone(&store)).await;
        let closed = store.close().await.map_err(CliError::Store);
        let value = result?;
        closed.map(|()| value)
    }
}

/// Runs an async command to completion on a multi-threaded runtime.
pub fn block_on<T>(future: impl Future<Output = Result<T, CliError>>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::Usage(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(future)
}
