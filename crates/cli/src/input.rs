//! Opening input files and standard input as record sources.
//!
//! Every input goes through [`buffered`], which also reads gzip: meter exports often come
//! compressed (`readings.csv.gz`), and a compressed file or pipe is recognised by its first
//! bytes and decompressed as it streams, so it never has to be unpacked on disk first. A
//! compressed file may expand a thousandfold (a gzip bomb): the sources hold at most one
//! record of 1 MiB whatever the input ([`emdp_app::ports::RECORD_LIMIT`]), and [`watch`] tells
//! the user about every record cut at that limit.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex, PoisonError};

use emdp_app::ports::{Oversize, ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError};
use emdp_domain::ColumnNames;
use flate2::bufread::MultiGzDecoder;

use crate::error::CliError;

/// Buffer size for input files: large reads keep system calls off the profile.
const BUFFER: usize = 256 * 1024;

/// The first two bytes of every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The format of `path`: `format` when given, else guessed from the extension, a trailing
/// `.gz` aside (`readings.csv.gz` is CSV).
pub fn format_of(path: &str, format: Option<SourceFormat>) -> Result<SourceFormat, CliError> {
    let name = if path.to_ascii_lowercase().ends_with(".gz") { &path[..path.len() - 3] } else { path };
    match format.or_else(|| SourceFormat::from_path(name)) {
        Some(format) => Ok(format),
        None if path == "-" => Err(CliError::Usage("reading standard input needs --format csv|ndjson|json".into())),
        None => Err(CliError::Input {
            path: path.to_owned(),
            message: "cannot tell the format from the extension; pass --format csv|ndjson|json".into(),
        }),
    }
}

/// Opens the input file `path`, naming it in the error.
pub fn open_file(path: &str) -> Result<File, CliError> {
    File::open(path).map_err(|err| CliError::Input { path: path.to_owned(), message: format!("cannot open: {err}") })
}

/// `input` (read from `path`, which errors name) behind a large buffer, and decompressed
/// when it starts like gzip, whatever its name. Concatenated gzip members (`cat a.gz b.gz`)
/// read as one stream, as `zcat` reads them.
pub fn buffered(path: &str, mut input: impl Read + Send + 'static) -> Result<Box<dyn BufRead + Send>, CliError> {
    // The first two bytes, however the pipe delivers them (a read may return one byte).
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < head.len() {
        match input.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(read) => got += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(CliError::Input { path: path.to_owned(), message: format!("cannot read: {err}") }),
        }
    }
    let input = std::io::Cursor::new(head[..got].to_vec()).chain(input);
    if head[..got] == GZIP_MAGIC {
        Ok(Box::new(BufReader::with_capacity(BUFFER, MultiGzDecoder::new(BufReader::with_capacity(BUFFER, input)))))
    } else {
        Ok(Box::new(BufReader::with_capacity(BUFFER, input)))
    }
}

/// Checks that every input of a command can be read before it starts on the first: its
/// format is known and the file opens (`-`, standard input, always does).
pub fn check_all(paths: &[String], format: Option<SourceFormat>) -> Result<(), CliError> {
    for path in paths {
        format_of(path, format)?;
        if path != "-" {
            open_file(path)?;
        }
    }
    Ok(())
}

/// The `--column FIELD=NAME` mappings as the names each field is read from.
pub fn column_names(mappings: &[String]) -> Result<ColumnNames, CliError> {
    ColumnNames::parse(mappings).map_err(|err| CliError::Usage(format!("--column: {err}")))
}

/// Opens `path` (`-` = standard input) as a record source that reads each field from the
/// column `columns` names.
pub fn open(
    path: &str,
    format: Option<SourceFormat>,
    columns: ColumnNames,
) -> Result<Box<dyn RecordSource + Send>, CliError> {
    let format = format_of(path, format)?;
    let input = if path == "-" { buffered(path, std::io::stdin())? } else { buffered(path, open_file(path)?)? };
    Ok(emdp_formats::open_source(format, input, columns))
}

/// Records over the limit named one by one on standard error; past these, only counted.
const NAMED_OVERSIZE: usize = 10;

/// What a read input tells its user besides its summary: the records cut at the limit.
#[derive(Debug, Default)]
pub struct Notes {
    /// The first records over the limit: where each starts (see [`SourceRow::line`]), and by
    /// how much.
    oversize: Vec<(u64, Oversize)>,
    /// How many more there were.
    more: u64,
}

impl Notes {
    fn note(&mut self, line: u64, oversize: Oversize) {
        if self.oversize.len() < NAMED_OVERSIZE {
            self.oversize.push((line, oversize));
        } else {
            self.more += 1;
        }
    }

    /// The lines to print for input `path` of `format` once it is read with `records` records
    /// (`None` when reading stopped on an error): each record cut at the limit, with its line
    /// (its position, in a JSON array), its length and the limit; and `no records in PATH` for
    /// an input without any.
    pub fn lines(&self, path: &str, format: SourceFormat, records: Option<u64>) -> Vec<String> {
        let place = if format == SourceFormat::Json { "element" } else { "line" };
        let mut lines: Vec<String> = self
            .oversize
            .iter()
            .map(|(line, oversize)| format!("emdp: warning: {path}: {place} {line}: {oversize}"))
            .collect();
        if self.more > 0 {
            lines.push(format!("emdp: warning: {path}: {} more records over the limit", self.more));
        }
        if records == Some(0) {
            lines.push(format!("emdp: no records in {path}"));
        }
        lines
    }

