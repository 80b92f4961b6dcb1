//! Unusual days: robust outlier detection on daily consumption.
//!
//! Both detectors score deviations with the modified z-score of Iglewicz & Hoaglin,
//! `z = 0.6745 · (d - median(d)) / MAD` with `MAD = median(|d - median(d)|)`, and flag days
//! with `|z| > threshold` (default 3.5, their recommendation).
//!
//! - Residual detector: `d` is actual minus the baseline model's prediction.
//! - Rolling-median detector, for buildings without a temperature model: `d` is actual minus
//!   the median consumption of a centered window of calendar days around the day (default 15
//!   days: the day and 7 either side; days missing from the data are simply absent from the
//!   window, and an even width `w` spans `w / 2` days either side).
//!
//! When MAD is 0 (more than half the deviations equal their median) the score falls back to
//! the mean absolute deviation, `z = (d - median) / (1.253314 · MeanAD)` (IBM SPSS's variant
//! of the same score), so a lone spike in otherwise identical data is still flagged. When
//! MeanAD is 0 too, every deviation equals the median and all scores are 0. Nothing divides
//! by zero.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::baseline::{BaselineModel, ModelType};
use super::{DailyObservation, median_in_place};

/// Default |z| above which a day is anomalous (Iglewicz & Hoaglin).
pub const DEFAULT_Z_THRESHOLD: f64 = 3.5;

/// Default width, in calendar days, of the rolling-median window.
pub const DEFAULT_WINDOW_DAYS: u32 = 15;

/// `Φ⁻¹(0.75)`: makes MAD a consistent estimator of the standard deviation.
const MAD_SCALE: f64 = 0.6745;

/// `sqrt(π/2)`: makes the mean absolute deviation consistent for the standard deviation.
const MEAN_AD_SCALE: f64 = 1.253_314;

/// One anomalous day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Anomaly {
    /// The day.
    pub date: NaiveDate,
    /// What the detector expected, kWh: the model prediction or the rolling median.
    pub expected: f64,
    /// Metered consumption, kWh.
    pub actual: f64,
    /// `actual - expected`, kWh.
    pub deviation: f64,
    /// Modified z-score of the deviation.
    pub z_score: f64,
}

/// Which detector produced an [`AnomalyReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnomalyMethod {
    /// Residuals against a baseline model.
    Residual,
    /// Deviations from a rolling median of consumption.
    RollingMedian,
}

/// Settings of [`detect_anomalies`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalyOptions {
    /// |z| above which a day is flagged.
    pub threshold: f64,
    /// Rolling-median window width in calendar days.
    pub window_days: u32,
}

impl Default for AnomalyOptions {
    fn default() -> Self {
        Self { threshold: DEFAULT_Z_THRESHOLD, window_days: DEFAULT_WINDOW_DAYS }
    }
}

/// The anomalous days found and the detector that found them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyReport {
    /// The detector used.
    pub method: AnomalyMethod,
    /// Flagged days, in date order.
    pub anomalies: Vec<Anomaly>,
}

/// Detects anomalies with the residual detector when `model` is a temperature model (not
/// intercept-only), otherwise with the rolling-median detector, which follows seasonal
/// changes a constant model cannot.
pub fn detect_anomalies(
    model: Option<&BaselineModel>,
    observations: &[DailyObservation],
    options: &AnomalyOptions,
) -> AnomalyReport {
    match model {
        Some(model) if model.model_type != ModelType::InterceptOnly => AnomalyReport {
            method: AnomalyMethod::Residual,
            anomalies: residual_anomalies(model, observations, options.threshold),
        },
        _ => AnomalyReport {
            method: AnomalyMethod::RollingMedian,
            anomalies: rolling_median_anomalies(observations, options.window_days, options.threshold),
        },
    }
}

/// Days whose residual against `model` has a modified z-score beyond `threshold`, in date
/// order.
pub fn residual_anomalies(model: &BaselineModel, observations: &[DailyObservation], threshold: f64) -> Vec<Anomaly> {
    let expected: Vec<f64> = observations.iter().map(|o| model.predict(o.temperature)).collect();
    flag(observations, &expected, threshold)
}

/// Days whose deviation from the centered rolling median of consumption (`window_days` wide)
/// has a modified z-score beyond `threshold`, in date order.
pub fn rolling_median_anomalies(observations: &[DailyObservation], window_days: u32, threshold: f64) -> Vec<Anomaly> {
    let mut sorted = observations.to_vec();
    sorted.sort_by_key(|o| o.date);
    let half = i64::from(window_days / 2);
    let mut window = Vec::new();
    let mut first = 0;
    let mut last = 0;
    let expected: Vec<f64> = sorted
        .iter()
        .map(|o| {
            while (o.date - sorted[first].date).num_days() > half {
                first += 1;
            }
            while last < sorted.len() && (sorted[last].date - o.date).num_days() <= half {
                last += 1;
            }
            window.clear();
            window.extend(sorted[first..last].iter().map(|w| w.consumption));
            median_in_place(&mut window).unwrap_or(o.consumption)
        })
        .collect();
    flag(&sorted, &expected, threshold)
}

/// Modified z-scores of `values` (see the module docs for the MAD = 0 fallback); all 0 for
/// fewer than two values.
pub fn modified_z_scores(values: &[f64]) -> Vec<f64> {
    let mut scratch = values.to_vec();
    let Some(median) = median_in_place(&mut scratch) else {
        return Vec::new();
    };
    for (s, v) in scratch.iter_mut().zip(values) {
        *s = (v - median).abs();
    }
    let mean_ad = scratch.iter().sum::<f64>() / values.len() as f64;
    let mad = median_in_place(&mut scratch).unwrap_or(0.0);
    let scale = if mad > 0.0 { mad / MAD_SCALE } else { MEAN_AD_SCALE * mean_ad };
    values.iter().map(|v| if scale > 0.0 { (v - median) / scale } else { 0.0 }).collect()
}

