//! The PostgreSQL adapter: production and scale.
//!
//! Bulk writes use `COPY ... FROM STDIN` in PostgreSQL's binary format (exact floats, nothing
//! to escape), built in a reusable buffer and sent in large pieces. New records are copied
//! into a per-connection temporary staging table and moved into `records` with
//! `INSERT ... ON CONFLICT DO NOTHING` (one statement), so that a concurrent ingest of the same
//! keys waits for the other transaction and then skips its keys instead of failing. Keys are staged and
//! records updated in a fixed order (key order, id order), so concurrent ingests lock rows in
//! the same order and do not deadlock each other.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use emdp_app::ports::{
    BatchId, IngestTx, KeyProbe, NewBatch, NewRecord, Probed, RawLink, RawRow, RecordFields, RecordId, RecordKey,
    RecordUpdate, StoreError, StoredKey,
};
use emdp_domain::{Arrival, ValueFingerprint};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgCopyIn, PgPoolOptions, PgRow};
use sqlx::{Connection, Executor, PgPool, Postgres, Row, Transaction};

use crate::error::{DbResult, migrate_error, store_error};
use crate::pool::OpenOptions;
use crate::rows::{self, RecordRow, VersionRow, assemble_keys, key_columns};
use crate::sql::{Backend, Dialect, On, Stored};
use crate::store::{close_batch, insert_batch};
use crate::url::DatabaseUrl;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Batches of at least this many rows are followed by `VACUUM (ANALYZE)` (see `finish_batch`).
const BULK_LOAD_ROWS: i64 = 100_000;

/// The staging table new records are copied into, created once per connection. It has no id
/// (the records' sequence assigns ids on the move) and an `ord` column that fixes the order
/// in which keys are inserted.
const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE emdp_staged_records (\
     ord BIGINT NOT NULL, building_id TEXT, date DATE, provider TEXT, content_key TEXT, \
     consumption DOUBLE PRECISION, temperature DOUBLE PRECISION, status TEXT NOT NULL, reasons INTEGER NOT NULL, \
     fp_consumption BIGINT NOT NULL, fp_temperature BIGINT NOT NULL, winner_batch BIGINT NOT NULL, \
     winner_line BIGINT NOT NULL, versions INTEGER NOT NULL, pending BOOLEAN NOT NULL, \
     created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL) ON COMMIT DELETE ROWS";

/// The columns of a staged record (`ord` first) or of a record copied in (`id` first), in the
/// order [`CopyBuffer::staged_record`] and [`CopyBuffer::record`] send them.
const STAGED_COLUMNS: i16 = 17;

const COPY_STAGED: &str = "COPY emdp_staged_records (ord, building_id, date, provider, content_key, consumption, \
     temperature, status, reasons, fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, \
     created_at, updated_at) FROM STDIN (FORMAT binary)";

/// Copies records with ids of their own straight into `records` (see
/// [`PgIngest::insert_unseen`]); the columns [`CopyBuffer::record`] sends.
const COPY_RECORDS: &str = "COPY records (id, building_id, date, provider, content_key, consumption, temperature, \
     status, reasons, fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, \
     updated_at) FROM STDIN (FORMAT binary)";

/// Draws `$1` ids from the records' sequence, as one array: one value to send and decode
/// instead of a row per id.
const DRAW_IDS: &str = "SELECT array_agg(nextval('records_id_seq')) FROM generate_series(1, $1)";

/// Moves the staged records into `records`, in staging order, skipping keys already stored.
/// Each kind of key names its own unique index as the arbiter, so that only that index is
/// checked before inserting.
const MOVE_STAGED: &str = "WITH readings AS (\
     INSERT INTO records (building_id, date, provider, content_key, consumption, temperature, status, reasons, \
     fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at) \
     SELECT building_id, date, provider, content_key, consumption, temperature, status, reasons, fp_consumption, \
     fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at \
     FROM emdp_staged_records WHERE content_key IS NULL ORDER BY ord \
     ON CONFLICT (building_id, date, provider) WHERE content_key IS NULL DO NOTHING \
     RETURNING id, building_id, date, provider, content_key), \
     contents AS (\
     INSERT INTO records (building_id, date, provider, content_key, consumption, temperature, status, reasons, \
     fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at) \
     SELECT building_id, date, provider, content_key, consumption, temperature, status, reasons, fp_consumption, \
     fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at \
     FROM emdp_staged_records WHERE content_key IS NOT NULL ORDER BY ord \
     ON CONFLICT (content_key) WHERE content_key IS NOT NULL DO NOTHING \
     RETURNING id, building_id, date, provider, content_key) \
     SELECT * FROM readings UNION ALL SELECT * FROM contents";

/// The columns of a raw row, in the order [`PgIngest::insert_raw`] sends them.
const RAW_COLUMNS: i16 = 18;

const COPY_RAW: &str = "COPY raw_records (batch_id, line, received_at, payload, parse_error, record_id, admission, \
     status, reasons, building_id, date, provider, consumption, temperature, fp_consumption, fp_temperature, \
     original_id, original_created_at) FROM STDIN (FORMAT binary)";

/// `SELECT columns` of the stored records of stretches of the key index ([`Stretch`], bound by
/// [`bind_stretches`]): per building and provider, the days from `first` to `last`. The lateral
/// subqueries make every stretch one range scan of the key index whatever the planner believes
/// about the table's size (its statistics lag behind bulk loads, and a scan of the whole table
/// per chunk is what they would otherwise cost): `ORDER BY` with a `LIMIT` keeps it on the
/// index, and the limit is the most a stretch can hold (one record per day), so it never cuts
/// one short.
macro_rules! stretches_select {
    ($columns:literal) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM UNNEST($1::text[], $2::text[], $3::date[], $4::date[]) AS q (building_id, provider, first, last) \
             CROSS JOIN LATERAL (SELECT * FROM records r WHERE r.building_id = q.building_id AND r.date >= q.first \
             AND r.date <= q.last AND r.provider = q.provider AND r.content_key IS NULL \
             ORDER BY r.date LIMIT (q.last - q.first + 1)) AS r"
        )
    };
}

/// Reads stored records by key, whole, a stretch of the key index at a time.
const LOAD_READINGS: &str = stretches_select!(
    "r.id, r.building_id, r.date, r.provider, r.content_key, r.consumption, r.temperature, r.status, r.reasons, \
     r.fp_consumption, r.fp_temperature, r.winner_batch, r.winner_line, r.versions, r.pending, r.created_at, \
     r.updated_at"
);

