//! What an analysis request asks for (periods with optional bounds, degree-day bases) and how
//! its missing bounds resolve against a building's data.

use chrono::{Datelike, Months, NaiveDate, Weekday};
use emdp_domain::analysis::DatePeriod;
use emdp_domain::analysis::baseline::MIN_OBSERVATIONS;
use serde::{Deserialize, Serialize};

use super::AnalyzeError;
use crate::ports::{BuildingSummary, Granularity};

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

/// Without an explicit baseline end, a baseline ends the day before the reporting period.
pub(super) fn baseline_for_reporting(baseline: PeriodRequest, reporting: PeriodRequest) -> PeriodRequest {
    match (baseline.to, reporting.from) {
        (None, Some(start)) => PeriodRequest { from: baseline.from, to: start.pred_opt() },
        _ => baseline,
    }
}

/// Fills a request's missing bounds with the given defaults; errors when neither exists.
pub(super) fn resolve(
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

/// The same day one year earlier (February 29 becomes February 28).
pub(super) fn year_earlier(date: NaiveDate) -> NaiveDate {
    date.checked_sub_months(Months::new(12)).unwrap_or(date)
}

/// The start of the period one year before the period starting at `start`.
pub(super) fn previous_key(granularity: Granularity, start: NaiveDate) -> Option<NaiveDate> {
    match granularity {
        Granularity::Day | Granularity::Month => start.checked_sub_months(Months::new(12)),
        Granularity::Week => {
            let week = start.iso_week();
            NaiveDate::from_isoywd_opt(week.year() - 1, week.week(), Weekday::Mon)
        }
    }
}
