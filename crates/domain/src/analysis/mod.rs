//! Time-series analysis of daily energy readings: degree days, the CalTRACK 2 daily baseline
//! model, avoided energy use with ASHRAE Guideline 14 uncertainty, anomaly detection and level
//! shifts.
//!
//! Units are those of the readings: consumption in kWh per day, temperature as the daily mean
//! in °C, degree days in °C·day. Everything is pure arithmetic over slices of
//! [`DailyObservation`]; nothing here panics on finite input, and non-finite input is reported
//! as [`AnalysisError::NonFinite`] rather than propagated.
//!
//! The usual flow is [`BaselineModel::fit`] over a pre-intervention period, then
//! [`avoided_energy_use`] over the reporting period, [`BaselineModel::normal_year`] for
//! weather-normalized consumption, [`detect_anomalies`] to list unusual days and
//! [`detect_level_shifts`] to find lasting changes of level.

pub mod anomaly;
pub mod baseline;
pub mod degree_days;
pub mod distribution;
pub mod level_shift;
pub mod metrics;
pub mod savings;

pub use anomaly::{
    Anomaly, AnomalyMethod, AnomalyOptions, AnomalyReport, DEFAULT_WINDOW_DAYS, DEFAULT_Z_THRESHOLD, detect_anomalies,
    modified_z_scores, residual_anomalies, rolling_median_anomalies,
};
pub use baseline::{BaselineConfig, BaselineModel, ModelType, ModelWarning, NormalYear};
pub use degree_days::{DEFAULT_COOLING_BASE_C, DEFAULT_HEATING_BASE_C, cooling_degree_days, heating_degree_days};
pub use distribution::{normal_quantile, student_t_cdf, student_t_quantile};
pub use level_shift::{LEVEL_SHIFT_METHOD, LevelShift, LevelShiftOptions, detect_level_shifts};
pub use metrics::{FitMetrics, Guideline14Thresholds, Guideline14Verdict, daily_lag1_autocorrelation, fit_metrics};
pub use savings::{DEFAULT_CONFIDENCE, DailySavings, SavingsReport, SavingsUncertainty, avoided_energy_use};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One day of a building's VALID readings: what the analysis functions consume.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DailyObservation {
    /// The calendar day.
    pub date: NaiveDate,
    /// Energy used that day, in kWh.
    pub consumption: f64,
    /// Mean outdoor temperature that day, in °C.
    pub temperature: f64,
}

/// An inclusive range of calendar days, such as a baseline or reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatePeriod {
    /// First day of the period.
    pub start: NaiveDate,
    /// Last day of the period (inclusive).
    pub end: NaiveDate,
}

impl DatePeriod {
    /// Builds a period, rejecting one that ends before it starts.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, AnalysisError> {
        if end < start {
            return Err(AnalysisError::InvertedPeriod { start, end });
        }
        Ok(Self { start, end })
    }

    /// Number of calendar days in the period, both ends included (0 for an inverted period).
    pub fn days(&self) -> u64 {
        u64::try_from((self.end - self.start).num_days() + 1).unwrap_or(0)
    }

    /// Whether `date` falls inside the period.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }
}

/// Why an analysis could not be carried out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// Fewer usable observations than the computation needs.
    #[error("too few observations: {found}, need at least {required}")]
    TooFewObservations {
        /// Observations available.
        found: usize,
        /// Observations needed.
        required: usize,
    },
    /// Every observed consumption is the same, so no model fit or metric is defined.
    #[error("consumption does not vary across the observations")]
    NoVariance,
    /// A period whose end precedes its start.
    #[error("period ends on {end}, before it starts on {start}")]
    InvertedPeriod {
        /// The given start.
        start: NaiveDate,
        /// The given end.
        end: NaiveDate,
    },
    /// An observation with a NaN or infinite consumption or temperature.
    #[error("non-finite consumption or temperature on {date}")]
    NonFinite {
        /// The offending day.
        date: NaiveDate,
    },
    /// A configuration value or argument outside its documented range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
}

