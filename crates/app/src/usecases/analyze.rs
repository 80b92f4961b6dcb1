//! Analysis of a building's VALID readings: series with year-over-year comparison, the
//! CalTRACK 2 daily baseline, anomalies and level shifts, avoided energy use (savings) with its
//! 90 % fractional savings uncertainty, weather-normalized annual consumption, and baselines
//! for every building at once.
//!
//! The math lives in [`emdp_domain::analysis`]; this module fetches the daily observations
//! through the [`AnalyticsStore`] port, resolves periods (a missing bound defaults to the
//! building's data), and turns every way a request can fail into an [`AnalyzeError`] (never a
//! panic).
//!
//! **Level shifts** (a lasting change of consumption, e.g. a retrofit or a meter swap) are
//! detected with Bayesian online change-point detection (Adams & MacKay 2007) from the `augurs`
//! crate (`NormalGammaDetector`, hazard 1/250 days) on the day-by-day series of residuals
//! against the baseline model (consumption itself when no temperature model qualifies), after
//! robust standardization (median, 1.4826·MAD) and clipping to ±4 so single spikes weigh
//! little. The candidate change points are then screened: segments shorter than
//! [`LevelShiftOptions::min_segment_days`] are merged into their closer neighbour, and a
//! change is kept only when the medians either side differ by at least
//! [`LevelShiftOptions::min_relative_change`] of mean consumption and by at least
//! [`LevelShiftOptions::min_noise_multiple`] times the day-to-day noise (1.4826·MAD of first
//! differences / √2). The weakest change is removed first, and the screen repeats until every
//! remaining change passes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use emdp_domain::analysis::{
    AnalysisError, Anomaly, AnomalyMethod, AnomalyOptions, BaselineConfig, BaselineModel, DEFAULT_CONFIDENCE,
    DailyObservation, DatePeriod, ModelType, SavingsReport, avoided_energy_use, baseline::MIN_OBSERVATIONS,
    detect_anomalies,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ports::{AnalyticsStore, BuildingSummary, Granularity, SeriesPoint, SeriesQuery, StoreError};

/// Why an analysis request failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// No record names the building.
    #[error("building '{0}' not found")]
    UnknownBuilding(String),
    /// A period whose end precedes its start.
    #[error("period ends on {end}, before it starts on {start}")]
    InvertedPeriod {
        /// The given start.
        start: NaiveDate,
        /// The given end.
        end: NaiveDate,
    },
    /// Fewer VALID days than the computation needs.
    #[error("too little data for building '{building_id}' {what}: {found} VALID day(s), need at least {required}")]
    TooLittleData {
        /// The building.
        building_id: String,
        /// Which period (`in 2024-01-01..2024-12-31`).
        what: String,
        /// VALID days found.
        found: usize,
        /// Days needed.
        required: usize,
    },
    /// The request is inconsistent (e.g. a reporting period that starts inside the baseline).
    #[error("{0}")]
    InvalidRequest(String),
    /// The analysis itself failed (e.g. constant consumption: no model can be fitted).
    #[error("cannot analyze building '{building_id}': {source}")]
    Analysis {
        /// The building.
        building_id: String,
        /// What the math reported.
        source: AnalysisError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AnalyzeError {
    /// Whether the error means "no such building" (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, AnalyzeError::UnknownBuilding(_))
    }

    /// Whether the request or the data is at fault (HTTP 400/422), rather than the store.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AnalyzeError::Store(_))
    }
}

/// An optional period as a request gives it: a missing bound defaults to the building's
/// data (first or last day with a record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRequest {
    /// First day (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<NaiveDate>,
}

impl PeriodRequest {
    /// A request from optional bounds.
    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Self {
        Self { from, to }
    }

    /// Rejects a request whose explicit bounds are inverted.
    pub fn check(&self) -> Result<(), AnalyzeError> {
        match (self.from, self.to) {
            (Some(start), Some(end)) if end < start => Err(AnalyzeError::InvertedPeriod { start, end }),
            _ => Ok(()),
        }
    }

