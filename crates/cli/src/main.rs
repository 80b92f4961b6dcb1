//! `emdp`: the energy monitoring data platform's one binary.

mod commands;
mod db;
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
    Ingest(commands::ingest::Args),
    Migrate(commands::migrate::Args),
    #[command(subcommand)]
    Records(commands::records::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Records(command) => commands::records::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("emdp: error: {err}");
            err.exit_code()
        }
    }
}
