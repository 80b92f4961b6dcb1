//! Database URLs, checked once where they are read (`--database-url`, `DATABASE_URL`, the
//! config file): which database, and for SQLite which file.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A database URL that names a database emdp can open: `sqlite://PATH`, `sqlite::memory:` or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (`postgresql://` too). Shown (`Display`) with
/// its passwords hidden ([`crate::redact`]).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The URL as given.
    text: String,
    /// The database it names.
    location: Location,
}

/// The database a [`DatabaseUrl`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// A SQLite file.
    SqliteFile(PathBuf),
    /// A SQLite database in memory (gone with the process).
    SqliteMemory,
    /// A PostgreSQL database.
    Postgres,
}

/// Why a text is not a [`DatabaseUrl`]; the message names the URL (passwords hidden) and
/// what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DatabaseUrlError(String);

impl DatabaseUrl {
    /// Checks `text`: a known scheme, and for SQLite a file path (or `:memory:`).
    pub fn parse(text: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let location = if let Some(rest) = text.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, query) = rest.split_once('?').map_or((rest, None), |(path, query)| (path, Some(query)));
            let in_memory = query.is_some_and(|query| query.split('&').any(|pair| pair == "mode=memory"));
            if path == ":memory:" || in_memory {
                Location::SqliteMemory
            } else if path.trim().is_empty() {
                return Err(DatabaseUrlError(format!(
                    "{text}: this SQLite URL has no file path; use sqlite://PATH (e.g. sqlite://emdp.db) or sqlite::memory:"
                )));
            } else {
                Location::SqliteFile(PathBuf::from(path))
            }
        } else if let Some(rest) = text.strip_prefix("postgres://").or_else(|| text.strip_prefix("postgresql://")) {
            if rest.trim().is_empty() {
                return Err(DatabaseUrlError(format!(
                    "{text}: this PostgreSQL URL names no server; use postgres://USER[:PASSWORD]@HOST[:PORT]/DB"
                )));
            }
            Location::Postgres
        } else {
            return Err(DatabaseUrlError(format!(
                "'{}' is not a database URL emdp knows: use sqlite://PATH or postgres://USER@HOST/DB",
                crate::redact(text)
            )));
        };
        Ok(DatabaseUrl { text: text.to_owned(), location })
    }

    /// The URL as given (passwords included: for connecting, never for showing).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The SQLite file it names, if it names one (not for `sqlite::memory:` or PostgreSQL).
    pub fn sqlite_file(&self) -> Option<&std::path::Path> {
        match &self.location {
            Location::SqliteFile(path) => Some(path),
            Location::SqliteMemory | Location::Postgres => None,
        }
    }

    /// Whether it names a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.location == Location::Postgres
    }
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        DatabaseUrl::parse(text)
    }
}

/// The URL with its passwords hidden.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact(&self.text))
    }
}

/// Like `Display`: a password never reaches a log through `{:?}` either.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(text).map_err(|err| err.to_string())
    }

    #[test]
    fn sqlite_urls_name_a_file_or_memory() {
        let url = parse("sqlite://emdp.db").unwrap();
        assert_eq!(url.sqlite_file(), Some(Path::new("emdp.db")));
        assert_eq!(url.as_str(), "sqlite://emdp.db");
        assert!(!url.is_postgres());
        assert_eq!(parse("sqlite:///var/lib/emdp.db").unwrap().sqlite_file(), Some(Path::new("/var/lib/emdp.db")));
        assert_eq!(parse("sqlite:data/e.db?mode=rwc").unwrap().sqlite_file(), Some(Path::new("data/e.db")));
        for memory in ["sqlite::memory:", "sqlite://:memory:", "sqlite://?mode=memory"] {
            assert_eq!(parse(memory).unwrap().sqlite_file(), None, "{memory}");
        }
    }

    #[test]
    fn a_sqlite_url_without_a_path_is_refused_naming_it() {
        for empty in ["sqlite://", "sqlite:", "sqlite://?mode=rwc", "sqlite:// "] {
            let err = parse(empty).unwrap_err();
            assert!(err.starts_with(&format!("{empty}: this SQLite URL has no file path; use sqlite://PATH")), "{err}");
            assert!(err.contains("sqlite::memory:"), "{err}");
        }
    }

    #[test]
    fn postgres_urls_and_unknown_schemes() {
        let url = parse("postgres://u:secret@db:5432/emdp").unwrap();
        assert!(url.is_postgres() && url.sqlite_file().is_none());
        assert_eq!(url.to_string(), "postgres://u:***@db:5432/emdp", "shown without its password");
        assert_eq!(format!("{url:?}"), "DatabaseUrl(postgres://u:***@db:5432/emdp)");
        assert!(parse("postgresql://u@db/emdp").unwrap().is_postgres());
        assert!(parse("postgres://").unwrap_err().contains("names no server"));
        let err = parse("mysql://u:pw@x/db").unwrap_err();
        assert_eq!(
            err,
            "'mysql://u:***@x/db' is not a database URL emdp knows: use sqlite://PATH or postgres://USER@HOST/DB"
        );
        assert!(parse("emdp.db").is_err());
    }
}
