//! The SQLite adapter: the embedded default, one file in WAL mode, no server to run.
//!
//! Each chunk is one `BEGIN IMMEDIATE` transaction on the store's own writer connection, so
//! concurrent writers queue instead of failing (see `SqliteStore::writer`). New records, raw
//! rows and their tallies are written through rusqlite statements on that connection (see
//! `sqlite_bulk`); key lookups travel as JSON (see `to_json`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{
    BatchId, IngestTx, KeyProbe, NewBatch, NewRecord, Probed, RawLink, RawRow, RecordFields, RecordId, RecordKey,
    RecordUpdate, StoreError, StoredKey,
};
use emdp_domain::{Arrival, ValueFingerprint};
use serde::Serialize;
use serde::ser::Serializer as _;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Executor, Sqlite, SqliteConnection, SqlitePool};

use crate::error::{DbResult, migrate_error, store_error};
use crate::pool::OpenOptions;
use crate::rows::{self, RecordRow, VersionRow, assemble_keys, key_columns};
use crate::sql::{Backend, Dialect, On, Stored};
use crate::sqlite_bulk;
use crate::store::{close_batch, insert_batch};
use crate::url::DatabaseUrl;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The raw and curated stores in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Key look-ups from concurrent requests, answered together (see [`batch_lookups`]).
    lookups: tokio::sync::mpsc::Sender<Lookup>,
    /// Wakes [`checkpoints`] after an ingest commit, or asks it for the final one.
    checkpoint: tokio::sync::mpsc::Sender<Checkpoint>,
    /// The connection ingest transactions write through, and whose turn it is to use it.
    ///
    /// SQLite lets one transaction write at a time; a second connection's `BEGIN IMMEDIATE`
    /// fails with `SQLITE_BUSY` and its busy handler sleeps (1 ms, then 2, 5, 10 ... 100 ms)
    /// before trying again, so writers of this process queue here instead, in arrival order,
    /// and start the moment the previous one ends (one record per `POST /api/v1/records` from
    /// 16 clients: p99 680-830 ms -> 60 ms at the same rate). Other processes (a CLI ingest
    /// beside the server) still meet the busy handler.
    ///
    /// It is a connection of its own, not one of the pool's: a pooled connection goes back to
    /// the pool on a spawned task after each transaction, and when the next chunk's
    /// transaction began before that task ran, the pool opened a second connection, and an
    /// ingest filled two 64 MB page caches (peak RSS 226 -> 326 MB).
    writer: Arc<tokio::sync::Mutex<Option<Writer>>>,
    /// How to open the writer's connection.
    options: SqliteConnectOptions,
}

/// The ingest writer's connection (see [`SqliteStore::writer`]).
#[derive(Debug)]
struct Writer {
    conn: SqliteConnection,
    /// A transaction was begun and neither committed nor rolled back (its [`SqliteIngest`]
    /// was dropped, e.g. after an error): the next user rolls it back first.
    open: bool,
}

impl Writer {
    /// Rolls back a transaction left open. SQLite may have rolled it back itself (after a
    /// full disk, say), so "no transaction is active" is not an error here.
    async fn settle(&mut self) {
        if self.open {
            let _ = self.conn.execute("ROLLBACK").await;
            self.open = false;
        }
    }
}

/// Copies committed WAL pages back into the database file, off the writer's path: an ingest
/// commits a chunk and goes on with the next one while this runs (`PASSIVE`: it never blocks
/// readers or the writer). SQLite's own checkpoint, which runs inside the commit that crosses
/// `wal_autocheckpoint`, stays as the safety net for other writers. Requests that arrive
/// while one runs are served by the next one. Ends when the store is dropped.
///
/// It has a connection of its own, opened on first use with a small page cache, rather than
/// one of the pool's: the pool hands its idle connections out in turn, and a second busy
/// connection would make an ingest fill two 64 MB page caches instead of one (peak RSS
/// 266 MB -> 388 MB measured).
///
/// The last request of a process ([`emdp_app::ports::RecordStore::close`]) asks for a
/// `TRUNCATE` checkpoint: every page into the database file and the WAL emptied, answered on
/// its channel. It goes through here so that it never meets a background checkpoint running beside it (SQLite
/// answers such a second checkpoint "busy" and does nothing).
async fn checkpoints(options: SqliteConnectOptions, mut requests: tokio::sync::mpsc::Receiver<Checkpoint>) {
    let options = options.pragma("cache_size", "-1024");
    let mut connection: Option<SqliteConnection> = None;
    while let Some(request) = requests.recv().await {
        let conn = match connection.take() {
            Some(conn) => Ok(conn),
            None => options.connect().await,
        };
        let mode = if request.is_some() { "TRUNCATE" } else { "PASSIVE" };
        let done = match conn {
            Ok(mut conn) => {
                let done =
                    sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(format!("PRAGMA wal_checkpoint({mode})")))
                        .fetch_one(&mut conn)
                        .await;
                // Kept only while it works: the next request opens a new one.
                connection = done.is_ok().then_some(conn);
                done.map(|(busy, _, _)| busy == 0)
            }
            Err(err) => Err(err),
        };
        match (request, done) {
            (Some(reply), done) => {
                let _ = reply.send(done);
            }
            // A failed checkpoint loses nothing (the pages stay in the WAL); the next one,
            // or SQLite's own, retries.
            (None, Err(err)) => tracing::warn!(error = %err, "background WAL checkpoint failed"),
            (None, Ok(_)) => {}
        }
        tokio::time::sleep(CHECKPOINT_PAUSE).await;
    }
}

