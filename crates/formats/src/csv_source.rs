//! CSV with a header row: columns matched by name (trimmed, case-insensitive) in any order,
//! extra columns ignored, RFC 4180 quoting, UTF-8 BOM and CRLF accepted, blank lines skipped.
//!
//! Each record's raw bytes are kept exactly, because the raw store keeps the payload as
//! received, not a re-serialization. Lines without a quote or a stray carriage return (the
//! overwhelming majority of meter exports) are split on commas directly, found with `memchr`;
//! any other record is handed to `csv-core`, the parser under the `csv` crate, so quoting
//! follows it exactly. A property test checks both paths against the `csv` crate.
//!
//! A record longer than the limit ([`SourceOptions::record_limit`]) goes to `csv-core` too,
//! which reads it through to its end (a quoted field may span lines) while only its first
//! bytes are kept: it becomes a malformed row, and the rows after it are read as usual.

use std::io::Read;

use emdp_app::ports::{Oversize, ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError};
use emdp_domain::{ColumnNames, FieldName, RawField, RawRecord};

use crate::{SourceOptions, line_breaks};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const BUFFER: usize = 256 * 1024;

/// A CSV record source. See the module documentation for the accepted dialect.
pub struct CsvSource<R> {
    input: R,
    eof: bool,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    parser: csv_core::Reader,
    header: Option<String>,
    /// The header name each field is read from.
    names: ColumnNames,
    /// Column index of each of the five fields, in [`FieldName::ALL`] order.
    columns: [usize; 5],
    header_len: usize,
    /// Line breaks consumed so far (`\n`, `\r\n` or a lone `\r`, csv-core's record
    /// terminators): the next record starts on line `line + 1` or later.
    line: u64,
    /// Whether the last byte consumed was a `\r`, so that a `\n` next to it ends no line.
    after_cr: bool,
    /// The slow path's copy of a record's raw bytes, and csv-core's unescaped output.
    raw: Vec<u8>,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// Byte ranges of the current record's fields, in `Record::text`.
    spans: Vec<(usize, usize)>,
    /// The most bytes a record may take.
    limit: usize,
}

/// One record: where it starts, its raw text, and its fields as spans of `text`.
struct Record<'b> {
    line: u64,
    raw: &'b str,
    text: &'b str,
    spans: &'b [(usize, usize)],
    /// Set when the record was over the limit: `raw` is its first bytes, `spans` is empty.
    oversize: Option<Oversize>,
}

impl Record<'_> {
    fn field(&self, index: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(index)?;
        self.text.get(start..end)
    }
}

impl<R: Read> CsvSource<R> {
    /// A source over `input`; the header is read on the first call to `read_all`.
    pub fn new(input: R) -> Self {
        Self::with_columns(input, ColumnNames::default())
    }

    /// A source over `input` that reads each field from the column `names` gives it.
    pub fn with_columns(input: R, names: ColumnNames) -> Self {
        Self::with_options(input, SourceOptions::with_columns(names))
    }

    /// A source over `input` reading as `options` say.
    pub fn with_options(input: R, options: SourceOptions) -> Self {
        let SourceOptions { columns: names, record_limit } = options;
        CsvSource {
            input,
            eof: false,
            buf: vec![0; BUFFER],
            pos: 0,
            len: 0,
            parser: csv_core::Reader::new(),
            header: None,
            names,
            columns: [usize::MAX; 5],
            header_len: 0,
            line: 0,
            after_cr: false,
            raw: Vec::with_capacity(256),
            out: vec![0; 256],
            ends: vec![0; 16],
            spans: Vec::with_capacity(16),
            limit: record_limit,
        }
    }

