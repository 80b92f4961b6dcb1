//! Use case: store every record of a source (`emdp ingest`, `POST /records`, MQTT).
//!
//! Source (a blocking reader thread) → classify each row (parse, assess) → key order
//! (module `key_order`: an external sort, so that each chunk writes to one stretch of the key
//! indexes and holds few buildings) → chunks over a bounded channel → one transaction per
//! chunk, up to [`RecordStore::ingest_writers`] of them at once: resolve duplicates against the
//! chunk and the store, write curated records and raw rows, note the batch's progress. Chunks
//! lock their keys and commit in order, so a crash leaves the stores at a chunk boundary;
//! running the same ingest again completes it, and every row already stored is then an exact
//! duplicate.

mod key_order;

pub use key_order::SortError;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use emdp_domain::{
    Admission, Arrival, ConflictPolicy, FieldName, KeyVersions, ParsedRecord, QualitySummary, RawField, RawRecord,
    RuleSet, ValueFingerprint, Version, assess,
};
use foldhash::HashMapExt;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::oneshot;
use xxhash_rust::xxh3::xxh3_128;

use crate::ports::{
    BatchId, Clock, IngestTx, KeyProbe, NewBatch, NewRecord, Probed, RawLink, RawRow, ReadError, RecordFields,
    RecordKey, RecordSource, RecordState, RecordStore, RecordUpdate, SourceError, SourceRow, StoreError, StoredKey,
};

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

/// Keys of a large first chunk looked up before it is written, spread over it (see
/// [`Ingestor::first_keys_stored`]); a chunk of at most this many rows is not sampled.
const FIRST_CHUNK_SAMPLE: usize = 64;

/// How many rows were stored, skipped or kept as conflicting versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredCounts {
    /// New curated records.
    pub inserted: u64,
    /// Exact duplicates (of the file or of the store): linked, not stored again.
    pub duplicates_skipped: u64,
    /// Conflicting versions kept and resolved by the policy.
    pub conflicts: u64,
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
    /// The batch the raw rows belong to.
    pub batch_id: String,
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

/// The state a record shows when `winner` (one of `rows` or the stored versions) wins.
fn state_of(
    fields: &RecordFields,
    version: &Version,
    reasons: emdp_domain::ReasonSet,
    keys: &KeyVersions,
) -> RecordState {
    RecordState {
        fields: fields.clone(),
        status: version.status,
        reasons,
        values: version.values,
        winner: version.arrival,
        versions: keys.versions().len() as i64,
        pending: keys.is_pending(),
    }
}

/// Stores sources into a [`RecordStore`] with a rule set, a clock and a conflict policy.
#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn RecordStore>,
    rules: Arc<RuleSet>,
    clock: Arc<dyn Clock>,
    policy: ConflictPolicy,
}

/// The admission and record of each row of a chunk, in row order.
pub type ChunkOutcome = Vec<RawLink>;

