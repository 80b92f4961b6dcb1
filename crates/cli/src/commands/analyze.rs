//! `emdp analyze`: a building's CalTRACK baseline, anomalies, level shifts, normalized annual
//! consumption and savings, from the stored VALID records; or `--all`: every building's
//! baseline, fitted in parallel.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::NaiveDate;
use emdp_app::usecases::analyze::{AnalyzeError, Analyzer, BatchBaselines, BuildingAnalysis, PeriodRequest};
use emdp_domain::analysis::ModelWarning;
use plotters::prelude::*;

use crate::db::DatabaseArgs;
use crate::error::CliError;
use crate::output::OutputFormat;

/// DejaVu Sans (Bitstream Vera license, see assets/DejaVuSans-LICENSE.txt): the plots' only
/// font, so no system font is needed.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Analyze a building's VALID records: the CalTRACK 2 daily baseline (model, balance points,
/// coefficients, R², CV(RMSE), NMBE, ASHRAE Guideline 14 verdict, data sufficiency),
/// anomalous days, level shifts, weather-normalized annual consumption and, with a reporting
/// period, avoided energy use with its 90 % fractional savings uncertainty.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The building (omit with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub building: Option<String>,
    /// Fit the baseline of every building (in parallel) and print a summary.
    #[arg(long)]
    pub all: bool,
    /// First day of the baseline period (default: the first VALID day).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub from: Option<NaiveDate>,
    /// Last day of the baseline period (default: the day before the reporting period, else the
    /// last VALID day).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub to: Option<NaiveDate>,
    /// First day of the reporting period: computes savings (default end: the last VALID day).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub reporting_from: Option<NaiveDate>,
    /// Last day of the reporting period.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date)]
    pub reporting_to: Option<NaiveDate>,
    /// How to print.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Write a plot (consumption against temperature with the model, and the daily series with
    /// anomalies marked): `.svg` or `.png`.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Runs `emdp analyze`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    if let Some(plot) = &args.plot {
        plot_format(plot)?;
    }
    crate::db::block_on(args.database.with_stores(|stores| async {
        let analyzer = Analyzer::new(stores.analytics);
        let baseline = PeriodRequest::new(args.from, args.to);
        if args.all {
            let batch = analyzer.baseline_all(baseline).await.map_err(analyze_error)?;
            print_batch(&batch, args.output)?;
            return Ok(ExitCode::SUCCESS);
        }
        let building = args.building.as_deref().unwrap_or_default();
        let reporting = (args.reporting_from.is_some() || args.reporting_to.is_some())
            .then(|| PeriodRequest::new(args.reporting_from, args.reporting_to));
        let analysis = analyzer.analyze(building, baseline, reporting).await.map_err(analyze_error)?;
        if let Some(path) = &args.plot {
            plot(&analysis, path)?;
        }
        match args.output {
            OutputFormat::Json => {
                let text = serde_json::to_string_pretty(&analysis).map_err(|e| CliError::Usage(e.to_string()))?;
                write_stdout(&format!("{text}\n"))?;
            }
            OutputFormat::Text => write_stdout(&text_report(&analysis))?,
        }
        Ok(ExitCode::SUCCESS)
    }))
}

fn analyze_error(err: AnalyzeError) -> CliError {
    match err {
        AnalyzeError::Store(err) => CliError::Store(err),
        other => CliError::Usage(other.to_string()),
    }
}

fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(|e| crate::output::write_error("stdout", &e))
}

fn print_batch(batch: &BatchBaselines, output: OutputFormat) -> Result<(), CliError> {
    match output {
        OutputFormat::Json => {
            let text = serde_json::to_string(batch).map_err(|e| CliError::Usage(e.to_string()))?;
            write_stdout(&format!("{text}\n"))
        }
        OutputFormat::Text => {
            let mut s = format!(
                "buildings: {}\nfitted: {}\nfailed: {}\npassing Guideline 14: {}\n",
                batch.buildings, batch.fitted, batch.failed, batch.passing_guideline14
            );
            for (model_type, count) in &batch.model_types {
                s.push_str(&format!("  {model_type}: {count}\n"));
            }
            s.push_str(&format!(
                "load: {:.0} ms\nfit: {:.0} ms on {} thread(s)\n",
                batch.load_ms, batch.fit_ms, batch.threads
            ));
            for failed in batch.results.iter().filter(|r| r.error.is_some()) {
                s.push_str(&format!("  {}: {}\n", failed.building_id, failed.error.as_deref().unwrap_or_default()));
            }
            write_stdout(&s)
        }
    }
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{:.2} %", v * 100.0))
}

