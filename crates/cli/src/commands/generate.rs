//! `emdp generate`: write a realistic, deterministic, dirty dataset for demos and tests.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use emdp_datagen::{GenerateError, GeneratorConfig, generate};

use crate::error::CliError;

/// Write a realistic daily energy dataset as CSV (weather-driven consumption per building,
/// with faults injected at known rates), and a JSON manifest of what was injected and of the
/// exact counts `emdp validate` must report for it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of buildings.
    #[arg(long, default_value_t = 100)]
    pub buildings: u32,
    /// Number of days per building.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Random seed; the same arguments always give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fault rate multiplier: 1.0 = the default rates (about 6 % faulty rows), 0 = clean.
    #[arg(long, default_value_t = 1.0)]
    pub faults: f64,
    /// The last clean date.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::parse_date, default_value = "2025-12-31")]
    pub end_date: NaiveDate,
    /// Output CSV file; `-` writes to standard output.
    #[arg(long, default_value = "-")]
    pub out: String,
    /// Where to write the manifest (default: OUT.manifest.json, or standard error when the
    /// CSV goes to standard output).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

/// Runs `emdp generate`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let config = GeneratorConfig {
        buildings: args.buildings,
        days: args.days,
        seed: args.seed,
        fault_rate: args.faults,
        end_date: args.end_date,
    };
    config.validate().map_err(|err| CliError::Usage(err.to_string()))?;
    let output_error =
        |path: &str, err: &dyn std::fmt::Display| CliError::Output { path: path.to_owned(), message: err.to_string() };
    let to_stdout = args.out == "-";
    let result = if to_stdout {
        generate(&config, std::io::stdout().lock())
    } else {
        let file = File::create(&args.out).map_err(|e| output_error(&args.out, &e))?;
        generate(&config, file)
    };
    let manifest = result.map_err(|err| match err {
        GenerateError::Config(err) => CliError::Usage(err.to_string()),
        GenerateError::Io(err) => crate::output::write_error(&args.out, &err),
    })?;
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| output_error("manifest", &e))?;
    let manifest_path =
        args.manifest.or_else(|| (!to_stdout).then(|| PathBuf::from(format!("{}.manifest.json", args.out))));
    match manifest_path {
        Some(path) => {
            std::fs::write(&path, json + "\n").map_err(|e| output_error(&path.display().to_string(), &e))?;
            if !to_stdout {
                eprintln!("wrote {} rows to {} and the manifest to {}", manifest.rows, args.out, path.display());
            }
        }
        None => writeln!(std::io::stderr(), "{json}").map_err(|e| output_error("stderr", &e))?,
    }
    Ok(ExitCode::SUCCESS)
}
