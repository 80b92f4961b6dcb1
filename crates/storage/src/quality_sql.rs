//! The SQL of the quality report and of duplicate resolution, written once for both
//! databases: a [`Dialect`] supplies the few expressions that differ (day numbers, booleans,
//! times, collation), and rows are decoded through [`Cols`], so SQLite and PostgreSQL run the
//! same aggregates and return the same figures.
//!
//! Days are computed as integers (days since 1970-01-01) by the database, so gap lengths and
//! day differences are integer arithmetic on both. Only integers computed here (days,
//! thresholds, ids) are written into the SQL text; every text value is bound.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use emdp_app::ports::{
    BatchCounts, BuildingQuality, Completeness, CompletenessTotals, ConflictGroup, Decision, DecisionMethod,
    DuplicateFilter, DuplicateTotals, Flatline, Freshness, Gap, GroupCounts, GroupVersion, QualityFilter, ReasonCounts,
    RecordBreakdown, RecordCounts, RecordFields, RecordId, RowBreakdown, RowCounts, StatusCounts, StoreError,
};
use emdp_domain::{Arrival, ConflictPolicy, Reason};

use crate::rows::{self, RecordRow, VersionRow};
use crate::sql::{Cols, Dialect, Sql};

/// Days since 1970-01-01.
pub(crate) fn epoch_day(date: NaiveDate) -> i64 {
    (date - NaiveDate::default()).num_days()
}

/// The date of a day number.
fn from_epoch_day(day: i64) -> Result<NaiveDate, StoreError> {
    NaiveDate::default()
        .checked_add_signed(chrono::TimeDelta::days(day))
        .ok_or_else(|| StoreError::Other(format!("day {day} is out of range")))
}

fn opt_day(day: Option<i64>) -> Result<Option<NaiveDate>, StoreError> {
    day.map(from_epoch_day).transpose()
}

/// Conditions on `records r` for the filter's building, provider and days.
fn record_conditions(
    sql: &mut Sql,
    building: &Option<String>,
    provider: &Option<String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) {
    if let Some(building) = building {
        sql.push(" AND r.building_id = ").bind(building.clone());
    }
    if let Some(provider) = provider {
        sql.push(" AND r.provider = ").bind(provider.clone());
    }
    if let Some(from) = from {
        sql.push(" AND r.date >= ").bind(from);
    }
    if let Some(to) = to {
        sql.push(" AND r.date <= ").bind(to);
    }
}

/// Conditions on `records r` for a quality filter (`WHERE` already pushed).
fn record_filter(sql: &mut Sql, filter: &QualityFilter) {
    record_conditions(sql, &filter.building_id, &filter.provider, filter.from, filter.to);
    if let Some(batch) = filter.batch {
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM raw_records xb WHERE xb.record_id = r.id AND xb.batch_id = {batch})"
        ));
    }
}

/// `FROM raw_records x ... WHERE ...` for a quality filter: payloads of the filter's batch,
/// belonging to records that match the rest of the filter.
fn raw_from(sql: &mut Sql, filter: &QualityFilter) {
    let by_record =
        filter.building_id.is_some() || filter.provider.is_some() || filter.from.is_some() || filter.to.is_some();
    if by_record {
        sql.push(" FROM raw_records x JOIN records r ON r.id = x.record_id WHERE 1 = 1");
        record_conditions(sql, &filter.building_id, &filter.provider, filter.from, filter.to);
    } else {
        sql.push(" FROM raw_records x WHERE 1 = 1");
    }
    if let Some(batch) = filter.batch {
        sql.push(&format!(" AND x.batch_id = {batch}"));
    }
}

/// `count, valid, incomplete, inconsistent` of the rows in scope, status column `status`.
fn status_columns(status: &str) -> String {
    format!(
        "CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(COALESCE(SUM(CASE WHEN {status} = 'VALID' THEN 1 ELSE 0 END), 0) AS BIGINT) AS nv, \
         CAST(COALESCE(SUM(CASE WHEN {status} = 'INCOMPLETE' THEN 1 ELSE 0 END), 0) AS BIGINT) AS ni, \
         CAST(COALESCE(SUM(CASE WHEN {status} = 'INCONSISTENT' THEN 1 ELSE 0 END), 0) AS BIGINT) AS nc"
    )
}

