//! Use case: store every record of a source (`emdp ingest`, `POST /records`, MQTT).
//!
//! Source (a blocking reader thread, module `reader`) → classify each row (parse, assess) →
//! key order (module `key_order`: an external sort, so that each chunk writes to one stretch
//! of the key indexes and holds few buildings) → chunks over a bounded channel → the writer
//! pipeline (module `writer`): one transaction per chunk, up to
//! [`RecordStore::ingest_writers`] of them at once: resolve duplicates against the chunk and
//! the store, write curated records and raw rows, note the batch's progress. Chunks lock their
//! keys and commit in order, so a crash leaves the stores at a chunk boundary; running the
//! same ingest again completes it, and every row already stored is then a re-delivery.

mod key_order;
mod reader;
mod writer;

pub use key_order::SortError;
pub use writer::{ChunkOutcome, ChunkWrite};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use emdp_domain::{
    Admission, ConflictPolicy, FieldName, ParsedRecord, QualitySummary, RawField, RawRecord, RuleSet, assess,
};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::ports::{
    BatchId, Clock, NewBatch, RawLink, RawRow, ReadError, RecordFields, RecordKey, RecordSource, RecordStore,
    SourceError, SourceRow, StoreError,
};
use writer::{Opening, Written, mostly_stored, record_metrics};

/// Rows per transaction: large enough to amortize a commit, small enough that a crash loses
/// little work and memory stays flat. Each commit rewrites every index page its rows touched,
/// and rows arriving day by day touch one page per building in the key indexes, so larger
/// chunks write less: 1M rows into SQLite took 12.7 s in chunks of 40,000 and 11.3 s in chunks
/// of 60,000, and 50,000 measured the same as 60,000 (6.4-6.6 s on a faster machine). Memory
/// sets the limit: a re-run of that file (every key looked up) peaked at 287-322 MB with
/// chunks of 60,000 (over the 300 MB emdp promises; the allocator keeps freed chunks a while)
/// and at 225-234 MB with 50,000. A store with several writers
/// ([`RecordStore::ingest_writers`]) takes chunks of `CHUNK_ROWS / writers`, the same rows in
/// flight: two PostgreSQL writers with 50,000 rows each peaked at 320-323 MiB on a re-run.
pub const CHUNK_ROWS: usize = 50_000;

/// How many rows were stored, skipped or kept as conflicting versions
/// (`inserted + duplicates_skipped + conflicts + redelivered` is every row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredCounts {
    /// New curated records.
    pub inserted: u64,
    /// Exact duplicates within the input (a row repeating an earlier row of the same batch):
    /// linked, not stored again.
    pub duplicates_skipped: u64,
    /// Conflicting versions kept and resolved by the policy.
    pub conflicts: u64,
    /// Re-deliveries: rows equal to a version an earlier batch stored (the same file ingested
    /// again, a message resent): linked, not stored again, and not counted as duplicates.
    pub redelivered: u64,
}

/// The outcome of an ingest: `validate`'s summary (with duplicates counted against the file
/// *and* the store) plus what was stored and the batch id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestSummary {
    /// Counts per status, duplicate kind and reason.
    #[serde(flatten)]
    pub quality: QualitySummary,
    /// What the stores received.
    pub stored: StoredCounts,
    /// The batch the raw rows belong to: `None` when none was opened (an empty input, or one
    /// that failed before its first chunk).
    pub batch_id: Option<BatchId>,
}

/// Why an ingest stopped. Rows in chunks committed before the error stay stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input as a whole is unusable (bad header, invalid UTF-8, broken JSON, ...).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The reader thread died.
    #[error("the reader stopped unexpectedly: {0}")]
    Reader(String),
    /// The input could not be put in key order (its temporary files failed: a full disk).
    #[error(transparent)]
    Sort(#[from] SortError),
}

/// Why [`Ingestor::classify_at_most`] returned no rows.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The source is unusable as a whole (bad header, broken JSON, ...).
    #[error(transparent)]
    Read(ReadError),
    /// The source holds more rows than the given maximum.
    #[error("more than {0} records")]
    TooMany(usize),
}

/// Reports progress to a user (a progress bar, a log line).
pub trait IngestProgress: Send + Sync {
    /// Called once the whole input is read (and sorted), with its number of rows, before the
    /// first chunk is stored.
    fn read(&self, rows: u64);
    /// Called after each committed chunk with the rows stored so far.
    fn stored(&self, rows: u64);
}

