//! Use-case tests on an in-memory store with synthetic data of known parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use emdp_domain::analysis::{AnalysisError, AnomalyMethod, DailyObservation, DatePeriod, ModelType};

use super::*;
use crate::ports::{
    AnalyticsStore, BuildingObservations, BuildingSummary, Granularity, SeriesPoint, SeriesQuery, StoreError,
};

/// Deterministic pseudo-random numbers (SplitMix64).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// `days` days from 2023-01-01, seasonal temperature (mean 13 °C, amplitude 13 °C, noise 2 °C),
/// consumption `load(i, T) + noise`.
fn synthetic(days: u64, noise: f64, seed: u64, load: impl Fn(u64, f64) -> f64) -> Vec<DailyObservation> {
    let mut rng = Rng(seed);
    (0..days)
        .map(|i| {
            let season = (std::f64::consts::TAU * (i as f64 - 105.0) / 365.25).sin();
            let temperature = 13.0 + 13.0 * season + 2.0 * rng.normal();
            DailyObservation {
                date: day(2023, 1, 1) + Days::new(i),
                consumption: load(i, temperature) + noise * rng.normal(),
                temperature,
            }
        })
        .collect()
}

fn heating_cooling(t: f64) -> f64 {
    100.0 + 5.0 * (15.0 - t).max(0.0) + 8.0 * (t - 22.0).max(0.0)
}

/// An in-memory [`AnalyticsStore`]: buildings with daily observations.
#[derive(Default)]
struct MemoryStore {
    buildings: BTreeMap<String, Vec<DailyObservation>>,
}

impl MemoryStore {
    fn with(mut self, id: &str, observations: Vec<DailyObservation>) -> Self {
        self.buildings.insert(id.to_owned(), observations);
        self
    }

    fn analyzer(self) -> Analyzer {
        Analyzer::new(Arc::new(self))
    }

    fn within(&self, id: &str, period: Option<DatePeriod>) -> Vec<DailyObservation> {
        let mut v: Vec<_> = self.buildings.get(id).into_iter().flatten().copied().collect();
        v.retain(|o| period.is_none_or(|p| p.contains(o.date)));
        v.sort_by_key(|o| o.date);
        v
    }
}

#[async_trait]
impl AnalyticsStore for MemoryStore {
    async fn buildings(&self) -> Result<Vec<BuildingSummary>, StoreError> {
        let mut out = Vec::new();
        for id in self.buildings.keys() {
            out.extend(self.building(id).await?);
        }
        Ok(out)
    }

    async fn building(&self, building_id: &str) -> Result<Option<BuildingSummary>, StoreError> {
        Ok(self.buildings.get(building_id).map(|obs| BuildingSummary {
            building_id: building_id.to_owned(),
            records: obs.len() as i64,
            valid_records: obs.len() as i64,
            first_date: obs.iter().map(|o| o.date).min(),
            last_date: obs.iter().map(|o| o.date).max(),
            latest_valid_date: obs.iter().map(|o| o.date).max(),
        }))
    }

    async fn daily_observations(
        &self,
        building_id: &str,
        period: Option<DatePeriod>,
    ) -> Result<Vec<DailyObservation>, StoreError> {
        Ok(self.within(building_id, period))
    }

    async fn all_daily_observations(
        &self,
        period: Option<DatePeriod>,
    ) -> Result<Vec<BuildingObservations>, StoreError> {
        Ok(self
            .buildings
            .keys()
            .map(|id| BuildingObservations { building_id: id.clone(), observations: self.within(id, period) })
            .filter(|b| !b.observations.is_empty())
            .collect())
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let mut out: BTreeMap<NaiveDate, Vec<DailyObservation>> = BTreeMap::new();
        for o in self.within(&query.building_id, query.period) {
            out.entry(query.granularity.period_start(o.date)).or_default().push(o);
        }
        Ok(out
            .into_iter()
            .map(|(start, days)| SeriesPoint {
                period_start: start,
                consumption: days.iter().map(|o| o.consumption).sum(),
                mean_temperature: days.iter().map(|o| o.temperature).sum::<f64>() / days.len() as f64,
                heating_degree_days: days.iter().map(|o| (query.heating_base - o.temperature).max(0.0)).sum(),
                cooling_degree_days: days.iter().map(|o| (o.temperature - query.cooling_base).max(0.0)).sum(),
                valid_days: days.len() as i64,
            })
            .collect())
    }
}

fn all() -> PeriodRequest {
    PeriodRequest::default()
}

