//! The alert store: rules, the alerts they raise, the event log that live streams replay, and
//! every webhook delivery attempt.
//!
//! The alert model itself (severities, rule kinds and their parameters, alert states, event
//! kinds) is pure and lives in [`emdp_domain::alerts`]; it is re-exported here, where the
//! store's rows use it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
pub use emdp_domain::alerts::{AlertState, EventKind, RuleKind, RuleSpec, Severity, ShareScope};
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;

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

    /// What the staleness rules rebuild after a restart: the last arrival of every building
    /// (its newest raw row's `received_at`), one entry per building, in one query.
    async fn last_arrivals(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
    /// What a `valid_share` rule rebuilds after a restart, in one query: per subject of
    /// `scope` (only `value` when given), whether each of its latest `window` raw rows was
    /// VALID on arrival, oldest first. Exact re-deliveries are left out, as the rule leaves
    /// them out live.
    async fn recent_validity(
        &self,
        scope: ShareScope,
        value: Option<&str>,
        window: usize,
    ) -> Result<Vec<(String, Vec<bool>)>, StoreError>;
}
