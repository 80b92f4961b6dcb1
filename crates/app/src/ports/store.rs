//! The stores: the raw store (every payload exactly as received, append-only) and the curated
//! record store (one record per duplicate key, with its classification and its versions).
//!
//! Both live behind one [`RecordStore`], because an ingest writes to both in one
//! transaction: a crash leaves neither ahead of the other.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use emdp_domain::{Arrival, QualityStatus, ReasonSet, ValueFingerprint, Version};
use serde::{Deserialize, Serialize};

use crate::ports::SourceFormat;

/// A curated record's stable id.
pub type RecordId = i64;

/// An ingestion batch's id (increasing: later batches have larger ids).
pub type BatchId = i64;

/// What identifies a curated record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordKey {
    /// A reading: building, day and provider (trimmed as received, date parsed).
    Reading {
        /// The building.
        building_id: String,
        /// The day.
        #[serde(with = "day_number")]
        date: NaiveDate,
        /// The provider.
        provider: String,
    },
    /// A record without a usable key (a field of the key is missing or unparsable): it is
    /// identified by a hash of its content, so that receiving it again is idempotent.
    Content(String),
}

impl RecordKey {
    /// The building of a reading's key, the content hash of a content key: keys of
    /// different groups never name the same record, so chunks without a group in common
    /// can be written at once (stores lock keys by group, see [`IngestTx::lock_keys`]).
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Reading { building_id, .. } => building_id,
            RecordKey::Content(hash) => hash,
        }
    }
}

/// A day as its number (1 January of year 1 is day 1) in [`RecordKey`]'s and
/// [`RecordFields`]' serde form: four bytes rather than ten of text to format and parse (the
/// ingest's sort files hold every row).
mod day_number {
    use chrono::{Datelike, NaiveDate};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the day's number.
    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(date.num_days_from_ce())
    }

    /// Reads a day's number; one outside chrono's range is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        day(i32::deserialize(deserializer)?)
    }

    fn day<E: Error>(days: i32) -> Result<NaiveDate, E> {
        NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| E::custom(format!("day {days} out of range")))
    }

    /// The same for an optional day.
    pub mod option {
        use chrono::{Datelike, NaiveDate};
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the day's number, if any.
        pub fn serialize<S: Serializer>(date: &Option<NaiveDate>, serializer: S) -> Result<S::Ok, S::Error> {
            match date {
                Some(date) => serializer.serialize_some(&date.num_days_from_ce()),
                None => serializer.serialize_none(),
            }
        }

        /// Reads a day's number, if any.
        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
            Option::<i32>::deserialize(deserializer)?.map(super::day).transpose()
        }
    }
}

/// The typed values of a record or a version; `None` where the field is missing or unusable.
/// Serialized only inside a [`RawRow`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecordFields {
    /// The building, trimmed (kept even when it violates the identifier rules).
    pub building_id: Option<String>,
    /// The day. As a number, like the key's: chrono writes a date as text, one string
    /// formatted per row by the thread that writes the sort runs, and parsed again by the
    /// merge.
    #[serde(with = "day_number::option")]
    pub date: Option<NaiveDate>,
    /// The consumption.
    pub consumption: Option<f64>,
    /// The temperature, °C.
    pub temperature: Option<f64>,
    /// The provider, trimmed (kept even when it violates the identifier rules).
    pub provider: Option<String>,
}

/// One received payload with its classification, as the raw store keeps it. Serialized only
/// into the ingest's temporary sort files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawRow {
    /// The line (or element) in its batch.
    pub line: i64,
    /// The payload exactly as received.
    pub payload: String,
    /// Why the payload could not be parsed at all, if it could not.
    pub parse_error: Option<String>,
    /// When it arrived.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub received_at: DateTime<Utc>,
    /// The key it belongs to.
    pub key: RecordKey,
    /// Its typed values.
    pub fields: RecordFields,
    /// Its status.
    pub status: QualityStatus,
    /// Its violated rules.
    pub reasons: ReasonSet,
    /// Its values' fingerprint (for exact-duplicate checks against later arrivals).
    pub values: ValueFingerprint,
    /// For imports from another system: the id it had there.
    pub original_id: Option<String>,
    /// For imports from another system: when it was created there.
    #[serde(with = "chrono::serde::ts_microseconds_option")]
    pub original_created_at: Option<DateTime<Utc>>,
}

/// A raw row linked to the curated record it became part of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawLink {
    /// The record.
    pub record_id: RecordId,
    /// Whether the row was new, an exact duplicate or a conflicting version.
    pub admission: emdp_domain::Admission,
}

