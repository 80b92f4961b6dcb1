//! `emdp batches`: the ingestions (files, request bodies, MQTT batches) the raw store holds.

use std::process::ExitCode;

use emdp_app::page::next_cursor;
use emdp_app::ports::{BatchFilter, BatchId, BatchInfo};
use serde_json::json;

use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::{OutputFormat, escape_controls, next_page_hint, write_out};

/// List the ingestions.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List batches, newest first: source, start and end (none for a batch cut short by a
    /// crash or a kill; ingesting the same input again completes it), rows stored.
    List(ListArgs),
}

/// `emdp batches list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only batches from this source (a file name as given to `ingest`, `api`, `mqtt:<topic>`).
    #[arg(long)]
    pub source: Option<String>,
    /// Only batches never finished.
    #[arg(long)]
    pub unfinished: bool,
    /// At most this many batches.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// The next (older) page: the `next_cursor` of the previous one (`--before` is read too).
    #[arg(long, alias = "before")]
    pub cursor: Option<BatchId>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// A time as the text table shows it.
fn when(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// One line of the text table.
fn batch_line(batch: &BatchInfo) -> String {
    let finished = batch.finished_at.map_or_else(|| "unfinished".to_owned(), when);
    format!(
        "{:>8}  {:<19}  {:<19}  {:>12}  {:<6}  {}\n",
        batch.id,
        when(batch.started_at),
        finished,
        batch.rows_stored,
        batch.format,
        escape_controls(&batch.source)
    )
}

/// Runs `emdp batches ...`.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    crate::db::block_on(async move {
        let Command::List(args) = command;
        let filter = BatchFilter { source: args.source, unfinished: args.unfinished };
        let (cursor, limit) = (args.cursor, args.limit);
        let batches = args
            .database
            .with_store(
                |store| async move { store.list_batches(&filter, cursor, limit).await.map_err(CliError::Store) },
            )
            .await?;
        let next_cursor = next_cursor(&batches, limit, |batch| batch.id);
        let text = match args.output {
            OutputFormat::Json => format!("{}\n", json!({"items": batches, "next_cursor": next_cursor})),
            OutputFormat::Text => {
                let mut text = format!(
                    "{:>8}  {:<19}  {:<19}  {:>12}  {:<6}  source\n",
                    "batch", "started", "finished", "rows stored", "format"
                );
                text.extend(batches.iter().map(batch_line));
                text
            }
        };
        write_out(&text)?;
        if args.output == OutputFormat::Text {
            next_page_hint(next_cursor.as_deref());
        }
        Ok(ExitCode::SUCCESS)
    })
}
