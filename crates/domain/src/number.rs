//! Decimal numbers as meters and spreadsheets write them.

/// Why text is not an acceptable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not a plain decimal: letters, units, hex, decimal commas, `NaN`, `inf`, ...
    #[error("not a decimal number")]
    Syntax,
    /// A decimal too large for a 64-bit float (e.g. `1e999`).
    #[error("overflows to infinity")]
    Overflow,
}

/// Parses trimmed text as a finite decimal: an optional sign, digits with an optional
/// fraction (`12`, `-3.5`, `.5`, `5.`), and an optional exponent (`+5.5e2`, `1E-3`).
///
/// Everything else is rejected, including forms that Rust's own `f64` parser accepts
/// (`inf`, `NaN`, `infinity`), values that overflow to infinity (`1e999`), hexadecimal,
/// decimal commas (`12,5`) and units (`12 kWh`).
pub fn parse_decimal(text: &str) -> Result<f64, NumberError> {
    if !is_decimal_syntax(text.as_bytes()) {
        return Err(NumberError::Syntax);
    }
    // The grammar was checked above, so the standard parser (correctly rounded) cannot fail.
    let value: f64 = text.parse().map_err(|_| NumberError::Syntax)?;
    if value.is_finite() { Ok(value) } else { Err(NumberError::Overflow) }
}

/// `[+-]? (digits ('.' digits?)? | '.' digits) ([eE] [+-]? digits)?`
fn is_decimal_syntax(bytes: &[u8]) -> bool {
    let mut i = 0;
    let at = |i: usize| bytes.get(i).copied();
    if matches!(at(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while matches!(at(i), Some(b'0'..=b'9')) {
        i += 1;
    }
    let mut digits = i - int_start;
    if at(i) == Some(b'.') {
        i += 1;
        let frac_start = i;
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if matches!(at(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(at(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while matches!(at(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_decimals() {
        let cases = [
            ("12", 12.0),
            ("-3.5", -3.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("+5.5e2", 550.0),
            ("1E-3", 0.001),
            ("1e6", 1_000_000.0),
            ("-0", -0.0),
            ("0.001", 0.001),
            ("007", 7.0),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_decimal(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        let cases = [
            "",
            "abc",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "Infinity",
            "+infinity",
            "0x1A",
            "12,5",
            "12 kWh",
            "kWh",
            "1.2.3",
            "1..5",
            "--",
            "+",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "#VALUE!",
            "n/a",
            " 1",
            "1 ",
            "1_000",
            "+-1",
        ];
        for text in cases {
            assert_eq!(parse_decimal(text), Err(NumberError::Syntax), "{text:?}");
        }
    }

    #[test]
    fn rejects_overflow_to_infinity() {
        assert_eq!(parse_decimal("1e999"), Err(NumberError::Overflow));
        assert_eq!(parse_decimal("-1e400"), Err(NumberError::Overflow));
    }

    #[test]
    fn underflow_is_a_finite_zero() {
        assert_eq!(parse_decimal("1e-999"), Ok(0.0));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".*") {
            let _ = parse_decimal(&text);
        }

        #[test]
        fn round_trips_finite_floats(value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            proptest::prop_assert_eq!(parse_decimal(&value.to_string()), Ok(value));
            proptest::prop_assert_eq!(parse_decimal(&format!("{value:e}")), Ok(value));
        }
    }
}
