//! Use case: the data-quality report (`emdp report`, `GET /api/v1/quality/report`).
//!
//! Every figure comes from the database ([`QualityStore`]); this module only asks for them and
//! puts them together (shares are the counts divided by their total).

use chrono::NaiveDate;
use serde::Serialize;

use crate::ports::{
    AlertStore, BatchCounts, Completeness, Flatline, Gap, GroupCounts, QualityFilter, QualityStore, RecordBreakdown,
    RecordCounts, RowBreakdown, RowCounts, StatusCounts, StoreError,
};

/// The report's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thresholds {
    /// A building is stale when its latest VALID day is more than this many days before today.
    pub stale_days: u32,
    /// A flatline is at least this many consecutive days with the same consumption.
    pub flatline_days: u32,
    /// At most this many gaps are listed (the totals count all of them).
    pub max_gaps: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { stale_days: 3, flatline_days: 4, max_gaps: 100_000 }
    }
}

/// Shares of a total per status, between 0 and 1 (0 when the total is 0).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusShares {
    /// VALID / total.
    pub valid: f64,
    /// INCOMPLETE / total.
    pub incomplete: f64,
    /// INCONSISTENT / total.
    pub inconsistent: f64,
}

impl StatusShares {
    /// The shares of `counts`.
    pub fn of(counts: &StatusCounts) -> Self {
        let share = |n: i64| if counts.total == 0 { 0.0 } else { n as f64 / counts.total as f64 };
        StatusShares {
            valid: share(counts.valid),
            incomplete: share(counts.incomplete),
            inconsistent: share(counts.inconsistent),
        }
    }
}

/// A building that is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaleBuilding {
    /// The building.
    pub building_id: String,
    /// Its latest VALID day (`None`: none at all).
    pub last_valid_day: Option<NaiveDate>,
    /// Days from then to today.
    pub days_since_valid: Option<i64>,
}

/// The breakdowns of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Breakdowns {
    /// Records per provider.
    pub providers: Vec<GroupCounts<String>>,
    /// Records per day (the time line).
    pub days: Vec<GroupCounts<NaiveDate>>,
    /// Payloads per batch.
    pub batches: Vec<BatchCounts>,
}

/// The whole data-quality report for a filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualityReport {
    /// The filter it covers.
    pub filter: QualityFilter,
    /// The day staleness and the expected ranges count from.
    pub today: NaiveDate,
    /// The thresholds used.
    pub thresholds: Thresholds,
    /// Curated records (one per key, showing the winning version).
    pub records: RecordCounts,
    /// Shares of the records per status.
    pub shares: StatusShares,
    /// Every received payload as classified on arrival (what `emdp validate` reports).
    pub rows: RowCounts,
    /// Completeness per building, with totals (the buildings breakdown).
    pub completeness: Completeness,
    /// The gaps, by building then day.
    pub gaps: Vec<Gap>,
    /// Stale buildings.
    pub stale: Vec<StaleBuilding>,
    /// Flatlines.
    pub flatlines: Vec<Flatline>,
    /// Breakdowns per provider, day and batch.
    pub breakdowns: Breakdowns,
}

/// Computes the report for `filter`, with `today` as the reference day.
pub async fn quality_report(
    store: &dyn QualityStore,
    filter: &QualityFilter,
    today: NaiveDate,
    thresholds: Thresholds,
) -> Result<QualityReport, StoreError> {
    // Independent queries: run them concurrently (each takes its own connection).
    let (record_breakdown, row_breakdown, (completeness, gaps), flatlines) = tokio::try_join!(
        store.record_breakdown(filter),
        store.row_breakdown(filter),
        store.completeness_and_gaps(filter, today, thresholds.stale_days, thresholds.max_gaps),
        store.flatlines(filter, thresholds.flatline_days),
    )?;
    let RecordBreakdown { counts: records, providers, days } = record_breakdown;
    let RowBreakdown { counts: rows, batches } = row_breakdown;
    let stale = completeness
        .buildings
        .iter()
        .filter(|b| b.stale)
        .map(|b| StaleBuilding {
            building_id: b.building_id.clone(),
            last_valid_day: b.last_valid_day,
            days_since_valid: b.days_since_valid,
        })
        .collect();
    Ok(QualityReport {
        filter: filter.clone(),
        today,
        thresholds,
        shares: StatusShares::of(&records.status),
        records,
        rows,
        completeness,
        gaps,
        stale,
        flatlines,
        breakdowns: Breakdowns { providers, days, batches },
    })
}

