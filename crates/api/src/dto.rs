//! The JSON shapes of the API, with their OpenAPI schemas. Domain types stay free of web
//! concerns; these wrap them.

use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{RecordFields, StoredRecord};
use emdp_domain::{ReasonSet, RuleSet};
use serde::Serialize;
use utoipa::ToSchema;

/// One violated rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReasonDto {
    /// Stable machine-readable code, e.g. `temperature_out_of_range`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

/// The reasons of a set, with messages from the rule set in force.
pub fn reasons(set: ReasonSet, rules: &RuleSet) -> Vec<ReasonDto> {
    set.iter().map(|reason| ReasonDto { code: reason.code(), message: reason.message(rules) }).collect()
}

/// A record's typed values (`null` where missing or unusable).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldsDto {
    /// The building.
    pub building_id: Option<String>,
    /// The day.
    pub date: Option<NaiveDate>,
    /// The consumption (unit per the rule set, default kWh).
    pub consumption: Option<f64>,
    /// The mean temperature, °C.
    pub temperature: Option<f64>,
    /// The provider.
    pub provider: Option<String>,
}

impl From<&RecordFields> for FieldsDto {
    fn from(fields: &RecordFields) -> Self {
        FieldsDto {
            building_id: fields.building_id.clone(),
            date: fields.date,
            consumption: fields.consumption,
            temperature: fields.temperature,
            provider: fields.provider.clone(),
        }
    }
}

/// Where a version arrived: its batch and line.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ArrivalDto {
    /// The batch.
    pub batch_id: i64,
    /// The line (or element) in the batch.
    pub line: i64,
}

/// A curated record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordDto {
    /// Stable id.
    pub id: i64,
    /// The building.
    pub building_id: Option<String>,
    /// The day.
    pub date: Option<NaiveDate>,
    /// The consumption.
    pub consumption: Option<f64>,
    /// The mean temperature, °C.
    pub temperature: Option<f64>,
    /// The provider.
    pub provider: Option<String>,
    /// `VALID`, `INCOMPLETE` or `INCONSISTENT`: computed, never accepted from clients.
    #[schema(example = "VALID")]
    pub quality_status: &'static str,
    /// Every violated rule.
    pub reasons: Vec<ReasonDto>,
    /// How many distinct versions its key has received.
    pub versions: i64,
    /// How many exact duplicates of it have been received.
    pub exact_duplicates: i64,
    /// Whether a conflict between its versions waits for a manual decision.
    pub pending_review: bool,
    /// The version it shows.
    pub winner: ArrivalDto,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl RecordDto {
    /// The DTO of a stored record, with reason messages from `rules`.
    pub fn new(record: &StoredRecord, rules: &RuleSet) -> Self {
        let fields = &record.state.fields;
        RecordDto {
            id: record.id,
            building_id: fields.building_id.clone(),
            date: fields.date,
            consumption: fields.consumption,
            temperature: fields.temperature,
            provider: fields.provider.clone(),
            quality_status: record.state.status.as_str(),
            reasons: reasons(record.state.reasons, rules),
            versions: record.state.versions,
            exact_duplicates: record.exact_duplicates,
            pending_review: record.state.pending,
            winner: ArrivalDto { batch_id: record.state.winner.batch, line: record.state.winner.line },
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}
