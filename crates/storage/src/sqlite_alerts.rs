//! Alert rules, alerts, events and webhook deliveries on SQLite (SQL shared with PostgreSQL in
//! [`crate::alerts_sql`]).

use std::borrow::Cow;

use crate::sqlite::SqliteStore;

/// The shared SQL with SQLite's numbered placeholders (`?N` for `$N`).
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.replace('$', "?"))
}

/// A text as stored: SQLite keeps any text, NUL included, as it is.
fn put(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

/// A stored text as it was given.
fn get(text: String) -> String {
    text
}

crate::alerts_sql::impl_alert_store!(SqliteStore, sqlx::sqlite::SqliteRow);
