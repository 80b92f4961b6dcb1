//! `/api/v1/quality` and `/api/v1/duplicates`: the health of the data, and conflict groups
//! with their resolution. Every figure is computed by the database.

use axum::Json;
use axum::extract::{Path, State};
use chrono::NaiveDate;
use emdp_app::ports::{
    Clock, Completeness, DuplicateFilter, DuplicateTotals, Gap, GroupCounts, QualityFilter, RecordCounts,
};
use emdp_app::usecases::duplicates::{Choice, ResolveError, ResolveOutcome, list_groups, resolve_all, resolve_one};
use emdp_app::usecases::report::{BuildingPage, QualityReport, Thresholds, quality_report};
use emdp_domain::{Arrival, ConflictPolicy};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::dto::GroupPageDto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, BuildingPageParams, FromQuery, Page, Params, QueryParams, Scope};
use crate::state::AppState;

/// The batch filter of the quality routes.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchParam {
    /// Only records that received a payload in this ingestion batch (and, for row counts,
    /// only that batch's payloads).
    pub batch: Option<i64>,
}

impl FromQuery for BatchParam {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(BatchParam { batch: query.get("batch", "a batch id")? })
    }
}

/// The filter of a quality route: a scope and a batch.
pub fn quality_filter(scope: Scope, batch: BatchParam) -> QualityFilter {
    QualityFilter {
        building_id: scope.building_id,
        provider: scope.provider,
        from: scope.from,
        to: scope.to,
        batch: batch.batch,
    }
}

/// The day and thresholds a quality report is computed with.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// The day staleness is measured from (default: today, UTC).
    pub today: Option<NaiveDate>,
    /// A building is stale when its latest VALID day is older than this (default 3).
    pub stale_days: Option<u32>,
    /// Equal consumption on this many consecutive days is a flatline (default 4, at least 2).
    #[param(minimum = 2)]
    pub flatline_days: Option<u32>,
}

impl FromQuery for ReportParams {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(ReportParams {
            today: query.date("today")?,
            stale_days: query.get("stale_days", "a number of days")?,
            flatline_days: query
                .get_with("flatline_days", "a number of days, at least 2", |t| t.parse().ok().filter(|d| *d >= 2))?,
        })
    }
}

impl ReportParams {
    /// "Today" (the clock's unless given) and the thresholds (the defaults unless given).
    pub fn resolve(&self, clock: &dyn Clock) -> (NaiveDate, Thresholds) {
        let defaults = Thresholds::default();
        let thresholds = Thresholds {
            stale_days: self.stale_days.unwrap_or(defaults.stale_days),
            flatline_days: self.flatline_days.unwrap_or(defaults.flatline_days),
            ..defaults
        };
        (self.today.unwrap_or_else(|| clock.today()), thresholds)
    }
}

/// Counts per status and reason of the curated records, with the duplicates among and the
/// number of received rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryDto {
    /// The curated records' counts.
    #[serde(flatten)]
    pub records: RecordCounts,
    /// Exact and conflicting duplicates among the received rows (within the sources:
    /// re-deliveries are not duplicates).
    pub duplicates: DuplicateTotals,
    /// Re-delivered rows: equal to a version an earlier batch stored (a file ingested again).
    pub redelivered: i64,
    /// Rows received (every payload, duplicates and re-deliveries included).
    pub rows_received: i64,
}

/// Counts per status (curated records), per reason, duplicates and re-deliveries (received rows).
#[utoipa::path(get, path = "/api/v1/quality/summary", tag = "quality",
    params(Scope, BatchParam),
    responses((status = 200, description = "The summary", body = SummaryDto)))]
pub async fn summary(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(batch): Params<BatchParam>,
) -> ApiResult<Json<SummaryDto>> {
    let filter = quality_filter(scope, batch);
    let (records, rows) = tokio::try_join!(state.quality.record_counts(&filter), state.quality.row_counts(&filter))?;
    Ok(Json(SummaryDto {
        records,
        duplicates: rows.duplicates,
        redelivered: rows.redelivered,
        rows_received: rows.status.total + rows.redelivered,
    }))
}

/// A page of the quality report: every total, share and breakdown, with the per-building
/// parts for one page of buildings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportPage {
    /// The report; `completeness.buildings`, `gaps`, `stale` and `flatlines` hold this page's
    /// buildings only.
    #[serde(flatten)]
    pub report: QualityReport,
    /// Pass as `cursor` for the next page of buildings; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The whole quality report: shares, reasons, duplicates, completeness with gaps, stale