    /// Moves unread bytes to the front and reads more; grows the buffer when it is full.
    /// Returns false at the end of input.
    fn refill(&mut self) -> Result<bool, SourceError> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(read) => {
                    self.len += read;
                    return Ok(true);
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(SourceError::Io { line: self.line + 1, message: err.to_string() }),
            }
        }
    }

    /// Reads the next record, or `None` at the end of input.
    fn next_record(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        loop {
            let pending = &self.buf[self.pos..self.len];
            // The line ends at the first `\n`, `\r\n` or lone `\r` (a file saved with
            // classic Mac line ends has no `\n` at all).
            let (line_len, next) = match memchr::memchr2(b'\n', b'\r', pending) {
                Some(at) if pending[at] == b'\n' => (at, at + 1),
                Some(at) if at + 1 < pending.len() => (at, at + 1 + (pending[at + 1] == b'\n') as usize),
                // A `\r` last in the buffer: the next byte tells whether a `\n` follows.
                // A line longer than the limit is read through by csv-core, not held whole.
                Some(_) | None if !self.eof && pending.len() > self.limit => return self.next_record_slow(),
                Some(_) | None if !self.eof => {
                    self.refill()?;
                    continue;
                }
                Some(at) => (at, at + 1),
                None if pending.is_empty() => return Ok(None),
                None => (pending.len(), pending.len()),
            };
            let content = &pending[..line_len];
            if line_len > self.limit || memchr::memchr(b'"', content).is_some() {
                return self.next_record_slow();
            }
            let (start, line) = (self.pos, self.line + 1);
            self.pos += next;
            self.line += line_breaks(&mut self.after_cr, &pending[..next]);
            if content.is_empty() {
                continue;
            }
            let content_len = content.len();
            let raw = std::str::from_utf8(&self.buf[start..start + content_len])
                .map_err(|_| SourceError::InvalidUtf8 { line })?;
            self.spans.clear();
            let mut field_start = 0;
            for comma in memchr::memchr_iter(b',', raw.as_bytes()) {
                self.spans.push((field_start, comma));
                field_start = comma + 1;
            }
            self.spans.push((field_start, raw.len()));
            return Ok(Some(Record { line, raw, text: raw, spans: &self.spans, oversize: None }));
        }
    }

    /// Reads one record with csv-core (quoted fields, stray carriage returns, records over the
    /// limit). Line breaks are counted as the bytes are consumed, and only the first
    /// `limit + 2` bytes of the record (its terminator aside) are kept: past them, csv-core's
    /// output is dropped as it comes and the record is read through to its end.
    fn next_record_slow(&mut self) -> Result<Option<Record<'_>>, SourceError> {
        use csv_core::ReadRecordResult as Read;
        self.raw.clear();
        let (mut out_len, mut ends_len) = (0, 0);
        // Line breaks before the record (blank lines csv-core skips) and within it.
        let (mut blank, mut breaks) = (0u64, 0u64);
        let mut leading = true;
        // The record's bytes consumed (its terminator included) and the line breaks ending them.
        let (mut length, mut trailing) = (0u64, 0u64);
        let keep = self.limit.saturating_add(2);
        loop {
            let pending = &self.buf[self.pos..self.len];
            let (result, consumed, written, ended) =
                self.parser.read_record(pending, &mut self.out[out_len..], &mut self.ends[ends_len..]);
            let mut bytes = &pending[..consumed];
            if leading {
                let run = bytes.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
                blank += line_breaks(&mut self.after_cr, &bytes[..run]);
                bytes = &bytes[run..];
                leading = bytes.is_empty();
            }
            breaks += line_breaks(&mut self.after_cr, bytes);
            length += bytes.len() as u64;
            trailing = match bytes.iter().rposition(|b| !matches!(b, b'\r' | b'\n')) {
                Some(at) => (bytes.len() - at - 1) as u64,
                None => trailing + bytes.len() as u64,
            };
            let room = keep.saturating_sub(self.raw.len());
            self.raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
            self.pos += consumed;
            out_len += written;
            ends_len += ended;
            let over = length > keep as u64;
            match result {
                Read::InputEmpty => {
                    self.refill()?;
                }
                // Over the limit, the fields are not wanted: their text is dropped as it comes.
                Read::OutputFull if over => out_len = 0,
                Read::OutputEndsFull if over => ends_len = 0,
                Read::OutputFull => self.out.resize(self.out.len() * 2, 0),
                Read::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                Read::Record => break,
                Read::End => {
                    self.line += blank + breaks;
                    return Ok(None);
                }
            }
        }
        let start_line = self.line + blank + 1;
        self.line += blank + breaks;
        let invalid = SourceError::InvalidUtf8 { line: start_line };
        // The terminator is at most `\r\n`; more line breaks at the end are a quoted field's,
        // left open at the end of the input (they are trimmed off the payload all the same).
        let content = length - trailing.min(2);
        if content > self.limit as u64 {
            let raw = crate::head(&self.raw, self.limit).ok_or(invalid)?;
            let oversize = Some(Oversize { length: content, limit: self.limit });
            return Ok(Some(Record { line: start_line, raw, text: "", spans: &[], oversize }));
        }
        let raw = &self.raw[..self.raw.len() - trailing as usize];
        let raw = std::str::from_utf8(raw).map_err(|_| invalid.clone())?;
        let text = std::str::from_utf8(&self.out[..out_len]).map_err(|_| invalid)?;
        self.spans.clear();
        let mut start = 0;
        for &end in &self.ends[..ends_len] {
            self.spans.push((start, end));
            start = end;
        }
        Ok(Some(Record { line: start_line, raw, text, spans: &self.spans, oversize: None }))
    }

    fn read_header(&mut self) -> Result<(), SourceError> {
        while self.len < BOM.len() && self.refill()? {}
        if self.buf[..self.len].starts_with(BOM) {
            self.pos = BOM.len();
        }
        let record = self.next_record()?.ok_or(SourceError::Empty)?;
        if let Some(oversize) = record.oversize {
            let message =
                format!("the header is {} bytes, over the limit of {} bytes", oversize.length, oversize.limit);
            return Err(SourceError::Syntax { line: record.line, message });
        }
        // Owned, to free `self` for its column names: a header is read once per file.
        let header = record.raw.to_owned();
        let titles: Vec<String> =
            (0..record.spans.len()).map(|i| record.field(i).unwrap_or_default().to_owned()).collect();
        let mut columns = [usize::MAX; 5];
        for (index, name) in titles.iter().enumerate() {
            let Some(field) = self.names.field_of(name) else { continue };
            let slot = &mut columns[field as usize];
            if *slot != usize::MAX {
                return Err(SourceError::DuplicateColumn { column: self.names.describe(field) });
            }
            *slot = index;
        }
        let missing: Vec<_> = FieldName::ALL
            .into_iter()
            .filter(|field| columns[*field as usize] == usize::MAX)
            .map(|field| self.names.describe(field))
            .collect();
        if !missing.is_empty() {
            let separator = match titles.as_slice() {
                [only] => [';', '\t', '|'].into_iter().find(|&c| only.contains(c)),
                _ => None,
            };
            return Err(SourceError::MissingColumns { columns: missing, separator });
        }
        self.header_len = titles.len();
        self.header = Some(header);
        self.columns = columns;
        Ok(())
    }
}