/// A request to [`checkpoints`]: `None` for a background checkpoint after a commit, or the
/// final one's answer channel (whether every page was copied back, or why not).
type Checkpoint = Option<tokio::sync::oneshot::Sender<Result<bool, sqlx::Error>>>;

/// The least time between two background checkpoints. Each one syncs the database file to
/// disk; small transactions (one record per request) commit far more often than that, and
/// checkpointing after every one of them cost a fifth of their rate (1,450-1,520 -> 1,830-1,880
/// records/s with this pause). Ingest chunks commit less often than this anyway.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

/// One caller's keys, and where to send what was found.
#[derive(Debug)]
struct Lookup {
    keys: Vec<RecordKey>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<StoredKey>, StoreError>>,
}

/// Answers key look-ups in batches: while one query runs, the requests that arrive queue up
/// and the next query serves all of them. Under load (e.g. many clients calling
/// `records:validate`) this trades one hand-off to SQLite's worker thread per request for one
/// per batch, which is where a single-key look-up spends most of its time; a lone request is
/// served at once. Ends when the store is dropped.
async fn batch_lookups(pool: SqlitePool, mut queue: tokio::sync::mpsc::Receiver<Lookup>) {
    const MAX_CALLERS: usize = 256;
    while let Some(first) = queue.recv().await {
        let mut callers = vec![first];
        while callers.len() < MAX_CALLERS {
            match queue.try_recv() {
                Ok(more) => callers.push(more),
                Err(_) => break,
            }
        }
        let mut keys: Vec<RecordKey> = callers.iter().flat_map(|c| c.keys.iter().cloned()).collect();
        keys.sort();
        keys.dedup();
        let found = match pool.acquire().await.db() {
            Ok(mut conn) => load_keys(&mut conn, &keys, Ranges::Try).await,
            Err(err) => Err(err),
        };
        match found {
            Ok(found) => {
                let by_key: HashMap<&RecordKey, &StoredKey> = found.iter().map(|k| (&k.key, k)).collect();
                for caller in callers {
                    let mine = caller.keys.iter().filter_map(|k| by_key.get(k).map(|s| (*s).clone())).collect();
                    let _ = caller.reply.send(Ok(mine));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for caller in callers {
                    let _ = caller.reply.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// A time as SQLite stores it: milliseconds since the Unix epoch.
pub(crate) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// Opens the ingest writer's connection (see [`SqliteStore::writer`]), with the pool's
/// settings and functions.
async fn open_writer(options: &SqliteConnectOptions) -> Result<SqliteConnection, StoreError> {
    let mut conn = options.connect().await.db()?;
    let mut handle = conn.lock_handle().await.db()?;
    crate::sqlite_functions::register(handle.as_raw_handle().as_ptr()).map_err(StoreError::Other)?;
    drop(handle);
    // A smaller page cache than the readers' 64 MB: it bounds an ingest's memory (a re-run of
    // 1M rows peaked at 254-267 MB with 64 MB, 225 MB with 48 MB) and cost no measurable time.
    conn.execute("PRAGMA cache_size = -49152").await.db()?;
    Ok(conn)
}

/// How long a statement waits for another connection's lock before "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn options(url: &DatabaseUrl, create: bool) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url.as_str())
        .db()?
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("page_size", "16384")
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
        // Ingests checkpoint in the background after each chunk (see [`checkpoints`]); a
        // writer checkpoints inline only past 16,384 pages (256 MB of WAL).
        .pragma("wal_autocheckpoint", "16384")
        // And the WAL file shrinks back to 64 MB once checkpointed, instead of keeping its peak.
        .pragma("journal_size_limit", "67108864"))
}

/// Opens the pool on `options`, trying again while other processes are creating the same new
/// file.
///
/// A new file starts in rollback-journal mode, and the connection's `journal_mode = WAL`
/// switches it with an exclusive lock. Two processes switching it at once can each hold a
/// lock the other waits for, and SQLite then answers one of them "database is locked" at
/// once rather than after the busy timeout: one of six `emdp migrate` started together on a
/// new file failed so, 1-2 times in 600 on a loaded machine. Once the file is in WAL mode the
/// pragma takes no such lock, so the next attempt goes through.
async fn connect(options: &SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let connected = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(BUSY_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    let mut handle = conn.lock_handle().await?;
                    crate::sqlite_functions::register(handle.as_raw_handle().as_ptr())
                        .map_err(|message| sqlx::Error::Configuration(message.into()))
                })
            })
            .connect_with(options.clone())
            .await;
        match connected.db() {
            Ok(pool) => return Ok(pool),
            Err(StoreError::Conflict(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // SQLite's own message ("unable to open database file") names no file; a
            // missing directory or a read-only mount is found from the path.
            Err(StoreError::Unavailable(message)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot open the SQLite database {}: {message}",
                    options.get_filename().display()
                )));
            }
            Err(other) => return Err(other),
        }
    }
}

