//! Level shifts: lasting changes of a building's consumption level (a retrofit, a meter swap,
//! a change of use).
//!
//! They are detected with Bayesian online change-point detection (Adams & MacKay 2007) from
//! the `augurs` crate (`NormalGammaDetector`, hazard 1/250 days) on the day-by-day series of
//! residuals against the baseline model (consumption itself when no temperature model
//! qualifies), after robust standardization (median, 1.4826·MAD) and clipping to ±4 so single
//! spikes weigh little. The candidate change points are then screened: segments shorter than
//! [`LevelShiftOptions::min_segment_days`] are merged into their closer neighbour, and a
//! change is kept only when the medians either side differ by at least
//! [`LevelShiftOptions::min_relative_change`] of mean consumption and by at least
//! [`LevelShiftOptions::min_noise_multiple`] times the day-to-day noise (1.4826·MAD of first
//! differences / √2). The weakest change is removed first, and the screen repeats until every
//! remaining change passes.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::baseline::BaselineModel;
use super::{DailyObservation, median_in_place};

/// The name of the detection method, as reports show it.
pub const LEVEL_SHIFT_METHOD: &str = "bocpd";

/// Scales a median absolute deviation to a consistent estimate of the standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Standardized values are clipped to ±this, so single spikes weigh little.
const CLIP: f64 = 4.0;

/// A lasting change of consumption level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LevelShift {
    /// The first day at the new level.
    pub date: NaiveDate,
    /// Median of the analysed series (residual or consumption) before the shift, kWh/day.
    pub before: f64,
    /// Median after the shift, kWh/day.
    pub after: f64,
    /// `after - before`, kWh/day.
    pub change: f64,
    /// The change as a fraction of mean daily consumption.
    pub relative_change: f64,
}

/// Settings of the level-shift screen (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelShiftOptions {
    /// Expected days between change points (BOCPD hazard 1/λ). Default 250.
    pub hazard_lambda: f64,
    /// Shortest segment kept, days. Default 14.
    pub min_segment_days: usize,
    /// Smallest change kept, as a fraction of mean daily consumption. Default 0.10.
    pub min_relative_change: f64,
    /// Smallest change kept, in multiples of the day-to-day noise. Default 1.5.
    pub min_noise_multiple: f64,
}

impl Default for LevelShiftOptions {
    fn default() -> Self {
        Self { hazard_lambda: 250.0, min_segment_days: 14, min_relative_change: 0.10, min_noise_multiple: 1.5 }
    }
}

/// Median of a copy of `values` (0 when empty).
fn median(values: &[f64]) -> f64 {
    median_in_place(&mut values.to_vec()).unwrap_or(0.0)
}