/// Reads what [`PgIngest::probe_keys`] needs of stored records, a stretch of the key index at
/// a time: the key, the id, the number of versions, the kept value's fingerprint and arrival.
const PROBE_READINGS: &str = stretches_select!(
    "r.id, r.building_id, r.date, r.provider, r.versions, r.fp_consumption, r.fp_temperature, r.winner_batch, \
     r.winner_line"
);

const LOAD_CONTENTS: &str = "SELECT r.id, r.building_id, r.date, r.provider, r.content_key, r.consumption, \
     r.temperature, r.status, r.reasons, r.fp_consumption, r.fp_temperature, r.winner_batch, r.winner_line, \
     r.versions, r.pending, r.created_at, r.updated_at FROM UNNEST($1::text[]) AS k (content_key) \
     CROSS JOIN LATERAL (SELECT * FROM records r WHERE r.content_key = k.content_key AND r.content_key IS NOT NULL \
     LIMIT 1) AS r";

/// Reads the kept versions of records, one probe of the record index per record (`OFFSET 0`
/// keeps the planner from turning the probes into a scan of the whole raw store).
const LOAD_VERSIONS: &str = concat!(
    "SELECT x.record_id, x.batch_id, x.line, x.status, x.reasons, x.fp_consumption, \
     x.fp_temperature, x.building_id, x.date, x.provider, x.consumption, x.temperature \
     FROM UNNEST($1::bigint[]) AS k (id) CROSS JOIN LATERAL (SELECT * FROM raw_records x \
     WHERE x.record_id = k.id AND x.admission NOT IN ",
    repeats!(),
    " OFFSET 0) AS x"
);

const UPDATE_RECORDS: &str = "UPDATE records r SET consumption = u.consumption, temperature = u.temperature, \
     status = u.status, reasons = u.reasons, fp_consumption = u.fp_consumption, fp_temperature = u.fp_temperature, \
     winner_batch = u.winner_batch, winner_line = u.winner_line, versions = u.versions, pending = u.pending, \
     updated_at = u.updated_at, building_id = u.building_id, date = u.date, provider = u.provider, \
     content_key = u.content_key \
     FROM UNNEST($1::bigint[], $2::float8[], $3::float8[], $4::text[], $5::integer[], $6::bigint[], $7::bigint[], \
     $8::bigint[], $9::bigint[], $10::integer[], $11::boolean[], $12::timestamptz[], $13::text[], $14::date[], \
     $15::text[], $16::text[]) AS u (id, consumption, temperature, status, reasons, fp_consumption, fp_temperature, \
     winner_batch, winner_line, versions, pending, updated_at, building_id, date, provider, content_key) \
     WHERE r.id = u.id";

/// COPY data is sent whenever this much is buffered.
const SEND_BYTES: usize = 2 << 20;

/// The raw and curated stores in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database named by `url` (`postgres://USER@HOST/DB`) and applies
    /// pending migrations; requests wait for a connection at most `options.acquire_timeout`.
    pub async fn open(url: &DatabaseUrl, options: &OpenOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url.as_str()).db()?.application_name("emdp");
        // One direct connection first: the pool would retry an unreachable server until its
        // acquire timeout and then report only that it timed out.
        match PgConnection::connect_with(&connect).await {
            Ok(probe) => probe.close().await.db()?,
            Err(err) => {
                return Err(match crate::pool::unreachable_reason(&err) {
                    Some(_) => StoreError::Unavailable(crate::pool::cannot_connect(&url.to_string(), &err)),
                    None => store_error(err),
                });
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(CREATE_STAGING).await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .db()?;
        MIGRATOR.run(&pool).await.map_err(migrate_error)?;
        Ok(PostgresStore { pool })
    }
}

/// A reading key as a look-up holds it: building, day, provider.
type Reading<'a> = (&'a str, NaiveDate, &'a str);

/// Consecutive days of one building and provider that a look-up asks for, read as one range
/// of the key index ([`LOAD_READINGS`]). A chunk holds runs of a building's days (exports come
/// day by day across buildings), which a range reads faster than a probe per key.
#[derive(Debug, PartialEq)]
struct Stretch<'a> {
    building: &'a str,
    provider: &'a str,
    first: NaiveDate,
    last: NaiveDate,
}

impl<'a> Stretch<'a> {
    /// The most days between two asked days of one stretch: at most every other day is not
    /// asked for, so a stretch reads at most twice the records asked for. Days further apart
    /// start a stretch of their own (an outlying date, a sparse look-up: a probe each).
    const MAX_STEP: i64 = 2;

    /// Splits reading keys into stretches, in key order (neighbouring ranges of the key index
    /// touch neighbouring pages).
    fn split(readings: &[Reading<'a>]) -> Vec<Stretch<'a>> {
        let mut sorted = readings.to_vec();
        sorted.sort_unstable_by(|a, b| (a.0, a.2, a.1).cmp(&(b.0, b.2, b.1)));
        let mut stretches: Vec<Stretch<'a>> = Vec::new();
        for (building, date, provider) in sorted {
            match stretches.last_mut() {
                Some(last)
                    if last.building == building
                        && last.provider == provider
                        && (date - last.last).num_days() <= Self::MAX_STEP =>
                {
                    last.last = date;
                }
                _ => stretches.push(Stretch { building, provider, first: date, last: date }),
            }
        }
        stretches
    }
}

/// A statement of [`stretches_select!`] with its stretches bound, as four parallel arrays.
fn bind_stretches(
    sql: &'static str,
    stretches: &[Stretch<'_>],
) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
    let (mut buildings, mut providers, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for stretch in stretches {
        buildings.push(escape(stretch.building).into_owned());
        providers.push(escape(stretch.provider).into_owned());
        firsts.push(stretch.first);
        lasts.push(stretch.last);
    }
    sqlx::query(sql).bind(buildings).bind(providers).bind(firsts).bind(lasts)
}

#[async_trait]
impl Backend for PostgresStore {
    type Db = Postgres;

    const DIALECT: Dialect = Dialect::Postgres;
    /// Room to sort and hash in memory (PostgreSQL's default 4 MB `work_mem` spills the sorts
    /// of a million records to disk), no JIT compilation (it costs 100-200 ms per statement
    /// and these scans finish before it pays off), and the random page cost of an SSD or a
    /// cached table (1.1 instead of 4): with the default, the planner's choice between reading
    /// VALID records in order from their index and sorting a full scan flipped on small
    /// differences in statistics (completeness 1.2 s or 1.7 s).
    const REPORT_SETTINGS: &'static [&'static str] =
        &["SET LOCAL work_mem = '128MB'", "SET LOCAL jit = off", "SET LOCAL random_page_cost = 1.1"];

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Two: while one chunk's transaction is in the server's hands, the next one's is
    /// prepared and sent on another connection, and the server's two backends work at once.
    fn ingest_writers(&self) -> usize {
        PG_INGEST_WRITERS
    }

    async fn batch_finished(&self, stored: i64) -> Result<(), StoreError> {
        // After a bulk load, refresh the planner's statistics and the visibility map at once
        // rather than whenever autovacuum comes by: without statistics the report's plans
        // sort instead of reading indexes in order, and without the visibility map its
        // index-only scans visit the table (1M rows: report 1.8 s -> 1.3 s, for 0.5-1 s here).
        // One table per connection, at once: a VACUUM runs in one backend, and the two tables
        // take about as long each (0.70 s for both in one statement after a 1M-row ingest).
        if stored >= BULK_LOAD_ROWS {
            let vacuum = |table: &'static str| async move {
                let sql = sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {table}"));
                sqlx::query(sql).execute(&self.pool).await.db()
            };
            tokio::try_join!(vacuum("records"), vacuum("raw_records"))?;
        }
        Ok(())
    }

    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx + '_>, StoreError> {
        let tx = crate::pool::begin(&self.pool, |pool| pool.begin()).await?;
        Ok(Box::new(PgIngest { tx, buffer: CopyBuffer::default(), staged: false }))
    }
}

