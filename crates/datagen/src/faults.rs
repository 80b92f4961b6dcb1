//! Which rows carry which fault: decided up front, from a random stream of its own, so that
//! the clean signal does not depend on the fault rate and the counts are exact.

use std::borrow::Cow;

use emdp_domain::{FieldName, Reason};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::index;

/// A fault that changes one row on its own (duplicates involve two rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    NonPositive,
    Absurd,
    TemperatureOutOfRange,
    FutureDate,
    Unparsable,
    Spike,
    BoundaryValid,
}

/// Every single-row fault kind with its default share of the rows, in the order picked rows
/// are assigned to them.
const RATES: [(Kind, f64); 8] = [
    (Kind::Missing, 0.020),
    (Kind::NonPositive, 0.010),
    (Kind::Absurd, 0.005),
    (Kind::TemperatureOutOfRange, 0.005),
    (Kind::FutureDate, 0.003),
    (Kind::Unparsable, 0.002),
    (Kind::Spike, 0.002),
    (Kind::BoundaryValid, 0.0005),
];
/// Default share of rows replaced by an exact copy of an earlier clean row.
const DUPLICATE_EXACT_RATE: f64 = 0.010;
/// Default share of rows replaced by a copy of an earlier clean row with another consumption.
const DUPLICATE_CONFLICTING_RATE: f64 = 0.005;

/// How many rows of each kind a dataset gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FaultCounts {
    single: [u64; RATES.len()],
    exact: u64,
    conflicting: u64,
}

impl FaultCounts {
    /// The default rates times `fault_rate`, each rounded to whole rows (saturating).
    pub(crate) fn new(rows: u64, fault_rate: f64) -> Self {
        // `as` saturates, so an absurd fault rate yields counts the caller rejects.
        let count = |rate: f64| (rows as f64 * rate * fault_rate).round() as u64;
        FaultCounts {
            single: RATES.map(|(_, rate)| count(rate)),
            exact: count(DUPLICATE_EXACT_RATE),
            conflicting: count(DUPLICATE_CONFLICTING_RATE),
        }
    }

    fn duplicates(&self) -> u64 {
        self.exact.saturating_add(self.conflicting)
    }

    /// Distinct rows the faults occupy: every faulty row, plus one clean source per duplicate.
    pub(crate) fn rows_needed(&self) -> u64 {
        let duplicate_rows = self.duplicates().saturating_mul(2);
        self.single.iter().fold(duplicate_rows, |sum, count| sum.saturating_add(*count))
    }
}

/// What the manifest reports as injected; each label is one row count, under its manifest key
/// (the variant's name in snake case unless it says otherwise), in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum Label {
    MissingBuildingId,
    MissingDate,
    MissingConsumption,
    MissingTemperature,
    MissingProvider,
    #[strum(serialize = "nonpositive_zero")]
    NonPositiveZero,
    #[strum(serialize = "nonpositive_negative")]
    NonPositiveNegative,
    Absurd,
    #[strum(serialize = "temp_out_of_range_low")]
    TemperatureLow,
    #[strum(serialize = "temp_out_of_range_high")]
    TemperatureHigh,
    FutureDate,
    UnparsableConsumption,
    UnparsableTemperature,
    UnparsableDate,
    Spike,
    BoundaryValid,
    #[strum(serialize = "dup_exact")]
    DuplicateExact,
    #[strum(serialize = "dup_conflict")]
    DuplicateConflicting,
}

impl Label {
    /// Every label, in manifest order.
    pub(crate) const ALL: &'static [Label] = <Label as strum::VariantArray>::VARIANTS;

    /// The manifest key.
    pub(crate) fn name(self) -> &'static str {
        self.into()
    }

    /// The one rule a row with this fault violates under the default rules, if any.
    pub(crate) fn reason(self) -> Option<Reason> {
        match self {
            Label::MissingBuildingId => Some(Reason::MissingBuildingId),
            Label::MissingDate => Some(Reason::MissingDate),
            Label::MissingConsumption => Some(Reason::MissingConsumption),
            Label::MissingTemperature => Some(Reason::MissingTemperature),
            Label::MissingProvider => Some(Reason::MissingProvider),
            Label::NonPositiveZero | Label::NonPositiveNegative => Some(Reason::ConsumptionNonPositive),
            Label::Absurd => Some(Reason::ConsumptionTooHigh),
            Label::TemperatureLow | Label::TemperatureHigh => Some(Reason::TemperatureOutOfRange),
            Label::FutureDate => Some(Reason::DateInFuture),
            Label::UnparsableConsumption => Some(Reason::UnparsableConsumption),
            Label::UnparsableTemperature => Some(Reason::UnparsableTemperature),
            Label::UnparsableDate => Some(Reason::UnparsableDate),
            Label::Spike | Label::BoundaryValid | Label::DuplicateExact | Label::DuplicateConflicting => None,
        }
    }

    fn missing(field: FieldName) -> Label {
        match field {
            FieldName::BuildingId => Label::MissingBuildingId,
            FieldName::Date => Label::MissingDate,
            FieldName::Consumption => Label::MissingConsumption,
            FieldName::Temperature => Label::MissingTemperature,
            FieldName::Provider => Label::MissingProvider,
        }
    }
}

