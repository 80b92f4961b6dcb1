//! `emdp duplicates`: list conflict groups and re-resolve them; every decision is recorded.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use emdp_api::dto::GroupPageDto;
use emdp_app::ports::{DuplicateFilter, RecordId};
use emdp_app::usecases::duplicates::{Choice, ResolveError, list_groups, resolve_all, resolve_one};
use emdp_domain::{Arrival, ConflictPolicy};
use serde_json::json;

use crate::commands::validate::load_rules;
use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::{OutputFormat, cell, escape_controls, next_page_hint, write_out};

/// List conflict groups (keys with differing versions) and choose which version wins.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List conflict groups with every version and the current winner (in record id order).
    List(ListArgs),
    /// Re-resolve one group or all groups with a policy or an explicit version.
    Resolve(ResolveArgs),
    /// Show the decisions recorded for a record.
    Decisions(DecisionsArgs),
}

/// Filters shared by `list` and `resolve --all`.
#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// Only this building.
    #[arg(long)]
    pub building: Option<String>,
    /// Only this provider.
    #[arg(long)]
    pub provider: Option<String>,
    #[command(flatten)]
    pub days: super::DayRange,
    /// Only groups waiting for a manual decision.
    #[arg(long)]
    pub pending: bool,
}

impl FilterArgs {
    fn filter(&self) -> Result<DuplicateFilter, CliError> {
        let days = self.days.checked()?;
        Ok(DuplicateFilter {
            building_id: self.building.clone(),
            provider: self.provider.clone(),
            from: days.from,
            to: days.to,
            pending_only: self.pending,
        })
    }
}

/// `emdp duplicates list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many groups.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
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