/// One chunk to store (see [`Ingestor::write_chunk`]).
#[derive(Debug, Clone, Copy)]
pub struct ChunkWrite<'a> {
    /// The batch its rows belong to.
    pub batch: BatchId,
    /// Its classified rows, in input order.
    pub rows: &'a [RawRow],
    /// The batch's rows stored before it: its progress row says this plus the chunk's rows.
    pub stored_before: i64,
    /// Probe every key before inserting (most keys are expected to be stored).
    pub probe_first: bool,
    /// Per row, whether its key was in no earlier chunk of the ingest.
    pub unseen: Option<&'a [bool]>,
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
        mut source: Box<dyn RecordSource + Send>,
        name: &str,
        progress: &dyn IngestProgress,
    ) -> Result<IngestSummary, IngestError> {
        let started = std::time::Instant::now();
        // The whole input is read and put in key order first (see `key_order`); then the
        // reader sends a chunk and waits for the writer to take it before it goes on.
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Chunk>(1);
        // Stored chunks' rows go back to the reader, which frees them on the thread that
        // allocated them and fills the emptied vector again (see `key_order::next_chunk`).
        let (give_back, given_back) = std::sync::mpsc::channel::<Vec<RawRow>>();
        let rules = Arc::clone(&self.rules);
        let clock = Arc::clone(&self.clock);
        let format = source.format();
        let mut columns = source.columns().map(ToString::to_string);
        let writers = self.store.ingest_writers().max(1);
        let mut chunks =
            Chunks { sender, runtime: tokio::runtime::Handle::current(), header: None, last_group: None, read: None };
        let reader = tokio::task::spawn_blocking(move || -> Result<(), IngestError> {
            source.start()?;
            chunks.header = source.header().map(str::to_owned);
            let today = clock.today();
            let mut received_at = clock.now();
            let mut order = key_order::KeyOrder::new();
            let mut read = 0u64;
            source
                .read_all(&mut |row| {
                    let row = classify(&row, &rules, today, received_at);
                    read += 1;
                    if read.is_multiple_of(CHUNK_ROWS as u64) {
                        received_at = clock.now();
                    }
                    order.push(row)?;
                    Ok(())
                })
                .map_err(|err| match err {
                    ReadError::Source(err) => IngestError::Source(err),
                    ReadError::Visit(err) => match err.downcast::<SortError>() {
                        Ok(err) => IngestError::Sort(*err),
                        Err(err) => IngestError::Reader(err.to_string()),
                    },
                })?;
            chunks.read = Some(read);
            let mut sorted = order.finish()?.peekable();
            // As many rows in flight as one writer with chunks of `CHUNK_ROWS`.
            let size = CHUNK_ROWS / writers;
            loop {
                let buffer = key_order::emptied(&given_back).unwrap_or_else(|| Vec::with_capacity(size));
                let rows = key_order::next_chunk(&mut sorted, size, buffer)?;
                // The receiver may be gone after a store error; that error is reported instead.
                if rows.is_empty() || chunks.send(rows).is_err() {
                    break;
                }
            }
            Ok(())
        });

        let mut batch: Option<BatchId> = None;
        let mut summary = IngestSummary {
            quality: QualitySummary::default(),
            stored: StoredCounts::default(),
            batch_id: String::new(),
        };
        // Chunks being written, polled together on this task (the database does the work
        // side by side), and the signals that let each commit, oldest first.
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut commits: VecDeque<Option<oneshot::Sender<()>>> = VecDeque::with_capacity(writers);
        let mut settled = Settled { probe_first: false, rows: 0 };
        // The last chunk's "holds its locks" signal, which the next chunk waits for.
        let mut locked_before: Option<oneshot::Receiver<()>> = None;
        let (mut sent_rows, mut input_open) = (0u64, true);
        let mut failure = None;
        while failure.is_none() && (input_open || !in_flight.is_empty()) {
            tokio::select! {
                // A chunk done first: it frees a writer for the next one.
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let (rows, links): (Vec<RawRow>, Result<ChunkOutcome, StoreError>) = done;
                    commits.pop_front();
                    match links {
                        Ok(links) => {
                            settled.count(&rows, &links, &mut summary, progress);
                            // Once the reader is done, the rows are simply dropped.
                            let _ = give_back.send(rows);
                            if let Some(commit) = commits.front_mut().and_then(Option::take) {
                                let _ = commit.send(());
                            }
                        }
                        Err(err) => failure = Some(err),
                    }
                }
                chunk = receiver.recv(), if input_open && in_flight.len() < writers => {
                    let Some(Chunk { header, rows, unseen, read }) = chunk else {
                        input_open = false;
                        continue;
                    };
                    let batch_id = match batch {
                        Some(id) => id,
                        None => {
                            if let Some(read) = read {
                                progress.read(read);
                            }
                            let started_at = self.clock.now();
                            let new =
                                NewBatch { source: name.to_owned(), format, header, columns: columns.take(), started_at };
                            // The sample first: when it fails, no batch is left open.
                            let opened = match self.first_keys_stored(&rows).await {
                                Ok(stored) => self.store.create_batch(&new).await.map(|id| (id, stored)),
                                Err(err) => Err(err),
                            };
                            match opened {
                                Ok((id, stored)) => {
                                    settled.probe_first = stored;
                                    *batch.insert(id)
                                }
                                Err(err) => {
                                    failure = Some(err);
                                    continue;
                                }
                            }
                        }
                    };
                    let (locked, locked_rx) = oneshot::channel();
                    let (commit, commit_rx) = oneshot::channel();
                    let turn =
                        Turn { after: locked_before.replace(locked_rx), locked: Some(locked), commit: Some(commit_rx) };
                    // The oldest chunk in flight may commit as soon as it is done.
                    if in_flight.is_empty() {
                        let _ = commit.send(());
                        commits.push_back(None);
                    } else {
                        commits.push_back(Some(commit));
                    }
                    // Unless the last chunk's keys were mostly stored (a file ingested again;
                    // before the first chunk commits, a sample of its keys tells), the keys no
                    // earlier chunk had are taken as new: when one is stored after all,
                    // PostgreSQL refuses its copy at that key and the chunk takes the usual
                    // way (1M-row first run: the first two chunks took 0.7 s each through the
                    // staging table, 0.3-0.4 s copied).
                    let unseen = Some(unseen).filter(|_| !settled.probe_first);
                    let (probe_first, stored_before) = (settled.probe_first, sent_rows as i64);
                    sent_rows += rows.len() as u64;
                    in_flight.push_back(async move {
                        let unseen = unseen.as_deref();
                        let chunk = ChunkWrite { batch: batch_id, rows: &rows, stored_before, probe_first, unseen };
                        let links = self.write_in_turn(turn, chunk).await;
                        (rows, links)
                    });
                }
            }
        }
        // After a failure, the chunks still in flight are told not to commit, and roll back.
        commits.clear();
        while in_flight.next().await.is_some() {}
        drop(receiver);
        let read = reader.await.map_err(|err| IngestError::Reader(err.to_string()))?;
        if let Some(batch) = batch {
            summary.batch_id = batch.to_string();
            let outcome = serde_json::to_value(&summary).unwrap_or_default();
            self.store.finish_batch(batch, &outcome).await?;
        }
        metrics::histogram!("emdp_ingest_batch_duration_seconds").record(started.elapsed().as_secs_f64());
        if let Some(err) = failure {
            return Err(err.into());
        }
        read.map(|_| summary)
    }

    /// Whether most of a sample of the first chunk's keys are stored already: a file ingested
    /// again, or an export overlapping one that was. Then the first chunks are written the way
    /// the rest of such an ingest is ([`mostly_stored`]), their keys probed first. Taken as
    /// new instead, a PostgreSQL re-run's first two chunks were copied in, refused at their
    /// first key, and inserted again through the staging table, drawing ids twice for nothing.
    async fn first_keys_stored(&self, rows: &[RawRow]) -> Result<bool, StoreError> {
        if rows.len() <= FIRST_CHUNK_SAMPLE {
            return Ok(false);
        }
        let mut keys: Vec<&RecordKey> =
            rows.iter().step_by(rows.len().div_ceil(FIRST_CHUNK_SAMPLE)).map(|row| &row.key).collect();
        keys.dedup();
        let probes: Vec<KeyProbe> = keys.into_iter().map(|key| KeyProbe { key, values: Vec::new() }).collect();
        // A transaction of its own, never committed: it only reads.
        let mut tx = self.store.begin_ingest().await?;
        let found = tx.probe_keys(&probes).await?;
        Ok(found.iter().filter(|found| found.is_some()).count() * 2 > found.len())
    }

    /// Stores one chunk of classified rows in one transaction and says what became of each.
    ///
    /// New keys are inserted first and the keys found stored are then loaded, one look-up
    /// each. With `probe_first` (the caller expects most keys to be stored, as when a file is
    /// ingested again), every key is probed first ([`IngestTx::probe_keys`]: keys whose rows
    /// all repeat a kept version are linked without loading them) and only the keys not
    /// stored are inserted, which spares an insert attempt per stored key. With `unseen` (per
    /// row, whether its key was in no earlier chunk of the ingest), the new records of such
    /// keys go through [`IngestTx::insert_unseen`]. All give the same outcome.
    pub async fn write_chunk(&self, chunk: ChunkWrite<'_>) -> Result<ChunkOutcome, StoreError> {
        self.write_in_turn(Turn { after: None, locked: None, commit: None }, chunk).await
    }

    /// [`Ingestor::write_chunk`] as one of several chunks in flight: the chunk takes its key
    /// locks once the chunk before it holds its own, and commits when told. Chunks thus lock
    /// and commit in input order: a chunk only ever waits for earlier ones (never a deadlock
    /// between them), and the committed chunks are always the first ones (a failure leaves
    /// the stores at a chunk boundary, as with one chunk at a time).
    async fn write_in_turn(&self, turn: Turn, chunk: ChunkWrite<'_>) -> Result<ChunkOutcome, StoreError> {
        let ChunkWrite { batch, rows, stored_before, probe_first, unseen } = chunk;
        if let Some(after) = turn.after {
            // An error means the chunk before ended without locking: it failed, and this
            // chunk will be told not to commit.
            let _ = after.await;
        }
        let mut tx = self.store.begin_ingest().await?;
        tx.lock_keys(&rows.iter().map(|row| &row.key).collect::<Vec<_>>()).await?;
        if let Some(locked) = turn.locked {
            // The next chunk may be gone already (its task aborted): nothing to tell.
            let _ = locked.send(());
        }
        let links = self.store_chunk(tx.as_mut(), batch, rows, probe_first, unseen).await?;
        if let Some(commit) = turn.commit {
            commit.await.map_err(|_| StoreError::Other("an earlier chunk failed".into()))?;
        }
        // Only now: every chunk updates its batch's row, which would otherwise make a chunk
        // wait for a later one.
        tx.progress(batch, stored_before + rows.len() as i64).await?;
        tx.commit().await?;
        Ok(links)
    }

    /// Stores one chunk in `tx` (see [`Ingestor::write_chunk`]) and says what became of each
    /// row; committing is the caller's.
    async fn store_chunk(
        &self,
        tx: &mut dyn IngestTx,
        batch: BatchId,
        rows: &[RawRow],
        probe_first: bool,
        unseen: Option<&[bool]>,
    ) -> Result<ChunkOutcome, StoreError> {
        let now = self.clock.now();
        let arrival = |row: &RawRow| Arrival { batch, line: row.line };
        let version = |row: &RawRow| Version { arrival: arrival(row), status: row.status, values: row.values };

        let groups = Groups::of(rows);

        let mut stored: foldhash::HashMap<RecordKey, StoredKey> = foldhash::HashMap::default();
        let mut record_of = vec![0; groups.len()];
        let mut admissions = vec![Admission::New; rows.len()];
        // Keys whose every row repeats a kept version: linked, and done with.
        let mut repeated = vec![false; groups.len()];
        if probe_first {
            let probes: Vec<KeyProbe> = (0..groups.len())
                .map(|group| {
                    let mut values: Vec<ValueFingerprint> = Vec::with_capacity(1);
                    for &index in groups.members(group) {
                        if !values.contains(&rows[index].values) {
                            values.push(rows[index].values);
                        }
                    }
                    KeyProbe { key: groups.keys[group], values }
                })
                .collect();
            for (group, found) in tx.probe_keys(&probes).await?.into_iter().enumerate() {
                match found {
                    Some(Probed::Exact(id)) => {
                        record_of[group] = id;
                        repeated[group] = true;
                        for &index in groups.members(group) {
                            admissions[index] = Admission::Exact;
                        }
                    }
                    Some(Probed::Stored(key)) => {
                        stored.insert(key.key.clone(), *key);
                    }
                    None => {}
                }
            }
        }
        let (mut existing, candidates): (Vec<usize>, Vec<usize>) = (0..groups.len())
            .filter(|&group| !repeated[group])
            .partition(|&group| stored.contains_key(groups.keys[group]));

        // Assume the other keys are new: resolve within the chunk. Those no earlier chunk had
        // are most likely new indeed, the others may be stored: two lists of candidates.
        let (mut fresh, mut other) = (Candidates::default(), Candidates::default());
        fresh.groups.reserve(candidates.len());
        fresh.records.reserve(candidates.len());
        for &group in &candidates {
            let (key, members) = (groups.keys[group], groups.members(group));
            let mut versions = KeyVersions::default();
            for &index in members {
                admissions[index] = versions.admit(version(&rows[index]), self.policy);
            }
            let winner = versions.winner().copied().unwrap_or_else(|| version(&rows[members[0]]));
            let winning_row = members
                .iter()
                .map(|&i| &rows[i])
                .find(|row| arrival(row) == winner.arrival)
                .unwrap_or(&rows[members[0]]);
            let list = if unseen.is_some_and(|unseen| unseen[members[0]]) { &mut fresh } else { &mut other };
            list.groups.push(group);
            list.records.push(NewRecord {
                key: key.clone(),
                state: state_of(&winning_row.fields, &winner, winning_row.reasons, &versions),
                created_at: now,
            });
        }

        for (list, ids) in
            [(&fresh, tx.insert_unseen(&fresh.records).await?), (&other, tx.insert_absent(&other.records).await?)]
        {
            for (&group, id) in list.groups.iter().zip(&ids) {
                match id {
                    Some(id) => record_of[group] = *id,
                    None => existing.push(group),
                }
            }
        }

        // Keys already stored: resolve the chunk's rows against their kept versions.
        if !existing.is_empty() {
            let keys: Vec<RecordKey> =
                existing.iter().map(|&g| groups.keys[g]).filter(|key| !stored.contains_key(*key)).cloned().collect();
            if !keys.is_empty() {
                stored.extend(tx.load_keys(&keys).await?.into_iter().map(|s| (s.key.clone(), s)));
            }
            // In group order (first appearance in the chunk), whichever way each key was found.
            existing.sort_unstable();
            let mut updates = Vec::new();
            for &group in &existing {
                let (key, members) = (groups.keys[group], groups.members(group));
                let stored = stored.get(key).ok_or_else(|| StoreError::Conflict(format!("key vanished: {key:?}")))?;
                record_of[group] = stored.id;
                let kept: Vec<Version> = stored.versions.iter().map(|v| v.version).collect();
                let mut versions = KeyVersions::from_stored(kept, stored.state.winner, stored.state.pending)
                    .ok_or_else(|| StoreError::Other(format!("record {} has no version for its winner", stored.id)))?;
                let mut changed = false;
                for &index in members {
                    admissions[index] = versions.admit(version(&rows[index]), self.policy);
                    changed |= admissions[index] == Admission::Conflicting;
                }
                if !changed {
                    continue;
                }
                let Some(winner) = versions.winner().copied() else { continue };
                let state =
                    if let Some(row) = members.iter().map(|&i| &rows[i]).find(|row| arrival(row) == winner.arrival) {
                        state_of(&row.fields, &winner, row.reasons, &versions)
                    } else if let Some(kept) = stored.versions.iter().find(|v| v.version.arrival == winner.arrival) {
                        state_of(&kept.fields, &winner, kept.reasons, &versions)
                    } else {
                        return Err(StoreError::Other(format!("record {}: winner not among its versions", stored.id)));
                    };
                updates.push(RecordUpdate { id: stored.id, key: key.clone(), state, updated_at: now });
            }
            tx.update_records(&updates).await?;
        }

        let links: Vec<RawLink> = (groups.of_row.iter().zip(admissions))
            .map(|(&group, admission)| RawLink { record_id: record_of[group], admission })
            .collect();
        tx.insert_raw(batch, rows, &links).await?;
        Ok(links)
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
        let (today, now) = (self.clock.today(), self.clock.now());
        let mut rows = Vec::new();
        source.read_all(&mut |row| {
            rows.push(classify(&row, &self.rules, today, now));
            Ok(())
        })?;
        Ok(rows)
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
            batch_id: batch.to_string(),
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

/// When a chunk written beside others may lock its keys and commit (see
/// [`Ingestor::write_in_turn`]); `None` where it need not wait or tell.
struct Turn {
    /// Resolves when the chunk before holds its locks.
    after: Option<oneshot::Receiver<()>>,
    /// Tells the chunk after that this one holds its locks.
    locked: Option<oneshot::Sender<()>>,
    /// Resolves when every chunk before committed; closed when one failed.
    commit: Option<oneshot::Receiver<()>>,
}

/// What the chunks committed so far tell the ones to come.
struct Settled {
    /// Whether the last committed chunk's keys were mostly stored (see [`mostly_stored`]).
    probe_first: bool,
    /// Rows committed.
    rows: u64,
}

impl Settled {
    /// Counts a committed chunk.
    fn count(
        &mut self,
        rows: &[RawRow],
        links: &[RawLink],
        summary: &mut IngestSummary,
        progress: &dyn IngestProgress,
    ) {
        self.probe_first = mostly_stored(links);
        summary.tally(rows, links);
        record_metrics(rows, links);
        self.rows += rows.len() as u64;
        progress.stored(self.rows);
    }
}

/// A chunk of rows, from the reader thread to the writer.
struct Chunk {
    /// The input's header, with the first chunk only.
    header: Option<String>,
    rows: Vec<RawRow>,
    /// Per row, whether its key was in no earlier chunk (for [`IngestTx::insert_unseen`]).
    unseen: Vec<bool>,
    /// The rows of the whole input, when it was read before the first chunk was sent.
    read: Option<u64>,
}

/// The reader thread's end of the channel to the writer.
struct Chunks {
    sender: tokio::sync::mpsc::Sender<Chunk>,
    runtime: tokio::runtime::Handle,
    /// The header, until the first chunk takes it.
    header: Option<String>,
    /// The key group the last chunk sent ended with: the only one that may go on in the next.
    last_group: Option<String>,
    /// See [`Chunk::read`].
    read: Option<u64>,
}

impl Chunks {
    /// Sends a chunk and waits until the writer has taken it. Fails when the writer stopped.
    fn send(&mut self, rows: Vec<RawRow>) -> Result<(), &'static str> {
        const STOPPED: &str = "the writer stopped";
        let unseen = key_order::unseen(self.last_group.as_deref(), &rows);
        self.last_group = rows.last().map(|row| row.key.group().to_owned());
        let chunk = Chunk { header: self.header.take(), rows, unseen, read: self.read };
        self.sender.blocking_send(chunk).map_err(|_| STOPPED)?;
        // A slot frees when the writer takes the chunk; the permit is handed back.
        self.runtime.block_on(self.sender.reserve()).map(drop).map_err(|_| STOPPED)
    }
}

