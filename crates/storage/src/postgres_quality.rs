//! The quality report and duplicate resolution on PostgreSQL: the statements of
//! [`crate::quality_sql`] in the PostgreSQL dialect, and the resolution transaction.

use async_trait::async_trait;
use chrono::NaiveDate;
use emdp_app::ports::{
    BatchCounts, Completeness, ConflictGroup, Decision, DuplicateFilter, DuplicateStore, Flatline, Freshness, Gap,
    GroupCounts, QualityFilter, QualityStore, RecordBreakdown, RecordCounts, RecordId, Resolution, RowBreakdown,
    RowCounts, StoreError, StoredKey,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres};

use crate::error::store_error;
use crate::postgres::PostgresStore;
use crate::quality_sql::{self as q, Dialect, Param, Sql};
use crate::rows::assemble_keys;

const D: Dialect = Dialect::Postgres;

fn query(sql: &Sql) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.text.as_str()));
    for param in &sql.params {
        query = match param {
            Param::Text(text) => query.bind(text.as_str()),
            Param::Date(date) => query.bind(*date),
        };
    }
    query
}

impl PostgresStore {
    /// Runs a report query with room to sort and hash in memory (PostgreSQL's default 4 MB
    /// `work_mem` spills the sorts of a million records to disk), without JIT compilation (it
    /// costs 100-200 ms per statement and these scans finish before it pays off), and with the
    /// random page cost of an SSD or a cached table (1.1 instead of 4): with the default, the
    /// planner's choice between reading VALID records in order from their index and sorting a
    /// full scan flipped on small differences in statistics (completeness 1.2 s or 1.7 s).
    async fn rows(&self, sql: Sql) -> Result<Vec<PgRow>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query("SET LOCAL work_mem = '128MB'").execute(&mut *tx).await.map_err(store_error)?;
        sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await.map_err(store_error)?;
        sqlx::query("SET LOCAL random_page_cost = 1.1").execute(&mut *tx).await.map_err(store_error)?;
        let rows = query(&sql).fetch_all(&mut *tx).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(rows)
    }
}

async fn rows_on(conn: &mut PgConnection, sql: Sql) -> Result<Vec<PgRow>, StoreError> {
    query(&sql).fetch_all(conn).await.map_err(store_error)
}

#[async_trait]
impl QualityStore for PostgresStore {
    async fn record_counts(&self, filter: &QualityFilter) -> Result<RecordCounts, StoreError> {
        q::record_counts(&self.rows(q::record_counts_sql(D, filter)).await?)
    }

    async fn row_counts(&self, filter: &QualityFilter) -> Result<RowCounts, StoreError> {
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
        q::by_provider(&self.rows(q::by_provider_sql(D, filter)).await?)
    }

    async fn by_day(&self, filter: &QualityFilter) -> Result<Vec<GroupCounts<NaiveDate>>, StoreError> {
        q::by_day(&self.rows(q::by_day_sql(D, filter)).await?)
    }

    async fn by_batch(&self, filter: &QualityFilter) -> Result<Vec<BatchCounts>, StoreError> {
        q::by_batch(&self.rows(q::by_batch_sql(D, filter)).await?)
    }

    async fn record_breakdown(&self, filter: &QualityFilter) -> Result<RecordBreakdown, StoreError> {
        q::record_breakdown(&self.rows(q::record_groups_sql(D, filter)).await?)
    }

    async fn row_breakdown(&self, filter: &QualityFilter) -> Result<RowBreakdown, StoreError> {
        q::row_breakdown(&self.rows(q::row_groups_sql(D, filter)).await?)
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
impl DuplicateStore for PostgresStore {
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
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // In id order, so that concurrent resolutions lock records in the same order.
        let mut sorted: Vec<&Resolution> = resolutions.iter().collect();
        sorted.sort_by_key(|r| r.record_id);
        for resolution in sorted {
            let state = &resolution.state;
            let [fp_consumption, fp_temperature] = state.values.to_parts();
            let versions = i32::try_from(state.versions)
                .map_err(|_| StoreError::Other(format!("version count {} does not fit", state.versions)))?;
            let previous_versions = i32::try_from(resolution.previous_versions).unwrap_or(i32::MAX);
            let updated = sqlx::query(
                "UPDATE records SET consumption = $1, temperature = $2, status = $3, reasons = $4, \
                 fp_consumption = $5, fp_temperature = $6, winner_batch = $7, winner_line = $8, versions = $9, \
                 pending = $10, updated_at = $11, building_id = COALESCE($12, building_id), \
                 date = COALESCE($13, date), provider = COALESCE($14, provider) \
                 WHERE id = $15 AND winner_batch = $16 AND winner_line = $17 AND versions = $18",
            )
            .bind(state.fields.consumption)
            .bind(state.fields.temperature)
            .bind(state.status.as_str())
            .bind(i32::from(state.reasons.bits()))
            .bind(fp_consumption)
            .bind(fp_temperature)
            .bind(state.winner.batch)
            .bind(state.winner.line)
            .bind(versions)
            .bind(state.pending)
            .bind(resolution.decided_at)
            .bind(state.fields.building_id.as_deref())
            .bind(state.fields.date)
            .bind(state.fields.provider.as_deref())
            .bind(resolution.record_id)
            .bind(resolution.previous.batch)
            .bind(resolution.previous.line)
            .bind(previous_versions)
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
                 winner_line, previous_batch, previous_line, pending) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(resolution.record_id)
            .bind(resolution.decided_at)
            .bind(&resolution.decided_by)
            .bind(method)
            .bind(policy)
            .bind(state.winner.batch)
            .bind(state.winner.line)
            .bind(resolution.previous.batch)
            .bind(resolution.previous.line)
            .bind(state.pending)
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
