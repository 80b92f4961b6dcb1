//! Use case: analysis of a building's VALID readings: series with year-over-year comparison,
//! the CalTRACK 2 daily baseline, anomalies and level shifts, avoided energy use (savings) with
//! its 90 % fractional savings uncertainty, weather-normalized annual consumption, and
//! baselines for every building at once.
//!
//! The math lives in [`emdp_domain::analysis`] (level shifts in
//! [`emdp_domain::analysis::level_shift`]); this module fetches the daily observations through
//! the [`AnalyticsStore`](crate::ports::AnalyticsStore) port, resolves periods (a missing bound
//! defaults to the building's data), and turns every way a request can fail into an
//! [`AnalyzeError`] (never a panic).
//!
//! - [`Analyzer`] (`analyzer.rs`): the use cases, one method each.
//! - `request.rs`: what a request asks for ([`PeriodRequest`], [`DegreeDayBases`]).
//! - `reports.rs`: what each use case answers ([`SeriesReport`], [`BaselineReport`], ...).
//! - `error.rs`: [`AnalyzeError`].

mod analyzer;
mod error;
mod reports;
mod request;

pub use analyzer::Analyzer;
pub use error::AnalyzeError;
pub use reports::{
    AnomalyAnalysis, BaselineReport, BatchBaselines, BatchEntry, BuildingAnalysis, NormalizedConsumption,
    ReportingSavings, SavingsAnalysis, SeriesReport, SeriesRow, YearOverYear,
};
pub use request::{DegreeDayBases, PeriodRequest};

#[cfg(test)]
mod tests;