const UNPARSABLE_FIELDS: [FieldName; 3] = [FieldName::Consumption, FieldName::Temperature, FieldName::Date];
const BAD_CONSUMPTION: [&str; 6] = ["abc", "#VALUE!", "12,5", "n/a", "1.2.3", "kWh"];
const BAD_TEMPERATURE: [&str; 5] = ["xx", "--", "21,3", "err", "1..5"];
const BAD_DATES: [&str; 6] = ["2024-13-45", "2023-02-30", "31/12/2023", "not-a-date", "2024/01/05", "2024-00-10"];
const BOUNDARY_VALUES: [(FieldName, &str); 6] = [
    (FieldName::Temperature, "-20.0"),
    (FieldName::Temperature, "55.0"),
    (FieldName::Consumption, "1000000.0"),
    (FieldName::Consumption, "1e6"),
    (FieldName::Consumption, "0.001"),
    (FieldName::Temperature, "55"),
];

/// What happens to one row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fault {
    /// One cell is replaced by this text (empty for a missing cell).
    Replace { column: FieldName, text: Cow<'static, str> },
    /// The consumption is ten times the clean value (still valid).
    Spike,
    /// The date is moved past every clean date.
    FutureDate,
    /// A clean row that a later duplicate copies; written unchanged.
    DuplicateSource,
    /// The row is replaced by a copy of the earlier clean row `source`, with its consumption
    /// times `factor` for a conflicting duplicate.
    Duplicate { source: u64, factor: Option<f64> },
}

/// Every faulty row, sorted by row index, and the count per label.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) faults: Vec<(u64, Fault)>,
    pub(crate) injected: [u64; Label::ALL.len()],
}

/// Picks pairwise-disjoint rows for `counts` among `rows` rows, and draws each fault's value.
/// `counts.rows_needed()` must not exceed `rows`, and `rows` must fit in `usize`.
pub(crate) fn plan(rows: usize, counts: &FaultCounts, rng: &mut Xoshiro256PlusPlus) -> Plan {
    let needed = usize::try_from(counts.rows_needed()).map_or(rows, |needed| needed.min(rows));
    let picked = index::sample(rng, rows, needed).into_vec();
    let mut picked = picked.into_iter().map(|row| row as u64);
    let mut faults = Vec::with_capacity(needed);
    let mut injected = [0; Label::ALL.len()];
    for ((kind, _), count) in RATES.into_iter().zip(counts.single) {
        for k in 0..count {
            let Some(row) = picked.next() else { break };
            let (label, fault) = draw(kind, k, rng);
            injected[label as usize] += 1;
            faults.push((row, fault));
        }
    }
    // Each pair of picked rows is an earlier clean source and a later row replaced by its
    // copy, so a writer going through the rows in order has seen the source first.
    for i in 0..counts.duplicates() {
        let (Some(a), Some(b)) = (picked.next(), picked.next()) else {
            break;
        };
        let (source, slot) = (a.min(b), a.max(b));
        let (label, factor) = if i < counts.exact {
            (Label::DuplicateExact, None)
        } else if (i - counts.exact) % 2 == 1 {
            (Label::DuplicateConflicting, Some(rng.random_range(1.1..1.5)))
        } else {
            (Label::DuplicateConflicting, Some(rng.random_range(0.6..0.9)))
        };
        injected[label as usize] += 1;
        faults.push((source, Fault::DuplicateSource));
        faults.push((slot, Fault::Duplicate { source, factor }));
    }
    faults.sort_unstable_by_key(|(row, _)| *row);
    Plan { faults, injected }
}

