//! The ports written once over a [`Backend`]: the record store's read side (its write paths
//! are the backend's), the quality report and duplicate resolution (statements in
//! [`crate::quality_sql`]), the analytical views and the API keys. The alert store is in
//! [`crate::alerts_sql`].

use std::ops::Deref;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{
    AnalyticsStore, ApiKey, BatchCounts, BatchFilter, BatchId, BatchInfo, BuildingObservations, BuildingSummary,
    Completeness, ConflictGroup, Decision, DuplicateFilter, DuplicateStore, Flatline, Freshness, Gap, GroupCounts,
    IngestTx, KeyStore, NewApiKey, NewBatch, PoolUsage, QualityFilter, QualityStore, RawVersion, RecordBreakdown,
    RecordCounts, RecordFilter, RecordId, RecordKey, RecordStore, Resolution, RowBreakdown, RowCounts, SeriesPoint,
    SeriesQuery, StoreError, StoredKey, StoredRecord,
};
use emdp_domain::analysis::{DailyObservation, DatePeriod};

use crate::error::DbResult;
use crate::quality_sql as q;
use crate::rows::{self, RecordRow, assemble_keys};
use crate::sql::{Backend, Cols, On, Param, Row, Sql, Tx, execute, fetch};

/// Every port on one database: the backend `B` (its pool and write paths) with the read side
/// implemented over it once. Dereferences to the backend.
#[derive(Debug)]
pub struct SqlStore<B>(pub B);

impl<B> Deref for SqlStore<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.0
    }
}

/// Every row of `sql`.
pub(crate) async fn rows_on<B: Backend>(on: On<'_, B::Db>, sql: &Sql) -> Result<Vec<Row<B>>, StoreError> {
    let mut rows = Vec::new();
    fetch::<B>(on, sql, &mut |row| {
        rows.push(row);
        Ok(())
    })
    .await?;
    Ok(rows)
}

/// The first row of `sql`, if any.
pub(crate) async fn row_on<B: Backend>(on: On<'_, B::Db>, sql: &Sql) -> Result<Option<Row<B>>, StoreError> {
    Ok(rows_on::<B>(on, sql).await?.into_iter().next())
}

/// Inserts a batch and returns its id.
pub(crate) async fn insert_batch<B: Backend>(on: On<'_, B::Db>, batch: &NewBatch) -> Result<BatchId, StoreError> {
    let sql = Sql::numbered(
        B::DIALECT,
        "INSERT INTO batches (source, format, header, columns, started_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        vec![
            batch.source.as_str().into(),
            batch.format.as_str().into(),
            batch.header.as_deref().into(),
            batch.columns.as_deref().into(),
            batch.started_at.into(),
        ],
    );
    row_on::<B>(on, &sql).await?.ok_or(StoreError::NotFound)?.int(0)
}

/// Marks a batch finished with its summary and, when given, its rows stored; returns its rows
/// stored (`None` for an unknown batch).
pub(crate) async fn close_batch<B: Backend>(
    on: On<'_, B::Db>,
    batch: BatchId,
    rows: Option<i64>,
    summary: &serde_json::Value,
) -> Result<Option<i64>, StoreError> {
    let sql = Sql::numbered(
        B::DIALECT,
        &format!(
            "UPDATE batches SET finished_at = $1, summary = {}, rows_stored = COALESCE($3, rows_stored) \
             WHERE id = $4 RETURNING rows_stored",
            B::DIALECT.json("$2")
        ),
        vec![Utc::now().into(), summary.to_string().into(), rows.into(), batch.into()],
    );
    row_on::<B>(on, &sql).await?.map(|row| row.int(0)).transpose()
}

impl<B: Backend> SqlStore<B> {
    /// A statement with numbered `$N` placeholders in the backend's dialect.
    pub(crate) fn sql(&self, text: &str, params: Vec<Param>) -> Sql {
        Sql::numbered(B::DIALECT, text, params)
    }

