//! The quality read side: aggregates over the curated and raw stores for a filter, computed by
//! the database (SQL aggregates and window functions), never by loading every record.
//!
//! Days travel as [`NaiveDate`]s; every count and length is computed by the database.

use async_trait::async_trait;
use chrono::NaiveDate;
use emdp_domain::Reason;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::ports::{BatchId, StoreError};

/// Which data a quality query covers. Every filter is optional; all given ones must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityFilter {
    /// Only this building.
    pub building_id: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only days on or after this one (records without a usable date are then left out).
    pub from: Option<NaiveDate>,
    /// Only days on or before this one.
    pub to: Option<NaiveDate>,
    /// Only records that received a payload in this batch (and, for row counts, only that
    /// batch's payloads).
    pub batch: Option<BatchId>,
}

/// Counts per quality status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusCounts {
    /// All of them.
    pub total: i64,
    /// VALID.
    pub valid: i64,
    /// INCOMPLETE.
    pub incomplete: i64,
    /// INCONSISTENT.
    pub inconsistent: i64,
}

/// Counts per reason code, in [`Reason::ALL`] order; serialized as `{"<code>": N, ...}` with
/// every code present.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReasonCounts(pub Vec<(Reason, i64)>);

impl ReasonCounts {
    /// The count of one reason (0 when absent).
    pub fn get(&self, reason: Reason) -> i64 {
        self.0.iter().find(|(r, _)| *r == reason).map_or(0, |(_, n)| *n)
    }
}

impl Serialize for ReasonCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (reason, count) in &self.0 {
            map.serialize_entry(reason.code(), count)?;
        }
        map.end()
    }
}

/// Serialized as an object of counts by reason code.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ReasonCounts {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <std::collections::BTreeMap<String, i64> as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ReasonCounts {}

/// Curated records (one per key, showing its winning version) matching a filter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordCounts {
    /// Counts per status of the winning versions.
    #[serde(flatten)]
    pub status: StatusCounts,
    /// Records per reason code.
    pub reasons: ReasonCounts,
    /// Records with more than one distinct version (conflict groups).
    pub conflict_groups: i64,
    /// Records whose conflict waits for a manual decision.
    pub pending: i64,
    /// Records without a usable key (identified by their content).
    pub keyless: i64,
}

/// Exact and conflicting duplicates among received payloads (duplicates within the sources:
/// re-deliveries are counted apart, see [`RowCounts::redelivered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuplicateTotals {
    /// Payloads equal to a version kept from the same batch (a row repeated in its file).
    pub exact: i64,
    /// Payloads that differ from every kept version of their key.
    pub conflicting: i64,
}

/// The received payloads (raw rows) matching a filter, as classified on arrival. Re-deliveries
/// (payloads equal to a version an earlier batch stored: a file ingested again) are counted in
/// `redelivered` only; the other figures cover the rest, and so equal what `emdp validate`
/// reports for the files, however often each was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowCounts {
    /// Counts per status on arrival (re-deliveries left out).
    #[serde(flatten)]
    pub status: StatusCounts,
    /// Duplicate admissions.
    pub duplicates: DuplicateTotals,
    /// Rows per reason code (re-deliveries left out).
    pub reasons: ReasonCounts,
    /// Re-delivered payloads: equal to a version an earlier batch stored. Every payload
    /// received is `total + redelivered`.
    pub redelivered: i64,
}

/// One building's counts and completeness. The *expected range* runs from the filter's
/// `from` (else the building's first dated record) to the filter's `to` (else its last dated
/// record), never past `today`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildingQuality {
    /// The building.
    pub building_id: String,
    /// Counts per status of its records.
    #[serde(flatten)]
    pub status: StatusCounts,
    /// First day of the expected range (`None` when it has no dated record up to today).
    pub first_day: Option<NaiveDate>,
    /// Last day of the expected range.
    pub last_day: Option<NaiveDate>,
    /// Days in the expected range.
    pub expected_days: i64,
    /// Days of the range with at least one VALID record.
    pub valid_days: i64,
    /// Days of the range without a VALID record (`expected_days - valid_days`).
    pub gap_days: i64,
    /// Number of gap ranges.
    pub gaps: i64,
    /// The longest gap (the earliest among equally long ones).
    pub longest_gap: Option<Gap>,
    /// Its latest day with a VALID record.
    pub last_valid_day: Option<NaiveDate>,
    /// Days from that day to `today` (`None` without VALID record).
    pub days_since_valid: Option<i64>,
    /// Whether the building is stale: no VALID record, or the latest more than the
    /// threshold of days before `today`.
    pub stale: bool,
}

/// Days without a VALID record, in a building's expected range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gap {
    /// The building.
    pub building_id: String,
    /// First missing day.
    pub start: NaiveDate,
    /// Last missing day.
    pub end: NaiveDate,
    /// Days missing (`end - start + 1`).
    pub days: i64,
}

/// Completeness summed over every building of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompletenessTotals {
    /// Buildings with records.
    pub buildings: i64,
    /// Expected building-days.
    pub expected_days: i64,
    /// Building-days with a VALID record.
    pub valid_days: i64,
    /// Building-days without (the sum of gap lengths).
    pub gap_days: i64,
    /// Gap ranges.
    pub gaps: i64,
    /// The longest gap's length.
    pub longest_gap_days: i64,
    /// Stale buildings.
    pub stale: i64,
}

/// Per-building completeness with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Completeness {
    /// Totals.
    pub totals: CompletenessTotals,
    /// One row per building, in building order.
    pub buildings: Vec<BuildingQuality>,
}

