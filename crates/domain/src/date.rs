//! Calendar dates as ISO 8601 `YYYY-MM-DD`.

use chrono::NaiveDate;

/// Why text is not an ISO 8601 calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the form `YYYY-MM-DD` with ASCII digits.
    #[error("not of the form YYYY-MM-DD")]
    Syntax,
    /// The right form, but no such day (`2023-02-29`, `2024-13-45`, `2024-00-10`).
    #[error("no such calendar day")]
    NoSuchDay,
}

/// Parses trimmed text as an ISO 8601 calendar date in the extended form `YYYY-MM-DD`,
/// which must name a real day of the proleptic Gregorian calendar.
pub fn parse_iso_date(text: &str) -> Result<NaiveDate, DateError> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(DateError::Syntax);
    }
    let digits = |range: std::ops::Range<usize>| -> Result<u32, DateError> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            if c.is_ascii_digit() { Ok(acc * 10 + u32::from(c - b'0')) } else { Err(DateError::Syntax) }
        })
    };
    let year = digits(0..4)?;
    let month = digits(5..7)?;
    let day = digits(8..10)?;
    let year = i32::try_from(year).map_err(|_| DateError::Syntax)?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or(DateError::NoSuchDay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn accepts_real_days() {
        assert_eq!(parse_iso_date("2024-01-05"), Ok(ymd(2024, 1, 5)));
        assert_eq!(parse_iso_date("2024-02-29"), Ok(ymd(2024, 2, 29)));
        assert_eq!(parse_iso_date("2000-02-29"), Ok(ymd(2000, 2, 29)));
        assert_eq!(parse_iso_date("2045-12-31"), Ok(ymd(2045, 12, 31)));
    }

    #[test]
    fn rejects_days_that_do_not_exist() {
        for text in ["2023-02-29", "1900-02-29", "2024-13-45", "2024-00-10", "2023-02-30", "2024-04-31", "2024-01-00"] {
            assert_eq!(parse_iso_date(text), Err(DateError::NoSuchDay), "{text}");
        }
    }

    #[test]
    fn rejects_other_forms() {
        for text in [
            "31/12/2023",
            "2024/01/05",
            "not-a-date",
            "20240105",
            "2024-1-5",
            "2024-01-05T00:00:00",
            "24-01-05",
            "",
            "２０２４-01-05",
            "+2024-01-05",
            "2024-01-5 ",
        ] {
            assert_eq!(parse_iso_date(text), Err(DateError::Syntax), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".*") {
            let _ = parse_iso_date(&text);
        }

        #[test]
        fn round_trips(days in 0i32..3_000_000) {
            let date = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
            proptest::prop_assert_eq!(parse_iso_date(&date.format("%Y-%m-%d").to_string()), Ok(date));
        }
    }
}