    /// Any connection of the pool.
    pub(crate) fn pooled(&self) -> On<'_, B::Db> {
        On::Pool(self.0.pool())
    }

    /// Every row of `sql`, on the pool.
    pub(crate) async fn rows(&self, sql: &Sql) -> Result<Vec<Row<B>>, StoreError> {
        rows_on::<B>(self.pooled(), sql).await
    }

    /// A transaction; [`Backend::BEGIN_WRITE`] when it will write.
    pub(crate) async fn begin(&self, write: bool) -> Result<Tx<B>, StoreError> {
        crate::pool::begin(self.0.pool(), |pool| async move {
            if write { pool.begin_with(B::BEGIN_WRITE).await } else { pool.begin().await }
        })
        .await
    }

    /// The rows of a quality report statement, under [`Backend::REPORT_SETTINGS`].
    async fn report(&self, sql: Sql) -> Result<Vec<Row<B>>, StoreError> {
        if B::REPORT_SETTINGS.is_empty() {
            return self.rows(&sql).await;
        }
        let mut tx = self.begin(false).await?;
        for setting in B::REPORT_SETTINGS {
            execute::<B>(On::Conn(&mut *tx), &self.sql(setting, Vec::new())).await?;
        }
        let rows = rows_on::<B>(On::Conn(&mut *tx), &sql).await?;
        tx.commit().await.db()?;
        Ok(rows)
    }
}

#[async_trait]
impl<B: Backend> QualityStore for SqlStore<B> {
    async fn record_counts(&self, filter: &QualityFilter) -> Result<RecordCounts, StoreError> {
        if B::TALLIES && q::record_tally_serves(filter) {
            return Ok(self.record_breakdown(filter).await?.counts);
        }
        q::record_counts(&self.report(q::record_counts_sql(B::DIALECT, filter)).await?)
    }

    async fn row_counts(&self, filter: &QualityFilter) -> Result<RowCounts, StoreError> {
        if B::TALLIES && q::raw_tally_serves(filter) {
            return Ok(self.row_breakdown(filter).await?.counts);
        }
        q::row_counts(&self.report(q::row_counts_sql(B::DIALECT, filter)).await?)
    }

    async fn completeness(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
    ) -> Result<Completeness, StoreError> {
        q::completeness(&self.report(q::completeness_sql(B::DIALECT, filter, today, stale_days)).await?)
    }

    async fn completeness_and_gaps(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
        limit: u32,
    ) -> Result<(Completeness, Vec<Gap>), StoreError> {
        let sql = q::completeness_and_gaps_sql(B::DIALECT, filter, today, stale_days, limit);
        q::completeness_and_gaps(&self.report(sql).await?)
    }

    async fn gaps(&self, filter: &QualityFilter, today: NaiveDate, limit: u32) -> Result<Vec<Gap>, StoreError> {
        q::gaps(&self.report(q::gaps_sql(B::DIALECT, filter, today, limit)).await?)
    }

    async fn flatlines(&self, filter: &QualityFilter, min_days: u32) -> Result<Vec<Flatline>, StoreError> {
        q::flatlines(&self.report(q::flatlines_sql(B::DIALECT, filter, min_days)).await?)
    }