/// A run of consecutive days on which a building's meter (building and provider) reported the
/// same consumption (VALID records).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Flatline {
    /// The building.
    pub building_id: String,
    /// The provider.
    pub provider: String,
    /// The repeated value.
    pub consumption: f64,
    /// First day of the run.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// Days in the run.
    pub days: i64,
}

/// Status counts of one group of a breakdown (a provider, a day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCounts<K> {
    /// The group (`None`: the field is missing).
    // Both groupings (providers, days) are strings on the wire.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub key: Option<K>,
    /// Its counts.
    #[serde(flatten)]
    pub status: StatusCounts,
}

/// Counts of one ingestion batch's payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchCounts {
    /// The batch.
    pub batch_id: BatchId,
    /// Where it came from.
    pub source: String,
    /// Its payloads per status on arrival (re-deliveries left out).
    #[serde(flatten)]
    pub status: StatusCounts,
    /// Its duplicates.
    pub duplicates: DuplicateTotals,
    /// Its re-delivered payloads (see [`RowCounts::redelivered`]).
    pub redelivered: i64,
}

/// How many buildings have records, and how many of them are stale: without a filter, the
/// completeness totals' `buildings` and `stale`, without computing every building's gaps (see
/// [`QualityStore::freshness`] for a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Freshness {
    /// Buildings named by at least one record (matching the filter).
    pub buildings: i64,
    /// Of those, the buildings without a VALID day up to today, or whose latest VALID day is
    /// more than the threshold before today.
    pub stale: i64,
}

/// The curated records' counts with their breakdowns per provider and per day.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordBreakdown {
    /// The counts ([`QualityStore::record_counts`]).
    pub counts: RecordCounts,
    /// Per provider ([`QualityStore::by_provider`]).
    pub providers: Vec<GroupCounts<String>>,
    /// Per day ([`QualityStore::by_day`]).
    pub days: Vec<GroupCounts<NaiveDate>>,
}

/// The raw payloads' counts with their breakdown per batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowBreakdown {
    /// The counts ([`QualityStore::row_counts`]).
    pub counts: RowCounts,
    /// Per batch ([`QualityStore::by_batch`]).
    pub batches: Vec<BatchCounts>,
}

/// Quality aggregates, computed by the database.
#[async_trait]
pub trait QualityStore: Send + Sync {
    /// Curated records: counts per status and reason, conflict groups, pending decisions.
    async fn record_counts(&self, filter: &QualityFilter) -> Result<RecordCounts, StoreError>;

    /// Raw payloads: counts per status and reason on arrival, exact and conflicting duplicates,
    /// re-deliveries.
    async fn row_counts(&self, filter: &QualityFilter) -> Result<RowCounts, StoreError>;

    /// Per-building counts, completeness, longest gap and staleness (`stale_days`: stale when
    /// the latest VALID day is more than this many days before `today`), with totals.
    async fn completeness(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
    ) -> Result<Completeness, StoreError>;

    /// [`completeness`](Self::completeness) and [`gaps`](Self::gaps) together; adapters compute
    /// the gaps once for both.
    async fn completeness_and_gaps(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
        limit: u32,
    ) -> Result<(Completeness, Vec<Gap>), StoreError> {
        let completeness = self.completeness(filter, today, stale_days).await?;
        Ok((completeness, self.gaps(filter, today, limit).await?))
    }

    /// Every gap, by building then start day (at most `limit`).
    async fn gaps(&self, filter: &QualityFilter, today: NaiveDate, limit: u32) -> Result<Vec<Gap>, StoreError>;

    /// Runs of at least `min_days` consecutive days with the same consumption, by building,
    /// provider and start day.
    async fn flatlines(&self, filter: &QualityFilter, min_days: u32) -> Result<Vec<Flatline>, StoreError>;

    /// Curated records per provider.
    async fn by_provider(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<String>>, StoreError>;

    /// Curated records per day (a time line), in day order; records without a date left out.
    async fn by_day(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<NaiveDate>>, StoreError>;

    /// Raw payloads per batch, in batch order.
    async fn by_batch(&self, filter: &QualityFilter) -> Result<Vec<BatchCounts>, StoreError>;

    /// [`record_counts`](Self::record_counts), [`by_provider`](Self::by_provider) and
    /// [`by_day`](Self::by_day) together; adapters may compute them in one pass.
    async fn record_breakdown(&self, filter: &QualityFilter) -> Result<RecordBreakdown, StoreError> {
        let (counts, providers, days) =
            tokio::try_join!(self.record_counts(filter), self.by_provider(filter), self.by_day(filter))?;
        Ok(RecordBreakdown { counts, providers, days })
    }

    /// [`row_counts`](Self::row_counts) and [`by_batch`](Self::by_batch) together; adapters
    /// may compute them in one pass.
    async fn row_breakdown(&self, filter: &QualityFilter) -> Result<RowBreakdown, StoreError> {
        let (counts, batches) = tokio::try_join!(self.row_counts(filter), self.by_batch(filter))?;
        Ok(RowBreakdown { counts, batches })
    }

    /// The number of buildings named by a record matching `filter`, and how many of them are
    /// stale on `today` (`stale_days` as in [`completeness`](Self::completeness)), judged by
    /// their VALID days of the filter's provider, if any, whatever the filter's days and batch
    /// (those only pick the buildings). Without a filter, [`completeness`](Self::completeness)'s
    /// totals, cheap enough for a dashboard's every load.
    async fn freshness(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
    ) -> Result<Freshness, StoreError>;

    /// Of `candidates`, the buildings named by at least one record matching `filter` (each
    /// once, in no particular order).
    async fn buildings_among(&self, filter: &QualityFilter, candidates: &[String]) -> Result<Vec<String>, StoreError>;
}
