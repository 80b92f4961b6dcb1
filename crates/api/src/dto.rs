//! The JSON shapes of the API, with their OpenAPI schemas. Domain types stay free of web
//! concerns; these wrap them.

use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{ConflictGroup, GroupVersion, RawVersion, RecordFields, StoredRecord};
use emdp_app::usecases::duplicates::GroupPage;
use emdp_domain::{Arrival, ReasonSet, RuleSet};
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
    pub winner: Arrival,
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
            winner: record.state.winner,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// One raw payload behind a record (`GET /api/v1/records/{id}/history`,
/// `emdp records history --output json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionDto {
    /// The payload, where and when it arrived, and what became of it.
    #[serde(flatten)]
    pub version: RawVersion,
    /// Its reasons when it arrived.
    pub reasons: Vec<ReasonDto>,
}

impl VersionDto {
    /// The DTO of a raw version, with reason messages from `rules`.
    pub fn new(version: RawVersion, rules: &RuleSet) -> Self {
        let reasons = reasons(version.reasons, rules);
        VersionDto { version, reasons }
    }
}

/// One kept version of a conflict group.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupVersionDto {
    /// Where and when it arrived, its values and whether it wins.
    #[serde(flatten)]
    pub version: GroupVersion,
    /// Its reasons.
    pub reasons: Vec<ReasonDto>,
}

/// A conflict group with every kept version.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupDto {
    /// The record, its winner and state.
    #[serde(flatten)]
    pub group: ConflictGroup,
    /// Every kept version, in arrival order.
    pub versions: Vec<GroupVersionDto>,
}

impl GroupDto {
    /// The DTO of a group, with reason messages from `rules`.
    pub fn new(mut group: ConflictGroup, rules: &RuleSet) -> Self {
        let versions = std::mem::take(&mut group.versions)
            .into_iter()
            .map(|version| GroupVersionDto { reasons: reasons(version.reasons, rules), version })
            .collect();
        GroupDto { group, versions }
    }
}

/// A page of conflict groups (`GET /api/v1/duplicates`, `emdp duplicates list --output json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupPageDto {
    /// The groups, in record id order.
    pub items: Vec<GroupDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl GroupPageDto {
    /// The DTO of a page of groups, with reason messages from `rules`.
    pub fn new(page: GroupPage, rules: &RuleSet) -> Self {
        GroupPageDto {
            items: page.items.into_iter().map(|group| GroupDto::new(group, rules)).collect(),
            next_cursor: page.next_cursor,
        }
    }
}
