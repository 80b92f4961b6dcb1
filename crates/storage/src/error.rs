//! Mapping database errors to [`StoreError`]: one place decides what an operator is told.

use emdp_app::ports::StoreError;

/// `.db()?` on a sqlx result: its error classified by [`store_error`].
pub(crate) trait DbResult<T> {
    /// The result with a [`StoreError`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}

/// Classifies a sqlx error by what an operator can do about it.
pub fn store_error(err: sqlx::Error) -> StoreError {
    match &err {
        // In words, not sqlx's text: "the connection to the database failed: connection refused".
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => StoreError::Unavailable(format!(
            "the connection to the database failed: {}",
            crate::pool::unreachable_reason(&err).unwrap_or_else(|| err.to_string())
        )),
        // Where the pool is at hand, `crate::pool::Waiting::failed` says which.
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(
            "no database connection within the acquire timeout: the database is unreachable or every connection is busy"
                .to_owned(),
        ),
        sqlx::Error::PoolClosed => StoreError::Unavailable("the database connections are closed (shutting down)".into()),
        sqlx::Error::Database(db) => match crate::pool::unreachable_reason(&err) {
            Some(reason) => StoreError::Unavailable(reason),
            None => database_error(&db.code().unwrap_or_default(), db.message().to_owned()),
        },
        sqlx::Error::Migrate(migrate) => StoreError::Migration(migrate.to_string()),
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Other(err.to_string()),
    }
}

/// Classifies an error of the SQLite ingest's bulk writes (rusqlite, see `sqlite_bulk`) the
/// way [`store_error`] classifies sqlx's, so that a full disk reads the same whichever wrote.
pub fn rusqlite_error(err: rusqlite::Error) -> StoreError {
    match err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let message = message.unwrap_or_else(|| failure.to_string());
            database_error(&failure.extended_code.to_string(), message)
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// Classifies a database's error by its code (SQLite's extended result code, PostgreSQL's
/// SQLSTATE) and message.
fn database_error(code: &str, message: String) -> StoreError {
    match code {
        // SQLite: SQLITE_FULL (13), SQLITE_READONLY (8), SQLITE_CANTOPEN (14).
        // PostgreSQL: 53100 disk_full, 25006 read_only_sql_transaction.
        "13" | "8" | "53100" | "25006" => StoreError::Full(message),
        "14" | "3D000" | "28000" | "28P01" | "57P03" => StoreError::Unavailable(message),
        // Unique violations (SQLite 2067/1555, PostgreSQL 23505) and serialization
        // failures (40001) and deadlocks (40P01) mean a concurrent writer: retry.
        "2067" | "1555" | "23505" | "40001" | "40P01" | "5" | "517" => StoreError::Conflict(message),
        _ if message.contains("disk is full") || message.contains("No space left") => StoreError::Full(message),
        _ => StoreError::Other(message),
    }
}

/// Turns a migration error into a message that says what to do.
pub fn migrate_error(err: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    match err {
        MigrateError::VersionMissing(version) => StoreError::Migration(format!(
            "the database has migration {version}, which this emdp does not know: it was migrated by a newer emdp"
        )),
        MigrateError::VersionMismatch(version) => StoreError::Migration(format!(
            "migration {version} applied to the database differs from this emdp's: the schema was changed by hand or by another build"
        )),
        MigrateError::Execute(err) => store_error(err),
        // A full disk or a lost connection while migrating is that, not a schema mismatch.
        MigrateError::ExecuteMigration(err, version) => match store_error(err) {
            StoreError::Other(message) => StoreError::Migration(format!("migration {version} failed: {message}")),
            other => other,
        },
        other => StoreError::Migration(other.to_string()),
    }
}
