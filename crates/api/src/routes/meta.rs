//! Liveness, readiness and the rule set in force.

use axum::Json;
use axum::extract::State;
use emdp_domain::{Reason, RuleSet};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Liveness or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDto {
    /// `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers (no I/O).
#[utoipa::path(get, path = "/api/v1/health", tag = "operations",
    responses((status = 200, description = "Alive", body = HealthDto)))]
pub async fn health() -> Json<HealthDto> {
    Json(HealthDto { status: "ok" })
}

/// Readiness: the database answers. 503 when it does not.
#[utoipa::path(get, path = "/api/v1/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = HealthDto),
        (status = 503, description = "The database is unreachable", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<HealthDto>> {
    state.store.ping().await.map_err(|err| ApiError::Unavailable(err.to_string()))?;
    Ok(Json(HealthDto { status: "ok" }))
}

/// One rule: its code, what it checks, and its bit in stored reason sets.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonRuleDto {
    /// The reason code.
    pub code: &'static str,
    /// What it means, with the thresholds in force.
    pub message: String,
    /// `INCOMPLETE` for missing fields, else `INCONSISTENT`.
    pub status: &'static str,
    /// The bit of this reason in the `reasons` column of the stores.
    pub bit: u8,
}

/// The active rule set.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulesDto {
    /// The thresholds.
    pub thresholds: RuleSet,
    /// Every rule.
    pub rules: Vec<ReasonRuleDto>,
}

/// The active rule set with its thresholds and every reason code.
#[utoipa::path(get, path = "/api/v1/rules", tag = "quality",
    responses((status = 200, description = "The rule set in force", body = RulesDto)))]
pub async fn rules(State(state): State<AppState>) -> Json<RulesDto> {
    let rules = Reason::ALL
        .iter()
        .map(|reason| ReasonRuleDto {
            code: reason.code(),
            message: reason.message(&state.rules),
            status: if reason.is_missing_field() { "INCOMPLETE" } else { "INCONSISTENT" },
            bit: *reason as u8,
        })
        .collect();
    Json(RulesDto { thresholds: state.rules.as_ref().clone(), rules })
}