/// Applies pending migrations, safe against other processes doing the same.
///
/// sqlx locks the migrations of a PostgreSQL database (an advisory lock) but not of a SQLite
/// file: two processes opening a new file at once (two cron jobs, `serve` beside an `ingest`)
/// both found migration 1 pending, and the second failed with "table batches already exists"
/// once the first committed it. Each migration is one transaction, so a failed attempt left
/// nothing behind, and an attempt after it sees what the other process applied. So a failure
/// is tried again as long as some other process made progress since the previous failure
/// (more migrations applied); a migration that fails by itself makes none, and its error is
/// reported after a second attempt. Opening a file that is up to date costs no extra query.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut applied_at_last_failure = None;
    loop {
        let err = match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(err @ (MigrateError::Execute(_) | MigrateError::ExecuteMigration(..))) => err,
            Err(err) => return Err(migrate_error(err)),
        };
        let applied = applied_migrations(pool).await;
        if applied_at_last_failure.is_some_and(|before| applied <= before) {
            return Err(migrate_error(err));
        }
        tracing::debug!(error = %err, applied, "a migration failed, maybe applied by another process: trying again");
        applied_at_last_failure = Some(applied);
    }
}

/// How many migrations the file has applied (none when it has no migrations table yet).
async fn applied_migrations(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await.unwrap_or(-1)
}

impl SqliteStore {
    /// Opens the database file named by `url` (`sqlite://PATH`), creating it when missing if
    /// `options.create`, and applies pending migrations.
    pub async fn open(url: &DatabaseUrl, options: &OpenOptions) -> Result<Self, StoreError> {
        let options = self::options(url, options.create)?;
        let pool = connect(&options).await?;
        migrate(&pool).await?;
        let (lookups, queue) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(batch_lookups(pool.clone(), queue));
        let (checkpoint, requests) = tokio::sync::mpsc::channel(1);
        tokio::spawn(checkpoints(options.clone().create_if_missing(false), requests));
        Ok(SqliteStore { pool, lookups, checkpoint, writer: Arc::default(), options })
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;

    const DIALECT: Dialect = Dialect::Sqlite;
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const TALLIES: bool = true;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn close(&self) -> Result<(), StoreError> {
        // The ingest writer's own connection first, any transaction it left rolled back.
        if let Some(mut writer) = self.writer.lock().await.take() {
            writer.settle().await;
            sqlx::Connection::close(writer.conn).await.db()?;
        }
        // Every committed page into the database file, and the WAL emptied. Without it the
        // last chunks of an ingest stayed in `emdp.db-wal` after the process ended (the
        // background checkpoint runs after a commit, and SQLite checkpoints at the close of
        // the last connection only, which a process that exits does not wait for).
        let (reply, answer) = tokio::sync::oneshot::channel();
        let mut checkpointed = Ok(());
        if self.checkpoint.send(Some(reply)).await.is_ok() {
            match answer.await {
                Ok(Ok(true)) => {}
                // Nothing is lost: the pages stay in the WAL, which SQLite reads with the file.
                Ok(Ok(false)) => tracing::warn!("the final WAL checkpoint was refused: busy"),
                // Likewise (a full disk, say), but the caller says so: the file alone is not whole.
                Ok(Err(err)) => checkpointed = Err(store_error(err)),
                Err(_) => tracing::warn!("the WAL checkpoint task ended before the final checkpoint"),
            }
        }
        self.pool.close().await;
        checkpointed
    }

    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx + '_>, StoreError> {
        let mut turn = Arc::clone(&self.writer).lock_owned().await;
        let writer = match turn.as_mut() {
            Some(writer) => writer,
            None => turn.insert(Writer { conn: open_writer(&self.options).await?, open: false }),
        };
        writer.settle().await;
        writer.conn.execute("BEGIN IMMEDIATE").await.db()?;
        writer.open = true;
        let writer = tokio::sync::OwnedMutexGuard::try_map(turn, Option::as_mut)
            .map_err(|_| StoreError::Other("the ingest writer connection is not open".into()))?;
        Ok(Box::new(SqliteIngest { writer, turns: Arc::clone(&self.writer), checkpoint: self.checkpoint.clone() }))
    }