    /// Prints [`Notes::lines`] on standard error.
    pub fn print(&self, path: &str, format: SourceFormat, records: Option<u64>) {
        for line in self.lines(path, format, records) {
            eprintln!("{line}");
        }
    }
}

/// A source that notes the records its inner source cut at the limit.
struct Watched {
    inner: Box<dyn RecordSource + Send>,
    notes: Arc<Mutex<Notes>>,
}

impl RecordSource for Watched {
    fn format(&self) -> SourceFormat {
        self.inner.format()
    }

    fn start(&mut self) -> Result<(), SourceError> {
        self.inner.start()
    }

    fn header(&self) -> Option<&str> {
        self.inner.header()
    }

    fn columns(&self) -> Option<&ColumnNames> {
        self.inner.columns()
    }

    fn read_all(&mut self, visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>) -> Result<(), ReadError> {
        let notes = &self.notes;
        self.inner.read_all(&mut |row| {
            if let Some(oversize) = row.oversize {
                notes.lock().unwrap_or_else(PoisonError::into_inner).note(row.line, oversize);
            }
            visit(row)
        })
    }
}

/// `source`, noting the records it cuts at the limit in the notes returned beside it.
pub fn watch(source: Box<dyn RecordSource + Send>) -> (Box<dyn RecordSource + Send>, Arc<Mutex<Notes>>) {
    let notes = Arc::new(Mutex::new(Notes::default()));
    (Box::new(Watched { inner: source, notes: Arc::clone(&notes) }), notes)
}

/// Prints the notes of input `path` (see [`Notes::lines`]).
pub fn print_notes(notes: &Mutex<Notes>, path: &str, format: SourceFormat, records: Option<u64>) {
    notes.lock().unwrap_or_else(PoisonError::into_inner).print(path, format, records);
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(bytes: Vec<u8>) -> Result<String, std::io::Error> {
        let mut text = String::new();
        buffered("in", std::io::Cursor::new(bytes)).unwrap().read_to_string(&mut text)?;
        Ok(text)
    }

    /// A reader that hands out one byte per read, as a slow pipe may.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let len = buf.len().min(1);
            self.0.read(&mut buf[..len])
        }
    }

    #[test]
    fn gzip_is_recognised_when_its_first_bytes_come_one_at_a_time() {
        let mut text = String::new();
        let input = Trickle(std::io::Cursor::new(gzip("a,b\n1,2\n")));
        buffered("pipe", input).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "a,b\n1,2\n");
    }

    #[test]
    fn gzip_is_read_through_and_plain_text_as_is() {
        assert_eq!(read_all(b"a,b\n1,2\n".to_vec()).unwrap(), "a,b\n1,2\n");
        assert_eq!(read_all(gzip("a,b\n1,2\n")).unwrap(), "a,b\n1,2\n");
        let mut members = gzip("a,b\n");
        members.extend(gzip("1,2\n"));
        assert_eq!(read_all(members).unwrap(), "a,b\n1,2\n", "members read as one stream");
        assert_eq!(read_all(Vec::new()).unwrap(), "");
    }

    #[test]
    fn a_truncated_gzip_stream_is_a_read_error() {
        let mut bytes = gzip(&"B1,2025-01-01,10,5,p\n".repeat(1000));
        bytes.truncate(bytes.len() / 2);
        assert!(read_all(bytes).is_err());
    }

    #[test]
    fn notes_name_the_first_records_over_the_limit_and_count_the_rest() {
        let mut notes = Notes::default();
        for line in 2..14 {
            notes.note(line, Oversize { length: 2_000_000, limit: emdp_app::ports::RECORD_LIMIT });
        }
        let lines = notes.lines("big.csv", SourceFormat::Csv, Some(12));
        assert_eq!(lines.len(), 11);
        assert_eq!(
            lines[0],
            "emdp: warning: big.csv: line 2: the record is 2000000 bytes, over the limit of 1 MiB (1048576 bytes): \
             read as malformed_row, only its first 1048576 bytes kept"
        );
        assert_eq!(lines[10], "emdp: warning: big.csv: 2 more records over the limit");
        assert!(notes.lines("a.json", SourceFormat::Json, None)[0].starts_with("emdp: warning: a.json: element 2: "));
        assert_eq!(Notes::default().lines("h.csv", SourceFormat::Csv, Some(0)), ["emdp: no records in h.csv"]);
    }

    #[test]
    fn a_trailing_gz_is_not_the_format() {
        assert_eq!(format_of("x/readings.csv.gz", None).unwrap(), SourceFormat::Csv);
        assert_eq!(format_of("readings.NDJSON.GZ", None).unwrap(), SourceFormat::Ndjson);
        assert_eq!(format_of("readings.gz", Some(SourceFormat::Json)).unwrap(), SourceFormat::Json);
        assert!(format_of("readings.gz", None).is_err());
    }
}
