//! MongoDB dumps: the `energy_records` collection of the original Python MVP as written by
//! `mongoexport`, in MongoDB Extended JSON (relaxed or canonical), one document per line (the
//! default), pretty-printed over several lines (`--pretty`), or as one JSON array
//! (`--jsonArray`, pretty or not).
//!
//! Each document becomes one row whose payload is the document's text exactly as read. The
//! five fields are matched like JSON keys (trimmed, case-insensitive) and unwrapped from
//! Extended JSON:
//!
//! - numbers: plain JSON numbers, or `{"$numberDouble"|"$numberInt"|"$numberLong"|"$numberDecimal": "..."}`,
//!   kept as their text (so `"NaN"` and `"Infinity"` are found unparsable by the domain);
//! - dates: `{"$date": "2024-01-15T00:00:00Z"}`, `{"$date": {"$numberLong": "<ms>"}}` or
//!   `{"$date": <ms>}` become the UTC calendar day `2024-01-15`; a plain string is kept as is;
//! - `{"$oid": "..."}` becomes its hex text; any other object is a value of the wrong type.
//!
//! `_id` and `created_at` are carried as the row's [`Origin`] (the ObjectId's hex, the
//! creation time), so that the raw store keeps them. Every other key, including the MVP's
//! stored `data_quality`, `quality_status` and `is_duplicate`, is ignored: quality is
//! recomputed. A document that is not a JSON object is a `malformed_row` kept with its parse
//! error, like any other row; so is one longer than the limit (1 MiB by default), read through
//! without being held.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use chrono::{DateTime, NaiveDateTime, Utc};
use emdp_app::ports::source::Origin;
use emdp_app::ports::{
    Oversize, RECORD_LIMIT, ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError,
};
use emdp_domain::{FieldName, RawField, RawRecord};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::json_source::{broken_document, utf8};
use crate::json_values::{self, Item, JsonValues};

/// How the dump is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Documents one after another, each on one line or pretty-printed over several; `skipped`
    /// lines (blank, before the first document) were consumed while looking at the first byte.
    Lines { skipped: u64 },
    /// One JSON array of documents.
    Array { skipped: u64 },
}

/// A `mongoexport` dump of MongoDB Extended JSON documents, read as a record source.
pub struct MongoSource<R> {
    input: Option<R>,
    layout: Layout,
    /// An I/O error met while looking at the start of the input, reported by `read_all`.
    error: Option<SourceError>,
    /// The most bytes a document may take.
    limit: usize,
}

impl<R: BufRead> MongoSource<R> {
    /// A source over `input`. Looks at the first non-blank byte to tell one document per line
    /// from a JSON array (`[`).
    pub fn new(input: R) -> Self {
        Self::with_limit(input, RECORD_LIMIT)
    }

    /// A source over `input` whose documents may take at most `limit` bytes each.
    pub fn with_limit(mut input: R, limit: usize) -> Self {
        let (layout, error) = match skip_blank(&mut input) {
            Ok((skipped, Some(b'['))) => (Layout::Array { skipped }, None),
            Ok((skipped, _)) => (Layout::Lines { skipped }, None),
            Err(err) => (Layout::Lines { skipped: 0 }, Some(SourceError::Io { line: 1, message: err.to_string() })),
        };
        let input = error.is_none().then_some(input);
        MongoSource { input, layout, error, limit }
    }
}

/// Consumes a UTF-8 byte order mark and blank space at the start of `input`; returns how many
/// line breaks were consumed and the first byte after them (not consumed).
fn skip_blank(input: &mut impl BufRead) -> std::io::Result<(u64, Option<u8>)> {
    let mut newlines = 0u64;
    let mut first = true;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok((newlines, None));
        }
        if std::mem::take(&mut first) && buf.starts_with(b"\xEF\xBB\xBF") {
            input.consume(3);
            continue;
        }
        let blank = buf.iter().position(|b| !b.is_ascii_whitespace());
        let end = blank.unwrap_or(buf.len());
        newlines += buf[..end].iter().filter(|&&b| b == b'\n').count() as u64;
        let next = blank.map(|at| buf[at]);
        input.consume(end);
        if next.is_some() {
            return Ok((newlines, next));
        }
    }
}

impl<R: BufRead> RecordSource for MongoSource<R> {
    fn format(&self) -> SourceFormat {
        match self.layout {
            Layout::Lines { .. } => SourceFormat::Ndjson,
            Layout::Array { .. } => SourceFormat::Json,
        }
    }

    fn header(&self) -> Option<&str> {
        None
    }