    async fn find_keys(&self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let closed = || StoreError::Unavailable("the key look-up task stopped".into());
        self.lookups.send(Lookup { keys: keys.to_vec(), reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Dates as 'YYYY-MM-DD' text, times as epoch milliseconds, booleans as 0/1, texts as given.
impl Stored for Sqlite {
    type Date = String;
    type Time = i64;
    type Bool = i64;

    fn date(date: NaiveDate) -> String {
        day_text(date)
    }

    fn time(time: DateTime<Utc>) -> i64 {
        millis(time)
    }

    fn flag(flag: bool) -> i64 {
        i64::from(flag)
    }

    fn put(text: &str) -> String {
        text.to_owned()
    }

    fn text(stored: String) -> String {
        stored
    }
}

/// One ingestion transaction on SQLite.
pub struct SqliteIngest {
    /// This process's write turn and connection, inside `BEGIN IMMEDIATE` until committed.
    writer: tokio::sync::OwnedMappedMutexGuard<Option<Writer>, Writer>,
    /// The mutex behind `writer`, for the rollback of a dropped transaction.
    turns: Arc<tokio::sync::Mutex<Option<Writer>>>,
    checkpoint: tokio::sync::mpsc::Sender<Checkpoint>,
}

impl SqliteIngest {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.writer.conn
    }
}

/// A transaction dropped without a commit is rolled back at once, on a task that holds the
/// writer until it is done, so that SQLite's write lock is not kept from other processes.
impl Drop for SqliteIngest {
    fn drop(&mut self) {
        if !self.writer.open {
            return;
        }
        let turns = Arc::clone(&self.turns);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(writer) = turns.lock().await.as_mut() {
                    writer.settle().await;
                }
            });
        }
    }
}

#[async_trait]
impl IngestTx for SqliteIngest {
    async fn insert_absent(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // In key order: consecutive inserts land on neighbouring pages of the key indexes
        // instead of one page per building and day (1M rows: 2.5 s less in SQLite alone).
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_unstable_by(|&a, &b| records[a].key.cmp(&records[b].key));
        sqlite_bulk::with_connection(self.conn(), records.len(), |db| sqlite_bulk::insert_records(db, records, &order))
            .await
    }

    async fn load_keys(&mut self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        load_keys(self.conn(), keys, Ranges::Try).await
    }

