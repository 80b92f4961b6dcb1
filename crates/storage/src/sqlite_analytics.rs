//! [`AnalyticsStore`] on SQLite: daily observations and series aggregated by SQL (`GROUP BY`,
//! `strftime`/`date` for ISO weeks and months), over the `records_reading` index.
//!
//! Dates are `'YYYY-MM-DD'` text, so comparisons and `MIN`/`MAX` on them are date order.

use async_trait::async_trait;
use chrono::NaiveDate;
use emdp_app::ports::{
    AnalyticsStore, BuildingObservations, BuildingSummary, Granularity, SeriesPoint, SeriesQuery, StoreError,
};
use emdp_domain::analysis::{DailyObservation, DatePeriod};
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::store_error;
use crate::sqlite::{SqliteStore, day_text};

/// The bounds a query uses for an optional period (every storable day when `None`).
pub(crate) fn bounds(period: Option<DatePeriod>) -> (NaiveDate, NaiveDate) {
    match period {
        Some(p) => (p.start, p.end),
        None => (
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN),
            NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
        ),
    }
}

fn parse_day(text: &str) -> Result<NaiveDate, StoreError> {
    emdp_domain::parse_iso_date(text).map_err(|_| StoreError::Other(format!("stored date '{text}' is not YYYY-MM-DD")))
}

fn opt_day(text: Option<String>) -> Result<Option<NaiveDate>, StoreError> {
    text.as_deref().map(parse_day).transpose()
}

/// The VALID records of one building reduced to one row per day (consumption summed over
/// providers, temperature averaged), as a CTE named `daily`; parameters ?1 building, ?2 from,
/// ?3 to.
const DAILY: &str = "WITH daily AS (SELECT date, SUM(consumption) AS consumption, AVG(temperature) AS temperature \
     FROM records WHERE building_id = ?1 AND content_key IS NULL AND status = 'VALID' AND date >= ?2 AND date <= ?3 \
     GROUP BY date)";

const SUMMARY_COLUMNS: &str = "building_id, COUNT(*), SUM(CASE WHEN status = 'VALID' THEN 1 ELSE 0 END), \
     MIN(date), MAX(date), MAX(CASE WHEN status = 'VALID' THEN date END)";

fn summary(row: &SqliteRow) -> Result<BuildingSummary, StoreError> {
    Ok(BuildingSummary {
        building_id: row.try_get(0).map_err(store_error)?,
        records: row.try_get(1).map_err(store_error)?,
        valid_records: row.try_get::<Option<i64>, _>(2).map_err(store_error)?.unwrap_or(0),
        first_date: opt_day(row.try_get(3).map_err(store_error)?)?,
        last_date: opt_day(row.try_get(4).map_err(store_error)?)?,
        latest_valid_date: opt_day(row.try_get(5).map_err(store_error)?)?,
    })
}

/// The SQL expression of a day's period start.
fn period_key(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Day => "date",
        // strftime('%w') is 0 on Sunday: step back to the ISO week's Monday.
        Granularity::Week => "date(date, '-' || ((CAST(strftime('%w', date) AS INTEGER) + 6) % 7) || ' days')",
        Granularity::Month => "strftime('%Y-%m-01', date)",
    }
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn buildings(&self) -> Result<Vec<BuildingSummary>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM records WHERE building_id IS NOT NULL GROUP BY building_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(store_error)?;
        let mut out = rows.iter().map(summary).collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.building_id.cmp(&b.building_id));
        Ok(out)
    }

    async fn building(&self, building_id: &str) -> Result<Option<BuildingSummary>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM records WHERE building_id = ?1 GROUP BY building_id");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(building_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(summary).transpose()
    }

    async fn daily_observations(
        &self,
        building_id: &str,
        period: Option<DatePeriod>,
    ) -> Result<Vec<DailyObservation>, StoreError> {
        let (from, to) = bounds(period);
        let sql = format!("{DAILY} SELECT date, consumption, temperature FROM daily ORDER BY date");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(building_id)
            .bind(day_text(from))
            .bind(day_text(to))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(DailyObservation {
                    date: parse_day(row.try_get(0).map_err(store_error)?)?,
                    consumption: row.try_get(1).map_err(store_error)?,
                    temperature: row.try_get(2).map_err(store_error)?,
                })
            })
            .collect()
    }

    async fn all_daily_observations(
        &self,
        period: Option<DatePeriod>,
    ) -> Result<Vec<BuildingObservations>, StoreError> {
        let (from, to) = bounds(period);
        let mut rows = sqlx::query(
            "SELECT building_id, date, SUM(consumption), AVG(temperature) FROM records \
             WHERE content_key IS NULL AND status = 'VALID' AND building_id IS NOT NULL AND date >= ?1 AND date <= ?2 \
             GROUP BY building_id, date ORDER BY building_id, date",
        )
        .bind(day_text(from))
        .bind(day_text(to))
        .fetch(&self.pool);
        let mut out: Vec<BuildingObservations> = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(store_error)? {
            let building: &str = row.try_get(0).map_err(store_error)?;
            let observation = DailyObservation {
                date: parse_day(row.try_get(1).map_err(store_error)?)?,
                consumption: row.try_get(2).map_err(store_error)?,
                temperature: row.try_get(3).map_err(store_error)?,
            };
            match out.last_mut() {
                Some(last) if last.building_id == building => last.observations.push(observation),
                _ => {
                    out.push(BuildingObservations { building_id: building.to_owned(), observations: vec![observation] })
                }
            }
        }
        out.sort_by(|a, b| a.building_id.cmp(&b.building_id));
        Ok(out)
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let (from, to) = bounds(query.period);
        let sql = format!(
            "{DAILY} SELECT {key} AS period_start, SUM(consumption), AVG(temperature), \
             SUM(MAX(0.0, ?4 - temperature)), SUM(MAX(0.0, temperature - ?5)), COUNT(*) \
             FROM daily GROUP BY period_start ORDER BY period_start",
            key = period_key(query.granularity)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&query.building_id)
            .bind(day_text(from))
            .bind(day_text(to))
            .bind(query.heating_base)
            .bind(query.cooling_base)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(SeriesPoint {
                    period_start: parse_day(row.try_get(0).map_err(store_error)?)?,
                    consumption: row.try_get(1).map_err(store_error)?,
                    mean_temperature: row.try_get(2).map_err(store_error)?,
                    heating_degree_days: row.try_get(3).map_err(store_error)?,
                    cooling_degree_days: row.try_get(4).map_err(store_error)?,
                    valid_days: row.try_get(5).map_err(store_error)?,
                })
            })
            .collect()
    }
}
