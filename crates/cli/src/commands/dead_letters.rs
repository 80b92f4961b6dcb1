//! `emdp dead-letters`: the MQTT messages `emdp serve` gave up on (a store write that kept
//! failing with the message's own error), kept raw with the error.

use std::process::ExitCode;

use emdp_app::ports::DeadLetter;
use serde_json::json;

use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::{OutputFormat, escape_controls, write_out};

/// The MQTT messages kept as dead letters.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List dead letters, newest first: when the message arrived, its topic, the store
    /// attempts that failed and the last error (`--output json` adds the payload, exactly as
    /// received: `payload_encoding` says `utf-8`, or `base64` for a message that was not UTF-8).
    List(ListArgs),
}

/// `emdp dead-letters list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// At most this many dead letters.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// Only dead letters older than this cursor (the previous page's `next_cursor`).
    #[arg(long)]
    pub cursor: Option<i64>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// One line of the text table.
fn letter_line(letter: &DeadLetter) -> String {
    format!(
        "{:>8}  {:<19}  {:>8}  {:<30}  {}\n",
        letter.id,
        letter.received_at.format("%Y-%m-%d %H:%M:%S"),
        letter.attempts,
        escape_controls(&letter.topic),
        escape_controls(&letter.error)
    )
}

/// Runs `emdp dead-letters ...`.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    crate::db::block_on(async move {
        let Command::List(args) = command;
        let (cursor, limit) = (args.cursor, args.limit);
        let letters = args
            .database
            .with_stores(|stores| async move {
                stores.dead_letters.list_dead_letters(cursor, limit).await.map_err(CliError::Store)
            })
            .await?;
        // A full page may have a next one; its cursor is the last id.
        let next_cursor = (letters.len() == limit as usize).then(|| letters.last().map(|l| l.id.to_string())).flatten();
        let text = match args.output {
            OutputFormat::Json => format!("{}\n", json!({"items": letters, "next_cursor": next_cursor})),
            OutputFormat::Text => {
                let mut text = format!("{:>8}  {:<19}  {:>8}  {:<30}  error\n", "id", "received", "attempts", "topic");
                text.extend(letters.iter().map(letter_line));
                if let Some(cursor) = next_cursor {
                    text.push_str(&format!("more: --cursor {cursor}\n"));
                }
                text
            }
        };
        write_out(&text)?;
        Ok(ExitCode::SUCCESS)
    })
}
