//! The ingest's transform between classifying and storing: every row of the input, in key
//! order, with as little in memory as the chunks themselves (an external merge sort).
//!
//! Why: meter exports arrive day by day across buildings, and the stores index records by
//! building, day and provider. In input order every chunk of 50,000 rows touches one index
//! page per building, and every commit writes each of them again; in key order each chunk
//! appends to the end of the indexes. The same 1M rows into SQLite's schema, by the sqlite3
//! shell: 14.4 s in input order, 7.8 s in key order (`bench/schema_floor.sh`, BENCHMARKS.md).
//! And a chunk in key order holds few buildings, so that chunks of different buildings can be
//! written at once (PostgreSQL, `RecordStore::ingest_writers`).
//!
//! Rows are sorted in memory in runs of at most [`CHUNK_ROWS`]; when an input has more, each
//! full run is sorted and written to an anonymous temporary file (`TMPDIR`, removed by the
//! system even if the process is killed) by a thread of its own while the next is read, and
//! the runs are merged. Within a key, rows keep their input order, so duplicates are
//! resolved exactly as they would be in input order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, Write};

use super::CHUNK_ROWS;
use crate::ports::RawRow;

/// Runs merged at once; past this, the runs so far are merged into one first, so that a very
/// large input does not hold more open files than a process may (1,024 by default).
const MAX_RUNS: usize = 128;

/// Buffer per run file, for writing and for reading during the merge.
const RUN_BUFFER: usize = 64 << 10;

/// Why rows could not be sorted: a file in the temporary directory (`TMPDIR`) could not be
/// written or read back, e.g. for want of space.
#[derive(Debug, thiserror::Error)]
#[error("sorting the input by key: {source}")]
pub struct SortError {
    #[from]
    source: std::io::Error,
}

/// Collects rows, then gives them back in key order ([`KeyOrder::finish`]).
pub struct KeyOrder {
    /// Rows not yet sorted; at most [`KeyOrder::run_rows`].
    rows: Vec<RawRow>,
    /// The thread writing full runs, from the first one on.
    spiller: Option<Spiller>,
    run_rows: usize,
}

/// A sorted run in a temporary file.
struct Run {
    file: File,
    rows: u64,
}

impl KeyOrder {
    /// An empty sorter with runs of [`CHUNK_ROWS`].
    pub fn new() -> Self {
        Self::with_run_rows(CHUNK_ROWS)
    }

    fn with_run_rows(run_rows: usize) -> Self {
        KeyOrder { rows: Vec::with_capacity(run_rows.min(CHUNK_ROWS)), spiller: None, run_rows }
    }

    /// Adds a row (in input order), handing a full buffer to the thread that writes runs.
    ///
    /// The next buffer is taken once the full one is handed over: the spiller gives the one
    /// before back before it takes a new one, so it is there to fill again. Looking for it
    /// first found it still being written whenever the spiller lagged, and every run
    /// then filled a fresh buffer of some 15 MB, faulting its pages in (the kernel zeroing
    /// them: a third of the reading thread's samples in a 1M-row ingest, perf).
    pub fn push(&mut self, row: RawRow) -> Result<(), SortError> {
        if self.rows.len() == self.run_rows {
            let full = std::mem::take(&mut self.rows);
            self.spill(full)?;
            self.rows = self.recycle().unwrap_or_else(|| Vec::with_capacity(self.run_rows.min(CHUNK_ROWS)));
        }
        self.rows.push(row);
        Ok(())
    }

    /// Takes back the buffers the spiller has written, emptied here, on the thread that
    /// allocated their rows: the spiller freeing them itself (many small strings each, from
    /// another thread's heap) took half of its time, and it set the pace until the first
    /// chunk could be stored. Returns one of them for reuse.
    fn recycle(&mut self) -> Option<Vec<RawRow>> {
        emptied(&self.spiller.as_ref()?.written)
    }

    /// Hands `rows` to the spiller, started on the first run.
    fn spill(&mut self, rows: Vec<RawRow>) -> Result<(), SortError> {
        let spiller = match self.spiller.as_mut() {
            Some(spiller) => spiller,
            None => self.spiller.insert(Spiller::start()?),
        };
        if spiller.sender.send(rows).is_ok() {
            return Ok(());
        }
        // The spiller stopped, which it only does on an error: that error.
        let stopped = self.spiller.take().map(Spiller::finish);
        Err(match stopped {
            Some(Err(err)) => err,
            _ => std::io::Error::other("the sorting thread stopped").into(),
        })
    }