fn opt(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}{unit}"))
}

fn text_report(a: &BuildingAnalysis) -> String {
    let m = &a.baseline.model;
    let mut s = String::new();
    let b = &a.building;
    s.push_str(&format!("building: {} ({} records, {} VALID)\n", b.building_id, b.records, b.valid_records));
    s.push_str(&format!("baseline period: {} .. {}\n", m.period.start, m.period.end));
    s.push_str(&format!("model: {}\n", m.model_type.as_str()));
    s.push_str(&format!("  heating balance point: {}\n", opt(m.heating_balance_point, " °C")));
    s.push_str(&format!("  cooling balance point: {}\n", opt(m.cooling_balance_point, " °C")));
    s.push_str(&format!("  intercept: {:.3} kWh/day\n", m.intercept));
    s.push_str(&format!("  heating slope: {}\n", opt(m.heating_slope, " kWh/°C·day")));
    s.push_str(&format!("  cooling slope: {}\n", opt(m.cooling_slope, " kWh/°C·day")));
    s.push_str(&format!("  n: {}\n  R²: {:.4}\n  adjusted R²: {:.4}\n", m.n, m.r2, m.adj_r2));
    s.push_str(&format!("  CV(RMSE): {}\n  NMBE: {}\n", pct(m.cv_rmse), pct(m.nmbe)));
    let g = &m.guideline14;
    s.push_str(&format!(
        "  Guideline 14 (CV(RMSE) <= {:.0} %, |NMBE| <= {:.0} %): {}\n",
        g.thresholds.max_cv_rmse * 100.0,
        g.thresholds.max_abs_nmbe * 100.0,
        if g.passes { "pass" } else { "fail" }
    ));
    s.push_str(&format!("  data sufficiency: {:.1} % of days\n", m.data_sufficiency * 100.0));
    for warning in &m.warnings {
        let text = match warning {
            ModelWarning::InsufficientData => "fewer than 90 % of the baseline days have a VALID record",
            ModelWarning::CvRmseAboveGuideline14 => "CV(RMSE) is undefined or above the Guideline 14 limit",
            ModelWarning::NmbeAboveGuideline14 => "NMBE is undefined or outside the Guideline 14 limit",
        };
        s.push_str(&format!("  warning: {text}\n"));
    }
    let an = &a.anomalies;
    s.push_str(&format!(
        "anomalies: {} (method: {}, |z| > {})\n",
        an.anomalies.len(),
        serde_json::to_value(an.method).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        an.threshold
    ));
    for x in &an.anomalies {
        s.push_str(&format!(
            "  {}  actual {:.2}  expected {:.2}  deviation {:+.2}  z {:+.1}\n",
            x.date, x.actual, x.expected, x.deviation, x.z_score
        ));
    }
    s.push_str(&format!("level shifts: {}\n", an.level_shifts.len()));
    for x in &an.level_shifts {
        s.push_str(&format!(
            "  {}  {:+.2} kWh/day ({:+.1} % of mean consumption)\n",
            x.date,
            x.change,
            x.relative_change * 100.0
        ));
    }
    s.push_str(&format!(
        "normalized annual consumption: {:.0} kWh (typical year of {} VALID days' temperatures)\n",
        a.normalized.annual_consumption, a.normalized.temperature_days
    ));
    if let Some(sv) = &a.savings {
        let r = &sv.savings;
        s.push_str(&format!(
            "savings {} .. {} ({} days):\n  baseline {:.0} kWh, actual {:.0} kWh, avoided {:.0} kWh ({})\n",
            sv.reporting_period.start,
            sv.reporting_period.end,
            r.days.len(),
            r.total_baseline,
            r.total_actual,
            r.total_savings,
            pct(r.fractional_savings)
        ));
        match &r.uncertainty {
            Some(u) => s.push_str(&format!(
                "  uncertainty at {:.0} %: ±{:.0} kWh, fractional savings uncertainty {}\n",
                u.confidence * 100.0,
                u.absolute,
                pct(u.fractional)
            )),
            None => s.push_str("  uncertainty: undefined\n"),
        }
    }
    s
}

