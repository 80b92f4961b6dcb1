//! `emdp validate`: classify every record of a file without storing anything.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use emdp_app::ports::{Clock, ReadError, SourceError, SourceFormat, SystemClock};
use emdp_app::usecases::validate::{summarize, validate};
use emdp_domain::{QualityStatus, QualitySummary, Reason, RuleSet};
use emdp_formats::ReportWriter;

use crate::error::CliError;
use crate::output::OutputFormat;

/// Classify every record of a file (CSV, NDJSON or JSON, gzipped or not) and print counts per status,
/// duplicate kind and reason. Stores nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to check; `-` reads standard input (then --format is required).
    pub file: String,
    /// Input format; guessed from the extension when omitted.
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// Read FIELD from the column (CSV header) or key (JSON) NAME, e.g. `--column
    /// consumption=kwh`; once per field that the input names differently.
    #[arg(long = "column", value_name = "FIELD=NAME")]
    pub columns: Vec<String>,
    /// How to print the summary.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Also write one CSV row per record (line, fields as read, status, duplicate, reasons);
    /// `-` writes it to standard output, and the summary to standard error.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Quality thresholds as TOML (defaults apply to absent keys).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// The last day that is not in the future (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub today: Option<NaiveDate>,
    /// Exit with code 1 when any record is not VALID (a gate for pipelines).
    #[arg(long)]
    pub fail_on_invalid: bool,
}

/// The `--format` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InputFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// A JSON array of objects.
    Json,
}

impl From<InputFormat> for SourceFormat {
    fn from(format: InputFormat) -> Self {
        match format {
            InputFormat::Csv => SourceFormat::Csv,
            InputFormat::Ndjson => SourceFormat::Ndjson,
            InputFormat::Json => SourceFormat::Json,
        }
    }
}

/// Loads `--rules` or the defaults.
pub fn load_rules(path: Option<&PathBuf>) -> Result<RuleSet, CliError> {
    match path {
        Some(path) => Ok(emdp_formats::load_rules(path)?),
        None => Ok(RuleSet::default()),
    }
}

/// Runs `emdp validate`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let rules = load_rules(args.rules.as_ref())?;
    let today = args.today.unwrap_or_else(|| SystemClock.today());
    let columns = crate::input::column_names(&args.columns)?;
    let (mut source, notes) =
        crate::input::watch(crate::input::open(&args.file, args.format.map(Into::into), columns)?);
    let format = source.format();

    // `--report -`: the report on standard output, the summary on standard error.
    let report_to_stdout = args.report.as_deref() == Some(std::path::Path::new("-"));
    let report_path =
        args.report.as_ref().map(|p| if report_to_stdout { "stdout".to_owned() } else { p.display().to_string() });
    let output_error =
        |path: &str, err: &dyn std::fmt::Display| CliError::Output { path: path.to_owned(), message: err.to_string() };
    let mut report = match (&args.report, report_path.as_deref()) {
        (Some(path), Some(name)) => {
            let out: Box<dyn Write> = if report_to_stdout {
                Box::new(std::io::stdout().lock())
            } else {
                Box::new(File::create(path).map_err(|e| output_error(name, &e))?)
            };
            Some(ReportWriter::new(BufWriter::with_capacity(256 * 1024, out)).map_err(|e| output_error(name, &e))?)
        }
        _ => None,
    };
    // Without a per-row report, the summary-only path finds duplicates on a second thread.
    let summary = match report.as_mut() {
        Some(report) => validate(source.as_mut(), &rules, today, report),
        None => summarize(source.as_mut(), &rules, today),
    };
    let summary = match summary {
        Ok(summary) => summary,
        // An empty file has no records, like a file with only a header.
        Err(ReadError::Source(SourceError::Empty)) => QualitySummary::default(),
        Err(ReadError::Source(err)) => {
            return Err(CliError::Input { path: args.file.clone(), message: err.to_string() });
        }
        Err(ReadError::Visit(err)) => return Err(output_error(report_path.as_deref().unwrap_or("report"), &err)),
    };
    if let (Some(report), Some(path)) = (report, report_path.as_deref()) {
        report.finish().map_err(|e| output_error(path, &e))?;
    }
    crate::input::print_notes(&notes, &args.file, format, Some(summary.total));

    let mut out: Box<dyn Write> =
        if report_to_stdout { Box::new(std::io::stderr().lock()) } else { Box::new(std::io::stdout().lock()) };
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer(&mut out, &summary).map_err(std::io::Error::from).and_then(|()| writeln!(out))
        }
        OutputFormat::Text => print_table(&mut out, &args.file, &summary),
    }
    .map_err(|e| crate::output::write_error(if report_to_stdout { "stderr" } else { "stdout" }, &e))?;

    Ok(if args.fail_on_invalid && !summary.all_valid() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn share(part: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { part as f64 * 100.0 / total as f64 }
}

/// The readable form of a summary.
pub fn print_table(out: &mut dyn Write, name: &str, summary: &QualitySummary) -> std::io::Result<()> {
    writeln!(out, "{name}: {} records", summary.total)?;
    writeln!(out)?;
    writeln!(out, "  {:<26} {:>12} {:>8}", "status", "records", "share")?;
    for status in QualityStatus::ALL {
        let count = summary.count(status);
        writeln!(out, "  {:<26} {:>12} {:>7.2}%", status.as_str(), count, share(count, summary.total))?;
    }
    writeln!(out)?;
    writeln!(out, "  {:<26} {:>12}", "duplicates", "records")?;
    writeln!(out, "  {:<26} {:>12}", "exact", summary.duplicates.exact)?;
    writeln!(out, "  {:<26} {:>12}", "conflicting", summary.duplicates.conflicting)?;
    let reasons: Vec<_> = Reason::ALL.iter().filter(|r| summary.reason(**r) > 0).collect();
    if !reasons.is_empty() {
        writeln!(out)?;
        writeln!(out, "  {:<26} {:>12} {:>8}", "reason", "records", "share")?;
        for reason in reasons {
            let count = summary.reason(*reason);
            writeln!(out, "  {:<26} {:>12} {:>7.2}%", reason.code(), count, share(count, summary.total))?;
        }
    }
    Ok(())
}
