//! Request extractors whose failures are problem details, not axum's plain-text rejections.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::NaiveDate;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::AppState;

/// The request body with its media type (lower-cased, parameters removed).
pub struct Body {
    /// The bytes, at most the configured limit.
    pub bytes: Bytes,
    /// `application/json`, `text/csv`, ... (empty when the header is absent).
    pub media_type: String,
}

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let media_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .unwrap_or_default();
        // gzip was decoded (and its header removed) by the decompression layer: what is left
        // is an encoding this server cannot read.
        if let Some(encoding) = request.headers().get(CONTENT_ENCODING)
            && encoding.as_bytes() != b"identity"
        {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding '{}' is not supported: send gzip or an uncompressed body",
                String::from_utf8_lossy(encoding.as_bytes())
            )));
        }
        let limit = state.config.body_limit;
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::BadRequest { detail: format!("cannot read the request body: {rejection}"), field: None }
            }
        })?;
        Ok(Body { bytes, media_type })
    }
}

/// Answers 413 at once when a request declares (`Content-Length`) a body larger than
/// `limit`, instead of waiting for bytes that may never come until the request's time runs out.
/// An encoded body is allowed gzip's overhead (a header, a trailer and 5 bytes per stored
/// block), since the limit counts decompressed bytes; the body extractor still counts those.
pub async fn refuse_declared_oversize(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
    let encoded = request.headers().get(CONTENT_ENCODING).is_some_and(|encoding| encoding.as_bytes() != b"identity");
    let allowed = if encoded { limit.saturating_add(limit / 1000 + 64) } else { limit };
    if declared.is_some_and(|declared| declared > allowed as u64) {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    next.run(request).await
}

/// The query parameters each `/api/v1` operation accepts: those its OpenAPI operation
/// documents (built by [`crate::routes::registry`]), so the parameters a route accepts and those
/// it documents are one list.
#[derive(Debug, Clone, Default)]
pub struct QueryNames(HashMap<(Method, String), Vec<String>>);

impl QueryNames {
    /// Adds `names` to those `method` on `route` (as axum matches it) accepts.
    pub fn insert(&mut self, method: Method, route: &str, names: impl IntoIterator<Item = String>) {
        let accepted = self.0.entry((method, route.to_owned())).or_default();
        for name in names {
            if !accepted.contains(&name) {
                accepted.push(name);
            }
        }
    }

    /// The parameters `method` on `route` accepts (HEAD takes GET's); `None` for a route the
    /// table does not know.
    pub fn get(&self, method: &Method, route: &str) -> Option<&[String]> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.0.get(&(method.clone(), route.to_owned())).map(Vec::as_slice)
    }

    /// The first parameter of `query` that `accepted` does not name, as a 400 naming it and
    /// listing the accepted ones.
    fn check(accepted: &[String], query: &str) -> Result<(), ApiError> {
        for (name, _) in serde_urlencoded_pairs(query)? {
            if !accepted.contains(&name) {
                let detail = if accepted.is_empty() {
                    format!("unknown query parameter '{name}': this route takes no query parameters")
                } else {
                    format!("unknown query parameter '{name}': this route accepts {}", accepted.join(", "))
                };
                return Err(ApiError::field(name, detail));
            }
        }
        Ok(())
    }
}

/// Answers 400 for a query parameter an `/api/v1` route does not accept (a misspelt `limit`
/// must not silently return everything). The MVP's routes keep ignoring unknown parameters.
pub async fn refuse_unknown_query(State(names): State<Arc<QueryNames>>, request: Request, next: Next) -> Response {
    if let (Some(query), Some(route)) = (request.uri().query(), request.extensions().get::<MatchedPath>())
        && route.as_str().starts_with("/api/v1/")
        && let Some(accepted) = names.get(request.method(), route.as_str())
        && let Err(err) = QueryNames::check(accepted, query)
    {
        return err.into_response();
    }
    next.run(request).await
}

/// The largest page of a list route.
pub const MAX_LIMIT: u32 = 1000;
/// The page size of a list route when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;

/// Query parameters, parsed one by one so that an error names its parameter. A parameter
/// given more than once counts by its last value, except where a route reads every value
/// ([`QueryParams::all`]).
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(QueryParams(serde_urlencoded_pairs(query)?))
    }
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ApiError::field("query", "malformed query string"))?,
    )
    .map(|q| q.0)
    .map_err(|err| ApiError::field("query", format!("malformed query string: {err}")))
}

