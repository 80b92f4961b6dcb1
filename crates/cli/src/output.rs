//! Output formats and helpers shared by commands.

use std::io::Write as _;

use crate::error::CliError;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Text,
    /// One JSON document.
    Json,
}

/// Writes a command's whole result to standard output.
pub fn write_out(text: &str) -> Result<(), CliError> {
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(|err| write_error("stdout", &err))
}

/// A failed write to `path`: [`CliError::Closed`] when the reader of a pipe went away
/// (`emdp records list | head -1`), which stops the command quietly, else
/// [`CliError::Output`] naming the file.
pub fn write_error(path: &str, err: &std::io::Error) -> CliError {
    match err.kind() {
        std::io::ErrorKind::BrokenPipe => CliError::Closed,
        _ => CliError::Output { path: path.to_owned(), message: err.to_string() },
    }
}

/// After a page printed as text, tells on standard error how to get the next one (nothing after
/// the last page). The cursor is the API's `next_cursor`: either side's cursor works with the other.
pub fn next_page_hint(next_cursor: Option<&str>) {
    if let Some(cursor) = next_cursor {
        // A hint only: a closed standard error is no reason to fail the command.
        let _ = writeln!(std::io::stderr(), "next page: --cursor {cursor}");
    }
}

/// A value as one cell of a text table: `-` when absent, control characters escaped.
///
/// Stored values are whatever the input held: a CSV field with an unbalanced quote can carry
/// the next lines (newlines included) into a building id, and printed as is it would break
/// the table's rows apart. JSON output keeps the exact value.
pub fn cell<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(|| "-".to_owned(), |value| escape_controls(&value.to_string()))
}

/// `text` with its control characters written as escapes (`\n`, `\t`, `\u{1b}`).
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_absence_and_escape_control_characters() {
        assert_eq!(cell::<String>(&None), "-");
        assert_eq!(cell(&Some(12.5)), "12.5");
        assert_eq!(cell(&Some("B1")), "B1");
        assert_eq!(cell(&Some("a,1\nB2\t\u{1b}[31mé")), "a,1\\nB2\\t\\u{1b}[31mé");
    }

    #[test]
    fn a_closed_pipe_is_not_a_failed_write() {
        let closed = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(matches!(write_error("stdout", &closed), CliError::Closed));
        let full = std::io::Error::other("No space left on device");
        let err = write_error("out.csv", &full);
        assert_eq!(err.to_string(), "out.csv: cannot write: No space left on device");
    }
}