    async fn by_provider(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<String>>, StoreError> {
        if B::TALLIES && q::record_tally_serves(filter) {
            return Ok(self.record_breakdown(filter).await?.providers);
        }
        q::by_provider(&self.report(q::by_provider_sql(B::DIALECT, filter)).await?)
    }

    async fn by_day(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<NaiveDate>>, StoreError> {
        if B::TALLIES && q::record_tally_serves(filter) {
            return Ok(self.record_breakdown(filter).await?.days);
        }
        q::by_day(&self.report(q::by_day_sql(B::DIALECT, filter)).await?)
    }

    async fn by_batch(&self, filter: &QualityFilter) -> Result<Vec<BatchCounts>, StoreError> {
        if B::TALLIES && q::raw_tally_serves(filter) {
            return Ok(self.row_breakdown(filter).await?.batches);
        }
        q::by_batch(&self.report(q::by_batch_sql(B::DIALECT, filter)).await?)
    }

    /// From the tally when it serves the filter, else one grouped scan (SQLite's sort of the
    /// records once instead of three scans).
    async fn record_breakdown(&self, filter: &QualityFilter) -> Result<RecordBreakdown, StoreError> {
        let sql = if B::TALLIES && q::record_tally_serves(filter) {
            q::record_groups_tally_sql(B::DIALECT, filter)
        } else {
            q::record_groups_sql(B::DIALECT, filter)
        };
        q::record_breakdown(&self.report(sql).await?)
    }

    /// From the tally when it serves the filter, else one grouped scan.
    async fn row_breakdown(&self, filter: &QualityFilter) -> Result<RowBreakdown, StoreError> {
        let sql = if B::TALLIES && q::raw_tally_serves(filter) {
            q::row_groups_tally_sql(B::DIALECT, filter)
        } else {
            q::row_groups_sql(B::DIALECT, filter)
        };
        q::row_breakdown(&self.report(sql).await?)
    }

    async fn freshness(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
    ) -> Result<Freshness, StoreError> {
        q::freshness(&self.report(q::freshness_sql(B::DIALECT, filter, today, stale_days)).await?)
    }

    /// A few hundred candidates per statement, well under either database's parameter limit.
    async fn buildings_among(&self, filter: &QualityFilter, candidates: &[String]) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for part in candidates.chunks(500) {
            found.extend(q::buildings(&self.report(q::buildings_among_sql(B::DIALECT, filter, part)).await?)?);
        }
        Ok(found)
    }
}

#[async_trait]
impl<B: Backend> DuplicateStore for SqlStore<B> {
    async fn list_groups(
        &self,
        filter: &DuplicateFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<ConflictGroup>, StoreError> {
        // One read transaction: the groups and their versions from the same snapshot.
        let mut tx = self.begin(false).await?;
        let heads = rows_on::<B>(On::Conn(&mut *tx), &q::groups_sql(B::DIALECT, filter, after, limit)).await?;
        let ids = q::ids(&heads)?;
        let versions = if ids.is_empty() {
            Vec::new()
        } else {
            rows_on::<B>(On::Conn(&mut *tx), &q::group_versions_sql(B::DIALECT, &ids)).await?
        };
        tx.commit().await.db()?;
        q::groups(&heads, &versions)
    }

    async fn group_ids(
        &self,
        filter: &DuplicateFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<RecordId>, StoreError> {
        q::ids(&self.report(q::group_ids_sql(B::DIALECT, filter, after, limit)).await?)
    }

    async fn load_groups(&self, ids: &[RecordId]) -> Result<Vec<StoredKey>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin(false).await?;
        let records = q::record_rows(&rows_on::<B>(On::Conn(&mut *tx), &q::load_records_sql(B::DIALECT, ids)).await?)?;
        let versions =
            q::version_rows(&rows_on::<B>(On::Conn(&mut *tx), &q::load_versions_sql(B::DIALECT, ids)).await?)?;
        tx.commit().await.db()?;
        assemble_keys(records, versions)
    }

    async fn apply_resolutions(&self, resolutions: &[Resolution]) -> Result<(), StoreError> {
        if resolutions.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin(true).await?;
        // In id order, so that concurrent resolutions lock records in the same order.
        let mut sorted: Vec<&Resolution> = resolutions.iter().collect();
        sorted.sort_by_key(|r| r.record_id);
        for resolution in sorted {
            let state = &resolution.state;
            let fields = &state.fields;
            let [fp_consumption, fp_temperature] = state.values.to_parts();
            let update = self.sql(
                "UPDATE records SET consumption = $1, temperature = $2, status = $3, reasons = $4, \
                 fp_consumption = $5, fp_temperature = $6, winner_batch = $7, winner_line = $8, versions = $9, \
                 pending = $10, updated_at = $11, building_id = COALESCE($12, building_id), \
                 date = COALESCE($13, date), provider = COALESCE($14, provider) \
                 WHERE id = $15 AND winner_batch = $16 AND winner_line = $17 AND versions = $18 RETURNING id",
                vec![
                    fields.consumption.into(),
                    fields.temperature.into(),
                    state.status.as_str().into(),
                    i64::from(state.reasons.bits()).into(),
                    fp_consumption.into(),
                    fp_temperature.into(),
                    state.winner.batch.into(),
                    state.winner.line.into(),
                    state.versions.into(),
                    state.pending.into(),
                    resolution.decided_at.into(),
                    fields.building_id.as_deref().into(),
                    fields.date.into(),
                    fields.provider.as_deref().into(),
                    resolution.record_id.into(),
                    resolution.previous.batch.into(),
                    resolution.previous.line.into(),
                    resolution.previous_versions.into(),
                ],
            );
            if row_on::<B>(On::Conn(&mut *tx), &update).await?.is_none() {
                return Err(StoreError::Conflict(format!(
                    "record {} changed since it was read (or is gone)",
                    resolution.record_id
                )));
            }
            let (method, policy) = q::method_columns(resolution.method);
            let insert = self.sql(
                "INSERT INTO resolutions (record_id, decided_at, decided_by, method, policy, winner_batch, \
                 winner_line, previous_batch, previous_line, pending) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                vec![
                    resolution.record_id.into(),
                    resolution.decided_at.into(),
                    resolution.decided_by.as_str().into(),
                    method.into(),
                    policy.into(),
                    state.winner.batch.into(),
                    state.winner.line.into(),
                    resolution.previous.batch.into(),
                    resolution.previous.line.into(),
                    state.pending.into(),
                ],
            );
            execute::<B>(On::Conn(&mut *tx), &insert).await?;
        }
        tx.commit().await.db()
    }

