//! `/api/v1/batches`: the ingestions (files, request bodies, MQTT batches), newest first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use emdp_app::ports::{BatchFilter, BatchInfo};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::extract::QueryParams;
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
    /// The ingest summary, once finished: the same object as `emdp ingest --output json`.
    #[schema(value_type = Option<Object>)]
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

/// List ingestions, newest first, with keyset (cursor) pagination.
#[utoipa::path(get, path = "/api/v1/batches", tag = "records",
    params(
        ("source" = Option<String>, Query, description = "Only batches from this source (a file name, `api`, `mqtt:<topic>`)"),
        ("unfinished" = Option<bool>, Query, description = "Only batches never finished: being written, or cut short by a crash or a kill"),
        ("limit" = Option<u32>, Query, description = "Page size, 1..=1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of batches", body = BatchPageDto),
        (status = 400, description = "A bad parameter", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(state): State<AppState>, query: QueryParams) -> ApiResult<Json<BatchPageDto>> {
    let filter = BatchFilter {
        source: query.raw("source").map(str::to_owned),
        unfinished: query.get("unfinished", "true or false")?.unwrap_or(false),
    };
    let limit = query.page_limit()?;
    let before = query.get::<i64>("cursor", "a cursor returned as next_cursor")?;
    let batches = state.store.list_batches(&filter, before, limit).await?;
    let next_cursor = (batches.len() == limit as usize).then(|| batches.last().map(|b| b.id.to_string())).flatten();
    Ok(Json(BatchPageDto { items: batches.into_iter().map(BatchDto::from).collect(), next_cursor }))
}
