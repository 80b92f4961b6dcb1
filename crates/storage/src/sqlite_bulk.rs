//! The SQLite ingest's bulk writes: a chunk's new records, its raw rows and their tallies,
//! each table through one prepared statement of many rows, on the ingest writer's
//! connection borrowed from sqlx as a rusqlite connection.
//!
//! Why not sqlx for these: sqlx binds owned argument values, which its worker thread copies
//! into SQLite, clears and frees again for every statement. In a first ingest of 1M rows into
//! SQLite (multi-row `INSERT`s of about 2,000 rows each), `sqlite3_step` was 1.8 s of that
//! thread's 3.6 s (perf); binding, `sqlite3_clear_bindings`, dropping the values and freeing
//! them across threads made most of the rest. A rusqlite statement keeps each parameter's
//! buffer from one execution to the next, and nothing crosses threads: the first ingest went
//! from 4.8-5.6 s to 3.7-3.9 s (BENCHMARKS.md). A re-run's probes read their key ranges
//! through it too (`sqlite::probe_ranges`); everything else (transactions, other reads,
//! checkpoints) stays with sqlx.

use chrono::NaiveDate;
use emdp_app::ports::{BatchId, NewRecord, RawLink, RawRow, RecordFields, RecordId, StoreError};
use rusqlite::{OptionalExtension, Statement};
use sqlx::SqliteConnection;

use crate::error::{DbResult, rusqlite_error};
use crate::rows::key_columns;
use crate::sqlite::{day_text, millis};

/// Binds the values, in order, to `$insert`'s parameters from `$offset + 1` on; each value
/// goes through its own type's binding (a `&[&dyn ToSql]` cost a first run 0.1 s).
macro_rules! bind {
    ($insert:expr, $offset:expr, $($value:expr),+ $(,)?) => {{
        let mut index = $offset;
        $(
            index += 1;
            $insert.raw_bind_parameter(index, $value)?;
        )+
        Ok(())
    }};
}

/// New curated records, [`ROWS_PER_STATEMENT`] a statement; `ON CONFLICT DO NOTHING` leaves
/// a key that is stored already. `OR FAIL`: no statement journal, since an error ends the
/// whole transaction anyway.
const INSERT_RECORDS: Insert = Insert {
    head: "INSERT OR FAIL INTO records (building_id, date, provider, content_key, consumption, temperature, status, \
           reasons, fp_consumption, fp_temperature, winner_batch, winner_line, versions, pending, created_at, updated_at)",
    columns: 16,
    tail: " ON CONFLICT DO NOTHING",
};

/// Raw rows (see [`INSERT_RECORDS`] for `OR FAIL`).
const INSERT_RAW: Insert = Insert {
    head: "INSERT OR FAIL INTO raw_records (batch_id, line, received_at, payload, parse_error, record_id, admission, \
           status, reasons, building_id, date, provider, consumption, temperature, fp_consumption, fp_temperature, \
           original_id, original_created_at)",
    columns: 18,
    tail: "",
};

/// Counts of new records per group, added to the stored counts (migration 0005).
const ADD_RECORD_TALLY: Insert = Insert {
    head: "INSERT INTO record_tally (date, provider, status, reasons, conflict, pending, keyless, n)",
    columns: 8,
    tail: " ON CONFLICT DO UPDATE SET n = n + excluded.n",
};

/// Counts of raw rows per group, added to the batch's counts (migration 0005).
const ADD_RAW_TALLY: Insert = Insert {
    head: "INSERT INTO raw_tally (batch_id, status, admission, reasons, n)",
    columns: 5,
    tail: " ON CONFLICT DO UPDATE SET n = n + excluded.n",
};

/// Rows per `INSERT`: each execution opens and closes its cursors, which cost more than a
/// row's values (one row per statement: first ingest 4.6-4.9 s). 16, 64 and 256 rows measured
/// the same (3.8-3.9 s).
const ROWS_PER_STATEMENT: usize = 64;

// Within SQLite's limit of 32,766 parameters per statement.
const _: () = assert!(ROWS_PER_STATEMENT * INSERT_RAW.columns <= 32_766);

