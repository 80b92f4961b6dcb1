//! The original MVP's routes, with its request and response shapes, for clients written
//! against it. Deprecated in the OpenAPI document: new clients use `/api/v1`.
//!
//! Shapes: a record is `{id, building_id, date, consumption, temperature, provider,
//! data_quality, created_at}` with `data_quality` in lower case (`valid`, `incomplete`,
//! `inconsistent`); ids are strings (the MVP used MongoDB ObjectIds).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use emdp_app::ports::{RecordFilter, StoredRecord};
use emdp_app::usecases::records::edit_record;
use emdp_domain::ColumnNames;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, FromQuery, Params, QueryParams, record_id};
use crate::routes::records::{body_source, parse_patch, verdicts};
use crate::state::AppState;

/// The MVP's energy record.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyRecord {
    /// The record id (a string, as MongoDB ids were).
    pub id: String,
    /// The building.
    pub building_id: Option<String>,
    /// The day.
    pub date: Option<NaiveDate>,
    /// The consumption.
    pub consumption: Option<f64>,
    /// The temperature.
    pub temperature: Option<f64>,
    /// The provider.
    pub provider: Option<String>,
    /// `valid`, `incomplete` or `inconsistent`.
    pub data_quality: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl From<&StoredRecord> for LegacyRecord {
    fn from(record: &StoredRecord) -> Self {
        let fields = &record.state.fields;
        LegacyRecord {
            id: record.id.to_string(),
            building_id: fields.building_id.clone(),
            date: fields.date,
            consumption: fields.consumption,
            temperature: fields.temperature,
            provider: fields.provider.clone(),
            data_quality: record.state.status.as_str().to_ascii_lowercase(),
            created_at: record.created_at,
        }
    }
}

/// The MVP's validation verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyValidation {
    /// `valid`, `incomplete` or `inconsistent`.
    pub data_quality: String,
    /// Whether a record with the same building, date and provider is stored.
    pub is_duplicate: bool,
}

/// The MVP's health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyHealth {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness (MVP route).
#[utoipa::path(get, path = "/health", tag = "legacy",
    responses((status = 200, description = "Alive", body = LegacyHealth)))]
#[deprecated = "use GET /api/v1/health"]
pub async fn health() -> Json<LegacyHealth> {
    Json(LegacyHealth { status: "ok" })
}

fn require_json(body: &Body) -> ApiResult<()> {
    if matches!(body.media_type.as_str(), "application/json" | "") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType("this route reads application/json".into()))
    }
}

/// The MVP routes' one record: an array of several is a 400, found at its second element
/// (nothing more is read).
fn one_record(
    state: &AppState,
    source: &mut dyn emdp_app::ports::RecordSource,
) -> ApiResult<Vec<emdp_app::ports::RawRow>> {
    crate::routes::records::classify_body(state, source, 1).map_err(|err| match err {
        ApiError::TooManyRecords(_) => {
            ApiError::BadRequest { detail: "send exactly one record object".into(), field: None }
        }
        other => other,
    })
}

/// Store one record (MVP route).
#[utoipa::path(post, path = "/energy-record", tag = "legacy",
    request_body(content = Object, description = "A record object"),
    responses(
        (status = 201, description = "Stored", body = LegacyRecord),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[deprecated = "use POST /api/v1/records"]
pub async fn create(State(state): State<AppState>, body: Body) -> ApiResult<(StatusCode, Json<LegacyRecord>)> {
    require_json(&body)?;
    let (mut source, format, _) = body_source(&body, ColumnNames::default())?;
    let rows = one_record(&state, source.as_mut())?;
    if rows.len() != 1 {
        return Err(ApiError::BadRequest { detail: "send exactly one record object".into(), field: None });
    }
    let (_, links) = state.ingestor.ingest_rows(&rows, "api:legacy", format, None, None).await?;
    let record = state
        .store
        .get_record(links[0].record_id)
        .await?
        .ok_or_else(|| ApiError::Internal("the stored record vanished".into()))?;
    Ok((StatusCode::CREATED, Json(LegacyRecord::from(&record))))
}

/// Classify one record without storing it (MVP route).
#[utoipa::path(post, path = "/energy-record:validate", tag = "legacy",
    request_body(content = Object, description = "A record object"),
    responses((status = 200, description = "The verdict", body = LegacyValidation)))]
