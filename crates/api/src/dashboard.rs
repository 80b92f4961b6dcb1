//! The data-quality dashboard: a small front end (plain ES modules, CSS and the vendored uPlot
//! chart library) compiled into the binary, so the page works with no network at all.
//!
//! - `/` and `/ui`, `/ui/...` answer the page's one HTML document (the pages are routed in the
//!   browser: overview, buildings, a building, duplicates, alerts, upload);
//! - `/assets/...` answers the scripts, styles and vendored files.
//!
//! Every answer carries a `Content-Security-Policy` of `default-src 'self'`: no inline script,
//! no external host. The files are public (no API key): the page asks for a key itself and
//! sends it with every API request.
//!
//! [`overview`] (`GET /api/v1/quality/overview`, behind the guard like every API route) is the
//! overview page's one request: the report's counts, the buildings and stale buildings, the
//! firing alerts and the breakdowns per provider and day, without the report's per-building
//! rows, gap list and flatlines, which a 1,000,000-record overview does not show and which
//! dominate the report's cost. Every figure follows the filter.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use emdp_app::ports::{Freshness, GroupCounts, QualityFilter, RecordBreakdown, RecordCounts, RowCounts};
use emdp_app::usecases::report::{StatusShares, firing_alerts};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, Scope};
use crate::routes::quality::{BatchParam, ReportParams, quality_filter};
use crate::state::AppState;

/// The policy sent with every dashboard file.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const INDEX_HTML: &str = include_str!("../dashboard/index.html");

/// The content type of scripts (ES modules must be served as JavaScript).
const JS: &str = "text/javascript; charset=utf-8";
/// The content type of style sheets.
const CSS: &str = "text/css; charset=utf-8";

/// One entry of [`ASSETS`]: `asset!(name, content type)` is the file `dashboard/{name}`, served
/// as `/assets/{name}`, so a file's name and path are written once.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        ($name, $content_type, include_bytes!(concat!("../dashboard/", $name)))
    };
}

/// The files under `/assets/`: name, content type, bytes. `app.js` routes between the pages,
/// one ES module each under `pages/`; `ui.js` holds what they share.
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("charts.js", JS),
    asset!("keypanel.js", JS),
    asset!("ui.js", JS),
    asset!("pages/alerts.js", JS),
    asset!("pages/building.js", JS),
    asset!("pages/buildings.js", JS),
    asset!("pages/duplicates.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/upload.js", JS),
    asset!("style.css", CSS),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
    asset!("vendor/LICENSE", "text/plain; charset=utf-8"),
];

/// The dashboard's routes (no state needed).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/{*rest}", get(page))
        .route("/assets/{*file}", get(asset))
}

/// `GET /api/v1/quality/overview`: what the overview page shows, in the report's shapes
/// (`records`, `shares`, `rows`, `completeness.totals.buildings`/`stale`,
/// `breakdowns.providers`/`days`) and the firing alerts (`alerts.firing`), for the report's
/// filters (`building_id`, `provider`, `from`, `to`, `batch`; `today`, `stale_days`).
///
/// The building counts come from the quality store's freshness (index seeks per building)
/// instead of the completeness query, which computes every building's gaps and is the
/// report's dearest part.
#[utoipa::path(get, path = "/api/v1/quality/overview", tag = "quality",
    params(Scope, BatchParam, ReportParams),
    responses((status = 200, description = "The overview's figures", body = Overview)))]
pub async fn overview(
    State(state): State<AppState>,
    Params(scope): Params<Scope>,
    Params(batch): Params<BatchParam>,
    Params(settings): Params<ReportParams>,
) -> ApiResult<Json<Overview>> {
    let filter = quality_filter(scope, batch);
    let (today, thresholds) = settings.resolve(state.clock.as_ref());
    let stale_days = thresholds.stale_days;
    let store = state.quality.as_ref();
    let (record_breakdown, rows, totals, firing) = tokio::try_join!(
        store.record_breakdown(&filter),
        store.row_counts(&filter),
        store.freshness(&filter, today, stale_days),
        firing_alerts(state.alerts.store().as_ref(), store, &filter),
    )?;
    let RecordBreakdown { counts: records, providers, days } = record_breakdown;
    Ok(Json(Overview {
        filter,
        today,
        thresholds: OverviewThresholds { stale_days },
        shares: StatusShares::of(&records.status),
        records,
        rows,
        completeness: OverviewCompleteness { totals },
        alerts: OverviewAlerts { firing },
        breakdowns: OverviewBreakdowns { providers, days },
    }))
}