/// No progress reporting.
impl IngestProgress for () {
    fn read(&self, _: u64) {}
    fn stored(&self, _: u64) {}
}

/// One classified row, ready for the stores.
pub(crate) fn classify(
    row: &SourceRow<'_>,
    rules: &RuleSet,
    clock_today: chrono::NaiveDate,
    received_at: DateTime<Utc>,
) -> RawRow {
    let parsed = ParsedRecord::parse(&row.record, rules);
    let assessment = assess(&parsed, rules, clock_today);
    let key = match parsed.key {
        Some(key) => RecordKey::Reading {
            building_id: key.building_id.to_owned(),
            date: key.date,
            provider: key.provider.to_owned(),
        },
        None => RecordKey::Content(content_key(&row.record, row.raw)),
    };
    let text = |field: RawField<'_>| field.trimmed().map(|t| t.unwrap_or_else(|json| json).to_owned());
    RawRow {
        line: row.line as i64,
        payload: row.raw.to_owned(),
        parse_error: row.parse_error.map(str::to_owned),
        received_at,
        key,
        fields: RecordFields {
            building_id: text(row.record.building_id),
            date: parsed.date.value().copied(),
            consumption: parsed.consumption.value().copied(),
            temperature: parsed.temperature.value().copied(),
            provider: text(row.record.provider),
        },
        status: assessment.status,
        reasons: assessment.reasons,
        values: parsed.values,
        original_id: row.origin.and_then(|origin| origin.id).map(str::to_owned),
        original_created_at: row.origin.and_then(|origin| origin.created_at),
    }
}

/// The identity of a record that has no usable key: a stable 128-bit hash of its trimmed
/// fields (and of its payload when the row was malformed, since its fields say nothing).
pub fn content_key(record: &RawRecord<'_>, payload: &str) -> String {
    let mut text = String::with_capacity(payload.len() + 8);
    for field in FieldName::ALL {
        match record.get(field).trimmed() {
            None => text.push('\u{0}'),
            Some(Ok(value) | Err(value)) => text.push_str(value),
        }
        text.push('\u{1f}');
    }
    if record.malformed {
        text.push_str(payload);
    }
    format!("{:032x}", xxh3_128(text.as_bytes()))
}

/// Stores sources into a [`RecordStore`] with a rule set, a clock and a conflict policy.
#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn RecordStore>,
    rules: Arc<RuleSet>,
    clock: Arc<dyn Clock>,
    policy: ConflictPolicy,
}

impl Ingestor {
    /// An ingestor writing to `store`.
    pub fn new(
        store: Arc<dyn RecordStore>,
        rules: Arc<RuleSet>,
        clock: Arc<dyn Clock>,
        policy: ConflictPolicy,
    ) -> Self {
        Ingestor { store, rules, clock, policy }
    }

    /// The rule set in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The clock the ingestor classifies by.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Reads `source` to the end on a blocking thread and stores every row. `name` is the
    /// batch's source (a file name, `api`, ...).
    pub async fn ingest(
        &self,
        source: Box<dyn RecordSource + Send>,
        name: &str,
        progress: &dyn IngestProgress,
    ) -> Result<IngestSummary, IngestError> {
        let started = std::time::Instant::now();
        let format = source.format();
        let columns = source.columns().map(ToString::to_string);
        let writers = self.store.ingest_writers().max(1);
        let reader::Reader { mut chunks, give_back, task } =
            reader::spawn(source, Arc::clone(&self.rules), Arc::clone(&self.clock), writers);
        let opening = Opening { source: name, format, columns };
        let Written { batch, mut summary, failure } =
            self.write_all(&mut chunks, &give_back, opening, progress, writers).await;
        drop(chunks);
        let read = task.await.map_err(|err| IngestError::Reader(err.to_string()))?;
        if let Some(batch) = batch {
            summary.batch_id = Some(batch);
            let outcome = serde_json::to_value(&summary).unwrap_or_default();
            self.store.finish_batch(batch, &outcome).await?;
        }
        metrics::histogram!("emdp_ingest_batch_duration_seconds").record(started.elapsed().as_secs_f64());
        if let Some(err) = failure {
            return Err(err.into());
        }
        read.map(|_| summary)
    }
}