/// One count per reason bit of the column `reasons`.
fn reason_columns(reasons: &str) -> String {
    (0..Reason::ALL.len())
        .map(|bit| format!("CAST(COALESCE(SUM(({reasons} >> {bit}) & 1), 0) AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_counts(row: &impl Cols, at: usize) -> Result<StatusCounts, StoreError> {
    Ok(StatusCounts {
        total: row.int(at)?,
        valid: row.int(at + 1)?,
        incomplete: row.int(at + 2)?,
        inconsistent: row.int(at + 3)?,
    })
}

fn reason_counts(row: &impl Cols, at: usize) -> Result<ReasonCounts, StoreError> {
    Reason::ALL
        .iter()
        .enumerate()
        .map(|(i, reason)| Ok((*reason, row.int(at + i)?)))
        .collect::<Result<_, _>>()
        .map(ReasonCounts)
}

fn one<R>(rows: &[R]) -> Result<&R, StoreError> {
    rows.first().ok_or_else(|| StoreError::Other("an aggregate returned no row".into()))
}

// ---------------------------------------------------------------------------------------
// Quality report.

pub(crate) fn record_counts_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT {}, \
         CAST(COALESCE(SUM(CASE WHEN r.versions > 1 THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN r.content_key IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), {} \
         FROM records r WHERE 1 = 1",
        status_columns("r.status"),
        dialect.pending(),
        reason_columns("r.reasons")
    ));
    record_filter(&mut sql, filter);
    sql
}

pub(crate) fn record_counts(rows: &[impl Cols]) -> Result<RecordCounts, StoreError> {
    let row = one(rows)?;
    Ok(RecordCounts {
        status: status_counts(row, 0)?,
        conflict_groups: row.int(4)?,
        pending: row.int(5)?,
        keyless: row.int(6)?,
        reasons: reason_counts(row, 7)?,
    })
}

/// Adds a group of payloads of one `admission` to the figures of [`RowCounts`]: by status and
/// reason (`reasons`, in [`Reason::ALL`] order, when given), and as a duplicate; a re-delivery
/// is counted as such only.
fn add_admission(
    (status, duplicates, redelivered): (&mut StatusCounts, &mut DuplicateTotals, &mut i64),
    reasons: Option<&mut [i64]>,
    admission: &str,
    group: &StatusCounts,
    group_reasons: &ReasonCounts,
) {
    if admission == "redelivered" {
        *redelivered += group.total;
        return;
    }
    status.total += group.total;
    status.valid += group.valid;
    status.incomplete += group.incomplete;
    status.inconsistent += group.inconsistent;
    match admission {
        "exact" => duplicates.exact += group.total,
        "conflicting" => duplicates.conflicting += group.total,
        _ => {}
    }
    if let Some(reasons) = reasons {
        for (count, (_, n)) in reasons.iter_mut().zip(&group_reasons.0) {
            *count += n;
        }
    }
}

/// The payloads in scope per admission, counted by status and reason. Grouped by admission
/// rather than counted with a condition per column: measured on PostgreSQL over 4,000,000
/// rows, the condition cost 70 % more than the plain counts, the two groups 5 %.
pub(crate) fn row_counts_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!("SELECT x.admission, {}, {}", status_columns("x.status"), reason_columns("x.reasons")));
    raw_from(&mut sql, filter);
    sql.push(" GROUP BY x.admission");
    sql
}

/// Sums [`row_counts_sql`]'s groups.
pub(crate) fn row_counts(rows: &[impl Cols]) -> Result<RowCounts, StoreError> {
    let mut counts = RowCounts::default();
    let mut reasons = vec![0; Reason::ALL.len()];
    for row in rows {
        let into = (&mut counts.status, &mut counts.duplicates, &mut counts.redelivered);
        add_admission(into, Some(&mut reasons), &row.text(0)?, &status_counts(row, 1)?, &reason_counts(row, 5)?);
    }
    counts.reasons = reason_totals(reasons);
    Ok(counts)
}

/// The common table expressions of completeness and gaps:
/// - `per`: per building, counts per status, the first/last dated day up to today and the
///   first/last VALID day;
/// - `rng`: per building, the expected range `[lo, hi]`;
/// - `lagged`: the VALID records per building in day order, each with the previous one's day
///   (streamed from a partial index of VALID records). A day with VALID records from several
///   providers appears once per provider: the repeats are 0 days apart, which is no gap, so no
///   de-duplicating `GROUP BY` (a hash and a sort of every record) is needed;
/// - `gaps`: the gaps between VALID days, before the first one and after the last one.
///
/// VALID days are then `expected - gap days`: the gaps are exactly the other days of the range.
fn gap_ctes(dialect: Dialect, filter: &QualityFilter, today: NaiveDate) -> Sql {
    let lo = filter.from.map_or_else(|| "first_d".to_owned(), |from| epoch_day(from).to_string());
    let hi = filter.to.map_or_else(|| "last_d".to_owned(), |to| epoch_day(to.min(today)).to_string());
    let mut sql = Sql::new(dialect);
    // `per` in two grouped passes, so that neither sorts every record: keyed VALID records (all
    // but a few) stream in building order from the partial index of VALID records, and the
    // others (not VALID, or keyless) are few enough to sort. Each building has at most two
    // partial rows; days are compared as dates and turned into day numbers once per building.
    sql.push(&format!(
        "WITH per AS (SELECT b, SUM(n) AS n, SUM(nv) AS nv, SUM(ni) AS ni, SUM(nc) AS nc, {} AS first_d, {} AS last_d, \
         {} AS first_valid, {} AS last_valid FROM (",
        dialect.day("MIN(fd)"),
        dialect.day("MAX(ld)"),
        dialect.day("MIN(fv)"),
        dialect.day("MAX(lv)")
    ));
    let parts = [
        "r.status = 'VALID' AND r.content_key IS NULL",
        "r.building_id IS NOT NULL AND NOT (r.status = 'VALID' AND r.content_key IS NULL)",
    ];
    for (i, condition) in parts.into_iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push(
            "SELECT r.building_id AS b, COUNT(*) AS n, SUM(CASE WHEN r.status = 'VALID' THEN 1 ELSE 0 END) AS nv, \
             SUM(CASE WHEN r.status = 'INCOMPLETE' THEN 1 ELSE 0 END) AS ni, \
             SUM(CASE WHEN r.status = 'INCONSISTENT' THEN 1 ELSE 0 END) AS nc, MIN(CASE WHEN r.date <= ",
        );
        sql.bind(today).push(" THEN r.date END) AS fd, MAX(CASE WHEN r.date <= ");
        sql.bind(today).push(" THEN r.date END) AS ld, MIN(CASE WHEN r.status = 'VALID' AND r.date <= ");
        sql.bind(today).push(" THEN r.date END) AS fv, MAX(CASE WHEN r.status = 'VALID' AND r.date <= ");
        sql.bind(today).push(&format!(" THEN r.date END) AS lv FROM records r WHERE {condition}"));
        record_filter(&mut sql, filter);
        sql.push(" GROUP BY r.building_id");
    }
    sql.push(&format!(
        ") f GROUP BY b), \
         rng AS (SELECT b, {lo} AS lo, {hi} AS hi, first_valid, last_valid FROM per WHERE first_d IS NOT NULL), "
    ));
    let day = dialect.day("r.date");
    let valid = "FROM records r WHERE r.status = 'VALID' AND r.content_key IS NULL AND r.date <= ";
    match dialect {
        Dialect::Postgres => {
            sql.push(&format!(
                "lagged AS (SELECT r.building_id AS b, {day} AS d, \
                 LAG({day}) OVER (PARTITION BY r.building_id ORDER BY r.date) AS prev {valid}"
            ));
            sql.bind(today);
            record_filter(&mut sql, filter);
            sql.push(")");
        }
        // The same pairs (only those more than a day apart) from one ordered aggregate per
        // building (see `sqlite_functions`).
        Dialect::Sqlite => {
            sql.push(&format!(
                "lagged AS (SELECT g.b AS b, CAST(j.value ->> 1 AS BIGINT) AS d, CAST(j.value ->> 0 AS BIGINT) AS prev \
                 FROM (SELECT r.building_id AS b, emdp_gap_pairs({day} ORDER BY r.date) AS pairs {valid}"
            ));
            sql.bind(today);
            record_filter(&mut sql, filter);
            sql.push(" GROUP BY r.building_id) g, json_each(g.pairs) j)");
        }
    }
    sql.push(
        ", \
         gaps AS (SELECT b, prev + 1 AS gs, d - 1 AS ge, d - prev - 1 AS len FROM lagged WHERE d - prev > 1 \
         UNION ALL SELECT b, lo, COALESCE(first_valid - 1, hi), COALESCE(first_valid - 1, hi) - lo + 1 \
         FROM rng WHERE first_valid IS NULL OR first_valid > lo \
         UNION ALL SELECT b, last_valid + 1, hi, hi - last_valid FROM rng WHERE last_valid < hi)",
    );
    sql
}