enum PlotFormat {
    Svg,
    Png,
}

fn plot_format(path: &Path) -> Result<PlotFormat, CliError> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => Ok(PlotFormat::Svg),
        Some("png") => Ok(PlotFormat::Png),
        _ => Err(CliError::Usage(format!("{}: --plot must name a .svg or .png file", path.display()))),
    }
}

fn plot(analysis: &BuildingAnalysis, path: &Path) -> Result<(), CliError> {
    // Registering twice is harmless; the font is embedded, no system font is looked up.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let size = (1200, 500);
    let fail = |e: String| CliError::Output { path: path.display().to_string(), message: e };
    match plot_format(path)? {
        PlotFormat::Svg => draw(SVGBackend::new(path, size).into_drawing_area(), analysis).map_err(fail),
        PlotFormat::Png => draw(BitMapBackend::new(path, size).into_drawing_area(), analysis).map_err(fail),
    }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, a: &BuildingAnalysis) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(500);
    let obs = &a.observations;
    let model = &a.baseline.model;
    let anomalies: std::collections::HashSet<NaiveDate> = a.anomalies.anomalies.iter().map(|x| x.date).collect();
    let (tmin, tmax) = bounds(obs.iter().map(|o| o.temperature));
    let (cmin, cmax) = bounds(obs.iter().map(|o| o.consumption));

    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("{}: consumption vs temperature ({})", a.building.building_id, model.model_type.as_str()),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(tmin..tmax, cmin..cmax)
        .map_err(err)?;
    chart.configure_mesh().x_desc("temperature (°C)").y_desc("kWh/day").draw().map_err(err)?;
    chart
        .draw_series(obs.iter().map(|o| Circle::new((o.temperature, o.consumption), 2, BLUE.mix(0.4).filled())))
        .map_err(err)?;
    let steps = 200;
    chart
        .draw_series(LineSeries::new(
            (0..=steps).map(|i| {
                let t = tmin + (tmax - tmin) * f64::from(i) / f64::from(steps);
                (t, model.predict(t))
            }),
            RED.stroke_width(2),
        ))
        .map_err(err)?
        .label("model")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;

    let (dmin, dmax) = match (obs.first(), obs.last()) {
        (Some(f), Some(l)) if l.date > f.date => (f.date, l.date),
        (Some(f), _) => (f.date, f.date + chrono::Days::new(1)),
        _ => return root.present().map_err(err),
    };
    let mut series = ChartBuilder::on(&right)
        .caption(format!("daily consumption, {} anomalies marked", anomalies.len()), ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(dmin..dmax, cmin..cmax)
        .map_err(err)?;
    series.configure_mesh().x_labels(6).y_desc("kWh/day").draw().map_err(err)?;
    series.draw_series(LineSeries::new(obs.iter().map(|o| (o.date, o.consumption)), BLUE.mix(0.7))).map_err(err)?;
    series
        .draw_series(LineSeries::new(obs.iter().map(|o| (o.date, model.predict(o.temperature))), RED.mix(0.6)))
        .map_err(err)?;
    series
        .draw_series(
            obs.iter()
                .filter(|o| anomalies.contains(&o.date))
                .map(|o| Cross::new((o.date, o.consumption), 5, RED.stroke_width(2))),
        )
        .map_err(err)?;
    for shift in &a.anomalies.level_shifts {
        series
            .draw_series(LineSeries::new([(shift.date, cmin), (shift.date, cmax)], GREEN.stroke_width(2)))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// A padded range over finite values ((0, 1) when there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}