/// `emdp duplicates resolve`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["all", "record"])))]
#[command(group(clap::ArgGroup::new("choice").required(true).args(["policy", "winner_version"])))]
#[command(disable_version_flag = true)]
pub struct ResolveArgs {
    /// Every conflict group (matching the filters).
    #[arg(long)]
    pub all: bool,
    /// One record.
    #[arg(long, value_name = "ID")]
    pub record: Option<RecordId>,
    /// Pick the winner with this policy (`keep-latest` is read as `keep_latest`).
    #[arg(long, value_parser = super::PolicyParser)]
    pub policy: Option<ConflictPolicy>,
    /// Make this version the winner: its batch and line, as `BATCH:LINE` (with --record only).
    #[arg(long = "version", id = "winner_version", value_name = "BATCH:LINE", value_parser = parse_version, conflicts_with = "all")]
    pub version: Option<Arrival>,
    /// Who decides, recorded with the decision (default `cli`).
    #[arg(long, default_value = "cli")]
    pub by: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `emdp duplicates decisions ID`.
#[derive(Debug, clap::Args)]
pub struct DecisionsArgs {
    /// The record id.
    pub id: RecordId,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn parse_version(text: &str) -> Result<Arrival, String> {
    let (batch, line) = text.trim().split_once(':').ok_or("expected BATCH:LINE, e.g. 3:1207")?;
    let number = |t: &str| t.trim().parse::<i64>().map_err(|_| format!("'{t}' is not a number: expected BATCH:LINE"));
    Ok(Arrival { batch: number(batch)?, line: number(line)? })
}

fn resolve_error(err: ResolveError) -> CliError {
    match err {
        ResolveError::Store(err) => CliError::Store(err),
        other => CliError::Usage(other.to_string()),
    }
}

/// Runs `emdp duplicates ...`.
pub fn run(command: Command) -> Result<ExitCode, CliError> {
    crate::db::block_on(async move {
        match command {
            Command::List(args) => {
                let rules = load_rules(args.rules.as_ref())?;
                let (filter, cursor, limit) = (args.filter.filter()?, args.cursor, args.limit);
                let page = args
                    .database
                    .with_stores(|stores| async move {
                        list_groups(stores.duplicates.as_ref(), &filter, cursor, limit).await.map_err(CliError::Store)
                    })
                    .await?;
                let next_cursor = page.next_cursor.clone();
                let text = match args.output {
                    OutputFormat::Json => format!("{}\n", json!(GroupPageDto::new(page, &rules))),
                    OutputFormat::Text => {
                        let mut text = String::new();
                        for g in &page.items {
                            text.push_str(&format!(
                                "record {}  {} {} {}  {}{}  ({} versions, {} exact duplicates)\n",
                                g.record_id,
                                cell(&g.building_id),
                                cell(&g.date),
                                cell(&g.provider),
                                g.status,
                                if g.pending { "  PENDING" } else { "" },
                                g.versions.len(),
                                g.exact_duplicates
                            ));
                            for v in &g.versions {
                                text.push_str(&format!(
                                    "  {} {:>4}:{:<8} {:<20} {}  {:<12} consumption {:<12} temperature {:<8} {}\n",
                                    if v.winner { "*" } else { " " },
                                    v.batch_id,
                                    v.line,
                                    escape_controls(&v.source),
                                    v.received_at.format("%Y-%m-%d %H:%M:%S"),
                                    v.status,
                                    cell(&v.consumption),
                                    cell(&v.temperature),
                                    v.reasons.join(",")
                                ));
                            }
                        }
                        text
                    }
                };
                write_out(&text)?;
                if args.output == OutputFormat::Text {
                    next_page_hint(next_cursor.as_deref());
                }
            }
            Command::Resolve(args) => {
                let choice = match (args.policy, args.version) {
                    (_, Some(arrival)) => Choice::Version(arrival),
                    (Some(policy), None) => Choice::Policy(policy),
                    (None, None) => return Err(CliError::Usage("give --policy or --version".into())),
                };
                let (record, filter, by) = (args.record, args.filter.filter()?, args.by);
                let outcome = args
                    .database
                    .with_writable_stores(|stores| async move {
                        let store = stores.duplicates.as_ref();
                        let now = Utc::now();
                        match (record, choice) {
                            (Some(record), choice) => resolve_one(store, record, choice, &by, now).await,
                            (None, Choice::Policy(policy)) => resolve_all(store, &filter, policy, &by, now).await,
                            (None, Choice::Version(_)) => {
                                return Err(CliError::Usage(
                                    "--version needs --record: it names one group's version".into(),
                                ));
                            }
                        }
                        .map_err(resolve_error)
                    })
                    .await?;
                let text = match args.output {
                    OutputFormat::Json => format!("{}\n", json!(outcome)),
                    OutputFormat::Text => format!(
                        "{} group(s) examined: {} changed, {} unchanged; {} decision(s) recorded\n",
                        outcome.groups, outcome.changed, outcome.unchanged, outcome.decisions
                    ),
                };
                write_out(&text)?;
            }
            Command::Decisions(args) => {
                let id = args.id;
                let decisions = args
                    .database
                    .with_stores(|stores| async move { stores.duplicates.decisions(id).await.map_err(CliError::Store) })
                    .await?;
                let text = match args.output {
                    OutputFormat::Json => format!("{}\n", json!(decisions)),
                    OutputFormat::Text => decisions
                        .iter()
                        .map(|d| {
                            let how = match d.method {
                                emdp_app::ports::DecisionMethod::Policy(p) => format!("policy {}", p.as_str()),
                                emdp_app::ports::DecisionMethod::Explicit => "explicit".to_owned(),
                            };
                            format!(
                                "{} {} by {}: {} -> winner {}:{} (was {}:{}){}\n",
                                d.id,
                                d.decided_at.format("%Y-%m-%d %H:%M:%S"),
                                d.decided_by,
                                how,
                                d.winner.batch,
                                d.winner.line,
                                d.previous.batch,
                                d.previous.line,
                                if d.pending { ", pending" } else { "" }
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
