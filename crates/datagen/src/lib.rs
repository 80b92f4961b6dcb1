//! A deterministic generator of realistic, *dirty* daily energy datasets, for demos, tests
//! and benchmarks.
//!
//! [`generate`] writes one CSV row per building per day (`building_id,date,consumption,
//! temperature,provider`): a clean signal (cities with seasonal weather, building types with
//! weekday and weekend loads, heating and cooling) into which a known number of faults are
//! injected, one per faulty row. It returns a [`Manifest`] that says exactly what emdp's
//! validation must report for the file, computed from the injected counts rather than by
//! re-running the rules. The same [`GeneratorConfig`] always gives the same bytes.

mod faults;
mod model;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write};

use chrono::{Datelike, Days, NaiveDate};
use emdp_domain::{DuplicateCounts, FieldName, Reason};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::faults::{Fault, FaultCounts, Label};
use crate::model::Model;

/// The CSV header line the generator writes.
pub const HEADER: &str = "building_id,date,consumption,temperature,provider";

/// Future-date faults move a date by a multiple of this many days (20 Julian years), the
/// smallest multiple that puts every such date after the last clean date.
const FUTURE_SHIFT_DAYS: u64 = 7305;

/// What to generate: the size of the dataset, the random seed, how dirty it is and where its
/// dates end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Number of buildings, with ids `B00001`, `B00002`, ...; at least 1.
    pub buildings: u32,
    /// Number of consecutive days per building, ending on `end_date`; at least 1.
    pub days: u32,
    /// The random seed: equal configurations give byte-identical output.
    pub seed: u64,
    /// Multiplier of the default fault rates: 1.0 gives the defaults (about 6 % of the rows
    /// faulty), 0.0 a clean file. Finite and not negative.
    pub fault_rate: f64,
    /// The last clean date of the dataset.
    pub end_date: NaiveDate,
}

impl Default for GeneratorConfig {
    /// 100 buildings, 365 days ending 2025-12-31, seed 42, default fault rates.
    fn default() -> Self {
        GeneratorConfig {
            buildings: 100,
            days: 365,
            seed: 42,
            fault_rate: 1.0,
            end_date: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default(),
        }
    }
}

/// Why a [`GeneratorConfig`] cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `buildings` is 0.
    #[error("the number of buildings must be at least 1")]
    NoBuildings,
    /// `days` is 0.
    #[error("the number of days must be at least 1")]
    NoDays,
    /// `fault_rate` is negative, NaN or infinite.
    #[error("the fault rate must be a finite number of at least 0, got {0}")]
    InvalidFaultRate(f64),
    /// The faults need more distinct rows than the dataset has.
    #[error("fault rate {fault_rate} needs {needed} distinct rows but the dataset has only {rows}")]
    TooManyFaults {
        /// The requested fault rate.
        fault_rate: f64,
        /// Rows the faults would occupy (faulty rows plus one clean source per duplicate).
        needed: u64,
        /// Rows in the dataset.
        rows: u64,
    },
    /// A clean or future date would fall outside the years 0001 to 9999.
    #[error("the dates must stay within the years 0001 to 9999 (clean dates end {end_date}, {days} days)")]
    DatesOutOfRange {
        /// The requested end date.
        end_date: NaiveDate,
        /// The requested number of days.
        days: u32,
    },
    /// The dataset has more rows than this platform can index.
    #[error("{0} rows are more than this platform can generate")]
    TooManyRows(u64),
}

/// Why [`generate`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Writing the CSV failed.
    #[error("cannot write the generated CSV: {0}")]
    Io(#[from] std::io::Error),
}

/// An inclusive range of dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// The first date.
    pub first: NaiveDate,
    /// The last date (inclusive).
    pub last: NaiveDate,
}

/// What validating the generated file must report, in the shape of emdp's quality summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Rows in the file (header excluded).
    pub total: u64,
    /// VALID rows.
    pub valid: u64,
    /// INCOMPLETE rows.
    pub incomplete: u64,
    /// INCONSISTENT rows.
    pub inconsistent: u64,
    /// Duplicate rows by kind.
    pub duplicates: DuplicateCounts,
    /// Rows per reason code, with every code present (zero when no row violates it).
    pub reasons: BTreeMap<String, u64>,
}