    fn read_all(&mut self, visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>) -> Result<(), ReadError> {
        if let Some(err) = self.error.take() {
            return Err(err.into());
        }
        let Some(input) = self.input.take() else { return Ok(()) };
        let mut scratch = Scratch::default();
        let (layout, skipped) = match self.layout {
            Layout::Lines { skipped } => (json_values::Layout::Sequence, skipped),
            Layout::Array { skipped } => (json_values::Layout::Array, skipped),
        };
        let array = layout == json_values::Layout::Array;
        let mut documents = JsonValues::new(input, layout, self.limit, skipped);
        let mut position = 0u64;
        while let Some(item) = documents.next()? {
            position += 1;
            // A row's line: where the document starts, or its position in the array.
            let row_line = |line| if array { position } else { line };
            match item {
                Item::Value { line, text } => {
                    let text = utf8(text, line)?;
                    // In an array, a syntax error breaks the whole document.
                    visit_document(row_line(line), text, &mut scratch, array.then_some(line), visit)?;
                }
                Item::Oversize { line, head, length } => {
                    let head = crate::head(head, self.limit).ok_or(SourceError::InvalidUtf8 { line })?;
                    let oversize = Oversize { length, limit: self.limit };
                    crate::visit_oversize(row_line(line), head, oversize, visit).map_err(ReadError::Visit)?;
                }
            }
        }
        Ok(())
    }
}

/// The values of one document this source reads, borrowed from its text.
#[derive(Default)]
struct Document<'a> {
    fields: [Option<&'a RawValue>; 5],
    id: Option<&'a RawValue>,
    created_at: Option<&'a RawValue>,
}

impl<'de> de::Deserialize<'de> for Document<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DocumentVisitor;
        impl<'de> Visitor<'de> for DocumentVisitor {
            type Value = Document<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut document = Document::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    let slot = match FieldName::from_header(&key) {
                        Some(field) => &mut document.fields[field as usize],
                        None if key == "_id" => &mut document.id,
                        None if key == "created_at" => &mut document.created_at,
                        None => continue,
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!("duplicate key `{}`", key.trim())));
                    }
                    *slot = Some(value);
                }
                Ok(document)
            }
        }
        deserializer.deserialize_map(DocumentVisitor)
    }
}

/// What a field's value is, its text (if any) being written to the field's scratch string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Absent,
    Text,
    WrongType,
}

/// Buffers the unwrapped values of one document live in, reused from document to document.
#[derive(Default)]
struct Scratch {
    fields: [String; 5],
    id: String,
}

/// One Extended JSON wrapper object (`{"$numberDouble": "1.5"}`, `{"$date": ...}`, ...).
enum Extended {
    /// A number wrapper's text, or an ObjectId's hex.
    Text(String),
    /// A date.
    Date(DateTime<Utc>),
    /// A `$date` whose value could not be read as a time: kept as its text.
    UnreadableDate(String),
}

/// Reads `{"$xxx": value}` wrappers; `None` for any other object.
fn extended(json: &str) -> Option<Extended> {
    let object: HashMap<Cow<'_, str>, &RawValue> = serde_json::from_str(json).ok()?;
    if object.len() != 1 {
        return None;
    }
    let (key, value) = object.into_iter().next()?;
    let value = value.get();
    match key.as_ref() {
        "$numberDouble" | "$numberInt" | "$numberLong" | "$numberDecimal" => scalar_text(value).map(Extended::Text),
        "$oid" => string(value).map(Extended::Text),
        "$date" => Some(match date_value(value) {
            Some(time) => Extended::Date(time),
            None => Extended::UnreadableDate(scalar_text(value).unwrap_or_else(|| value.to_owned())),
        }),
        _ => None,
    }
}

/// A JSON string's content.
fn string(json: &str) -> Option<String> {
    json.starts_with('"').then(|| serde_json::from_str::<String>(json).ok()).flatten()
}

/// A JSON string's content or a JSON number's literal text.
fn scalar_text(json: &str) -> Option<String> {
    match json.as_bytes().first()? {
        b'"' => string(json),
        b'-' | b'0'..=b'9' => Some(json.to_owned()),
        _ => None,
    }
}

/// The value of a `$date`: an ISO 8601 string, milliseconds since the Unix epoch as a number,
/// or `{"$numberLong": "<ms>"}`.
fn date_value(json: &str) -> Option<DateTime<Utc>> {
    match json.as_bytes().first()? {
        b'"' => parse_time(&string(json)?),
        b'{' => match extended(json)? {
            Extended::Text(millis) => DateTime::from_timestamp_millis(millis.trim().parse().ok()?),
            _ => None,
        },
        _ => DateTime::from_timestamp_millis(json.trim().parse().ok()?),
    }
}