    async fn probe_keys(&mut self, probes: &[KeyProbe<'_>]) -> Result<Vec<Option<Probed>>, StoreError> {
        probe_keys(self.conn(), probes).await
    }

    async fn update_records(&mut self, updates: &[RecordUpdate]) -> Result<(), StoreError> {
        for update in updates {
            let state = &update.state;
            let [fp_consumption, fp_temperature] = state.values.to_parts();
            sqlx::query(
                "UPDATE records SET consumption = ?, temperature = ?, status = ?, reasons = ?, fp_consumption = ?, \
                 fp_temperature = ?, winner_batch = ?, winner_line = ?, versions = ?, pending = ?, updated_at = ?, \
                 building_id = ?, date = ?, provider = ?, content_key = ? WHERE id = ?",
            )
            .bind(state.fields.consumption)
            .bind(state.fields.temperature)
            .bind(state.status.as_str())
            .bind(i64::from(state.reasons.bits()))
            .bind(fp_consumption)
            .bind(fp_temperature)
            .bind(state.winner.batch)
            .bind(state.winner.line)
            .bind(state.versions)
            .bind(i64::from(state.pending))
            .bind(millis(update.updated_at))
            .bind(state.fields.building_id.as_deref())
            .bind(state.fields.date)
            .bind(state.fields.provider.as_deref())
            .bind(key_columns(&update.key).content_key)
            .bind(update.id)
            .execute(self.conn())
            .await
            .db()?;
        }
        Ok(())
    }

    async fn insert_raw(&mut self, batch: BatchId, rows: &[RawRow], links: &[RawLink]) -> Result<(), StoreError> {
        sqlite_bulk::with_connection(self.conn(), rows.len(), |db| sqlite_bulk::insert_raw(db, batch, rows, links))
            .await
    }

    async fn progress(&mut self, batch: BatchId, rows: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE batches SET rows_stored = ? WHERE id = ?")
            .bind(rows)
            .bind(batch)
            .execute(self.conn())
            .await
            .db()?;
        Ok(())
    }

    async fn create_batch(&mut self, batch: &NewBatch) -> Result<BatchId, StoreError> {
        insert_batch::<SqliteStore>(On::Conn(self.conn()), batch).await
    }

    async fn finish_batch(&mut self, batch: BatchId, rows: i64, summary: &serde_json::Value) -> Result<(), StoreError> {
        close_batch::<SqliteStore>(On::Conn(self.conn()), batch, Some(rows), summary).await.map(drop)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.conn().execute("COMMIT").await.db()?;
        self.writer.open = false;
        // Full: a checkpoint is already due and will see this commit too.
        let _ = self.checkpoint.try_send(None);
        Ok(())
    }
}

/// A day as SQLite stores it ('YYYY-MM-DD'), without `Display`'s formatting machinery: two
/// per ingested row.
pub(crate) fn day_text(date: NaiveDate) -> String {
    use chrono::Datelike;
    let year = date.year();
    if !(0..=9999).contains(&year) {
        return date.to_string();
    }
    let mut text = String::with_capacity(10);
    for (value, digits) in [(year as u32, 4), (date.month(), 2), (date.day(), 2)] {
        if digits == 2 {
            text.push('-');
        }
        for place in (0..digits).rev() {
            text.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    text
}

/// Loads stored keys with their kept versions, on any connection (in or out of a transaction).
async fn load_keys(
    conn: &mut SqliteConnection,
    keys: &[RecordKey],
    ranges: Ranges,
) -> Result<Vec<StoredKey>, StoreError> {
    let mut stored = Vec::with_capacity(keys.len());
    for part in keys.chunks(KEYS_PER_LOOKUP) {
        stored.extend(load_key_part(conn, part, ranges).await?);
    }
    Ok(stored)
}

/// Whether [`load_keys`] may read a part's reading keys as one range of the key index (see
/// [`reading_range`]), or seeks each: [`probe_keys`] loads whole only keys its range did not
/// answer, which another range would not answer either (refused as sparse, or a few records
/// with several versions scattered over it), and counting the range again is a scan of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranges {
    Try,
    Skip,
}

/// Keys per look-up statement. Each statement's answer is one JSON text, built by SQLite and
/// copied and parsed by emdp: a re-run's chunk of 60,000 stored keys in one statement held
/// about 40 MB more at once than in parts of this size.
const KEYS_PER_LOOKUP: usize = 10_000;

/// [`load_keys`] for one part of the keys.
async fn load_key_part(
    conn: &mut SqliteConnection,
    keys: &[RecordKey],
    ranges: Ranges,
) -> Result<Vec<StoredKey>, StoreError> {
    let readings: Vec<_> = keys
        .iter()
        .filter_map(|k| match k {
            RecordKey::Reading { building_id, date, provider } => Some((building_id, date, provider)),
            RecordKey::Content(_) => None,
        })
        .collect();
    let contents: Vec<_> = keys
        .iter()
        .filter_map(|k| match k {
            RecordKey::Content(hash) => Some(hash),
            RecordKey::Reading { .. } => None,
        })
        .collect();
    let mut records: Vec<RecordRow> = Vec::new();
    let found = match ranges {
        Ranges::Try => load_reading_range(conn, &readings).await?,
        Ranges::Skip => None,
    };
    if let Some(found) = found {
        records.extend(found);
    } else if !readings.is_empty() {
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT json_group_array(json_array({RECORD_JSON})) FROM jsonb_each(?) k CROSS JOIN records r \
             ON r.building_id = k.value->>0 AND r.date = k.value->>1 AND r.provider = k.value->>2 \
             AND r.content_key IS NULL"
        )))
        .bind(to_json(readings.into_iter())?)
        .fetch_one(&mut *conn)
        .await
        .db()?;
        records.extend(from_json::<Vec<RecordTuple>>(&json)?.into_iter().map(record_from_tuple));
    }
    if !contents.is_empty() {
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT json_group_array(json_array({RECORD_JSON})) FROM json_each(?) k CROSS JOIN records r \
             ON r.content_key = k.value"
        )))
        .bind(to_json(contents.into_iter())?)
        .fetch_one(&mut *conn)
        .await
        .db()?;
        records.extend(from_json::<Vec<RecordTuple>>(&json)?.into_iter().map(record_from_tuple));
    }
    let multi: Vec<RecordId> = records.iter().filter(|r| r.versions > 1).map(|r| r.id).collect();
    let mut versions = Vec::new();
    if !multi.is_empty() {
        let json: String = sqlx::query_scalar(concat!(
            "SELECT json_group_array(json_array(record_id, batch_id, line, status, reasons, fp_consumption, \
             fp_temperature, building_id, date, provider)) FROM raw_records \
             WHERE admission NOT IN ",
            repeats!(),
            " AND record_id IN (SELECT value FROM json_each(?))"
        ))
        .bind(to_json(multi.iter())?)
        .fetch_one(&mut *conn)
        .await
        .db()?;
        type VersionTuple =
            (RecordId, i64, i64, String, i64, i64, i64, Option<String>, Option<NaiveDate>, Option<String>);
        for (record_id, batch, line, status, reasons, fp_c, fp_t, building_id, date, provider) in
            from_json::<Vec<VersionTuple>>(&json)?
        {
            let (consumption, temperature) = ValueFingerprint::from_parts([fp_c, fp_t]).numbers();
            versions.push(VersionRow {
                record_id,
                arrival: Arrival { batch, line },
                status,
                reasons,
                fp: [fp_c, fp_t],
                fields: RecordFields { building_id, date, consumption, temperature, provider },
            });
        }
    }
    assemble_keys(records, versions)
}

