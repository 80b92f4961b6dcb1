//! CSV cells that are safe to open in a spreadsheet (OWASP, "CSV Injection").
//!
//! Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` as a
//! formula (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`), and a leading tab or carriage return can
//! hide such a start. emdp stores every value exactly as received; only the CSV files it writes
//! neutralize these cells, by prefixing `'`, which spreadsheets show as text. Numbers such as
//! `-5` or `+1.5e3` are left alone: they are data, not formulas.

use std::borrow::Cow;

/// `cell` as written to a CSV file: prefixed with `'` when a spreadsheet would read it as a
/// formula, unchanged otherwise (a finite number is never prefixed).
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    let formula_start = matches!(cell.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'));
    if formula_start && !cell.parse::<f64>().is_ok_and(f64::is_finite) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_are_prefixed() {
        for cell in ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "=1", "\t=1", "\r=1"]
        {
            assert_eq!(spreadsheet_safe(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn numbers_and_text_are_left_alone() {
        for cell in ["-5", "+1.5e3", "-0.25", "12", "B0001", "", "a=b", "2024-01-01", "provider-a"] {
            assert_eq!(spreadsheet_safe(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn words_a_number_parser_accepts_are_still_formulas() {
        // Rust reads these as floats, but a spreadsheet reads them as formulas naming `inf`.
        for cell in ["-inf", "+infinity", "-NaN"] {
            assert_eq!(spreadsheet_safe(cell), format!("'{cell}"), "{cell:?}");
        }
    }
}
