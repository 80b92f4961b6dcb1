//! `/api/v1/quality` and `/api/v1/duplicates`: the health of the data, and conflict groups
//! with their resolution. Every figure is computed by the database.

use axum::Json;
use axum::extract::{Path, State};
use emdp_app::ports::{DuplicateFilter, QualityFilter};
use emdp_app::usecases::duplicates::{
    Choice, GroupPage, ResolveError, ResolveOutcome, list_groups, resolve_all, resolve_one,
};
use emdp_app::usecases::report::{QualityReport, Thresholds, quality_report};
use emdp_domain::{Arrival, ConflictPolicy};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, QueryParams};
use crate::state::AppState;

/// The filters shared by the quality routes.
pub fn quality_filter(query: &QueryParams) -> ApiResult<QualityFilter> {
    Ok(QualityFilter {
        building_id: query.raw("building_id").map(str::to_owned),
        provider: query.raw("provider").map(str::to_owned),
        from: query.date("from")?,
        to: query.date("to")?,
        batch: query.get("batch", "a batch id")?,
    })
}

/// Counts per status (curated records), per reason, and duplicates (received rows).
#[utoipa::path(get, path = "/api/v1/quality/summary", tag = "quality",
    params(
        ("building_id" = Option<String>, Query, description = "Only this building"),
        ("provider" = Option<String>, Query, description = "Only this provider"),
        ("from" = Option<String>, Query, description = "Only days on or after"),
        ("to" = Option<String>, Query, description = "Only days on or before"),
        ("batch" = Option<i64>, Query, description = "Only this ingestion batch"),
    ),
    responses((status = 200, description = "The summary", body = Object)))]
pub async fn summary(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<serde_json::Value>> {
    let filter = quality_filter(&query)?;
    let (records, rows) = tokio::try_join!(state.quality.record_counts(&filter), state.quality.row_counts(&filter))?;
    let mut summary = serde_json::to_value(&records).unwrap_or_default();
    summary["duplicates"] = serde_json::to_value(rows.duplicates).unwrap_or_default();
    summary["rows_received"] = rows.status.total.into();
    Ok(Json(summary))
}

/// The whole quality report: shares, reasons, duplicates, completeness with gaps, stale
/// buildings, flatlines, breakdowns per provider, day and batch.
#[utoipa::path(get, path = "/api/v1/quality/report", tag = "quality",
    params(
        ("building_id" = Option<String>, Query, description = "Only this building"),
        ("provider" = Option<String>, Query, description = "Only this provider"),
        ("from" = Option<String>, Query, description = "Only days on or after"),
        ("to" = Option<String>, Query, description = "Only days on or before"),
        ("batch" = Option<i64>, Query, description = "Only this ingestion batch"),
        ("today" = Option<String>, Query, description = "The day staleness is measured from (default: today, UTC)"),
        ("stale_days" = Option<u32>, Query, description = "A building is stale when its latest VALID day is older than this (default 3)"),
        ("flatline_days" = Option<u32>, Query, description = "Equal consumption on this many consecutive days is a flatline (default 4)"),
    ),
    responses((status = 200, description = "The report", body = Object)))]
pub async fn report(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<QualityReport>> {
    Ok(Json(build_report(&state, &query).await?))
}

async fn build_report(state: &AppState, query: &QueryParams) -> ApiResult<QualityReport> {
    let filter = quality_filter(query)?;
    let (today, thresholds) = report_settings(state, query)?;
    Ok(quality_report(state.quality.as_ref(), &filter, today, thresholds).await?)
}

/// "Today" and the thresholds of a report request.
pub(crate) fn report_settings(state: &AppState, query: &QueryParams) -> ApiResult<(chrono::NaiveDate, Thresholds)> {
    let defaults = Thresholds::default();
    let thresholds = Thresholds {
        stale_days: query.get("stale_days", "a number of days")?.unwrap_or(defaults.stale_days),
        flatline_days: query
            .get_with("flatline_days", "a number of days, at least 2", |t| t.parse().ok().filter(|d| *d >= 2))?
            .unwrap_or(defaults.flatline_days),
        ..defaults
    };
    let today = query.date("today")?.unwrap_or_else(|| state.clock.today());
    Ok((today, thresholds))
}

/// Counts per status for each day (a time line).
#[utoipa::path(get, path = "/api/v1/quality/timeline", tag = "quality",
    params(("building_id" = Option<String>, Query, description = "Filters: building_id, provider, from, to, batch")),
    responses((status = 200, description = "Per day", body = Vec<Object>)))]