/// The state of a curated record: which version wins, and the values it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordState {
    /// The values shown (the winning version's).
    pub fields: RecordFields,
    /// The winning version's status.
    pub status: QualityStatus,
    /// The winning version's reasons.
    pub reasons: ReasonSet,
    /// The winning version's fingerprint.
    pub values: ValueFingerprint,
    /// Where the winning version arrived.
    pub winner: Arrival,
    /// How many distinct versions the key has received.
    pub versions: i64,
    /// Whether the conflict waits for a manual decision.
    pub pending: bool,
}

/// A record to insert, if its key is not stored yet.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// Its key.
    pub key: RecordKey,
    /// Its state.
    pub state: RecordState,
    /// When it was first received.
    pub created_at: DateTime<Utc>,
}

/// One kept version of a stored key, with what a record needs if it wins.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    /// Arrival, status and fingerprint.
    pub version: Version,
    /// Its typed values.
    pub fields: RecordFields,
    /// Its violated rules.
    pub reasons: ReasonSet,
}

/// A stored key as an ingest needs it: its id, its state and every kept version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    /// The record.
    pub id: RecordId,
    /// Its key.
    pub key: RecordKey,
    /// Its current state.
    pub state: RecordState,
    /// Every kept (non-exact) version, in arrival order.
    pub versions: Vec<StoredVersion>,
}

/// A key an ingest expects to find stored (a file ingested again), with the distinct values
/// its rows carry: see [`IngestTx::probe_keys`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeyProbe<'a> {
    /// The key.
    pub key: &'a RecordKey,
    /// The distinct values of the chunk's rows of this key.
    pub values: Vec<ValueFingerprint>,
}

impl KeyProbe<'_> {
    /// Whether a stored record of this key with `versions` kept versions, the one it shows of
    /// value `kept`, makes every probed row a repeat of that version ([`Probed::Exact`]): it
    /// has one version, and every probed value is that one. Otherwise the key must be loaded
    /// whole.
    pub fn repeats_only_version(&self, versions: i64, kept: ValueFingerprint) -> bool {
        versions == 1 && self.values.iter().all(|value| *value == kept)
    }
}

/// What [`IngestTx::probe_keys`] found of a stored key.
#[derive(Debug, Clone, PartialEq)]
pub enum Probed {
    /// The record has one kept version and every probed value is that one: each row of the
    /// key repeats it (an exact duplicate or a re-delivery, by the batch it came in:
    /// [`emdp_domain::Admission::repeat_of`]), and nothing else about the key is needed.
    Exact {
        /// The record.
        record: RecordId,
        /// Where its one kept version (its winner) came from.
        kept: emdp_domain::Arrival,
    },
    /// The key with its state and versions, for the rows to be resolved against.
    Stored(Box<StoredKey>),
}

/// A change to a stored record after new versions arrived or an edit.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    /// The record.
    pub id: RecordId,
    /// Its key afterwards (an edit may change it to a key no other record holds: see
    /// [`StoreError::KeyTaken`]).
    pub key: RecordKey,
    /// Its new state.
    pub state: RecordState,
    /// When it changed.
    pub updated_at: DateTime<Utc>,
}

/// A new ingestion batch.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBatch {
    /// Where the data comes from (a file name, `api`, `mqtt:<topic>`, ...).
    pub source: String,
    /// Its format.
    pub format: SourceFormat,
    /// The CSV header, needed to read raw CSV payloads later.
    pub header: Option<String>,
    /// The column mapping it was read by (`building_id=site, date=day, ...`), when the fields
    /// were not read under their own names ([`RecordSource::columns`](crate::ports::RecordSource::columns)).
    pub columns: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// What the stores can fail with. Every variant is something an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The schema is not the one this binary expects (run `emdp migrate`, or upgrade).
    #[error("database schema mismatch: {0}")]
    Migration(String),
    /// A concurrent writer created the same key first; the operation can be retried.
    #[error("concurrent write conflict: {0}")]
    Conflict(String),
    /// An edit would give a record the key another record holds (this one, by id): retrying
    /// cannot help.
    #[error("another record (id {0}) already holds this key")]
    KeyTaken(RecordId),
    /// The disk is full or the database is read-only.
    #[error("database cannot be written: {0}")]
    Full(String),
    /// The requested record or batch does not exist.
    #[error("not found")]
    NotFound,
    /// Any other database error.
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether the database fails every write alike (unreachable, full or read-only, another
    /// schema) rather than this one operation: waiting is all that helps, and the failure says
    /// nothing about the data being written (the MQTT subscriber retries such failures without
    /// counting them towards a message's dead-lettering).
    pub fn is_outage(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Full(_) | StoreError::Migration(_))
    }
}

