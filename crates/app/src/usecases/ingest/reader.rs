//! The ingest's reader stage: on a blocking thread, read the source, classify each row, put
//! the rows in key order (`key_order`) and send them to the writer in chunks, one at a time.

use std::sync::Arc;

use emdp_domain::RuleSet;

use super::key_order::{self, SortError};
use super::{CHUNK_ROWS, IngestError, classify};
use crate::ports::{Clock, RawRow, ReadError, RecordSource};

/// The reader stage once started: the chunks it sends, the channel their rows go back by once
/// stored, and its task.
pub(super) struct Reader {
    /// The chunks, in key order; closed after the last.
    pub chunks: tokio::sync::mpsc::Receiver<Chunk>,
    /// Stored chunks' rows go back to the reader, which frees them on the thread that
    /// allocated them and fills the emptied vector again (see `key_order::next_chunk`).
    pub give_back: std::sync::mpsc::Sender<Vec<RawRow>>,
    /// The reading thread: its error, if it stopped on one.
    pub task: tokio::task::JoinHandle<Result<(), IngestError>>,
}

/// Starts reading `source` on a blocking thread, classifying rows with `rules` and `clock`,
/// in chunks sized for `writers` writers.
pub(super) fn spawn(
    mut source: Box<dyn RecordSource + Send>,
    rules: Arc<RuleSet>,
    clock: Arc<dyn Clock>,
    writers: usize,
) -> Reader {
    // The whole input is read and put in key order first (see `key_order`); then the
    // reader sends a chunk and waits for the writer to take it before it goes on.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Chunk>(1);
    let (give_back, given_back) = std::sync::mpsc::channel::<Vec<RawRow>>();
    let mut chunks =
        Chunks { sender, runtime: tokio::runtime::Handle::current(), header: None, last_group: None, read: None };
    let task = tokio::task::spawn_blocking(move || -> Result<(), IngestError> {
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
    Reader { chunks: receiver, give_back, task }
}

/// A chunk of rows, from the reader thread to the writer.
pub(super) struct Chunk {
    /// The input's header, with the first chunk only.
    pub header: Option<String>,
    /// Its rows, in key order.
    pub rows: Vec<RawRow>,
    /// Per row, whether its key was in no earlier chunk (for [`crate::ports::IngestTx::insert_unseen`]).
    pub unseen: Vec<bool>,
    /// The rows of the whole input, when it was read before the first chunk was sent.
    pub read: Option<u64>,
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
