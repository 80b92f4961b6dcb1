//! The API's one error type and its mapping to RFC 9457 problem details, in one place.
//!
//! Handlers return [`ApiError`]; [`IntoResponse`] turns it into `application/problem+json`
//! with a stable `type`, the status, a readable `detail` and, for body and query errors, the
//! offending `field`. Store errors are mapped here too, so no handler decides a status code
//! for a database failure on its own: an unreachable database is 503 (retry later), never a
//! 500 that would blame the client's input.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use emdp_app::ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem details document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI identifying the kind of problem (`urn:emdp:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The request field (body key, query parameter) at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (bad JSON, a bad query parameter).
    #[error("{detail}")]
    BadRequest {
        /// What is wrong.
        detail: String,
        /// The field at fault.
        field: Option<String>,
    },
    /// The body's content type is not one this route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the configured limit.
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// The body holds more records than the configured cap
    /// ([`crate::state::ApiConfig::max_records`]).
    #[error("at most {0} records per request: split the body, or use `emdp ingest` for a large file")]
    TooManyRecords(usize),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The request conflicts with the current state (e.g. a key already taken).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but cannot be served with the data there is (e.g. too few
    /// VALID days to fit a baseline).
    #[error("{0}")]
    Unprocessable(String),
    /// No valid API key was sent (missing, unknown or revoked): 401 with `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(String),
    /// The key's role does not allow this request.
    #[error("{0}")]
    Forbidden(String),
    /// The caller's rate limit is exhausted: 429 with `Retry-After` (seconds).
    #[error("rate limit exceeded: retry in {retry_after} s")]
    TooManyRequests {
        /// Seconds until a request will be accepted again.
        retry_after: u64,
    },
    /// The request took longer than the configured timeout.
    #[error("the request did not complete within {0} ms")]
    Timeout(u64),
    /// The database is unreachable or overloaded: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server, not of the request.
    #[error("{0}")]
    Internal(String),
    /// The request line's target is longer than [`MAX_URI_BYTES`].
    #[error("the URI is longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    /// The request's headers are larger than [`MAX_HEADER_BYTES`].
    #[error("the request headers are larger than {MAX_HEADER_BYTES} bytes")]
    HeadersTooLarge,
    /// A client error a layer around the handlers answered in its own words (an extractor's
    /// rejection, the documentation pages), made a problem document by [`problems_only`].
    #[error("{detail}")]
    Other {
        /// The status it answered.
        status: StatusCode,
        /// What it said (or the status's reason when it said nothing).
        detail: String,
    },
}

/// The longest request target (path and query) served, in bytes; longer is a 414. Below
/// hyper's own limit (64 KiB), which answers with an empty body before any layer runs.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry; more is a 431. Below
/// hyper's own limits (about 400 KiB of buffered head, 100 headers), which answer with an
/// empty body before any layer runs.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

impl ApiError {
    /// A 400 for one field.
    pub fn field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::BadRequest { detail: detail.into(), field: Some(field.into()) }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            ApiError::TooManyRecords(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-many-records", "Too many records"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Unprocessable(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", "Cannot be computed from the data")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests")
            }
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", "Request timed out"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
            ApiError::UriTooLong => (StatusCode::URI_TOO_LONG, "uri-too-long", "URI too long"),
            ApiError::HeadersTooLarge => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers-too-large", "Request headers too large")
            }
            ApiError::Other { status, .. } => match *status {
                StatusCode::BAD_REQUEST => (*status, "bad-request", "Bad request"),
                StatusCode::NOT_FOUND => (*status, "not-found", "Not found"),
                _ => (*status, "client-error", status.canonical_reason().unwrap_or("Client error")),
            },
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let field = match self {
            ApiError::BadRequest { field, .. } => field.clone(),
            ApiError::TooManyRecords(_) => Some("body".to_owned()),
            _ => None,
        };
        Problem {
            kind: format!("urn:emdp:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            // A concurrent writer won a race the client can simply retry.
            StoreError::Conflict(detail) => ApiError::Conflict(format!("concurrent update, retry: {detail}")),
            StoreError::KeyTaken(_) => ApiError::Conflict(err.to_string()),
            StoreError::Unavailable(detail) => ApiError::Unavailable(format!("database unavailable: {detail}")),
            StoreError::Full(detail) => ApiError::Unavailable(format!("database cannot accept writes: {detail}")),
            StoreError::Migration(detail) => ApiError::Unavailable(format!("database schema mismatch: {detail}")),
            StoreError::Other(detail) => ApiError::Internal(format!("database error: {detail}")),
        }
    }
}

impl From<emdp_app::usecases::analyze::AnalyzeError> for ApiError {
    fn from(err: emdp_app::usecases::analyze::AnalyzeError) -> Self {
        use emdp_app::usecases::analyze::AnalyzeError;
        match err {
            AnalyzeError::UnknownBuilding(_) => ApiError::NotFound(err.to_string()),
            AnalyzeError::InvertedPeriod { .. } => ApiError::field("to", err.to_string()),
            AnalyzeError::InvalidRequest(_) => ApiError::BadRequest { detail: err.to_string(), field: None },
            AnalyzeError::TooLittleData { .. } | AnalyzeError::Analysis { .. } => {
                ApiError::Unprocessable(err.to_string())
            }
            AnalyzeError::Store(err) => err.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        if problem.status >= 500 {
            tracing::error!(status = problem.status, detail = %problem.detail, "request failed");
        }
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        match self {
            ApiError::Unauthorized(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"emdp\""));
            }
            ApiError::TooManyRequests { retry_after } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        response
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// Makes every client error a problem document, whoever answered it: a 4xx that is not JSON
/// (axum's plain-text rejection of a path segment such as `%FF`, the documentation pages'
/// empty 404) becomes the problem of its status, its text the `detail`. Before anything else,
/// a target longer than [`MAX_URI_BYTES`] is a 414 and headers larger than
/// [`MAX_HEADER_BYTES`] a 431.
pub async fn problems_only(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let target = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    let head: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if head > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge.into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if !status.is_client_error() || json {
        return response;
    }
    // A rejection's text is a line; anything longer is cut, never buffered whole.
    let text = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let detail = if text.is_empty() { status.canonical_reason().unwrap_or("client error").to_owned() } else { text };
    ApiError::Other { status, detail }.into_response()
}
