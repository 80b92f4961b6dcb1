//! JSON sources: NDJSON (one object per line) and a JSON array of objects.
//!
//! Keys are matched like CSV headers (trimmed, case-insensitive); unknown keys are ignored.
//! A string is text; a number is kept as its literal text (so `1e999` is found unparsable by
//! the domain, not rejected by the JSON parser); `null` is missing; `true`, objects and arrays
//! are values of the wrong type. A line or element that is not a JSON object is a
//! `malformed_row` with no fields, kept with its parse error; so is one longer than the limit
//! ([`SourceOptions::record_limit`]), read through to its end without being held.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;

use emdp_app::ports::{Oversize, ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError};
use emdp_domain::{ColumnNames, FieldName, RawField, RawRecord};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::SourceOptions;
use crate::json_values::{Item, JsonValues, Layout};

/// The five values of one JSON object, borrowed from its text.
#[derive(Default)]
struct JsonFields<'a> {
    values: [Option<&'a RawValue>; 5],
}

/// Reads a [`JsonFields`], taking each field from the key the names give it.
struct ObjectSeed<'n>(&'n ColumnNames);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = JsonFields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = JsonFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = JsonFields::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            if let Some(field) = self.0.field_of(&key) {
                let slot = &mut fields.values[field as usize];
                if slot.is_some() {
                    return Err(de::Error::custom(format_args!("duplicate key `{}`", self.0.name(field))));
                }
                *slot = Some(value);
            }
        }
        Ok(fields)
    }
}

/// Reads the object `text` (nothing but whitespace after it).
fn object<'t>(text: &'t str, names: &ColumnNames) -> serde_json::Result<JsonFields<'t>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let fields = ObjectSeed(names).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(fields)
}

/// The file error for a value that is not JSON at all, when it breaks the document it is part
/// of (an array's element, starting on line `start`); `None` for a value that is JSON of
/// another shape (not an object, a key twice), which is a malformed row.
pub(crate) fn broken_document(err: &serde_json::Error, start: Option<u64>) -> Option<SourceError> {
    let start = start?;
    if !(err.is_syntax() || err.is_eof()) {
        return None;
    }
    let message = err.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    Some(SourceError::Syntax { line: start + err.line().saturating_sub(1) as u64, message })
}

/// A value's text, or the file error for bytes that are not UTF-8 (on the line they are).
pub(crate) fn utf8(text: &[u8], start: u64) -> Result<&str, SourceError> {
    std::str::from_utf8(text).map_err(|err| SourceError::InvalidUtf8 {
        line: start + crate::line_breaks(&mut false, &text[..err.valid_up_to()]),
    })
}

