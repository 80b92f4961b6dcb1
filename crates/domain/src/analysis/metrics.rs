//! Goodness-of-fit metrics of a model over observed consumption, the ASHRAE Guideline 14
//! calibration verdict, and residual autocorrelation.
//!
//! Definitions follow ASHRAE Guideline 14-2014 (Annex B / clause 4.3), with `n` observations,
//! `p` model parameters and mean observed consumption `ȳ`:
//!
//! - `RMSE = sqrt(Σ(y - ŷ)² / (n - p))` (in kWh/day)
//! - `CV(RMSE) = RMSE / ȳ`
//! - `NMBE = Σ(y - ŷ) / ((n - p) ȳ)`
//! - `R² = 1 - SS_res / SS_tot`, `adjusted R² = 1 - (SS_res / (n - p)) / (SS_tot / (n - 1))`
//!   (CalTRACK 2 §3.4.3.3)
//!
//! CV(RMSE) and NMBE are fractions (0.25 means 25 %). With the `n - p` denominator they equal
//! eemeter's `cvrmse_adj` and Guideline 14's definitions.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// How well predictions match observations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitMetrics {
    /// Observations compared.
    pub n: usize,
    /// Model parameters `p` (intercept included) used in the degrees of freedom.
    pub parameters: usize,
    /// Coefficient of determination.
    pub r2: f64,
    /// R² adjusted for the number of parameters.
    pub adj_r2: f64,
    /// Root mean squared error with `n - p` degrees of freedom, in consumption units.
    pub rmse: f64,
    /// RMSE over mean consumption (fraction); `None` when mean consumption is not positive.
    pub cv_rmse: Option<f64>,
    /// Normalized mean bias error (fraction, positive when the model under-predicts); `None`
    /// when mean consumption is not positive.
    pub nmbe: Option<f64>,
}

/// Computes [`FitMetrics`] of `predicted` against `actual` for a model with `parameters`
/// parameters.
///
/// `None` when the slices differ in length, when `actual.len() <= parameters` (no degrees of
/// freedom left), or when `actual` has no variance (R² undefined).
pub fn fit_metrics(actual: &[f64], predicted: &[f64], parameters: usize) -> Option<FitMetrics> {
    let n = actual.len();
    if predicted.len() != n || n <= parameters || n < 2 {
        return None;
    }
    let nf = n as f64;
    let mean = actual.iter().sum::<f64>() / nf;
    let ss_tot: f64 = actual.iter().map(|y| (y - mean) * (y - mean)).sum();
    if ss_tot.is_nan() || ss_tot <= 0.0 {
        return None;
    }
    let (ss_res, bias) = actual.iter().zip(predicted).fold((0.0, 0.0), |(ss, bias), (y, yhat)| {
        let r = y - yhat;
        (ss + r * r, bias + r)
    });
    let df = (n - parameters) as f64;
    let rmse = (ss_res / df).sqrt();
    let relative = |value: f64| (mean > 0.0).then(|| value / mean);
    Some(FitMetrics {
        n,
        parameters,
        r2: 1.0 - ss_res / ss_tot,
        adj_r2: 1.0 - (ss_res / df) / (ss_tot / (nf - 1.0)),
        rmse,
        cv_rmse: relative(rmse),
        nmbe: relative(bias / df),
    })
}

/// Calibration limits for a daily model, after ASHRAE Guideline 14-2014.
///
/// Guideline 14 sets CV(RMSE) ≤ 15 % and |NMBE| ≤ 5 % for monthly data and CV(RMSE) ≤ 30 %
/// and |NMBE| ≤ 10 % for hourly data, and names no daily limits. The defaults here are the
/// ones commonly used for daily data: CV(RMSE) ≤ 25 % and |NMBE| ≤ 10 %.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Guideline14Thresholds {
    /// Largest acceptable CV(RMSE), as a fraction.
    pub max_cv_rmse: f64,
    /// Largest acceptable |NMBE|, as a fraction.
    pub max_abs_nmbe: f64,
}

impl Default for Guideline14Thresholds {
    fn default() -> Self {
        Self { max_cv_rmse: 0.25, max_abs_nmbe: 0.10 }
    }
}

impl Guideline14Thresholds {
    /// Judges a model's CV(RMSE) and NMBE against these limits; an undefined metric fails.
    pub fn assess(&self, cv_rmse: Option<f64>, nmbe: Option<f64>) -> Guideline14Verdict {
        let cv_rmse_ok = cv_rmse.is_some_and(|v| v <= self.max_cv_rmse);
        let nmbe_ok = nmbe.is_some_and(|v| v.abs() <= self.max_abs_nmbe);
        Guideline14Verdict { thresholds: *self, cv_rmse_ok, nmbe_ok, passes: cv_rmse_ok && nmbe_ok }
    }
}

