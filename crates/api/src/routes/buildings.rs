//! `/api/v1/buildings`: what the data says about each building (VALID records only).

use axum::Json;
use axum::extract::{Path, State};
use chrono::NaiveDate;
use emdp_app::ports::{BuildingSummary, Granularity};
use emdp_app::usecases::analyze::{
    AnomalyAnalysis, BaselineReport, DegreeDayBases, PeriodRequest, SavingsAnalysis, SeriesReport,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, FromQuery, Params, QueryParams};
use crate::state::AppState;

/// A period of days to analyze.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// First day (YYYY-MM-DD); default: from the data.
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD); default: from the data.
    pub to: Option<NaiveDate>,
}

impl FromQuery for Period {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        let (from, to) = query.period()?;
        Ok(Period { from, to })
    }
}

impl From<Period> for PeriodRequest {
    fn from(period: Period) -> Self {
        PeriodRequest::new(period.from, period.to)
    }
}

/// How a series is aggregated.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// `day` (default), `week` or `month`.
    #[param(value_type = Option<String>, pattern = "^(day|week|month)$")]
    pub granularity: Granularity,
    /// Heating degree-day base, °C (default 18).
    #[param(value_type = Option<f64>)]
    pub heating_base: f64,
    /// Cooling degree-day base, °C (default 18).
    #[param(value_type = Option<f64>)]
    pub cooling_base: f64,
}

impl FromQuery for SeriesParams {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        let defaults = DegreeDayBases::default();
        let base = |name: &str, default: f64| {
            let finite = |v: f64| v.is_finite().then_some(v);
            Ok::<_, ApiError>(
                query.get_with(name, "a temperature in °C", |t| t.parse().ok().and_then(finite))?.unwrap_or(default),
            )
        };
        Ok(SeriesParams {
            granularity: query
                .get_with("granularity", "day, week or month", Granularity::parse)?
                .unwrap_or(Granularity::Day),
            heating_base: base("heating_base", defaults.heating)?,
            cooling_base: base("cooling_base", defaults.cooling)?,
        })
    }
}

/// Every building with its record counts, date range and latest VALID day.
#[utoipa::path(get, path = "/api/v1/buildings", tag = "analysis",
    responses((status = 200, description = "Buildings", body = Vec<BuildingSummary>)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<BuildingSummary>>> {
    Ok(Json(state.analyzer.buildings().await?))
}

/// A building's consumption, mean temperature, degree days and VALID-day counts per day,
/// ISO week or month, with the same period a year earlier.
#[utoipa::path(get, path = "/api/v1/buildings/{id}/series", tag = "analysis",
    params(("id" = String, Path, description = "Building id"), Period, SeriesParams),
    responses(
        (status = 200, description = "The series", body = SeriesReport),
        (status = 404, description = "No such building", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn series(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(period): Params<Period>,
    Params(series): Params<SeriesParams>,
) -> ApiResult<Json<SeriesReport>> {
    let bases = DegreeDayBases { heating: series.heating_base, cooling: series.cooling_base };
    Ok(Json(state.analyzer.series(&id, series.granularity, period.into(), bases).await?))
}

/// The CalTRACK daily baseline model of a building over a period, with its fit metrics and
/// the ASHRAE Guideline 14 verdict.
#[utoipa::path(get, path = "/api/v1/buildings/{id}/baseline", tag = "analysis",
    params(("id" = String, Path, description = "Building id"), Period),
    responses(
        (status = 200, description = "The model", body = BaselineReport),
        (status = 404, description = "No such building", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too little data", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn baseline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(period): Params<Period>,
) -> ApiResult<Json<BaselineReport>> {
    Ok(Json(state.analyzer.baseline(&id, period.into()).await?))
}

/// Days whose consumption departs from the baseline model (or, without a model, from the
/// rolling median), and lasting level shifts.
#[utoipa::path(get, path = "/api/v1/buildings/{id}/anomalies", tag = "analysis",
    params(("id" = String, Path, description = "Building id"), Period),
    responses(
        (status = 200, description = "Anomalies and level shifts", body = AnomalyAnalysis),
        (status = 404, description = "No such building", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn anomalies(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(period): Params<Period>,
) -> ApiResult<Json<AnomalyAnalysis>> {
    Ok(Json(state.analyzer.anomalies(&id, period.into()).await?))
}

/// A period of days.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodDto {
    /// First day (inclusive); default: from the data.
    pub from: Option<chrono::NaiveDate>,
    /// Last day (inclusive); default: from the data.
    pub to: Option<chrono::NaiveDate>,
}

/// The periods of a savings request.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavingsRequest {
    /// The baseline period (the model is fitted on it).
    #[serde(default)]
    pub baseline: PeriodDto,
    /// The reporting period (savings are computed on it).
    #[serde(default)]
    pub reporting: PeriodDto,
}

/// Avoided energy use over a reporting period against the baseline fitted on a baseline
/// period, per day and in total, with its 90 % fractional savings uncertainty.
#[utoipa::path(post, path = "/api/v1/buildings/{id}/savings", tag = "analysis",
    params(("id" = String, Path, description = "Building id")),
    request_body(content = SavingsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Savings", body = SavingsAnalysis),
        (status = 400, description = "Bad periods", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such building", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Too little data", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn savings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<SavingsAnalysis>> {
    if !matches!(body.media_type.as_str(), "application/json" | "") {
        return Err(ApiError::UnsupportedMediaType("savings reads application/json".into()));
    }
    let request: SavingsRequest = if body.bytes.iter().all(u8::is_ascii_whitespace) {
        SavingsRequest::default()
    } else {
        serde_json::from_slice(&body.bytes)
            .map_err(|err| ApiError::BadRequest { detail: format!("invalid savings request: {err}"), field: None })?
    };
    let baseline = PeriodRequest::new(request.baseline.from, request.baseline.to);
    let reporting = PeriodRequest::new(request.reporting.from, request.reporting.to);
    Ok(Json(state.analyzer.savings(&id, baseline, reporting).await?))
}