/// Turns one JSON text into a row and hands it to `visit`. `scratch` holds strings that
/// needed unescaping, so the row can borrow them. `strict`: the line the text starts on when
/// it is part of a larger document, which a syntax error then breaks (see [`broken_document`]).
fn visit_object(
    line: u64,
    text: &str,
    names: &ColumnNames,
    scratch: &mut [String; 5],
    strict: Option<u64>,
    visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>,
) -> Result<(), ReadError> {
    let fields = match object(text, names) {
        Ok(fields) => fields,
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
    // Which escaped strings unescaped: one holding a lone surrogate (`"Z\\ud800"`) is valid JSON
    // but no Rust string, so it is a value of the wrong type (an invalid identifier, an
    // unparsable number), never an absent one; the payload is kept raw either way.
    let mut unescaped = [false; 5];
    for ((slot, value), ok) in scratch.iter_mut().zip(&fields.values).zip(&mut unescaped) {
        if let Some(json) = value.map(|v| v.get()).filter(|json| json.starts_with('"') && json.contains('\\'))
            && let Ok(text) = serde_json::from_str::<String>(json)
        {
            *slot = text;
            *ok = true;
        }
    }
    let mut record = RawRecord::default();
    for field in FieldName::ALL {
        let Some(json) = fields.values[field as usize].map(RawValue::get) else { continue };
        let value = match json.as_bytes()[0] {
            b'"' if json.contains('\\') && unescaped[field as usize] => RawField::Text(&scratch[field as usize]),
            b'"' if json.contains('\\') => RawField::WrongType(json),
            b'"' => RawField::Text(&json[1..json.len() - 1]),
            b'n' => RawField::Absent,
            b't' | b'f' | b'{' | b'[' => RawField::WrongType(json),
            _ => RawField::Text(json),
        };
        record.set(field, value);
    }
    visit(SourceRow { line, raw: text, record, parse_error: None, origin: None, oversize: None })
        .map_err(ReadError::Visit)
}

/// Newline-delimited JSON: one object per line; blank lines are skipped.
pub struct NdjsonSource<R> {
    input: R,
    names: ColumnNames,
    line: Vec<u8>,
    scratch: [String; 5],
    limit: usize,
}

impl<R: BufRead> NdjsonSource<R> {
    /// A source over `input`.
    pub fn new(input: R) -> Self {
        Self::with_columns(input, ColumnNames::default())
    }

    /// A source over `input` that reads each field from the key `names` gives it.
    pub fn with_columns(input: R, names: ColumnNames) -> Self {
        Self::with_options(input, SourceOptions::with_columns(names))
    }

    /// A source over `input` reading as `options` say.
    pub fn with_options(input: R, options: SourceOptions) -> Self {
        let SourceOptions { columns: names, record_limit: limit } = options;
        NdjsonSource { input, names, line: Vec::with_capacity(256), scratch: Default::default(), limit }
    }
}

impl<R: BufRead> RecordSource for NdjsonSource<R> {
    fn format(&self) -> SourceFormat {
        SourceFormat::Ndjson
    }

    fn header(&self) -> Option<&str> {
        None
    }

    fn columns(&self) -> Option<&ColumnNames> {
        self.names.mapped()
    }

    fn read_all(&mut self, visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>) -> Result<(), ReadError> {
        let mut number = 0u64;
        // Room for a byte order mark before the first line's limit.
        let keep = self.limit.saturating_add(BOM.len());
        loop {
            self.line.clear();
            let read = read_line(&mut self.input, &mut self.line, keep)
                .map_err(|e| SourceError::Io { line: number + 1, message: e.to_string() })?;
            let Some(mut length) = read else { return Ok(()) };
            number += 1;
            if number == 1 && self.line.starts_with(BOM) {
                self.line.drain(..BOM.len());
                length -= BOM.len() as u64;
            }
            let invalid = SourceError::InvalidUtf8 { line: number };
            if length > self.limit as u64 {
                let head = crate::head(&self.line, self.limit).ok_or(invalid)?;
                let oversize = Oversize { length, limit: self.limit };
                crate::visit_oversize(number, head, oversize, visit).map_err(ReadError::Visit)?;
                continue;
            }
            let text = std::str::from_utf8(&self.line).map_err(|_| invalid)?;
            if text.trim().is_empty() {
                continue;
            }
            visit_object(number, text, &self.names, &mut self.scratch, None, visit)?;
        }
    }
}

/// A UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads one line into `line` without its end, which is `\n`, `\r\n` or a lone `\r` (classic
/// Mac), counted as the CSV source counts them; returns its length, `None` at the end of the
/// input. Only its first `keep` bytes are put in `line`: the rest is read past, so a line
/// without end takes no memory. Valid JSON holds either byte only as whitespace between
/// tokens, never inside a string, so no object is split. Reading up to `\n` only took a file
/// with `\r` line ends as one line, held in memory whole.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>, keep: usize) -> std::io::Result<Option<u64>> {
    let mut read: Option<u64> = None;
    let take = |line: &mut Vec<u8>, bytes: &[u8]| -> u64 {
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&bytes[..bytes.len().min(room)]);
        bytes.len() as u64
    };
    loop {
        let buf = fill(input)?;
        if buf.is_empty() {
            return Ok(read);
        }
        let Some(at) = memchr::memchr2(b'\n', b'\r', buf) else {
            *read.get_or_insert(0) += take(line, buf);
            let len = buf.len();
            input.consume(len);
            continue;
        };
        *read.get_or_insert(0) += take(line, &buf[..at]);
        let carriage_return = buf[at] == b'\r';
        input.consume(at + 1);
        // A `\r`'s `\n` may be in the next buffer.
        if carriage_return && fill(input)?.first() == Some(&b'\n') {
            input.consume(1);
        }
        return Ok(Some(read.unwrap_or(0)));
    }
}

