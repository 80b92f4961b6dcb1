//! `emdp records`: read the curated store.

use std::path::PathBuf;
use std::process::ExitCode;

use emdp_api::dto::{RecordDto, VersionDto};
use emdp_app::page::next_cursor;
use emdp_app::ports::{RecordFilter, RecordId, StoredRecord};
use emdp_domain::{QualityStatus, RuleSet};
use serde_json::json;

use crate::commands::validate::load_rules;
use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::{OutputFormat, cell, escape_controls, next_page_hint, write_out};

/// Read curated records.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List records (in id order), filtered.
    List(ListArgs),
    /// Show one record.
    Get(GetArgs),
    /// Show every raw payload behind a record.
    History(GetArgs),
}

/// `emdp records list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this building.
    #[arg(long)]
    pub building: Option<String>,
    /// Only this provider.
    #[arg(long)]
    pub provider: Option<String>,
    #[command(flatten)]
    pub days: super::DayRange,
    /// Only this status (VALID, INCOMPLETE, INCONSISTENT).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<QualityStatus>,
    /// At most this many records.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub limit: u32,
    /// The next page: the `next_cursor` of the previous one (`--after` is read too).
    #[arg(long, alias = "after")]
    pub cursor: Option<RecordId>,
    /// Quality thresholds as TOML, for the reasons' messages (default: the built-in ones).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `emdp records get|history ID`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The record id.
    pub id: RecordId,
    /// Quality thresholds as TOML, for the reasons' messages (default: the built-in ones).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_status(text: &str) -> Result<QualityStatus, String> {
    QualityStatus::parse(text).ok_or_else(|| format!("'{text}' is not VALID, INCOMPLETE or INCONSISTENT"))
}

/// A record as JSON: the API's shape ([`RecordDto`]).
fn record_json(record: &StoredRecord, rules: &RuleSet) -> serde_json::Value {
    json!(RecordDto::new(record, rules))
}

/// A record as one `field  value` line per field, for reading in a terminal (values as in
/// the JSON, `-` where absent).
fn record_text(record: &StoredRecord) -> String {
    let (fields, state) = (&record.state.fields, &record.state);
    let lines = [
        ("id", record.id.to_string()),
        ("building_id", cell(&fields.building_id)),
        ("date", cell(&fields.date)),
        ("consumption", cell(&fields.consumption)),
        ("temperature", cell(&fields.temperature)),
        ("provider", cell(&fields.provider)),
        ("quality_status", state.status.to_string()),
        ("reasons", if state.reasons.is_empty() { "-".to_owned() } else { state.reasons.join(",") }),
        ("versions", state.versions.to_string()),
        ("exact_duplicates", record.exact_duplicates.to_string()),
        ("pending_review", if state.pending { "yes" } else { "no" }.to_owned()),
        ("winner", format!("batch {} line {}", state.winner.batch, state.winner.line)),
        ("created_at", record.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        ("updated_at", record.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    ];
    lines.iter().map(|(name, value)| format!("{name:<18}{value}\n")).collect()
}

/// Runs `emdp records ...`.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    crate::db::block_on(async move {
        match command {
            Command::List(args) => {
                let days = args.days.checked()?;
                let filter = RecordFilter {
                    building_id: args.building,
                    provider: args.provider,
                    status: args.status,
                    from: days.from,
                    to: days.to,
                };
                let rules = load_rules(args.rules.as_ref())?;
                let (cursor, limit) = (args.cursor, args.limit);
                let records = args
                    .database
                    .with_store(|store| async move {
                        store.list_records(&filter, cursor, limit).await.map_err(CliError::Store)
                    })
                    .await?;
                let next_cursor = next_cursor(&records, limit, |record| record.id);
                let text = match args.output {
                    OutputFormat::Json => {
                        let items: Vec<_> = records.iter().map(|record| record_json(record, &rules)).collect();
                        format!("{}\n", json!({"items": items, "next_cursor": next_cursor}))
                    }
                    OutputFormat::Text => {
                        let mut text = format!(
                            "{:>10}  {:<12} {:<10} {:>12} {:>8}  {:<12} {:<12}  reasons\n",
                            "id", "building", "date", "consumption", "temp", "provider", "status"
                        );
                        for r in &records {
                            let f = &r.state.fields;
                            text.push_str(&format!(
                                "{:>10}  {:<12} {:<10} {:>12} {:>8}  {:<12} {:<12}  {}\n",
                                r.id,
                                cell(&f.building_id),
                                cell(&f.date),
                                cell(&f.consumption),
                                cell(&f.temperature),
                                cell(&f.provider),
                                r.state.status,
                                r.state.reasons.join(",")
                            ));
                        }
                        text
                    }
                };
                write_out(&text)?;
                if args.output == OutputFormat::Text {
                    next_page_hint(next_cursor.as_deref());
                }
            }
            Command::Get(args) => {
                let rules = load_rules(args.rules.as_ref())?;
                let id = args.id;
                let record = args
                    .database
                    .with_store(|store| async move { store.get_record(id).await.map_err(CliError::Store) })
                    .await?;
                let record = record.ok_or_else(|| CliError::Usage(format!("no record with id {}", args.id)))?;
                let text = match args.output {
                    OutputFormat::Json => format!("{}\n", record_json(&record, &rules)),
                    OutputFormat::Text => record_text(&record),
                };
                write_out(&text)?;
            }
            Command::History(args) => {
                let rules = load_rules(args.rules.as_ref())?;
                let id = args.id;
                let history = args
                    .database
                    .with_store(|store| async move { store.record_history(id).await.map_err(CliError::Store) })
                    .await?;
                if history.is_empty() {
                    return Err(CliError::Usage(format!("no raw payloads for record {}", args.id)));
                }
                let text = match args.output {
                    OutputFormat::Json => {
                        let versions: Vec<_> = history.into_iter().map(|v| VersionDto::new(v, &rules)).collect();
                        format!("{}\n", json!(versions))
                    }
                    OutputFormat::Text => history
                        .iter()
                        .map(|v| {
                            format!(
                                "batch {} line {} {} ({}) {} {}{}: {}\n",
                                v.batch_id,
                                v.line,
                                escape_controls(&v.source),
                                v.received_at.format("%Y-%m-%d %H:%M:%S"),
                                v.admission,
                                v.status,
                                if v.winner { " [winner]" } else { "" },
                                escape_controls(&v.payload)
                            )
                        })
                        .collect(),
                };
                write_out(&text)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
