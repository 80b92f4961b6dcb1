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
    if let Some(value) = parse_short(text.as_bytes()) {
        return Ok(value);
    }
    if !is_decimal_syntax(text.as_bytes()) {
        return Err(NumberError::Syntax);
    }
    // The grammar was checked above, so the standard parser (correctly rounded) cannot fail.
    let value: f64 = text.parse().map_err(|_| NumberError::Syntax)?;
    if value.is_finite() { Ok(value) } else { Err(NumberError::Overflow) }
}

/// Powers of ten that are exact in an `f64`.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// The fast path for what meters write: `[+-]? digits ('.' digits?)?` or `[+-]? '.' digits`,
/// at most 19 characters after the sign, no exponent, and digits that form an integer of
/// at most 2^53. Then the integer and the power of ten are both exact, so one division is
/// correctly rounded and equals the standard parser's result (Clinger's fast path).
/// `None` sends everything else to the general path.
fn parse_short(bytes: &[u8]) -> Option<f64> {
    let (negative, body) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if body.len() > 19 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (i, &byte) in body.iter().enumerate() {
        match byte {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(byte - b'0'),
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    if body.len() == usize::from(point.is_some()) || mantissa > 1 << 53 {
        return None;
    }
    let fraction_digits = point.map_or(0, |at| body.len() - at - 1);
    let value = mantissa as f64 / EXACT_POWERS_OF_TEN[fraction_digits];
    Some(if negative { -value } else { value })
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
        fn fast_path_agrees_with_the_standard_parser(text in "[+-]?[0-9]{0,12}[.]?[0-9]{0,12}") {
            let expected = text.parse::<f64>().ok().filter(|_| is_decimal_syntax(text.as_bytes()));
            let got = parse_decimal(&text).ok();
            proptest::prop_assert_eq!(got.map(f64::to_bits), expected.map(f64::to_bits));
        }

        #[test]
        fn round_trips_finite_floats(value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            proptest::prop_assert_eq!(parse_decimal(&value.to_string()), Ok(value));
            proptest::prop_assert_eq!(parse_decimal(&format!("{value:e}")), Ok(value));
        }
    }
}
