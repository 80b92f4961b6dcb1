//! Adapters for files: the record sources (CSV, NDJSON, JSON) that implement
//! [`emdp_app::ports::RecordSource`], the TOML rules file, the per-row CSV report, and the
//! rule that keeps every CSV emdp writes safe to open in a spreadsheet.
//!
//! Every source streams: it reads through a buffer and hands out rows that borrow from it, and
//! holds at most one record of [`SourceOptions::record_limit`] bytes: a longer record is read
//! through to its end without being kept, and handed out as a malformed row that says so.

pub mod csv_source;
pub mod json_source;
mod json_values;
pub mod mongo_source;
pub mod report;
pub mod rules_file;
pub mod spreadsheet;

use std::io::BufRead;

use emdp_app::ports::{Oversize, RECORD_LIMIT, RecordSource, SourceFormat, SourceRow, VisitError};
use emdp_domain::{ColumnNames, RawRecord};

pub use csv_source::CsvSource;
pub use json_source::{JsonArraySource, NdjsonSource};
pub use mongo_source::MongoSource;
pub use report::ReportWriter;
pub use rules_file::{RulesFileError, load_rules};
pub use spreadsheet::spreadsheet_safe;

/// How a source reads its input.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The column (CSV) or key (JSON) each field is read from.
    pub columns: ColumnNames,
    /// The most bytes one record may take ([`RECORD_LIMIT`], 1 MiB, unless set): a longer one
    /// becomes a `malformed_row` keeping its first bytes ([`Oversize`]).
    pub record_limit: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions { columns: ColumnNames::default(), record_limit: RECORD_LIMIT }
    }
}

impl SourceOptions {
    /// The default options, reading each field from the column or key `columns` names.
    pub fn with_columns(columns: ColumnNames) -> Self {
        SourceOptions { columns, ..SourceOptions::default() }
    }
}

/// The line breaks in `bytes`, which follow the bytes consumed before them (`after_cr`: the
/// last of those was a `\r`, updated to these): each `\n`, `\r\n` and lone `\r`, as csv-core
/// ends records, once even when a `\r\n` is split between two calls.
pub(crate) fn line_breaks(after_cr: &mut bool, bytes: &[u8]) -> u64 {
    let mut breaks = 0;
    for at in memchr::memchr2_iter(b'\n', b'\r', bytes) {
        let follows_cr = if at == 0 { *after_cr } else { bytes[at - 1] == b'\r' };
        breaks += u64::from(bytes[at] == b'\r' || !follows_cr);
    }
    if let Some(&last) = bytes.last() {
        *after_cr = last == b'\r';
    }
    breaks
}

/// The first `limit` bytes of an oversize record as text, a character cut at the end left out;
/// `None` when they are not UTF-8.
pub(crate) fn head(bytes: &[u8], limit: usize) -> Option<&str> {
    let bytes = &bytes[..bytes.len().min(limit)];
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(err) if err.error_len().is_none() => std::str::from_utf8(&bytes[..err.valid_up_to()]).ok(),
        Err(_) => None,
    }
}

/// Hands `visit` the row of a record longer than the limit: malformed, no fields, its first
/// bytes `head` as payload and the [`Oversize`] message as parse error.
pub(crate) fn visit_oversize(
    line: u64,
    head: &str,
    oversize: Oversize,
    visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>,
) -> Result<(), VisitError> {
    let message = oversize.to_string();
    let record = RawRecord { malformed: true, ..RawRecord::default() };
    visit(SourceRow { line, raw: head, record, parse_error: Some(&message), origin: None, oversize: Some(oversize) })
}

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
