//! Plain row shapes shared by both adapters, and their conversion to the ports' types, so that
//! the SQL differs between SQLite and PostgreSQL but the meaning of a row does not.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{
    KeyProbe, Probed, RecordFields, RecordId, RecordKey, RecordState, StoreError, StoredKey, StoredRecord,
    StoredVersion,
};
use emdp_domain::{Arrival, QualityStatus, ReasonSet, ValueFingerprint, Version};

/// The key columns of a record: building, date, provider (for readings) or the content key.
pub struct KeyColumns<'k> {
    pub building_id: Option<&'k str>,
    pub date: Option<NaiveDate>,
    pub provider: Option<&'k str>,
    pub content_key: Option<&'k str>,
}

/// Splits a key into its columns.
pub fn key_columns(key: &RecordKey) -> KeyColumns<'_> {
    match key {
        RecordKey::Reading { building_id, date, provider } => KeyColumns {
            building_id: Some(building_id),
            date: Some(*date),
            provider: Some(provider),
            content_key: None,
        },
        RecordKey::Content(hash) => {
            KeyColumns { building_id: None, date: None, provider: None, content_key: Some(hash) }
        }
    }
}

/// Records the keys a probe loaded whole (`loaded`, for the probes at `positions`; a key not
/// stored is not among them) in `found`, as [`Probed::Stored`].
pub fn found_loaded(
    probes: &[KeyProbe<'_>],
    positions: &[usize],
    loaded: Vec<StoredKey>,
    found: &mut [Option<Probed>],
) {
    let position_of: HashMap<&RecordKey, usize> =
        positions.iter().map(|&position| (probes[position].key, position)).collect();
    for key in loaded {
        if let Some(&position) = position_of.get(&key.key) {
            found[position] = Some(Probed::Stored(Box::new(key)));
        }
    }
}

/// Parses a stored status.
pub fn status(text: &str) -> Result<QualityStatus, StoreError> {
    QualityStatus::parse(text).ok_or_else(|| StoreError::Other(format!("unknown status '{text}' in the database")))
}

/// A stored reason bit set.
pub fn reasons(bits: i64) -> ReasonSet {
    ReasonSet::from_bits(bits as u16)
}

/// A batch's stored summary (JSON text), once it finished.
pub fn batch_summary(text: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|err| StoreError::Other(format!("a batch summary in the database is not JSON: {err}")))
}

/// Unix epoch milliseconds (SQLite's time columns) to a time.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// One `records` row.
pub struct RecordRow {
    pub id: RecordId,
    pub building_id: Option<String>,
    pub date: Option<NaiveDate>,
    pub provider: Option<String>,
    pub content_key: Option<String>,
    pub consumption: Option<f64>,
    pub temperature: Option<f64>,
    pub status: String,
    pub reasons: i64,
    pub fp: [i64; 2],
    pub winner: Arrival,
    pub versions: i64,
    pub pending: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub exact_duplicates: i64,
}

impl RecordRow {
    /// The record's key.
    pub fn key(&self) -> Result<RecordKey, StoreError> {
        if let Some(hash) = &self.content_key {
            return Ok(RecordKey::Content(hash.clone()));
        }
        match (&self.building_id, self.date, &self.provider) {
            (Some(building_id), Some(date), Some(provider)) => {
                Ok(RecordKey::Reading { building_id: building_id.clone(), date, provider: provider.clone() })
            }
            _ => Err(StoreError::Other(format!("record {} has neither a reading key nor a content key", self.id))),
        }
    }

    /// The record's state.
    pub fn state(&self) -> Result<RecordState, StoreError> {
        Ok(RecordState {
            fields: RecordFields {
                building_id: self.building_id.clone(),
                date: self.date,
                consumption: self.consumption,
                temperature: self.temperature,
                provider: self.provider.clone(),
            },
            status: status(&self.status)?,
            reasons: reasons(self.reasons),
            values: ValueFingerprint::from_parts(self.fp),
            winner: self.winner,
            versions: self.versions,
            pending: self.pending,
        })
    }

    /// The record as the read side returns it.
    pub fn into_stored(self) -> Result<StoredRecord, StoreError> {
        Ok(StoredRecord {
            id: self.id,
            state: self.state()?,
            keyed: self.content_key.is_none(),
            exact_duplicates: self.exact_duplicates,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// One kept version, from `raw_records`.
pub struct VersionRow {
    pub record_id: RecordId,
    pub arrival: Arrival,
    pub status: String,
    pub reasons: i64,
    pub fp: [i64; 2],
    pub fields: RecordFields,
}

/// Builds the stored keys an ingest needs from their records and the kept versions of the
/// records that have more than one. A record with one version is its own only version.
pub fn assemble_keys(records: Vec<RecordRow>, versions: Vec<VersionRow>) -> Result<Vec<StoredKey>, StoreError> {
    let mut by_record: HashMap<RecordId, Vec<StoredVersion>> = HashMap::new();
    for row in versions {
        by_record.entry(row.record_id).or_default().push(StoredVersion {
            version: Version {
                arrival: row.arrival,
                status: status(&row.status)?,
                values: ValueFingerprint::from_parts(row.fp),
            },
            fields: row.fields,
            reasons: reasons(row.reasons),
        });
    }
    records
        .into_iter()
        .map(|record| {
            let state = record.state()?;
            let versions = match by_record.remove(&record.id) {
                Some(mut versions) if record.versions > 1 => {
                    versions.sort_by_key(|v| v.version.arrival);
                    versions
                }
                _ => vec![StoredVersion {
                    version: Version { arrival: state.winner, status: state.status, values: state.values },
                    fields: state.fields.clone(),
                    reasons: state.reasons,
                }],
            };
            Ok(StoredKey { id: record.id, key: record.key()?, state, versions })
        })
        .collect()
}