/// The `k`-th fault of a kind.
fn draw(kind: Kind, k: u64, rng: &mut Xoshiro256PlusPlus) -> (Label, Fault) {
    let replace = |column: FieldName, text: Cow<'static, str>| Fault::Replace { column, text };
    let nth = |len: usize| (k / 3) as usize % len;
    match kind {
        Kind::Missing => {
            let field = FieldName::ALL[(k % 5) as usize];
            (Label::missing(field), replace(field, Cow::Borrowed("")))
        }
        Kind::NonPositive if k % 2 == 1 => {
            let value = -rng.random_range(0.1..500.0);
            (Label::NonPositiveNegative, replace(FieldName::Consumption, Cow::Owned(format!("{value:.3}"))))
        }
        Kind::NonPositive => {
            let zero = match k % 4 {
                0 => "0",
                _ => "0.0",
            };
            (Label::NonPositiveZero, replace(FieldName::Consumption, Cow::Borrowed(zero)))
        }
        Kind::Absurd => {
            let value = rng.random_range(1.5e6_f64.ln()..5e9_f64.ln()).exp();
            let text = if k % 2 == 1 { general6(value) } else { format!("{value:.3}") };
            (Label::Absurd, replace(FieldName::Consumption, Cow::Owned(text)))
        }
        Kind::TemperatureOutOfRange if k % 2 == 1 => {
            let value = rng.random_range(55.5..80.0);
            (Label::TemperatureHigh, replace(FieldName::Temperature, Cow::Owned(format!("{value:.1}"))))
        }
        Kind::TemperatureOutOfRange => {
            let value = rng.random_range(-60.0..-20.5);
            (Label::TemperatureLow, replace(FieldName::Temperature, Cow::Owned(format!("{value:.1}"))))
        }
        Kind::FutureDate => (Label::FutureDate, Fault::FutureDate),
        Kind::Unparsable => match UNPARSABLE_FIELDS[(k % 3) as usize] {
            FieldName::Consumption => (
                Label::UnparsableConsumption,
                replace(FieldName::Consumption, Cow::Borrowed(BAD_CONSUMPTION[nth(BAD_CONSUMPTION.len())])),
            ),
            FieldName::Temperature => (
                Label::UnparsableTemperature,
                replace(FieldName::Temperature, Cow::Borrowed(BAD_TEMPERATURE[nth(BAD_TEMPERATURE.len())])),
            ),
            _ => (Label::UnparsableDate, replace(FieldName::Date, Cow::Borrowed(BAD_DATES[nth(BAD_DATES.len())]))),
        },
        Kind::Spike => (Label::Spike, Fault::Spike),
        Kind::BoundaryValid => {
            let (column, text) = BOUNDARY_VALUES[(k % BOUNDARY_VALUES.len() as u64) as usize];
            (Label::BoundaryValid, replace(column, Cow::Borrowed(text)))
        }
    }
}

/// Formats like C's `%.6g` for numbers at or above 1e6: six significant digits, trailing
/// zeros dropped, a signed two-digit exponent (`1.5e+07`).
fn general6(value: f64) -> String {
    let text = format!("{value:.5e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!("{mantissa}e{exponent:+03}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn default_counts_for_a_million_rows() {
        let counts = FaultCounts::new(1_000_000, 1.0);
        assert_eq!(counts.single, [20_000, 10_000, 5_000, 5_000, 3_000, 2_000, 2_000, 500]);
        assert_eq!((counts.exact, counts.conflicting), (10_000, 5_000));
        assert_eq!(counts.rows_needed(), 47_500 + 2 * 15_000);
        assert_eq!(FaultCounts::new(1_000_000, 0.0).rows_needed(), 0);
        assert_eq!(FaultCounts::new(10, f64::MAX).rows_needed(), u64::MAX);
    }

    #[test]
    fn general_format_matches_printf() {
        assert_eq!(general6(1.5e7), "1.5e+07");
        assert_eq!(general6(2_345_678_901.0), "2.34568e+09");
        assert_eq!(general6(1_000_000.0), "1e+06");
        assert_eq!(general6(9_999_999.9), "1e+07");
    }

    #[test]
    fn rows_are_disjoint_and_sources_come_first() {
        let counts = FaultCounts::new(20_000, 3.0);
        let plan = plan(20_000, &counts, &mut Xoshiro256PlusPlus::seed_from_u64(9));
        assert_eq!(plan.faults.len() as u64, counts.rows_needed());
        let rows: HashSet<u64> = plan.faults.iter().map(|(row, _)| *row).collect();
        assert_eq!(rows.len(), plan.faults.len());
        assert!(plan.faults.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let sources: HashSet<u64> =
            plan.faults.iter().filter(|(_, f)| *f == Fault::DuplicateSource).map(|(row, _)| *row).collect();
        for (row, fault) in &plan.faults {
            if let Fault::Duplicate { source, factor } = fault {
                assert!(source < row && sources.contains(source));
                if let Some(factor) = factor {
                    assert!((0.6..0.9).contains(factor) || (1.1..1.5).contains(factor));
                }
            }
        }
        assert_eq!(sources.len() as u64, counts.duplicates());
        assert_eq!(plan.injected.iter().sum::<u64>() + counts.duplicates(), counts.rows_needed());
        assert_eq!(plan.injected[Label::DuplicateExact as usize], counts.exact);
    }

    #[test]
    fn faulty_cells_say_what_they_are_meant_to() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for k in 0..60 {
            for (kind, _) in RATES {
                if let (label, Fault::Replace { column, text }) = draw(kind, k, &mut rng) {
                    let text = text.as_ref();
                    let value = text.parse::<f64>();
                    match label {
                        Label::NonPositiveZero | Label::NonPositiveNegative => {
                            assert!(value.unwrap() <= 0.0)
                        }
                        Label::Absurd => assert!(value.unwrap() > 1e6, "{text}"),
                        Label::TemperatureLow => assert!(value.unwrap() < -20.0),
                        Label::TemperatureHigh => assert!(value.unwrap() > 55.0),
                        Label::BoundaryValid => assert!(value.is_ok()),
                        Label::UnparsableConsumption | Label::UnparsableTemperature => {
                            assert!(value.is_err())
                        }
                        _ => {}
                    }
                    assert_eq!(label.reason().is_some_and(|r| r.is_missing_field()), text.is_empty(), "{column:?}");
                }
            }
        }
    }
}
