//! The alert model: what a rule watches ([`RuleKind`] with its parameters), how urgent its
//! alerts are ([`Severity`]), whether an alert still holds ([`AlertState`]) and what happened
//! to one ([`EventKind`]), and the checks a rule must pass before it is stored
//! ([`RuleSpec::validate`]).
//!
//! The names (`critical`, `firing`, `valid_share`, ...) are stored in databases and sent over
//! the API: they never change.

use serde::{Deserialize, Serialize};

use crate::QualityStatus;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::Display, strum::EnumString)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
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
        self.into()
    }

    /// Parses `info`, `warning` or `critical` (trimmed, case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

/// What a share-of-VALID rule groups records by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum ShareScope {
    /// The batch source (`api`, `mqtt:<topic>`, a file name).
    Source,
    /// The provider.
    Provider,
    /// The building.
    Building,
}

impl ShareScope {
    /// `source`, `provider` or `building`: the prefix of the subjects a rule of this scope
    /// watches.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A rule's kind and parameters (`{"kind": "...", "params": {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "params", rename_all = "snake_case", deny_unknown_fields)]
#[derive(strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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
        self.into()
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

/// Why a rule cannot be stored: the sentence says which parameter is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRule(pub &'static str);

impl RuleSpec {
    /// Checks what the parameters' types cannot: a name, at least one condition, finite
    /// numbers within their ranges, a known status.
    pub fn validate(&self) -> Result<(), InvalidRule> {
        let invalid = |text: &'static str| Err(InvalidRule(text));
        if self.name.trim().is_empty() {
            return invalid("name must not be empty");
        }
        match &self.kind {
            RuleKind::Threshold { above, below, .. } => {
                if above.is_none() && below.is_none() {
                    return invalid("a threshold rule needs 'above' or 'below'");
                }
                if above.iter().chain(below).any(|v| !v.is_finite()) {
                    return invalid("thresholds must be finite numbers");
                }
            }
            RuleKind::Anomaly { z, .. } if !(z.is_finite() && *z > 0.0) => return invalid("'z' must be positive"),
            RuleKind::ValidShare { min_percent, window, .. } => {
                if !(0.0..=100.0).contains(min_percent) {
                    return invalid("'min_percent' must be between 0 and 100");
                }
                if *window == 0 || *window > 1_000_000 {
                    return invalid("'window' must be between 1 and 1000000");
                }
            }
            RuleKind::Stale { max_silence_seconds, .. } if *max_silence_seconds == 0 => {
                return invalid("'max_silence_seconds' must be positive");
            }
            RuleKind::Status { status, reason, .. } => {
                if status.is_none() && reason.is_none() {
                    return invalid("a status rule needs 'status' or 'reason'");
                }
                if let Some(status) = status
                    && QualityStatus::parse(status).is_none()
                {
                    return invalid("'status' must be VALID, INCOMPLETE or INCONSISTENT");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether an alert's condition still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum AlertState {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses `firing` or `resolved` (trimmed, case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase")]
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
        self.into()
    }

    /// Parses the name (exactly as [`EventKind::as_str`] writes it).
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::assert_names;

    #[test]
    fn names_are_pinned() {
        assert_names(&[(Severity::Info, "info"), (Severity::Warning, "warning"), (Severity::Critical, "critical")]);
        assert_names(&[
            (ShareScope::Source, "source"),
            (ShareScope::Provider, "provider"),
            (ShareScope::Building, "building"),
        ]);
        assert_names(&[(AlertState::Firing, "firing"), (AlertState::Resolved, "resolved")]);
        assert_names(&[
            (EventKind::Fired, "fired"),
            (EventKind::Resolved, "resolved"),
            (EventKind::Acknowledged, "acknowledged"),
        ]);
    }

    #[test]
    fn parsing_keeps_each_enum_s_leniency() {
        assert_eq!(Severity::parse(" Critical "), Some(Severity::Critical));
        assert_eq!(Severity::parse("urgent"), None);
        assert_eq!(AlertState::parse("FIRING\n"), Some(AlertState::Firing));
        assert_eq!(EventKind::parse("fired"), Some(EventKind::Fired));
        assert_eq!(EventKind::parse("Fired"), None, "event kinds are read back from the store exactly");
    }

    #[test]
    fn kinds_round_trip_through_name_and_params() {
        let kinds = [
            (RuleKind::Threshold { building: Some("B1".into()), above: Some(10.0), below: None }, "threshold"),
            (RuleKind::Anomaly { building: None, z: 3.0 }, "anomaly"),
            (
                RuleKind::ValidShare { scope: ShareScope::Provider, value: None, min_percent: 90.0, window: 100 },
                "valid_share",
            ),
            (RuleKind::Stale { building: None, max_silence_seconds: 60 }, "stale"),
            (RuleKind::Status { source: None, status: Some("VALID".into()), reason: None }, "status"),
        ];
        for (kind, name) in kinds {
            assert_eq!(kind.name(), name, "rule kind names are stored: they never change");
            assert_eq!(serde_json::to_value(&kind).unwrap()["kind"], name);
            assert_eq!(RuleKind::from_parts(kind.name(), kind.params()), Ok(kind));
        }
        assert_eq!(
            RuleKind::from_parts("anomaly", serde_json::json!({})),
            Ok(RuleKind::Anomaly { building: None, z: 3.0 }),
            "defaults fill missing parameters"
        );
        let err = RuleKind::from_parts("threshold", serde_json::json!({"abov": 1})).unwrap_err();
        assert!(err.starts_with("invalid alert rule 'threshold'"), "{err}");
        assert!(RuleKind::from_parts("nope", serde_json::json!({})).is_err());
    }

    fn spec(kind: RuleKind) -> RuleSpec {
        RuleSpec { name: "r".into(), kind, severity: Severity::Warning, cooldown_seconds: 0, enabled: true }
    }

    #[test]
    fn validation_names_the_wrong_parameter() {
        let cases = [
            (
                RuleKind::Threshold { building: None, above: None, below: None },
                "a threshold rule needs 'above' or 'below'",
            ),
            (
                RuleKind::Threshold { building: None, above: Some(f64::NAN), below: None },
                "thresholds must be finite numbers",
            ),
            (RuleKind::Anomaly { building: None, z: 0.0 }, "'z' must be positive"),
            (
                RuleKind::ValidShare { scope: ShareScope::Source, value: None, min_percent: 101.0, window: 10 },
                "'min_percent' must be between 0 and 100",
            ),
            (
                RuleKind::ValidShare { scope: ShareScope::Source, value: None, min_percent: 50.0, window: 0 },
                "'window' must be between 1 and 1000000",
            ),
            (RuleKind::Stale { building: None, max_silence_seconds: 0 }, "'max_silence_seconds' must be positive"),
            (RuleKind::Status { source: None, status: None, reason: None }, "a status rule needs 'status' or 'reason'"),
            (
                RuleKind::Status { source: None, status: Some("GOOD".into()), reason: None },
                "'status' must be VALID, INCOMPLETE or INCONSISTENT",
            ),
        ];
        for (kind, message) in cases {
            assert_eq!(spec(kind).validate(), Err(InvalidRule(message)));
        }
        let unnamed = RuleSpec { name: " ".into(), ..spec(RuleKind::Anomaly { building: None, z: 3.0 }) };
        assert_eq!(unnamed.validate(), Err(InvalidRule("name must not be empty")));
        assert_eq!(
            spec(RuleKind::Status { source: None, status: Some("valid".into()), reason: None }).validate(),
            Ok(())
        );
    }
}