/// One ingestion transaction: everything written through it becomes visible at
/// [`IngestTx::commit`], or not at all.
#[async_trait]
pub trait IngestTx: Send {
    /// Called once per chunk with the key of every row (repeats included), before anything is
    /// read: makes chunks of concurrent transactions that share a key's group
    /// ([`RecordKey::group`]) take turns, so that each resolves its rows against the versions
    /// the other committed (without it, two ingests of the same conflicting rows could both
    /// store a version as new). By default nothing: SQLite's writers take turns whole.
    async fn lock_keys(&mut self, _keys: &[&RecordKey]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Inserts records whose keys are not stored yet. Returns, per input, the new id or
    /// `None` where the key was already stored.
    async fn insert_absent(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError>;

    /// [`IngestTx::insert_absent`] for records whose keys this ingest has not met before, so
    /// most likely not stored: the same outcome, but an adapter may take a path that is faster
    /// when every key is new and slower when one is stored after all (PostgreSQL copies them
    /// straight into the table). By default, `insert_absent`.
    async fn insert_unseen(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError> {
        self.insert_absent(records).await
    }

    /// Loads stored keys with every kept version; keys that are not stored are left out.
    async fn load_keys(&mut self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError>;

    /// Looks keys up that are most likely stored, per probe: `None` if not stored,
    /// [`Probed::Exact`] where the store can tell cheaply that every probed value is a kept
    /// version, else [`Probed::Stored`]. By default every stored key is loaded
    /// ([`IngestTx::load_keys`]); an adapter may answer the common case of a re-run, a record
    /// with one version, without reading its state and versions.
    async fn probe_keys(&mut self, probes: &[KeyProbe<'_>]) -> Result<Vec<Option<Probed>>, StoreError> {
        let keys: Vec<RecordKey> = probes.iter().map(|probe| probe.key.clone()).collect();
        let mut stored: std::collections::HashMap<RecordKey, StoredKey> =
            self.load_keys(&keys).await?.into_iter().map(|s| (s.key.clone(), s)).collect();
        Ok(probes.iter().map(|probe| stored.remove(probe.key).map(|key| Probed::Stored(Box::new(key)))).collect())
    }

    /// Applies new states to stored records.
    async fn update_records(&mut self, updates: &[RecordUpdate]) -> Result<(), StoreError>;

    /// Appends rows to the raw store, each linked to its record (`links[i]` for `rows[i]`).
    async fn insert_raw(&mut self, batch: BatchId, rows: &[RawRow], links: &[RawLink]) -> Result<(), StoreError>;

    /// Records a batch's progress (rows stored so far) in the same transaction.
    async fn progress(&mut self, batch: BatchId, rows: i64) -> Result<(), StoreError>;

    /// Opens a batch inside this transaction, for inputs stored in one transaction (a request
    /// body, a message, an edit): the batch exists only if the transaction commits, and
    /// opening and closing it cost no commits of their own.
    async fn create_batch(&mut self, batch: &NewBatch) -> Result<BatchId, StoreError>;

    /// Closes a batch inside this transaction: its rows stored and its outcome, as
    /// [`RecordStore::finish_batch`] does for a batch spanning several transactions.
    async fn finish_batch(&mut self, batch: BatchId, rows: i64, summary: &serde_json::Value) -> Result<(), StoreError>;

    /// Makes everything visible atomically.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Which curated records to read. Every filter is optional; all given ones must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordFilter {
    /// Only this building.
    pub building_id: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only this status.
    pub status: Option<QualityStatus>,
    /// Only days on or after this one.
    pub from: Option<NaiveDate>,
    /// Only days on or before this one.
    pub to: Option<NaiveDate>,
}

/// Which batches to list. Every filter is optional; all given ones must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchFilter {
    /// Only batches from this source (a file name, `api`, `mqtt:<topic>`, ...).
    pub source: Option<String>,
    /// Only batches never finished: still being written, or cut short by a crash or a kill
    /// (running the same ingest again completes what they hold).
    pub unfinished: bool,
}

/// One ingestion (a file, a request body, a batch of MQTT messages) as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchInfo {
    /// Its id.
    pub id: BatchId,
    /// Where the data came from.
    pub source: String,
    /// Its format.
    pub format: String,
    /// The CSV header.
    pub header: Option<String>,
    /// The column mapping it was read by, when a field was mapped.
    pub columns: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished; `None` while it is written, or when it was cut short.
    pub finished_at: Option<DateTime<Utc>>,
    /// Rows stored so far (all of them once finished).
    pub rows_stored: i64,
    /// The ingest summary (counts per status, duplicates, reasons, what was stored), once
    /// finished.
    pub summary: Option<serde_json::Value>,
}

/// A curated record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Its stable id.
    pub id: RecordId,
    /// Its state (the winning version's values and classification).
    pub state: RecordState,
    /// Whether it has a reading key (false: identified by its content).
    pub keyed: bool,
    /// How many exact duplicates of it have been received.
    pub exact_duplicates: i64,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One raw payload behind a curated record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RawVersion {
    /// The batch it arrived in.
    pub batch_id: BatchId,
    /// Its line (or element) in the batch.
    pub line: i64,
    /// The batch's source.
    pub source: String,
    /// The batch's format.
    pub format: String,
    /// The CSV header of the batch, to read a CSV payload.
    pub header: Option<String>,
    /// The batch's column mapping, when its fields were not read under their own names.
    pub columns: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The payload exactly as received.
    pub payload: String,
    /// Why it could not be parsed at all, if so.
    pub parse_error: Option<String>,
    /// Whether it was new, an exact duplicate or a conflicting version.
    pub admission: String,
    /// Its status when it arrived.
    pub status: QualityStatus,
    /// Its reasons when it arrived (written by the API's and the CLI's `VersionDto`, each with
    /// its message).
    #[serde(skip)]
    pub reasons: ReasonSet,
    /// Whether this version is the one the record shows.
    pub winner: bool,
    /// For imports: its id in the system it came from.
    pub original_id: Option<String>,
    /// For imports: when it was created there.
    pub original_created_at: Option<DateTime<Utc>>,
}

/// How busy the database connection pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    /// Connections open.
    pub open: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most connections the pool opens.
    pub max: u32,
}

/// The raw and curated stores.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Checks that the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The connection pool's usage, for metrics.
    fn pool_usage(&self) -> PoolUsage;

    /// How many chunks of an ingest may be written at once, each in a transaction of its own
    /// (see `Ingestor::ingest`: they still lock and commit in input order). More than one
    /// only helps a database that works on several transactions at once. By default, one.
    fn ingest_writers(&self) -> usize {
        1
    }

    /// Starts a batch and returns its id.
    async fn create_batch(&self, batch: &NewBatch) -> Result<BatchId, StoreError>;

    /// Marks a batch finished with its summary (as JSON).
    async fn finish_batch(&self, batch: BatchId, summary: &serde_json::Value) -> Result<(), StoreError>;

    /// Opens an ingestion transaction.
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx + '_>, StoreError>;

    /// Finishes with the stores before the process ends; nothing may use them afterwards.
    /// SQLite copies its write-ahead log into the database file, so that the file alone holds
    /// every commit (a copy of `emdp.db` without `emdp.db-wal` misses nothing). By default,
    /// nothing to do.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Looks stored keys up without writing (e.g. to tell a client whether a record it
    /// validates duplicates a stored one). The default runs an ingest transaction that is
    /// never committed; adapters may answer from a read-only connection instead.
    async fn find_keys(&self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        let mut tx = self.begin_ingest().await?;
        tx.load_keys(keys).await
    }

    /// Reads one curated record.
    async fn get_record(&self, id: RecordId) -> Result<Option<StoredRecord>, StoreError>;

    /// Reads curated records matching `filter`, in id order, after the record `after` (keyset
    /// pagination), at most `limit`.
    async fn list_records(
        &self,
        filter: &RecordFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Every raw payload behind a record, in arrival order.
    async fn record_history(&self, id: RecordId) -> Result<Vec<RawVersion>, StoreError>;

    /// Up to `limit` batches matching `filter`, newest first, with ids below `before` (keyset
    /// pagination).
    async fn list_batches(
        &self,
        filter: &BatchFilter,
        before: Option<BatchId>,
        limit: u32,
    ) -> Result<Vec<BatchInfo>, StoreError>;

    /// Deletes a curated record (its raw payloads stay). Returns false when there was none.
    async fn delete_record(&self, id: RecordId) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_the_database_s_failure_not_the_operation_s() {
        let outages = [
            StoreError::Unavailable("connection refused".into()),
            StoreError::Full("disk is full".into()),
            StoreError::Migration("migration 12 unknown".into()),
        ];
        assert!(outages.iter().all(StoreError::is_outage));
        let own = [StoreError::Other("bad value".into()), StoreError::Conflict("key".into()), StoreError::NotFound];
        assert!(!own.iter().any(StoreError::is_outage));
    }

    #[test]
    fn a_probe_repeats_a_record_only_when_its_one_version_is_every_probed_value() {
        let key = RecordKey::Content("k".to_owned());
        let (a, b) = (ValueFingerprint::from_parts([1, 2]), ValueFingerprint::from_parts([1, 3]));
        let probe = |values: Vec<ValueFingerprint>| KeyProbe { key: &key, values };
        assert!(probe(vec![a]).repeats_only_version(1, a));
        assert!(!probe(vec![a]).repeats_only_version(2, a), "several versions: load them");
        assert!(!probe(vec![b]).repeats_only_version(1, a), "another value: a conflict");
        assert!(!probe(vec![a, b]).repeats_only_version(1, a), "one of the rows differs");
    }
}