/// What a generated file holds: its parameters, what was injected, and the exact outcome
/// that validation under the default rules must report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Data rows written (`buildings * days`; a duplicate replaces a row, it adds none).
    pub rows: u64,
    /// Number of buildings.
    pub buildings: u32,
    /// Number of days.
    pub days: u32,
    /// The seed used.
    pub seed: u64,
    /// The fault-rate multiplier used.
    pub fault_rate: f64,
    /// The dates of the clean signal (`end_date - days + 1` to `end_date`).
    pub clean_dates: DateRange,
    /// The days that `today` may be for [`expected`](Self::expected) to hold: from the
    /// last clean date to the day before the earliest date a future-date fault can have.
    pub today: DateRange,
    /// Rows per injected fault: `missing_<field>`, `nonpositive_zero`,
    /// `nonpositive_negative`, `absurd`, `temp_out_of_range_low`, `temp_out_of_range_high`,
    /// `future_date`, `unparsable_<consumption|temperature|date>`, `spike` (x10, still
    /// valid), `boundary_valid` (valid bounds), `dup_exact`, `dup_conflict`.
    pub injected: BTreeMap<String, u64>,
    /// The validation outcome under the default rules, for any `today` in [`today`](Self::today).
    pub expected: Expected,
    /// Building-days of the clean date range with no VALID record: rows made invalid by a
    /// fault, moved to the future, or replaced by a duplicate of another row.
    pub gaps: u64,
}

/// A checked configuration, with what generation derives from it.
struct Layout {
    rows: usize,
    first_date: NaiveDate,
    future_shift: Days,
    counts: FaultCounts,
}

impl GeneratorConfig {
    /// Checks that the configuration can be generated: at least one building and day, a
    /// finite non-negative fault rate that leaves enough rows for the faults, and dates
    /// (including the future-date faults) within the years 0001 to 9999.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.layout().map(|_| ())
    }

    fn layout(&self) -> Result<Layout, ConfigError> {
        if self.buildings == 0 {
            return Err(ConfigError::NoBuildings);
        }
        if self.days == 0 {
            return Err(ConfigError::NoDays);
        }
        if !self.fault_rate.is_finite() || self.fault_rate < 0.0 {
            return Err(ConfigError::InvalidFaultRate(self.fault_rate));
        }
        let rows = u64::from(self.buildings) * u64::from(self.days);
        let counts = FaultCounts::new(rows, self.fault_rate);
        let needed = counts.rows_needed();
        if needed > rows {
            return Err(ConfigError::TooManyFaults { fault_rate: self.fault_rate, needed, rows });
        }
        let out_of_range = ConfigError::DatesOutOfRange { end_date: self.end_date, days: self.days };
        let future_shift = Days::new(u64::from(self.days).div_ceil(FUTURE_SHIFT_DAYS) * FUTURE_SHIFT_DAYS);
        let first_date = self.end_date.checked_sub_days(Days::new(u64::from(self.days) - 1));
        let last_future = self.end_date.checked_add_days(future_shift);
        let (Some(first_date), Some(last_future)) = (first_date, last_future) else {
            return Err(out_of_range);
        };
        if first_date.year() < 1 || last_future.year() > 9999 {
            return Err(out_of_range);
        }
        let rows = usize::try_from(rows).map_err(|_| ConfigError::TooManyRows(rows))?;
        Ok(Layout { rows, first_date, future_shift, counts })
    }
}

/// Generates the dataset of `config` as CSV into `out` (buffered internally), row by row in
/// date-major order (every building for the first day, then the next day, ...), and returns
/// its manifest.
///
/// Memory is the model (a few numbers per building and city) plus the planned faults (about
/// 8 % of the rows at the default rates), never the whole file. Cells containing a comma
/// (the unparsable numbers `12,5` and `21,3`) are quoted as RFC 4180 says; nothing else is.
pub fn generate<W: Write>(config: &GeneratorConfig, out: W) -> Result<Manifest, GenerateError> {
    let layout = config.layout()?;
    let mut fault_rng = Xoshiro256PlusPlus::seed_from_u64(config.seed.wrapping_mul(1_000_003).wrapping_add(7));
    let plan = faults::plan(layout.rows, &layout.counts, &mut fault_rng);
    let mut model = Model::new(Xoshiro256PlusPlus::seed_from_u64(config.seed), config.buildings);

    let mut out = BufWriter::with_capacity(1 << 16, out);
    writeln!(out, "{HEADER}")?;
    let buildings = u64::from(config.buildings);
    let mut faults = plan.faults.into_iter().peekable();
    // The clean values of duplicate sources not yet copied, by row.
    let mut sources: HashMap<u64, (f64, f64)> = HashMap::new();
    let mut row = 0u64;
    for date in layout.first_date.iter_days().take(config.days as usize) {
        let date_text = date.to_string();
        model.start_day(date);
        for building in 0..model.buildings.len() {
            let (consumption, temperature) = model.reading(building, date);
            let b = &model.buildings[building];
            let Some((_, fault)) = faults.next_if(|(fault_row, _)| *fault_row == row) else {
                writeln!(out, "{},{date_text},{consumption:.3},{temperature:.1},{}", b.id, b.provider)?;
                row += 1;
                continue;
            };
            let mut cells = [
                b.id.clone(),
                date_text.clone(),
                format!("{consumption:.3}"),
                format!("{temperature:.1}"),
                b.provider.to_owned(),
            ];
            match fault {
                // FieldName's variants are declared in column order.
                Fault::Replace { column, text } => cells[column as usize] = text.into_owned(),
                Fault::Spike => cells[FieldName::Consumption as usize] = format!("{:.3}", consumption * 10.0),
                Fault::FutureDate => cells[FieldName::Date as usize] = (date + layout.future_shift).to_string(),
                Fault::DuplicateSource => {
                    sources.insert(row, (consumption, temperature));
                }
                Fault::Duplicate { source, factor } => {
                    let (consumption, temperature) =
                        sources.remove(&source).expect("a duplicate's source row is written before it");
                    let b = &model.buildings[(source % buildings) as usize];
                    let consumption = consumption * factor.unwrap_or(1.0);
                    cells = [
                        b.id.clone(),
                        (layout.first_date + Days::new(source / buildings)).to_string(),
                        format!("{consumption:.3}"),
                        format!("{temperature:.1}"),
                        b.provider.to_owned(),
                    ];
                }
            }
            write_row(&mut out, &cells)?;
            row += 1;
        }
    }
    out.flush()?;

    Ok(manifest(config, &layout, &plan.injected))
}