    fn is_empty(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// Degree-day bases of a series, °C.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DegreeDayBases {
    /// Heating base (default 18 °C).
    pub heating: f64,
    /// Cooling base (default 18 °C).
    pub cooling: f64,
}

impl Default for DegreeDayBases {
    fn default() -> Self {
        Self {
            heating: emdp_domain::analysis::DEFAULT_HEATING_BASE_C,
            cooling: emdp_domain::analysis::DEFAULT_COOLING_BASE_C,
        }
    }
}

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

/// The analysis use cases over an [`AnalyticsStore`].
#[derive(Clone)]
pub struct Analyzer {
    store: Arc<dyn AnalyticsStore>,
    config: BaselineConfig,
    anomaly: AnomalyOptions,
    shifts: LevelShiftOptions,
}

impl Analyzer {
    /// An analyzer with the CalTRACK defaults ([`BaselineConfig::default`]), anomaly threshold
    /// 3.5 and the default level-shift screen.
    pub fn new(store: Arc<dyn AnalyticsStore>) -> Self {
        Self {
            store,
            config: BaselineConfig::default(),
            anomaly: AnomalyOptions::default(),
            shifts: LevelShiftOptions::default(),
        }
    }

    /// Replaces the baseline configuration.
    pub fn with_config(mut self, config: BaselineConfig) -> Self {
        self.config = config;
        self
    }

    /// Replaces the anomaly options.
    pub fn with_anomaly_options(mut self, options: AnomalyOptions) -> Self {
        self.anomaly = options;
        self
    }

    /// Replaces the level-shift options.
    pub fn with_level_shift_options(mut self, options: LevelShiftOptions) -> Self {
        self.shifts = options;
        self
    }

    /// Every building with its record counts and dates.
    pub async fn buildings(&self) -> Result<Vec<BuildingSummary>, AnalyzeError> {
        Ok(self.store.buildings().await?)
    }

    /// One building's summary; [`AnalyzeError::UnknownBuilding`] when no record names it.
    pub async fn building(&self, building_id: &str) -> Result<BuildingSummary, AnalyzeError> {
        self.store.building(building_id).await?.ok_or_else(|| AnalyzeError::UnknownBuilding(building_id.to_owned()))
    }

    /// A building's series by day, ISO week or month over a period (default: all its days),
    /// with the same period one year earlier for comparison.
    pub async fn series(
        &self,
        building_id: &str,
        granularity: Granularity,
        period: PeriodRequest,
        bases: DegreeDayBases,
    ) -> Result<SeriesReport, AnalyzeError> {
        period.check()?;
        if !(bases.heating.is_finite() && bases.cooling.is_finite()) {
            return Err(AnalyzeError::InvalidRequest("degree-day bases must be finite".into()));
        }
        let building = self.building(building_id).await?;
        let period = resolve(&building, period, building.first_date, building.last_date)?;
        let previous_period = DatePeriod { start: year_earlier(period.start), end: year_earlier(period.end) };
        let query = |p: DatePeriod| SeriesQuery {
            building_id: building_id.to_owned(),
            granularity,
            period: Some(p),
            heating_base: bases.heating,
            cooling_base: bases.cooling,
        };
        let current = self.store.series(&query(period)).await?;
        let previous = self.store.series(&query(previous_period)).await?;
        let by_start: HashMap<NaiveDate, &SeriesPoint> = previous.iter().map(|p| (p.period_start, p)).collect();
        let points = current
            .iter()
            .map(|point| {
                let previous_year = previous_key(granularity, point.period_start)
                    .and_then(|key| by_start.get(&key))
                    .map(|p| (*p).clone());
                let change = previous_year.as_ref().map(|p| point.consumption - p.consumption);
                let relative_change = previous_year
                    .as_ref()
                    .zip(change)
                    .and_then(|(p, c)| (p.consumption != 0.0).then(|| c / p.consumption));
                SeriesRow { point: point.clone(), previous_year, change, relative_change }
            })
            .collect();
        let total =
            |s: &[SeriesPoint]| (s.iter().map(|p| p.consumption).sum::<f64>(), s.iter().map(|p| p.valid_days).sum());
        let (consumption, valid_days) = total(&current);
        let (previous_consumption, previous_valid_days) = total(&previous);
        let change = consumption - previous_consumption;
        Ok(SeriesReport {
            building_id: building_id.to_owned(),
            granularity,
            period,
            bases,
            points,
            year_over_year: YearOverYear {
                previous_period,
                consumption,
                previous_consumption,
                valid_days,
                previous_valid_days,
                change,
                relative_change: (previous_consumption != 0.0).then(|| change / previous_consumption),
            },
        })
    }