/// `DATE`, `TIMESTAMPTZ`, `BOOLEAN`, texts NUL-escaped (see [`escape`]).
impl Stored for Postgres {
    type Date = NaiveDate;
    type Time = DateTime<Utc>;
    type Bool = bool;

    fn date(date: NaiveDate) -> NaiveDate {
        date
    }

    fn time(time: DateTime<Utc>) -> DateTime<Utc> {
        time
    }

    fn flag(flag: bool) -> bool {
        flag
    }

    fn put(text: &str) -> String {
        escape(text).into_owned()
    }

    fn text(stored: String) -> String {
        unescape(stored)
    }
}

fn record_row(row: &PgRow) -> Result<RecordRow, sqlx::Error> {
    Ok(RecordRow {
        id: row.try_get(0)?,
        building_id: unescape_opt(row.try_get(1)?),
        date: row.try_get(2)?,
        provider: unescape_opt(row.try_get(3)?),
        content_key: row.try_get(4)?,
        consumption: row.try_get(5)?,
        temperature: row.try_get(6)?,
        status: row.try_get(7)?,
        reasons: i64::from(row.try_get::<i32, _>(8)?),
        fp: [row.try_get(9)?, row.try_get(10)?],
        winner: Arrival { batch: row.try_get(11)?, line: row.try_get(12)? },
        versions: i64::from(row.try_get::<i32, _>(13)?),
        pending: row.try_get(14)?,
        created_at: row.try_get(15)?,
        updated_at: row.try_get(16)?,
        exact_duplicates: row.try_get::<Option<i64>, _>(17).ok().flatten().unwrap_or(0),
    })
}

fn version_row(row: &PgRow) -> Result<VersionRow, sqlx::Error> {
    Ok(VersionRow {
        record_id: row.try_get(0)?,
        arrival: Arrival { batch: row.try_get(1)?, line: row.try_get(2)? },
        status: row.try_get(3)?,
        reasons: i64::from(row.try_get::<i32, _>(4)?),
        fp: [
            row.try_get::<Option<i64>, _>(5)?.unwrap_or_default(),
            row.try_get::<Option<i64>, _>(6)?.unwrap_or_default(),
        ],
        fields: RecordFields {
            building_id: unescape_opt(row.try_get(7)?),
            date: row.try_get(8)?,
            provider: unescape_opt(row.try_get(9)?),
            consumption: row.try_get(10)?,
            temperature: row.try_get(11)?,
        },
    })
}

/// A count stored in an `INTEGER` column.
fn to_int4(value: i64, what: &str) -> Result<i32, StoreError> {
    i32::try_from(value).map_err(|_| StoreError::Other(format!("{what} {value} does not fit the database column")))
}

/// Days from the Common Era to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS_FROM_CE: i32 = 730_120;

/// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01T00:00:00Z.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// PostgreSQL's `TEXT` cannot hold NUL (U+0000), which SQLite and the input formats allow
/// (an identifier or a payload may contain one). Every text this adapter stores goes through
/// [`escape`] and every text it reads back through [`unescape`]: NUL is stored as U+E000 `0`
/// and U+E000 (a private-use character) as U+E000 `e`. The mapping is injective, so keys
/// stay unique and equality (the key index, filters) works on the escaped form; texts
/// without either character (all real data) are stored unchanged.
const ESCAPE: char = '\u{E000}';

/// A text as stored (see [`ESCAPE`]).
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    // 0xEE is the first byte of U+E000 in UTF-8; most texts have neither byte.
    if !text.bytes().any(|b| b == 0 || b == 0xEE) || !text.contains(['\0', ESCAPE]) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\0' => out.extend([ESCAPE, '0']),
            ESCAPE => out.extend([ESCAPE, 'e']),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn escape_opt(text: Option<&str>) -> Option<String> {
    text.map(|text| escape(text).into_owned())
}

/// A stored text as it was received (see [`ESCAPE`]).
pub(crate) fn unescape(text: String) -> String {
    if !text.contains(ESCAPE) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('e') => out.push(ESCAPE),
            // Not written by `escape` (e.g. edited by hand): kept as it is.
            Some(other) => out.extend([ESCAPE, other]),
            None => out.push(ESCAPE),
        }
    }
    out
}

fn unescape_opt(text: Option<String>) -> Option<String> {
    text.map(unescape)
}

/// Data for `COPY ... FROM STDIN (FORMAT binary)`: a signature, then per row its field count
/// and each field as a big-endian length (-1 for NULL) and the value's binary form.
#[derive(Default)]
struct CopyBuffer {
    bytes: Vec<u8>,
}

impl CopyBuffer {
    /// Starts a COPY stream: the signature, no flags, no header extension.
    fn start(&mut self) {
        self.bytes.clear();
        self.bytes.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        self.bytes.extend_from_slice(&0i32.to_be_bytes());
        self.bytes.extend_from_slice(&0i32.to_be_bytes());
    }

