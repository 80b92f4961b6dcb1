//! Observability: one log line per request (method, matched route, status, latency, request
//! id; never headers, keys or bodies) and the Prometheus metrics served at `GET /metrics`.
//!
//! Metrics (Prometheus text format):
//! - `emdp_http_requests_total{method,route,status}` and
//!   `emdp_http_request_duration_seconds{method,route,status}` (histogram);
//! - `emdp_records_ingested_total{status,admission}`, `emdp_duplicates_total{kind}` and
//!   `emdp_ingest_batch_duration_seconds` (histogram), recorded by the ingest use case.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::state::AppState;

/// The request id header, accepted from the client or generated, and echoed.
pub const REQUEST_ID: &str = "x-request-id";

/// Histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
/// Call it before anything records: counts recorded before are lost. `None` when another
/// recorder was installed first.
pub fn install_metrics() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            builder.install_recorder().ok()
        })
        .clone()
}

/// `GET /metrics`: every metric in Prometheus text format, with the database pool's usage
/// sampled at scrape time.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match install_metrics() {
        Some(handle) => {
            let pool = state.store.pool_usage();
            metrics::gauge!("emdp_db_pool_connections", "state" => "open").set(f64::from(pool.open));
            metrics::gauge!("emdp_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
            metrics::gauge!("emdp_db_pool_connections", "state" => "in_use")
                .set(f64::from(pool.open.saturating_sub(pool.idle)));
            metrics::gauge!("emdp_db_pool_connections", "state" => "max").set(f64::from(pool.max));
            handle.run_upkeep();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
        }
        None => ApiError::Unavailable("metrics are not available in this process".into()).into_response(),
    }
}

/// The middleware: logs and counts every request.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let request_id = request.headers().get(REQUEST_ID).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::info!(
        target: "emdp::http",
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    let labels = [("method", method.to_string()), ("route", route), ("status", status.to_string())];
    metrics::counter!("emdp_http_requests_total", &labels).increment(1);
    metrics::histogram!("emdp_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    response
}
