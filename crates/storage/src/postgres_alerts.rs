//! Alert rules, alerts, events and webhook deliveries on PostgreSQL (SQL shared with SQLite in
//! [`crate::alerts_sql`]).

use std::borrow::Cow;

use crate::postgres::PostgresStore;

/// The shared SQL as is (`$N` placeholders).
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_owned())
}

/// PostgreSQL's `TEXT` cannot hold NUL (U+0000), which building identifiers (and so alert
/// subjects, buildings and messages) may contain. The same injective escape as the record
/// store's (`crate::postgres`): NUL is stored as U+E000 `0` and U+E000 as U+E000 `e`, so a
/// building filter matches the escaped form and texts without either character (all real
/// data) are stored unchanged.
const ESCAPE: char = '\u{E000}';

/// A text as stored (see [`ESCAPE`]).
fn put(text: &str) -> Cow<'_, str> {
    if !text.contains(['\0', ESCAPE]) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => out.extend([ESCAPE, '0']),
            ESCAPE => out.extend([ESCAPE, 'e']),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A stored text as it was given (see [`ESCAPE`]).
fn get(text: String) -> String {
    if !text.contains(ESCAPE) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('e') => out.push(ESCAPE),
            // Not written by `put` (e.g. edited by hand): kept as it is.
            Some(other) => out.extend([ESCAPE, other]),
            None => out.push(ESCAPE),
        }
    }
    out
}

crate::alerts_sql::impl_alert_store!(PostgresStore, sqlx::postgres::PgRow);
