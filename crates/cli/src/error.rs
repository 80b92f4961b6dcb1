//! The CLI's errors and the exit codes they map to.

use std::process::ExitCode;

/// Everything that stops a command. Each variant's message names the file (and line or
/// field) at fault, so a user can find the problem without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input file as a whole cannot be used (unreadable, bad header, invalid UTF-8).
    #[error("{path}: {message}")]
    Input {
        /// The file (`-` for standard input).
        path: String,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// The command line is inconsistent in a way clap cannot check.
    #[error("{0}")]
    Usage(String),
    /// The rules file cannot be used.
    #[error(transparent)]
    Rules(#[from] emdp_formats::RulesFileError),
    /// The database failed: unreachable, a schema from another version, a full disk.
    #[error("{0}")]
    Store(emdp_app::ports::StoreError),
    /// The database failed part-way through an input: the chunks committed before stay, and
    /// when the failure passes (a full disk, a database away, a concurrent writer) the same
    /// command again stores the rest (what is stored counts as re-delivered).
    #[error("{path}: {}: {source}{}", stopped_after(*stored), again(source))]
    Interrupted {
        /// The input being stored.
        path: String,
        /// Its rows committed before the failure.
        stored: u64,
        /// What the database said.
        source: emdp_app::ports::StoreError,
    },
    /// An output file cannot be written.
    #[error("{path}: cannot write: {message}")]
    Output {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// Standard output was closed by its reader (`emdp records list | head -1`): the command
    /// stops quietly, as other Unix tools do ([`crate::output::write_error`]).
    #[error("standard output was closed")]
    Closed,
    /// A command that only reads was pointed at a SQLite file that does not exist.
    #[error("no emdp database at {} (check --database-url or run `emdp ingest` first)", .0.display())]
    NoDatabase(std::path::PathBuf),
}

impl CliError {
    /// Exit code 3 when the database failed, 141 when standard output was closed (what a
    /// shell reports for a tool stopped by SIGPIPE: 128 + 13), 2 for every other error (bad
    /// input, bad usage, a missing database, failed output). Exit code 1 is reserved for
    /// `--fail-on-invalid` finding records that are not VALID.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Store(_) | CliError::Interrupted { .. } => ExitCode::from(3),
            CliError::Closed => ExitCode::from(141),
            _ => ExitCode::from(2),
        }
    }

    /// Whether the error is worth a message: not for [`CliError::Closed`], whose reader is
    /// gone and does not want one.
    pub fn is_reported(&self) -> bool {
        !matches!(self, CliError::Closed)
    }
}

/// The advice to run the command again, for the failures that pass: only then does a rerun
/// store the rest (one that failed on what it stores fails again the same way).
fn again(source: &emdp_app::ports::StoreError) -> &'static str {
    use emdp_app::ports::StoreError;
    match source {
        StoreError::Full(_) | StoreError::Unavailable(_) | StoreError::Conflict(_) => {
            "; the same command again stores the rest"
        }
        StoreError::Migration(_) | StoreError::NotFound | StoreError::KeyTaken(_) | StoreError::Other(_) => "",
    }
}

/// How far an interrupted input got.
fn stopped_after(stored: u64) -> String {
    match stored {
        0 => "stopped before any of its rows were stored".to_owned(),
        1 => "stopped after 1 of its rows was stored".to_owned(),
        n => format!("stopped after {n} of its rows were stored"),
    }
}

#[cfg(test)]
mod tests {
    use emdp_app::ports::StoreError;

    use super::*;

    #[test]
    fn an_interrupted_input_says_how_far_it_got() {
        let full = || StoreError::Full("database or disk is full".into());
        let error = |stored| CliError::Interrupted { path: "a.csv".into(), stored, source: full() }.to_string();
        assert_eq!(
            error(0),
            "a.csv: stopped before any of its rows were stored: database cannot be written: database or disk is full; \
             the same command again stores the rest"
        );
        assert!(error(1).starts_with("a.csv: stopped after 1 of its rows was stored: "));
        assert!(error(50_000).starts_with("a.csv: stopped after 50000 of its rows were stored: "));
        let other =
            CliError::Interrupted { path: "a.csv".into(), stored: 3, source: StoreError::Other("too big".into()) };
        assert_eq!(
            other.to_string(),
            "a.csv: stopped after 3 of its rows were stored: database error: too big",
            "no advice to run again when that fails the same way"
        );
        let code = CliError::Interrupted { path: "a.csv".into(), stored: 0, source: full() }.exit_code();
        assert_eq!(code, ExitCode::from(3));
    }
}
