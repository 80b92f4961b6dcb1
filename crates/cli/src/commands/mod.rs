//! One module per subcommand.

pub mod analyze;
pub mod batches;
pub mod config;
pub mod dead_letters;
pub mod duplicates;
pub mod generate;
pub mod health;
pub mod import_mongo;
pub mod ingest;
pub mod keys;
pub mod migrate;
pub mod records;
pub mod report;
pub mod serve;
pub mod validate;

use chrono::NaiveDate;

/// Parses `--today` and other date flags as ISO 8601 `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    emdp_domain::parse_iso_date(text.trim()).map_err(|err| format!("{err}: expected YYYY-MM-DD"))
}
