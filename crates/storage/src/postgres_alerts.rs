//! Alert rules, alerts, events and webhook deliveries on PostgreSQL (SQL shared with SQLite in
//! [`crate::alerts_sql`]).

use std::borrow::Cow;

use crate::postgres::PostgresStore;

/// The shared SQL as is (`$N` placeholders).
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_owned())
}

/// PostgreSQL's `TEXT` cannot hold NUL (U+0000), which building identifiers (and so alert
/// subjects, buildings and messages) may contain: texts go through the record store's
/// reversible escape ([`crate::postgres::escape`]).
fn put(text: &str) -> Cow<'_, str> {
    crate::postgres::escape(text)
}

/// A stored text as it was given.
fn get(text: String) -> String {
    crate::postgres::unescape(text)
}

crate::alerts_sql::impl_alert_store!(PostgresStore, sqlx::postgres::PgRow);