    async fn decisions(&self, record_id: RecordId) -> Result<Vec<Decision>, StoreError> {
        q::decisions(&self.report(q::decisions_sql(B::DIALECT, record_id)).await?)
    }
}

/// The bounds a query uses for an optional period (every storable day when `None`).
fn bounds(period: Option<DatePeriod>) -> (NaiveDate, NaiveDate) {
    match period {
        Some(p) => (p.start, p.end),
        None => (
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
        ),
    }
}

/// The VALID records of one building reduced to one row per day (consumption summed over
/// providers, temperature averaged), as a CTE named `daily`; parameters $1 building, $2 from,
/// $3 to.
const DAILY: &str = "WITH daily AS (SELECT date, SUM(consumption) AS consumption, AVG(temperature) AS temperature \
     FROM records WHERE building_id = $1 AND content_key IS NULL AND status = 'VALID' AND date >= $2 AND date <= $3 \
     GROUP BY date)";

/// A building's summary, up to `FROM`.
const SUMMARY: &str = "SELECT building_id, CAST(COUNT(*) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN status = 'VALID' THEN 1 ELSE 0 END), 0) AS BIGINT), MIN(date), MAX(date), \
     MAX(CASE WHEN status = 'VALID' THEN date END) FROM records";

fn summary(row: &impl Cols) -> Result<BuildingSummary, StoreError> {
    Ok(BuildingSummary {
        building_id: row.text(0)?,
        records: row.int(1)?,
        valid_records: row.int(2)?,
        first_date: row.opt_date(3)?,
        last_date: row.opt_date(4)?,
        latest_valid_date: row.opt_date(5)?,
    })
}

fn observation(row: &impl Cols, at: usize) -> Result<DailyObservation, StoreError> {
    Ok(DailyObservation { date: row.date(at)?, consumption: row.real(at + 1)?, temperature: row.real(at + 2)? })
}

/// Daily observations and series aggregated by SQL (`GROUP BY`, the dialect's ISO weeks and
/// months), over the `records_reading` index.
#[async_trait]
impl<B: Backend> AnalyticsStore for SqlStore<B> {
    async fn buildings(&self) -> Result<Vec<BuildingSummary>, StoreError> {
        let sql = self.sql(&format!("{SUMMARY} WHERE building_id IS NOT NULL GROUP BY building_id"), Vec::new());
        let mut out = self.rows(&sql).await?.iter().map(summary).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.building_id.cmp(&b.building_id));
        Ok(out)
    }