pub async fn timeline(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<serde_json::Value>> {
    let filter = quality_filter(&query)?;
    Ok(Json(serde_json::to_value(state.quality.by_day(&filter).await?).unwrap_or_default()))
}

/// Per building: counts per status, completeness, gaps, latest VALID day, staleness.
#[utoipa::path(get, path = "/api/v1/quality/buildings", tag = "quality",
    params(("building_id" = Option<String>, Query, description = "Filters: building_id, provider, from, to, batch; today, stale_days")),
    responses((status = 200, description = "Per building", body = Object)))]
pub async fn buildings(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<serde_json::Value>> {
    let filter = quality_filter(&query)?;
    let (today, thresholds) = report_settings(&state, &query)?;
    let completeness = state.quality.completeness(&filter, today, thresholds.stale_days).await?;
    Ok(Json(serde_json::to_value(completeness).unwrap_or_default()))
}

/// Missing days (no VALID record) as gap ranges per building.
#[utoipa::path(get, path = "/api/v1/quality/gaps", tag = "quality",
    params(("building_id" = Option<String>, Query, description = "Filters: building_id, provider, from, to, batch")),
    responses((status = 200, description = "Gaps", body = Vec<Object>)))]
pub async fn gaps(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<serde_json::Value>> {
    let filter = quality_filter(&query)?;
    let (today, thresholds) = report_settings(&state, &query)?;
    let gaps = state.quality.gaps(&filter, today, thresholds.max_gaps).await?;
    Ok(Json(serde_json::to_value(gaps).unwrap_or_default()))
}

/// Conflict groups (keys with several versions), each with every version, its source and
/// arrival, and the version that wins. Keyset pagination by record id.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "quality",
    params(
        ("building_id" = Option<String>, Query, description = "Only this building"),
        ("provider" = Option<String>, Query, description = "Only this provider"),
        ("from" = Option<String>, Query, description = "Only days on or after"),
        ("to" = Option<String>, Query, description = "Only days on or before"),
        ("pending" = Option<bool>, Query, description = "Only groups waiting for a manual decision"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=1000 (default 100)"),
        ("cursor" = Option<i64>, Query, description = "`next_after` of the previous page"),
    ),
    responses((status = 200, description = "A page of conflict groups", body = Object)))]
pub async fn duplicates(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<GroupPage>> {
    let filter = duplicate_filter(&query)?;
    let limit = query.page_limit()?;
    let after = query.get("cursor", "a cursor returned as next_after")?;
    Ok(Json(list_groups(state.duplicates.as_ref(), &filter, after, limit).await?))
}

/// The filters of the duplicate routes.
fn duplicate_filter(query: &QueryParams) -> ApiResult<DuplicateFilter> {
    Ok(DuplicateFilter {
        building_id: query.raw("building_id").map(str::to_owned),
        provider: query.raw("provider").map(str::to_owned),
        from: query.date("from")?,
        to: query.date("to")?,
        pending_only: query.get("pending", "true or false")?.unwrap_or(false),
    })
}

/// How to resolve: a policy, or an explicit version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `prefer_valid`, `keep_first`, `keep_latest` or `manual`.
    pub policy: Option<String>,
    /// The version to keep (its batch and line).
    pub version: Option<VersionRef>,
}

/// A version, by arrival.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRef {
    /// Its batch.
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
        (Some(policy), None) => ConflictPolicy::parse(&policy).map(Choice::Policy).ok_or_else(|| {
            ApiError::field("policy", format!("'{policy}' is not prefer_valid, keep_first, keep_latest or manual"))
        }),
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
        (status = 200, description = "What changed", body = Object),
        (status = 400, description = "A bad policy or version", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
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
    params(("building_id" = Option<String>, Query, description = "Only groups of this building (also provider, from, to, pending)")),
    request_body(content = ResolveRequest, content_type = "application/json"),
    responses((status = 200, description = "What changed", body = Object)))]
pub async fn resolve_groups(
    State(state): State<AppState>,
    query: QueryParams,
    body: Body,
) -> ApiResult<Json<ResolveOutcome>> {
    let Choice::Policy(policy) = parse_resolve(&body)? else {
        return Err(ApiError::field("version", "resolving all groups takes a policy, not a version"));
    };
    let filter = duplicate_filter(&query)?;
    Ok(Json(resolve_all(state.duplicates.as_ref(), &filter, policy, "api", state.clock.now()).await?))
}
