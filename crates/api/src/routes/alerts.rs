//! Alert rules (CRUD), alerts (list, get, acknowledge, webhook deliveries) and the live alert
//! stream (Server-Sent Events, resumable with `Last-Event-ID`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use emdp_app::ports::{
    Alert, AlertEvent, AlertFilter, AlertRule, AlertState, DeliveryAttempt, RuleKind, RuleSpec, Severity,
};
use emdp_app::usecases::alerts::{AlertEngine, AlertError};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, FromQuery, Page, Params, QueryParams};
use crate::state::AppState;

impl From<AlertError> for ApiError {
    fn from(err: AlertError) -> Self {
        match err {
            AlertError::Invalid(detail) => ApiError::BadRequest { detail, field: None },
            AlertError::NotFound => ApiError::NotFound("no such alert rule or alert".into()),
            AlertError::Store(err) => err.into(),
        }
    }
}

/// A rule as sent: `kind` is `threshold`, `anomaly`, `valid_share`, `stale` or `status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// The kind's parameters (see docs/src/realtime.md).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// `info`, `warning` or `critical` (default `warning`).
    #[serde(default)]
    pub severity: Option<String>,
    /// Seconds during which the same condition does not fire again (default 300).
    #[serde(default)]
    pub cooldown_seconds: Option<u64>,
    /// Whether it is evaluated (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A stored rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleDto {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its parameters.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Cooldown, seconds.
    pub cooldown_seconds: u64,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<AlertRule> for RuleDto {
    fn from(rule: AlertRule) -> Self {
        RuleDto {
            id: rule.id,
            name: rule.spec.name,
            kind: rule.spec.kind.name().to_owned(),
            params: rule.spec.kind.params(),
            severity: rule.spec.severity.as_str().to_owned(),
            cooldown_seconds: rule.spec.cooldown_seconds,
            enabled: rule.spec.enabled,
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}

fn parse_rule(body: &Body) -> ApiResult<RuleSpec> {
    if !matches!(body.media_type.as_str(), "application/json" | "") {
        return Err(ApiError::UnsupportedMediaType("alert rules are application/json".into()));
    }
    let request: RuleRequest = serde_json::from_slice(&body.bytes)
        .map_err(|err| ApiError::BadRequest { detail: format!("invalid alert rule: {err}"), field: None })?;
    let params = if request.params.is_null() { serde_json::json!({}) } else { request.params };
    let kind = RuleKind::from_parts(&request.kind, params).map_err(|detail| ApiError::field("params", detail))?;
    let severity = match request.severity.as_deref() {
        None => Severity::Warning,
        Some(text) => Severity::parse(text).ok_or_else(|| ApiError::field("severity", "info, warning or critical"))?,
    };
    Ok(RuleSpec {
        name: request.name,
        kind,
        severity,
        cooldown_seconds: request.cooldown_seconds.unwrap_or(300),
        enabled: request.enabled.unwrap_or(true),
    })
}

fn rule_id(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| ApiError::NotFound(format!("no alert rule with id '{text}'")))
}

/// Every alert rule.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts",
    responses((status = 200, description = "The rules", body = Vec<RuleDto>)))]
pub async fn list_rules(State(state): State<AppState>) -> ApiResult<Json<Vec<RuleDto>>> {
    Ok(Json(state.alerts.list_rules().await?.into_iter().map(RuleDto::from).collect()))
}

