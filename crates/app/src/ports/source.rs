//! Sources: where records come from (a CSV, NDJSON or JSON file, a request body, a message).

use emdp_domain::{ColumnNames, RawRecord};

/// The input formats emdp reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum SourceFormat {
    /// CSV with a header row (RFC 4180).
    Csv,
    /// One JSON object per line (file extension `.ndjson` or `.jsonl`).
    #[strum(to_string = "ndjson", serialize = "jsonl")]
    Ndjson,
    /// A JSON array of objects (or a single object).
    Json,
}

impl SourceFormat {
    /// The format's name as used by `--format`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Guesses the format from a file name's extension (`.csv`, `.ndjson`/`.jsonl`, `.json`;
    /// case-insensitive).
    pub fn from_path(path: &str) -> Option<Self> {
        path.rsplit_once('.')?.1.parse().ok()
    }
}

/// One record as a source found it.
#[derive(Debug, Clone, Copy)]
pub struct SourceRow<'a> {
    /// Where the record starts: the physical line for CSV and NDJSON (the CSV header is
    /// line 1), the 1-based position of the element for a JSON array.
    pub line: u64,
    /// The payload exactly as received (a CSV record without its line terminator, an NDJSON
    /// line, a JSON element's text).
    pub raw: &'a str,
    /// The record's fields as read.
    pub record: RawRecord<'a>,
    /// Why the payload could not be read as a record at all (e.g. invalid JSON); the row is
    /// then `malformed` with no fields.
    pub parse_error: Option<&'a str>,
    /// For records imported from another system (e.g. a MongoDB dump of the original MVP):
    /// the id and creation time they had there, kept in the raw store. `None` for files.
    pub origin: Option<Origin<'a>>,
    /// Set when the record was longer than the source's limit ([`RECORD_LIMIT`] by default):
    /// `raw` is then its first bytes only, its fields are not read (the row is `malformed`),
    /// and `parse_error` says so.
    pub oversize: Option<Oversize>,
}

/// The most bytes one record may take by default (1 MiB): a CSV record (all its lines, for a
/// quoted field that spans several), an NDJSON line, a JSON array element, a MongoDB document.
/// A longer record is read through to its end without being held, and becomes a
/// `malformed_row` whose payload keeps its first bytes ([`Oversize`]): one endless line (a
/// file without line breaks, a decompressed gzip bomb) cannot take the memory with it.
pub const RECORD_LIMIT: usize = 1 << 20;

/// A record longer than the limit its source reads by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversize {
    /// The record's whole length in bytes (without its line terminator).
    pub length: u64,
    /// The limit it went past, in bytes: the payload keeps at most this many of its first.
    pub limit: usize,
}

/// Says what was wrong and what was kept, e.g. `the record is 104857600 bytes, over the limit of
/// 1 MiB (1048576 bytes): read as malformed_row, only its first 1048576 bytes kept`. Stored as
/// the row's parse error and printed by the CLI.
impl std::fmt::Display for Oversize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Oversize { length, limit } = *self;
        let size = match limit {
            _ if limit >= 1 << 20 && limit % (1 << 20) == 0 => format!("{} MiB ({limit} bytes)", limit >> 20),
            _ if limit >= 1 << 10 && limit % (1 << 10) == 0 => format!("{} KiB ({limit} bytes)", limit >> 10),
            _ => format!("{limit} bytes"),
        };
        write!(
            f,
            "the record is {length} bytes, over the limit of {size}: read as {}, only its first {limit} bytes kept",
            emdp_domain::Reason::MalformedRow.code()
        )
    }
}

