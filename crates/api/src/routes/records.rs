//! `/api/v1/records`: validate, ingest, list, read, edit, delete, history.

use std::collections::HashMap;
use std::io::Cursor;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use emdp_app::ports::{RawRow, RecordFilter, RecordKey, RecordSource, SourceFormat, StoredKey};
use emdp_app::usecases::ingest::{ClassifyError, IngestSummary};
use emdp_app::usecases::records::{RecordPatch, edit_record};
use emdp_domain::{Admission, ColumnNames, QualityStatus};
use emdp_formats::open_source;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::dto::{FieldsDto, ReasonDto, RecordDto, VersionDto, reasons};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Columns, FromQuery, Page, Params, QueryParams, Scope, record_id};
use crate::state::AppState;

/// Checks that a JSON body is syntactically valid and an object or an array, so that a
/// broken document is a 400 rather than a classification.
fn check_json(bytes: &[u8]) -> ApiResult<()> {
    match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        Err(err) => Err(ApiError::BadRequest { detail: format!("malformed JSON: {err}"), field: None }),
        Ok(_) => match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | Some(b'[') => Ok(()),
            _ => Err(ApiError::BadRequest {
                detail: "the body must be a JSON object or an array of objects".into(),
                field: None,
            }),
        },
    }
}

/// A record source over a request body, chosen by its media type, reading each field from
/// the column (CSV) or key (JSON) `columns` names.
pub fn body_source(body: &Body, columns: ColumnNames) -> ApiResult<(Box<dyn RecordSource + Send>, SourceFormat, bool)> {
    let (format, single) = match body.media_type.as_str() {
        "application/json" | "" => {
            check_json(&body.bytes)?;
            (SourceFormat::Json, body.bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
        }
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => (SourceFormat::Ndjson, false),
        "text/csv" => (SourceFormat::Csv, false),
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content type '{other}' is not accepted here: send application/json, application/x-ndjson or text/csv"
            )));
        }
    };
    Ok((open_source(format, Box::new(Cursor::new(body.bytes.clone())), columns), format, single))
}

/// Reads a body into classified rows, at most `max` of them; a file-level problem (bad CSV
/// header, broken JSON) is a 400, a row past `max` a 413 ([`ApiError::TooManyRecords`]),
/// detected as it is read.
pub fn classify_body(state: &AppState, source: &mut dyn RecordSource, max: usize) -> ApiResult<Vec<RawRow>> {
    state.ingestor.classify_at_most(source, max).map_err(|err| match err {
        ClassifyError::TooMany(max) => ApiError::TooManyRecords(max),
        ClassifyError::Read(err) => ApiError::BadRequest { detail: err.to_string(), field: None },
    })
}

/// The verdict on one record sent to `records:validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationDto {
    /// `VALID`, `INCOMPLETE` or `INCONSISTENT`.
    pub quality_status: &'static str,
    /// Every violated rule.
    pub reasons: Vec<ReasonDto>,
    /// Whether it duplicates a stored record (or an earlier record of the same request):
    /// `exact`, `conflicting` or `null`.
    pub duplicate: Option<&'static str>,
    /// The stored record it duplicates, if any.
    pub duplicate_of: Option<i64>,
    /// The record's values as parsed.
    pub record: FieldsDto,
}

/// The verdicts on an array sent to `records:validate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationBatchDto {
    /// One verdict per element, in order.
    pub items: Vec<ValidationDto>,
    /// Counts per status, duplicate kind and reason.
    pub summary: emdp_domain::QualitySummary,
}

/// What `records:validate` answers: a verdict for an object, verdicts and their summary for
/// an array.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ValidationAnswer {
    /// The verdict on one record object.
    One(ValidationDto),
    /// The verdicts on an array.
    Batch(ValidationBatchDto),
}