    async fn building(&self, building_id: &str) -> Result<Option<BuildingSummary>, StoreError> {
        let sql = self.sql(&format!("{SUMMARY} WHERE building_id = $1 GROUP BY building_id"), vec![building_id.into()]);
        row_on::<B>(self.pooled(), &sql).await?.as_ref().map(summary).transpose()
    }

    async fn daily_observations(
        &self,
        building_id: &str,
        period: Option<DatePeriod>,
    ) -> Result<Vec<DailyObservation>, StoreError> {
        let (from, to) = bounds(period);
        let sql = self.sql(
            &format!("{DAILY} SELECT date, consumption, temperature FROM daily ORDER BY date"),
            vec![building_id.into(), from.into(), to.into()],
        );
        self.rows(&sql).await?.iter().map(|row| observation(row, 0)).collect()
    }

    async fn all_daily_observations(
        &self,
        period: Option<DatePeriod>,
    ) -> Result<Vec<BuildingObservations>, StoreError> {
        let (from, to) = bounds(period);
        let sql = self.sql(
            "SELECT building_id, date, SUM(consumption), AVG(temperature) FROM records \
             WHERE content_key IS NULL AND status = 'VALID' AND building_id IS NOT NULL AND date >= $1 AND date <= $2 \
             GROUP BY building_id, date ORDER BY building_id, date",
            vec![from.into(), to.into()],
        );
        let mut out: Vec<BuildingObservations> = Vec::new();
        fetch::<B>(self.pooled(), &sql, &mut |row| {
            let building = row.text(0)?;
            let observation = observation(&row, 1)?;
            match out.last_mut() {
                Some(last) if last.building_id == building => last.observations.push(observation),
                _ => out.push(BuildingObservations { building_id: building, observations: vec![observation] }),
            }
            Ok(())
        })
        .await?;
        out.sort_by(|a, b| a.building_id.cmp(&b.building_id));
        Ok(out)
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let (from, to) = bounds(query.period);
        let dialect = B::DIALECT;
        let sql = self.sql(
            &format!(
                "{DAILY} SELECT {key} AS period_start, SUM(consumption), AVG(temperature), SUM({heating}), \
                 SUM({cooling}), CAST(COUNT(*) AS BIGINT) FROM daily GROUP BY period_start ORDER BY period_start",
                key = dialect.period_start(query.granularity, "date"),
                heating = dialect.greatest("0.0", "$4 - temperature"),
                cooling = dialect.greatest("0.0", "temperature - $5"),
            ),
            vec![
                query.building_id.as_str().into(),
                from.into(),
                to.into(),
                query.heating_base.into(),
                query.cooling_base.into(),
            ],
        );
        self.rows(&sql)
            .await?
            .iter()
            .map(|row| {
                Ok(SeriesPoint {
                    period_start: row.date(0)?,
                    consumption: row.real(1)?,
                    mean_temperature: row.real(2)?,
                    heating_degree_days: row.real(3)?,
                    cooling_degree_days: row.real(4)?,
                    valid_days: row.int(5)?,
                })
            })
            .collect()
    }
}

/// Columns of `api_keys` in the order [`key_row`] reads them.
const KEY_COLUMNS: &str = "id, name, role, prefix, hash, created_at, last_used_at, revoked_at";

fn key_row(row: &impl Cols) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.int(0)?,
        name: row.text(1)?,
        role: row.text(2)?.parse().map_err(StoreError::Other)?,
        prefix: row.text(3)?,
        hash: row.text(4)?,
        created_at: row.time(5)?,
        last_used_at: row.opt_time(6)?,
        revoked_at: row.opt_time(7)?,
    })
}

