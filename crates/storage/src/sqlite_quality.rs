//! The quality report and duplicate resolution on SQLite: the statements of
//! [`crate::quality_sql`] in the SQLite dialect, and the resolution transaction.

use async_trait::async_trait;
use chrono::NaiveDate;
use emdp_app::ports::{
    BatchCounts, Completeness, ConflictGroup, Decision, DuplicateFilter, DuplicateStore, Flatline, Freshness, Gap,
    GroupCounts, QualityFilter, QualityStore, RecordBreakdown, RecordCounts, RecordId, Resolution, RowBreakdown,
    RowCounts, StoreError, StoredKey,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection};

use crate::error::store_error;
use crate::quality_sql::{self as q, Dialect, Param, Sql};
use crate::rows::assemble_keys;
use crate::sqlite::SqliteStore;

const D: Dialect = Dialect::Sqlite;

fn query(sql: &Sql) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text.as_str()));
    for param in &sql.params {
        query = match param {
            Param::Text(text) => query.bind(text.as_str()),
            Param::Date(date) => query.bind(*date),
        };
    }
    query
}

impl SqliteStore {
    async fn rows(&self, sql: Sql) -> Result<Vec<SqliteRow>, StoreError> {
        query(&sql).fetch_all(&self.pool).await.map_err(store_error)
    }
}

async fn rows_on(conn: &mut SqliteConnection, sql: Sql) -> Result<Vec<SqliteRow>, StoreError> {
    query(&sql).fetch_all(conn).await.map_err(store_error)
}

#[async_trait]
impl QualityStore for SqliteStore {
    async fn record_counts(&self, filter: &QualityFilter) -> Result<RecordCounts, StoreError> {
        if q::record_tally_serves(filter) {
            return Ok(self.record_breakdown(filter).await?.counts);
        }
        q::record_counts(&self.rows(q::record_counts_sql(D, filter)).await?)
    }

    async fn row_counts(&self, filter: &QualityFilter) -> Result<RowCounts, StoreError> {
        if q::raw_tally_serves(filter) {
            return Ok(self.row_breakdown(filter).await?.counts);
        }
        q::row_counts(&self.rows(q::row_counts_sql(D, filter)).await?)
    }

    async fn completeness(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
    ) -> Result<Completeness, StoreError> {
        q::completeness(&self.rows(q::completeness_sql(D, filter, today, stale_days)).await?)
    }

    async fn completeness_and_gaps(
        &self,
        filter: &QualityFilter,
        today: NaiveDate,
        stale_days: u32,
        limit: u32,
    ) -> Result<(Completeness, Vec<Gap>), StoreError> {
        q::completeness_and_gaps(&self.rows(q::completeness_and_gaps_sql(D, filter, today, stale_days, limit)).await?)
    }

    async fn gaps(&self, filter: &QualityFilter, today: NaiveDate, limit: u32) -> Result<Vec<Gap>, StoreError> {
        q::gaps(&self.rows(q::gaps_sql(D, filter, today, limit)).await?)
    }

    async fn flatlines(&self, filter: &QualityFilter, min_days: u32) -> Result<Vec<Flatline>, StoreError> {
        q::flatlines(&self.rows(q::flatlines_sql(D, filter, min_days)).await?)
    }

