//! `emdp import-mongo`: migrate the original MVP's MongoDB `energy_records` collection.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use emdp_app::ports::{Clock, FixedClock, SystemClock};
use emdp_app::usecases::ingest::Ingestor;
use emdp_domain::ConflictPolicy;
use emdp_formats::MongoSource;

use crate::commands::ingest::{ingest_watched, print_summary, read_with_progress};
use crate::commands::validate::load_rules;
use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::OutputFormat;

/// Import a `mongoexport` dump of the original MVP's `energy_records` collection (MongoDB
/// Extended JSON: one document per line, pretty-printed documents, or a JSON array). Every document is ingested like a
/// file row, with its `_id` and `created_at` kept in the raw store; the dump's stored quality
/// fields are ignored and recomputed. Safe to run again.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dump (`mongoexport --collection energy_records [--jsonArray] [--pretty]`); `-` reads standard input.
    pub file: String,
    /// Quality thresholds as TOML.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The last day that is not in the future (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub today: Option<NaiveDate>,
    /// How conflicting duplicates are resolved (`keep-latest` is read as `keep_latest`).
    #[arg(long, value_parser = super::PolicyParser, default_value = "prefer_valid")]
    pub policy: ConflictPolicy,
    /// How to print the summary (JSON: one object, the shape of `emdp ingest --output json`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The batch's source name: `mongo:` and the dump's file name.
fn source_name(path: &str) -> String {
    let name = Path::new(path).file_name().and_then(|name| name.to_str()).unwrap_or(path);
    format!("mongo:{name}")
}

/// Runs `emdp import-mongo`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let rules = Arc::new(load_rules(args.rules.as_ref())?);
    let clock: Arc<dyn Clock> = match args.today {
        Some(today) => Arc::new(FixedClock(today)),
        None => Arc::new(SystemClock),
    };
    let path = args.file.clone();
    // The same progress bar as `emdp ingest` on a terminal.
    let (input, progress) = read_with_progress(&path)?;
    crate::db::block_on(args.database.with_writable_store(|store| async move {
        let ingestor = Ingestor::new(store, rules, clock, args.policy);
        let source = Box::new(MongoSource::new(input));
        let summary = ingest_watched(&ingestor, source, &source_name(&path), &path, &progress).await?;
        print_summary(&path, &summary, args.output)?;
        Ok(ExitCode::SUCCESS)
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_source_is_named_after_the_file() {
        assert_eq!(super::source_name("/tmp/dump/energy_records.json"), "mongo:energy_records.json");
        assert_eq!(super::source_name("-"), "mongo:-");
    }
}
