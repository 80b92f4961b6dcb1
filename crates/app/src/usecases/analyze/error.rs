//! Every way an analysis request can fail.

use chrono::NaiveDate;
use emdp_domain::analysis::{AnalysisError, DatePeriod};

use crate::ports::StoreError;

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
}

/// The error of a baseline fit over `period`, in the request's terms.
pub(super) fn fit_error(building_id: &str, period: DatePeriod, err: AnalysisError) -> AnalyzeError {
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
