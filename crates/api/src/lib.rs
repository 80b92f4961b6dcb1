//! emdp's HTTP API: `/api/v1` (records, quality, rules, health), the original MVP's routes for
//! existing clients, and the OpenAPI document with Swagger UI and ReDoc served offline.
//!
//! [`router`] builds the whole application; [`serve`] runs it until a shutdown signal, letting
//! in-flight requests finish.

pub mod auth;
pub mod dashboard;
mod docs;
pub mod dto;
pub mod error;
pub mod extract;
pub mod routes;
pub mod state;
pub mod telemetry;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use docs::ApiDoc;
pub use error::{ApiError, Problem};
pub use state::{ApiConfig, AppState, Services};

use crate::routes::{alerts, batches, buildings, meta, quality, records, seed};

/// The whole application.
#[allow(deprecated)] // The MVP's routes are deprecated for clients, not for us.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/records:validate", post(records::validate))
        .route("/records", post(records::create).get(records::list))
        .route("/records/{id}", get(records::get).patch(records::patch).delete(records::delete))
        .route("/records/{id}/history", get(records::history))
        .route("/batches", get(batches::list))
        .route("/buildings", get(buildings::list))
        .route("/buildings/{id}/series", get(buildings::series))
        .route("/buildings/{id}/baseline", get(buildings::baseline))
        .route("/buildings/{id}/anomalies", get(buildings::anomalies))
        .route("/buildings/{id}/savings", post(buildings::savings))
        .route("/quality/summary", get(quality::summary))
        .route("/quality/report", get(quality::report))
        .route("/quality/timeline", get(quality::timeline))
        .route("/quality/buildings", get(quality::buildings))
        .route("/quality/gaps", get(quality::gaps))
        .route("/quality/overview", get(dashboard::overview))
        .route("/duplicates", get(quality::duplicates))
        .route("/duplicates:resolve", post(quality::resolve_groups))
        .route("/duplicates/{target}", post(quality::resolve))
        .route("/alert-rules", get(alerts::list_rules).post(alerts::create_rule))
        .route("/alert-rules/{id}", get(alerts::get_rule).put(alerts::update_rule).delete(alerts::delete_rule))
        .route("/alerts", get(alerts::list_alerts))
        .route("/alerts/stream", get(alerts::stream))
        .route("/alerts/{target}", get(alerts::get_alert).post(alerts::ack))
        .route("/alerts/{target}/deliveries", get(alerts::deliveries))
        .route("/rules", get(meta::rules))
        .route("/health", get(meta::health))
        .route("/ready", get(meta::ready));
    let legacy = Router::new()
        .route("/health", get(seed::health))
        .route("/energy-record", post(seed::create))
        .route("/energy-record:validate", post(seed::validate))
        .route("/energy-records", get(seed::list))
        .route("/energy-records/{id}", get(seed::get).patch(seed::patch).delete(seed::delete))
        .route("/quality/summary", get(seed::quality_summary));
    Router::new()
        .nest("/api/v1", v1)
        .merge(legacy)
        .merge(docs::router())
        .route("/metrics", get(telemetry::metrics))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        // `Content-Encoding: gzip` bodies are read decompressed, and the body limit counts the
        // decompressed bytes (a small bomb is still a 413). Other encodings pass through so
        // that the body extractor answers them with problem details, not a bare 415.
        .layer(RequestDecompressionLayer::new().pass_through_unaccepted(true))
        // Outermost last: request id, then the request log and metrics, then the guard.
        .layer(axum::middleware::from_fn_with_state(auth::Guard::new(state.clone()), auth::guard))
        // The dashboard's files are public (after the guard): the page asks for a key itself.
        .merge(dashboard::router())
        .layer(axum::middleware::from_fn(telemetry::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` resolves; in-flight requests are
/// allowed to finish (graceful shutdown).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    telemetry::install_metrics();
    // The peer address feeds the per-IP rate limit of anonymous requests.
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