/// The rows of a chunk grouped by key, groups in order of first appearance and each group's
/// rows in input order: three vectors for the whole chunk, where a vector per key cost an
/// allocation for every one of a first run's keys.
struct Groups<'a> {
    /// Each group's key.
    keys: Vec<&'a RecordKey>,
    /// Each row's group.
    of_row: Vec<usize>,
    /// The rows, group after group: group `g`'s are `members[starts[g]..starts[g + 1]]`.
    members: Vec<usize>,
    starts: Vec<usize>,
}

impl<'a> Groups<'a> {
    /// Groups `rows`. Keys are hashed with foldhash, faster than the standard SipHash (7 % of
    /// the writing task's time in a re-run's profile) and still seeded per map, so that a
    /// request body cannot be made of colliding keys.
    fn of(rows: &'a [RawRow]) -> Self {
        let mut group_of: foldhash::HashMap<&RecordKey, usize> = foldhash::HashMap::with_capacity(rows.len());
        let mut keys = Vec::new();
        let of_row: Vec<usize> = rows
            .iter()
            .map(|row| {
                *group_of.entry(&row.key).or_insert_with(|| {
                    keys.push(&row.key);
                    keys.len() - 1
                })
            })
            .collect();
        // A counting sort of the rows by group, stable.
        let mut starts = vec![0; keys.len() + 1];
        for &group in &of_row {
            starts[group + 1] += 1;
        }
        for group in 0..keys.len() {
            starts[group + 1] += starts[group];
        }
        let mut next = starts.clone();
        let mut members = vec![0; rows.len()];
        for (index, &group) in of_row.iter().enumerate() {
            members[next[group]] = index;
            next[group] += 1;
        }
        Groups { keys, of_row, members, starts }
    }

