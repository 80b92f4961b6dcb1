//! `emdp report`: the data-quality report of the stored data, computed by the database.

use std::io::IsTerminal;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use emdp_app::ports::{BatchId, QualityFilter, StatusCounts};
use emdp_app::usecases::report::{QualityReport, Thresholds, quality_report};

use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::escape_controls;

/// Print the data-quality report of the stored data: counts and shares per status and
/// reason, duplicates, completeness per building (gaps, longest gap), stale buildings,
/// flatlines, and breakdowns per building, provider, day and batch.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this building.
    #[arg(long)]
    pub building: Option<String>,
    /// Only this provider.
    #[arg(long)]
    pub provider: Option<String>,
    /// The days to report on; they are also every building's expected range.
    #[command(flatten)]
    pub days: super::DayRange,
    /// Only records that received a payload in this ingestion batch.
    #[arg(long)]
    pub batch: Option<BatchId>,
    /// A building is stale when its latest VALID day is more than this many days before today.
    #[arg(long, default_value_t = 3)]
    pub stale_days: u32,
    /// A flatline is at least this many consecutive days with the same consumption.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..))]
    pub flatline_days: u32,
    /// The reference day for staleness and expected ranges (default: today, UTC).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub today: Option<NaiveDate>,
    /// How to print: a readable report, one JSON document, or CSV (one row per building).
    #[arg(long, value_enum, default_value_t = ReportOutput::Text)]
    pub output: ReportOutput,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The `--output` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportOutput {
    /// A readable report.
    Text,
    /// The whole report as one JSON document (the API's shape).
    Json,
    /// One CSV row per building (completeness, gaps, staleness, counts).
    Csv,
}

/// Runs `emdp report`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let days = args.days.checked()?;
    let filter = QualityFilter {
        building_id: args.building.clone(),
        provider: args.provider.clone(),
        from: days.from,
        to: days.to,
        batch: args.batch,
    };
    let today = args.today.unwrap_or_else(|| Utc::now().date_naive());
    let thresholds =
        Thresholds { stale_days: args.stale_days, flatline_days: args.flatline_days, ..Thresholds::default() };
    let report = crate::db::block_on(args.database.with_stores(|stores| async move {
        quality_report(stores.quality.as_ref(), &filter, today, thresholds).await.map_err(CliError::Store)
    }))?;
    let text = match args.output {
        ReportOutput::Json => serde_json::to_string(&report).unwrap_or_default() + "\n",
        ReportOutput::Csv => csv(&report),
        ReportOutput::Text => text(&report, std::io::stdout().is_terminal()),
    };
    crate::output::write_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(String::new, ToString::to_string)
}

/// A text cell of `--output csv`: safe to open in a spreadsheet, quoted when it must be.
fn csv_field(text: &str) -> String {
    let text = emdp_formats::spreadsheet_safe(text);
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.into_owned() }
}

/// The CSV header of `--output csv`.
pub const CSV_HEADER: &str = "building_id,records,valid,incomplete,inconsistent,first_day,last_day,expected_days,\
valid_days,completeness,gap_days,gaps,longest_gap_start,longest_gap_end,longest_gap_days,last_valid_day,\
days_since_valid,stale";

fn csv(report: &QualityReport) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for b in &report.completeness.buildings {
        let share = if b.expected_days == 0 { 0.0 } else { b.valid_days as f64 / b.expected_days as f64 };
        let longest = b.longest_gap.as_ref();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{:.4},{},{},{},{},{},{},{},{}\n",
            csv_field(&b.building_id),
            b.status.total,
            b.status.valid,
            b.status.incomplete,
            b.status.inconsistent,
            opt(&b.first_day),
            opt(&b.last_day),
            b.expected_days,
            b.valid_days,
            share,
            b.gap_days,
            b.gaps,
            opt(&longest.map(|g| g.start)),
            opt(&longest.map(|g| g.end)),
            opt(&longest.map(|g| g.days)),
            opt(&b.last_valid_day),
            opt(&b.days_since_valid),
            b.stale
        ));
    }
    out
}

fn percent(part: i64, total: i64) -> String {
    if total == 0 { "-".to_owned() } else { format!("{:.2} %", part as f64 * 100.0 / total as f64) }
}

fn status_line(out: &mut String, label: &str, counts: &StatusCounts) {
    out.push_str(&format!(
        "  {:<28} {:>12} {:>12} {:>12} {:>12}\n",
        label, counts.total, counts.valid, counts.incomplete, counts.inconsistent
    ));
}