    /// Every row added, in key order (rows of one key in the order they were added).
    pub fn finish(mut self) -> Result<Sorted, SortError> {
        if self.spiller.is_none() {
            self.rows.sort_by(|a, b| a.key.cmp(&b.key));
            return Ok(Sorted::Memory(self.rows.into_iter()));
        }
        // The rows still in memory are the last run: written out too, so that the merge
        // holds one row per run rather than a whole chunk beside the writer's chunks.
        let last = std::mem::take(&mut self.rows);
        drop(self.recycle());
        if !last.is_empty() {
            self.spill(last)?;
        }
        let runs = self.spiller.take().map(Spiller::finish).transpose()?.unwrap_or_default();
        Ok(Sorted::Merge(Merge::new(runs)?))
    }
}

/// The buffers handed back on `returned` so far, their rows dropped on this thread (the one
/// that allocated them: freeing many small strings from another thread's heap is slow); one
/// of them, emptied, to fill again.
pub fn emptied(returned: &std::sync::mpsc::Receiver<Vec<RawRow>>) -> Option<Vec<RawRow>> {
    let mut kept = None;
    for mut rows in returned.try_iter() {
        rows.clear();
        kept.get_or_insert(rows);
    }
    kept
}

/// The thread that sorts full buffers and writes them as runs, while the reader parses and
/// classifies the next one: sorting and writing took about a third of the reading thread's
/// time (perf, 1M rows), with the machine's other core idle until the first chunk is stored.
/// A rendezvous channel: at most one buffer being written and one being filled.
/// The buffers it has written go back to the reader ([`KeyOrder::recycle`]).
struct Spiller {
    sender: std::sync::mpsc::SyncSender<Vec<RawRow>>,
    written: std::sync::mpsc::Receiver<Vec<RawRow>>,
    thread: std::thread::JoinHandle<Result<Vec<Run>, SortError>>,
}

impl Spiller {
    fn start() -> Result<Self, SortError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<RawRow>>(0);
        // Unbounded, so that the spiller never waits on the reader, which may be waiting on
        // it; the reader takes each back as it hands over the next, so they do not pile up.
        let (give_back, written) = std::sync::mpsc::channel::<Vec<RawRow>>();
        let thread = std::thread::Builder::new().name("emdp-sort".into()).spawn(move || {
            let mut runs = Vec::new();
            for rows in receiver {
                if runs.len() == MAX_RUNS {
                    let merged = Merge::new(std::mem::take(&mut runs))?;
                    runs.push(write_run(merged)?);
                }
                let order = key_order(&rows);
                runs.push(write_run(order.iter().map(|&i| Ok(&rows[i as usize])))?);
                // If the reader has gone (an error), the send fails and the rows are freed here.
                drop(give_back.send(rows));
            }
            Ok(runs)
        })?;
        Ok(Spiller { sender, written, thread })
    }

    /// Every run, in input order, once the last is written.
    fn finish(self) -> Result<Vec<Run>, SortError> {
        drop(self.sender);
        self.thread.join().unwrap_or_else(|_| Err(std::io::Error::other("the sorting thread panicked").into()))
    }
}

/// The positions of `rows` in key order; a stable sort keeps each key's rows in input order.
/// Positions, not the rows themselves: a row is a few hundred bytes, and sorting moves each
/// element many times.
fn key_order(rows: &[RawRow]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_by(|&a, &b| rows[a as usize].key.cmp(&rows[b as usize].key));
    order
}

/// Writes rows to a new temporary file and rewinds it.
fn write_run<R: std::borrow::Borrow<RawRow>>(
    rows: impl Iterator<Item = Result<R, SortError>>,
) -> Result<Run, SortError> {
    let mut out = BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile()?);
    let mut count = 0;
    for row in rows {
        bincode::serialize_into(&mut out, row?.borrow()).map_err(|err| io_error(*err))?;
        count += 1;
    }
    out.flush()?;
    let mut file = out.into_inner().map_err(|err| err.into_error())?;
    file.rewind()?;
    Ok(Run { file, rows: count })
}