/// The completeness statement up to its `FROM` (the select list is marked with a NUL byte
/// for [`completeness_and_gaps_sql`]).
fn completeness_select(dialect: Dialect, filter: &QualityFilter, today: NaiveDate, stale_days: u32) -> Sql {
    let t = epoch_day(today);
    let mut sql = gap_ctes(dialect, filter, today);
    sql.push(&format!(
        ", ranked AS (SELECT b, gs, ge, len, \
         ROW_NUMBER() OVER (PARTITION BY b ORDER BY len DESC, gs) AS rn, \
         COUNT(*) OVER (PARTITION BY b) AS gaps_n, SUM(len) OVER (PARTITION BY b) AS gap_days FROM gaps), \
         one AS (SELECT p.b, p.n, p.nv, p.ni, p.nc, g.lo, g.hi, \
         CASE WHEN g.lo IS NULL THEN 0 ELSE g.hi - g.lo + 1 END AS expected, \
         CASE WHEN g.lo IS NULL THEN 0 ELSE g.hi - g.lo + 1 - COALESCE(l.gap_days, 0) END AS valid_days, \
         COALESCE(l.gap_days, 0) AS gap_days, COALESCE(l.gaps_n, 0) AS gaps_n, l.gs, l.ge, l.len, p.last_valid, \
         {t} - p.last_valid AS since, \
         CASE WHEN p.last_valid IS NULL OR {t} - p.last_valid > {stale_days} THEN 1 ELSE 0 END AS stale \
         FROM per p LEFT JOIN rng g ON g.b = p.b LEFT JOIN ranked l ON l.b = p.b AND l.rn = 1) \
         \u{0}SELECT b, CAST(n AS BIGINT), CAST(nv AS BIGINT), CAST(ni AS BIGINT), CAST(nc AS BIGINT), \
         CAST(lo AS BIGINT), CAST(hi AS BIGINT), CAST(expected AS BIGINT), CAST(valid_days AS BIGINT), \
         CAST(gap_days AS BIGINT), CAST(gaps_n AS BIGINT), CAST(gs AS BIGINT), CAST(ge AS BIGINT), \
         CAST(len AS BIGINT), CAST(last_valid AS BIGINT), CAST(since AS BIGINT), CAST(stale AS BIGINT), \
         CAST(COUNT(*) OVER () AS BIGINT), CAST(SUM(expected) OVER () AS BIGINT), \
         CAST(SUM(valid_days) OVER () AS BIGINT), CAST(SUM(gap_days) OVER () AS BIGINT), \
         CAST(SUM(gaps_n) OVER () AS BIGINT), CAST(MAX(COALESCE(len, 0)) OVER () AS BIGINT), \
         CAST(SUM(stale) OVER () AS BIGINT)"
    ));
    sql
}

pub(crate) fn completeness_sql(dialect: Dialect, filter: &QualityFilter, today: NaiveDate, stale_days: u32) -> Sql {
    let mut sql = completeness_select(dialect, filter, today, stale_days);
    sql.text = sql.text.replacen('\u{0}', "", 1);
    sql.push(&format!(" FROM one ORDER BY b{}", dialect.collate()));
    sql
}

/// Completeness (rows with a last column 0) and the first `limit` gaps (rows with a last column
/// 1: building, then start, end and length where the longest gap's are) in one statement,
/// so that the gaps are computed once.
pub(crate) fn completeness_and_gaps_sql(
    dialect: Dialect,
    filter: &QualityFilter,
    today: NaiveDate,
    stale_days: u32,
    limit: u32,
) -> Sql {
    let mut sql = completeness_select(dialect, filter, today, stale_days);
    let collate = dialect.collate();
    let none = "CAST(NULL AS BIGINT)";
    let nones = |n: usize| vec![none; n].join(", ");
    sql.text = sql.text.replacen("\u{0}SELECT b, ", "SELECT * FROM (SELECT b, ", 1);
    sql.push(&format!(
        ", CAST(0 AS BIGINT) AS kind, CAST(NULL AS BIGINT) AS ord FROM one UNION ALL \
         SELECT b, {n10}, CAST(gs AS BIGINT), CAST(ge AS BIGINT), CAST(len AS BIGINT), {n10}, \
         CAST(1 AS BIGINT), CAST(gs AS BIGINT) FROM (SELECT * FROM gaps ORDER BY b{collate}, gs LIMIT {limit}) lg) u \
         ORDER BY u.kind, u.b{collate}, u.ord",
        n10 = nones(10)
    ));
    sql
}