impl<R: Read> RecordSource for CsvSource<R> {
    fn format(&self) -> SourceFormat {
        SourceFormat::Csv
    }

    fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    fn columns(&self) -> Option<&ColumnNames> {
        self.names.mapped()
    }

    fn start(&mut self) -> Result<(), SourceError> {
        if self.header.is_none() {
            self.read_header()?;
        }
        Ok(())
    }

    fn read_all(&mut self, visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>) -> Result<(), ReadError> {
        self.start()?;
        let (columns, header_len) = (self.columns, self.header_len);
        loop {
            self.read_plain_lines(visit)?;
            // Refills, a quoted record, an invalid line or the end of input.
            let Some(record) = self.next_record()? else { return Ok(()) };
            emit(columns, header_len, &record, visit)?;
        }
    }
}

/// Maps a record's columns to the five fields and hands the row to `visit`.
fn emit(
    columns: [usize; 5],
    header_len: usize,
    record: &Record<'_>,
    visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>,
) -> Result<(), ReadError> {
    if let Some(oversize) = record.oversize {
        return crate::visit_oversize(record.line, record.raw, oversize, visit).map_err(ReadError::Visit);
    }
    let mut raw = RawRecord { malformed: record.spans.len() > header_len, ..RawRecord::default() };
    for field in FieldName::ALL {
        if let Some(text) = record.field(columns[field as usize]) {
            raw.set(field, RawField::Text(text));
        }
    }
    let row =
        SourceRow { line: record.line, raw: record.raw, record: raw, parse_error: None, origin: None, oversize: None };
    visit(row).map_err(ReadError::Visit)
}

