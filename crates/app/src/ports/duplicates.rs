//! Conflict groups (records with several versions, or waiting for a decision) and the record
//! of every resolution decision.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use emdp_domain::{Arrival, ConflictPolicy, QualityStatus, ReasonSet};
use serde::Serialize;

use crate::ports::{BatchId, RecordId, RecordState, StoreError, StoredKey};

/// Which conflict groups to list. Every filter is optional; all given ones must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DuplicateFilter {
    /// Only this building.
    pub building_id: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only days on or after this one.
    pub from: Option<NaiveDate>,
    /// Only days on or before this one.
    pub to: Option<NaiveDate>,
    /// Only groups waiting for a manual decision.
    pub pending_only: bool,
}

/// One kept version of a conflict group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupVersion {
    /// The batch it arrived in.
    pub batch_id: BatchId,
    /// Its line (or element) in the batch.
    pub line: i64,
    /// The batch's source (a file name, `api`, ...).
    pub source: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Its status.
    pub status: QualityStatus,
    /// Its reasons (written by the API's and the CLI's `GroupVersionDto`, each with its message).
    #[serde(skip)]
    pub reasons: ReasonSet,
    /// Its consumption (`None`: missing or unparsable).
    pub consumption: Option<f64>,
    /// Its temperature, °C.
    pub temperature: Option<f64>,
    /// Whether the record currently shows this version.
    pub winner: bool,
}

/// A key with differing versions (or a pending decision), with every version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictGroup {
    /// The curated record.
    pub record_id: RecordId,
    /// The building.
    pub building_id: Option<String>,
    /// The day.
    pub date: Option<NaiveDate>,
    /// The provider.
    pub provider: Option<String>,
    /// The status the record shows (its winner's).
    pub status: QualityStatus,
    /// The version that currently wins.
    pub winner: Arrival,
    /// Whether the group waits for a manual decision.
    pub pending: bool,
    /// Payloads received that equal one of the versions (not kept again).
    pub exact_duplicates: i64,
    /// Every kept version, in arrival order (written by the API's and the CLI's `GroupDto`).
    #[serde(skip)]
    pub versions: Vec<GroupVersion>,
}

/// How a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "method", content = "policy")]
pub enum DecisionMethod {
    /// A policy picked the winner.
    Policy(ConflictPolicy),
    /// Someone chose the version.
    Explicit,
}

/// A resolution to apply to one record, recorded as a decision in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The record.
    pub record_id: RecordId,
    /// The winner it had when the decision was computed (the update applies only if it still
    /// has it and the same number of versions; otherwise [`StoreError::Conflict`]).
    pub previous: Arrival,
    /// The number of versions it had.
    pub previous_versions: i64,
    /// Its new state.
    pub state: RecordState,
    /// Who or what decided (`cli`, `api:<key name>`, `policy:prefer_valid`).
    pub decided_by: String,
    /// How.
    pub method: DecisionMethod,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Its id (increasing).
    pub id: i64,
    /// The record.
    pub record_id: RecordId,
    /// When.
    pub decided_at: DateTime<Utc>,
    /// Who or what decided.
    pub decided_by: String,
    /// How.
    #[serde(flatten)]
    pub method: DecisionMethod,
    /// The version that won.
    pub winner: Arrival,
    /// The version that won before.
    pub previous: Arrival,
    /// Whether the group still waits for a manual decision (policy `manual`).
    pub pending: bool,
}

/// Conflict groups and resolution decisions.
#[async_trait]
pub trait DuplicateStore: Send + Sync {
    /// Conflict groups matching `filter`, in record id order, after the record `after`
    /// (keyset pagination), at most `limit`, each with its versions.
    async fn list_groups(
        &self,
        filter: &DuplicateFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<ConflictGroup>, StoreError>;

    /// Ids of conflict groups matching `filter`, after `after`, at most `limit`.
    async fn group_ids(
        &self,
        filter: &DuplicateFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<RecordId>, StoreError>;

    /// Records with every kept version, as resolution needs them (missing ids left out).
    async fn load_groups(&self, ids: &[RecordId]) -> Result<Vec<StoredKey>, StoreError>;

    /// Applies resolutions and records each decision, all in one transaction. Fails with
    /// [`StoreError::Conflict`] (and applies nothing) when a record changed since it was read.
    async fn apply_resolutions(&self, resolutions: &[Resolution]) -> Result<(), StoreError>;

    /// The decisions recorded for a record, oldest first.
    async fn decisions(&self, record_id: RecordId) -> Result<Vec<Decision>, StoreError>;
}