    /// Ends a COPY stream.
    fn end(&mut self) {
        self.bytes.extend_from_slice(&(-1i16).to_be_bytes());
    }

    fn row(&mut self, fields: i16) {
        self.bytes.extend_from_slice(&fields.to_be_bytes());
    }

    fn null(&mut self) {
        self.bytes.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn fixed<const N: usize>(&mut self, value: [u8; N]) {
        self.bytes.extend_from_slice(&(N as i32).to_be_bytes());
        self.bytes.extend_from_slice(&value);
    }

    /// A `TEXT`, NUL-escaped (see [`escape`]).
    fn text(&mut self, value: &str) -> Result<(), StoreError> {
        let value = escape(value);
        let len = i32::try_from(value.len())
            .map_err(|_| StoreError::Other(format!("a text of {} bytes is too long to store", value.len())))?;
        self.bytes.extend_from_slice(&len.to_be_bytes());
        self.bytes.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn opt_text(&mut self, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.text(value),
            None => {
                self.null();
                Ok(())
            }
        }
    }

    fn int4(&mut self, value: i32) {
        self.fixed(value.to_be_bytes());
    }

    fn int8(&mut self, value: i64) {
        self.fixed(value.to_be_bytes());
    }

    fn opt_int8(&mut self, value: Option<i64>) {
        match value {
            Some(value) => self.int8(value),
            None => self.null(),
        }
    }

    /// A `DOUBLE PRECISION`: its IEEE 754 bits, so every value round-trips exactly.
    fn opt_float8(&mut self, value: Option<f64>) {
        match value {
            Some(value) => self.fixed(value.to_bits().to_be_bytes()),
            None => self.null(),
        }
    }

    fn bool(&mut self, value: bool) {
        self.fixed([u8::from(value)]);
    }

    /// A `DATE`: days since 2000-01-01.
    fn opt_date(&mut self, value: Option<NaiveDate>) {
        match value {
            Some(date) => self.int4(date.num_days_from_ce() - PG_EPOCH_DAYS_FROM_CE),
            None => self.null(),
        }
    }

    /// A `TIMESTAMPTZ`: microseconds since 2000-01-01T00:00:00Z.
    fn time(&mut self, value: DateTime<Utc>) {
        self.int8(value.timestamp_micros() - PG_EPOCH_UNIX_MICROS);
    }

    fn opt_time(&mut self, value: Option<DateTime<Utc>>) {
        match value {
            Some(time) => self.time(time),
            None => self.null(),
        }
    }

    /// A row of the staging table: `ord`, then the record's columns.
    fn staged_record(&mut self, ord: i64, record: &NewRecord) -> Result<(), StoreError> {
        self.row(STAGED_COLUMNS);
        self.int8(ord);
        self.record_columns(record)
    }

    /// A row of `records` (see [`COPY_RECORDS`]): `id`, then the record's columns.
    fn record(&mut self, id: RecordId, record: &NewRecord) -> Result<(), StoreError> {
        self.row(STAGED_COLUMNS);
        self.int8(id);
        self.record_columns(record)
    }

    /// The columns of a record after the first (`ord` or `id`), as the staging table and
    /// `records` order them.
    fn record_columns(&mut self, record: &NewRecord) -> Result<(), StoreError> {
        let key = key_columns(&record.key);
        let state = &record.state;
        let [fp_consumption, fp_temperature] = state.values.to_parts();
        self.opt_text(state.fields.building_id.as_deref().or(key.building_id))?;
        self.opt_date(state.fields.date.or(key.date));
        self.opt_text(state.fields.provider.as_deref().or(key.provider))?;
        self.opt_text(key.content_key)?;
        self.opt_float8(state.fields.consumption);
        self.opt_float8(state.fields.temperature);
        self.text(state.status.as_str())?;
        self.int4(i32::from(state.reasons.bits()));
        self.int8(fp_consumption);
        self.int8(fp_temperature);
        self.int8(state.winner.batch);
        self.int8(state.winner.line);
        self.int4(to_int4(state.versions, "a version count")?);
        self.bool(state.pending);
        self.time(record.created_at);
        self.time(record.created_at);
        Ok(())
    }

    fn raw_row(&mut self, batch: BatchId, raw: &RawRow, link: &RawLink) -> Result<(), StoreError> {
        // Repeats of a kept version are linked to their record; only versions keep typed values.
        let version = link.admission.keeps_version();
        let fields = if version { &raw.fields } else { &RecordFields::default() };
        let [fp_consumption, fp_temperature] = raw.values.to_parts();
        self.row(RAW_COLUMNS);
        self.int8(batch);
        self.int8(raw.line);
        self.time(raw.received_at);
        self.text(&raw.payload)?;
        self.opt_text(raw.parse_error.as_deref())?;
        self.int8(link.record_id);
        self.text(link.admission.as_str())?;
        self.text(raw.status.as_str())?;
        self.int4(i32::from(raw.reasons.bits()));
        self.opt_text(fields.building_id.as_deref())?;
        self.opt_date(fields.date);
        self.opt_text(fields.provider.as_deref())?;
        self.opt_float8(fields.consumption);
        self.opt_float8(fields.temperature);
        self.opt_int8(version.then_some(fp_consumption));
        self.opt_int8(version.then_some(fp_temperature));
        self.opt_text(raw.original_id.as_deref())?;
        self.opt_time(raw.original_created_at);
        Ok(())
    }
}

/// Streams `items` through `COPY` (the statement `copy`), encoding each with `encode` into
/// `buffer` and sending it whenever [`SEND_BYTES`] are buffered.
async fn copy_rows<T>(
    conn: &mut PgConnection,
    copy: &str,
    buffer: &mut CopyBuffer,
    items: impl IntoIterator<Item = T>,
    mut encode: impl FnMut(&mut CopyBuffer, T) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stream = conn.copy_in_raw(copy).await.db()?;
    buffer.start();
    for item in items {
        if let Err(err) = encode(buffer, item) {
            return abort(stream, err).await;
        }
        if buffer.bytes.len() >= SEND_BYTES {
            stream.send(buffer.bytes.as_slice()).await.db()?;
            buffer.bytes.clear();
        }
    }
    buffer.end();
    stream.send(buffer.bytes.as_slice()).await.db()?;
    buffer.bytes.clear();
    stream.finish().await.db()?;
    Ok(())
}

/// Batches up to this many rows are written with one `INSERT ... SELECT FROM UNNEST` instead of
/// `COPY`. A small `COPY` costs ~40 ms on TCP: its last data message and `CopyDone` are two small
/// writes, and the second waits for the first's delayed ACK (Nagle; sqlx does not set
/// `TCP_NODELAY`). Single records from the API and MQTT batches are small.
const SMALL_BATCH: usize = 256;

/// The raw rows of a small batch, in one statement (see [`SMALL_BATCH`]).
async fn insert_raw_small(
    conn: &mut PgConnection,
    batch: BatchId,
    rows: &[RawRow],
    links: &[RawLink],
) -> Result<(), StoreError> {
    let n = rows.len();
    let (mut line, mut received_at, mut payload, mut parse_error) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut record_id, mut admission, mut status, mut reasons) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut building_id, mut date, mut provider, mut consumption, mut temperature) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut fp_consumption, mut fp_temperature, mut original_id, mut original_created_at) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (raw, link) in rows.iter().zip(links) {
        // Repeats of a kept version are linked to their record; only versions keep typed values.
        let version = link.admission.keeps_version();
        let fields = if version { &raw.fields } else { &RecordFields::default() };
        let [fp_c, fp_t] = raw.values.to_parts();
        line.push(raw.line);
        received_at.push(raw.received_at);
        payload.push(escape(&raw.payload).into_owned());
        parse_error.push(escape_opt(raw.parse_error.as_deref()));
        record_id.push(link.record_id);
        admission.push(link.admission.as_str());
        status.push(raw.status.as_str());
        reasons.push(i32::from(raw.reasons.bits()));
        building_id.push(escape_opt(fields.building_id.as_deref()));
        date.push(fields.date);
        provider.push(escape_opt(fields.provider.as_deref()));
        consumption.push(fields.consumption);
        temperature.push(fields.temperature);
        fp_consumption.push(version.then_some(fp_c));
        fp_temperature.push(version.then_some(fp_t));
        original_id.push(escape_opt(raw.original_id.as_deref()));
        original_created_at.push(raw.original_created_at);
    }
    sqlx::query(
        "INSERT INTO raw_records (batch_id, line, received_at, payload, parse_error, record_id, admission, status, \
         reasons, building_id, date, provider, consumption, temperature, fp_consumption, fp_temperature, \
         original_id, original_created_at) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::bigint[], \
         $7::text[], $8::text[], $9::integer[], $10::text[], $11::date[], $12::text[], $13::float8[], \
         $14::float8[], $15::bigint[], $16::bigint[], $17::text[], $18::timestamptz[])",
    )
    .bind(batch)
    .bind(line)
    .bind(received_at)
    .bind(payload)
    .bind(parse_error)
    .bind(record_id)
    .bind(admission)
    .bind(status)
    .bind(reasons)
    .bind(building_id)
    .bind(date)
    .bind(provider)
    .bind(consumption)
    .bind(temperature)
    .bind(fp_consumption)
    .bind(fp_temperature)
    .bind(original_id)
    .bind(original_created_at)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// The new records of a small batch into the staging table, in `order` (see [`SMALL_BATCH`]).