#[async_trait]
impl<B: Backend> KeyStore for SqlStore<B> {
    async fn insert_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError> {
        let sql = self.sql(
            &format!(
                "INSERT INTO api_keys (name, role, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING {KEY_COLUMNS}"
            ),
            vec![key.name.into(), key.role.as_str().into(), key.prefix.into(), key.hash.into(), key.created_at.into()],
        );
        let row = row_on::<B>(self.pooled(), &sql).await?.ok_or(StoreError::NotFound)?;
        key_row(&row)
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let sql = self.sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"), Vec::new());
        self.rows(&sql).await?.iter().map(key_row).collect()
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let sql = self.sql(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1"), vec![hash.into()]);
        row_on::<B>(self.pooled(), &sql).await?.as_ref().map(key_row).transpose()
    }

    async fn revoke_key(&self, name_or_id: &str, at: DateTime<Utc>) -> Result<ApiKey, StoreError> {
        let id: Option<i64> = name_or_id.parse().ok();
        let sql = self.sql(
            &format!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = (SELECT id FROM api_keys \
                 WHERE name = $2 UNION ALL SELECT id FROM api_keys WHERE id = $3 LIMIT 1) RETURNING {KEY_COLUMNS}"
            ),
            vec![at.into(), name_or_id.into(), id.into()],
        );
        row_on::<B>(self.pooled(), &sql).await?.as_ref().map(key_row).transpose()?.ok_or(StoreError::NotFound)
    }

    async fn touch_key(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        let sql = self.sql("UPDATE api_keys SET last_used_at = $1 WHERE id = $2", vec![at.into(), id.into()]);
        execute::<B>(self.pooled(), &sql).await
    }

    async fn any_key(&self) -> Result<bool, StoreError> {
        let sql = self.sql("SELECT CAST(1 AS BIGINT) FROM api_keys LIMIT 1", Vec::new());
        Ok(row_on::<B>(self.pooled(), &sql).await?.is_some())
    }
}

/// Counts a record's exact duplicates (the 18th column of a record read).
const EXACT_COUNT: &str =
    "(SELECT CAST(count(*) AS BIGINT) FROM raw_records x WHERE x.record_id = r.id AND x.admission = 'exact')";

fn raw_version(row: &impl Cols) -> Result<RawVersion, StoreError> {
    Ok(RawVersion {
        batch_id: row.int(0)?,
        line: row.int(1)?,
        source: row.text(2)?,
        format: row.text(3)?,
        header: row.opt_text(4)?,
        columns: row.opt_text(14)?,
        received_at: row.time(5)?,
        payload: row.text(6)?,
        parse_error: row.opt_text(7)?,
        admission: row.text(8)?,
        status: rows::status(&row.text(9)?)?,
        reasons: rows::reasons(row.int(10)?),
        original_id: row.opt_text(11)?,
        original_created_at: row.opt_time(12)?,
        winner: row.opt_int(13)?.unwrap_or(0) != 0,
    })
}

fn batch_info(row: &impl Cols) -> Result<BatchInfo, StoreError> {
    Ok(BatchInfo {
        id: row.int(0)?,
        source: row.text(1)?,
        format: row.text(2)?,
        header: row.opt_text(3)?,
        columns: row.opt_text(4)?,
        started_at: row.time(5)?,
        finished_at: row.opt_time(6)?,
        rows_stored: row.int(7)?,
        summary: rows::batch_summary(row.opt_text(8)?)?,
    })
}

/// The record store: its read side here, its write paths the backend's.
#[async_trait]
impl<B: Backend> RecordStore for SqlStore<B> {
    fn ingest_writers(&self) -> usize {
        self.0.ingest_writers()
    }

    fn pool_usage(&self) -> PoolUsage {
        let pool = self.0.pool();
        PoolUsage {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }

    /// `SELECT 1` on a pooled connection, waiting for one at most
    /// [`PING_WAIT`](crate::pool::PING_WAIT) rather than the pool's acquire timeout: when none
    /// comes, one direct connection attempt decides (all busy but the database answers: ready;
    /// else why not, in words).
    async fn ping(&self) -> Result<(), StoreError> {
        let select = self.sql("SELECT 1", Vec::new());
        match tokio::time::timeout(crate::pool::PING_WAIT, execute::<B>(self.pooled(), &select)).await {
            Ok(answered) => answered,
            Err(_) => crate::pool::probe(self.0.pool()).await.map_err(StoreError::Unavailable),
        }
    }

    async fn create_batch(&self, batch: &NewBatch) -> Result<BatchId, StoreError> {
        insert_batch::<B>(self.pooled(), batch).await
    }

    async fn finish_batch(&self, batch: BatchId, summary: &serde_json::Value) -> Result<(), StoreError> {
        let stored = close_batch::<B>(self.pooled(), batch, None, summary).await?;
        self.0.batch_finished(stored.unwrap_or(0)).await
    }

    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx + '_>, StoreError> {
        self.0.begin_ingest().await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.0.close().await
    }