#[tokio::test]
async fn baseline_recovers_known_parameters() {
    let analyzer = MemoryStore::default().with("B", synthetic(730, 3.0, 1, |_, t| heating_cooling(t))).analyzer();
    let report = analyzer.baseline("B", all()).await.unwrap();
    let m = &report.model;
    assert_eq!(m.model_type, ModelType::HeatingCooling);
    assert!((m.heating_balance_point.unwrap() - 15.0).abs() <= 1.0, "{m:?}");
    assert!((m.cooling_balance_point.unwrap() - 22.0).abs() <= 1.0, "{m:?}");
    assert!((m.heating_slope.unwrap() - 5.0).abs() < 0.5, "{m:?}");
    assert!((m.cooling_slope.unwrap() - 8.0).abs() < 1.0, "{m:?}");
    assert!((m.intercept - 100.0).abs() < 3.0, "{m:?}");
    assert_eq!(m.n, 730);
    assert!(m.r2 > 0.9 && m.guideline14.passes && m.warnings.is_empty(), "{m:?}");
    assert!((report.predicted_total - report.actual_total).abs() / report.actual_total < 1e-6, "OLS has no bias");
}

#[tokio::test]
async fn errors_are_clear() {
    let analyzer = MemoryStore::default().with("B", synthetic(30, 1.0, 2, |_, t| heating_cooling(t))).analyzer();
    let err = analyzer.baseline("nope", all()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), "building 'nope' not found");

    let inverted = PeriodRequest::new(Some(day(2023, 2, 1)), Some(day(2023, 1, 1)));
    let err = analyzer.baseline("B", inverted).await.unwrap_err();
    assert!(matches!(err, AnalyzeError::InvertedPeriod { .. }), "{err}");
    let err = analyzer.anomalies("nope", inverted).await.unwrap_err();
    assert!(matches!(err, AnalyzeError::InvertedPeriod { .. }), "inverted is checked first: {err}");

    let two_days = PeriodRequest::new(Some(day(2023, 1, 1)), Some(day(2023, 1, 2)));
    let err = analyzer.baseline("B", two_days).await.unwrap_err();
    assert!(matches!(err, AnalyzeError::TooLittleData { found: 2, required: 3, .. }), "{err}");
    assert!(err.to_string().contains("too little data"), "{err}");

    let outside = PeriodRequest::new(Some(day(2030, 1, 1)), None);
    assert!(analyzer.baseline("B", outside).await.is_err(), "a period after the data");

    let baseline = PeriodRequest::new(None, Some(day(2023, 1, 20)));
    let err = analyzer.savings("B", baseline, PeriodRequest::new(Some(day(2023, 1, 10)), None)).await.unwrap_err();
    assert!(matches!(err, AnalyzeError::InvalidRequest(_)) && err.to_string().contains("overlaps"), "{err}");

    let constant = MemoryStore::default()
        .with(
            "C",
            (0..10)
                .map(|i| DailyObservation { date: day(2023, 1, 1) + Days::new(i), consumption: 5.0, temperature: 10.0 })
                .collect(),
        )
        .analyzer();
    let err = constant.baseline("C", all()).await.unwrap_err();
    assert!(matches!(err, AnalyzeError::Analysis { source: AnalysisError::NoVariance, .. }), "{err}");
    let anomalies = constant.anomalies("C", all()).await.unwrap();
    assert_eq!(anomalies.method, AnomalyMethod::RollingMedian);
    assert!(anomalies.anomalies.is_empty() && anomalies.level_shifts.is_empty());
}

#[tokio::test]
async fn savings_recover_a_known_reduction() {
    // One baseline year, then 20 % less consumption than the same weather would have needed.
    let data = synthetic(730, 2.0, 3, |i, t| heating_cooling(t) * if i >= 365 { 0.8 } else { 1.0 });
    let analyzer = MemoryStore::default().with("B", data).analyzer();
    let reporting = PeriodRequest::new(Some(day(2024, 1, 1)), None);
    let result = analyzer.savings("B", all(), reporting).await.unwrap();
    assert_eq!(result.baseline.model.period, DatePeriod { start: day(2023, 1, 1), end: day(2023, 12, 31) });
    assert_eq!(result.reporting_period, DatePeriod { start: day(2024, 1, 1), end: day(2024, 12, 30) });
    let fraction = result.savings.fractional_savings.unwrap();
    assert!((fraction - 0.2).abs() < 0.01, "{fraction}");
    let fsu = result.savings.uncertainty.as_ref().unwrap();
    assert_eq!(fsu.confidence, 0.9);
    assert!(fsu.fractional.unwrap() < 0.1, "{fsu:?}");
}