/// Classify one record or an array without storing anything.
///
/// Permissive: any field may be missing or of the wrong type; that is a classification,
/// not an error. Says whether each record duplicates a stored one.
#[utoipa::path(post, path = "/api/v1/records:validate", tag = "records",
    params(Columns),
    request_body(content = Object, description = "A record object or an array of record objects", content_type = "application/json"),
    responses(
        (status = 200, description = "The verdict (an object for an object, `{items, summary}` for an array)", body = ValidationAnswer),
        (status = 400, description = "Malformed JSON, or a bad `column` mapping", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the body limit, or holds more records than the cap per request (`server.max_records`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate(
    State(state): State<AppState>,
    Params(columns): Params<Columns>,
    body: Body,
) -> ApiResult<Json<ValidationAnswer>> {
    if !matches!(body.media_type.as_str(), "application/json" | "") {
        return Err(ApiError::UnsupportedMediaType("records:validate reads application/json".into()));
    }
    let (mut source, _, single) = body_source(&body, columns.column)?;
    let rows = classify_body(&state, source.as_mut(), state.config.max_records)?;
    let mut items = verdicts(&state, &rows).await?;
    if single && items.len() == 1 {
        return Ok(Json(ValidationAnswer::One(items.remove(0))));
    }
    let mut summary = emdp_domain::QualitySummary::default();
    for (row, item) in rows.iter().zip(&items) {
        let assessment = emdp_domain::Assessment { status: row.status, reasons: row.reasons };
        let duplicate = match item.duplicate {
            Some("exact") => Some(emdp_domain::DuplicateKind::Exact),
            Some(_) => Some(emdp_domain::DuplicateKind::Conflicting),
            None => None,
        };
        summary.record(&assessment, duplicate);
    }
    Ok(Json(ValidationAnswer::Batch(ValidationBatchDto { items, summary })))
}

/// Verdicts for classified rows: duplicates against the store, then within the request.
pub async fn verdicts(state: &AppState, rows: &[RawRow]) -> ApiResult<Vec<ValidationDto>> {
    let mut keys: Vec<RecordKey> = rows.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let stored: HashMap<RecordKey, StoredKey> =
        state.store.find_keys(&keys).await?.into_iter().map(|k| (k.key.clone(), k)).collect();
    let mut seen: HashMap<&RecordKey, Vec<emdp_domain::ValueFingerprint>> = HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let (duplicate, duplicate_of) = match stored.get(&row.key) {
            Some(key) if key.versions.iter().any(|v| v.version.values == row.values) => (Some("exact"), Some(key.id)),
            Some(key) => (Some("conflicting"), Some(key.id)),
            None => match seen.get(&row.key) {
                Some(values) if values.contains(&row.values) => (Some("exact"), None),
                Some(_) => (Some("conflicting"), None),
                None => (None, None),
            },
        };
        seen.entry(&row.key).or_default().push(row.values);
        items.push(ValidationDto {
            quality_status: row.status.as_str(),
            reasons: reasons(row.reasons, &state.rules),
            duplicate,
            duplicate_of,
            record: FieldsDto::from(&row.fields),
        });
    }
    Ok(items)
}

/// What became of one record of an ingested body.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestedDto {
    /// The line (CSV, NDJSON) or element position (JSON array) in the body.
    pub line: i64,
    /// The curated record it is part of.
    pub id: i64,
    /// `new`, `exact` (duplicate within the body, not stored again), `redelivered` (equal to a
    /// version an earlier batch stored, not stored again) or `conflicting` (kept as a version).
    pub admission: &'static str,
    /// Its status.
    pub quality_status: &'static str,
    /// Every violated rule.
    pub reasons: Vec<ReasonDto>,
}

/// The result of ingesting a bulk body.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestedBatchDto {
    /// The batch summary: counts per status, duplicates, reasons, what was stored.
    pub summary: IngestSummary,
    /// Each record's outcome, in body order.
    pub records: Vec<IngestedDto>,
}