async fn stage_small(conn: &mut PgConnection, records: &[NewRecord], order: &[usize]) -> Result<(), StoreError> {
    let n = records.len();
    let (mut ord, mut building_id, mut date, mut provider, mut content_key) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut consumption, mut temperature, mut status, mut reasons) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut fp_consumption, mut fp_temperature, mut winner_batch, mut winner_line) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut versions, mut pending, mut created_at) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (position, &i) in order.iter().enumerate() {
        let record = &records[i];
        let key = key_columns(&record.key);
        let state = &record.state;
        let [fp_c, fp_t] = state.values.to_parts();
        ord.push(position as i64);
        building_id.push(escape_opt(state.fields.building_id.as_deref().or(key.building_id)));
        date.push(state.fields.date.or(key.date));
        provider.push(escape_opt(state.fields.provider.as_deref().or(key.provider)));
        content_key.push(escape_opt(key.content_key));
        consumption.push(state.fields.consumption);
        temperature.push(state.fields.temperature);
        status.push(state.status.as_str());
        reasons.push(i32::from(state.reasons.bits()));
        fp_consumption.push(fp_c);
        fp_temperature.push(fp_t);
        winner_batch.push(state.winner.batch);
        winner_line.push(state.winner.line);
        versions.push(to_int4(state.versions, "a version count")?);
        pending.push(state.pending);
        created_at.push(record.created_at);
    }
    sqlx::query(
        "INSERT INTO emdp_staged_records (ord, building_id, date, provider, content_key, consumption, temperature, \
         status, reasons, fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, \
         updated_at) \
         SELECT u.*, u.created_at FROM UNNEST($1::bigint[], $2::text[], $3::date[], $4::text[], $5::text[], \
         $6::float8[], $7::float8[], $8::text[], $9::integer[], $10::bigint[], $11::bigint[], $12::bigint[], \
         $13::bigint[], $14::integer[], $15::boolean[], $16::timestamptz[]) AS u (ord, building_id, date, provider, \
         content_key, consumption, temperature, status, reasons, fp_consumption, fp_temperature, winner_batch, \
         winner_line, versions, pending, created_at)",
    )
    .bind(ord)
    .bind(building_id)
    .bind(date)
    .bind(provider)
    .bind(content_key)
    .bind(consumption)
    .bind(temperature)
    .bind(status)
    .bind(reasons)
    .bind(fp_consumption)
    .bind(fp_temperature)
    .bind(winner_batch)
    .bind(winner_line)
    .bind(versions)
    .bind(pending)
    .bind(created_at)
    .execute(&mut *conn)
    .await
    .db()?;
    Ok(())
}

/// Cancels a COPY because a row could not be encoded, and reports why.
async fn abort(stream: PgCopyIn<&mut PgConnection>, err: StoreError) -> Result<(), StoreError> {
    stream.abort(err.to_string()).await.db()?;
    Err(err)
}

/// One ingestion transaction on PostgreSQL (`READ COMMITTED`).
pub struct PgIngest {
    tx: Transaction<'static, Postgres>,
    buffer: CopyBuffer,
    /// Whether the staging table holds rows of an earlier call in this transaction (it is
    /// emptied at commit).
    staged: bool,
}