/// The records of `readings` read as one range of the key index, when the range holds few
/// other records; `None` when it holds many (then each key is looked up on its own).
async fn load_reading_range(
    conn: &mut SqliteConnection,
    readings: &[(&String, &NaiveDate, &String)],
) -> Result<Option<Vec<RecordRow>>, StoreError> {
    let texts = range_texts(readings);
    let Some(json) = reading_range(conn, &texts, RECORD_JSON).await? else { return Ok(None) };
    // The range may hold keys not asked for: only those asked for are answered.
    let wanted: foldhash::HashSet<(&str, NaiveDate, &str)> =
        readings.iter().map(|(b, d, p)| (b.as_str(), **d, p.as_str())).collect();
    Ok(Some(
        from_json::<Vec<RecordTuple>>(&json)?
            .into_iter()
            .map(record_from_tuple)
            .filter(|r| match (&r.building_id, r.date, &r.provider) {
                (Some(b), Some(d), Some(p)) => wanted.contains(&(b.as_str(), d, p.as_str())),
                _ => false,
            })
            .collect(),
    ))
}

/// Look-ups of fewer keys than this (requests) keep their seeks (see [`reading_range`]).
const RANGE_MIN_KEYS: usize = 1_000;

/// A range is read only if it holds at most this many stored keys per key asked for (see
/// [`reading_range`]).
const RANGE_MAX_SPREAD: usize = 2;

/// Reading keys as SQLite orders the stored text: bytes of building, day as text, provider.
fn range_texts<'a>(readings: &[(&'a String, &NaiveDate, &'a String)]) -> Vec<(&'a str, String, &'a str)> {
    readings.iter().map(|(b, d, p)| (b.as_str(), day_text(**d), p.as_str())).collect()
}