    async fn find_keys(&self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        self.0.find_keys(keys).await
    }

    async fn get_record(&self, id: RecordId) -> Result<Option<StoredRecord>, StoreError> {
        let mut sql = q::records_select(B::DIALECT, EXACT_COUNT);
        sql.push(" WHERE r.id = ").bind(id);
        q::record_rows(&self.rows(&sql).await?)?.into_iter().next().map(RecordRow::into_stored).transpose()
    }

    async fn list_records(
        &self,
        filter: &RecordFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut sql = q::records_select(B::DIALECT, EXACT_COUNT);
        sql.push(" WHERE 1 = 1");
        if let Some(building) = &filter.building_id {
            sql.push(" AND r.building_id = ").bind(building.as_str());
        }
        if let Some(provider) = &filter.provider {
            sql.push(" AND r.provider = ").bind(provider.as_str());
        }
        if let Some(status) = filter.status {
            sql.push(" AND r.status = ").bind(status.as_str());
        }
        if let Some(from) = filter.from {
            sql.push(" AND r.date >= ").bind(from);
        }
        if let Some(to) = filter.to {
            sql.push(" AND r.date <= ").bind(to);
        }
        if let Some(after) = after {
            sql.push(" AND r.id > ").bind(after);
        }
        sql.push(" ORDER BY r.id LIMIT ").bind(i64::from(limit));
        q::record_rows(&self.rows(&sql).await?)?.into_iter().map(RecordRow::into_stored).collect()
    }

    async fn record_history(&self, id: RecordId) -> Result<Vec<RawVersion>, StoreError> {
        let sql = self.sql(
            &format!(
                "SELECT x.batch_id, x.line, b.source, b.format, b.header, x.received_at, x.payload, x.parse_error, \
                 x.admission, x.status, CAST(x.reasons AS BIGINT), x.original_id, x.original_created_at, {}, \
                 b.columns FROM raw_records x JOIN batches b ON b.id = x.batch_id \
                 LEFT JOIN records r ON r.id = x.record_id WHERE x.record_id = $1 ORDER BY x.batch_id, x.line",
                B::DIALECT.flag("r.winner_batch = x.batch_id AND r.winner_line = x.line")
            ),
            vec![id.into()],
        );
        self.rows(&sql).await?.iter().map(raw_version).collect()
    }

    async fn list_batches(
        &self,
        filter: &BatchFilter,
        before: Option<BatchId>,
        limit: u32,
    ) -> Result<Vec<BatchInfo>, StoreError> {
        let mut sql = Sql::new(B::DIALECT);
        sql.push(
            "SELECT id, source, format, header, columns, started_at, finished_at, rows_stored, \
             CAST(summary AS TEXT) FROM batches WHERE 1 = 1",
        );
        if let Some(source) = &filter.source {
            sql.push(" AND source = ").bind(source.as_str());
        }
        if filter.unfinished {
            sql.push(" AND finished_at IS NULL");
        }
        if let Some(before) = before {
            sql.push(" AND id < ").bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").bind(i64::from(limit));
        self.rows(&sql).await?.iter().map(batch_info).collect()
    }

    async fn delete_record(&self, id: RecordId) -> Result<bool, StoreError> {
        let sql = self.sql("DELETE FROM records WHERE id = $1 RETURNING id", vec![id.into()]);
        Ok(row_on::<B>(self.pooled(), &sql).await?.is_some())
    }
}