/// Work of this many rows or more leaves the async runtime's thread (see [`with_connection`]):
/// a few milliseconds of SQLite's time, while handing the thread's other tasks over costs more than
/// a request's few rows take.
const BLOCKING_ROWS: usize = 1_000;

/// A multi-row `INSERT`.
struct Insert {
    /// The statement up to `VALUES`.
    head: &'static str,
    /// Values per row.
    columns: usize,
    /// What follows the rows (`ON CONFLICT ...`), if anything.
    tail: &'static str,
}

impl Insert {
    /// The statement for `rows` rows: the row at `k` takes parameters `k * columns + 1` on.
    fn sql(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; self.columns].join(", "));
        let mut sql = format!("{} VALUES {row}", self.head);
        for _ in 1..rows {
            sql.push_str(", ");
            sql.push_str(&row);
        }
        sql.push_str(self.tail);
        sql
    }

    /// Inserts `items`, [`ROWS_PER_STATEMENT`] a statement: `bind_item` binds an item's values
    /// from the parameter after the offset it is given, and `then` is told each statement's
    /// items and how many rows it inserted.
    fn write<T>(
        &self,
        db: &rusqlite::Connection,
        items: &[T],
        mut bind_item: impl FnMut(&mut Statement<'_>, usize, &T) -> rusqlite::Result<()>,
        mut then: impl FnMut(&[T], usize) -> rusqlite::Result<()>,
    ) -> rusqlite::Result<()> {
        let mut full = None;
        for part in items.chunks(ROWS_PER_STATEMENT) {
            let mut last;
            let insert = match &mut full {
                Some(full) if part.len() == ROWS_PER_STATEMENT => full,
                None if part.len() == ROWS_PER_STATEMENT => full.insert(db.prepare(&self.sql(part.len()))?),
                _ => {
                    last = db.prepare(&self.sql(part.len()))?;
                    &mut last
                }
            };
            for (k, item) in part.iter().enumerate() {
                bind_item(insert, k * self.columns, item)?;
            }
            let inserted = insert.raw_execute()?;
            then(part, inserted)?;
        }
        Ok(())
    }
}

/// The typed values a repeat's raw row keeps (an exact duplicate, a re-delivery): none (its
/// record has them).
static NO_FIELDS: RecordFields =
    RecordFields { building_id: None, date: None, consumption: None, temperature: None, provider: None };

/// Runs `work` on `conn` (inside its transaction) as a rusqlite connection, for `rows` rows.
/// The work is synchronous: on a multi-threaded runtime, work of [`BLOCKING_ROWS`] rows or
/// more runs in `block_in_place`, so that the runtime's other tasks move to another thread
/// meanwhile; smaller work (a request's few records) and work on a current-thread runtime
/// (tests) simply runs.
pub(crate) async fn with_connection<T>(
    conn: &mut SqliteConnection,
    rows: usize,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let mut handle = conn.lock_handle().await.db()?;
    // SAFETY: `from_handle` borrows the handle without taking it over (rusqlite does not close
    // it on drop), and `handle` keeps sqlx's worker off the connection until `db`, and every
    // statement prepared on it, is dropped at the end of this function, before `handle`.
    let db = unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) }.map_err(rusqlite_error)?;
    let done = match tokio::runtime::Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) if rows >= BLOCKING_ROWS => {
            tokio::task::block_in_place(|| work(&db))
        }
        _ => work(&db),
    };
    drop(db);
    drop(handle);
    done.map_err(rusqlite_error)
}

