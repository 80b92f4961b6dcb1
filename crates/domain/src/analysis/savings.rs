//! Avoided energy use over a reporting period and its uncertainty after ASHRAE Guideline 14.
//!
//! Avoided energy use on a day is the baseline model's prediction for that day's temperature
//! minus the metered consumption (CalTRACK 2 §3.6.1), so savings are positive when the
//! building used less than its baseline predicts.
//!
//! # Uncertainty
//!
//! ASHRAE Guideline 14-2014, Annex B (uncertainty of savings from a regression baseline,
//! after Reddy & Claridge 2000), gives the fractional savings uncertainty as
//!
//! ```text
//! ΔE_save / E_save = 1.26 · t · CV · sqrt( (n / n') · (1 + 2 / n') · (1 / m) ) / F
//! ```
//!
//! with `CV` the baseline CV(RMSE) (`n - p` degrees of freedom), `n` the baseline
//! observations, `m` the reporting observations, `F = E_save / E_baseline` the savings
//! fraction over the reporting period, `n' = n (1 - ρ) / (1 + ρ)` the effective number of
//! baseline observations given the lag-1 autocorrelation `ρ` of the baseline residuals, and
//! `t` the two-sided Student t value at the chosen confidence for `n' - p` degrees of freedom.
//! Since `F · E_save⁻¹ = E_baseline⁻¹`, the absolute half-width is
//! `ΔE_save = 1.26 · t · CV · sqrt((n/n')(1 + 2/n')/m) · E_baseline`.
//!
//! Choices made here: a negative `ρ` is taken as 0 (it would make `n'` exceed `n`, claiming
//! more information than was observed); no uncertainty is given when CV(RMSE) is undefined or
//! when `n' - p < 1`. eemeter's CalTRACK implementation replaces the 1.26 factor by a quadratic
//! in the reporting length (Sun & Baltazar 2013) and takes `t` at `n - p` degrees of freedom,
//! so its bands differ slightly from these.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::baseline::BaselineModel;
use super::distribution::student_t_quantile;
use super::{AnalysisError, DailyObservation, ensure_finite};

/// Default confidence level of the savings uncertainty: 90 %, as Guideline 14 requires.
pub const DEFAULT_CONFIDENCE: f64 = 0.90;

/// Guideline 14's empirical coefficient in the savings-uncertainty formula.
const GUIDELINE14_COEFFICIENT: f64 = 1.26;

/// One reporting day's baseline, metered consumption and savings, kWh.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailySavings {
    /// The day.
    pub date: NaiveDate,
    /// Consumption the baseline model predicts for the day's temperature.
    pub baseline: f64,
    /// Metered consumption.
    pub actual: f64,
    /// `baseline - actual`: positive when energy was saved.
    pub savings: f64,
}

/// Uncertainty of the total savings at a confidence level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavingsUncertainty {
    /// Two-sided confidence level, e.g. 0.90.
    pub confidence: f64,
    /// Lag-1 residual autocorrelation used (the model's, floored at 0).
    pub autocorrelation: f64,
    /// Effective number of baseline observations `n'`.
    pub effective_n: f64,
    /// Degrees of freedom `n' - p` of the t value.
    pub degrees_of_freedom: f64,
    /// Student t value.
    pub t_statistic: f64,
    /// Half-width of the confidence interval of the total savings, kWh.
    pub absolute: f64,
    /// Fractional savings uncertainty `absolute / |total savings|`; `None` when there are no
    /// savings.
    pub fractional: Option<f64>,
}

/// Avoided energy use over a reporting period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavingsReport {
    /// Per-day figures, in date order.
    pub days: Vec<DailySavings>,
    /// Sum of predicted baseline consumption, kWh.
    pub total_baseline: f64,
    /// Sum of metered consumption, kWh.
    pub total_actual: f64,
    /// `total_baseline - total_actual`, kWh.
    pub total_savings: f64,
    /// Savings as a share of the baseline; `None` when the baseline total is 0.
    pub fractional_savings: Option<f64>,
    /// Guideline 14 uncertainty; `None` when it is undefined (see the module docs).
    pub uncertainty: Option<SavingsUncertainty>,
}