/// What the overview page shows: the quality report's figures without its per-building rows,
/// gaps and flatlines (same names and shapes as in the report).
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// The filter applied.
    pub filter: QualityFilter,
    /// The day staleness is measured from.
    pub today: NaiveDate,
    /// The staleness threshold.
    pub thresholds: OverviewThresholds,
    /// Shares of the curated records per status.
    pub shares: StatusShares,
    /// Counts of the curated records.
    pub records: RecordCounts,
    /// Counts of the received rows.
    pub rows: RowCounts,
    /// How many buildings the filter covers and how many of them are stale.
    pub completeness: OverviewCompleteness,
    /// The firing alerts about the buildings the filter covers.
    pub alerts: OverviewAlerts,
    /// Counts per provider and per day.
    pub breakdowns: OverviewBreakdowns,
}

/// The overview's alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewAlerts {
    /// Alerts firing now: every one without a filter; with a filter, those about a building
    /// named by a record matching it (an alert about no building, such as a source's silence,
    /// is then left out).
    pub firing: i64,
}

/// The overview's threshold.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewThresholds {
    /// Days without a VALID record before a building is stale.
    pub stale_days: u32,
}

/// The overview's completeness: totals only.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewCompleteness {
    /// The buildings named by a record matching the filter, and how many of them are stale
    /// on `today`, judged by their VALID days of the filter's provider, if any, whatever the
    /// filter's days and batch: those pick the buildings, and a range that ended months ago
    /// does not make every building stale. Without a filter, the report's completeness totals.
    pub totals: Freshness,
}

/// The overview's breakdowns.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverviewBreakdowns {
    /// Curated records per provider.
    pub providers: Vec<GroupCounts<String>>,
    /// Curated records per day.
    pub days: Vec<GroupCounts<NaiveDate>>,
}

fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn page() -> Response {
    secured(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
            INDEX_HTML,
        )
            .into_response(),
    )
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => secured(
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response(),
        ),
        None => ApiError::NotFound(format!("no such asset: /assets/{file}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> Response {
        router::<()>().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn pages_and_assets_are_served_with_the_policy() {
        for path in [
            "/",
            "/ui/buildings",
            "/ui/buildings/B1",
            "/assets/app.js",
            "/assets/pages/overview.js",
            "/assets/vendor/uPlot.iife.min.js",
        ] {
            let response = get_path(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY, "{path}");
        }
        let response = get_path("/assets/pages/building.js").await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], JS);
        let response = get_path("/assets/style.css").await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let response = get_path("/assets/nope.js").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
    }

    #[test]
    fn the_page_has_no_inline_script_or_external_host() {
        assert!(!INDEX_HTML.contains("<script>") && !INDEX_HTML.contains("style="));
        for (name, _, bytes) in
            ASSETS.iter().filter(|(name, kind, _)| !name.starts_with("vendor/") && kind.starts_with("text/"))
        {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(!text.contains("http://") && !text.contains("https://"), "{name} names an external host");
        }
    }

    /// The names under `/assets/` of the files below `dir` (`prefix` names `dir` itself).
    fn files_below(dir: &std::path::Path, prefix: &str, names: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            if entry.file_type().unwrap().is_dir() {
                files_below(&entry.path(), &format!("{name}/"), names);
            } else {
                names.push(name);
            }
        }
    }

    #[test]
    fn every_dashboard_file_is_an_asset_and_every_script_is_javascript() {
        let mut files = Vec::new();
        files_below(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard"), "", &mut files);
        files.retain(|name| name != "index.html");
        files.sort();
        let mut assets: Vec<String> = ASSETS.iter().map(|(name, _, _)| (*name).to_owned()).collect();
        assets.sort();
        assert_eq!(assets, files, "the asset list is every file of crates/api/dashboard/ but index.html");
        for (name, content_type, _) in ASSETS.iter().filter(|(name, _, _)| name.ends_with(".js")) {
            assert_eq!(*content_type, JS, "{name}");
        }
    }
}