    /// How many keys.
    fn len(&self) -> usize {
        self.keys.len()
    }

    /// The rows of `group`, in input order.
    fn members(&self, group: usize) -> &[usize] {
        &self.members[self.starts[group]..self.starts[group + 1]]
    }
}

/// New records to insert, each with the group of the chunk it stands for.
#[derive(Default)]
struct Candidates {
    groups: Vec<usize>,
    records: Vec<NewRecord>,
}

/// Whether most rows of a stored chunk belonged to keys already stored (a re-run, an
/// overlapping export): then the next chunk is likely the same, and `write_chunk` should load
/// its keys before inserting.
fn mostly_stored(links: &[RawLink]) -> bool {
    links.iter().filter(|link| link.admission != Admission::New).count() * 2 > links.len()
}

/// Counts a stored chunk in the metrics (`emdp_records_ingested_total` by status and admission,
/// `emdp_duplicates_total` by kind), one update per label set rather than per row.
fn record_metrics(rows: &[RawRow], links: &[RawLink]) {
    let mut counts: HashMap<(&'static str, &'static str), u64> = HashMap::new();
    for (row, link) in rows.iter().zip(links) {
        *counts.entry((row.status.as_str(), link.admission.as_str())).or_default() += 1;
    }
    for ((status, admission), count) in counts {
        metrics::counter!("emdp_records_ingested_total", "status" => status, "admission" => admission).increment(count);
        if admission == "exact" || admission == "conflicting" {
            metrics::counter!("emdp_duplicates_total", "kind" => admission).increment(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use key_order::tests::row;

    #[test]
    fn groups_hold_each_keys_rows_in_input_order() {
        // Building 1's day 1 three times, between them days 2 and 3, and a keyless row.
        let rows = [row(1, 1, 1), row(2, 1, 2), row(3, 1, 1), row(4, 0, 1), row(5, 1, 3), row(6, 1, 1)];
        let groups = Groups::of(&rows);
        assert_eq!(groups.len(), 4);
        assert_eq!(groups.keys, [&rows[0].key, &rows[1].key, &rows[3].key, &rows[4].key]);
        let members: Vec<&[usize]> = (0..groups.len()).map(|group| groups.members(group)).collect();
        assert_eq!(members, [&[0, 2, 5][..], &[1], &[3], &[4]]);
        assert_eq!(groups.of_row, [0, 1, 0, 2, 3, 0]);
    }

    #[test]
    fn no_rows_no_groups() {
        let groups = Groups::of(&[]);
        assert_eq!((groups.len(), groups.of_row.len()), (0, 0));
    }
}