/// The result of ingesting one record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDto {
    /// The stored record (for a duplicate: the record it duplicates).
    pub record: RecordDto,
    /// `new`, `exact`, `redelivered` or `conflicting`.
    pub admission: &'static str,
    /// The batch the raw payload belongs to.
    pub batch_id: i64,
}

/// What an ingest answers: the record for an object, the batch summary for bulk bodies.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum IngestAnswer {
    /// One record object, stored.
    One(CreatedDto),
    /// An array, NDJSON or CSV, stored.
    Batch(IngestedBatchDto),
}

/// Ingest one record, a JSON array, NDJSON or CSV.
///
/// Same semantics as `emdp ingest`: the raw payload is kept, the record classified,
/// exact duplicates counted and linked, conflicts resolved by the policy. Idempotent.
#[utoipa::path(post, path = "/api/v1/records", tag = "records",
    params(Columns),
    request_body(content = Object, description = "A record object, an array, NDJSON (application/x-ndjson) or CSV (text/csv); optionally compressed with `Content-Encoding: gzip` (the body limit counts decompressed bytes)"),
    responses(
        (status = 201, description = "Stored: the record for an object, the batch summary for bulk bodies", body = IngestAnswer),
        (status = 400, description = "Malformed body, CSV header or gzip stream, or a bad `column` mapping", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the body limit, or holds more records than the cap per request (`server.max_records`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported content type or content encoding", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Params(columns): Params<Columns>,
    body: Body,
) -> ApiResult<(StatusCode, Json<IngestAnswer>)> {
    let (mut source, format, single) = body_source(&body, columns.column)?;
    source.start().map_err(|err| ApiError::BadRequest { detail: err.to_string(), field: None })?;
    let header = source.header().map(str::to_owned);
    let columns = source.columns().map(ToString::to_string);
    let rows = classify_body(&state, source.as_mut(), state.config.max_records)?;
    let (summary, links) = state.ingestor.ingest_rows(&rows, "api", format, header, columns).await?;
    if let Err(err) = state.alerts.on_ingested("api", &rows, &links).await {
        tracing::warn!(error = %err, "alert evaluation failed");
    }
    if single && links.len() == 1 {
        let record = state
            .store
            .get_record(links[0].record_id)
            .await?
            .ok_or_else(|| ApiError::Internal("the stored record vanished".into()))?;
        let created = CreatedDto {
            record: RecordDto::new(&record, &state.rules),
            admission: links[0].admission.as_str(),
            batch_id: summary.batch_id.ok_or_else(|| ApiError::Internal("the stored record has no batch".into()))?,
        };
        return Ok((StatusCode::CREATED, Json(IngestAnswer::One(created))));
    }
    let records = rows
        .iter()
        .zip(&links)
        .map(|(row, link)| IngestedDto {
            line: row.line,
            id: link.record_id,
            admission: link.admission.as_str(),
            quality_status: row.status.as_str(),
            reasons: reasons(row.reasons, &state.rules),
        })
        .collect();
    Ok((StatusCode::CREATED, Json(IngestAnswer::Batch(IngestedBatchDto { summary, records }))))
}

/// A page of records.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageDto {
    /// The records, in id order.
    pub items: Vec<RecordDto>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The status filter of the record list.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusParam {
    /// Only records of this status.
    #[param(value_type = Option<String>, pattern = "^(VALID|INCOMPLETE|INCONSISTENT)$")]
    pub status: Option<QualityStatus>,
}

impl FromQuery for StatusParam {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(StatusParam { status: query.get_with("status", "VALID, INCOMPLETE or INCONSISTENT", QualityStatus::parse)? })
    }
}

/// List records, filtered, with keyset (cursor) pagination in a stable order.
#[utoipa::path(get, path = "/api/v1/records", tag = "records",
    params(Scope, StatusParam, Page),
    responses((status = 200, description = "A page of records", body = PageDto)))]