/// Whether a model meets the ASHRAE Guideline 14 calibration limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Guideline14Verdict {
    /// The limits applied.
    pub thresholds: Guideline14Thresholds,
    /// CV(RMSE) is defined and within its limit.
    pub cv_rmse_ok: bool,
    /// NMBE is defined and within its limit.
    pub nmbe_ok: bool,
    /// Both limits are met.
    pub passes: bool,
}

/// Lag-1 autocorrelation of a daily series sorted by date, over pairs of consecutive
/// calendar days only (a missing day breaks the chain): the Pearson correlation of
/// `(x_d, x_{d+1})`, as pandas' `Series.autocorr` computes it on a daily index with gaps.
///
/// Returns 0 when fewer than three pairs exist or either side of the pairs is constant.
pub fn daily_lag1_autocorrelation(series: &[(NaiveDate, f64)]) -> f64 {
    let pairs = || series.windows(2).filter(|w| (w[1].0 - w[0].0).num_days() == 1).map(|w| (w[0].1, w[1].1));
    let count = pairs().count();
    if count < 3 {
        return 0.0;
    }
    let nf = count as f64;
    let (sum_a, sum_b) = pairs().fold((0.0, 0.0), |(sa, sb), (a, b)| (sa + a, sb + b));
    let (mean_a, mean_b) = (sum_a / nf, sum_b / nf);
    let (cov, var_a, var_b) = pairs().fold((0.0, 0.0, 0.0), |(c, va, vb), (a, b)| {
        let (da, db) = (a - mean_a, b - mean_b);
        (c + da * db, va + da * da, vb + db * db)
    });
    let denominator = (var_a * var_b).sqrt();
    if denominator > 0.0 { (cov / denominator).clamp(-1.0, 1.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::test_support::day;

    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-12, "{actual} differs from {expected}");
    }

    #[test]
    fn metrics_match_hand_computation() {
        // y = [2, 4, 6, 8], ŷ = [3, 3, 7, 7]; residuals [-1, 1, -1, 1]; ȳ = 5, SS_tot = 20,
        // SS_res = 4, p = 2 → df = 2.
        let m = fit_metrics(&[2.0, 4.0, 6.0, 8.0], &[3.0, 3.0, 7.0, 7.0], 2).unwrap();
        close(m.r2, 0.8);
        close(m.adj_r2, 1.0 - (4.0 / 2.0) / (20.0 / 3.0));
        close(m.rmse, 2f64.sqrt());
        close(m.cv_rmse.unwrap(), 2f64.sqrt() / 5.0);
        close(m.nmbe.unwrap(), 0.0);
    }

    #[test]
    fn nmbe_is_positive_when_model_under_predicts() {
        // residuals [1, 1, 2]; ȳ = 4; p = 1 → NMBE = 4 / (2 · 4) = 0.5.
        let m = fit_metrics(&[3.0, 4.0, 5.0], &[2.0, 3.0, 3.0], 1).unwrap();
        close(m.nmbe.unwrap(), 0.5);
        close(m.rmse, 3f64.sqrt());
        close(m.r2, 1.0 - 6.0 / 2.0);
    }

    #[test]
    fn metrics_need_degrees_of_freedom_and_variance() {
        assert_eq!(fit_metrics(&[1.0, 2.0], &[1.0, 2.0], 2), None);
        assert_eq!(fit_metrics(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0], 1), None);
        assert_eq!(fit_metrics(&[1.0, 2.0, 3.0], &[1.0, 2.0], 1), None);
    }

    #[test]
    fn relative_metrics_undefined_for_non_positive_mean() {
        let m = fit_metrics(&[-1.0, 0.0, 1.0], &[0.0, 0.0, 0.0], 1).unwrap();
        assert_eq!(m.cv_rmse, None);
        assert_eq!(m.nmbe, None);
    }

    #[test]
    fn guideline14_verdict() {
        let limits = Guideline14Thresholds::default();
        assert!(limits.assess(Some(0.25), Some(-0.1)).passes);
        let v = limits.assess(Some(0.26), Some(0.0));
        assert!(!v.passes && !v.cv_rmse_ok && v.nmbe_ok);
        assert!(!limits.assess(None, Some(0.0)).passes);
    }

    #[test]
    fn autocorrelation_uses_consecutive_days_only() {
        let series: Vec<_> = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (10, 0.0), (11, 1.0)]
            .iter()
            .map(|&(d, v)| (day(2024, 1, d), v))
            .collect();
        // Pairs (1,2), (2,3), (3,4), (0,1) lie on b = a + 1; the gap pair (4,0) would not.
        close(daily_lag1_autocorrelation(&series), 1.0);
        let alternating: Vec<_> = (1..=20).map(|d| (day(2024, 1, d), if d % 2 == 0 { 1.0 } else { -1.0 })).collect();
        close(daily_lag1_autocorrelation(&alternating), -1.0);
        assert_eq!(daily_lag1_autocorrelation(&series[..3]), 0.0);
    }
}
