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
    /// Exit code 2 for every error: bad input, bad usage or failed output. (Exit code 1 is
    /// reserved for `--fail-on-invalid` finding records that are not VALID.)
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(2)
    }
}
