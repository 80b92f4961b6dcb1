//! emdp's HTTP API: `/api/v1` (records, quality, rules, health), the original MVP's routes for
//! existing clients, and the OpenAPI document with Swagger UI and ReDoc served offline.
//!
//! [`server::Server::build`] is the composition root (stores, use cases, real-time tasks,
//! router); [`router`] is the HTTP application over an [`AppState`].

pub mod auth;
pub mod dashboard;
mod docs;
pub mod dto;
pub mod error;
pub mod extract;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use docs::ApiDoc;
pub use error::{ApiError, Problem};
pub use state::{ApiConfig, AppState, Services};

/// The whole application: the registry's operations and `/metrics` behind the guard; the
/// documentation pages and the dashboard's files (public) beside it.
pub fn router(state: AppState) -> Router {
    let routes::Registry { router, access, queries, .. } = routes::registry();
    let guard = auth::Guard::new(state.clone(), access);
    router
        .route("/metrics", get(telemetry::metrics))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Inside the guard: a request without a valid key learns nothing about the parameters.
        .layer(axum::middleware::from_fn_with_state(std::sync::Arc::new(queries), extract::refuse_unknown_query))
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        // `Content-Encoding: gzip` bodies are read decompressed, and the body limit counts the
        // decompressed bytes (a small bomb is still a 413). Other encodings pass through so
        // that the body extractor answers them with problem details, not a bare 415.
        .layer(RequestDecompressionLayer::new().pass_through_unaccepted(true))
        // A body declared too large is a 413 before a byte of it is read.
        .layer(axum::middleware::from_fn_with_state(state.config.body_limit, extract::refuse_declared_oversize))
        .layer(axum::middleware::from_fn_with_state(guard, auth::guard))
        // The documentation and the dashboard's files are public (after the guard): the
        // dashboard's page asks for a key itself.
        .merge(docs::router())
        .merge(dashboard::router())
        // Every 4xx of every route above, the pages' included, is a problem document.
        .layer(axum::middleware::from_fn(error::problems_only))
        // Outermost last: request id, then the request log and metrics.
        .layer(axum::middleware::from_fn(telemetry::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
