//! The ingest's writer pipeline: chunks from the reader stage, each stored in one
//! transaction, up to [`crate::ports::RecordStore::ingest_writers`] of them at once: resolve
//! duplicates against the chunk and the store, write curated records and raw rows, note the
//! batch's progress. Chunks lock their keys and commit in order, so a crash leaves the stores
//! at a chunk boundary.

use std::collections::{HashMap, VecDeque};

use emdp_domain::{Admission, Arrival, KeyVersions, QualitySummary, ValueFingerprint, Version};
use foldhash::HashMapExt;
use futures::StreamExt;
use tokio::sync::oneshot;

use super::reader::Chunk;
use super::{IngestProgress, IngestSummary, Ingestor, StoredCounts};
use crate::ports::{
    BatchId, IngestTx, KeyProbe, NewBatch, NewRecord, Probed, RawLink, RawRow, RecordFields, RecordKey, RecordState,
    RecordUpdate, SourceFormat, StoreError, StoredKey,
};

/// Keys of a large first chunk looked up before it is written, spread over it (see
/// [`Ingestor::first_keys_stored`]); a chunk of at most this many rows is not sampled.
const FIRST_CHUNK_SAMPLE: usize = 64;

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

/// The batch an ingest opens with its first chunk.
pub(super) struct Opening<'a> {
    /// The batch's source (a file name, `api`, ...).
    pub source: &'a str,
    /// The input's format.
    pub format: SourceFormat,
    /// The input's column mapping ([`crate::ports::RecordSource::columns`]).
    pub columns: Option<String>,
}

/// What the writer pipeline did: the batch it opened, if any, what it stored, and the error
/// that stopped it.
pub(super) struct Written {
    /// The batch, opened with the first chunk.
    pub batch: Option<BatchId>,
    /// The committed chunks' tally.
    pub summary: IngestSummary,
    /// The store's error, if one stopped the pipeline.
    pub failure: Option<StoreError>,
}

impl Ingestor {
    /// Stores every chunk of `chunks` in a batch opened with the first one, with up to
    /// `writers` chunks in flight, and gives their rows back on `give_back`. Returns once
    /// every chunk in flight is done: after a failure, the chunks still in flight are told
    /// not to commit, and roll back.
    pub(super) async fn write_all(
        &self,
        chunks: &mut tokio::sync::mpsc::Receiver<Chunk>,
        give_back: &std::sync::mpsc::Sender<Vec<RawRow>>,
        opening: Opening<'_>,
        progress: &dyn IngestProgress,
        writers: usize,
    ) -> Written {
        let Opening { source: name, format, mut columns } = opening;
        let mut batch: Option<BatchId> = None;
        let mut summary =
            IngestSummary { quality: QualitySummary::default(), stored: StoredCounts::default(), batch_id: None };
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
                chunk = chunks.recv(), if input_open && in_flight.len() < writers => {
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
        commits.clear();
        while in_flight.next().await.is_some() {}
        Written { batch, summary, failure }
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
    pub(super) async fn store_chunk(
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
                    Some(Probed::Exact { record, kept }) => {
                        record_of[group] = record;
                        repeated[group] = true;
                        for &index in groups.members(group) {
                            admissions[index] = Admission::repeat_of(kept, arrival(&rows[index]));
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
pub(super) fn mostly_stored(links: &[RawLink]) -> bool {
    links.iter().filter(|link| link.admission != Admission::New).count() * 2 > links.len()
}

/// Counts a stored chunk in the metrics (`emdp_records_ingested_total` by status and admission,
/// `emdp_duplicates_total` by kind: re-deliveries are no duplicates), one update per label set
/// rather than per row.
pub(super) fn record_metrics(rows: &[RawRow], links: &[RawLink]) {
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
    use crate::usecases::ingest::key_order::tests::row;

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