impl<R: Read> CsvSource<R> {
    /// The hot loop: visits every plain line (no quote, no stray carriage return) among the
    /// complete lines already buffered. UTF-8 is checked once for the whole region rather
    /// than line by line. Stops before the first line that needs csv-core, or that holds
    /// invalid UTF-8 (which `next_record` then reports with its line number).
    fn read_plain_lines(
        &mut self,
        visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>,
    ) -> Result<(), ReadError> {
        // The `\n` of a `\r\n` that csv-core ended a record at ends no line of its own.
        if self.after_cr && self.buf[self.pos..self.len].first() == Some(&b'\n') {
            self.pos += 1;
            self.after_cr = false;
        }
        let pending = &self.buf[self.pos..self.len];
        // Every complete line before the first quote or stray carriage return is plain (with
        // classic Mac line ends, none is: each goes to `next_record`, found in one short scan).
        let end = match first_special(pending) {
            Some(at) => memchr::memrchr(b'\n', &pending[..at]).map_or(0, |newline| newline + 1),
            None if self.eof => pending.len(),
            None => memchr::memrchr(b'\n', pending).map_or(0, |newline| newline + 1),
        };
        if end == 0 {
            return Ok(());
        }
        let region = &pending[..end];
        let plain = match std::str::from_utf8(region) {
            Ok(text) => text,
            Err(err) => match memchr::memrchr(b'\n', &region[..err.valid_up_to()]) {
                Some(at) => std::str::from_utf8(&region[..=at]).unwrap_or_default(),
                None => return Ok(()),
            },
        };
        let plain_len = plain.len();
        let bytes = plain.as_bytes();
        let (mut line_start, mut field_start) = (0, 0);
        let mut result = Ok(());
        let mut over = false;
        self.spans.clear();
        // One pass finds both the field and the line ends.
        for at in memchr::memchr2_iter(b',', b'\n', bytes) {
            if bytes[at] == b',' {
                self.spans.push((field_start - line_start, at - line_start));
                field_start = at + 1;
                continue;
            }
            let content_end = if at > line_start && bytes[at - 1] == b'\r' { at - 1 } else { at };
            if content_end - line_start > self.limit {
                // Over the limit: left for `next_record`.
                over = true;
                break;
            }
            self.line += 1;
            let content = &plain[line_start..content_end];
            self.spans.push((field_start - line_start, content_end - line_start));
            (line_start, field_start) = (at + 1, at + 1);
            if !content.is_empty() {
                let record =
                    Record { line: self.line, raw: content, text: content, spans: &self.spans, oversize: None };
                result = emit(self.columns, self.header_len, &record, visit);
            }
            self.spans.clear();
            if result.is_err() {
                break;
            }
        }
        // The last line of the input may have no line feed.
        if result.is_ok() && !over && line_start < plain_len && plain_len - line_start <= self.limit {
            let content = &plain[line_start..];
            self.spans.push((field_start - line_start, content.len()));
            let record =
                Record { line: self.line + 1, raw: content, text: content, spans: &self.spans, oversize: None };
            result = emit(self.columns, self.header_len, &record, visit);
            line_start = plain_len;
        }
        self.pos += line_start;
        if line_start > 0 {
            self.after_cr = false;
        }
        result
    }
}

