//! The thresholds the quality rules apply, in one place an operator can change.

use serde::{Deserialize, Serialize};

/// Why a rule set is not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleSetError {
    /// A threshold is NaN or infinite.
    #[error("{field} must be a finite number, got {value}")]
    NotFinite {
        /// The offending key, e.g. `temperature.max`.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A lower bound is not below its upper bound.
    #[error("{low_field} ({low}) must be below {high_field} ({high})")]
    EmptyRange {
        /// The lower bound's key.
        low_field: &'static str,
        /// The lower bound.
        low: f64,
        /// The upper bound's key.
        high_field: &'static str,
        /// The upper bound.
        high: f64,
    },
    /// The identifier length limit is zero.
    #[error("identifiers.max_length must be at least 1")]
    ZeroIdentifierLength,
}

/// Bounds on the daily consumption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ConsumptionRules {
    /// A consumption at or below this is `consumption_non_positive` (default 0).
    pub min_exclusive: f64,
    /// A consumption above this is `consumption_too_high` (default 1,000,000).
    pub max: f64,
    /// The unit consumption is expressed in; informational (default `kWh`).
    pub unit: String,
}

impl Default for ConsumptionRules {
    fn default() -> Self {
        Self { min_exclusive: 0.0, max: 1_000_000.0, unit: "kWh".to_owned() }
    }
}

/// Bounds on the daily mean temperature, in °C; both bounds are valid values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TemperatureRules {
    /// Below this is `temperature_out_of_range` (default −20).
    pub min: f64,
    /// Above this is `temperature_out_of_range` (default 55).
    pub max: f64,
}

impl Default for TemperatureRules {
    fn default() -> Self {
        Self { min: -20.0, max: 55.0 }
    }
}

/// Limits on `building_id` and `provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct IdentifierRules {
    /// The longest identifier, in characters (default 128).
    pub max_length: usize,
}

impl Default for IdentifierRules {
    fn default() -> Self {
        Self { max_length: 128 }
    }
}

/// Every threshold the quality rules use. Built with defaults or deserialized (e.g. from a
/// TOML rules file); either way it is checked by [`RuleSet::validated`] before use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct RuleSet {
    /// Consumption bounds.
    pub consumption: ConsumptionRules,
    /// Temperature bounds.
    pub temperature: TemperatureRules,
    /// Identifier limits.
    pub identifiers: IdentifierRules,
}

impl RuleSet {
    /// Checks that every threshold is finite and every range non-empty.
    pub fn validated(self) -> Result<Self, RuleSetError> {
        let finite = |field: &'static str, value: f64| {
            if value.is_finite() { Ok(()) } else { Err(RuleSetError::NotFinite { field, value }) }
        };
        finite("consumption.min_exclusive", self.consumption.min_exclusive)?;
        finite("consumption.max", self.consumption.max)?;
        finite("temperature.min", self.temperature.min)?;
        finite("temperature.max", self.temperature.max)?;
        if self.consumption.min_exclusive >= self.consumption.max {
            return Err(RuleSetError::EmptyRange {
                low_field: "consumption.min_exclusive",
                low: self.consumption.min_exclusive,
                high_field: "consumption.max",
                high: self.consumption.max,
            });
        }
        if self.temperature.min > self.temperature.max {
            return Err(RuleSetError::EmptyRange {
                low_field: "temperature.min",
                low: self.temperature.min,
                high_field: "temperature.max",
                high: self.temperature.max,
            });
        }
        if self.identifiers.max_length == 0 {
            return Err(RuleSetError::ZeroIdentifierLength);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_thresholds() {
        let rules = RuleSet::default().validated().unwrap();
        assert_eq!(rules.consumption.min_exclusive, 0.0);
        assert_eq!(rules.consumption.max, 1_000_000.0);
        assert_eq!(rules.temperature.min, -20.0);
        assert_eq!(rules.temperature.max, 55.0);
        assert_eq!(rules.identifiers.max_length, 128);
    }

    #[test]
    fn rejects_empty_ranges() {
        let mut rules = RuleSet::default();
        rules.temperature.min = 60.0;
        assert!(matches!(rules.validated(), Err(RuleSetError::EmptyRange { low_field: "temperature.min", .. })));
        let mut rules = RuleSet::default();
        rules.consumption.max = 0.0;
        assert!(matches!(rules.validated(), Err(RuleSetError::EmptyRange { .. })));
    }

    #[test]
    fn rejects_non_finite_and_zero_length() {
        let mut rules = RuleSet::default();
        rules.consumption.max = f64::INFINITY;
        assert!(matches!(rules.validated(), Err(RuleSetError::NotFinite { field: "consumption.max", .. })));
        let mut rules = RuleSet::default();
        rules.identifiers.max_length = 0;
        assert_eq!(rules.validated(), Err(RuleSetError::ZeroIdentifierLength));
    }

    #[test]
    fn partial_documents_keep_defaults_and_unknown_keys_fail() {
        let rules: RuleSet = serde_json::from_str(r#"{"temperature":{"max":60}}"#).unwrap();
        assert_eq!(rules.temperature.max, 60.0);
        assert_eq!(rules.temperature.min, -20.0);
        assert!(serde_json::from_str::<RuleSet>(r#"{"temprature":{}}"#).is_err());
    }
}