    /// Fits the CalTRACK 2 daily baseline over a period (default: the building's first to last
    /// VALID day).
    pub async fn baseline(&self, building_id: &str, period: PeriodRequest) -> Result<BaselineReport, AnalyzeError> {
        period.check()?;
        let building = self.building(building_id).await?;
        let (report, _) = self.fit(&building, period).await?;
        Ok(report)
    }

    /// Anomalous days (residuals against the baseline model when a temperature model
    /// qualifies, else a rolling median) and level shifts over a period.
    pub async fn anomalies(&self, building_id: &str, period: PeriodRequest) -> Result<AnomalyAnalysis, AnalyzeError> {
        period.check()?;
        let building = self.building(building_id).await?;
        let period = resolve(&building, period, building.first_date, building.latest_valid_date)?;
        let observations = self.store.daily_observations(building_id, Some(period)).await?;
        let model = match BaselineModel::fit(&observations, Some(period), &self.config) {
            Ok(model) => Some(model),
            Err(AnalysisError::NoVariance) => None,
            Err(err) => return Err(fit_error(building_id, period, err)),
        };
        Ok(self.anomalies_of(building_id, period, model.as_ref(), &observations))
    }

    /// Avoided energy use in `reporting` (default: from the day after the baseline to the last
    /// VALID day) against the baseline fitted over `baseline` (default: the first VALID day to
    /// the day before the reporting period), with its 90 % fractional savings uncertainty.
    pub async fn savings(
        &self,
        building_id: &str,
        baseline: PeriodRequest,
        reporting: PeriodRequest,
    ) -> Result<SavingsAnalysis, AnalyzeError> {
        baseline.check()?;
        reporting.check()?;
        let building = self.building(building_id).await?;
        let baseline = baseline_for_reporting(baseline, reporting);
        let (report, _) = self.fit(&building, baseline).await?;
        let (reporting_period, savings) = self.savings_of(&building, &report.model, reporting).await?;
        Ok(SavingsAnalysis { building_id: building_id.to_owned(), baseline: report, reporting_period, savings })
    }

    /// Weather-normalized annual consumption: the baseline fitted over `period` applied to a
    /// typical year of the building's own temperatures (all its VALID days).
    pub async fn normalized(
        &self,
        building_id: &str,
        period: PeriodRequest,
    ) -> Result<NormalizedConsumption, AnalyzeError> {
        period.check()?;
        let building = self.building(building_id).await?;
        let (report, _) = self.fit(&building, period).await?;
        self.normalized_of(building_id, &report.model).await
    }

    /// Everything for one building: baseline, anomalies and level shifts over the baseline
    /// period, normalized annual consumption, and savings when `reporting` is given.
    pub async fn analyze(
        &self,
        building_id: &str,
        baseline: PeriodRequest,
        reporting: Option<PeriodRequest>,
    ) -> Result<BuildingAnalysis, AnalyzeError> {
        baseline.check()?;
        if let Some(r) = &reporting {
            r.check()?;
        }
        let building = self.building(building_id).await?;
        let baseline = match &reporting {
            Some(r) => baseline_for_reporting(baseline, *r),
            None => baseline,
        };
        let (report, observations) = self.fit(&building, baseline).await?;
        let anomalies = self.anomalies_of(building_id, report.model.period, Some(&report.model), &observations);
        let normalized = self.normalized_of(building_id, &report.model).await?;
        let savings = match reporting {
            Some(r) => {
                let (reporting_period, savings) = self.savings_of(&building, &report.model, r).await?;
                Some(ReportingSavings { reporting_period, savings })
            }
            None => None,
        };
        Ok(BuildingAnalysis { building, baseline: report, anomalies, normalized, savings, observations })
    }

