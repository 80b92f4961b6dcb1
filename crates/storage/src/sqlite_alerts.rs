//! Alert rules, alerts, events and webhook deliveries on SQLite (SQL shared with PostgreSQL in
//! [`crate::alerts_sql`]).

use crate::sqlite::SqliteStore;

/// The shared SQL with SQLite's numbered placeholders (`?N` for `$N`).
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.replace('$', "?"))
}

crate::alerts_sql::impl_alert_store!(SqliteStore, sqlx::sqlite::SqliteRow);