impl QueryParams {
    /// The raw value of a parameter (its last, if repeated).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|v| !v.is_empty())
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str()).collect()
    }

    /// The `limit` of a page of a list route: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent,
    /// else a 400 naming `limit`.
    pub fn page_limit(&self) -> Result<u32, ApiError> {
        let limit = self.get::<u32>("limit", "a whole number from 1 to 1000")?.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field("limit", format!("limit must be from 1 to {MAX_LIMIT}, got {limit}")));
        }
        Ok(limit)
    }

    /// The column (CSV) or key (JSON) each field is read from: the default names with each
    /// `column=FIELD=NAME` applied, as `--column` does on the command line; a bad mapping is a
    /// 400 naming `column`.
    pub fn column_names(&self) -> Result<emdp_domain::ColumnNames, ApiError> {
        emdp_domain::ColumnNames::parse(&self.all("column")).map_err(|err| ApiError::field("column", err.to_string()))
    }

    /// A parameter parsed with `parse`, or a 400 naming it.
    pub fn get_with<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.raw(name) {
            None => Ok(None),
            Some(text) => {
                parse(text).map(Some).ok_or_else(|| ApiError::field(name, format!("'{text}' is not {expected}")))
            }
        }
    }

    /// A parameter parsed with `FromStr`.
    pub fn get<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        self.get_with(name, expected, |text| text.parse().ok())
    }

    /// A date parameter (`YYYY-MM-DD`).
    pub fn date(&self, name: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
        self.get_with(name, "a date YYYY-MM-DD", |text| emdp_domain::parse_iso_date(text).ok())
    }

    /// The period `from`..=`to` (either end open): a `from` after `to` is a 400 naming both,
    /// never an empty answer, on every route that takes a period.
    pub fn period(&self) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ApiError> {
        let (from, to) = (self.date("from")?, self.date("to")?);
        match (from, to) {
            (Some(from), Some(to)) if from > to => Err(ApiError::field(
                "from",
                format!("from ({from}) is after to ({to}): give a from on or before the to"),
            )),
            _ => Ok((from, to)),
        }
    }
}

/// Parses a record id from the path; an id that is not a number names no record (404).
pub fn record_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(format!("no record with id '{text}'")))
}

/// Query parameters read into a typed value, each one parsed with an error naming it.
pub trait FromQuery: Sized {
    /// Reads the value's parameters from `query`.
    fn from_query(query: &QueryParams) -> Result<Self, ApiError>;
}

/// An extractor of typed query parameters: `Params(scope): Params<Scope>`. The type derives
/// `IntoParams` too, so the parameters a route reads and those it documents are one list.
pub struct Params<T>(pub T);

impl<T: FromQuery, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let query = QueryParams::from_request_parts(parts, state).await?;
        T::from_query(&query).map(Params)
    }
}

/// Which records: the filters shared by the record, quality and duplicate routes.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Scope {
    /// Only this building.
    pub building_id: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Only days on or after this one (YYYY-MM-DD).
    pub from: Option<NaiveDate>,
    /// Only days on or before this one (YYYY-MM-DD).
    pub to: Option<NaiveDate>,
}

impl FromQuery for Scope {
    fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        let (from, to) = query.period()?;
        Ok(Scope {
            building_id: query.raw("building_id").map(str::to_owned),
            provider: query.raw("provider").map(str::to_owned),
            from,
            to,
        })
    }
}

/// A page of a list route, with keyset (cursor) pagination.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Page size, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: u32,
    /// The previous page's `next_cursor` (the CLI's `--cursor` takes the same values).
    pub cursor: Option<i64>,
}

impl FromQuery for Page {
    fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        Ok(Page { limit: query.page_limit()?, cursor: query.get("cursor", "a cursor returned by the previous page")? })
    }
}

impl Page {
    /// The cursor of the page after `items`, the last of which is `last`: `None` when this
    /// page was not full (the last page).
    pub fn next_cursor<T>(&self, items: &[T], last: impl Fn(&T) -> i64) -> Option<String> {
        emdp_app::page::next_cursor(items, self.limit, last)
    }
}

/// A page of buildings on a per-building quality route, with keyset (cursor) pagination by
/// building id.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BuildingPageParams {
    /// Buildings per page, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: u32,
    /// The previous page's `next_cursor` (a building id).
    pub cursor: Option<String>,
}

impl FromQuery for BuildingPageParams {
    fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        Ok(BuildingPageParams { limit: query.page_limit()?, cursor: query.raw("cursor").map(str::to_owned) })
    }
}

impl From<BuildingPageParams> for emdp_app::usecases::report::BuildingPage {
    fn from(page: BuildingPageParams) -> Self {
        emdp_app::usecases::report::BuildingPage { cursor: page.cursor, limit: page.limit }
    }
}

/// The column (CSV) or key (JSON) each field of a body is read from.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Columns {
    /// Read a field from a column (CSV) or key (JSON) of another name: `FIELD=NAME`, e.g.
    /// `consumption=kwh`; repeatable, as `emdp ingest --column`.
    #[param(style = Form, explode, value_type = Option<Vec<String>>)]
    pub column: emdp_domain::ColumnNames,
}

impl FromQuery for Columns {
    fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        Ok(Columns { column: query.column_names()? })
    }
}