/// Where the first byte that needs csv-core is: a quote, or a carriage return that does not
/// end a line.
fn first_special(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = memchr::memchr2(b'"', b'\r', &bytes[from..]) {
        let at = from + found;
        if bytes[at] == b'"' || bytes.get(at + 1) != Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row as the tests see it: line, raw text, the five fields as read, malformed.
    type Row = (u64, String, [String; 5], bool);

    /// Reads `input` and returns every row.
    fn rows(input: &[u8]) -> Result<Vec<Row>, ReadError> {
        rows_with(input, &[])
    }

    /// Reads `input` with the `FIELD=NAME` column mappings and returns every row.
    fn rows_with(input: &[u8], mappings: &[&str]) -> Result<Vec<Row>, ReadError> {
        let mut source = CsvSource::with_columns(input, ColumnNames::parse(mappings).unwrap());
        let mut out = Vec::new();
        source.read_all(&mut |row| {
            let fields = FieldName::ALL.map(|f| row.record.get(f).as_read().to_owned());
            out.push((row.line, row.raw.to_owned(), fields, row.record.malformed));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn maps_columns_by_name_in_any_order() {
        let out =
            rows(b"Provider, DATE ,extra,building_id,temperature,consumption\np,2024-01-01,x,B1,3.5,10\n").unwrap();
        assert_eq!(out.len(), 1);
        let (line, raw, fields, malformed) = &out[0];
        assert_eq!(*line, 2);
        assert_eq!(raw, "p,2024-01-01,x,B1,3.5,10");
        assert_eq!(fields, &["B1", "2024-01-01", "10", "3.5", "p"].map(String::from));
        assert!(!malformed);
    }

    #[test]
    fn bom_crlf_quotes_and_blank_lines() {
        let input = b"\xEF\xBB\xBFbuilding_id,date,consumption,temperature,provider\r\n\r\n\"B,1\",2024-01-01,\"1\"\"2\",3,\"multi\nline\"\r\nB2,2024-01-02,1,2,p\r\n";
        let out = rows(input).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, 3);
        assert_eq!(out[0].1, "\"B,1\",2024-01-01,\"1\"\"2\",3,\"multi\nline\"");
        assert_eq!(out[0].2[0], "B,1");
        assert_eq!(out[0].2[2], "1\"2");
        assert_eq!(out[0].2[4], "multi\nline");
        assert_eq!(out[1].0, 5);
    }

    #[test]
    fn short_rows_are_missing_fields_and_long_rows_are_malformed() {
        let out =
            rows(b"building_id,date,consumption,temperature,provider\nB1,2024-01-01\nB1,2024-01-01,1,2,p,extra\n")
                .unwrap();
        assert_eq!(out[0].2[2], "");
        assert!(!out[0].3);
        assert!(out[1].3);
        assert_eq!(out[1].2[4], "p");
    }

    #[test]
    fn last_line_without_newline() {
        let out = rows(b"building_id,date,consumption,temperature,provider\nB1,2024-01-01,1,2,p").unwrap();
        assert_eq!(out[0].1, "B1,2024-01-01,1,2,p");
    }

    #[test]
    fn mapped_columns_are_read_under_their_names() {
        let input = b"site,day,kwh,consumption,temperature,provider\nB1,2024-01-01,10,999,3.5,p\n";
        let out = rows_with(input, &["building_id=Site", "date=day", "consumption=kWh"]).unwrap();
        assert_eq!(out[0].2, ["B1", "2024-01-01", "10", "3.5", "p"].map(String::from), "consumption is extra now");
        let err = rows_with(b"site,date,consumption,temperature,provider\n", &["building_id=meter"]).unwrap_err();
        assert_eq!(err.to_string(), "line 1: header is missing required column(s): meter (building_id)");
        let err = rows_with(b"kwh,kwh,building_id,date,temperature,provider\n", &["consumption=kwh"]).unwrap_err();
        assert_eq!(err.to_string(), "line 1: column 'kwh (consumption)' appears more than once in the header");
    }

    #[test]
    fn header_errors() {
        let err = rows(b"building_id,date,kwh\nB1,2024-01-01,1\n").unwrap_err();
        assert_eq!(err.to_string(), "line 1: header is missing required column(s): consumption, temperature, provider");
        let err = rows(b"date,building_id,date,consumption,temperature,provider\n").unwrap_err();
        assert_eq!(err.to_string(), "line 1: column 'date' appears more than once in the header");
        assert!(matches!(rows(b""), Err(ReadError::Source(SourceError::Empty))));
    }

    #[test]
    fn a_header_in_another_separator_says_so() {
        let missing =
            "line 1: header is missing required column(s): building_id, date, consumption, temperature, provider";
        for (input, separator) in [
            (&b"building_id;date;consumption;temperature;provider\nB1;2024-01-01;1,5;2;p\n"[..], "';'"),
            (b"building_id\tdate\tconsumption\ttemperature\tprovider\n", "'\\t'"),
            (b"building_id|date|consumption|temperature|provider\n", "'|'"),
        ] {
            let err = rows(input).unwrap_err().to_string();
            let hint = format!(" (the header is one column separated by {separator}: emdp reads comma-separated CSV)");
            assert_eq!(err, format!("{missing}{hint}"));
        }
        // A header of several columns, or of one without another separator: no guess.
        let err = rows(b"building_id;date,kwh\n").unwrap_err().to_string();
        assert!(!err.contains("separated by"), "{err}");
        let err = rows(b"meter\n").unwrap_err().to_string();
        assert!(!err.contains("separated by"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err =
            rows(b"building_id,date,consumption,temperature,provider\nB1,2024-01-01,1,2,p\nB\xff,2024-01-01,1,2,p\n")
                .unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::InvalidUtf8 { line: 3 })));
    }

    #[test]
    fn long_fields_grow_the_buffers() {
        let long = "x".repeat(10_000);
        let input = format!(
            "building_id,date,consumption,temperature,provider{}\n{long},2024-01-01,1,2,p{}\n",
            ",c".repeat(40),
            ",v".repeat(40)
        );
        let out = rows(input.as_bytes()).unwrap();
        assert_eq!(out[0].2[0], long);
    }

    /// A row read under a limit: line, payload, building_id as read, oversize length.
    type LimitedRow = (u64, String, String, Option<u64>);

    /// Each row of `input` read with a record limit of `limit` bytes, a byte at a time or
    /// whole (asserted to agree): line, payload, the building_id as read, and the oversize
    /// length with its message.
    fn rows_limited(input: &[u8], limit: usize) -> Result<Vec<LimitedRow>, ReadError> {
        let read = |source: &mut dyn RecordSource| {
            let mut out = Vec::new();
            source.read_all(&mut |row| {
                assert_eq!(row.record.malformed, row.oversize.is_some() || row.record.malformed);
                if let Some(oversize) = row.oversize {
                    assert!(row.record.malformed);
                    assert_eq!(row.parse_error, Some(oversize.to_string().as_str()));
                    assert!(row.raw.len() <= limit);
                }
                let id = row.record.get(FieldName::BuildingId).as_read().to_owned();
                out.push((row.line, row.raw.to_owned(), id, row.oversize.map(|o| o.length)));
                Ok(())
            })?;
            Ok::<_, ReadError>(out)
        };
        let options = || SourceOptions { record_limit: limit, ..SourceOptions::default() };
        let whole = read(&mut CsvSource::with_options(input, options()));
        let trickled = read(&mut CsvSource::with_options(Trickle(input), options()));
        assert_eq!(format!("{whole:?}"), format!("{trickled:?}"));
        whole
    }

    const HEADER: &str = "building_id,date,consumption,temperature,provider\n";

    #[test]
    fn a_row_over_the_limit_is_one_malformed_row_and_the_rows_after_it_are_read() {
        let long = format!("B{}", "x".repeat(63));
        let input = format!("{HEADER}{long},d,1,2,p\n{long}\nB2,d,1,2,p\r\n\n{}\nB3,d,1,2,p", "y".repeat(65));
        let out = rows_limited(input.as_bytes(), 64).unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(out[0], (2, long.clone(), String::new(), Some(72)), "72 bytes, the first 64 kept");
        assert_eq!(out[1], (3, long.clone(), long.clone(), None), "exactly the limit is read as usual");
        assert_eq!(out[2], (4, "B2,d,1,2,p".to_owned(), "B2".to_owned(), None));
        assert_eq!(out[3], (6, "y".repeat(64), String::new(), Some(65)), "the limit plus one byte");
        assert_eq!(out[4], (7, "B3,d,1,2,p".to_owned(), "B3".to_owned(), None));
    }

    #[test]
    fn a_quoted_field_spanning_lines_past_the_limit_is_cut_and_counted_whole() {
        let field = "line\n".repeat(20);
        let input = format!("{HEADER}B1,d,1,2,\"{field}\"\r\nB2,d,1,2,p\n\"B3\",d,1,2,p\n");
        let out = rows_limited(input.as_bytes(), 64).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!((out[0].0, out[0].3), (2, Some(11 + field.len() as u64)));
        assert!(out[0].1.starts_with("B1,d,1,2,\"line\nline"), "{:?}", out[0].1);
        assert_eq!((out[1].0, out[1].2.as_str(), out[1].3), (23, "B2", None), "lines counted through the cut field");
        assert_eq!((out[2].0, out[2].2.as_str(), out[2].3), (24, "B3", None));
        // The cut never splits a character.
        let out = rows_limited(format!("{HEADER}{}é,x\n", "a".repeat(63)).as_bytes(), 64).unwrap();
        assert_eq!((out[0].1.len(), out[0].3), (63, Some(67)));
    }

    #[test]
    fn a_line_without_end_is_read_through_in_bounded_memory() {
        // 4 MiB of zeros and no line break: the buffers stay near the limit.
        let mut input = HEADER.as_bytes().to_vec();
        input.resize(input.len() + (4 << 20), 0);
        let mut source =
            CsvSource::with_options(&input[..], SourceOptions { record_limit: 1024, ..Default::default() });
        let mut seen = Vec::new();
        source
            .read_all(&mut |row| {
                seen.push((row.line, row.raw.len(), row.oversize.map(|o| o.length)));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(2, 1024, Some(4 << 20))]);
        assert!(source.buf.len() <= 2 * BUFFER + 4096, "{}", source.buf.len());
        assert!(
            source.raw.capacity() <= 4096 && source.out.len() <= 4096,
            "{} {}",
            source.raw.capacity(),
            source.out.len()
        );
    }

    #[test]
    fn a_header_over_the_limit_is_a_file_error() {
        let err = rows_limited(format!("{}\nB1\n", "h".repeat(100)).as_bytes(), 64).unwrap_err();
        assert_eq!(err.to_string(), "line 1: the header is 100 bytes, over the limit of 64 bytes");
    }

    /// The records and fields the `csv` crate finds after the header.
    fn csv_crate_records(input: &[u8]) -> Vec<Vec<String>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
        reader
            .byte_records()
            .map(|r| r.unwrap().iter().map(|f| String::from_utf8(f.to_vec()).unwrap()).collect())
            .collect()
    }

    /// The fields this source finds, in header order (a..e plus extras are not exposed, so
    /// the header names the five columns and every row is compared on them).
    fn our_records(input: &[u8]) -> Vec<Vec<String>> {
        rows(input).unwrap().into_iter().map(|(_, _, fields, _)| fields.to_vec()).collect()
    }

    /// A reader that hands out one byte per read: every line end straddles a refill.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&byte, rest)), Some(slot)) => {
                    *slot = byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// The line of each record `input` holds, read whole or a byte at a time.
    fn record_lines(input: &[u8], trickle: bool) -> Vec<u64> {
        let mut lines = Vec::new();
        let mut collect = |row: SourceRow<'_>| {
            lines.push(row.line);
            Ok(())
        };
        if trickle {
            CsvSource::new(Trickle(input)).read_all(&mut collect).unwrap();
        } else {
            CsvSource::new(input).read_all(&mut collect).unwrap();
        }
        lines
    }

    /// 1 + the line ends (`\r\n`, `\r`, `\n`) in `input` before `offset`: the definition.
    fn line_at(input: &[u8], offset: usize) -> u64 {
        let (mut line, mut at) = (1, 0);
        while at < offset {
            if input[at] == b'\r' && input.get(at + 1) == Some(&b'\n') {
                at += 1;
            }
            line += u64::from(matches!(input[at], b'\r' | b'\n'));
            at += 1;
        }
        line
    }

    #[test]
    fn classic_mac_and_mixed_line_ends_number_lines_like_unix_ones() {
        let unix = b"building_id,date,consumption,temperature,provider\nB1,2024-01-01,1,2,p\n\nB2,2024-01-01,1,2,p\n";
        let mac = b"building_id,date,consumption,temperature,provider\rB1,2024-01-01,1,2,p\r\rB2,2024-01-01,1,2,p\r";
        let mixed =
            b"building_id,date,consumption,temperature,provider\r\nB1,2024-01-01,1,2,p\r\nB2,2024-01-01,1,2,p\n";
        for trickle in [false, true] {
            assert_eq!(record_lines(unix, trickle), [2, 4]);
            assert_eq!(record_lines(mac, trickle), [2, 4]);
            assert_eq!(record_lines(mixed, trickle), [2, 3]);
        }
        let out = rows(mac).unwrap();
        assert_eq!(out[1].1, "B2,2024-01-01,1,2,p");
        assert_eq!(out[1].2[4], "p");
    }

    proptest::proptest! {
        #[test]
        fn records_are_numbered_by_the_line_they_start_on(
            lines in proptest::collection::vec((
                proptest::sample::select(vec!["", "B1,2024-01-01,1,2,p", "x", "\"q\r\nx\",y", "\"q\rx\"", "\"\""]),
                proptest::sample::select(vec!["\n", "\r", "\r\n"]),
            ), 0..30),
            trickle: bool,
        ) {
            let mut input = b"building_id,date,consumption,temperature,provider\n".to_vec();
            let mut starts = Vec::new();
            for (text, end) in &lines {
                if !text.is_empty() {
                    starts.push(input.len());
                }
                input.extend(text.as_bytes());
                input.extend(end.as_bytes());
            }
            let expected: Vec<u64> = starts.iter().map(|&offset| line_at(&input, offset)).collect();
            proptest::prop_assert_eq!(record_lines(&input, trickle), expected);
        }

        #[test]
        fn a_small_limit_cuts_records_but_numbers_them_all_alike(
            body in proptest::collection::vec(proptest::sample::select(vec!["a", "bb", ",", "\"", "\n", "\r", "\r\n", "xxxxxxxxxxxxxxxxxxxxxxxxx"]), 0..60),
            limit in 50usize..80,
        ) {
            // The header (50 bytes) fits; records are cut at 50 to 79 bytes.
            let mut input = HEADER.as_bytes().to_vec();
            input.extend(body.concat().into_bytes());
            let lines = |limit: usize| -> Vec<(u64, bool)> {
                let options = SourceOptions { record_limit: limit, ..SourceOptions::default() };
                let mut out = Vec::new();
                let _ = CsvSource::with_options(Trickle(&input), options).read_all(&mut |row| {
                    out.push((row.line, row.oversize.is_some()));
                    Ok(())
                });
                out
            };
            let (cut, whole) = (lines(limit), lines(1 << 20));
            proptest::prop_assert!(!whole.iter().any(|(_, cut)| *cut));
            proptest::prop_assert_eq!(
                cut.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
                whole.iter().map(|(line, _)| *line).collect::<Vec<_>>()
            );
        }

        #[test]
        fn agrees_with_the_csv_crate(body in proptest::collection::vec(proptest::sample::select(vec!["a", "b", ",", "\"", "\n", "\r", "\r\n", " "]), 0..60)) {
            let mut input = b"building_id,date,consumption,temperature,provider\n".to_vec();
            input.extend(body.concat().into_bytes());
            let expected: Vec<Vec<String>> = csv_crate_records(&input)
                .into_iter()
                .map(|mut fields| { fields.resize(5, String::new()); fields.truncate(5); fields })
                .collect();
            proptest::prop_assert_eq!(our_records(&input), expected);
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut input = b"building_id,date,consumption,temperature,provider\n".to_vec();
            input.extend(body);
            let _ = rows(&input);
        }
    }
}