/// Computes avoided energy use of `reporting` against `model`, with its Guideline 14
/// uncertainty at `confidence` (two-sided, in (0, 1); usually [`DEFAULT_CONFIDENCE`]).
///
/// Errors when `reporting` is empty, holds non-finite values, or `confidence` is out of range.
pub fn avoided_energy_use(
    model: &BaselineModel,
    reporting: &[DailyObservation],
    confidence: f64,
) -> Result<SavingsReport, AnalysisError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(AnalysisError::InvalidParameter("confidence must be in (0, 1)"));
    }
    ensure_finite(reporting)?;
    if reporting.is_empty() {
        return Err(AnalysisError::TooFewObservations { found: 0, required: 1 });
    }
    let mut days: Vec<DailySavings> = reporting
        .iter()
        .map(|o| {
            let baseline = model.predict(o.temperature);
            DailySavings { date: o.date, baseline, actual: o.consumption, savings: baseline - o.consumption }
        })
        .collect();
    days.sort_by_key(|d| d.date);
    let total_baseline: f64 = days.iter().map(|d| d.baseline).sum();
    let total_actual: f64 = days.iter().map(|d| d.actual).sum();
    let total_savings = total_baseline - total_actual;
    let fractional_savings = (total_baseline != 0.0).then(|| total_savings / total_baseline);
    let uncertainty = guideline14_uncertainty(model, days.len(), total_baseline, total_savings, confidence);
    Ok(SavingsReport { days, total_baseline, total_actual, total_savings, fractional_savings, uncertainty })
}