pub(crate) fn completeness(rows: &[impl Cols]) -> Result<Completeness, StoreError> {
    let mut result = Completeness::default();
    for row in rows {
        let building_id = row.text(0)?;
        let longest_gap = match (row.opt_int(11)?, row.opt_int(12)?, row.opt_int(13)?) {
            (Some(start), Some(end), Some(days)) => Some(Gap {
                building_id: building_id.clone(),
                start: from_epoch_day(start)?,
                end: from_epoch_day(end)?,
                days,
            }),
            _ => None,
        };
        result.buildings.push(BuildingQuality {
            status: status_counts(row, 1)?,
            first_day: opt_day(row.opt_int(5)?)?,
            last_day: opt_day(row.opt_int(6)?)?,
            expected_days: row.int(7)?,
            valid_days: row.int(8)?,
            gap_days: row.int(9)?,
            gaps: row.int(10)?,
            longest_gap,
            last_valid_day: opt_day(row.opt_int(14)?)?,
            days_since_valid: row.opt_int(15)?,
            stale: row.int(16)? != 0,
            building_id,
        });
        result.totals = CompletenessTotals {
            buildings: row.int(17)?,
            expected_days: row.int(18)?,
            valid_days: row.int(19)?,
            gap_days: row.int(20)?,
            gaps: row.int(21)?,
            longest_gap_days: row.int(22)?,
            stale: row.int(23)?,
        };
    }
    Ok(result)
}

pub(crate) fn completeness_and_gaps<R: Cols>(rows: &[R]) -> Result<(Completeness, Vec<Gap>), StoreError> {
    let split = rows.iter().position(|row| row.int(24).is_ok_and(|kind| kind == 1)).unwrap_or(rows.len());
    let completeness = completeness(&rows[..split])?;
    let gaps = rows[split..]
        .iter()
        .map(|row| {
            Ok(Gap {
                building_id: row.text(0)?,
                start: from_epoch_day(row.int(11)?)?,
                end: from_epoch_day(row.int(12)?)?,
                days: row.int(13)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((completeness, gaps))
}

pub(crate) fn gaps_sql(dialect: Dialect, filter: &QualityFilter, today: NaiveDate, limit: u32) -> Sql {
    let mut sql = gap_ctes(dialect, filter, today);
    sql.push(&format!(
        " SELECT b, CAST(gs AS BIGINT), CAST(ge AS BIGINT), CAST(len AS BIGINT) FROM gaps \
         ORDER BY b{}, gs LIMIT {limit}",
        dialect.collate()
    ));
    sql
}

pub(crate) fn gaps(rows: &[impl Cols]) -> Result<Vec<Gap>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(Gap {
                building_id: row.text(0)?,
                start: from_epoch_day(row.int(1)?)?,
                end: from_epoch_day(row.int(2)?)?,
                days: row.int(3)?,
            })
        })
        .collect()
}

pub(crate) fn flatlines_sql(dialect: Dialect, filter: &QualityFilter, min_days: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    if dialect == Dialect::Sqlite {
        // One ordered aggregate per building finds every provider's runs (see `sqlite_functions`).
        sql.push(&format!(
            "WITH f AS (SELECT r.building_id AS b, emdp_flat_runs(r.provider, {day}, r.consumption, {min} \
             ORDER BY r.date) AS runs FROM records r \
             WHERE r.status = 'VALID' AND r.content_key IS NULL AND r.consumption IS NOT NULL",
            day = dialect.day("r.date"),
            min = min_days.max(2)
        ));
        record_filter(&mut sql, filter);
        sql.push(
            " GROUP BY r.building_id) \
             SELECT f.b, j.value ->> 0, j.value ->> 1, CAST(j.value ->> 2 AS BIGINT), CAST(j.value ->> 3 AS BIGINT), \
             CAST(j.value ->> 4 AS BIGINT) FROM f, json_each(f.runs) j ORDER BY f.b, j.value ->> 0, j.value ->> 2",
        );
        return sql;
    }
    // One ordered pass keeps the days that repeat the previous day's value (rare); islands
    // (`day - row_number`) of those few rows are the runs, each starting the day before.
    sql.push(
        "WITH v AS (SELECT r.building_id AS b, r.provider AS p, r.consumption AS c, r.date AS dt FROM records r \
         WHERE r.status = 'VALID' AND r.content_key IS NULL AND r.consumption IS NOT NULL",
    );
    record_filter(&mut sql, filter);
    sql.push(&format!(
        "), m AS (SELECT b, p, c, {day} AS d, LAG(c) OVER w AS pc, LAG({day}) OVER w AS pd \
         FROM v WINDOW w AS (PARTITION BY b, p ORDER BY dt)), \
         k AS (SELECT b, p, c, d FROM m WHERE pc = c AND pd = d - 1), \
         i AS (SELECT b, p, c, d, d - ROW_NUMBER() OVER (PARTITION BY b, p, c ORDER BY d) AS grp FROM k) \
         SELECT b, p, c, CAST(MIN(d) - 1 AS BIGINT), CAST(MAX(d) AS BIGINT), CAST(COUNT(*) + 1 AS BIGINT) FROM i \
         GROUP BY b, p, c, grp HAVING COUNT(*) + 1 >= {min} ORDER BY b{collate}, p{collate}, MIN(d)",
        day = dialect.day("dt"),
        min = min_days.max(2),
        collate = dialect.collate()
    ));
    sql
}

pub(crate) fn flatlines(rows: &[impl Cols]) -> Result<Vec<Flatline>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(Flatline {
                building_id: row.text(0)?,
                provider: row.text(1)?,
                consumption: row.opt_real(2)?.unwrap_or_default(),
                start: from_epoch_day(row.int(3)?)?,
                end: from_epoch_day(row.int(4)?)?,
                days: row.int(5)?,
            })
        })
        .collect()
}

