//! What the analysis use cases answer: one report type per use case.

use std::collections::BTreeMap;

use emdp_domain::analysis::{
    Anomaly, AnomalyMethod, BaselineModel, DailyObservation, DatePeriod, LevelShift, ModelType, SavingsReport,
};
use serde::Serialize;

use super::DegreeDayBases;
use crate::ports::{BuildingSummary, Granularity, SeriesPoint};

/// One period of a series next to the same period one year earlier.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesRow {
    /// The period's figures.
    #[serde(flatten)]
    pub point: SeriesPoint,
    /// The same period one year earlier (same day/month one year earlier; the same ISO week
    /// number of the previous ISO year), when it has VALID data.
    pub previous_year: Option<SeriesPoint>,
    /// `consumption - previous_year.consumption`, kWh.
    pub change: Option<f64>,
    /// The change as a fraction of the previous year's consumption.
    pub relative_change: Option<f64>,
}

/// Totals of a period and of the same period one year earlier.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct YearOverYear {
    /// The period one year earlier.
    pub previous_period: DatePeriod,
    /// Total consumption in the period, kWh.
    pub consumption: f64,
    /// Total consumption in the previous period, kWh.
    pub previous_consumption: f64,
    /// VALID days in the period.
    pub valid_days: i64,
    /// VALID days in the previous period.
    pub previous_valid_days: i64,
    /// `consumption - previous_consumption`, kWh.
    pub change: f64,
    /// The change as a fraction of the previous consumption (`None` when it is 0).
    pub relative_change: Option<f64>,
}

/// A building's series over a period, with year-over-year comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesReport {
    /// The building.
    pub building_id: String,
    /// Day, week or month.
    pub granularity: Granularity,
    /// The period (defaults: the building's first and last day).
    pub period: DatePeriod,
    /// Degree-day bases used, °C.
    pub bases: DegreeDayBases,
    /// The periods, in order.
    pub points: Vec<SeriesRow>,
    /// Totals against the same period one year earlier.
    pub year_over_year: YearOverYear,
}

/// A fitted baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineReport {
    /// The building.
    pub building_id: String,
    /// The model (its `period` is the baseline period).
    pub model: BaselineModel,
    /// Metered consumption over the baseline's VALID days, kWh.
    pub actual_total: f64,
    /// The model's prediction for the same days, kWh.
    pub predicted_total: f64,
}

/// Anomalous days and level shifts of a building over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnomalyAnalysis {
    /// The building.
    pub building_id: String,
    /// The period analysed.
    pub period: DatePeriod,
    /// `residual` (against the baseline model) or `rolling_median`.
    pub method: AnomalyMethod,
    /// The baseline model's type when one was fitted.
    pub model_type: Option<ModelType>,
    /// |modified z| above which a day is flagged.
    pub threshold: f64,
    /// Rolling-median window, days (used by the `rolling_median` method).
    pub window_days: u32,
    /// Flagged days, in date order.
    pub anomalies: Vec<Anomaly>,
    /// `bocpd` (augurs' Bayesian online change-point detector, screened).
    pub level_shift_method: &'static str,
    /// Lasting changes of level, in date order.
    pub level_shifts: Vec<LevelShift>,
}

/// Avoided energy use in a reporting period against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavingsAnalysis {
    /// The building.
    pub building_id: String,
    /// The baseline model.
    pub baseline: BaselineReport,
    /// The reporting period.
    pub reporting_period: DatePeriod,
    /// Per-day and total savings with the 90 % fractional savings uncertainty.
    pub savings: SavingsReport,
}

/// Weather-normalized annual consumption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedConsumption {
    /// The building.
    pub building_id: String,
    /// The baseline period of the model used.
    pub baseline_period: DatePeriod,
    /// Predicted consumption over a typical 365-day year, kWh.
    pub annual_consumption: f64,
    /// Calendar days (of 366) whose typical temperature was observed rather than interpolated.
    pub observed_calendar_days: usize,
    /// VALID days whose temperatures make up the typical year (all of the building's).
    pub temperature_days: usize,
}

/// Savings of a reporting period, within a [`BuildingAnalysis`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportingSavings {
    /// The reporting period.
    pub reporting_period: DatePeriod,
    /// Per-day and total savings with the 90 % fractional savings uncertainty.
    pub savings: SavingsReport,
}

/// Everything `emdp analyze` prints for one building.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildingAnalysis {
    /// The building's record counts and dates.
    pub building: BuildingSummary,
    /// The baseline model.
    pub baseline: BaselineReport,
    /// Anomalies and level shifts over the baseline period.
    pub anomalies: AnomalyAnalysis,
    /// Weather-normalized annual consumption.
    pub normalized: NormalizedConsumption,
    /// Savings, when a reporting period was asked for.
    pub savings: Option<ReportingSavings>,
    /// The baseline period's daily observations (for plots; not serialized).
    #[serde(skip)]
    pub observations: Vec<DailyObservation>,
}

/// One building's result in a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchEntry {
    /// The building.
    pub building_id: String,
    /// VALID days used.
    pub days: usize,
    /// The model, when the fit succeeded.
    pub model: Option<BaselineModel>,
    /// Why the fit failed, otherwise.
    pub error: Option<String>,
}

/// Baselines of every building.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchBaselines {
    /// Buildings with VALID data in the period.
    pub buildings: usize,
    /// Models fitted.
    pub fitted: usize,
    /// Buildings whose fit failed.
    pub failed: usize,
    /// Fitted models meeting the Guideline 14 limits.
    pub passing_guideline14: usize,
    /// Fitted models per type.
    pub model_types: BTreeMap<&'static str, usize>,
    /// Time spent reading the observations, ms.
    pub load_ms: f64,
    /// Time spent fitting (in parallel), ms.
    pub fit_ms: f64,
    /// Threads used for fitting.
    pub threads: usize,
    /// Per building, by building id.
    pub results: Vec<BatchEntry>,
}