/// Guideline 14 eq. B-14 for `m` reporting days; see the module docs.
fn guideline14_uncertainty(
    model: &BaselineModel,
    m: usize,
    total_baseline: f64,
    total_savings: f64,
    confidence: f64,
) -> Option<SavingsUncertainty> {
    let cv = model.cv_rmse?;
    let n = model.n as f64;
    let rho = model.residual_autocorrelation.clamp(0.0, 1.0);
    let effective_n = n * (1.0 - rho) / (1.0 + rho);
    let degrees_of_freedom = effective_n - model.model_type.parameters() as f64;
    if degrees_of_freedom.is_nan() || degrees_of_freedom < 1.0 {
        return None;
    }
    let t_statistic = student_t_quantile(0.5 + confidence / 2.0, degrees_of_freedom)?;
    let spread = ((n / effective_n) * (1.0 + 2.0 / effective_n) / m as f64).sqrt();
    let absolute = GUIDELINE14_COEFFICIENT * t_statistic * cv * spread * total_baseline.abs();
    Some(SavingsUncertainty {
        confidence,
        autocorrelation: rho,
        effective_n,
        degrees_of_freedom,
        t_statistic,
        absolute,
        fractional: (total_savings != 0.0).then(|| absolute / total_savings.abs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::baseline::{BaselineConfig, ModelType};
    use crate::analysis::test_support::{day, synthetic};
    use chrono::Days;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!((actual - expected).abs() <= tolerance, "{actual} not within {tolerance} of {expected}");
    }

    fn fitted(noise: f64) -> BaselineModel {
        let data = synthetic(365, noise, 21, |t| 100.0 + 5.0 * (14.0 - t).max(0.0));
        BaselineModel::fit(&data, None, &BaselineConfig::default()).unwrap()
    }

    #[test]
    fn per_day_and_total_savings() {
        let model = fitted(2.0);
        let start = day(2024, 1, 1);
        let reporting: Vec<_> = [(10.0, 90.0), (20.0, 95.0)]
            .iter()
            .enumerate()
            .map(|(i, &(temperature, consumption))| DailyObservation {
                date: start + Days::new(i as u64),
                consumption,
                temperature,
            })
            .collect();
        let report = avoided_energy_use(&model, &reporting, DEFAULT_CONFIDENCE).unwrap();
        let expected0 = model.predict(10.0) - 90.0;
        close(report.days[0].savings, expected0, 1e-12);
        close(report.days[1].baseline, model.predict(20.0), 1e-12);
        close(report.total_savings, model.predict(10.0) + model.predict(20.0) - 185.0, 1e-9);
        close(report.fractional_savings.unwrap(), report.total_savings / report.total_baseline, 1e-15);
    }

    #[test]
    fn uncertainty_follows_guideline14_formula() {
        let model = fitted(3.0);
        let reporting: Vec<_> = synthetic(180, 3.0, 22, |t| 90.0 + 4.5 * (14.0 - t).max(0.0));
        let report = avoided_energy_use(&model, &reporting, 0.90).unwrap();
        let u = report.uncertainty.unwrap();
        let n = model.n as f64;
        let rho = model.residual_autocorrelation.max(0.0);
        let n_eff = n * (1.0 - rho) / (1.0 + rho);
        close(u.effective_n, n_eff, 1e-9);
        close(u.degrees_of_freedom, n_eff - 2.0, 1e-9);
        close(u.t_statistic, student_t_quantile(0.95, n_eff - 2.0).unwrap(), 1e-12);
        let expected =
            1.26 * u.t_statistic * model.cv_rmse.unwrap() * ((n / n_eff) * (1.0 + 2.0 / n_eff) / 180.0).sqrt()
                / report.fractional_savings.unwrap();
        close(u.fractional.unwrap(), expected, 1e-9);
        close(u.absolute, expected * report.total_savings, 1e-6);
        assert!(report.total_savings > 0.0);
    }

    #[test]
    fn hand_computed_uncertainty() {
        // n = 100, ρ = 0.2 → n' = 100 · 0.8 / 1.2 = 66.67; p = 1 → df = 65.67;
        // CV = 0.1, m = 25, E_baseline = 25 · 50 = 1250.
        let mut model = fitted(2.0);
        model.model_type = ModelType::InterceptOnly;
        model.heating_balance_point = None;
        model.heating_slope = None;
        model.intercept = 50.0;
        model.n = 100;
        model.cv_rmse = Some(0.1);
        model.residual_autocorrelation = 0.2;
        let start = day(2024, 1, 1);
        let reporting: Vec<_> = (0..25u64)
            .map(|i| DailyObservation { date: start + Days::new(i), consumption: 40.0, temperature: 5.0 })
            .collect();
        let report = avoided_energy_use(&model, &reporting, 0.90).unwrap();
        let u = report.uncertainty.unwrap();
        let n_eff = 200.0 / 3.0;
        let t = student_t_quantile(0.95, n_eff - 1.0).unwrap();
        close(t, 1.6683, 2e-4);
        let expected_abs = 1.26 * t * 0.1 * (1.5 * (1.0 + 2.0 / n_eff) / 25.0).sqrt() * 1250.0;
        close(u.absolute, expected_abs, 1e-9);
        close(u.fractional.unwrap(), expected_abs / 250.0, 1e-12);
        close(report.total_savings, 250.0, 1e-9);
    }

    #[test]
    fn strong_autocorrelation_leaves_no_uncertainty() {
        let mut model = fitted(2.0);
        model.residual_autocorrelation = 0.99;
        let reporting = synthetic(30, 2.0, 23, |_| 100.0);
        let report = avoided_energy_use(&model, &reporting, 0.90).unwrap();
        assert_eq!(report.uncertainty, None);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let model = fitted(2.0);
        assert!(matches!(avoided_energy_use(&model, &[], 0.9), Err(AnalysisError::TooFewObservations { .. })));
        let reporting = synthetic(10, 2.0, 24, |_| 100.0);
        for confidence in [0.0, 1.0, f64::NAN] {
            assert!(matches!(
                avoided_energy_use(&model, &reporting, confidence),
                Err(AnalysisError::InvalidParameter(_))
            ));
        }
    }
}