/// Inserts `records` in the order `order` gives (key order: each insert lands next to the
/// previous one in the key indexes) and adds the inserted ones to the tallies. Returns each
/// record's new id, or `None` where its key was already stored.
pub(crate) fn insert_records(
    db: &rusqlite::Connection,
    records: &[NewRecord],
    order: &[usize],
) -> rusqlite::Result<Vec<Option<RecordId>>> {
    let mut ids = vec![None; records.len()];
    // Every record inserted from here on has a larger id (AUTOINCREMENT, and this is the only
    // writer): see below.
    let mut before: RecordId = db.query_row("SELECT COALESCE(max(id), 0) FROM records", [], |row| row.get(0))?;
    INSERT_RECORDS.write(
        db,
        order,
        |insert, offset, &i| bind_record(insert, offset, &records[i]),
        |part, inserted| {
            if inserted == part.len() {
                // All of them, under consecutive ids in their order.
                let last_id = db.last_insert_rowid();
                for (k, &i) in part.iter().enumerate() {
                    ids[i] = Some(last_id - (part.len() - 1 - k) as RecordId);
                }
            } else if inserted > 0 {
                // Some keys were stored already (a row left out may still have used up an
                // id): the ones inserted are those found with a larger id than any before.
                for &i in part {
                    ids[i] = inserted_id(db, &records[i], before)?;
                }
            }
            if inserted > 0 {
                before = db.last_insert_rowid();
            }
            Ok(())
        },
    )?;
    tally_records(db, records.iter().zip(&ids).filter(|(_, id)| id.is_some()).map(|(record, _)| record))?;
    Ok(ids)
}

/// Binds a record's values to [`INSERT_RECORDS`] from parameter `offset + 1` on.
fn bind_record(insert: &mut Statement<'_>, offset: usize, record: &NewRecord) -> rusqlite::Result<()> {
    let shown = ShownKey::of(record);
    let state = &record.state;
    let fields = &state.fields;
    let [fp_consumption, fp_temperature] = state.values.to_parts();
    let created_at = millis(record.created_at);
    bind!(
        insert,
        offset,
        shown.building_id,
        shown.date.map(day_text),
        shown.provider,
        shown.content_key,
        fields.consumption,
        fields.temperature,
        state.status.as_str(),
        state.reasons.bits(),
        fp_consumption,
        fp_temperature,
        state.winner.batch,
        state.winner.line,
        state.versions,
        state.pending,
        created_at,
        created_at
    )
}

/// The id `record` was inserted under, if its key's record has an id above `before`.
fn inserted_id(db: &rusqlite::Connection, record: &NewRecord, before: RecordId) -> rusqlite::Result<Option<RecordId>> {
    let shown = ShownKey::of(record);
    match shown.content_key {
        Some(content_key) => db
            .prepare("SELECT id FROM records WHERE content_key = ?1 AND id > ?2")?
            .query_row((content_key, before), |row| row.get(0)),
        None => db
            .prepare(
                "SELECT id FROM records WHERE building_id = ?1 AND date = ?2 AND provider = ?3 \
                 AND content_key IS NULL AND id > ?4",
            )?
            .query_row((shown.building_id, shown.date.map(day_text), shown.provider, before), |row| row.get(0)),
    }
    .optional()
}

