//! `emdp`: the energy monitoring data platform's one binary.

mod commands;
mod error;
mod input;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Energy monitoring data platform: classify, store and analyze daily energy readings.
#[derive(Debug, Parser)]
#[command(name = "emdp", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(commands::validate::Args),
    Generate(commands::generate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Generate(args) => commands::generate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("emdp: error: {err}");
            err.exit_code()
        }
    }
}