/// How many rows of a long list the text report shows.
const SHOWN: usize = 20;

fn text(report: &QualityReport, terminal: bool) -> String {
    let mut out = String::new();
    let f = &report.filter;
    let mut scope = Vec::new();
    if let Some(b) = &f.building_id {
        scope.push(format!("building {b}"));
    }
    if let Some(p) = &f.provider {
        scope.push(format!("provider {p}"));
    }
    if let Some(d) = f.from {
        scope.push(format!("from {d}"));
    }
    if let Some(d) = f.to {
        scope.push(format!("to {d}"));
    }
    if let Some(b) = f.batch {
        scope.push(format!("batch {b}"));
    }
    out.push_str(&format!(
        "Data quality report: {} (today {}, stale after {} days, flatline from {} days)\n\n",
        if scope.is_empty() { "all data".to_owned() } else { scope.join(", ") },
        report.today,
        report.thresholds.stale_days,
        report.thresholds.flatline_days
    ));

    let r = &report.records;
    out.push_str(&format!("  {:<28} {:>12} {:>12}\n", "records (one per key)", "count", "share"));
    for (label, n) in
        [("VALID", r.status.valid), ("INCOMPLETE", r.status.incomplete), ("INCONSISTENT", r.status.inconsistent)]
    {
        out.push_str(&format!("  {:<28} {:>12} {:>12}\n", label, n, percent(n, r.status.total)));
    }
    out.push_str(&format!("  {:<28} {:>12}\n", "total", r.status.total));
    out.push_str(&format!("  {:<28} {:>12}\n", "conflict groups", r.conflict_groups));
    out.push_str(&format!("  {:<28} {:>12}\n", "pending decisions", r.pending));
    out.push_str(&format!("  {:<28} {:>12}\n\n", "without a usable key", r.keyless));

    // Shares of the rows of the sources: a re-delivery (a file ingested again) changes none.
    let rows = &report.rows;
    out.push_str(&format!("  {:<28} {:>12} {:>12}\n", "rows received", "count", "share"));
    for (label, n) in [
        ("VALID", rows.status.valid),
        ("INCOMPLETE", rows.status.incomplete),
        ("INCONSISTENT", rows.status.inconsistent),
        ("exact duplicates", rows.duplicates.exact),
        ("conflicting duplicates", rows.duplicates.conflicting),
    ] {
        out.push_str(&format!("  {:<28} {:>12} {:>12}\n", label, n, percent(n, rows.status.total)));
    }
    out.push_str(&format!("  {:<28} {:>12}\n", "total", rows.status.total));
    out.push_str(&format!("  {:<28} {:>12}\n\n", "redelivered (not counted)", rows.redelivered));

    out.push_str(&format!("  {:<28} {:>12} {:>12}\n", "reason", "records", "rows"));
    for ((reason, n), (_, m)) in r.reasons.0.iter().zip(&rows.reasons.0) {
        if *n > 0 || *m > 0 {
            out.push_str(&format!("  {:<28} {:>12} {:>12}\n", reason.code(), n, m));
        }
    }

    let t = &report.completeness.totals;
    out.push_str(&format!("\nCompleteness ({} buildings)\n", t.buildings));
    out.push_str(&format!("  {:<28} {:>12}\n", "expected building-days", t.expected_days));
    out.push_str(&format!(
        "  {:<28} {:>12} {:>12}\n",
        "with a VALID record",
        t.valid_days,
        percent(t.valid_days, t.expected_days)
    ));
    out.push_str(&format!("  {:<28} {:>12}\n", "missing (gap days)", t.gap_days));
    out.push_str(&format!("  {:<28} {:>12}\n", "gaps", t.gaps));
    out.push_str(&format!("  {:<28} {:>12}\n", "longest gap (days)", t.longest_gap_days));
    out.push_str(&format!("  {:<28} {:>12}\n\n", "stale buildings", t.stale));

    let buildings = &report.completeness.buildings;
    out.push_str(&format!(
        "  {:<16} {:>8} {:>8} {:>8} {:>8}  {:<10} {:<10} {:>9} {:>7} {:>6} {:>7}  {:<10}\n",
        "building",
        "records",
        "valid",
        "incompl",
        "inconsis",
        "first",
        "last",
        "complete",
        "gapdays",
        "gaps",
        "longest",
        "last valid"
    ));
    let shown = if terminal { SHOWN.max(buildings.len().min(200)) } else { buildings.len() };
    for b in buildings.iter().take(shown) {
        out.push_str(&format!(
            "  {:<16} {:>8} {:>8} {:>8} {:>8}  {:<10} {:<10} {:>9} {:>7} {:>6} {:>7}  {:<10}{}\n",
            escape_controls(&b.building_id),
            b.status.total,
            b.status.valid,
            b.status.incomplete,
            b.status.inconsistent,
            opt(&b.first_day),
            opt(&b.last_day),
            percent(b.valid_days, b.expected_days),
            b.gap_days,
            b.gaps,
            b.longest_gap.as_ref().map_or(0, |g| g.days),
            opt(&b.last_valid_day),
            if b.stale { "  STALE" } else { "" }
        ));
    }
    more(&mut out, buildings.len(), shown);

    out.push_str(&format!("\nGaps ({} listed)\n", report.gaps.len()));
    for g in report.gaps.iter().take(SHOWN) {
        out.push_str(&format!("  {:<16} {} .. {}  {:>5} days\n", g.building_id, g.start, g.end, g.days));
    }
    more(&mut out, report.gaps.len(), SHOWN);

    out.push_str(&format!("\nStale buildings ({})\n", report.stale.len()));
    for s in report.stale.iter().take(SHOWN) {
        match (s.last_valid_day, s.days_since_valid) {
            (Some(day), Some(days)) => out.push_str(&format!(
                "  {:<16} last VALID day {day} ({days} days ago)\n",
                escape_controls(&s.building_id)
            )),
            _ => out.push_str(&format!("  {:<16} no VALID record\n", escape_controls(&s.building_id))),
        }
    }
    more(&mut out, report.stale.len(), SHOWN);

    out.push_str(&format!("\nFlatlines ({})\n", report.flatlines.len()));
    for fl in report.flatlines.iter().take(SHOWN) {
        out.push_str(&format!(
            "  {:<16} {:<12} {} .. {}  {:>4} days at {}\n",
            fl.building_id, fl.provider, fl.start, fl.end, fl.days, fl.consumption
        ));
    }
    more(&mut out, report.flatlines.len(), SHOWN);

    out.push_str(&format!(
        "\nPer provider\n  {:<28} {:>12} {:>12} {:>12} {:>12}\n",
        "provider", "records", "valid", "incomplete", "inconsistent"
    ));
    for p in &report.breakdowns.providers {
        status_line(&mut out, &p.key.as_deref().map_or_else(|| "(missing)".into(), escape_controls), &p.status);
    }

    let days = &report.breakdowns.days;
    out.push_str(&format!(
        "\nPer day ({} days; the last {} shown)\n  {:<28} {:>12} {:>12} {:>12} {:>12}\n",
        days.len(),
        days.len().min(SHOWN),
        "day",
        "records",
        "valid",
        "incomplete",
        "inconsistent"
    ));
    for d in &days[days.len().saturating_sub(SHOWN)..] {
        status_line(&mut out, &opt(&d.key), &d.status);
    }

    // Every payload of a batch: its re-deliveries are in `rows`, not in the status columns.
    out.push_str(&format!(
        "\nPer batch\n  {:<8} {:<19} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>11}\n",
        "batch", "source", "rows", "valid", "incompl", "inconsis", "exact", "conflict", "redelivered"
    ));
    for b in &report.breakdowns.batches {
        out.push_str(&format!(
            "  {:<8} {:<19} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>11}\n",
            b.batch_id,
            escape_controls(&b.source),
            b.status.total + b.redelivered,
            b.status.valid,
            b.status.incomplete,
            b.status.inconsistent,
            b.duplicates.exact,
            b.duplicates.conflicting,
            b.redelivered
        ));
    }
    out
}

fn more(out: &mut String, total: usize, shown: usize) {
    if total > shown {
        out.push_str(&format!("  ... {} more (--output json or csv lists every one)\n", total - shown));
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn text_cells_are_quoted_and_safe_to_open_in_a_spreadsheet() {
        assert_eq!(csv_field("B00001"), "B00001");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("@SUM(1+1)"), "'@SUM(1+1)");
        assert_eq!(csv_field("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        assert_eq!(csv_field("-5"), "-5");
    }
}