/// `columns` of every record in the stretch of the key index from the least to the greatest
/// of `keys` (see [`range_texts`]), as one JSON array of arrays, when that stretch holds few
/// other records; `None` when it holds many (then each key is looked up on its own).
///
/// An ingest in key order (SQLite's) asks for a chunk's keys, which are one stretch of the
/// index, and on a re-run every one of them is stored: one range scan instead of a seek per
/// key (1M keys in parts of 10,000, the look-up statement alone in the sqlite3 module of
/// Python: 5.5 s as seeks, 2.1-2.3 s as ranges of 50,000). The range is read only when it
/// holds at most twice the keys asked for (counted on the index alone), so that keys far
/// apart (a day of every building) still take the seeks, and look-ups of fewer than 1,000
/// keys (requests) take them too. The range may hold keys not asked for: callers filter.
async fn reading_range(
    conn: &mut SqliteConnection,
    keys: &[(&str, String, &str)],
    columns: &str,
) -> Result<Option<String>, StoreError> {
    // Small look-ups (requests) keep their one statement.
    if keys.len() < RANGE_MIN_KEYS {
        return Ok(None);
    }
    let (Some(low), Some(high)) = (keys.iter().min(), keys.iter().max()) else { return Ok(None) };
    // One statement: the range is counted on the index, and read only if it is dense enough.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CASE WHEN (SELECT count(*) FROM records r WHERE {RANGE}) <= ?7 \
         THEN (SELECT json_group_array(json_array({columns})) FROM records r WHERE {RANGE}) END"
    )))
    .bind(low.0)
    .bind(&low.1)
    .bind(low.2)
    .bind(high.0)
    .bind(&high.1)
    .bind(high.2)
    .bind((RANGE_MAX_SPREAD * keys.len()) as i64)
    .fetch_one(&mut *conn)
    .await
    .db()
}

/// The records of the key index from one key to another (parameters 1-3 and 4-6: building,
/// day as text, provider).
const RANGE: &str =
    "r.content_key IS NULL AND (r.building_id, r.date, r.provider) BETWEEN (?1, ?2, ?3) AND (?4, ?5, ?6)";

