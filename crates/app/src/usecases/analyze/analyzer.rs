//! The analysis use cases: [`Analyzer`] reads a building's daily observations through the
//! [`AnalyticsStore`] port and runs the math of [`emdp_domain::analysis`] on them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Days, NaiveDate};
use emdp_domain::analysis::{
    AnalysisError, AnomalyOptions, BaselineConfig, BaselineModel, DEFAULT_CONFIDENCE, DailyObservation, DatePeriod,
    LEVEL_SHIFT_METHOD, LevelShiftOptions, ModelType, SavingsReport, avoided_energy_use, detect_anomalies,
    detect_level_shifts,
};
use rayon::prelude::*;

use super::error::fit_error;
use super::request::{baseline_for_reporting, previous_key, resolve, year_earlier};
use super::{
    AnalyzeError, AnomalyAnalysis, BaselineReport, BatchBaselines, BatchEntry, BuildingAnalysis, DegreeDayBases,
    NormalizedConsumption, PeriodRequest, ReportingSavings, SavingsAnalysis, SeriesReport, SeriesRow, YearOverYear,
};
use crate::ports::{AnalyticsStore, BuildingSummary, Granularity, SeriesPoint, SeriesQuery};

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
            level_shift_method: LEVEL_SHIFT_METHOD,
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