#[deprecated = "use POST /api/v1/records:validate"]
pub async fn validate(State(state): State<AppState>, body: Body) -> ApiResult<Json<LegacyValidation>> {
    require_json(&body)?;
    let (mut source, _, _) = body_source(&body, ColumnNames::default())?;
    let rows = one_record(&state, source.as_mut())?;
    let Some(row) = rows.first().filter(|_| rows.len() == 1) else {
        return Err(ApiError::BadRequest { detail: "send exactly one record object".into(), field: None });
    };
    let verdict = verdicts(&state, std::slice::from_ref(row)).await?;
    Ok(Json(LegacyValidation {
        data_quality: row.status.as_str().to_ascii_lowercase(),
        is_duplicate: verdict.first().is_some_and(|v| v.duplicate_of.is_some()),
    }))
}

/// The deepest `skip + limit` the legacy list serves (it pages by offset).
const MAX_OFFSET: u32 = 100_000;

/// A page of the MVP's record list, by offset.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OffsetPage {
    /// Page size, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: u32,
    /// Records to skip (default 0; `skip + limit` at most 100,000).
    pub skip: Option<u32>,
}

impl FromQuery for OffsetPage {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(OffsetPage { limit: query.page_limit()?, skip: query.get::<u32>("skip", "a whole number")? })
    }
}

/// List records by offset (MVP route).
#[utoipa::path(get, path = "/energy-records", tag = "legacy",
    params(OffsetPage),
    responses((status = 200, description = "Records", body = Vec<LegacyRecord>)))]
#[deprecated = "use GET /api/v1/records (cursor pagination)"]
pub async fn list(
    State(state): State<AppState>,
    Params(page): Params<OffsetPage>,
) -> ApiResult<Json<Vec<LegacyRecord>>> {
    let (limit, skip) = (page.limit, page.skip.unwrap_or(0));
    if skip.saturating_add(limit) > MAX_OFFSET {
        return Err(ApiError::field(
            "skip",
            format!("skip + limit must be at most {MAX_OFFSET}; use /api/v1/records with a cursor"),
        ));
    }
    let records = state.store.list_records(&RecordFilter::default(), None, skip + limit).await?;
    Ok(Json(records.iter().skip(skip as usize).map(LegacyRecord::from).collect()))
}

/// Read one record (MVP route).
#[utoipa::path(get, path = "/energy-records/{id}", tag = "legacy",
    params(("id" = String, Path, description = "Record id")),
    responses(
        (status = 200, description = "The record", body = LegacyRecord),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[deprecated = "use GET /api/v1/records/{id}"]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<LegacyRecord>> {
    let id = record_id(&id)?;
    let record =
        state.store.get_record(id).await?.ok_or_else(|| ApiError::NotFound(format!("no record with id {id}")))?;
    Ok(Json(LegacyRecord::from(&record)))
}

/// Edit a record (MVP route).
#[utoipa::path(patch, path = "/energy-records/{id}", tag = "legacy",
    params(("id" = String, Path, description = "Record id")),
    request_body(content = Object, description = "Fields to change"),
    responses(
        (status = 200, description = "The edited record", body = LegacyRecord),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[deprecated = "use PATCH /api/v1/records/{id}"]
pub async fn patch(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> ApiResult<Json<LegacyRecord>> {
    let id = record_id(&id)?;
    require_json(&body)?;
    let patch = parse_patch(&body.bytes)?;
    let record = edit_record(&state.ingestor, state.store.as_ref(), id, &patch, "api:legacy").await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("no record with id {id}")))?;
    Ok(Json(LegacyRecord::from(&record)))
}

/// Delete a record (MVP route); its raw payloads stay.
#[utoipa::path(delete, path = "/energy-records/{id}", tag = "legacy",
    params(("id" = String, Path, description = "Record id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[deprecated = "use DELETE /api/v1/records/{id}"]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    crate::routes::records::delete(State(state), Path(id)).await
}

/// The MVP's quality summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct LegacySummary {
    /// VALID records.
    pub valid: i64,
    /// INCONSISTENT records.
    pub inconsistent: i64,
    /// INCOMPLETE records.
    pub incomplete: i64,
    /// Duplicate rows received (exact and conflicting).
    pub duplicates: i64,
}

/// Counts per quality and duplicates (MVP route).
#[utoipa::path(get, path = "/quality/summary", tag = "legacy",
    responses((status = 200, description = "Counts", body = LegacySummary)))]
#[deprecated = "use GET /api/v1/quality/summary"]
pub async fn quality_summary(State(state): State<AppState>) -> ApiResult<Json<LegacySummary>> {
    let filter = emdp_app::ports::QualityFilter::default();
    let (records, rows) = tokio::try_join!(state.quality.record_counts(&filter), state.quality.row_counts(&filter))?;
    Ok(Json(LegacySummary {
        valid: records.status.valid,
        inconsistent: records.status.inconsistent,
        incomplete: records.status.incomplete,
        duplicates: rows.duplicates.exact + rows.duplicates.conflicting,
    }))
}