/// A bincode error as the I/O error it wraps: the only kind writing and reading back our own
/// rows can meet.
fn io_error(err: bincode::ErrorKind) -> std::io::Error {
    match err {
        bincode::ErrorKind::Io(err) => err,
        other => std::io::Error::other(other.to_string()),
    }
}

/// The rows of [`KeyOrder::finish`].
pub enum Sorted {
    /// The input fitted in one run.
    Memory(std::vec::IntoIter<RawRow>),
    /// Runs merged from their files.
    Merge(Merge),
}

impl Iterator for Sorted {
    type Item = Result<RawRow, SortError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(rows) => rows.next().map(Ok),
            Sorted::Merge(merge) => merge.next(),
        }
    }
}

/// A k-way merge of sorted runs: the smallest head row of all runs, one at a time.
pub struct Merge {
    readers: Vec<(BufReader<File>, u64)>,
    heads: BinaryHeap<Head>,
}

/// The next row of one run, ordered so that [`BinaryHeap`] (a max-heap) pops the smallest
/// key first, and of equal keys the earlier run's row (earlier in the input). The row is
/// boxed, so that the heap moves a pointer and not a few hundred bytes at each of its steps.
struct Head {
    row: Box<RawRow>,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other.row.key.cmp(&self.row.key).then(other.run.cmp(&self.run))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl Merge {
    fn new(runs: Vec<Run>) -> Result<Self, SortError> {
        let mut readers: Vec<_> =
            runs.into_iter().map(|run| (BufReader::with_capacity(RUN_BUFFER, run.file), run.rows)).collect();
        let mut heads = BinaryHeap::with_capacity(readers.len());
        for (run, reader) in readers.iter_mut().enumerate() {
            if let Some(row) = read_next(reader)? {
                heads.push(Head { row: Box::new(row), run });
            }
        }
        Ok(Merge { readers, heads })
    }
}

/// The next row of a run, if it has one left.
fn read_next((reader, left): &mut (BufReader<File>, u64)) -> Result<Option<RawRow>, SortError> {
    if *left == 0 {
        return Ok(None);
    }
    *left -= 1;
    Ok(Some(bincode::deserialize_from(reader).map_err(|err| io_error(*err))?))
}

impl Iterator for Merge {
    type Item = Result<RawRow, SortError>;