    async fn by_provider(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<String>>, StoreError> {
        if q::record_tally_serves(filter) {
            return Ok(self.record_breakdown(filter).await?.providers);
        }
        q::by_provider(&self.rows(q::by_provider_sql(D, filter)).await?)
    }

    async fn by_day(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<NaiveDate>>, StoreError> {
        if q::record_tally_serves(filter) {
            return Ok(self.record_breakdown(filter).await?.days);
        }
        q::by_day(&self.rows(q::by_day_sql(D, filter)).await?)
    }

    async fn by_batch(&self, filter: &QualityFilter) -> Result<Vec<BatchCounts>, StoreError> {
        if q::raw_tally_serves(filter) {
            return Ok(self.row_breakdown(filter).await?.batches);
        }
        q::by_batch(&self.rows(q::by_batch_sql(D, filter)).await?)
    }

    /// From the tally when it serves the filter, else one grouped scan (SQLite's sort of the
    /// records once instead of three scans).
    async fn record_breakdown(&self, filter: &QualityFilter) -> Result<RecordBreakdown, StoreError> {
        let sql = if q::record_tally_serves(filter) {
            q::record_groups_tally_sql(D, filter)
        } else {
            q::record_groups_sql(D, filter)
        };
        q::record_breakdown(&self.rows(sql).await?)
    }

    /// From the tally when it serves the filter, else one grouped scan.
    async fn row_breakdown(&self, filter: &QualityFilter) -> Result<RowBreakdown, StoreError> {
        let sql =
            if q::raw_tally_serves(filter) { q::row_groups_tally_sql(D, filter) } else { q::row_groups_sql(D, filter) };
        q::row_breakdown(&self.rows(sql).await?)
    }

    async fn freshness(
        &self,
        building_id: Option<&str>,
        today: NaiveDate,
        stale_days: u32,
    ) -> Result<Freshness, StoreError> {
        q::freshness(&self.rows(q::freshness_sql(D, building_id, today, stale_days)).await?)
    }
}

#[async_trait]
impl DuplicateStore for SqliteStore {
    async fn list_groups(
        &self,
        filter: &DuplicateFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<ConflictGroup>, StoreError> {
        // One read transaction: the groups and their versions from the same snapshot.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let heads = rows_on(&mut tx, q::groups_sql(D, filter, after, limit)).await?;
        let ids = q::ids(&heads)?;
        let versions =
            if ids.is_empty() { Vec::new() } else { rows_on(&mut tx, q::group_versions_sql(D, &ids)).await? };
        tx.commit().await.map_err(store_error)?;
        q::groups(&heads, &versions)
    }

    async fn group_ids(
        &self,
        filter: &DuplicateFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<RecordId>, StoreError> {
        q::ids(&self.rows(q::group_ids_sql(D, filter, after, limit)).await?)
    }

    async fn load_groups(&self, ids: &[RecordId]) -> Result<Vec<StoredKey>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let records = q::record_rows(&rows_on(&mut tx, q::load_records_sql(D, ids)).await?)?;
        let versions = q::version_rows(&rows_on(&mut tx, q::load_versions_sql(D, ids)).await?)?;
        tx.commit().await.map_err(store_error)?;
        assemble_keys(records, versions)
    }

    async fn apply_resolutions(&self, resolutions: &[Resolution]) -> Result<(), StoreError> {
        if resolutions.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(store_error)?;
        for resolution in resolutions {
            let state = &resolution.state;
            let [fp_consumption, fp_temperature] = state.values.to_parts();
            let updated = sqlx::query(
                "UPDATE records SET consumption = ?, temperature = ?, status = ?, reasons = ?, fp_consumption = ?, \
                 fp_temperature = ?, winner_batch = ?, winner_line = ?, versions = ?, pending = ?, updated_at = ?, \
                 building_id = COALESCE(?, building_id), date = COALESCE(?, date), provider = COALESCE(?, provider) \
                 WHERE id = ? AND winner_batch = ? AND winner_line = ? AND versions = ?",
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
            .bind(q::millis(resolution.decided_at))
            .bind(state.fields.building_id.as_deref())
            .bind(state.fields.date)
            .bind(state.fields.provider.as_deref())
            .bind(resolution.record_id)
            .bind(resolution.previous.batch)
            .bind(resolution.previous.line)
            .bind(resolution.previous_versions)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "record {} changed since it was read (or is gone)",
                    resolution.record_id
                )));
            }
            let (method, policy) = q::method_columns(resolution.method);
            sqlx::query(
                "INSERT INTO resolutions (record_id, decided_at, decided_by, method, policy, winner_batch, \
                 winner_line, previous_batch, previous_line, pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(resolution.record_id)
            .bind(q::millis(resolution.decided_at))
            .bind(&resolution.decided_by)
            .bind(method)
            .bind(policy)
            .bind(state.winner.batch)
            .bind(state.winner.line)
            .bind(resolution.previous.batch)
            .bind(resolution.previous.line)
            .bind(i64::from(state.pending))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn decisions(&self, record_id: RecordId) -> Result<Vec<Decision>, StoreError> {
        q::decisions(&self.rows(q::decisions_sql(D, record_id)).await?)
    }
}
