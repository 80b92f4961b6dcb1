//! The alert store: rules, the alerts they raise, the event log that live streams replay, and
//! every webhook delivery attempt.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention.
    Warning,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Parses `info`, `warning` or `critical` (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// What a share-of-VALID rule groups records by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareScope {
    /// The batch source (`api`, `mqtt:<topic>`, a file name).
    Source,
    /// The provider.
    Provider,
    /// The building.
    Building,
}

/// A rule's kind and parameters (`{"kind": "...", "params": {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "params", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleKind {
    /// A record's consumption above `above` or below `below` (kWh/day), for one building or all.
    Threshold {
        /// Only this building (all when absent).
        #[serde(default)]
        building: Option<String>,
        /// Fires when consumption is above this.
        #[serde(default)]
        above: Option<f64>,
        /// Fires when consumption is below this.
        #[serde(default)]
        below: Option<f64>,
    },
    /// A VALID record whose consumption departs from the building's baseline model by more
    /// than `z` times the model's RMSE.
    Anomaly {
        /// Only this building (all when absent).
        #[serde(default)]
        building: Option<String>,
        /// Residual threshold in multiples of the model's RMSE (default 3).
        #[serde(default = "default_z")]
        z: f64,
    },
    /// The share of VALID records among the last `window` records of a source, provider or
    /// building below `min_percent`.
    ValidShare {
        /// What records are grouped by.
        scope: ShareScope,
        /// Only this source, provider or building (each one separately when absent).
        #[serde(default)]
        value: Option<String>,
        /// Fires when the VALID share (0-100) is below this.
        min_percent: f64,
        /// How many of the latest records are considered (default 100).
        #[serde(default = "default_window")]
        window: usize,
    },
    /// No record from a building for more than `max_silence_seconds` (checked periodically).
    Stale {
        /// Only this building (every building seen when absent).
        #[serde(default)]
        building: Option<String>,
        /// The longest silence tolerated, seconds.
        max_silence_seconds: u64,
    },
    /// Any record of `status` or with the reason `reason` from `source`.
    Status {
        /// Only records from this source (any source when absent).
        #[serde(default)]
        source: Option<String>,
        /// `VALID`, `INCOMPLETE` or `INCONSISTENT`.
        #[serde(default)]
        status: Option<String>,
        /// A reason code (e.g. `consumption_negative`).
        #[serde(default)]
        reason: Option<String>,
    },
}

fn default_z() -> f64 {
    3.0
}

fn default_window() -> usize {
    100
}

impl RuleKind {
    /// The kind's name (`threshold`, `anomaly`, `valid_share`, `stale`, `status`).
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Anomaly { .. } => "anomaly",
            RuleKind::ValidShare { .. } => "valid_share",
            RuleKind::Stale { .. } => "stale",
            RuleKind::Status { .. } => "status",
        }
    }

    /// The parameters as JSON (without the kind).
    pub fn params(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => map.remove("params").unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds a kind from its name and parameters.
    pub fn from_parts(kind: &str, params: serde_json::Value) -> Result<Self, String> {
        serde_json::from_value(serde_json::json!({ "kind": kind, "params": params }))
            .map_err(|err| format!("invalid alert rule '{kind}': {err}"))
    }
}

/// A rule as created or replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Its name.
    pub name: String,
    /// Its kind and parameters.
    pub kind: RuleKind,
    /// The severity of its alerts.
    pub severity: Severity,
    /// The same condition does not fire twice within this many seconds.
    pub cooldown_seconds: u64,
    /// Whether it is evaluated.
    pub enabled: bool,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// Its id.
    pub id: i64,
    /// Its definition.
    pub spec: RuleSpec,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Whether an alert's condition still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }

    /// Parses `firing` or `resolved`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "firing" => Some(AlertState::Firing),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        }
    }
}