/// buildings, flatlines, breakdowns per provider, day and batch. The per-building parts are
/// paged by building id (`limit`, `cursor`); the totals cover every building.
#[utoipa::path(get, path = "/api/v1/quality/report", tag = "quality",
    params(Scope, BatchParam, ReportParams, BuildingPageParams),
    responses((status = 200, description = "The report, with one page of buildings", body = ReportPage)))]
pub async fn report(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(batch): Params<BatchParam>,
    Params(settings): Params<ReportParams>,
    Params(page): Params<BuildingPageParams>,
) -> ApiResult<Json<ReportPage>> {
    let (today, thresholds) = settings.resolve(state.clock.as_ref());
    let report = quality_report(state.quality.as_ref(), &quality_filter(scope, batch), today, thresholds).await?;
    let (report, next_cursor) = report.page(&page.into());
    Ok(Json(ReportPage { report, next_cursor }))
}

/// Counts per status for each day, in day order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Timeline(pub Vec<GroupCounts<NaiveDate>>);

/// Counts per status for each day (a time line).
#[utoipa::path(get, path = "/api/v1/quality/timeline", tag = "quality",
    params(Scope, BatchParam),
    responses((status = 200, description = "Per day", body = Timeline)))]
pub async fn timeline(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(batch): Params<BatchParam>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(Timeline(state.quality.by_day(&quality_filter(scope, batch)).await?)))
}

/// A page of buildings' quality figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildingsPage {
    /// Totals over every building of the filter, and this page's buildings.
    #[serde(flatten)]
    pub completeness: Completeness,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Per building: counts per status, completeness, gaps, latest VALID day, staleness; paged by
/// building id (`limit`, `cursor`), the totals cover every building.
#[utoipa::path(get, path = "/api/v1/quality/buildings", tag = "quality",
    params(Scope, BatchParam, ReportParams, BuildingPageParams),
    responses((status = 200, description = "A page of buildings", body = BuildingsPage)))]
pub async fn buildings(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(batch): Params<BatchParam>,
    Params(settings): Params<ReportParams>,
    Params(page): Params<BuildingPageParams>,
) -> ApiResult<Json<BuildingsPage>> {
    let (today, thresholds) = settings.resolve(state.clock.as_ref());
    let mut completeness =
        state.quality.completeness(&quality_filter(scope, batch), today, thresholds.stale_days).await?;
    let window = BuildingPage::from(page).window(completeness.buildings.iter().map(|b| b.building_id.as_str()));
    completeness.buildings.retain(|b| window.contains(&b.building_id));
    Ok(Json(BuildingsPage { completeness, next_cursor: window.next_cursor }))
}

/// A page of gaps.
#[derive(Debug, Serialize, ToSchema)]
pub struct GapPage {
    /// The gaps of this page's buildings, by building then start day.
    pub items: Vec<Gap>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Missing days (no VALID record) as gap ranges per building; paged by building id (`limit`
/// buildings with gaps a page, every gap of each).
#[utoipa::path(get, path = "/api/v1/quality/gaps", tag = "quality",
    params(Scope, BatchParam, ReportParams, BuildingPageParams),
    responses((status = 200, description = "A page of gaps", body = GapPage)))]
pub async fn gaps(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(batch): Params<BatchParam>,
    Params(settings): Params<ReportParams>,
    Params(page): Params<BuildingPageParams>,
) -> ApiResult<Json<GapPage>> {
    let (today, thresholds) = settings.resolve(state.clock.as_ref());
    let mut items = state.quality.gaps(&quality_filter(scope, batch), today, thresholds.max_gaps).await?;
    let window = BuildingPage::from(page).window(items.iter().map(|gap| gap.building_id.as_str()));
    items.retain(|gap| window.contains(&gap.building_id));
    Ok(Json(GapPage { items, next_cursor: window.next_cursor }))
}

/// Conflict groups (keys with several versions), each with every version, its source and
/// arrival, and the version that wins. Keyset pagination by record id.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "quality",
    params(Scope, PendingParam, Page),
    responses((status = 200, description = "A page of conflict groups", body = GroupPageDto)))]
pub async fn duplicates(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(pending): Params<PendingParam>,
    Params(page): Params<Page>,
) -> ApiResult<Json<GroupPageDto>> {
    let filter = duplicate_filter(scope, pending);
    let groups = list_groups(state.duplicates.as_ref(), &filter, page.cursor, page.limit).await?;
    Ok(Json(GroupPageDto::new(groups, &state.rules)))
}