/// An ISO 8601 time: RFC 3339 (`2024-01-15T10:00:00.000Z`), an offset without a colon
/// (`+0000`, older mongoexport), or a time without offset (taken as UTC, as Python's naive
/// datetimes are stored by pymongo).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(time.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|time| time.and_utc())
}

/// Interprets one field's JSON value, writing its text to `out`.
fn field_value(json: &str, out: &mut String) -> Kind {
    out.clear();
    match json.as_bytes().first() {
        None | Some(b'n') => Kind::Absent,
        Some(b'"') => {
            out.push_str(&string(json).unwrap_or_default());
            Kind::Text
        }
        Some(b't' | b'f' | b'[') => Kind::WrongType,
        Some(b'{') => match extended(json) {
            Some(Extended::Text(text) | Extended::UnreadableDate(text)) => {
                *out = text;
                Kind::Text
            }
            Some(Extended::Date(time)) => {
                *out = time.date_naive().format("%Y-%m-%d").to_string();
                Kind::Text
            }
            None => Kind::WrongType,
        },
        Some(_) => {
            out.push_str(json);
            Kind::Text
        }
    }
}

/// The document's `_id` as text: an ObjectId's hex, a string's content, a number wrapper's
/// text; any other value as its JSON text.
fn original_id(json: &str, out: &mut String) {
    out.clear();
    let text = match json.as_bytes().first() {
        Some(b'{') => match extended(json) {
            Some(Extended::Text(text)) => Some(text),
            _ => None,
        },
        _ => scalar_text(json),
    };
    out.push_str(text.as_deref().unwrap_or(json));
}

/// The document's `created_at`: a `$date` or an ISO 8601 string.
fn created_at(json: &str) -> Option<DateTime<Utc>> {
    match json.as_bytes().first()? {
        b'"' => parse_time(&string(json)?),
        b'{' => match extended(json)? {
            Extended::Date(time) => Some(time),
            _ => None,
        },
        _ => None,
    }
}