/// An alert raised by a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Its id.
    pub id: i64,
    /// The rule that raised it.
    pub rule_id: i64,
    /// The rule's name when it fired.
    pub rule_name: String,
    /// Its severity (the rule's when it fired).
    pub severity: Severity,
    /// What the condition is about (a building, `source:<name>`, ...): one alert at a time
    /// per rule and subject.
    pub subject: String,
    /// The building concerned, when there is one.
    pub building: Option<String>,
    /// Firing or resolved.
    pub state: AlertState,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When an operator acknowledged it.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// A readable description.
    pub message: String,
    /// The figures behind it.
    pub details: serde_json::Value,
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// The rule.
    pub rule_id: i64,
    /// The rule's name.
    pub rule_name: String,
    /// The severity.
    pub severity: Severity,
    /// See [`Alert::subject`].
    pub subject: String,
    /// The building concerned.
    pub building: Option<String>,
    /// When it fired.
    pub fired_at: DateTime<Utc>,
    /// A readable description.
    pub message: String,
    /// The figures behind it.
    pub details: serde_json::Value,
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// It fired.
    Fired,
    /// It resolved.
    Resolved,
    /// It was acknowledged.
    Acknowledged,
}

impl EventKind {
    /// `fired`, `resolved` or `acknowledged`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fired => "fired",
            EventKind::Resolved => "resolved",
            EventKind::Acknowledged => "acknowledged",
        }
    }

    /// Parses the name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "fired" => Some(EventKind::Fired),
            "resolved" => Some(EventKind::Resolved),
            "acknowledged" => Some(EventKind::Acknowledged),
            _ => None,
        }
    }
}

/// One entry of the alert event log (what live streams send, in `seq` order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The event's sequence number (increasing; the SSE `id:`).
    pub seq: i64,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The alert after the event.
    pub alert: Alert,
}

/// Which alerts to list. Every filter is optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertFilter {
    /// Only this state.
    pub state: Option<AlertState>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this building.
    pub building: Option<String>,
    /// Only this rule.
    pub rule_id: Option<i64>,
}

/// One attempt to deliver an alert event to a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    /// The event delivered.
    pub event_seq: i64,
    /// Its alert.
    pub alert_id: i64,
    /// The webhook.
    pub url: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The HTTP status received, if any.
    pub status: Option<u16>,
    /// Whether it succeeded (2xx).
    pub success: bool,
    /// The error, when it failed.
    pub error: Option<String>,
    /// How long it took, ms.
    pub duration_ms: u64,
}

/// Rules, alerts, events and deliveries.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Every rule, by id.
    async fn list_rules(&self) -> Result<Vec<AlertRule>, StoreError>;
    /// One rule.
    async fn get_rule(&self, id: i64) -> Result<Option<AlertRule>, StoreError>;
    /// Stores a new rule.
    async fn create_rule(&self, spec: &RuleSpec, at: DateTime<Utc>) -> Result<AlertRule, StoreError>;
    /// Replaces a rule ([`StoreError::NotFound`] when there is none).
    async fn update_rule(&self, id: i64, spec: &RuleSpec, at: DateTime<Utc>) -> Result<AlertRule, StoreError>;
    /// Deletes a rule (its alerts stay). False when there was none.
    async fn delete_rule(&self, id: i64) -> Result<bool, StoreError>;

    /// Raises an alert and logs the `fired` event, atomically.
    async fn fire(&self, alert: &NewAlert) -> Result<AlertEvent, StoreError>;
    /// Resolves a firing alert and logs the `resolved` event.
    async fn resolve(&self, id: i64, at: DateTime<Utc>) -> Result<AlertEvent, StoreError>;
    /// Acknowledges an alert; logs an `acknowledged` event the first time only.
    async fn acknowledge(&self, id: i64, at: DateTime<Utc>) -> Result<(Alert, Option<AlertEvent>), StoreError>;
    /// One alert.
    async fn get_alert(&self, id: i64) -> Result<Option<Alert>, StoreError>;
    /// Alerts matching `filter`, newest first, with ids below `before`, at most `limit`.
    async fn list_alerts(
        &self,
        filter: &AlertFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Alert>, StoreError>;
    /// Every firing alert.
    async fn firing_alerts(&self) -> Result<Vec<Alert>, StoreError>;
    /// Events after `seq`, in order, at most `limit`.
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<AlertEvent>, StoreError>;

    /// Logs a webhook delivery attempt.
    async fn record_attempt(&self, attempt: &DeliveryAttempt) -> Result<(), StoreError>;
    /// The delivery attempts of an alert's events, in order.
    async fn attempts(&self, alert_id: i64) -> Result<Vec<DeliveryAttempt>, StoreError>;
}
