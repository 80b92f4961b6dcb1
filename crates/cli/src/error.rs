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
    /// An output file cannot be written.
    #[error("{path}: cannot write: {message}")]
    Output {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
}

impl CliError {
    /// Exit code 3 when the database failed, 2 for every other error (bad input, bad usage,
    /// failed output). Exit code 1 is reserved for `--fail-on-invalid` finding records that
    /// are not VALID.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Store(_) => ExitCode::from(3),
            _ => ExitCode::from(2),
        }
    }
}