/// Turns one document's text into a row and hands it to `visit`. `strict`: the line the text
/// starts on when a syntax error in it breaks the whole dump (an array).
fn visit_document(
    line: u64,
    text: &str,
    scratch: &mut Scratch,
    strict: Option<u64>,
    visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>,
) -> Result<(), ReadError> {
    let document = match serde_json::from_str::<Document<'_>>(text) {
        Ok(document) => document,
        Err(err) => {
            if let Some(broken) = broken_document(&err, strict) {
                return Err(broken.into());
            }
            let message = err.to_string();
            let record = RawRecord { malformed: true, ..RawRecord::default() };
            let row = SourceRow { line, raw: text, record, parse_error: Some(&message), origin: None, oversize: None };
            return visit(row).map_err(ReadError::Visit);
        }
    };
    let mut kinds = [Kind::Absent; 5];
    for field in FieldName::ALL {
        if let Some(value) = document.fields[field as usize] {
            kinds[field as usize] = field_value(value.get(), &mut scratch.fields[field as usize]);
        }
    }
    if let Some(id) = document.id {
        original_id(id.get(), &mut scratch.id);
    }
    let mut record = RawRecord::default();
    for field in FieldName::ALL {
        let value = match kinds[field as usize] {
            Kind::Absent => RawField::Absent,
            Kind::Text => RawField::Text(&scratch.fields[field as usize]),
            Kind::WrongType => RawField::WrongType(document.fields[field as usize].map_or("", RawValue::get)),
        };
        record.set(field, value);
    }
    let origin = Origin {
        id: document.id.map(|_| scratch.id.as_str()),
        created_at: document.created_at.and_then(|value| created_at(value.get())),
    };
    let origin = (origin != Origin::default()).then_some(origin);
    visit(SourceRow { line, raw: text, record, parse_error: None, origin, oversize: None }).map_err(ReadError::Visit)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A row as read: line, payload, the five fields, malformed, parse error, origin.
    #[derive(Debug)]
    struct Row {
        line: u64,
        raw: String,
        fields: [String; 5],
        malformed: bool,
        parse_error: Option<String>,
        id: Option<String>,
        created_at: Option<DateTime<Utc>>,
    }

    fn read(input: &str) -> Result<(SourceFormat, Vec<Row>), ReadError> {
        let mut source = MongoSource::new(input.as_bytes());
        let format = source.format();
        let mut out = Vec::new();
        source.read_all(&mut |row| {
            out.push(Row {
                line: row.line,
                raw: row.raw.to_owned(),
                fields: FieldName::ALL.map(|f| match row.record.get(f) {
                    RawField::Absent => "<absent>".to_owned(),
                    RawField::Text(t) => t.to_owned(),
                    RawField::WrongType(t) => format!("<wrong {t}>"),
                }),
                malformed: row.record.malformed,
                parse_error: row.parse_error.map(str::to_owned),
                id: row.origin.and_then(|o| o.id).map(str::to_owned),
                created_at: row.origin.and_then(|o| o.created_at),
            });
            Ok(())
        })?;
        Ok((format, out))
    }

    fn fields(values: [&str; 5]) -> [String; 5] {
        values.map(String::from)
    }

    const CANONICAL: &str = r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"building_id":"B1","date":{"$date":{"$numberLong":"1705276800000"}},"consumption":{"$numberDouble":"12.5"},"temperature":{"$numberInt":"21"},"provider":"acme","data_quality":"valid","quality_status":"VALID","is_duplicate":false,"created_at":{"$date":{"$numberLong":"1705312800000"}}}"#;

    const RELAXED: &str = r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4c"},"building_id":"B2","date":{"$date":"2024-01-15T00:00:00Z"},"consumption":12.5,"temperature":21,"provider":"acme","data_quality":"invalid","created_at":{"$date":"2024-01-15T10:00:00.000Z"}}"#;

    #[test]
    fn canonical_documents_are_unwrapped() {
        let (format, rows) = read(&format!("{CANONICAL}\n")).unwrap();
        assert_eq!(format, SourceFormat::Ndjson);
        let row = &rows[0];
        assert_eq!((row.line, row.raw.as_str()), (1, CANONICAL), "the payload is the document exactly");
        assert_eq!(row.fields, fields(["B1", "2024-01-15", "12.5", "21", "acme"]));
        assert!(!row.malformed);
        assert_eq!(row.id.as_deref(), Some("65a1b2c3d4e5f60718293a4b"));
        assert_eq!(row.created_at, Some(Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap()));
    }

    #[test]
    fn relaxed_documents_and_plain_values() {
        let plain = r#"{"building_id":"B3","date":"2024-01-16","consumption":{"$numberLong":"7"},"temperature":{"$numberDecimal":"1.50"},"provider":"p","created_at":"2024-01-16 08:30:00"}"#;
        let (_, rows) = read(&format!("{RELAXED}\r\n{plain}")).unwrap();
        assert_eq!(rows[0].fields, fields(["B2", "2024-01-15", "12.5", "21", "acme"]));
        assert_eq!(rows[0].created_at, Some(Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap()));
        assert_eq!(rows[0].raw, RELAXED);
        assert_eq!(rows[1].fields, fields(["B3", "2024-01-16", "7", "1.50", "p"]));
        assert_eq!(rows[1].id, None);
        assert_eq!(rows[1].created_at, Some(Utc.with_ymd_and_hms(2024, 1, 16, 8, 30, 0).unwrap()));
    }

    #[test]
    fn dates_are_utc_days_in_every_encoding() {
        for date in [
            r#"{"$date":"2024-01-15T23:30:00+0000"}"#,
            r#"{"$date":"2024-01-15T23:30:00.123Z"}"#,
            r#"{"$date":1705361400000}"#,
            r#"{"$date":{"$numberLong":"1705361400000"}}"#,
            r#""2024-01-15""#,
        ] {
            let (_, rows) = read(&format!(r#"{{"date":{date}}}"#)).unwrap();
            assert_eq!(rows[0].fields[1], "2024-01-15", "{date}");
        }
        let (_, rows) = read(r#"{"date":{"$date":"yesterday"},"created_at":{"$date":"soon"}}"#).unwrap();
        assert_eq!(rows[0].fields[1], "yesterday", "an unreadable date is kept for the rules to reject");
        assert_eq!(rows[0].created_at, None);
    }

    #[test]
    fn odd_values_keep_their_text_or_are_of_the_wrong_type() {
        let (_, rows) = read(
            r#"{"building_id":{"$oid":"abc"},"date":null,"consumption":{"$numberDouble":"NaN"},"temperature":{"x":1},"provider":true,"_id":7}"#,
        )
        .unwrap();
        assert_eq!(rows[0].fields, fields(["abc", "<absent>", "NaN", "<wrong {\"x\":1}>", "<wrong true>"]));
        assert_eq!(rows[0].id.as_deref(), Some("7"));
        let (_, rows) = read(r#"{"_id":{"$uuid":"u"},"consumption":1e999}"#).unwrap();
        assert_eq!(rows[0].id.as_deref(), Some(r#"{"$uuid":"u"}"#));
        assert_eq!(rows[0].fields[2], "1e999");
        assert_eq!(rows[0].fields[0], "<absent>", "a missing field is absent, not an error");
    }

    #[test]
    fn non_documents_are_malformed_rows() {
        let (_, rows) = read("\n\nnot json\n[1]\n{\"date\":1,\"Date\":2}\n\"text\"\n").unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4, 5, 6]);
        for row in &rows {
            assert!(row.malformed, "{row:?}");
            assert!(row.parse_error.is_some());
            assert_eq!(row.id, None);
        }
        assert_eq!(rows[0].raw, "not json");
        assert!(rows[2].parse_error.as_deref().unwrap().contains("duplicate key"));
    }

    #[test]
    fn an_array_dump_is_read_element_by_element() {
        let input = format!("\u{feff}\n[\n{CANONICAL},\n{RELAXED}\n, 42]\n");
        let (format, rows) = read(&input).unwrap();
        assert_eq!(format, SourceFormat::Json);
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].line, rows[0].raw.as_str()), (1, CANONICAL));
        assert_eq!((rows[1].line, rows[1].raw.as_str()), (2, RELAXED));
        assert!(rows[2].malformed);
    }

    #[test]
    fn broken_files_are_file_errors_with_their_line() {
        let err = read("\n\n[{},\n{").unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::Syntax { line: 4, .. })), "{err:?}");
        let mut source = MongoSource::new(&b"\n{}\n{\"a\":\"\xff\"}\n"[..]);
        let err = source.read_all(&mut |_| Ok(())).unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::InvalidUtf8 { line: 3 })), "{err:?}");
    }

    #[test]
    fn pretty_printed_dumps_are_read_document_by_document() {
        let pretty = |document: &str| {
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(document).unwrap()).unwrap()
        };
        let (first, second) = (pretty(CANONICAL), pretty(RELAXED));
        let lines = first.lines().count() as u64;
        // `mongoexport --pretty`: documents one after another, each over several lines.
        let (format, rows) = read(&format!("{first}\n{second}\n")).unwrap();
        assert_eq!(format, SourceFormat::Ndjson);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].raw.as_str()), (1, first.as_str()), "the payload is the document as read");
        assert_eq!(rows[0].fields, fields(["B1", "2024-01-15", "12.5", "21", "acme"]));
        assert_eq!(rows[0].id.as_deref(), Some("65a1b2c3d4e5f60718293a4b"));
        assert_eq!(rows[1].line, lines + 1, "numbered by the line it starts on");
        assert_eq!(rows[1].fields, fields(["B2", "2024-01-15", "12.5", "21", "acme"]));
        assert!(rows.iter().all(|row| !row.malformed));
        // `--jsonArray --pretty`.
        let (format, rows) = read(&format!("[\n{first},\n{second}\n]\n")).unwrap();
        assert_eq!(format, SourceFormat::Json);
        assert_eq!(rows.iter().map(|row| row.line).collect::<Vec<_>>(), [1, 2]);
        assert!(rows.iter().all(|row| !row.malformed));
        // A document cut short does not swallow the ones after it.
        let (_, rows) = read(&format!("{{\"building_id\": \"B\n{first}\n")).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].malformed);
        assert_eq!((rows[1].line, rows[1].malformed), (2, false));
    }

    #[test]
    fn a_document_over_the_limit_is_one_malformed_row() {
        let long = format!("{{\"building_id\":\"{}\"}}", "x".repeat(100));
        let short = r#"{"building_id":"B1"}"#;
        let input = format!("{long}\n{short}\n");
        let mut source = MongoSource::with_limit(input.as_bytes(), 64);
        let mut rows = Vec::new();
        source
            .read_all(&mut |row| {
                rows.push((row.line, row.raw.len(), row.record.malformed, row.oversize.map(|o| o.length)));
                Ok(())
            })
            .unwrap();
        assert_eq!(rows, [(1, 64, true, Some(long.len() as u64)), (2, short.len(), false, None)]);
    }

    #[test]
    fn empty_input_has_no_rows() {
        assert!(read("").unwrap().1.is_empty());
        assert!(read(" \n\n").unwrap().1.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = read(&text);
        }
    }
}