    /// Takes the smallest head and puts its run's next row in its place: one step down the
    /// heap, where popping and pushing took two.
    fn next(&mut self) -> Option<Self::Item> {
        let mut head = self.heads.peek_mut()?;
        Some(match read_next(&mut self.readers[head.run]) {
            Ok(Some(next)) => Ok(std::mem::replace(&mut *head.row, next)),
            Ok(None) => Ok(*PeekMut::pop(head).row),
            Err(err) => Err(err),
        })
    }
}

/// The next chunk of rows in key order: `size` rows, then the rest of the last row's group
/// ([`crate::ports::RecordKey::group`]) up to twice `size`, so that no later chunk holds a key of it and
/// the next chunk need not wait for it (see `Ingestor::write_in_turn`). Empty at the end.
///
/// The rows go into `rows`, an empty buffer whose capacity is reused: a chunk collected into
/// a fresh vector doubled it again and again, copying the rows into fresh pages each time
/// (a quarter of the merging thread's time in a 1M-row ingest, perf).
pub fn next_chunk(
    sorted: &mut std::iter::Peekable<impl Iterator<Item = Result<RawRow, SortError>>>,
    size: usize,
    mut rows: Vec<RawRow>,
) -> Result<Vec<RawRow>, SortError> {
    debug_assert!(rows.is_empty());
    for row in sorted.by_ref().take(size) {
        rows.push(row?);
    }
    while rows.len() < 2 * size
        && let Some(last) = rows.last()
        && let Some(next) = sorted.next_if(|next| next.as_ref().is_ok_and(|next| next.key.group() == last.key.group()))
    {
        rows.push(next?);
    }
    Ok(rows)
}

/// Per row of a chunk taken by [`next_chunk`], whether its key was in no earlier chunk: in key
/// order, only rows of the group the previous chunk ended with (`previous`, a group too large
/// for one chunk) may have been.
pub fn unseen(previous: Option<&str>, rows: &[RawRow]) -> Vec<bool> {
    rows.iter().map(|row| previous != Some(row.key.group())).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use emdp_domain::{QualityStatus, ReasonSet, ValueFingerprint};

    use super::*;
    use crate::ports::{RecordFields, RecordKey};

    /// A row of building `b` on day `d` (of January 2025), read at `line`.
    pub(in crate::usecases::ingest) fn row(line: i64, b: u32, d: u32) -> RawRow {
        let date = NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
        RawRow {
            line,
            payload: format!("B{b},{date},1,2,p"),
            parse_error: (line % 7 == 0).then(|| "odd".to_owned()),
            received_at: Utc.timestamp_millis_opt(1_700_000_000_000 + line).unwrap(),
            key: if b == 0 {
                RecordKey::Content(format!("{line:032x}"))
            } else {
                RecordKey::Reading { building_id: format!("B{b}"), date, provider: "p".into() }
            },
            fields: RecordFields {
                building_id: Some(format!("B{b}")),
                // Keyless rows without a day, so that both forms go through the files.
                date: (b != 0).then_some(date),
                consumption: Some(line as f64 / 3.0),
                temperature: None,
                provider: Some("p".into()),
            },
            status: QualityStatus::Valid,
            reasons: ReasonSet::EMPTY,
            values: ValueFingerprint::from_parts([line, 0]),
            original_id: (line % 5 == 0).then(|| format!("id{line}")),
            original_created_at: None,
        }
    }

    /// Rows day by day across buildings, as meter exports come, with repeated keys.
    fn input(rows: i64) -> Vec<RawRow> {
        (0..rows).map(|line| row(line, (line % 7) as u32 % 4, (line / 7 % 28 + 1) as u32)).collect()
    }

    fn sorted(run_rows: usize, rows: &[RawRow]) -> Vec<RawRow> {
        let mut order = KeyOrder::with_run_rows(run_rows);
        for row in rows {
            order.push(row.clone()).unwrap();
        }
        order.finish().unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn rows_come_back_in_key_order_and_each_key_in_input_order() {
        let rows = input(1_000);
        let mut expected = rows.clone();
        expected.sort_by(|a, b| a.key.cmp(&b.key).then(a.line.cmp(&b.line)));
        // One run in memory; runs merged from files; more runs than are merged at once.
        for run_rows in [1_000, 64, 3] {
            assert!(sorted(run_rows, &rows) == expected, "runs of {run_rows}");
        }
    }

    #[test]
    fn an_empty_input_gives_no_rows() {
        assert!(sorted(10, &[]).is_empty());
    }

    #[test]
    fn chunks_end_with_their_last_group() {
        // Buildings 1-3 with 4, 3 and 1 rows, then two keyless rows (a group each).
        let rows = [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (3, 1), (0, 1), (0, 2)];
        let sorted = rows.iter().enumerate().map(|(line, &(b, d))| Ok(row(line as i64 + 1, b, d)));
        let mut sorted = sorted.peekable();
        let mut sizes = Vec::new();
        loop {
            let chunk = next_chunk(&mut sorted, 2, Vec::new()).unwrap();
            if chunk.is_empty() {
                break;
            }
            sizes.push(chunk.len());
        }
        // 2 rows, then the rest of building 1 up to twice 2; building 2 whole after 2 rows;
        // building 3 and a keyless row; the last keyless row.
        assert_eq!(sizes, [4, 3, 2, 1]);
    }

    #[test]
    fn a_read_error_ends_the_chunks() {
        let broken = || Err(SortError::from(std::io::Error::other("gone")));
        let mut sorted = [Ok(row(1, 1, 1)), broken()].into_iter().peekable();
        // The error ends the chunk with building 1's rows, and is the next chunk's.
        assert_eq!(next_chunk(&mut sorted, 1, Vec::new()).unwrap().len(), 1);
        assert!(next_chunk(&mut sorted, 1, Vec::new()).is_err());
    }

    #[test]
    fn only_rows_of_the_group_the_last_chunk_ended_with_may_be_seen() {
        let rows = [row(1, 1, 1), row(2, 1, 2), row(3, 2, 1), row(4, 0, 1)];
        assert_eq!(unseen(None, &rows), [true; 4]);
        assert_eq!(unseen(Some("B1"), &rows), [false, false, true, true]);
        assert_eq!(unseen(Some("B9"), &rows), [true; 4]);
    }
}