/// Lasting level changes in a building's daily series (see the module docs): the series is
/// the residual against `model` when given, else consumption. Never panics; returns nothing
/// when the series is too short, constant or not finite.
pub fn detect_level_shifts(
    observations: &[DailyObservation],
    model: Option<&BaselineModel>,
    options: &LevelShiftOptions,
) -> Vec<LevelShift> {
    let mut sorted = observations.to_vec();
    sorted.sort_by_key(|o| o.date);
    let min_segment = options.min_segment_days.max(2);
    let n = sorted.len();
    if n < 2 * min_segment || sorted.iter().any(|o| !o.consumption.is_finite() || !o.temperature.is_finite()) {
        return Vec::new();
    }
    let series: Vec<f64> = match model {
        Some(m) => sorted.iter().map(|o| o.consumption - m.predict(o.temperature)).collect(),
        None => sorted.iter().map(|o| o.consumption).collect(),
    };
    let mean_consumption = sorted.iter().map(|o| o.consumption).sum::<f64>() / n as f64;
    let center = median(&series);
    let mad = median(&series.iter().map(|x| (x - center).abs()).collect::<Vec<_>>()) * MAD_TO_SIGMA;
    let diffs: Vec<f64> = series.windows(2).map(|w| w[1] - w[0]).collect();
    let diff_center = median(&diffs);
    let noise = median(&diffs.iter().map(|d| (d - diff_center).abs()).collect::<Vec<_>>()) * MAD_TO_SIGMA
        / std::f64::consts::SQRT_2;
    let scale = if mad > 0.0 { mad } else { noise };
    if !(scale > 0.0 && scale.is_finite()) {
        return Vec::new();
    }
    let standardized: Vec<f64> = series.iter().map(|x| ((x - center) / scale).clamp(-CLIP, CLIP)).collect();
    let candidates = std::panic::catch_unwind(|| {
        use augurs::changepoint::Detector;
        let prior = augurs::changepoint::dist::NormalGamma::new_unchecked(0.0, 1.0, 1.0, 1.0);
        let mut detector = augurs::changepoint::NormalGammaDetector::normal_gamma(options.hazard_lambda, prior);
        detector.detect_changepoints(&standardized)
    })
    .unwrap_or_default();
    // The detector reports the index before each change (and 0): a segment starts after it.
    let mut bounds: Vec<usize> = candidates.iter().map(|&c| c + 1).filter(|&b| b > 0 && b < n).collect();
    bounds.sort_unstable();
    bounds.dedup();

    let segment_median = |bounds: &[usize], i: usize| {
        let start = if i == 0 { 0 } else { bounds[i - 1] };
        let end = bounds.get(i).copied().unwrap_or(n);
        median(&series[start..end])
    };
    // Merge segments shorter than the minimum into their closer neighbour.
    loop {
        let lengths: Vec<usize> = (0..=bounds.len())
            .map(|i| bounds.get(i).copied().unwrap_or(n) - if i == 0 { 0 } else { bounds[i - 1] })
            .collect();
        let Some((short, _)) = lengths.iter().enumerate().filter(|(_, l)| **l < min_segment).min_by_key(|(_, l)| **l)
        else {
            break;
        };
        if bounds.is_empty() {
            break;
        }
        let remove = if short == 0 {
            0
        } else if short == bounds.len() {
            short - 1
        } else {
            let own = segment_median(&bounds, short);
            let left = (segment_median(&bounds, short - 1) - own).abs();
            let right = (segment_median(&bounds, short + 1) - own).abs();
            if left <= right { short - 1 } else { short }
        };
        bounds.remove(remove);
    }
    // Drop the weakest change until every remaining one is large enough.
    let min_change = (options.min_relative_change * mean_consumption.abs()).max(options.min_noise_multiple * noise);
    loop {
        let weakest = (0..bounds.len())
            .map(|i| (i, (segment_median(&bounds, i + 1) - segment_median(&bounds, i)).abs()))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match weakest {
            Some((i, change)) if change < min_change => {
                bounds.remove(i);
            }
            _ => break,
        }
    }
    (0..bounds.len())
        .map(|i| {
            let before = segment_median(&bounds, i);
            let after = segment_median(&bounds, i + 1);
            let change = after - before;
            LevelShift {
                date: sorted[bounds[i]].date,
                before,
                after,
                change,
                relative_change: if mean_consumption != 0.0 { change / mean_consumption } else { 0.0 },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::BaselineConfig;
    use crate::analysis::test_support::{day, synthetic};
    use chrono::Days;

    fn heating_cooling(t: f64) -> f64 {
        100.0 + 5.0 * (15.0 - t).max(0.0) + 8.0 * (t - 22.0).max(0.0)
    }

    #[test]
    fn no_level_shift_in_stationary_data() {
        for seed in 0..5 {
            let data = synthetic(730, 5.0, 100 + seed, heating_cooling);
            let model = BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap();
            let shifts = detect_level_shifts(&data, Some(&model), &LevelShiftOptions::default());
            assert!(shifts.is_empty(), "seed {seed}: {shifts:?}");
        }
        assert!(detect_level_shifts(&[], None, &LevelShiftOptions::default()).is_empty());
    }

    #[test]
    fn level_shift_without_a_model() {
        let data: Vec<_> = (0..200u64)
            .map(|i| DailyObservation {
                date: day(2024, 1, 1) + Days::new(i),
                consumption: if i < 120 { 50.0 } else { 35.0 } + (i % 3) as f64,
                temperature: 10.0,
            })
            .collect();
        let shifts = detect_level_shifts(&data, None, &LevelShiftOptions::default());
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert_eq!(shifts[0].date, day(2024, 1, 1) + Days::new(120));
        assert!((shifts[0].change + 15.0).abs() < 1.5, "{shifts:?}");
    }

    #[test]
    fn a_shift_against_the_model_is_found_where_it_starts() {
        let mut data = synthetic(600, 3.0, 5, heating_cooling);
        for o in data.iter_mut().skip(400) {
            o.consumption += 40.0;
        }
        let model = BaselineModel::fit(&data[..400], None, &BaselineConfig::default()).unwrap();
        let shifts = detect_level_shifts(&data, Some(&model), &LevelShiftOptions::default());
        assert_eq!(shifts.len(), 1, "{shifts:?}");
        assert!((shifts[0].date - day(2023, 1, 1)).num_days().abs_diff(400) <= 3, "{shifts:?}");
        assert!((shifts[0].change - 40.0).abs() < 8.0, "{shifts:?}");
    }

    #[test]
    fn non_finite_or_constant_series_have_no_shift() {
        let flat: Vec<_> = (0..100u64)
            .map(|i| DailyObservation { date: day(2024, 1, 1) + Days::new(i), consumption: 5.0, temperature: 10.0 })
            .collect();
        assert!(detect_level_shifts(&flat, None, &LevelShiftOptions::default()).is_empty());
        let mut broken = flat.clone();
        broken[50].consumption = f64::NAN;
        assert!(detect_level_shifts(&broken, None, &LevelShiftOptions::default()).is_empty());
    }
}