/// The advisory-lock class of ingest chunks' buckets of key groups
/// (`pg_advisory_xact_lock(class, bucket)`), apart from other users of advisory locks in the
/// same database (sqlx's migrations use the one-argument form). The bytes of "emdp".
const KEY_LOCK_CLASS: i32 = i32::from_be_bytes(*b"emdp");

/// The advisory-lock class of single key groups (buildings), "emdP".
const KEY_LOCK_FINE_CLASS: i32 = i32::from_be_bytes(*b"emdP");

/// Buckets that the key groups of a chunk are locked by when they are many. PostgreSQL's lock
/// table holds about 12,000 locks with default settings (`max_locks_per_transaction` 64 per
/// connection), for every session at once: a chunk takes at most this many, so that a dozen
/// chunks in flight (several ingests, each with [`PG_INGEST_WRITERS`]) still fit.
const KEY_LOCK_BUCKETS: u32 = 1024;

/// The most key groups a chunk locks one by one (two locks each, see [`key_locks`]).
const KEY_LOCK_FINE_MAX: usize = KEY_LOCK_BUCKETS as usize / 2;

/// The chunks of one ingest written at once (see
/// [`emdp_app::ports::RecordStore::ingest_writers`]).
const PG_INGEST_WRITERS: usize = 2;

