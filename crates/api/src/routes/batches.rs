//! `/api/v1/batches`: the ingestions (files, request bodies, MQTT batches), newest first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use emdp_app::ports::{BatchFilter, BatchInfo};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiResult;
use crate::extract::{FromQuery, Page, Params, QueryParams};
use crate::state::AppState;

/// One ingestion.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchDto {
    /// Its id (the `batch` of the quality routes, the `batch_id` of a record's history).
    pub id: i64,
    /// Where the data came from: a file name, `api`, `mqtt:<topic>`, ...
    pub source: String,
    /// `csv`, `ndjson` or `json`.
    pub format: String,
    /// The CSV header.
    pub header: Option<String>,
    /// The column mapping it was read by (`building_id=site, ...`), when a field was mapped.
    pub columns: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished; `null` while it is written, or when it was cut short (a crash, a
    /// kill: ingesting the same input again completes it).
    pub finished_at: Option<DateTime<Utc>>,
    /// Rows stored so far (all of them once finished).
    pub rows_stored: i64,
    /// The ingest summary, once finished: the same object as `emdp ingest --output json`
    /// (kept as it was stored).
    #[schema(value_type = Option<emdp_app::usecases::ingest::IngestSummary>)]
    pub summary: Option<serde_json::Value>,
}

impl From<BatchInfo> for BatchDto {
    fn from(batch: BatchInfo) -> Self {
        BatchDto {
            id: batch.id,
            source: batch.source,
            format: batch.format,
            header: batch.header,
            columns: batch.columns,
            started_at: batch.started_at,
            finished_at: batch.finished_at,
            rows_stored: batch.rows_stored,
            summary: batch.summary,
        }
    }
}

/// A page of batches.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchPageDto {
    /// The batches, newest first.
    pub items: Vec<BatchDto>,
    /// Pass as `cursor` to get the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The filters of the batch list.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchFilterParams {
    /// Only batches from this source (a file name, `api`, `mqtt:<topic>`).
    pub source: Option<String>,
    /// Only batches never finished: being written, or cut short by a crash or a kill.
    pub unfinished: Option<bool>,
}

impl FromQuery for BatchFilterParams {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(BatchFilterParams {
            source: query.raw("source").map(str::to_owned),
            unfinished: query.get("unfinished", "true or false")?,
        })
    }
}

/// List ingestions, newest first, with keyset (cursor) pagination.
#[utoipa::path(get, path = "/api/v1/batches", tag = "records",
    params(BatchFilterParams, Page),
    responses((status = 200, description = "A page of batches", body = BatchPageDto)))]
pub async fn list(
    State(state): State<AppState>,
    Params(filter): Params<BatchFilterParams>,
    Params(page): Params<Page>,
) -> ApiResult<Json<BatchPageDto>> {
    let filter = BatchFilter { source: filter.source, unfinished: filter.unfinished.unwrap_or(false) };
    let batches = state.store.list_batches(&filter, page.cursor, page.limit).await?;
    let next_cursor = page.next_cursor(&batches, |batch| batch.id);
    Ok(Json(BatchPageDto { items: batches.into_iter().map(BatchDto::from).collect(), next_cursor }))
}