pub async fn list(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(status): Params<StatusParam>,
    Params(page): Params<Page>,
) -> ApiResult<Json<PageDto>> {
    let filter = RecordFilter {
        building_id: scope.building_id,
        provider: scope.provider,
        status: status.status,
        from: scope.from,
        to: scope.to,
    };
    let records = state.store.list_records(&filter, page.cursor, page.limit).await?;
    let next_cursor = page.next_cursor(&records, |record| record.id);
    Ok(Json(PageDto { items: records.iter().map(|r| RecordDto::new(r, &state.rules)).collect(), next_cursor }))
}

/// Read one record.
#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "records",
    params(("id" = i64, Path, description = "Record id")),
    responses(
        (status = 200, description = "The record", body = RecordDto),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RecordDto>> {
    let id = record_id(&id)?;
    let record =
        state.store.get_record(id).await?.ok_or_else(|| ApiError::NotFound(format!("no record with id {id}")))?;
    Ok(Json(RecordDto::new(&record, &state.rules)))
}

/// Edit a record: the given fields replace the shown ones, the result is classified again
/// and kept as a new version that becomes the record's winner (the previous versions stay).
#[utoipa::path(patch, path = "/api/v1/records/{id}", tag = "records",
    params(("id" = i64, Path, description = "Record id")),
    request_body(content = Object, description = "Any of building_id, date, consumption, temperature, provider; null clears a field"),
    responses(
        (status = 200, description = "The edited record", body = RecordDto),
        (status = 400, description = "Malformed JSON or an unknown field", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new key belongs to another record", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(State(state): State<AppState>, Path(id): Path<String>, body: Body) -> ApiResult<Json<RecordDto>> {
    let id = record_id(&id)?;
    if !matches!(body.media_type.as_str(), "application/json" | "application/merge-patch+json" | "") {
        return Err(ApiError::UnsupportedMediaType("PATCH reads application/json".into()));
    }
    let patch = parse_patch(&body.bytes)?;
    let record = edit_record(&state.ingestor, state.store.as_ref(), id, &patch, "api:patch").await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("no record with id {id}")))?;
    Ok(Json(RecordDto::new(&record, &state.rules)))
}

/// Parses a PATCH body: an object whose keys are record fields; `null` clears a field.
pub fn parse_patch(bytes: &[u8]) -> ApiResult<RecordPatch> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|err| ApiError::BadRequest { detail: format!("malformed JSON: {err}"), field: None })?;
    let serde_json::Value::Object(object) = value else {
        return Err(ApiError::BadRequest { detail: "the body must be a JSON object".into(), field: None });
    };
    let mut patch = RecordPatch::default();
    for (key, value) in object {
        let Some(field) = emdp_domain::FieldName::from_header(&key) else {
            return Err(ApiError::field(key.clone(), format!("'{key}' is not a record field")));
        };
        let text = match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some(text),
            other => Some(other.to_string()),
        };
        patch.set(field, text);
    }
    Ok(patch)
}

/// Delete a record. Its raw payloads stay in the raw store.
#[utoipa::path(delete, path = "/api/v1/records/{id}", tag = "records",
    params(("id" = i64, Path, description = "Record id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such record", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = record_id(&id)?;
    if state.store.delete_record(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no record with id {id}")))
    }
}

/// Every raw payload behind a record, in arrival order (also after the record was deleted).
#[utoipa::path(get, path = "/api/v1/records/{id}/history", tag = "records",
    params(("id" = i64, Path, description = "Record id")),
    responses(
        (status = 200, description = "The raw versions", body = Vec<VersionDto>),
        (status = 404, description = "No raw payload for this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Vec<VersionDto>>> {
    let id = record_id(&id)?;
    let history = state.store.record_history(id).await?;
    if history.is_empty() {
        return Err(ApiError::NotFound(format!("no raw payloads for record {id}")));
    }
    Ok(Json(history.into_iter().map(|version| VersionDto::new(version, &state.rules)).collect()))
}

/// The admission name for the seed's `is_duplicate`.
pub fn is_duplicate(admission: Admission) -> bool {
    admission != Admission::New
}