    /// Fits the baseline of every building over `period` (default: each building's VALID
    /// days), reading all observations in one pass and fitting in parallel (rayon, on a
    /// blocking thread so the async runtime is not held up).
    pub async fn baseline_all(&self, period: PeriodRequest) -> Result<BatchBaselines, AnalyzeError> {
        period.check()?;
        let explicit = match (period.from, period.to) {
            (None, None) => None,
            (from, to) => Some(DatePeriod {
                start: from.unwrap_or(NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN)),
                end: to.unwrap_or(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)),
            }),
        };
        let started = Instant::now();
        let all = self.store.all_daily_observations(explicit).await?;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let config = self.config;
        let fit_period = match (period.from, period.to) {
            (Some(start), Some(end)) => Some(DatePeriod { start, end }),
            _ => None,
        };
        let started = Instant::now();
        let (results, threads) = tokio::task::spawn_blocking(move || {
            let results: Vec<BatchEntry> = all
                .par_iter()
                .map(|b| {
                    let fitted = BaselineModel::fit(&b.observations, fit_period, &config);
                    let (model, error) = match fitted {
                        Ok(model) => (Some(model), None),
                        Err(err) => (None, Some(err.to_string())),
                    };
                    BatchEntry { building_id: b.building_id.clone(), days: b.observations.len(), model, error }
                })
                .collect();
            (results, rayon::current_num_threads())
        })
        .await
        .map_err(|err| AnalyzeError::InvalidRequest(format!("baseline batch failed: {err}")))?;
        let fit_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut model_types = BTreeMap::new();
        for model in results.iter().filter_map(|r| r.model.as_ref()) {
            *model_types.entry(model.model_type.as_str()).or_insert(0) += 1;
        }
        let fitted = results.iter().filter(|r| r.model.is_some()).count();
        Ok(BatchBaselines {
            buildings: results.len(),
            fitted,
            failed: results.len() - fitted,
            passing_guideline14: results
                .iter()
                .filter_map(|r| r.model.as_ref())
                .filter(|m| m.guideline14.passes)
                .count(),
            model_types,
            load_ms,
            fit_ms,
            threads,
            results,
        })
    }

    /// Fits the baseline over `period` resolved against the building's VALID days.
    async fn fit(
        &self,
        building: &BuildingSummary,
        period: PeriodRequest,
    ) -> Result<(BaselineReport, Vec<DailyObservation>), AnalyzeError> {
        let id = building.building_id.as_str();
        let first_valid = if period.from.is_none() {
            // The first VALID day: the store's first day may belong to an invalid record.
            self.store.daily_observations(id, None).await?.first().map(|o| o.date)
        } else {
            None
        };
        let period = resolve(building, period, first_valid.or(building.first_date), building.latest_valid_date)?;
        let observations = self.store.daily_observations(id, Some(period)).await?;
        let model =
            BaselineModel::fit(&observations, Some(period), &self.config).map_err(|err| fit_error(id, period, err))?;
        let actual_total = observations.iter().map(|o| o.consumption).sum();
        let predicted_total = observations.iter().map(|o| model.predict(o.temperature)).sum();
        Ok((BaselineReport { building_id: id.to_owned(), model, actual_total, predicted_total }, observations))
    }

    fn anomalies_of(
        &self,
        building_id: &str,
        period: DatePeriod,
        model: Option<&BaselineModel>,
        observations: &[DailyObservation],
    ) -> AnomalyAnalysis {
        let report = detect_anomalies(model, observations, &self.anomaly);
        let residual_model = model.filter(|m| m.model_type != ModelType::InterceptOnly);
        AnomalyAnalysis {
            building_id: building_id.to_owned(),
            period,
            method: report.method,
            model_type: model.map(|m| m.model_type),
            threshold: self.anomaly.threshold,
            window_days: self.anomaly.window_days,
            anomalies: report.anomalies,
            level_shift_method: "bocpd",
            level_shifts: detect_level_shifts(observations, residual_model, &self.shifts),
        }
    }

    async fn savings_of(
        &self,
        building: &BuildingSummary,
        model: &BaselineModel,
        reporting: PeriodRequest,
    ) -> Result<(DatePeriod, SavingsReport), AnalyzeError> {
        let id = building.building_id.as_str();
        let start = reporting.from.unwrap_or(model.period.end + Days::new(1));
        let end = reporting.to.or(building.latest_valid_date).unwrap_or(start);
        let reporting_period = DatePeriod::new(start, end)
            .map_err(|_| AnalyzeError::InvalidRequest(format!("reporting period {start}..{end} is empty")))?;
        if reporting_period.start <= model.period.end && reporting_period.end >= model.period.start {
            return Err(AnalyzeError::InvalidRequest(format!(
                "the reporting period {}..{} overlaps the baseline period {}..{}",
                reporting_period.start, reporting_period.end, model.period.start, model.period.end
            )));
        }
        let observations = self.store.daily_observations(id, Some(reporting_period)).await?;
        if observations.is_empty() {
            return Err(AnalyzeError::TooLittleData {
                building_id: id.to_owned(),
                what: format!("in the reporting period {}..{}", reporting_period.start, reporting_period.end),
                found: 0,
                required: 1,
            });
        }
        let savings = avoided_energy_use(model, &observations, DEFAULT_CONFIDENCE)
            .map_err(|source| AnalyzeError::Analysis { building_id: id.to_owned(), source })?;
        Ok((reporting_period, savings))
    }

    async fn normalized_of(
        &self,
        building_id: &str,
        model: &BaselineModel,
    ) -> Result<NormalizedConsumption, AnalyzeError> {
        let all = self.store.daily_observations(building_id, None).await?;
        let year = model
            .normal_year(&all)
            .map_err(|source| AnalyzeError::Analysis { building_id: building_id.to_owned(), source })?;
        Ok(NormalizedConsumption {
            building_id: building_id.to_owned(),
            baseline_period: model.period,
            annual_consumption: year.annual_consumption,
            observed_calendar_days: year.observed_days,
            temperature_days: all.len(),
        })
    }
}