pub(crate) fn by_provider_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!("SELECT r.provider, {} FROM records r WHERE 1 = 1", status_columns("r.status")));
    record_filter(&mut sql, filter);
    sql.push(&format!(" GROUP BY r.provider ORDER BY r.provider IS NULL, r.provider{}", dialect.collate()));
    sql
}

pub(crate) fn by_provider(rows: &[impl Cols]) -> Result<Vec<GroupCounts<String>>, StoreError> {
    rows.iter().map(|row| Ok(GroupCounts { key: row.opt_text(0)?, status: status_counts(row, 1)? })).collect()
}

pub(crate) fn by_day_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT {}, {} FROM records r WHERE r.date IS NOT NULL",
        dialect.day("r.date"),
        status_columns("r.status")
    ));
    record_filter(&mut sql, filter);
    sql.push(" GROUP BY r.date ORDER BY r.date");
    sql
}

pub(crate) fn by_day(rows: &[impl Cols]) -> Result<Vec<GroupCounts<NaiveDate>>, StoreError> {
    rows.iter()
        .map(|row| Ok(GroupCounts { key: Some(from_epoch_day(row.int(0)?)?), status: status_counts(row, 1)? }))
        .collect()
}

pub(crate) fn by_batch_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT g.*, b.source FROM (SELECT x.batch_id AS batch_id, x.admission AS admission, {}",
        status_columns("x.status")
    ));
    raw_from(&mut sql, filter);
    // The batch's source, joined after grouping (one lookup per batch and admission).
    sql.push(" GROUP BY x.batch_id, x.admission) g JOIN batches b ON b.id = g.batch_id ORDER BY g.batch_id");
    sql
}

pub(crate) fn by_batch(rows: &[impl Cols]) -> Result<Vec<BatchCounts>, StoreError> {
    let mut batches: Vec<BatchCounts> = Vec::new();
    for row in rows {
        let batch_id = row.int(0)?;
        if batches.last().is_none_or(|last| last.batch_id != batch_id) {
            batches.push(BatchCounts {
                batch_id,
                source: row.text(6)?,
                status: StatusCounts::default(),
                duplicates: DuplicateTotals::default(),
                redelivered: 0,
            });
        }
        let Some(batch) = batches.last_mut() else { continue };
        let into = (&mut batch.status, &mut batch.duplicates, &mut batch.redelivered);
        add_admission(into, None, &row.text(1)?, &status_counts(row, 2)?, &ReasonCounts::default());
    }
    Ok(batches)
}

// ---------------------------------------------------------------------------------------
// Breakdowns in one pass: the records (or payloads) grouped by every dimension the counts and
// breakdowns need, a few thousand groups that are then summed up per figure. One scan
// instead of three (two): on PostgreSQL the separate scans ran side by side on two cores.

/// Records grouped by day, provider, status, reasons and duplicate flags.
pub(crate) fn record_groups_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT {}, r.provider, r.status, CAST(r.reasons AS BIGINT), {}, {}, {}, CAST(COUNT(*) AS BIGINT) FROM records r \
         WHERE 1 = 1",
        dialect.day("r.date"),
        dialect.flag("r.versions > 1"),
        dialect.flag(dialect.pending()),
        dialect.flag("r.content_key IS NOT NULL"),
    ));
    record_filter(&mut sql, filter);
    sql.push(" GROUP BY 1, 2, 3, 4, 5, 6, 7");
    sql
}

/// Adds `n` rows of `status` to `counts`.
fn add_status(counts: &mut StatusCounts, status: &str, n: i64) -> Result<(), StoreError> {
    counts.total += n;
    match status {
        "VALID" => counts.valid += n,
        "INCOMPLETE" => counts.incomplete += n,
        "INCONSISTENT" => counts.inconsistent += n,
        other => return Err(StoreError::Other(format!("unknown status in the store: {other}"))),
    }
    Ok(())
}

/// Adds `n` rows with the reason bit set `reasons` to `counts` (in [`Reason::ALL`] order).
fn add_reasons(counts: &mut [i64], reasons: i64, n: i64) {
    for (bit, count) in counts.iter_mut().enumerate() {
        if (reasons >> bit) & 1 == 1 {
            *count += n;
        }
    }
}

fn reason_totals(counts: Vec<i64>) -> ReasonCounts {
    ReasonCounts(Reason::ALL.iter().copied().zip(counts).collect())
}