/// Adds inserted records to `record_tally` (migration 0006 dropped the per-row trigger):
/// counted here per group, then one upsert per group, so the counts cost no scan of the new
/// rows. A missing date or provider counts under '', as the update and delete triggers count it.
fn tally_records<'a>(db: &rusqlite::Connection, inserted: impl Iterator<Item = &'a NewRecord>) -> rusqlite::Result<()> {
    type Group<'a> = (Option<NaiveDate>, &'a str, &'a str, u16, bool, bool, bool);
    let mut groups: foldhash::HashMap<Group<'a>, i64> = foldhash::HashMap::default();
    for record in inserted {
        let shown = ShownKey::of(record);
        let state = &record.state;
        let group = (
            shown.date,
            shown.provider.unwrap_or(""),
            state.status.as_str(),
            state.reasons.bits(),
            state.versions > 1,
            state.pending,
            shown.content_key.is_some(),
        );
        *groups.entry(group).or_default() += 1;
    }
    // In key order: each upsert lands next to the previous one.
    let mut groups: Vec<(Group<'a>, i64)> = groups.into_iter().collect();
    groups.sort_unstable();
    ADD_RECORD_TALLY.write(
        db,
        &groups,
        |add, offset, ((date, provider, status, reasons, conflict, pending, keyless), n)| {
            bind!(
                add,
                offset,
                date.map(day_text).unwrap_or_default(),
                provider,
                status,
                reasons,
                conflict,
                pending,
                keyless,
                n
            )
        },
        |_, _| Ok(()),
    )
}

/// Inserts a chunk's raw rows into `batch`, in the table's key order (record, batch, line:
/// appended, not inserted in between), and adds their counts to `raw_tally`.
pub(crate) fn insert_raw(
    db: &rusqlite::Connection,
    batch: BatchId,
    rows: &[RawRow],
    links: &[RawLink],
) -> rusqlite::Result<()> {
    let mut pairs: Vec<(&RawRow, &RawLink)> = rows.iter().zip(links).collect();
    pairs.sort_unstable_by_key(|(raw, link)| (link.record_id, raw.line));
    INSERT_RAW.write(
        db,
        &pairs,
        |insert, offset, (raw, link)| bind_raw(insert, offset, batch, raw, link),
        |_, _| Ok(()),
    )?;
    let mut tally: foldhash::HashMap<(&str, &str, u16), i64> = foldhash::HashMap::default();
    for (raw, link) in rows.iter().zip(links) {
        *tally.entry((raw.status.as_str(), link.admission.as_str(), raw.reasons.bits())).or_default() += 1;
    }
    let tally: Vec<((&str, &str, u16), i64)> = tally.into_iter().collect();
    ADD_RAW_TALLY.write(
        db,
        &tally,
        |add, offset, ((status, admission, reasons), n)| bind!(add, offset, batch, status, admission, reasons, n),
        |_, _| Ok(()),
    )
}

/// Binds a raw row's values to [`INSERT_RAW`] from parameter `offset + 1` on. A repeat of a
/// kept version keeps no typed values or fingerprints: its record has them.
fn bind_raw(
    insert: &mut Statement<'_>,
    offset: usize,
    batch: BatchId,
    raw: &RawRow,
    link: &RawLink,
) -> rusqlite::Result<()> {
    let version = link.admission.keeps_version();
    let fields = if version { &raw.fields } else { &NO_FIELDS };
    let [fp_consumption, fp_temperature] = raw.values.to_parts();
    bind!(
        insert,
        offset,
        batch,
        raw.line,
        millis(raw.received_at),
        raw.payload.as_str(),
        raw.parse_error.as_deref(),
        link.record_id,
        link.admission.as_str(),
        raw.status.as_str(),
        raw.reasons.bits(),
        fields.building_id.as_deref(),
        fields.date.map(day_text),
        fields.provider.as_deref(),
        fields.consumption,
        fields.temperature,
        version.then_some(fp_consumption),
        version.then_some(fp_temperature),
        raw.original_id.as_deref(),
        raw.original_created_at.map(millis)
    )
}

/// A new record's key columns as stored: its fields' values where it has them, else its
/// key's (the content key itself only for records without a reading key), so that the tally
/// groups by exactly what [`insert_records`] writes.
struct ShownKey<'a> {
    building_id: Option<&'a str>,
    date: Option<NaiveDate>,
    provider: Option<&'a str>,
    content_key: Option<&'a str>,
}

impl<'a> ShownKey<'a> {
    fn of(record: &'a NewRecord) -> Self {
        let key = key_columns(&record.key);
        let fields = &record.state.fields;
        ShownKey {
            building_id: fields.building_id.as_deref().or(key.building_id),
            date: fields.date.or(key.date),
            provider: fields.provider.as_deref().or(key.provider),
            content_key: key.content_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_have_a_placeholder_per_value() {
        for insert in [&INSERT_RECORDS, &INSERT_RAW, &ADD_RECORD_TALLY, &ADD_RAW_TALLY] {
            let sql = insert.sql(3);
            assert_eq!(sql.matches('?').count(), 3 * insert.columns, "{sql}");
            assert!(sql.ends_with(&format!("?){}", insert.tail)), "{sql}");
            let columns = insert.head.split('(').nth(1).unwrap().split(',').count();
            assert_eq!(columns, insert.columns, "{}", insert.head);
        }
    }

    #[test]
    fn a_full_disk_reads_as_one_whichever_library_reports_it() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        );
        assert!(matches!(rusqlite_error(full), StoreError::Full(message) if message == "database or disk is full"));
        let unique = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
            Some("UNIQUE constraint failed: records.content_key".into()),
        );
        assert!(matches!(rusqlite_error(unique), StoreError::Conflict(_)));
    }
}
