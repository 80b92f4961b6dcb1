//! The analytics port: read-only views of the curated store that the analysis use cases need,
//! over VALID records only.
//!
//! **Several providers for one building and day.** The curated store keeps one record per
//! `(building, day, provider)`. The analytics views first reduce a building's VALID records to
//! one observation per day: consumption is **summed** over the providers (each provider meters
//! its own share, e.g. two meters of one building) and temperature is **averaged** (each
//! provider reports the same outdoor air). Every view below works on these daily
//! observations; degree days are computed from the daily mean temperature.

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use emdp_domain::analysis::{DEFAULT_COOLING_BASE_C, DEFAULT_HEATING_BASE_C, DailyObservation, DatePeriod};
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;

/// A building known to the curated store, with its record counts and date range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildingSummary {
    /// The building.
    pub building_id: String,
    /// Curated records of the building, whatever their status (keyless ones included).
    pub records: i64,
    /// Its VALID records.
    pub valid_records: i64,
    /// The first day of any of its records (`None` when no record has a date).
    pub first_date: Option<NaiveDate>,
    /// The last day of any of its records.
    pub last_date: Option<NaiveDate>,
    /// The last day with a VALID record: the latest day analysis can use.
    pub latest_valid_date: Option<NaiveDate>,
}

/// The periods a series is aggregated over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
#[strum(ascii_case_insensitive)]
pub enum Granularity {
    /// Calendar days (also parsed from `daily`).
    #[strum(to_string = "day", serialize = "daily")]
    Day,
    /// ISO 8601 weeks (Monday to Sunday; a week is labelled by its Monday; also parsed from
    /// `weekly`).
    #[strum(to_string = "week", serialize = "weekly")]
    Week,
    /// Calendar months (labelled by their first day; also parsed from `monthly`).
    #[strum(to_string = "month", serialize = "monthly")]
    Month,
}

impl Granularity {
    /// `day`, `week` or `month`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses `day`, `week` or `month` (or `daily`, `weekly`, `monthly`; trimmed,
    /// case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }

    /// The first day of the period holding `date`.
    pub fn period_start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => date,
            Granularity::Week => date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday())),
            Granularity::Month => date.with_day(1).unwrap_or(date),
        }
    }
}

/// What a series query asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesQuery {
    /// The building.
    pub building_id: String,
    /// Day, ISO week or month.
    pub granularity: Granularity,
    /// Only days within this period (every day when `None`).
    pub period: Option<DatePeriod>,
    /// Heating degree-day base, °C (default 18 °C).
    pub heating_base: f64,
    /// Cooling degree-day base, °C (default 18 °C).
    pub cooling_base: f64,
}

impl SeriesQuery {
    /// A query with the default degree-day bases.
    pub fn new(building_id: impl Into<String>, granularity: Granularity, period: Option<DatePeriod>) -> Self {
        Self {
            building_id: building_id.into(),
            granularity,
            period,
            heating_base: DEFAULT_HEATING_BASE_C,
            cooling_base: DEFAULT_COOLING_BASE_C,
        }
    }
}

/// One period of a building's series, over its VALID daily observations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// First day of the period (the day, the ISO week's Monday, the month's first day).
    pub period_start: NaiveDate,
    /// Total consumption, kWh.
    pub consumption: f64,
    /// Mean of the daily mean temperatures, °C.
    pub mean_temperature: f64,
    /// Sum of daily heating degree days, °C·day.
    pub heating_degree_days: f64,
    /// Sum of daily cooling degree days, °C·day.
    pub cooling_degree_days: f64,
    /// Days of the period with at least one VALID record.
    pub valid_days: i64,
}

/// A building's daily observations, for batch analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildingObservations {
    /// The building.
    pub building_id: String,
    /// Its VALID daily observations, in date order.
    pub observations: Vec<DailyObservation>,
}

/// Read-only analytical views of the curated store (VALID records only, one observation per
/// building and day as described in the module docs).
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Every building with at least one record, by building id.
    async fn buildings(&self) -> Result<Vec<BuildingSummary>, StoreError>;

    /// One building's summary, or `None` when no record names it.
    async fn building(&self, building_id: &str) -> Result<Option<BuildingSummary>, StoreError>;

    /// A building's VALID daily observations within `period` (all when `None`), in date order.
    async fn daily_observations(
        &self,
        building_id: &str,
        period: Option<DatePeriod>,
    ) -> Result<Vec<DailyObservation>, StoreError>;

    /// Every building's VALID daily observations within `period`, by building id (buildings
    /// without a VALID observation in the period are left out). One pass over the store.
    async fn all_daily_observations(&self, period: Option<DatePeriod>)
    -> Result<Vec<BuildingObservations>, StoreError>;

    /// A building's series aggregated by the database, in period order; periods without a
    /// VALID day are absent.
    async fn series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_names_are_pinned() {
        for (granularity, name, alias) in [
            (Granularity::Day, "day", "daily"),
            (Granularity::Week, "week", "weekly"),
            (Granularity::Month, "month", "monthly"),
        ] {
            assert_eq!(granularity.as_str(), name, "sent over the API: never change it");
            assert_eq!(serde_json::to_value(granularity).unwrap(), name, "serde and strum agree");
            assert_eq!(Granularity::parse(alias), Some(granularity));
            assert_eq!(Granularity::parse(&format!(" {} ", name.to_uppercase())), Some(granularity));
        }
    }

    #[test]
    fn period_starts() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 3).unwrap(); // a Wednesday
        assert_eq!(Granularity::Week.period_start(d), NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        assert_eq!(Granularity::Month.period_start(d), NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        assert_eq!(Granularity::Day.period_start(d), d);
        assert_eq!(Granularity::parse("Week"), Some(Granularity::Week));
        assert_eq!(Granularity::parse("year"), None);
    }
}