/// Sums [`record_groups_sql`]'s groups into the counts and the per-provider and per-day
/// breakdowns, ordered as their own statements order them (providers by bytes, missing last;
/// days in order, missing left out).
pub(crate) fn record_breakdown(rows: &[impl Cols]) -> Result<RecordBreakdown, StoreError> {
    let mut counts = RecordCounts::default();
    let mut reasons = vec![0; Reason::ALL.len()];
    let mut providers: BTreeMap<(bool, Option<String>), StatusCounts> = BTreeMap::new();
    let mut days: BTreeMap<i64, StatusCounts> = BTreeMap::new();
    for row in rows {
        let (day, provider, status, n) = (row.opt_int(0)?, row.opt_text(1)?, row.text(2)?, row.int(7)?);
        add_status(&mut counts.status, &status, n)?;
        add_reasons(&mut reasons, row.int(3)?, n);
        counts.conflict_groups += row.int(4)? * n;
        counts.pending += row.int(5)? * n;
        counts.keyless += row.int(6)? * n;
        add_status(providers.entry((provider.is_none(), provider)).or_default(), &status, n)?;
        if let Some(day) = day {
            add_status(days.entry(day).or_default(), &status, n)?;
        }
    }
    counts.reasons = reason_totals(reasons);
    Ok(RecordBreakdown {
        counts,
        providers: providers.into_iter().map(|((_, key), status)| GroupCounts { key, status }).collect(),
        days: days
            .into_iter()
            .map(|(day, status)| Ok(GroupCounts { key: Some(from_epoch_day(day)?), status }))
            .collect::<Result<_, StoreError>>()?,
    })
}

/// Payloads grouped by batch (with its source), status, admission and reasons.
pub(crate) fn row_groups_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(
        "SELECT g.*, b.source FROM (SELECT x.batch_id AS batch_id, x.status, x.admission, \
         CAST(x.reasons AS BIGINT), CAST(COUNT(*) AS BIGINT) AS n",
    );
    raw_from(&mut sql, filter);
    sql.push(" GROUP BY x.batch_id, x.status, x.admission, x.reasons) g JOIN batches b ON b.id = g.batch_id");
    sql
}

/// Sums [`row_groups_sql`]'s groups into the counts and the per-batch breakdown (in batch order).
pub(crate) fn row_breakdown(rows: &[impl Cols]) -> Result<RowBreakdown, StoreError> {
    let mut counts = RowCounts::default();
    let mut reasons = vec![0; Reason::ALL.len()];
    let mut batches: BTreeMap<i64, BatchCounts> = BTreeMap::new();
    for row in rows {
        let (batch_id, status, admission, n) = (row.int(0)?, row.text(1)?, row.text(2)?, row.int(4)?);
        let batch = batches.entry(batch_id).or_insert_with(|| BatchCounts {
            batch_id,
            source: String::new(),
            status: StatusCounts::default(),
            duplicates: DuplicateTotals::default(),
            redelivered: 0,
        });
        batch.source = row.text(5)?;
        let mut group = StatusCounts::default();
        add_status(&mut group, &status, n)?;
        let mut group_reasons = vec![0; Reason::ALL.len()];
        add_reasons(&mut group_reasons, row.int(3)?, n);
        let group_reasons = reason_totals(group_reasons);
        let into = (&mut counts.status, &mut counts.duplicates, &mut counts.redelivered);
        add_admission(into, Some(&mut reasons), &admission, &group, &group_reasons);
        let into = (&mut batch.status, &mut batch.duplicates, &mut batch.redelivered);
        add_admission(into, None, &admission, &group, &group_reasons);
    }
    counts.reasons = reason_totals(reasons);
    Ok(RowBreakdown { counts, batches: batches.into_values().collect() })
}

// ---------------------------------------------------------------------------------------
// Tallies (SQLite's `record_tally` and `raw_tally`, migrations 0005 and 0006): the groups of
// the one-pass breakdowns above, from running counts instead of a scan.

/// Whether the curated-record counts for `filter` can come from `record_tally`: it is kept per
/// day and provider, so any filter without a building or a batch.
pub(crate) fn record_tally_serves(filter: &QualityFilter) -> bool {
    filter.building_id.is_none() && filter.batch.is_none()
}

/// Whether the payload counts for `filter` can come from `raw_tally` (kept per batch): any
/// filter on the batch alone.
pub(crate) fn raw_tally_serves(filter: &QualityFilter) -> bool {
    filter.building_id.is_none() && filter.provider.is_none() && filter.from.is_none() && filter.to.is_none()
}

/// [`record_groups_sql`]'s columns from `record_tally` (already one row per group) for a filter
/// that [`record_tally_serves`]. Dates are ISO text, so text comparison is day order; '' (no
/// date, no provider) is below every value and read back as NULL.
pub(crate) fn record_groups_tally_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT CASE WHEN t.date = '' THEN NULL ELSE {} END, NULLIF(t.provider, ''), t.status, t.reasons, \
         t.conflict, t.pending, t.keyless, t.n FROM record_tally t WHERE t.n > 0",
        dialect.day("t.date")
    ));
    if let Some(provider) = &filter.provider {
        sql.push(" AND t.provider = ").bind(provider.clone());
    }
    if let Some(from) = filter.from {
        sql.push(" AND t.date >= ").bind(from);
    }
    if let Some(to) = filter.to {
        sql.push(" AND t.date <> '' AND t.date <= ").bind(to);
    }
    sql
}

/// [`row_groups_sql`]'s columns from `raw_tally` (one row per group) for a filter that
/// [`raw_tally_serves`].
pub(crate) fn row_groups_tally_sql(dialect: Dialect, filter: &QualityFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(
        "SELECT t.batch_id, t.status, t.admission, t.reasons, t.n, b.source \
         FROM raw_tally t JOIN batches b ON b.id = t.batch_id WHERE 1 = 1",
    );
    if let Some(batch) = filter.batch {
        sql.push(&format!(" AND t.batch_id = {batch}"));
    }
    sql
}

// ---------------------------------------------------------------------------------------
// Freshness: how many buildings, and how many of them are stale, without the gaps.