#[tokio::test]
async fn normalized_consumption_matches_the_model_over_a_typical_year() {
    let analyzer = MemoryStore::default().with("B", synthetic(1095, 1.0, 4, |_, t| heating_cooling(t))).analyzer();
    let normal = analyzer.normalized("B", all()).await.unwrap();
    // Three years of the same climate: the typical year's consumption is close to a year's.
    let yearly = synthetic(1095, 0.0, 4, |_, t| heating_cooling(t)).iter().map(|o| o.consumption).sum::<f64>() / 3.0;
    assert!((normal.annual_consumption - yearly).abs() / yearly < 0.05, "{} vs {yearly}", normal.annual_consumption);
    assert_eq!(normal.observed_calendar_days, 366);
}

#[tokio::test]
async fn anomalies_flag_injected_spikes_and_a_level_shift() {
    let spikes = [50u64, 123, 300];
    let data = synthetic(600, 3.0, 5, |i, t| {
        let base = heating_cooling(t) + if i >= 400 { 40.0 } else { 0.0 };
        if spikes.contains(&i) { base * 4.0 } else { base }
    });
    let analyzer = MemoryStore::default().with("B", data).analyzer();
    let result = analyzer.anomalies("B", all()).await.unwrap();
    assert_eq!(result.method, AnomalyMethod::Residual);
    for i in spikes {
        let date = day(2023, 1, 1) + Days::new(i);
        assert!(result.anomalies.iter().any(|a| a.date == date), "spike on {date} flagged: {:?}", result.anomalies);
    }
    assert_eq!(result.level_shifts.len(), 1, "{:?}", result.level_shifts);
    let shift = result.level_shifts[0];
    let expected = day(2023, 1, 1) + Days::new(400);
    assert!((shift.date - expected).num_days().abs() <= 3, "{shift:?}");
    assert!((shift.change - 40.0).abs() < 8.0, "{shift:?}");
}

#[tokio::test]
async fn series_compare_with_the_previous_year() {
    let analyzer = MemoryStore::default()
        .with("B", synthetic(731, 0.0, 6, |i, _| if i >= 365 { 110.0 } else { 100.0 }))
        .analyzer();
    let period = PeriodRequest::new(Some(day(2024, 1, 1)), Some(day(2024, 12, 31)));
    let report = analyzer.series("B", Granularity::Month, period, DegreeDayBases::default()).await.unwrap();
    assert_eq!(report.points.len(), 12);
    let jan = &report.points[0];
    assert_eq!(jan.point.period_start, day(2024, 1, 1));
    assert_eq!(jan.previous_year.as_ref().unwrap().period_start, day(2023, 1, 1));
    assert!((jan.relative_change.unwrap() - 0.1).abs() < 1e-9);
    let yoy = &report.year_over_year;
    assert_eq!(yoy.previous_period, DatePeriod { start: day(2023, 1, 1), end: day(2023, 12, 31) });
    assert_eq!((yoy.valid_days, yoy.previous_valid_days), (366, 365));

    let weeks = analyzer.series("B", Granularity::Week, period, DegreeDayBases::default()).await.unwrap();
    assert_eq!(weeks.points[0].point.period_start, day(2024, 1, 1), "2024-01-01 is a Monday");
    assert_eq!(weeks.points[0].previous_year.as_ref().unwrap().period_start, day(2023, 1, 2), "ISO week 1 of 2023");
    let all_days = analyzer.series("B", Granularity::Day, all(), DegreeDayBases::default()).await.unwrap();
    assert_eq!(all_days.points.len(), 731);
}

#[tokio::test]
async fn baseline_all_fits_every_building() {
    let mut store = MemoryStore::default();
    for b in 0..20 {
        store = store.with(&format!("B{b:02}"), synthetic(400, 2.0, 200 + b, |_, t| heating_cooling(t)));
    }
    store = store.with("tiny", synthetic(2, 1.0, 1, |_, t| t));
    let batch = store.analyzer().baseline_all(all()).await.unwrap();
    assert_eq!((batch.buildings, batch.fitted, batch.failed), (21, 20, 1));
    assert_eq!(batch.model_types.get("heating_cooling"), Some(&20));
    let tiny = batch.results.iter().find(|r| r.building_id == "tiny").unwrap();
    assert!(tiny.error.as_deref().unwrap().contains("too few observations"));
}