/// The lock name of a key: FNV-1a of its group (its building, or its content hash), the same
/// in every emdp process.
fn key_lock_hash(key: &RecordKey) -> u32 {
    key.group().bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// The advisory locks a chunk of keys takes, in the order it takes them: (class, key, shared).
///
/// Few groups (buildings): each group's own lock, exclusive, under its bucket's lock, shared.
/// Many: each bucket's lock, exclusive. A chunk of few buildings thus waits only for chunks
/// with one of its buildings, or with many buildings in one of its buckets, and no chunk
/// takes more than [`KEY_LOCK_BUCKETS`] locks. Every chunk takes its locks in one global
/// order (buckets ascending, then buildings ascending), so that no two chunks wait for each
/// other.
fn key_locks(keys: &[&RecordKey]) -> Vec<(i32, i32, bool)> {
    // The same 32 bits as PostgreSQL's int4, and ascending as such.
    let mut names: Vec<i32> = keys.iter().map(|key| key_lock_hash(key) as i32).collect();
    names.sort_unstable();
    names.dedup();
    let fine = names.len() <= KEY_LOCK_FINE_MAX;
    // Below 1024: fits an i32.
    let mut buckets: Vec<i32> = names.iter().map(|&name| (name as u32 % KEY_LOCK_BUCKETS) as i32).collect();
    buckets.sort_unstable();
    buckets.dedup();
    let mut locks: Vec<(i32, i32, bool)> = buckets.into_iter().map(|bucket| (KEY_LOCK_CLASS, bucket, fine)).collect();
    if fine {
        locks.extend(names.into_iter().map(|name| (KEY_LOCK_FINE_CLASS, name, false)));
    }
    locks
}

#[async_trait]
impl IngestTx for PgIngest {
    /// Takes the chunk's locks (see `key_locks`) until the transaction ends, in one statement.
    async fn lock_keys(&mut self, keys: &[&RecordKey]) -> Result<(), StoreError> {
        let locks = key_locks(keys);
        if locks.is_empty() {
            return Ok(());
        }
        let (mut classes, mut names, mut shared) = (Vec::new(), Vec::new(), Vec::new());
        for (class, name, share) in locks {
            classes.push(class);
            names.push(name);
            shared.push(share);
        }
        // unnest returns the arrays in order, and the locks are taken row by row in that order.
        sqlx::query(
            "SELECT count(CASE WHEN s THEN pg_advisory_xact_lock_shared(c, k) ELSE pg_advisory_xact_lock(c, k) END) \
             FROM unnest($1::int4[], $2::int4[], $3::bool[]) AS t(c, k, s)",
        )
        .bind(classes)
        .bind(names)
        .bind(shared)
        .execute(&mut *self.tx)
        .await
        .db()?;
        Ok(())
    }

    async fn insert_absent(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError> {
        let mut ids = vec![None; records.len()];
        if records.is_empty() {
            return Ok(ids);
        }
        if self.staged {
            sqlx::query("DELETE FROM emdp_staged_records").execute(&mut *self.tx).await.db()?;
        }
        self.staged = true;
        // In key order, so that concurrent ingests lock new keys in the same order.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_unstable_by(|&a, &b| records[a].key.cmp(&records[b].key));
        if records.len() <= SMALL_BATCH {
            stage_small(&mut self.tx, records, &order).await?;
        } else {
            copy_rows(&mut self.tx, COPY_STAGED, &mut self.buffer, order.iter().enumerate(), |buffer, (ord, &i)| {
                buffer.staged_record(ord as i64, &records[i])
            })
            .await?;
        }
        let index: HashMap<&RecordKey, usize> = records.iter().enumerate().map(|(i, r)| (&r.key, i)).collect();
        for row in sqlx::query(MOVE_STAGED).fetch_all(&mut *self.tx).await.db()? {
            let content_key: Option<String> = row.try_get(4).db()?;
            let key = match content_key {
                Some(hash) => RecordKey::Content(hash),
                None => RecordKey::Reading {
                    building_id: unescape(row.try_get(1).db()?),
                    date: row.try_get(2).db()?,
                    provider: unescape(row.try_get(3).db()?),
                },
            };
            if let Some(&i) = index.get(&key) {
                ids[i] = Some(row.try_get(0).db()?);
            }
        }
        Ok(ids)
    }

    /// Copies the records straight into `records`, with ids drawn from its sequence first,
    /// instead of staging them and moving the staged rows with `ON CONFLICT` (`INSERT ...
    /// SELECT` writes row by row; `COPY` fills pages at once). The copy runs under a savepoint:
    /// when a key is stored after all (an earlier ingest, a concurrent writer), the unique
    /// index refuses it, the copy is undone and the records take the usual way; the ids drawn
    /// are lost, a gap in the sequence.
    async fn insert_unseen(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError> {
        if records.len() <= SMALL_BATCH {
            return self.insert_absent(records).await;
        }
        // In key order, as `insert_absent` inserts them.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_unstable_by(|&a, &b| records[a].key.cmp(&records[b].key));
        let count = i64::try_from(records.len()).map_err(|_| StoreError::Other("too many records".into()))?;
        let mut drawn: Vec<RecordId> = sqlx::query_scalar(DRAW_IDS).bind(count).fetch_one(&mut *self.tx).await.db()?;
        drawn.sort_unstable();
        sqlx::query("SAVEPOINT emdp_unseen").execute(&mut *self.tx).await.db()?;
        let copied =
            copy_rows(&mut self.tx, COPY_RECORDS, &mut self.buffer, order.iter().zip(&drawn), |buffer, (&i, &id)| {
                buffer.record(id, &records[i])
            })
            .await;
        match copied {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT emdp_unseen").execute(&mut *self.tx).await.db()?;
                let mut ids = vec![None; records.len()];
                for (&i, &id) in order.iter().zip(&drawn) {
                    ids[i] = Some(id);
                }
                Ok(ids)
            }
            Err(StoreError::Conflict(_)) => {
                sqlx::query("ROLLBACK TO SAVEPOINT emdp_unseen").execute(&mut *self.tx).await.db()?;
                self.insert_absent(records).await
            }
            Err(err) => Err(err),
        }
    }

    async fn load_keys(&mut self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        let mut readings = Vec::new();
        let mut contents = Vec::new();
        for key in keys {
            match key {
                RecordKey::Reading { building_id, date, provider } => {
                    readings.push((building_id.as_str(), *date, provider.as_str()));
                }
                RecordKey::Content(hash) => contents.push(hash.clone()),
            }
        }
        contents.sort_unstable();
        let stretches = Stretch::split(&readings);
        let mut records = Vec::with_capacity(keys.len());
        if !stretches.is_empty() {
            let rows = bind_stretches(LOAD_READINGS, &stretches).fetch_all(&mut *self.tx).await.db()?;
            // A stretch also holds the stored days between the ones asked for: left out.
            let asked: foldhash::HashSet<Reading> = readings.iter().copied().collect();
            for row in &rows {
                let record = record_row(row).db()?;
                let key = (record.building_id.as_deref(), record.date, record.provider.as_deref());
                if let (Some(building), Some(date), Some(provider)) = key
                    && asked.contains(&(building, date, provider))
                {
                    records.push(record);
                }
            }
        }
        if !contents.is_empty() {
            let rows = sqlx::query(LOAD_CONTENTS).bind(contents).fetch_all(&mut *self.tx).await.db()?;
            for row in &rows {
                records.push(record_row(row).db()?);
            }
        }
        let multi: Vec<RecordId> = records.iter().filter(|r| r.versions > 1).map(|r| r.id).collect();
        let mut versions = Vec::new();
        if !multi.is_empty() {
            let rows = sqlx::query(LOAD_VERSIONS).bind(multi).fetch_all(&mut *self.tx).await.db()?;
            for row in &rows {
                versions.push(version_row(row).db()?);
            }
        }
        assemble_keys(records, versions)
    }

    /// Reads a re-run's reading keys as stretches of the key index with seven columns, not
    /// whole: a key whose record has one version, equal to every probed value, is
    /// [`Probed::Exact`] (a re-run's records but the conflicts). The others, and content keys,
    /// are loaded whole ([`PgIngest::load_keys`]).
    async fn probe_keys(&mut self, probes: &[KeyProbe<'_>]) -> Result<Vec<Option<Probed>>, StoreError> {
        let mut found: Vec<Option<Probed>> = vec![None; probes.len()];
        let mut readings = Vec::with_capacity(probes.len());
        let mut position_of: foldhash::HashMap<Reading<'_>, usize> = foldhash::HashMap::default();
        let mut load = Vec::new();
        for (position, probe) in probes.iter().enumerate() {
            match probe.key {
                RecordKey::Reading { building_id, date, provider } => {
                    let reading = (building_id.as_str(), *date, provider.as_str());
                    readings.push(reading);
                    position_of.insert(reading, position);
                }
                RecordKey::Content(_) => load.push(position),
            }
        }
        let stretches = Stretch::split(&readings);
        if !stretches.is_empty() {
            let rows = bind_stretches(PROBE_READINGS, &stretches).fetch_all(&mut *self.tx).await.db()?;
            for row in &rows {
                let building = unescape(row.try_get(1).db()?);
                let date: NaiveDate = row.try_get(2).db()?;
                let provider = unescape(row.try_get(3).db()?);
                // A stretch also holds the stored days between the ones asked for: left out.
                let Some(&position) = position_of.get(&(building.as_str(), date, provider.as_str())) else {
                    continue;
                };
                let versions: i32 = row.try_get(4).db()?;
                let kept = [row.try_get(5).db()?, row.try_get(6).db()?];
                if probes[position].repeats_only_version(versions.into(), ValueFingerprint::from_parts(kept)) {
                    let kept = Arrival { batch: row.try_get(7).db()?, line: row.try_get(8).db()? };
                    found[position] = Some(Probed::Exact { record: row.try_get(0).db()?, kept });
                } else {
                    load.push(position);
                }
            }
        }
        if !load.is_empty() {
            let keys: Vec<RecordKey> = load.iter().map(|&position| probes[position].key.clone()).collect();
            let loaded = self.load_keys(&keys).await?;
            rows::found_loaded(probes, &load, loaded, &mut found);
        }
        Ok(found)
    }

    async fn update_records(&mut self, updates: &[RecordUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        // In id order, so that concurrent ingests lock records in the same order.
        let mut sorted: Vec<&RecordUpdate> = updates.iter().collect();
        sorted.sort_unstable_by_key(|u| u.id);
        let n = sorted.len();
        let (mut id, mut consumption, mut temperature, mut status, mut reasons) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut fp_consumption, mut fp_temperature, mut winner_batch, mut winner_line, mut versions) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut pending, mut updated_at, mut building_id, mut date, mut provider) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut content_key: Vec<Option<String>> = Vec::with_capacity(n);
        for update in sorted {
            let state = &update.state;
            let [fp_c, fp_t] = state.values.to_parts();
            id.push(update.id);
            consumption.push(state.fields.consumption);
            temperature.push(state.fields.temperature);
            status.push(state.status.as_str());
            reasons.push(i32::from(state.reasons.bits()));
            fp_consumption.push(fp_c);
            fp_temperature.push(fp_t);
            winner_batch.push(state.winner.batch);
            winner_line.push(state.winner.line);
            versions.push(to_int4(state.versions, "a version count")?);
            pending.push(state.pending);
            updated_at.push(update.updated_at);
            building_id.push(escape_opt(state.fields.building_id.as_deref()));
            date.push(state.fields.date);
            provider.push(escape_opt(state.fields.provider.as_deref()));
            content_key.push(key_columns(&update.key).content_key.map(str::to_owned));
        }
        sqlx::query(UPDATE_RECORDS)
            .bind(id)
            .bind(consumption)
            .bind(temperature)
            .bind(status)
            .bind(reasons)
            .bind(fp_consumption)
            .bind(fp_temperature)
            .bind(winner_batch)
            .bind(winner_line)
            .bind(versions)
            .bind(pending)
            .bind(updated_at)
            .bind(building_id)
            .bind(date)
            .bind(provider)
            .bind(content_key)
            .execute(&mut *self.tx)
            .await
            .db()?;
        Ok(())
    }

    async fn insert_raw(&mut self, batch: BatchId, rows: &[RawRow], links: &[RawLink]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        if rows.len() <= SMALL_BATCH {
            return insert_raw_small(&mut self.tx, batch, rows, links).await;
        }
        copy_rows(&mut self.tx, COPY_RAW, &mut self.buffer, rows.iter().zip(links), |buffer, (raw, link)| {
            buffer.raw_row(batch, raw, link)
        })
        .await
    }

    async fn progress(&mut self, batch: BatchId, rows: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE batches SET rows_stored = $1 WHERE id = $2")
            .bind(rows)
            .bind(batch)
            .execute(&mut *self.tx)
            .await
            .db()?;
        Ok(())
    }

    async fn create_batch(&mut self, batch: &NewBatch) -> Result<BatchId, StoreError> {
        insert_batch::<PostgresStore>(On::Conn(&mut *self.tx), batch).await
    }

    async fn finish_batch(&mut self, batch: BatchId, rows: i64, summary: &serde_json::Value) -> Result<(), StoreError> {
        close_batch::<PostgresStore>(On::Conn(&mut *self.tx), batch, Some(rows), summary).await.map(drop)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, d).unwrap()
    }

    #[test]
    fn runs_of_days_of_a_building_and_provider_are_read_as_stretches() {
        let mut readings: Vec<Reading> = Vec::new();
        // B2/p: every day of 1-10, asked out of order; B1/p: every other day of 1-9, then an
        // outlying day.
        readings.extend((1..=10).rev().map(|d| ("B2", day(d), "p")));
        readings.extend((1..=9).step_by(2).map(|d| ("B1", day(d), "p")));
        readings.push(("B1", day(30), "p"));
        // B1/q: days three apart: a stretch each.
        readings.extend([("B1", day(4), "q"), ("B1", day(1), "q")]);
        let stretch =
            |building, provider, first, last| Stretch { building, provider, first: day(first), last: day(last) };
        assert_eq!(
            Stretch::split(&readings),
            [
                stretch("B1", "p", 1, 9),
                stretch("B1", "p", 30, 30),
                stretch("B1", "q", 1, 1),
                stretch("B1", "q", 4, 4),
                stretch("B2", "p", 1, 10),
            ]
        );
    }

    #[test]
    fn dates_and_times_count_from_postgres_epoch() {
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        assert_eq!(epoch.num_days_from_ce(), PG_EPOCH_DAYS_FROM_CE);
        let midnight = epoch.and_hms_opt(0, 0, 0).unwrap().and_utc();
        assert_eq!(midnight.timestamp_micros(), PG_EPOCH_UNIX_MICROS);
    }

    #[test]
    fn nul_escaping_round_trips_and_keeps_texts_apart() {
        let texts = ["", "plain", "a\0b", "\0", "\u{E000}", "\u{E000}0", "x\u{E000}e\0\u{E000}", "é\0ü"];
        for text in texts {
            let stored = escape(text);
            assert!(!stored.contains('\0'), "{text:?}");
            assert_eq!(unescape(stored.clone().into_owned()), text);
        }
        assert!(matches!(escape("B1 \u{E001}"), Cow::Borrowed(_)));
        let mut stored: Vec<_> = texts.iter().map(|t| escape(t).into_owned()).collect();
        stored.sort();
        stored.dedup();
        assert_eq!(stored.len(), texts.len(), "distinct texts stay distinct");
    }

    #[test]
    fn copy_fields_are_length_prefixed_big_endian() {
        let mut buffer = CopyBuffer::default();
        buffer.row(3);
        buffer.opt_text(Some("ab")).unwrap();
        buffer.opt_float8(None);
        buffer.bool(true);
        assert_eq!(buffer.bytes, [0, 3, 0, 0, 0, 2, b'a', b'b', 255, 255, 255, 255, 0, 0, 0, 1, 1]);
    }

    fn building(id: &str) -> RecordKey {
        RecordKey::Reading { building_id: id.into(), date: day(1), provider: "p".into() }
    }

    #[test]
    fn few_buildings_are_locked_one_by_one_under_shared_buckets() {
        let (a, b, c) = (building("B1"), building("B2"), RecordKey::Content("0f".repeat(16)));
        let locks = key_locks(&[&b, &a, &b, &c]);
        let (buckets, fine): (Vec<_>, Vec<_>) = locks.iter().partition(|(class, _, _)| *class == KEY_LOCK_CLASS);
        assert!(buckets.iter().all(|&&(_, bucket, shared)| shared && (0..1024).contains(&bucket)));
        assert!(fine.iter().all(|&&(class, _, shared)| class == KEY_LOCK_FINE_CLASS && !shared));
        assert_eq!(fine.len(), 3, "one per building or content key, repeats once");
        let split = buckets.len();
        assert!(locks[..split].iter().all(|lock| lock.0 == KEY_LOCK_CLASS), "buckets first");
        assert!(locks[..split].is_sorted() && locks[split..].is_sorted(), "each class ascending");
    }

    #[test]
    fn many_buildings_are_locked_by_exclusive_buckets_within_the_lock_table() {
        let keys: Vec<RecordKey> = (0..100_000).map(|i| building(&format!("B{i}"))).collect();
        let locks = key_locks(&keys.iter().collect::<Vec<_>>());
        assert_eq!(locks.len(), KEY_LOCK_BUCKETS as usize, "every bucket, once");
        assert!(locks.iter().all(|&(class, _, shared)| class == KEY_LOCK_CLASS && !shared));
        assert!(locks.is_sorted());
        let few = &keys[..KEY_LOCK_FINE_MAX];
        assert!(key_locks(&few.iter().collect::<Vec<_>>()).len() <= KEY_LOCK_BUCKETS as usize);
        assert!(key_locks(&few.iter().collect::<Vec<_>>()).iter().any(|&(_, _, shared)| shared));
    }
}