/// Writes one CSV row, quoting the cells that need it.
fn write_row<W: Write>(out: &mut W, cells: &[String; 5]) -> std::io::Result<()> {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if cell.contains([',', '"', '\n', '\r']) {
            write!(out, "\"{}\"", cell.replace('"', "\"\""))?;
        } else {
            out.write_all(cell.as_bytes())?;
        }
    }
    out.write_all(b"\n")
}

/// The manifest of a generated file, by arithmetic on the injected counts: every faulty row
/// carries exactly one fault, so it violates exactly one rule (or none).
fn manifest(config: &GeneratorConfig, layout: &Layout, injected: &[u64; Label::ALL.len()]) -> Manifest {
    let rows = u64::from(config.buildings) * u64::from(config.days);
    let mut reasons = [0u64; Reason::COUNT];
    let (mut incomplete, mut inconsistent) = (0, 0);
    for (label, count) in Label::ALL.iter().copied().zip(injected) {
        if let Some(reason) = label.reason() {
            reasons[reason as usize] += count;
            if reason.is_missing_field() {
                incomplete += count;
            } else {
                inconsistent += count;
            }
        }
    }
    let duplicates = DuplicateCounts {
        exact: injected[Label::DuplicateExact as usize],
        conflicting: injected[Label::DuplicateConflicting as usize],
    };
    Manifest {
        rows,
        buildings: config.buildings,
        days: config.days,
        seed: config.seed,
        fault_rate: config.fault_rate,
        clean_dates: DateRange { first: layout.first_date, last: config.end_date },
        today: DateRange { first: config.end_date, last: layout.first_date + layout.future_shift - Days::new(1) },
        injected: Label::ALL.iter().zip(injected).map(|(label, count)| (label.name().to_owned(), *count)).collect(),
        expected: Expected {
            total: rows,
            valid: rows - incomplete - inconsistent,
            incomplete,
            inconsistent,
            duplicates,
            reasons: Reason::ALL.iter().map(|reason| (reason.code().to_owned(), reasons[*reason as usize])).collect(),
        },
        gaps: incomplete + inconsistent + duplicates.exact + duplicates.conflicting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(buildings: u32, days: u32) -> GeneratorConfig {
        GeneratorConfig { buildings, days, ..GeneratorConfig::default() }
    }

    fn generated(config: &GeneratorConfig) -> (String, Manifest) {
        let mut bytes = Vec::new();
        let manifest = generate(config, &mut bytes).unwrap();
        (String::from_utf8(bytes).unwrap(), manifest)
    }

    #[test]
    fn default_config_is_valid() {
        let config = GeneratorConfig::default();
        assert_eq!((config.buildings, config.days, config.seed, config.fault_rate), (100, 365, 42, 1.0));
        assert_eq!(config.end_date.to_string(), "2025-12-31");
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn rejects_unusable_configurations() {
        assert_eq!(config(0, 10).validate(), Err(ConfigError::NoBuildings));
        assert_eq!(config(10, 0).validate(), Err(ConfigError::NoDays));
        for rate in [-0.1, f64::NAN, f64::INFINITY] {
            let config = GeneratorConfig { fault_rate: rate, ..config(10, 10) };
            assert!(matches!(config.validate(), Err(ConfigError::InvalidFaultRate(_))), "{rate}");
        }
        let crowded = GeneratorConfig { fault_rate: 20.0, ..config(100, 100) };
        assert!(matches!(crowded.validate(), Err(ConfigError::TooManyFaults { rows: 10_000, .. })));
        let huge = GeneratorConfig { fault_rate: f64::MAX, ..config(1, 1) };
        assert!(matches!(huge.validate(), Err(ConfigError::TooManyFaults { needed: u64::MAX, .. })));
        let late = GeneratorConfig { end_date: NaiveDate::from_ymd_opt(9990, 1, 1).unwrap(), ..config(1, 1) };
        assert!(matches!(late.validate(), Err(ConfigError::DatesOutOfRange { .. })));
        let early = GeneratorConfig { end_date: NaiveDate::from_ymd_opt(2, 1, 1).unwrap(), ..config(1, 1000) };
        assert!(matches!(early.validate(), Err(ConfigError::DatesOutOfRange { .. })));
        assert!(matches!(generate(&config(0, 1), Vec::new()), Err(GenerateError::Config(ConfigError::NoBuildings))));
    }

    #[test]
    fn a_clean_file_has_one_plain_row_per_building_and_day() {
        let config = GeneratorConfig { fault_rate: 0.0, ..config(3, 4) };
        let (text, manifest) = generated(&config);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines.len(), 1 + 12);
        assert!(text.ends_with('\n') && !text.contains('\r') && !text.contains('"'));
        assert!(lines[1].starts_with("B00001,2025-12-28,"));
        assert!(lines[3].starts_with("B00003,2025-12-28,"));
        assert!(lines[12].starts_with("B00003,2025-12-31,"));
        for line in &lines[1..] {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 5);
            assert_eq!(cells[2].split_once('.').unwrap().1.len(), 3, "{line}");
            assert_eq!(cells[3].split_once('.').unwrap().1.len(), 1, "{line}");
            assert!(cells[4].starts_with("provider_"));
        }
        assert_eq!(manifest.rows, 12);
        assert_eq!(manifest.expected.valid, 12);
        assert_eq!(manifest.gaps, 0);
        assert!(manifest.injected.values().all(|count| *count == 0));
    }

    #[test]
    fn clean_signal_does_not_depend_on_the_fault_rate() {
        let (clean, _) = generated(&GeneratorConfig { fault_rate: 0.0, ..config(40, 60) });
        let (dirty, manifest) = generated(&config(40, 60));
        let differing = clean.lines().zip(dirty.lines()).filter(|(a, b)| a != b).count() as u64;
        // Exactly the faulty rows differ; duplicate sources are written unchanged.
        assert_eq!(differing, manifest.injected.values().sum::<u64>());
    }

    #[test]
    fn manifest_counts_add_up_and_round_trip_through_json() {
        let (_, manifest) = generated(&config(100, 100));
        let expected = &manifest.expected;
        assert_eq!(expected.total, 10_000);
        assert_eq!(expected.valid + expected.incomplete + expected.inconsistent, expected.total);
        assert_eq!(expected.incomplete, 200);
        assert_eq!(expected.inconsistent, 100 + 50 + 50 + 30 + 20);
        assert_eq!(expected.duplicates, DuplicateCounts { exact: 100, conflicting: 50 });
        assert_eq!(expected.reasons.len(), Reason::COUNT);
        assert_eq!(expected.reasons["missing_date"], 40);
        assert_eq!(expected.reasons["consumption_non_positive"], 100);
        assert_eq!(manifest.gaps, 200 + 250 + 150);
        assert_eq!(manifest.injected.len(), 18);
        assert_eq!(manifest.clean_dates.first.to_string(), "2025-09-23");
        assert_eq!(manifest.today.first, manifest.clean_dates.last);
        assert_eq!(manifest.today.last, manifest.clean_dates.first + Days::new(7304));
        let json = serde_json::to_string(&manifest).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), manifest);
    }

    #[test]
    fn future_dates_clear_long_ranges() {
        let config = GeneratorConfig { fault_rate: 0.0, ..config(1, 8000) };
        let (_, manifest) = generated(&config);
        assert!(manifest.today.last > manifest.clean_dates.last);
        assert_eq!(manifest.today.last, manifest.clean_dates.first + Days::new(2 * 7305 - 1));
    }

    #[test]
    fn early_years_are_written_with_four_digits() {
        let end_date = NaiveDate::from_ymd_opt(1, 1, 3).unwrap();
        let config = GeneratorConfig { end_date, fault_rate: 0.0, ..config(1, 3) };
        let (text, _) = generated(&config);
        assert!(text.lines().nth(1).unwrap().starts_with("B00001,0001-01-01,"));
    }
}
