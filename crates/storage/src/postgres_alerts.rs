//! Alert rules, alerts, events and webhook deliveries on PostgreSQL (SQL shared with SQLite in
//! [`crate::alerts_sql`]).

use crate::postgres::PostgresStore;

/// The shared SQL as is (`$N` placeholders).
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_owned())
}

crate::alerts_sql::impl_alert_store!(PostgresStore, sqlx::postgres::PgRow);