/// Scores `actual - expected` and keeps the days beyond `threshold`, in date order.
fn flag(observations: &[DailyObservation], expected: &[f64], threshold: f64) -> Vec<Anomaly> {
    let deviations: Vec<f64> = observations.iter().zip(expected).map(|(o, e)| o.consumption - e).collect();
    let mut anomalies: Vec<Anomaly> = observations
        .iter()
        .zip(expected)
        .zip(deviations.iter().zip(modified_z_scores(&deviations)))
        .filter(|(_, (_, z))| z.abs() > threshold)
        .map(|((o, &expected), (&deviation, z_score))| Anomaly {
            date: o.date,
            expected,
            actual: o.consumption,
            deviation,
            z_score,
        })
        .collect();
    anomalies.sort_by_key(|a| a.date);
    anomalies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::baseline::BaselineConfig;
    use crate::analysis::test_support::{Rng, day, synthetic};
    use chrono::Days;

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "{actual} differs from {expected}");
    }

    #[test]
    fn modified_z_matches_hand_computation() {
        // median 3, |d - 3| = [2, 1, 0, 1, 7] → MAD 1.
        let z = modified_z_scores(&[1.0, 2.0, 3.0, 4.0, 10.0]);
        close(z[0], -2.0 * 0.6745);
        close(z[2], 0.0);
        close(z[4], 7.0 * 0.6745);
    }

    #[test]
    fn zero_mad_falls_back_to_mean_absolute_deviation() {
        // median 5, |d - 5| = [0, 0, 0, 0, 10] → MAD 0, MeanAD 2.
        let z = modified_z_scores(&[5.0, 5.0, 5.0, 5.0, 15.0]);
        close(z[4], 10.0 / (1.253_314 * 2.0));
        close(z[0], 0.0);
        assert_eq!(modified_z_scores(&[4.0; 6]), vec![0.0; 6]);
        assert!(modified_z_scores(&[]).is_empty());
    }

    #[test]
    fn residual_detector_finds_injected_spikes() {
        // Bounded (uniform) noise, so no day is a natural outlier.
        let mut rng = Rng::new(31);
        let mut data = synthetic(365, 0.0, 31, |t| 100.0 + 5.0 * (14.0 - t).max(0.0));
        for o in &mut data {
            o.consumption += 4.0 * (rng.uniform() - 0.5);
        }
        let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
        data[100].consumption += 60.0;
        data[250].consumption -= 50.0;
        let anomalies = residual_anomalies(&model, &data, DEFAULT_Z_THRESHOLD);
        let dates: Vec<_> = anomalies.iter().map(|a| a.date).collect();
        assert_eq!(dates, vec![data[100].date, data[250].date]);
        let spike = anomalies[0];
        close(spike.expected, model.predict(data[100].temperature));
        close(spike.deviation, spike.actual - spike.expected);
        assert!(spike.z_score > 3.5 && anomalies[1].z_score < -3.5);
        let report = detect_anomalies(Some(&model), &data, &AnomalyOptions::default());
        assert_eq!(report.method, AnomalyMethod::Residual);
        assert_eq!(report.anomalies, anomalies);
    }

    #[test]
    fn rolling_median_detector_finds_spikes_in_seasonal_load() {
        let mut rng = Rng::new(32);
        let start = day(2023, 1, 1);
        let trend = |i: u64| 100.0 + 40.0 * i as f64 / 365.0;
        let mut data: Vec<_> = (0..365u64)
            .map(|i| DailyObservation {
                date: start + Days::new(i),
                consumption: trend(i) + 4.0 * (rng.uniform() - 0.5),
                temperature: 10.0,
            })
            .collect();
        data[50].consumption += 30.0;
        data[51].consumption = 0.0;
        let anomalies = rolling_median_anomalies(&data, DEFAULT_WINDOW_DAYS, DEFAULT_Z_THRESHOLD);
        let dates: Vec<_> = anomalies.iter().map(|a| a.date).collect();
        assert_eq!(dates, vec![data[50].date, data[51].date]);
        assert!((anomalies[0].expected - trend(50)).abs() < 2.0);
        let report = detect_anomalies(None, &data, &AnomalyOptions::default());
        assert_eq!(report.method, AnomalyMethod::RollingMedian);
        assert_eq!(report.anomalies, anomalies);
    }

    #[test]
    fn rolling_window_is_centered_on_calendar_days() {
        let start = day(2024, 1, 1);
        let obs = |offset: u64, consumption| DailyObservation {
            date: start + Days::new(offset),
            consumption,
            temperature: 10.0,
        };
        // With a 3-day window the first day sees only itself and day 1.
        let data = [obs(0, 10.0), obs(1, 20.0), obs(2, 30.0), obs(10, 40.0)];
        let anomalies = rolling_median_anomalies(&data, 3, -1.0);
        let expected: Vec<_> = anomalies.iter().map(|a| a.expected).collect();
        assert_eq!(expected, vec![15.0, 20.0, 25.0, 40.0]);
    }

    #[test]
    fn flat_consumption_has_no_anomalies() {
        let data: Vec<_> = synthetic(60, 0.0, 33, |_| 42.0);
        assert!(rolling_median_anomalies(&data, 15, 3.5).is_empty());
        assert!(rolling_median_anomalies(&[], 15, 3.5).is_empty());
    }
}
