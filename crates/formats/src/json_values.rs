//! Splits a JSON input into its top-level values without parsing them, holding at most the
//! first `limit` bytes of each: the elements of one array (`[{...}, {...}]`, or one object),
//! or a sequence of documents each of which may span lines (`mongoexport --pretty`).
//!
//! Only the structure is followed (strings, escapes, nesting), so that each value's text can
//! be handed to serde whole; a value longer than the limit is read through to its end without
//! being kept ([`Item::Oversize`]). Lines are counted as CSV and NDJSON count them (`\n`,
//! `\r\n` or a lone `\r`).

use std::io::BufRead;

use emdp_app::ports::SourceError;

use crate::line_breaks;

/// How the values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One JSON array of values, or one object. Anything else is a file error.
    Array,
    /// Documents one after another, each `{...}` or `[...]` over as many lines as it takes;
    /// a line starting with anything else is taken whole as one (broken) value, and a line
    /// break inside a string ends its document (JSON strings hold none): one broken document
    /// does not swallow the ones after it.
    Sequence,
}

/// One top-level value.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    /// A value whole.
    Value {
        /// The line it starts on.
        line: u64,
        /// Its text.
        text: &'a [u8],
    },
    /// A value longer than the limit.
    Oversize {
        /// The line it starts on.
        line: u64,
        /// Its first `limit` bytes.
        head: &'a [u8],
        /// Its whole length in bytes.
        length: u64,
    },
}

/// Where the reader is between values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte.
    Start,
    /// After `[`: a value or `]`.
    First,
    /// After a value of the array: `,` or `]`.
    After,
    /// After `,`: a value.
    Next,
    /// The document is one object.
    Single,
    /// Between the documents of a sequence.
    Sequence,
    /// After the array or object: nothing but white space.
    End,
    /// Nothing more to read.
    Done,
}

/// What kind of value is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An object or array, or a string: ends when its nesting closes.
    Nested,
    /// A number or literal: ends before a delimiter.
    Token,
    /// A sequence's line that starts no document: ends before the line break.
    Line,
}

/// The scan of one value, carried from buffer to buffer.
#[derive(Debug, Clone, Copy)]
struct Scan {
    kind: Kind,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// A line break inside a string ends the value (a sequence).
    break_ends_string: bool,
}