/// How many alerts are firing about the data `filter` covers: every firing alert without a
/// filter; with one, the alerts about a building named by a record matching it (an alert about
/// no building, such as a source's silence, is then not counted).
pub async fn firing_alerts(
    alerts: &dyn AlertStore,
    quality: &dyn QualityStore,
    filter: &QualityFilter,
) -> Result<i64, StoreError> {
    let firing = alerts.firing_alerts().await?;
    if *filter == QualityFilter::default() {
        return Ok(firing.len() as i64);
    }
    let mut buildings: Vec<String> = firing.iter().filter_map(|alert| alert.building.clone()).collect();
    buildings.sort_unstable();
    buildings.dedup();
    let covered: std::collections::HashSet<String> = if buildings.is_empty() {
        Default::default()
    } else {
        quality.buildings_among(filter, &buildings).await?.into_iter().collect()
    };
    Ok(firing.iter().filter(|alert| alert.building.as_ref().is_some_and(|b| covered.contains(b))).count() as i64)
}

/// A page of buildings for the per-building parts of the quality routes: the buildings after
/// `cursor` (a building id, in byte order, whatever the database's collation), at most `limit`
/// of them. Keyset paging: a page stays the same when buildings before it change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildingPage {
    /// The last building of the previous page (`next_cursor`), `None` for the first page.
    pub cursor: Option<String>,
    /// Buildings per page.
    pub limit: u32,
}

/// Which buildings a page holds, found by [`BuildingPage::window`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildingWindow {
    after: Option<String>,
    last: Option<String>,
    /// The cursor of the next page: `None` on the last page.
    pub next_cursor: Option<String>,
}

impl BuildingPage {
    /// The window of this page over `ids` (every building of the answer, in any order,
    /// repeats allowed).
    pub fn window<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> BuildingWindow {
        let mut ids: Vec<&str> = ids.into_iter().filter(|id| self.cursor.as_deref().is_none_or(|c| *id > c)).collect();
        ids.sort_unstable();
        ids.dedup();
        let limit = self.limit as usize;
        let last = ids.get(..limit.min(ids.len())).and_then(<[&str]>::last).map(|id| (*id).to_owned());
        let next_cursor = if ids.len() > limit { last.clone() } else { None };
        BuildingWindow { after: self.cursor.clone(), last, next_cursor }
    }
}

impl BuildingWindow {
    /// Whether `building` is on the page.
    pub fn contains(&self, building: &str) -> bool {
        self.after.as_deref().is_none_or(|after| building > after)
            && self.last.as_deref().is_some_and(|last| building <= last)
    }
}

impl QualityReport {
    /// The report with its per-building parts (completeness rows, gaps, stale buildings,
    /// flatlines) cut to `page`, and the next page's cursor; every total, share and breakdown
    /// stays whole.
    pub fn page(mut self, page: &BuildingPage) -> (QualityReport, Option<String>) {
        let window = page.window(self.completeness.buildings.iter().map(|b| b.building_id.as_str()));
        self.completeness.buildings.retain(|b| window.contains(&b.building_id));
        self.gaps.retain(|gap| window.contains(&gap.building_id));
        self.stale.retain(|stale| window.contains(&stale.building_id));
        self.flatlines.retain(|flatline| window.contains(&flatline.building_id));
        (self, window.next_cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(cursor: Option<&str>, limit: u32) -> BuildingPage {
        BuildingPage { cursor: cursor.map(str::to_owned), limit }
    }

    #[test]
    fn pages_walk_every_building_once_in_byte_order() {
        let ids = ["b", "a", "B", "c", "a", "d"];
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let window = page(cursor.as_deref(), 2).window(ids);
            seen.extend(
                ids.iter().filter(|id| window.contains(id)).copied().collect::<std::collections::BTreeSet<_>>(),
            );
            match window.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["B", "a", "b", "c", "d"]);
    }

    #[test]
    fn a_full_last_page_has_no_next_cursor() {
        let window = page(None, 2).window(["a", "b"]);
        assert!(window.contains("a") && window.contains("b"));
        assert_eq!(window.next_cursor, None);
        let window = page(Some("b"), 2).window(["a", "b"]);
        assert!(!window.contains("a") && !window.contains("b") && !window.contains("c"));
    }
}