/// The number of buildings named by a record matching `filter`, and of stale ones among them
/// (no VALID day up to `today`, or the latest more than `stale_days` before it): without a
/// filter, the same figures as the completeness totals, by index seeks instead of a scan. The
/// filter picks the buildings; their staleness is their state on `today`, from their VALID days
/// of the filter's provider (of any provider without one), whatever the filter's days and batch:
/// a range that ended months ago does not make every building stale.
///
/// Without a filter, the buildings of keyed records are walked one index seek per building (a
/// skip scan of `records_reading`), those of keyless records read from the few keyless records;
/// with one, they are the distinct buildings of the matching records. Each building's latest
/// VALID day is one more seek.
pub(crate) fn freshness_sql(dialect: Dialect, filter: &QualityFilter, today: NaiveDate, stale_days: u32) -> Sql {
    let t = epoch_day(today);
    let mut sql = Sql::new(dialect);
    if *filter == QualityFilter::default() {
        sql.push(
            "WITH RECURSIVE d(b) AS (SELECT MIN(building_id) FROM records WHERE content_key IS NULL \
             UNION ALL SELECT (SELECT MIN(building_id) FROM records WHERE content_key IS NULL AND building_id > d.b) \
             FROM d WHERE d.b IS NOT NULL), \
             bs(b) AS (SELECT b FROM d WHERE b IS NOT NULL UNION \
             SELECT building_id FROM records WHERE content_key IS NOT NULL AND building_id IS NOT NULL)",
        );
    } else {
        sql.push("WITH bs(b) AS (SELECT DISTINCT r.building_id FROM records r WHERE r.building_id IS NOT NULL");
        record_filter(&mut sql, filter);
        sql.push(")");
    }
    sql.push(
        ", lv AS (SELECT (SELECT MAX(r.date) FROM records r WHERE r.building_id = bs.b AND r.status = 'VALID' \
         AND r.content_key IS NULL AND r.date <= ",
    );
    sql.bind(today);
    if let Some(provider) = &filter.provider {
        sql.push(" AND r.provider = ").bind(provider.clone());
    }
    sql.push(&format!(
        ") AS d FROM bs) SELECT CAST(COUNT(*) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN d IS NULL OR {t} - {day} > {stale_days} THEN 1 ELSE 0 END), 0) AS BIGINT) FROM lv",
        day = dialect.day("d")
    ));
    sql
}

/// The buildings among `candidates` (not empty) named by a record matching `filter`.
pub(crate) fn buildings_among_sql(dialect: Dialect, filter: &QualityFilter, candidates: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT DISTINCT r.building_id FROM records r WHERE r.building_id IN (");
    for (i, building) in candidates.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(building.clone());
    }
    sql.push(")");
    record_filter(&mut sql, filter);
    sql
}

/// Reads [`buildings_among_sql`]'s rows.
pub(crate) fn buildings(rows: &[impl Cols]) -> Result<Vec<String>, StoreError> {
    rows.iter().map(|row| row.text(0)).collect()
}

/// Reads [`freshness_sql`]'s row.
pub(crate) fn freshness(rows: &[impl Cols]) -> Result<Freshness, StoreError> {
    let row = one(rows)?;
    Ok(Freshness { buildings: row.int(0)?, stale: row.int(1)? })
}

// ---------------------------------------------------------------------------------------
// Duplicate resolution.

fn group_filter(sql: &mut Sql, filter: &DuplicateFilter, after: Option<RecordId>) {
    let dialect = sql.dialect;
    sql.push(&format!(" WHERE {}", dialect.conflict()));
    record_conditions(sql, &filter.building_id, &filter.provider, filter.from, filter.to);
    if filter.pending_only {
        sql.push(&format!(" AND {}", dialect.pending()));
    }
    if let Some(after) = after {
        sql.push(&format!(" AND r.id > {after}"));
    }
}

pub(crate) fn group_ids_sql(dialect: Dialect, filter: &DuplicateFilter, after: Option<RecordId>, limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT r.id FROM records r");
    group_filter(&mut sql, filter, after);
    sql.push(&format!(" ORDER BY r.id LIMIT {limit}"));
    sql
}

pub(crate) fn ids(rows: &[impl Cols]) -> Result<Vec<RecordId>, StoreError> {
    rows.iter().map(|row| row.int(0)).collect()
}

pub(crate) fn groups_sql(dialect: Dialect, filter: &DuplicateFilter, after: Option<RecordId>, limit: u32) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT r.id, r.building_id, {}, r.provider, r.status, r.winner_batch, r.winner_line, {}, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM raw_records e WHERE e.record_id = r.id AND e.admission = 'exact') \
         FROM records r",
        dialect.day("r.date"),
        dialect.flag("r.pending")
    ));
    group_filter(&mut sql, filter, after);
    sql.push(&format!(" ORDER BY r.id LIMIT {limit}"));
    sql
}

fn id_list(ids: &[RecordId]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// The kept versions of records (`ids` must not be empty).
pub(crate) fn group_versions_sql(dialect: Dialect, ids: &[RecordId]) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT x.record_id, x.batch_id, x.line, b.source, {}, x.status, CAST(x.reasons AS BIGINT), x.consumption, \
         x.temperature FROM raw_records x JOIN batches b ON b.id = x.batch_id \
         WHERE x.admission NOT IN {} AND x.record_id IN ({}) ORDER BY x.record_id, x.batch_id, x.line",
        dialect.millis("x.received_at"),
        repeats!(),
        id_list(ids)
    ));
    sql
}