impl Scan {
    /// Where the value ends in `bytes`, which follow the bytes scanned before: the index after
    /// its last byte, if it ends there.
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.escape {
                self.escape = false;
                i += 1;
                continue;
            }
            if self.in_string {
                let rest = &bytes[i..];
                let found = if self.break_ends_string {
                    memchr::memchr3(b'"', b'\\', b'\n', rest)
                } else {
                    memchr::memchr2(b'"', b'\\', rest)
                };
                let at = i + found?;
                match bytes[at] {
                    b'"' => {
                        self.in_string = false;
                        i = at + 1;
                        if self.depth == 0 {
                            return Some(i);
                        }
                    }
                    b'\\' => {
                        self.escape = true;
                        i = at + 1;
                    }
                    _ => return Some(if at > 0 && bytes[at - 1] == b'\r' { at - 1 } else { at }),
                }
                continue;
            }
            match self.kind {
                Kind::Token => {
                    let end =
                        bytes[i..].iter().position(|b| matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace());
                    return end.map(|at| i + at);
                }
                Kind::Line => return memchr::memchr2(b'\n', b'\r', &bytes[i..]).map(|at| i + at),
                Kind::Nested => {
                    match bytes[i] {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        None
    }
}

/// `input`'s buffer, filled; a read interrupted by a signal is tried again. `line`: the line
/// breaks consumed so far, for the error.
fn fill(input: &mut impl BufRead, line: u64) -> Result<&[u8], SourceError> {
    loop {
        match input.fill_buf() {
            Ok(_) => break,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(SourceError::Io { line: line + 1, message: err.to_string() }),
        }
    }
    input.fill_buf().map_err(|err| SourceError::Io { line: line + 1, message: err.to_string() })
}

/// The values of a JSON input, one at a time.
pub(crate) struct JsonValues<R> {
    input: R,
    layout: Layout,
    limit: usize,
    state: State,
    /// Line breaks consumed so far.
    line: u64,
    after_cr: bool,
    /// The current value's first bytes.
    value: Vec<u8>,
}

impl<R: BufRead> JsonValues<R> {
    /// The values of `input`, laid out as `layout`, keeping at most `limit` bytes of each;
    /// `line` line breaks were consumed before `input` starts.
    pub(crate) fn new(input: R, layout: Layout, limit: usize, line: u64) -> Self {
        JsonValues { input, layout, limit, state: State::Start, line, after_cr: false, value: Vec::new() }
    }

    /// A file error at the current line.
    fn syntax(&self, message: &str) -> SourceError {
        SourceError::Syntax { line: self.line + 1, message: message.to_owned() }
    }

    /// Consumes `len` bytes of the buffer, counting their line breaks.
    fn consume(&mut self, len: usize) {
        if let Ok(buf) = self.input.fill_buf() {
            self.line += line_breaks(&mut self.after_cr, &buf[..len.min(buf.len())]);
        }
        self.input.consume(len);
    }

    /// Skips white space (and a byte order mark at the very start); the next byte, not consumed.
    fn skip_space(&mut self) -> Result<Option<u8>, SourceError> {
        if self.state == State::Start {
            // Byte by byte: a buffer may hold less than the whole mark.
            for &byte in b"\xEF\xBB\xBF" {
                if fill(&mut self.input, self.line)?.first() != Some(&byte) {
                    break;
                }
                self.input.consume(1);
            }
        }
        loop {
            let buf = fill(&mut self.input, self.line)?;
            if buf.is_empty() {
                return Ok(None);
            }
            let blank = buf.iter().position(|b| !b.is_ascii_whitespace());
            let next = blank.map(|at| buf[at]);
            let end = blank.unwrap_or(buf.len());
            self.consume(end);
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    /// The next value, or `None` after the last.
    pub(crate) fn next(&mut self) -> Result<Option<Item<'_>>, SourceError> {
        loop {
            let next = match self.state {
                State::Done => return Ok(None),
                _ => self.skip_space()?,
            };
            match (self.state, next) {
                (State::Start, None) => {
                    self.state = State::Done;
                    return Ok(None);
                }
                (State::Start, Some(byte)) => match self.layout {
                    Layout::Sequence => self.state = State::Sequence,
                    Layout::Array if byte == b'[' => {
                        self.consume(1);
                        self.state = State::First;
                    }
                    Layout::Array if byte == b'{' => self.state = State::Single,
                    Layout::Array => return Err(self.syntax("expected a JSON array of objects, or one object")),
                },
                (State::Sequence, None) | (State::End, None) => {
                    self.state = State::Done;
                    return Ok(None);
                }
                (State::End, Some(_)) => return Err(self.syntax("trailing characters after the JSON document")),
                (_, None) => return Err(self.syntax("EOF while parsing a list")),
                (State::First | State::After, Some(b']')) => {
                    self.consume(1);
                    self.state = State::End;
                }
                (State::After, Some(b',')) => {
                    self.consume(1);
                    self.state = State::Next;
                }
                (State::After, Some(_)) => return Err(self.syntax("expected `,` or `]`")),
                (State::Next, Some(b']')) => return Err(self.syntax("trailing comma")),
                (State::First | State::Next, Some(first)) => {
                    self.state = State::After;
                    return self.value(first);
                }
                (State::Single, Some(first)) => {
                    self.state = State::End;
                    return self.value(first);
                }
                (State::Sequence, Some(first)) => return self.value(first),
                (State::Done, _) => return Ok(None),
            }
        }
    }

    /// Reads the value starting with `first` (not consumed yet).
    fn value(&mut self, first: u8) -> Result<Option<Item<'_>>, SourceError> {
        let kind = match first {
            b'{' | b'[' | b'"' => Kind::Nested,
            _ if self.layout == Layout::Sequence => Kind::Line,
            _ => Kind::Token,
        };
        let mut scan = Scan {
            kind,
            depth: 0,
            in_string: false,
            escape: false,
            break_ends_string: self.layout == Layout::Sequence,
        };
        let line = self.line + 1;
        let mut length = 0u64;
        self.value.clear();
        loop {
            let buf = fill(&mut self.input, self.line)?;
            if buf.is_empty() {
                if self.layout == Layout::Array && kind != Kind::Token {
                    return Err(self.syntax("EOF while parsing a value"));
                }
                break;
            }
            let end = scan.scan(buf);
            let take = end.unwrap_or(buf.len());
            let room = self.limit.saturating_sub(self.value.len());
            self.value.extend_from_slice(&buf[..take.min(room)]);
            self.line += line_breaks(&mut self.after_cr, &buf[..take]);
            length += take as u64;
            self.input.consume(take);
            if end.is_some() {
                break;
            }
        }
        Ok(Some(if length > self.limit as u64 {
            Item::Oversize { line, head: &self.value, length }
        } else {
            Item::Value { line, text: &self.value }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value as (line, text) or (line, "<oversize LENGTH: HEAD>"), or the error.
    fn values(input: &str, layout: Layout, limit: usize) -> Result<Vec<(u64, String)>, SourceError> {
        for capacity in [1, 3, 64] {
            let reader = std::io::BufReader::with_capacity(capacity, input.as_bytes());
            let small = collect(JsonValues::new(reader, layout, limit, 0));
            let whole = collect(JsonValues::new(input.as_bytes(), layout, limit, 0));
            assert_eq!(small, whole, "buffer of {capacity}: {input:?}");
        }
        collect(JsonValues::new(input.as_bytes(), layout, limit, 0))
    }

    fn collect(mut values: JsonValues<impl BufRead>) -> Result<Vec<(u64, String)>, SourceError> {
        let mut out = Vec::new();
        while let Some(item) = values.next()? {
            out.push(match item {
                Item::Value { line, text } => (line, String::from_utf8_lossy(text).into_owned()),
                Item::Oversize { line, head, length } => {
                    (line, format!("<oversize {length}: {}>", String::from_utf8_lossy(head)))
                }
            });
        }
        Ok(out)
    }

    #[test]
    fn array_elements_with_strings_escapes_and_nesting() {
        let input = "\u{feff} [ {\"a\":\"x]}\\\"\"},\n 42 , \"s,]\" ,\n[1,[2]], true ]\n";
        let out = values(input, Layout::Array, 1000).unwrap();
        let texts: Vec<&str> = out.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(texts, ["{\"a\":\"x]}\\\"\"}", "42", "\"s,]\"", "[1,[2]]", "true"]);
        assert_eq!(out.iter().map(|(line, _)| *line).collect::<Vec<_>>(), [1, 2, 2, 3, 3]);
        assert_eq!(values("{\"a\":1}\n", Layout::Array, 1000).unwrap(), [(1, "{\"a\":1}".to_owned())]);
        assert!(values("", Layout::Array, 1000).unwrap().is_empty());
        assert!(values(" [ ] ", Layout::Array, 1000).unwrap().is_empty());
    }

    #[test]
    fn broken_arrays_are_file_errors_with_their_line() {
        for (input, line) in
            [("[{},\n{", 2), ("[{}] x", 1), ("\"text\"", 1), ("[{}\n{}]", 2), ("[{},]", 1), ("[\n\n", 3), ("[1", 1)]
        {
            match values(input, Layout::Array, 1000) {
                Err(SourceError::Syntax { line: got, .. }) => assert_eq!(got, line, "{input:?}"),
                other => panic!("{input:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn values_over_the_limit_are_read_through() {
        let input = format!("[{{\"a\":\"{}\"}},\n{{\"b\":1}}]", "x".repeat(100));
        let out = values(&input, Layout::Array, 16).unwrap();
        assert_eq!(out[0], (1, "<oversize 108: {\"a\":\"xxxxxxxxxx>".to_owned()));
        assert_eq!(out[1], (2, "{\"b\":1}".to_owned()));
        let out = values(&format!("{}\n{{}}\n", "0".repeat(50)), Layout::Sequence, 16).unwrap();
        assert_eq!(out[0].1, format!("<oversize 50: {}>", "0".repeat(16)));
        assert_eq!(out[1], (2, "{}".to_owned()));
    }

    #[test]
    fn a_sequence_of_pretty_documents() {
        let input = "\n{\n\t\"a\": {\n\t\t\"$oid\": \"x}\"\n\t}\n}\r\n{\"b\":[1,\n2]}{\"c\":3}\nnot json\n\"text\"\r\n{\"d\":\"broken\n{\"e\":4}\n{\"f\":";
        let out = values(input, Layout::Sequence, 1000).unwrap();
        let expected = [
            (2, "{\n\t\"a\": {\n\t\t\"$oid\": \"x}\"\n\t}\n}"),
            (7, "{\"b\":[1,\n2]}"),
            (8, "{\"c\":3}"),
            (9, "not json"),
            (10, "\"text\""),
            (11, "{\"d\":\"broken"),
            (12, "{\"e\":4}"),
            (13, "{\"f\":"),
        ];
        assert_eq!(out, expected.map(|(line, text)| (line, text.to_owned())));
    }
}
