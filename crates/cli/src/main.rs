//! `emdp`: the energy monitoring data platform's one binary.

mod commands;
mod config;
mod db;
mod error;
mod input;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's allocator: the API allocates and frees many small buffers per
/// request on both worker threads (validate: about 30,000 -> 42,000 requests/s, bench/api.sh).
/// Ingest got no faster (SQLite allocates through libc); mimalloc keeps freed memory a while,
/// which the ingest chunk size accounts for (`emdp_app::usecases::ingest::CHUNK_ROWS`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Serve(commands::serve::Args),
    Analyze(commands::analyze::Args),
    ImportMongo(commands::import_mongo::Args),
    #[command(subcommand)]
    Records(commands::records::Command),
    #[command(subcommand)]
    Batches(commands::batches::Command),
    #[command(subcommand)]
    DeadLetters(commands::dead_letters::Command),
    Report(commands::report::Args),
    #[command(subcommand)]
    Duplicates(commands::duplicates::Command),
    #[command(subcommand)]
    Keys(commands::keys::Command),
    #[command(subcommand)]
    Config(commands::config::Command),
    Health(commands::health::Args),
}

fn main() -> ExitCode {
    // A `.env` in the working directory fills in variables that are not set (never overrides).
    let _ = dotenvy::from_path(".env");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Analyze(args) => commands::analyze::run(args),
        Command::ImportMongo(args) => commands::import_mongo::run(args),
        Command::Records(command) => commands::records::run(command),
        Command::Batches(command) => commands::batches::run(command),
        Command::DeadLetters(command) => commands::dead_letters::run(command),
        Command::Report(args) => commands::report::run(args),
        Command::Duplicates(command) => commands::duplicates::run(command),
        Command::Keys(command) => commands::keys::run(command),
        Command::Config(command) => commands::config::run(command),
        Command::Health(args) => commands::health::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if err.is_reported() {
                eprintln!("emdp: error: {err}");
            }
            err.exit_code()
        }
    }
}
