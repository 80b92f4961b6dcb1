//! Heating and cooling degree days of a daily mean temperature.
//!
//! A degree day measures how far a day's mean temperature lies beyond a base (balance-point)
//! temperature, in °C·day. The baseline model searches its own balance points; the default
//! bases here are for reporting degree days outside a fitted model.

/// Default heating base, °C: 18 °C, the rounded Celsius equivalent of the 65 °F base that
/// CalTRACK/eemeter use for fixed-base degree-day reporting (and the common European 18 °C).
pub const DEFAULT_HEATING_BASE_C: f64 = 18.0;

/// Default cooling base, °C: 18 °C, for the same reason as [`DEFAULT_HEATING_BASE_C`].
pub const DEFAULT_COOLING_BASE_C: f64 = 18.0;

/// Heating degree days of one day: `max(0, base - temperature)`, in °C·day.
pub fn heating_degree_days(temperature: f64, base: f64) -> f64 {
    (base - temperature).max(0.0)
}

/// Cooling degree days of one day: `max(0, temperature - base)`, in °C·day.
pub fn cooling_degree_days(temperature: f64, base: f64) -> f64 {
    (temperature - base).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heating_degree_days_below_base_only() {
        assert_eq!(heating_degree_days(10.0, 18.0), 8.0);
        assert_eq!(heating_degree_days(18.0, 18.0), 0.0);
        assert_eq!(heating_degree_days(25.0, 18.0), 0.0);
        assert_eq!(heating_degree_days(-5.5, DEFAULT_HEATING_BASE_C), 23.5);
    }

    #[test]
    fn cooling_degree_days_above_base_only() {
        assert_eq!(cooling_degree_days(25.0, 18.0), 7.0);
        assert_eq!(cooling_degree_days(18.0, 18.0), 0.0);
        assert_eq!(cooling_degree_days(10.0, DEFAULT_COOLING_BASE_C), 0.0);
    }
}