/// Rejects the first observation holding a non-finite value.
fn ensure_finite(observations: &[DailyObservation]) -> Result<(), AnalysisError> {
    match observations.iter().find(|o| !o.consumption.is_finite() || !o.temperature.is_finite()) {
        Some(o) => Err(AnalysisError::NonFinite { date: o.date }),
        None => Ok(()),
    }
}

/// Median of `values`, reordering them; `None` when empty.
fn median_in_place(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        Some(upper)
    } else {
        let lower_max = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(lower_max / 2.0 + upper / 2.0)
    }
}

#[cfg(test)]
mod test_support {
    use super::DailyObservation;
    use chrono::{Days, NaiveDate};

    /// Deterministic pseudo-random numbers (SplitMix64) for synthetic test data.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Self(seed)
        }

        /// Uniform in [0, 1).
        pub fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Standard normal (Box–Muller).
        pub fn normal(&mut self) -> f64 {
            let u1 = 1.0 - self.uniform();
            let u2 = self.uniform();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    pub fn day(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("valid test date")
    }

    /// `days` consecutive days from 2023-01-01 with a seasonal temperature
    /// (mean 12 °C, amplitude 12 °C, daily noise 2 °C) and consumption `load(T) + noise`.
    pub fn synthetic(days: u64, noise: f64, seed: u64, load: impl Fn(f64) -> f64) -> Vec<DailyObservation> {
        let mut rng = Rng::new(seed);
        let start = day(2023, 1, 1);
        (0..days)
            .map(|i| {
                let season = (std::f64::consts::TAU * (i as f64 - 105.0) / 365.25).sin();
                let temperature = 12.0 + 12.0 * season + 2.0 * rng.normal();
                DailyObservation {
                    date: start + Days::new(i),
                    consumption: load(temperature) + noise * rng.normal(),
                    temperature,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::day;
    use super::*;

    #[test]
    fn period_counts_both_ends() {
        let p = DatePeriod::new(day(2024, 2, 1), day(2024, 3, 1)).unwrap();
        assert_eq!(p.days(), 30);
        assert!(p.contains(day(2024, 2, 29)));
        assert!(!p.contains(day(2024, 3, 2)));
    }

    #[test]
    fn inverted_period_is_an_error() {
        assert_eq!(
            DatePeriod::new(day(2024, 3, 1), day(2024, 2, 1)),
            Err(AnalysisError::InvertedPeriod { start: day(2024, 3, 1), end: day(2024, 2, 1) })
        );
    }

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median_in_place(&mut []), None);
    }

    fn value() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![-50.0..50.0f64, -1e6..1e6f64, proptest::num::f64::NORMAL | proptest::num::f64::ZERO,]
    }

    fn observations() -> impl proptest::strategy::Strategy<Value = Vec<DailyObservation>> {
        use proptest::prelude::*;
        proptest::collection::vec((0u64..800, value(), value()), 0..120).prop_map(|rows| {
            let start = day(2020, 1, 1);
            rows.into_iter()
                .map(|(offset, consumption, temperature)| DailyObservation {
                    date: start + chrono::Days::new(offset),
                    consumption,
                    temperature,
                })
                .collect()
        })
    }

    proptest::proptest! {
        #[test]
        fn random_finite_input_never_panics(
            baseline in observations(),
            reporting in observations(),
            step in 0.05..0.5f64,
            p in proptest::prop_oneof![0.0..1.0f64, value()],
            df in proptest::prop_oneof![0.0..50.0f64, value()],
        ) {
            let config = BaselineConfig { balance_point_step: step, ..BaselineConfig::default() };
            let fitted = BaselineModel::fit(&baseline, None, &config);
            if let Ok(model) = &fitted {
                let _ = model.predict_series(&[p, df]);
                let _ = model.normal_year(&reporting);
                let _ = avoided_energy_use(model, &reporting, DEFAULT_CONFIDENCE);
                let _ = residual_anomalies(model, &reporting, DEFAULT_Z_THRESHOLD);
            }
            let _ = detect_anomalies(fitted.as_ref().ok(), &baseline, &AnomalyOptions::default());
            let _ = rolling_median_anomalies(&reporting, 7, DEFAULT_Z_THRESHOLD);
            let _ = student_t_quantile(p, df);
            let _ = student_t_cdf(p, df);
            let _ = normal_quantile(p);
        }
    }
}