/// Creates an alert rule (admin).
#[utoipa::path(post, path = "/api/v1/alert-rules", tag = "alerts",
    request_body(content = RuleRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The rule", body = RuleDto),
        (status = 400, description = "An invalid rule", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_rule(State(state): State<AppState>, body: Body) -> ApiResult<(StatusCode, Json<RuleDto>)> {
    let spec = parse_rule(&body)?;
    Ok((StatusCode::CREATED, Json(state.alerts.create_rule(&spec).await?.into())))
}

/// One alert rule.
#[utoipa::path(get, path = "/api/v1/alert-rules/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The rule")),
    responses(
        (status = 200, description = "The rule", body = RuleDto),
        (status = 404, description = "No such rule", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_rule(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RuleDto>> {
    Ok(Json(state.alerts.get_rule(rule_id(&id)?).await?.into()))
}

/// Replaces an alert rule (admin).
#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The rule")),
    request_body(content = RuleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rule", body = RuleDto),
        (status = 404, description = "No such rule", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<RuleDto>> {
    let id = rule_id(&id)?;
    let spec = parse_rule(&body)?;
    Ok(Json(state.alerts.update_rule(id, &spec).await?.into()))
}

/// Deletes an alert rule (admin); its alerts stay.
#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The rule")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_rule(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.alerts.delete_rule(rule_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page of alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    /// The alerts.
    pub items: Vec<Alert>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The filters of the alert list.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// Only alerts in this state.
    #[param(value_type = Option<String>, pattern = "^(firing|resolved)$")]
    pub state: Option<AlertState>,
    /// Only alerts of this severity.
    #[param(value_type = Option<String>, pattern = "^(info|warning|critical)$")]
    pub severity: Option<Severity>,
    /// Only alerts about this building.
    pub building: Option<String>,
    /// Only alerts of this rule.
    pub rule: Option<i64>,
}

impl FromQuery for AlertParams {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        Ok(AlertParams {
            state: query.get_with("state", "firing or resolved", AlertState::parse)?,
            severity: query.get_with("severity", "info, warning or critical", Severity::parse)?,
            building: query.raw("building").map(str::to_owned),
            rule: query.get("rule", "a rule id")?,
        })
    }
}

/// Alerts, newest first, filtered, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    params(AlertParams, Page),
    responses((status = 200, description = "A page of alerts", body = AlertPage)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    Params(filter): Params<AlertParams>,
    Params(page): Params<Page>,
) -> ApiResult<Json<AlertPage>> {
    let filter =
        AlertFilter { state: filter.state, severity: filter.severity, building: filter.building, rule_id: filter.rule };
    let items = state.alerts.store().list_alerts(&filter, page.cursor, page.limit).await?;
    let next_cursor = page.next_cursor(&items, |alert| alert.id);
    Ok(Json(AlertPage { items, next_cursor }))
}

fn alert_id(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| ApiError::NotFound(format!("no alert with id '{text}'")))
}

/// One alert.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert")),
    responses(
        (status = 200, description = "The alert", body = Alert),
        (status = 404, description = "No such alert", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_alert(State(state): State<AppState>, Path(target): Path<String>) -> ApiResult<Json<Alert>> {
    if let Some((_, verb)) = target.split_once(':') {
        // `/alerts/{id}:ack` is routed here too (axum matches whole segments): it takes POST.
        return Err(if verb == "ack" {
            ApiError::MethodNotAllowed
        } else {
            ApiError::NotFound(format!("no such route: /api/v1/alerts/{target}"))
        });
    }
    let alert = state.alerts.store().get_alert(alert_id(&target)?).await?;
    Ok(Json(alert.ok_or_else(|| ApiError::NotFound(format!("no alert with id '{target}'")))?))
}

/// Acknowledges an alert (`POST /api/v1/alerts/{id}:ack`); acknowledging again changes nothing.
#[utoipa::path(post, path = "/api/v1/alerts/{id}:ack", tag = "alerts",
    params(("id" = i64, Path, description = "The alert")),
    responses(
        (status = 200, description = "The alert", body = Alert),
        (status = 404, description = "No such alert", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn ack(State(state): State<AppState>, Path(target): Path<String>) -> ApiResult<Json<Alert>> {
    let Some(id) = target.strip_suffix(":ack") else {
        // `/alerts/{id}` is routed here too: it takes GET.
        return Err(if target.contains(':') {
            ApiError::NotFound(format!("no such route: /api/v1/alerts/{target}"))
        } else {
            ApiError::MethodNotAllowed
        });
    };
    Ok(Json(state.alerts.acknowledge(alert_id(id)?).await?))
}

/// The webhook delivery attempts of an alert's events.
#[utoipa::path(get, path = "/api/v1/alerts/{id}/deliveries", tag = "alerts",
    params(("id" = i64, Path, description = "The alert")),
    responses((status = 200, description = "Every attempt, in order", body = Vec<DeliveryAttempt>)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Path(target): Path<String>,
) -> ApiResult<Json<Vec<DeliveryAttempt>>> {
    Ok(Json(state.alerts.store().attempts(alert_id(&target)?).await?))
}

/// Live alert events (Server-Sent Events): `event:` fired, resolved or acknowledged; `id:` the
/// event's sequence number; `data:` the event as JSON. Reconnect with `Last-Event-ID` (or
/// `?after=SEQ`) to receive the events missed since; keep-alive comments every 15 s.
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "alerts",
    params(("after" = Option<i64>, Query, description = "Replay events after this sequence number (like Last-Event-ID)")),
    responses((status = 200, description = "An event stream: `data:` is an alert event as JSON", body = String, content_type = "text/event-stream")))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryParams,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim);
    let after = match header {
        Some(text) if !text.is_empty() => {
            Some(text.parse::<i64>().map_err(|_| ApiError::field("Last-Event-ID", "an event sequence number"))?)
        }
        _ => query.get("after", "an event sequence number")?,
    };
    // Subscribe before replaying, so nothing falls between the replay and the live events.
    let live = state.alerts.subscribe();
    let (sender, receiver) = mpsc::channel::<Event>(256);
    tokio::spawn(forward(state.alerts.clone(), live, after, sender));
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The SSE event of an alert event (`None`, logged, if it cannot be serialized).
fn sse_event(event: &AlertEvent) -> Option<Event> {
    let sse = Event::default().id(event.seq.to_string()).event(event.kind.as_str());
    sse.json_data(event)
        .inspect_err(|err| tracing::error!(error = %err, seq = event.seq, "alert event not serializable"))
        .ok()
}

/// Replays stored events after `after`, then forwards live ones (reading the store again when
/// the live receiver lags), until the client goes away.
async fn forward(
    alerts: AlertEngine,
    mut live: broadcast::Receiver<AlertEvent>,
    after: Option<i64>,
    sender: mpsc::Sender<Event>,
) {
    let mut last = after;
    if replay(&alerts, &mut last, &sender).await.is_err() {
        return;
    }
    loop {
        match live.recv().await {
            Ok(event) => {
                if last.is_some_and(|last| event.seq <= last) {
                    continue;
                }
                last = Some(event.seq);
                if let Some(sse) = sse_event(&event)
                    && sender.send(sse).await.is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if last.is_none() {
                    last = Some(0);
                }
                if replay(&alerts, &mut last, &sender).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn replay(alerts: &AlertEngine, last: &mut Option<i64>, sender: &mpsc::Sender<Event>) -> Result<(), ()> {
    let Some(mut after) = *last else { return Ok(()) };
    loop {
        let page = alerts.store().events_after(after, 1000).await.map_err(|_| ())?;
        let done = page.len() < 1000;
        for event in page {
            after = event.seq;
            *last = Some(after);
            if let Some(sse) = sse_event(&event) {
                sender.send(sse).await.map_err(|_| ())?;
            }
        }
        if done {
            return Ok(());
        }
    }
}