/// `input`'s buffer, filled; a read interrupted by a signal is tried again, as `read_until`
/// does.
fn fill(input: &mut impl BufRead) -> std::io::Result<&[u8]> {
    while let Err(err) = input.fill_buf() {
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    input.fill_buf()
}

/// A JSON document holding an array of objects (or one object), read element by element
/// without loading the document.
pub struct JsonArraySource<R> {
    input: Option<R>,
    names: ColumnNames,
    limit: usize,
}

impl<R: BufRead> JsonArraySource<R> {
    /// A source over `input`.
    pub fn new(input: R) -> Self {
        Self::with_columns(input, ColumnNames::default())
    }

    /// A source over `input` that reads each field from the key `names` gives it.
    pub fn with_columns(input: R, names: ColumnNames) -> Self {
        Self::with_options(input, SourceOptions::with_columns(names))
    }

    /// A source over `input` reading as `options` say.
    pub fn with_options(input: R, options: SourceOptions) -> Self {
        JsonArraySource { input: Some(input), names: options.columns, limit: options.record_limit }
    }
}

impl<R: BufRead> RecordSource for JsonArraySource<R> {
    fn format(&self) -> SourceFormat {
        SourceFormat::Json
    }

    fn header(&self) -> Option<&str> {
        None
    }

    fn columns(&self) -> Option<&ColumnNames> {
        self.names.mapped()
    }

    fn read_all(&mut self, visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>) -> Result<(), ReadError> {
        let Some(input) = self.input.take() else { return Ok(()) };
        let mut values = JsonValues::new(input, Layout::Array, self.limit, 0);
        let mut scratch = Default::default();
        // Rows are numbered by their position in the array.
        let mut position = 0u64;
        while let Some(item) = values.next()? {
            position += 1;
            match item {
                Item::Value { line, text } => {
                    let text = utf8(text, line)?;
                    visit_object(position, text, &self.names, &mut scratch, Some(line), visit)?;
                }
                Item::Oversize { line, head, length } => {
                    let head = crate::head(head, self.limit).ok_or(SourceError::InvalidUtf8 { line })?;
                    let oversize = Oversize { length, limit: self.limit };
                    crate::visit_oversize(position, head, oversize, visit).map_err(ReadError::Visit)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (u64, String, [String; 5], bool, Option<String>);

    fn collect(source: &mut dyn RecordSource) -> Result<Vec<Row>, ReadError> {
        let mut out = Vec::new();
        source.read_all(&mut |row| {
            let fields = FieldName::ALL.map(|f| match row.record.get(f) {
                RawField::Absent => "<absent>".to_owned(),
                RawField::Text(t) => t.to_owned(),
                RawField::WrongType(t) => format!("<wrong {t}>"),
            });
            out.push((row.line, row.raw.to_owned(), fields, row.record.malformed, row.parse_error.map(str::to_owned)));
            Ok(())
        })?;
        Ok(out)
    }

    fn ndjson(input: &str) -> Result<Vec<Row>, ReadError> {
        collect(&mut NdjsonSource::new(input.as_bytes()))
    }

    fn array(input: &str) -> Result<Vec<Row>, ReadError> {
        collect(&mut JsonArraySource::new(input.as_bytes()))
    }

    #[test]
    fn mapped_keys_are_read_under_their_names() {
        let names = ColumnNames::parse(&["consumption=kwh", "building_id=site"]).unwrap();
        let line = "{\"Site\":\"B1\",\"date\":\"2024-01-01\",\"kwh\":10,\"consumption\":9,\"temperature\":2,\"provider\":\"p\"}\n";
        let out = collect(&mut NdjsonSource::with_columns(line.as_bytes(), names.clone())).unwrap();
        assert_eq!(out[0].2, ["B1", "2024-01-01", "10", "2", "p"].map(String::from));
        let out = collect(&mut JsonArraySource::with_columns(format!("[{line}]").as_bytes(), names.clone())).unwrap();
        assert_eq!(out[0].2, ["B1", "2024-01-01", "10", "2", "p"].map(String::from));
        let out = collect(&mut NdjsonSource::with_columns("{\"kwh\":1,\"KWH\":2}\n".as_bytes(), names)).unwrap();
        assert!(out[0].3, "a key twice is a malformed row");
        assert!(out[0].4.as_deref().unwrap().contains("duplicate key `kwh`"), "{:?}", out[0].4);
    }

    #[test]
    fn ndjson_values_of_every_kind() {
        let out = ndjson(
            "{\"building_id\":\"B\\u0031\",\"date\":\"2024-01-01\",\"consumption\":100.50,\"temperature\":null,\"Provider\":true,\"x\":[1]}\r\n",
        )
        .unwrap();
        assert_eq!(out[0].2, ["B1", "2024-01-01", "100.50", "<absent>", "<wrong true>"].map(String::from));
        assert!(!out[0].3);
    }

    #[test]
    fn a_lone_surrogate_is_a_value_of_the_wrong_type_not_an_absent_one() {
        let line = "{\"building_id\":\"Z\\ud800\",\"date\":\"2024-01-01\",\"consumption\":\"1\\udc00\",\"temperature\":2,\"provider\":\"p\\u0031\"}\n";
        let out = ndjson(line).unwrap();
        assert_eq!(
            out[0].2,
            ["<wrong \"Z\\ud800\">", "2024-01-01", "<wrong \"1\\udc00\">", "2", "p1"].map(String::from)
        );
        assert!(!out[0].3, "the object itself is well-formed");
        let rules = emdp_domain::RuleSet::default();
        let today = emdp_domain::parse_iso_date("2025-01-01").expect("a date");
        let mut codes = Vec::new();
        NdjsonSource::new(line.as_bytes())
            .read_all(&mut |row| {
                let parsed = emdp_domain::ParsedRecord::parse(&row.record, &rules);
                codes.extend(emdp_domain::assess(&parsed, &rules, today).reasons.iter().map(|reason| reason.code()));
                Ok(())
            })
            .unwrap();
        assert_eq!(codes, ["unparsable_consumption", "invalid_identifier"]);
    }

    #[test]
    fn numeric_identifiers_are_read_as_their_text() {
        let out = ndjson("{\"building_id\": 1042, \"provider\": 7}\n").unwrap();
        assert_eq!((out[0].2[0].as_str(), out[0].2[4].as_str()), ("1042", "7"));
    }

    #[test]
    fn ndjson_numbers_keep_their_text() {
        let out = ndjson("{\"consumption\": 1e999, \"temperature\": \"12,5\"}\n").unwrap();
        assert_eq!(out[0].2[2], "1e999");
        assert_eq!(out[0].2[3], "12,5");
        assert_eq!(out[0].2[0], "<absent>");
    }

    #[test]
    fn ndjson_blank_lines_are_skipped_and_lines_counted() {
        let out = ndjson("\n{\"date\":\"2024-01-01\"}\n   \n{\"date\":\"2024-01-02\"}").unwrap();
        assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4]);
    }

    #[test]
    fn ndjson_lines_end_in_lf_crlf_or_a_lone_cr_at_any_buffer_boundary() {
        let input = "{\"date\":\"2024-01-01\"}\r{\"date\":\"2024-01-02\"}\r\n\r{\"date\":\"2024-01-03\"}\n\n{}\r";
        for capacity in [1, 2, 3, 7, 64] {
            let reader = std::io::BufReader::with_capacity(capacity, input.as_bytes());
            let out = collect(&mut NdjsonSource::new(reader)).unwrap();
            let seen: Vec<(u64, &str)> = out.iter().map(|row| (row.0, row.2[1].as_str())).collect();
            assert_eq!(
                seen,
                [(1, "2024-01-01"), (2, "2024-01-02"), (4, "2024-01-03"), (6, "<absent>")],
                "buffer of {capacity}"
            );
            assert!(out.iter().all(|row| !row.3 && !row.1.contains(['\r', '\n'])), "buffer of {capacity}: {out:?}");
        }
    }

    #[test]
    fn ndjson_non_objects_are_malformed_rows_with_the_error() {
        let out = ndjson("[1,2]\nnot json\n{\"date\":1,\"date\":2}\n").unwrap();
        assert_eq!(out.len(), 3);
        for row in &out {
            assert!(row.3, "{row:?}");
            assert!(row.4.is_some());
            assert_eq!(row.2[0], "<absent>");
        }
        assert_eq!(out[1].1, "not json");
        assert!(out[2].4.as_deref().unwrap().contains("duplicate key `date`"));
    }

    #[test]
    fn ndjson_invalid_utf8_is_a_file_error() {
        let mut source = NdjsonSource::new(&b"{}\n{\"a\":\"\xff\"}\n"[..]);
        let err = collect(&mut source).unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::InvalidUtf8 { line: 2 })));
    }

    #[test]
    fn array_elements_are_streamed() {
        let out =
            array("\u{feff} [ {\"building_id\":\"B1\",\"consumption\":\"7\"},\n 42 ,\n{\"building_id\":\"B2\"} ]")
                .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].0, 1);
        assert_eq!(out[0].2[0], "B1");
        assert!(out[1].3);
        assert_eq!(out[1].1, "42");
        assert_eq!(out[2].2[0], "B2");
    }

    #[test]
    fn a_single_object_is_one_record() {
        let out = array("{\"building_id\":\"B1\"}").unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2[0], "B1");
    }

    #[test]
    fn broken_documents_are_file_errors_with_a_line() {
        let err = array("[{\"building_id\":\"B1\"},\n{").unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::Syntax { line: 2, .. })), "{err:?}");
        let err = array("[{}] trailing").unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::Syntax { .. })), "{err:?}");
        let err = array("\"text\"").unwrap_err();
        assert!(matches!(err, ReadError::Source(SourceError::Syntax { .. })), "{err:?}");
    }

    #[test]
    fn a_visitor_error_stops_the_array() {
        let mut source = JsonArraySource::new(&b"[{},{}]"[..]);
        let err = source.read_all(&mut |_| Err("stop".into())).unwrap_err();
        assert!(matches!(err, ReadError::Visit(e) if e.to_string() == "stop"));
    }

    /// Rows read with a record limit of 64 bytes: line, payload, oversize length.
    fn limited(source: &mut dyn RecordSource) -> Result<Vec<(u64, String, Option<u64>)>, ReadError> {
        let mut out = Vec::new();
        source.read_all(&mut |row| {
            if let Some(oversize) = row.oversize {
                assert!(row.record.malformed && row.raw.len() <= 64);
                assert_eq!(row.parse_error, Some(oversize.to_string().as_str()));
            }
            out.push((row.line, row.raw.to_owned(), row.oversize.map(|o| o.length)));
            Ok(())
        })?;
        Ok(out)
    }

    fn options() -> SourceOptions {
        SourceOptions { record_limit: 64, ..SourceOptions::default() }
    }

    #[test]
    fn an_ndjson_line_over_the_limit_is_one_malformed_row() {
        let long = format!("{{\"building_id\":\"{}\"}}", "x".repeat(60));
        let input = format!("\u{feff}{{\"date\":1}}\n{long}\r\n\n{}\r{{}}\n", "\0".repeat(1000));
        for capacity in [1, 7, 8192] {
            let reader = std::io::BufReader::with_capacity(capacity, input.as_bytes());
            let out = limited(&mut NdjsonSource::with_options(reader, options())).unwrap();
            assert_eq!(out.len(), 4);
            assert_eq!((out[0].0, out[0].2), (1, None), "the byte order mark is not counted");
            assert_eq!((out[1].0, &out[1].1[..], out[1].2), (2, &long[..64], Some(long.len() as u64)));
            assert_eq!((out[2].0, out[2].1.len(), out[2].2), (4, 64, Some(1000)));
            assert_eq!((out[3].0, &out[3].1[..], out[3].2), (5, "{}", None));
        }
    }

    #[test]
    fn an_array_element_over_the_limit_is_one_malformed_row() {
        let long = format!("{{\"building_id\":\"{}\"}}", "x".repeat(60));
        let input = format!("[{{}},\n{long},\n{{\"date\":\"2024-01-01\"}}]");
        let out = limited(&mut JsonArraySource::with_options(input.as_bytes(), options())).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!((out[1].0, &out[1].1[..], out[1].2), (2, &long[..64], Some(long.len() as u64)));
        assert_eq!((out[2].0, out[2].2), (3, None));
        // One object over the limit, too.
        let out = limited(&mut JsonArraySource::with_options(long.as_bytes(), options())).unwrap();
        assert_eq!(out[0].2, Some(long.len() as u64));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = ndjson(&text);
            let _ = array(&text);
        }
    }
}
