//! `emdp config show`: the effective configuration of `emdp serve`, secrets redacted.

use std::process::ExitCode;

use crate::error::CliError;

/// Inspect the configuration.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the effective configuration (defaults < file < environment < flags) as TOML,
    /// with the database password hidden. Takes the same flags as `emdp serve`.
    Show(crate::commands::serve::Args),
}

/// Runs `emdp config ...`.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Show(args) => {
            let config = args.load()?;
            print!("{}", config.redacted_toml());
            if config.auth.enabled.is_none() {
                println!("# auth.enabled is unset: keys are required as soon as one exists");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