impl IngestSummary {
    /// Counts a stored chunk: statuses and reasons of `rows`, admissions of `links`.
    fn tally(&mut self, rows: &[RawRow], links: &[RawLink]) {
        for (row, link) in rows.iter().zip(links) {
            let assessment = emdp_domain::Assessment { status: row.status, reasons: row.reasons };
            self.quality.record(&assessment, link.admission.duplicate());
            match link.admission {
                Admission::New | Admission::Edit => self.stored.inserted += 1,
                Admission::Exact => self.stored.duplicates_skipped += 1,
                Admission::Conflicting => self.stored.conflicts += 1,
                Admission::Redelivered => self.stored.redelivered += 1,
            }
        }
    }
}

/// Ingestion of small, already buffered inputs (request bodies, messages): classified in
/// memory, stored as one batch, with each row's outcome returned.
impl Ingestor {
    /// The same ingestor with another conflict policy (explicit edits use `keep_latest`).
    pub fn with_policy(&self, policy: ConflictPolicy) -> Self {
        Ingestor { policy, ..self.clone() }
    }

    /// Reads a whole source into classified rows. Only for inputs that fit in memory.
    pub fn classify_all(&self, source: &mut dyn RecordSource) -> Result<Vec<RawRow>, ReadError> {
        self.classify_at_most(source, usize::MAX).map_err(|err| match err {
            ClassifyError::Read(err) => err,
            ClassifyError::TooMany(max) => ReadError::Visit(format!("more than {max} records").into()),
        })
    }

    /// Reads a source into classified rows, stopping at the row past `max`: memory follows
    /// `max`, however many rows the source holds (a request body, a message).
    pub fn classify_at_most(&self, source: &mut dyn RecordSource, max: usize) -> Result<Vec<RawRow>, ClassifyError> {
        let (today, now) = (self.clock.today(), self.clock.now());
        let mut rows = Vec::new();
        let mut over = false;
        let read = source.read_all(&mut |row| {
            if rows.len() == max {
                over = true;
                return Err("too many records".into());
            }
            rows.push(classify(&row, &self.rules, today, now));
            Ok(())
        });
        match read {
            Err(_) if over => Err(ClassifyError::TooMany(max)),
            Err(err) => Err(ClassifyError::Read(err)),
            Ok(()) => Ok(rows),
        }
    }

    /// Stores classified rows as one batch from `name`, in one transaction (the batch, its
    /// records and raw rows are stored together or not at all), and returns the summary and,
    /// per row, the record it became part of and how. `header` and `columns` are the source's
    /// ([`RecordSource::header`], [`RecordSource::columns`]), kept with the batch.
    pub async fn ingest_rows(
        &self,
        rows: &[RawRow],
        name: &str,
        format: crate::ports::SourceFormat,
        header: Option<String>,
        columns: Option<String>,
    ) -> Result<(IngestSummary, Vec<RawLink>), StoreError> {
        let started = std::time::Instant::now();
        let mut tx = self.store.begin_ingest().await?;
        let batch = tx
            .create_batch(&NewBatch { source: name.to_owned(), format, header, columns, started_at: self.clock.now() })
            .await?;
        let mut summary = IngestSummary {
            quality: QualitySummary::default(),
            stored: StoredCounts::default(),
            batch_id: Some(batch),
        };
        // Every key at once, in the store's one order: locked chunk by chunk, two large bodies
        // could each hold a building the other waits for.
        tx.lock_keys(&rows.iter().map(|row| &row.key).collect::<Vec<_>>()).await?;
        let mut links = Vec::with_capacity(rows.len());
        let mut probe_first = false;
        for chunk in rows.chunks(CHUNK_ROWS) {
            let chunk_links = self.store_chunk(tx.as_mut(), batch, chunk, probe_first, None).await?;
            probe_first = mostly_stored(&chunk_links);
            summary.tally(chunk, &chunk_links);
            links.extend(chunk_links);
        }
        let outcome = serde_json::to_value(&summary).unwrap_or_default();
        tx.finish_batch(batch, rows.len() as i64, &outcome).await?;
        tx.commit().await?;
        record_metrics(rows, &links);
        metrics::histogram!("emdp_ingest_batch_duration_seconds").record(started.elapsed().as_secs_f64());
        Ok((summary, links))
    }
}
