//! Adapters for files: the record sources (CSV, NDJSON, JSON) that implement
//! [`emdp_app::ports::RecordSource`], the TOML rules file, the per-row CSV report, and the
//! rule that keeps every CSV emdp writes safe to open in a spreadsheet.
//!
//! Every source streams: it reads through a buffer and hands out rows that borrow from it.

pub mod csv_source;
pub mod json_source;
pub mod mongo_source;
pub mod report;
pub mod rules_file;
pub mod spreadsheet;

use std::io::BufRead;

use emdp_app::ports::{RecordSource, SourceFormat};
use emdp_domain::ColumnNames;

pub use csv_source::CsvSource;
pub use json_source::{JsonArraySource, NdjsonSource};
pub use mongo_source::MongoSource;
pub use report::ReportWriter;
pub use rules_file::{RulesFileError, load_rules};
pub use spreadsheet::spreadsheet_safe;

/// Opens a source of the given format over any buffered reader, reading each field from
/// the column (CSV) or key (JSON) `columns` names.
pub fn open_source<'r>(
    format: SourceFormat,
    input: Box<dyn BufRead + Send + 'r>,
    columns: ColumnNames,
) -> Box<dyn RecordSource + Send + 'r> {
    match format {
        SourceFormat::Csv => Box::new(CsvSource::with_columns(input, columns)),
        SourceFormat::Ndjson => Box::new(NdjsonSource::with_columns(input, columns)),
        SourceFormat::Json => Box::new(JsonArraySource::with_columns(input, columns)),
    }
}