/// Without an explicit baseline end, a baseline ends the day before the reporting period.
fn baseline_for_reporting(baseline: PeriodRequest, reporting: PeriodRequest) -> PeriodRequest {
    match (baseline.to, reporting.from) {
        (None, Some(start)) => PeriodRequest { from: baseline.from, to: start.pred_opt() },
        _ => baseline,
    }
}

/// Fills a request's missing bounds with the given defaults; errors when neither exists.
fn resolve(
    building: &BuildingSummary,
    period: PeriodRequest,
    default_start: Option<NaiveDate>,
    default_end: Option<NaiveDate>,
) -> Result<DatePeriod, AnalyzeError> {
    let no_data = || AnalyzeError::TooLittleData {
        building_id: building.building_id.clone(),
        what: if period.is_empty() { "at all".to_owned() } else { "in the period".to_owned() },
        found: 0,
        required: MIN_OBSERVATIONS,
    };
    let start = period.from.or(default_start).ok_or_else(no_data)?;
    let end = period.to.or(default_end).ok_or_else(no_data)?;
    DatePeriod::new(start, end).map_err(|_| AnalyzeError::InvertedPeriod { start, end })
}

fn fit_error(building_id: &str, period: DatePeriod, err: AnalysisError) -> AnalyzeError {
    match err {
        AnalysisError::TooFewObservations { found, required } => AnalyzeError::TooLittleData {
            building_id: building_id.to_owned(),
            what: format!("in {}..{}", period.start, period.end),
            found,
            required,
        },
        AnalysisError::InvertedPeriod { start, end } => AnalyzeError::InvertedPeriod { start, end },
        source => AnalyzeError::Analysis { building_id: building_id.to_owned(), source },
    }
}

/// The same day one year earlier (February 29 becomes February 28).
fn year_earlier(date: NaiveDate) -> NaiveDate {
    date.checked_sub_months(Months::new(12)).unwrap_or(date)
}

/// The start of the period one year before the period starting at `start`.
fn previous_key(granularity: Granularity, start: NaiveDate) -> Option<NaiveDate> {
    match granularity {
        Granularity::Day | Granularity::Month => start.checked_sub_months(Months::new(12)),
        Granularity::Week => {
            let week = start.iso_week();
            NaiveDate::from_isoywd_opt(week.year() - 1, week.week(), Weekday::Mon)
        }
    }
}

/// Median of a copy of `values` (0 when empty).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
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
    let mad = median(&series.iter().map(|x| (x - center).abs()).collect::<Vec<_>>()) * 1.4826;
    let diffs: Vec<f64> = series.windows(2).map(|w| w[1] - w[0]).collect();
    let diff_center = median(&diffs);
    let noise =
        median(&diffs.iter().map(|d| (d - diff_center).abs()).collect::<Vec<_>>()) * 1.4826 / std::f64::consts::SQRT_2;
    let scale = if mad > 0.0 { mad } else { noise };
    if !(scale > 0.0 && scale.is_finite()) {
        return Vec::new();
    }
    let standardized: Vec<f64> = series.iter().map(|x| ((x - center) / scale).clamp(-4.0, 4.0)).collect();
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
mod tests;