/// [`IngestTx::probe_keys`] for SQLite: a re-run's chunk of reading keys is one range of the
/// key index (see [`reading_range`]), read with seven columns; a key whose record has one
/// version, equal to every probed value, is [`Probed::Exact`] (a re-run's records but the
/// conflicts). The others, and every key when the range is too sparse, are loaded whole.
///
/// Loading every key whole (15 columns as JSON, the versions of records that have several,
/// each parsed into a [`StoredKey`]) took as long as SQLite took to write the chunk's raw
/// rows, and the first run has no such work: the re-run was slower than the first run.
async fn probe_keys(conn: &mut SqliteConnection, probes: &[KeyProbe<'_>]) -> Result<Vec<Option<Probed>>, StoreError> {
    let mut found: Vec<Option<Probed>> = vec![None; probes.len()];
    let load = sqlite_bulk::with_connection(conn, probes.len(), |db| probe_ranges(db, probes, &mut found)).await?;
    if !load.is_empty() {
        let keys: Vec<RecordKey> = load.iter().map(|&position| probes[position].key.clone()).collect();
        rows::found_loaded(probes, &load, load_keys(conn, &keys, Ranges::Skip).await?, &mut found);
    }
    Ok(found)
}

/// A reading key's columns as SQLite stores them: building, day as text, provider.
type KeyBytes<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The ranges of [`probe_keys`], read row by row through rusqlite (the writer's connection,
/// see [`sqlite_bulk::with_connection`]) rather than as JSON: a re-run reads every record once
/// this way. Fills `found` with the repeated keys and returns the positions to load whole.
fn probe_ranges(
    db: &rusqlite::Connection,
    probes: &[KeyProbe<'_>],
    found: &mut [Option<Probed>],
) -> rusqlite::Result<Vec<usize>> {
    let mut count = db.prepare(&format!("SELECT count(*) FROM records r WHERE {RANGE}"))?;
    let mut read = db.prepare(&format!(
        "SELECT r.id, r.building_id, r.date, r.provider, r.versions, r.fp_consumption, r.fp_temperature, \
         r.winner_batch, r.winner_line FROM records r WHERE {RANGE}"
    ))?;
    let mut load: Vec<usize> = Vec::new();
    let positions: Vec<usize> = (0..probes.len()).collect();
    for part in positions.chunks(KEYS_PER_LOOKUP) {
        let mut readings = Vec::with_capacity(part.len());
        let mut asked = Vec::with_capacity(part.len());
        for &position in part {
            match probes[position].key {
                RecordKey::Reading { building_id, date, provider } => {
                    readings.push((building_id, date, provider));
                    asked.push(position);
                }
                RecordKey::Content(_) => load.push(position),
            }
        }
        let texts = range_texts(&readings);
        let bounds = (texts.len() >= RANGE_MIN_KEYS).then(|| texts.iter().min().zip(texts.iter().max())).flatten();
        let Some((low, high)) = bounds else {
            load.extend(asked);
            continue;
        };
        let bounds = (low.0, &low.1, low.2, high.0, &high.1, high.2);
        let stored: i64 = count.query_row(bounds, |row| row.get(0))?;
        if stored > (RANGE_MAX_SPREAD * texts.len()) as i64 {
            load.extend(asked);
            continue;
        }
        let position_of: foldhash::HashMap<KeyBytes<'_>, usize> = texts
            .iter()
            .zip(&asked)
            .map(|((b, d, p), &position)| ((b.as_bytes(), d.as_bytes(), p.as_bytes()), position))
            .collect();
        let mut rows = read.query(bounds)?;
        while let Some(row) = rows.next()? {
            let key = (row.get_ref(1)?.as_bytes()?, row.get_ref(2)?.as_bytes()?, row.get_ref(3)?.as_bytes()?);
            // The range may hold keys not asked for.
            let Some(&position) = position_of.get(&key) else { continue };
            let (versions, kept) = (row.get(4)?, ValueFingerprint::from_parts([row.get(5)?, row.get(6)?]));
            if probes[position].repeats_only_version(versions, kept) {
                let kept = Arrival { batch: row.get(7)?, line: row.get(8)? };
                found[position] = Some(Probed::Exact { record: row.get(0)?, kept });
            } else {
                load.push(position);
            }
        }
    }
    Ok(load)
}

/// Keys to look up travel to SQLite as one JSON array per statement, read with `jsonb_each`,
/// and lookups come back as one JSON array: one parameter and one result row instead of
/// thousands, so the work stays in SQLite's C code. Writes do not (see `sqlite_bulk`).
/// (SQLite 3.51 parses JSON numbers exactly; its JSON *output* of floats is not exact, so
/// values read back this way travel as integers: fingerprints hold the exact bits of parsed
/// numbers.)
fn to_json<T: Serialize>(items: impl Iterator<Item = T>) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(1 << 20);
    let mut seq = serde_json::Serializer::new(&mut out);
    seq.collect_seq(items).map_err(|e| StoreError::Other(format!("cannot encode rows: {e}")))?;
    String::from_utf8(out).map_err(|e| StoreError::Other(e.to_string()))
}

fn from_json<'a, T: serde::Deserialize<'a>>(json: &'a str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Other(format!("cannot decode rows from SQLite: {e}")))
}

/// The record columns `load_keys` reads back as JSON (integers and text only: exact).
const RECORD_JSON: &str = "r.id, r.building_id, r.date, r.provider, r.content_key, r.status, r.reasons, \
     r.fp_consumption, r.fp_temperature, r.winner_batch, r.winner_line, r.versions, r.pending, r.created_at, \
     r.updated_at";

type RecordTuple = (
    RecordId,
    Option<String>,
    Option<NaiveDate>,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

fn record_from_tuple(t: RecordTuple) -> RecordRow {
    let (
        id,
        building_id,
        date,
        provider,
        content_key,
        status,
        reasons,
        fp_c,
        fp_t,
        batch,
        line,
        versions,
        pending,
        created,
        updated,
    ) = t;
    let (consumption, temperature) = ValueFingerprint::from_parts([fp_c, fp_t]).numbers();
    RecordRow {
        id,
        building_id,
        date,
        provider,
        content_key,
        consumption,
        temperature,
        status,
        reasons,
        fp: [fp_c, fp_t],
        winner: Arrival { batch, line },
        versions,
        pending: pending != 0,
        created_at: rows::from_millis(created),
        updated_at: rows::from_millis(updated),
        exact_duplicates: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_text_writes_what_display_writes() {
        let days = [(2025, 12, 31), (2024, 2, 29), (1, 1, 1), (0, 1, 1), (9999, 12, 31), (10000, 1, 1), (-1, 6, 15)];
        for (year, month, day) in days {
            let date = NaiveDate::from_ymd_opt(year, month, day).unwrap();
            assert_eq!(day_text(date), date.to_string());
        }
    }
}