pub(crate) fn groups(heads: &[impl Cols], versions: &[impl Cols]) -> Result<Vec<ConflictGroup>, StoreError> {
    let mut groups = heads
        .iter()
        .map(|row| {
            Ok(ConflictGroup {
                record_id: row.int(0)?,
                building_id: row.opt_text(1)?,
                date: opt_day(row.opt_int(2)?)?,
                provider: row.opt_text(3)?,
                status: rows::status(&row.text(4)?)?,
                winner: Arrival { batch: row.int(5)?, line: row.int(6)? },
                pending: row.int(7)? != 0,
                exact_duplicates: row.int(8)?,
                versions: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let index: std::collections::HashMap<RecordId, usize> =
        groups.iter().enumerate().map(|(i, g)| (g.record_id, i)).collect();
    for row in versions {
        let Some(&i) = index.get(&row.int(0)?) else { continue };
        let group = &mut groups[i];
        let arrival = Arrival { batch: row.int(1)?, line: row.int(2)? };
        group.versions.push(GroupVersion {
            batch_id: arrival.batch,
            line: arrival.line,
            source: row.text(3)?,
            received_at: rows::from_millis(row.int(4)?),
            status: rows::status(&row.text(5)?)?,
            reasons: rows::reasons(row.int(6)?),
            consumption: row.opt_real(7)?,
            temperature: row.opt_real(8)?,
            winner: arrival == group.winner,
        });
    }
    Ok(groups)
}

/// `SELECT ... FROM records r` with the columns [`record_rows`] reads, the 18th being `exact`
/// (the record's exact duplicates).
pub(crate) fn records_select(dialect: Dialect, exact: &str) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT r.id, r.building_id, r.date, r.provider, r.content_key, r.consumption, r.temperature, r.status, \
         CAST(r.reasons AS BIGINT), r.fp_consumption, r.fp_temperature, r.winner_batch, r.winner_line, \
         CAST(r.versions AS BIGINT), {}, r.created_at, r.updated_at, {exact} FROM records r",
        dialect.flag("r.pending"),
    ));
    sql
}

/// Records by id, with the columns [`record_rows`] reads.
pub(crate) fn load_records_sql(dialect: Dialect, ids: &[RecordId]) -> Sql {
    let mut sql = records_select(dialect, "CAST(0 AS BIGINT)");
    sql.push(&format!(" WHERE r.id IN ({}) ORDER BY r.id", id_list(ids)));
    sql
}

pub(crate) fn record_rows(rows: &[impl Cols]) -> Result<Vec<RecordRow>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(RecordRow {
                id: row.int(0)?,
                building_id: row.opt_text(1)?,
                date: row.opt_date(2)?,
                provider: row.opt_text(3)?,
                content_key: row.opt_text(4)?,
                consumption: row.opt_real(5)?,
                temperature: row.opt_real(6)?,
                status: row.text(7)?,
                reasons: row.int(8)?,
                fp: [row.int(9)?, row.int(10)?],
                winner: Arrival { batch: row.int(11)?, line: row.int(12)? },
                versions: row.int(13)?,
                pending: row.int(14)? != 0,
                created_at: row.time(15)?,
                updated_at: row.time(16)?,
                exact_duplicates: row.int(17)?,
            })
        })
        .collect()
}

/// The kept versions of records, with what a resolution needs (`ids` must not be empty).
pub(crate) fn load_versions_sql(dialect: Dialect, ids: &[RecordId]) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT x.record_id, x.batch_id, x.line, x.status, CAST(x.reasons AS BIGINT), \
         COALESCE(x.fp_consumption, 0), COALESCE(x.fp_temperature, 0), x.building_id, {}, x.provider, \
         x.consumption, x.temperature FROM raw_records x \
         WHERE x.admission NOT IN {} AND x.record_id IN ({})",
        dialect.day("x.date"),
        repeats!(),
        id_list(ids)
    ));
    sql
}

pub(crate) fn version_rows(rows: &[impl Cols]) -> Result<Vec<VersionRow>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(VersionRow {
                record_id: row.int(0)?,
                arrival: Arrival { batch: row.int(1)?, line: row.int(2)? },
                status: row.text(3)?,
                reasons: row.int(4)?,
                fp: [row.int(5)?, row.int(6)?],
                fields: RecordFields {
                    building_id: row.opt_text(7)?,
                    date: opt_day(row.opt_int(8)?)?,
                    provider: row.opt_text(9)?,
                    consumption: row.opt_real(10)?,
                    temperature: row.opt_real(11)?,
                },
            })
        })
        .collect()
}

pub(crate) fn decisions_sql(dialect: Dialect, record: RecordId) -> Sql {
    let mut sql = Sql::new(dialect);
    sql.push(&format!(
        "SELECT d.id, d.record_id, {}, d.decided_by, d.method, d.policy, d.winner_batch, d.winner_line, \
         d.previous_batch, d.previous_line, {} FROM resolutions d WHERE d.record_id = {record} ORDER BY d.id",
        dialect.millis("d.decided_at"),
        dialect.flag("d.pending")
    ));
    sql
}

pub(crate) fn decisions(rows: &[impl Cols]) -> Result<Vec<Decision>, StoreError> {
    rows.iter()
        .map(|row| {
            let method = match (row.text(4)?.as_str(), row.opt_text(5)?) {
                ("policy", Some(policy)) => DecisionMethod::Policy(
                    ConflictPolicy::parse(&policy)
                        .ok_or_else(|| StoreError::Other(format!("unknown policy '{policy}' in the database")))?,
                ),
                _ => DecisionMethod::Explicit,
            };
            Ok(Decision {
                id: row.int(0)?,
                record_id: row.int(1)?,
                decided_at: rows::from_millis(row.int(2)?),
                decided_by: row.text(3)?,
                method,
                winner: Arrival { batch: row.int(6)?, line: row.int(7)? },
                previous: Arrival { batch: row.int(8)?, line: row.int(9)? },
                pending: row.int(10)? != 0,
            })
        })
        .collect()
}

/// The `method` and `policy` columns of a decision.
pub(crate) fn method_columns(method: DecisionMethod) -> (&'static str, Option<&'static str>) {
    match method {
        DecisionMethod::Policy(policy) => ("policy", Some(policy.as_str())),
        DecisionMethod::Explicit => ("explicit", None),
    }
}
