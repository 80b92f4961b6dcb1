//! `emdp migrate`: apply pending database migrations.

use std::process::ExitCode;

use crate::db::DatabaseArgs;
use crate::error::CliError;

/// Apply pending schema migrations to the database (they are also applied at start-up).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Runs `emdp migrate`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let url = args.database.url()?;
    crate::db::block_on(async move {
        let versions = emdp_storage::migrate(&url).await.map_err(CliError::Store)?;
        let latest = versions.last().map_or_else(|| "none".to_owned(), i64::to_string);
        crate::output::write_out(&format!(
            "{url}: schema up to date ({} migration(s), latest {latest})\n",
            versions.len()
        ))?;
        Ok(ExitCode::SUCCESS)
    })
}
