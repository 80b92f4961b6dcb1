//! Output formats shared by commands.

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Text,
    /// One JSON document.
    Json,
}