/// The pending filter of the duplicate routes.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingParam {
    /// Only groups waiting for a manual decision (default false).
    pub pending: Option<bool>,
}

impl FromQuery for PendingParam {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(PendingParam { pending: query.get("pending", "true or false")? })
    }
}

/// The filter of the duplicate routes.
fn duplicate_filter(scope: Scope, pending: PendingParam) -> DuplicateFilter {
    DuplicateFilter {
        building_id: scope.building_id,
        provider: scope.provider,
        from: scope.from,
        to: scope.to,
        pending_only: pending.pending.unwrap_or(false),
    }
}

/// How to resolve: a policy, or an explicit version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `prefer_valid`, `keep_first`, `keep_latest` or `manual` (`keep-latest` is read too).
    pub policy: Option<String>,
    /// The version to keep (its batch and line).
    pub version: Option<VersionRef>,
}

/// A version, by arrival: `{"batch_id": N, "line": N}` (`batch` is read too).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRef {
    /// Its batch.
    #[serde(alias = "batch")]
    pub batch_id: i64,
    /// Its line in the batch.
    pub line: i64,
}

fn parse_resolve(body: &Body) -> ApiResult<Choice> {
    if !matches!(body.media_type.as_str(), "application/json" | "") {
        return Err(ApiError::UnsupportedMediaType("resolve reads application/json".into()));
    }
    let request: ResolveRequest = serde_json::from_slice(&body.bytes)
        .map_err(|err| ApiError::BadRequest { detail: format!("invalid resolve request: {err}"), field: None })?;
    match (request.policy, request.version) {
        (Some(policy), None) => ConflictPolicy::try_parse(&policy)
            .map(Choice::Policy)
            .map_err(|err| ApiError::field("policy", err.to_string())),
        (None, Some(version)) => Ok(Choice::Version(Arrival { batch: version.batch_id, line: version.line })),
        _ => Err(ApiError::BadRequest {
            detail: "give either a policy or a version".into(),
            field: Some("policy".into()),
        }),
    }
}

impl From<ResolveError> for ApiError {
    fn from(err: ResolveError) -> Self {
        match err {
            ResolveError::NotFound(_) => ApiError::NotFound(err.to_string()),
            ResolveError::NotAGroup(_) => ApiError::Conflict(err.to_string()),
            ResolveError::NoSuchVersion { .. } => ApiError::field("version", err.to_string()),
            ResolveError::Store(err) => err.into(),
        }
    }
}

/// Re-resolves one conflict group (`POST /api/v1/duplicates/{record_id}:resolve`) with a
/// policy or an explicit version; the decision is recorded and nothing is deleted.
#[utoipa::path(post, path = "/api/v1/duplicates/{key}:resolve", tag = "quality",
    params(("key" = i64, Path, description = "The record id of the group")),
    request_body(content = ResolveRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What changed", body = ResolveOutcome),
        (status = 400, description = "A bad policy or version", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The record has a single version: nothing to resolve", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn resolve(
    State(state): State<AppState>,
    Path(target): Path<String>,
    body: Body,
) -> ApiResult<Json<ResolveOutcome>> {
    let Some(id) = target.strip_suffix(":resolve") else {
        return Err(ApiError::NotFound(format!("no such route: /api/v1/duplicates/{target}")));
    };
    let id = crate::extract::record_id(id)?;
    let choice = parse_resolve(&body)?;
    Ok(Json(resolve_one(state.duplicates.as_ref(), id, choice, "api", state.clock.now()).await?))
}

/// Re-resolves every conflict group matching the filters with a policy.
#[utoipa::path(post, path = "/api/v1/duplicates:resolve", tag = "quality",
    params(Scope, PendingParam),
    request_body(content = ResolveRequest, content_type = "application/json"),
    responses((status = 200, description = "What changed", body = ResolveOutcome)))]
pub async fn resolve_groups(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(pending): Params<PendingParam>,
    body: Body,
) -> ApiResult<Json<ResolveOutcome>> {
    let Choice::Policy(policy) = parse_resolve(&body)? else {
        return Err(ApiError::field("version", "resolving all groups takes a policy, not a version"));
    };
    let filter = duplicate_filter(scope, pending);
    Ok(Json(resolve_all(state.duplicates.as_ref(), &filter, policy, "api", state.clock.now()).await?))
}