/// Where an imported record came from: its identity in the system it is imported from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Its id there (e.g. a MongoDB ObjectId as hex).
    pub id: Option<&'a str>,
    /// When it was created there.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What stops a source: problems with the file as a whole, not with one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The input could not be read (an I/O error, a truncated compressed file).
    #[error("line {line}: cannot read input: {message}")]
    Io {
        /// The line being read when it failed: every line before it was read.
        line: u64,
        /// The I/O error.
        message: String,
    },
    /// The input is not UTF-8.
    #[error("line {line}: invalid UTF-8")]
    InvalidUtf8 {
        /// Where the bad bytes are.
        line: u64,
    },
    /// The input has no header row.
    #[error("empty input: no header row")]
    Empty,
    /// The header row lacks required columns.
    #[error(
        "line 1: header is missing required column(s): {}{}",
        .columns.join(", "),
        .separator.map(|s| format!(" (the header is one column separated by {s:?}: emdp reads comma-separated CSV)"))
            .unwrap_or_default()
    )]
    MissingColumns {
        /// The columns that are not there (with the field, for a mapped one: `kwh (consumption)`).
        columns: Vec<String>,
        /// When the header is one column holding another separator (`;`, a tab, `|`), that
        /// separator: a file exported with another delimiter, the likeliest cause.
        separator: Option<char>,
    },
    /// A column appears twice in the header.
    #[error("line 1: column '{column}' appears more than once in the header")]
    DuplicateColumn {
        /// The repeated column.
        column: String,
    },
    /// The document's structure is broken (e.g. a JSON array that does not close).
    #[error("line {line}: {message}")]
    Syntax {
        /// Where reading stopped.
        line: u64,
        /// What was wrong.
        message: String,
    },
}

/// An error raised by the code visiting rows (e.g. a report that cannot be written); it
/// stops the source and is handed back to the caller unchanged.
pub type VisitError = Box<dyn std::error::Error + Send + Sync>;

/// Why reading a source stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source itself failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The visitor asked to stop.
    #[error(transparent)]
    Visit(VisitError),
}

/// A stream of records. Pushes each row to `visit` in input order, borrowing from its own
/// buffers, so memory stays flat however long the input is.
pub trait RecordSource {
    /// The format being read.
    fn format(&self) -> SourceFormat;

    /// Reads what comes before the records (the CSV header), so that [`RecordSource::header`]
    /// is known before the first row. `read_all` calls it when it was not called.
    fn start(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    /// The CSV header line as read, which is needed to interpret raw CSV payloads later.
    fn header(&self) -> Option<&str>;

    /// The columns (or keys) the fields are read from, when they are not the fields' own
    /// names (`--column`): kept with the batch, since reading its raw payloads again needs it.
    fn columns(&self) -> Option<&ColumnNames> {
        None
    }

    /// Reads every row, calling `visit` for each; stops at the first error.
    fn read_all(&mut self, visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>) -> Result<(), ReadError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_are_pinned() {
        for (format, name) in
            [(SourceFormat::Csv, "csv"), (SourceFormat::Ndjson, "ndjson"), (SourceFormat::Json, "json")]
        {
            assert_eq!(format.as_str(), name, "stored as batch formats: never change it");
            assert_eq!(serde_json::to_value(format).unwrap(), name, "serde and strum agree");
        }
    }

    #[test]
    fn an_oversize_record_names_its_length_and_the_limit() {
        let message = Oversize { length: 104_857_600, limit: RECORD_LIMIT }.to_string();
        assert_eq!(
            message,
            "the record is 104857600 bytes, over the limit of 1 MiB (1048576 bytes): read as malformed_row, \
             only its first 1048576 bytes kept"
        );
        assert!(Oversize { length: 70, limit: 64 }.to_string().contains("over the limit of 64 bytes: "));
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(SourceFormat::from_path("a/b.CSV"), Some(SourceFormat::Csv));
        assert_eq!(SourceFormat::from_path("x.jsonl"), Some(SourceFormat::Ndjson));
        assert_eq!(SourceFormat::from_path("x.ndjson"), Some(SourceFormat::Ndjson));
        assert_eq!(SourceFormat::from_path("x.json"), Some(SourceFormat::Json));
        assert_eq!(SourceFormat::from_path("x.txt"), None);
        assert_eq!(SourceFormat::from_path("-"), None);
    }
}
