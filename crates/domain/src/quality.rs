//! Quality classification: the reasons a record can fail, and the status they add up to.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::Field;
use crate::record::ParsedRecord;
use crate::rules::RuleSet;

/// The quality of a record, computed by [`assess`]; never accepted from input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(strum::IntoStaticStr, strum::Display, strum::EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE", ascii_case_insensitive)]
pub enum QualityStatus {
    /// Every field present, parsable and within the rules.
    Valid,
    /// At least one required field is missing. Takes precedence over `Inconsistent`.
    Incomplete,
    /// Every field present, but at least one rule fails.
    Inconsistent,
}

impl QualityStatus {
    /// All statuses, in report order.
    pub const ALL: [QualityStatus; 3] = [Self::Valid, Self::Incomplete, Self::Inconsistent];

    /// The upper-case name used in output and storage (`VALID`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses the upper-case name, case-insensitively.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

macro_rules! reasons {
    ($($variant:ident = $bit:literal => $code:literal, $missing:literal;)*) => {
        /// One rule a record violates, with a stable machine-readable code.
        ///
        /// Each reason's number is its bit in [`ReasonSet::bits`], which the stores keep in a
        /// bitmask column of every record; its code is stored and shown as text. **Both are
        /// stored, hence append-only**: never renumber, reorder, rename or remove a reason; a
        /// new reason takes the next free number at the end of the table. The compiler rejects
        /// a number used twice (the enum's discriminants) and a gap or an out-of-order number
        /// (a constant check below), and a test pins every reason's number and code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive()]
        #[repr(u8)]
        #[derive(strum::IntoStaticStr, strum::Display, strum::EnumString)]
        pub enum Reason {
            $(
                #[doc = concat!("`", $code, "` (bit ", stringify!($bit), ")")]
                #[strum(serialize = $code)]
                $variant = $bit,
            )*
        }

        impl Reason {
            /// Every reason, in bit order: `Reason::ALL[i]` is the reason whose bit is `i` (the
            /// order reports use).
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            /// Whether this reason makes a record INCOMPLETE (a missing field) rather than
            /// INCONSISTENT.
            pub fn is_missing_field(self) -> bool {
                match self {
                    $(Reason::$variant => $missing,)*
                }
            }
        }
    };
}

// Bit numbers are stored: append-only (see [`Reason`]).
reasons! {
    MissingBuildingId = 0 => "missing_building_id", true;
    MissingDate = 1 => "missing_date", true;
    MissingConsumption = 2 => "missing_consumption", true;
    MissingTemperature = 3 => "missing_temperature", true;
    MissingProvider = 4 => "missing_provider", true;
    UnparsableDate = 5 => "unparsable_date", false;
    UnparsableConsumption = 6 => "unparsable_consumption", false;
    UnparsableTemperature = 7 => "unparsable_temperature", false;
    ConsumptionNonPositive = 8 => "consumption_non_positive", false;
    ConsumptionTooHigh = 9 => "consumption_too_high", false;
    TemperatureOutOfRange = 10 => "temperature_out_of_range", false;
    DateInFuture = 11 => "date_in_future", false;
    InvalidIdentifier = 12 => "invalid_identifier", false;
    MalformedRow = 13 => "malformed_row", false;
}

/// The table's numbers run 0, 1, 2, ... in table order: no gap, nothing out of order (a
/// duplicate number is already a compile error, as a duplicate discriminant).
const _: () = {
    let mut i = 0;
    while i < Reason::ALL.len() {
        assert!(Reason::ALL[i] as usize == i, "reason bit numbers must run 0, 1, 2, ... in table order");
        i += 1;
    }
};

impl Reason {
    /// How many reasons there are.
    pub const COUNT: usize = Reason::ALL.len();

    /// The reason's bit in [`ReasonSet::bits`] (stored: see [`Reason`]).
    pub fn bit(self) -> u8 {
        self as u8
    }

    /// The stable code, e.g. `temperature_out_of_range` (stored: see [`Reason`]).
    pub fn code(self) -> &'static str {
        self.into()
    }

    /// Finds a reason by its code (exactly).
    pub fn from_code(code: &str) -> Option<Reason> {
        code.parse().ok()
    }

    /// A sentence for people, with the thresholds of `rules` filled in.
    pub fn message(self, rules: &RuleSet) -> String {
        match self {
            Reason::MissingBuildingId => "building_id is missing or empty".to_owned(),
            Reason::MissingDate => "date is missing or empty".to_owned(),
            Reason::MissingConsumption => "consumption is missing or empty".to_owned(),
            Reason::MissingTemperature => "temperature is missing or empty".to_owned(),
            Reason::MissingProvider => "provider is missing or empty".to_owned(),
            Reason::UnparsableDate => "date is not an ISO 8601 calendar date YYYY-MM-DD".to_owned(),
            Reason::UnparsableConsumption => "consumption is not a finite decimal number".to_owned(),
            Reason::UnparsableTemperature => "temperature is not a finite decimal number".to_owned(),
            Reason::ConsumptionNonPositive => {
                format!("consumption is at or below {}", rules.consumption.min_exclusive)
            }
            Reason::ConsumptionTooHigh => format!("consumption is above {}", rules.consumption.max),
            Reason::TemperatureOutOfRange => {
                format!("temperature is outside [{}, {}] °C", rules.temperature.min, rules.temperature.max)
            }
            Reason::DateInFuture => "date is after today (UTC)".to_owned(),
            Reason::InvalidIdentifier => format!(
                "building_id or provider is longer than {} characters, contains a control character, or is not a string or a number",
                rules.identifiers.max_length
            ),
            Reason::MalformedRow => {
                "the row is malformed (more fields than the header, not a JSON object, or longer than the record limit)"
                    .to_owned()
            }
        }
    }
}

/// A set of [`Reason`]s, as a bit set: no allocation per record.
/// Serialized as its bits (for the ingest's temporary sort files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ReasonSet(u16);

const _: () = assert!(Reason::COUNT <= 16, "ReasonSet must be widened");

impl ReasonSet {
    /// The empty set.
    pub const EMPTY: ReasonSet = ReasonSet(0);

    /// Adds a reason.
    pub fn insert(&mut self, reason: Reason) {
        self.0 |= 1 << reason.bit();
    }

    /// Whether the set holds `reason`.
    pub fn contains(self, reason: Reason) -> bool {
        self.0 & (1 << reason.bit()) != 0
    }

    /// Whether no rule was violated.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many reasons the set holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The reasons, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.iter().copied().filter(move |reason| self.contains(*reason))
    }

    /// The codes joined by `sep` (e.g. for a CSV cell).
    pub fn join(self, sep: &str) -> String {
        self.iter().map(Reason::code).collect::<Vec<_>>().join(sep)
    }

    /// The bits, for compact storage.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// Rebuilds a set from [`ReasonSet::bits`], ignoring unknown bits.
    pub fn from_bits(bits: u16) -> Self {
        ReasonSet(bits & ((1u32 << Reason::COUNT) - 1) as u16)
    }
}

impl FromIterator<Reason> for ReasonSet {
    fn from_iter<I: IntoIterator<Item = Reason>>(iter: I) -> Self {
        let mut set = ReasonSet::EMPTY;
        for reason in iter {
            set.insert(reason);
        }
        set
    }
}

/// The verdict on one record: its status and every rule it violates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// The status the reasons add up to.
    pub status: QualityStatus,
    /// Every violated rule, not only the first.
    pub reasons: ReasonSet,
}

impl Assessment {
    /// Derives the status from a set of reasons: INCOMPLETE if any field is missing, else
    /// INCONSISTENT if any other rule fails, else VALID.
    pub fn from_reasons(reasons: ReasonSet) -> Self {
        let status = if reasons.iter().any(Reason::is_missing_field) {
            QualityStatus::Incomplete
        } else if !reasons.is_empty() {
            QualityStatus::Inconsistent
        } else {
            QualityStatus::Valid
        };
        Assessment { status, reasons }
    }
}

/// Applies every quality rule of `rules` to a parsed record. `today` is the last date that
/// is not in the future (the caller's clock, UTC, or a pinned day).
pub fn assess(record: &ParsedRecord<'_>, rules: &RuleSet, today: NaiveDate) -> Assessment {
    let mut reasons = ReasonSet::EMPTY;
    let mut note = |condition: bool, reason: Reason| {
        if condition {
            reasons.insert(reason);
        }
    };

    note(record.building_id.is_missing(), Reason::MissingBuildingId);
    note(record.date.is_missing(), Reason::MissingDate);
    note(record.consumption.is_missing(), Reason::MissingConsumption);
    note(record.temperature.is_missing(), Reason::MissingTemperature);
    note(record.provider.is_missing(), Reason::MissingProvider);

    note(matches!(record.date, Field::Invalid), Reason::UnparsableDate);
    note(matches!(record.consumption, Field::Invalid), Reason::UnparsableConsumption);
    note(matches!(record.temperature, Field::Invalid), Reason::UnparsableTemperature);
    note(
        matches!(record.building_id, Field::Invalid) || matches!(record.provider, Field::Invalid),
        Reason::InvalidIdentifier,
    );

    if let Field::Present(consumption) = record.consumption {
        note(consumption <= rules.consumption.min_exclusive, Reason::ConsumptionNonPositive);
        note(consumption > rules.consumption.max, Reason::ConsumptionTooHigh);
    }
    if let Field::Present(temperature) = record.temperature {
        note(temperature < rules.temperature.min || temperature > rules.temperature.max, Reason::TemperatureOutOfRange);
    }
    if let Field::Present(date) = record.date {
        note(date > today, Reason::DateInFuture);
    }
    note(record.malformed, Reason::MalformedRow);

    Assessment::from_reasons(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawField, RawRecord};

    const TODAY: &str = "2025-06-30";

    fn today() -> NaiveDate {
        crate::parse_iso_date(TODAY).unwrap()
    }

    fn row<'a>(b: &'a str, d: &'a str, c: &'a str, t: &'a str, p: &'a str) -> RawRecord<'a> {
        RawRecord {
            building_id: RawField::Text(b),
            date: RawField::Text(d),
            consumption: RawField::Text(c),
            temperature: RawField::Text(t),
            provider: RawField::Text(p),
            malformed: false,
        }
    }

    fn check(raw: RawRecord<'_>) -> Assessment {
        let rules = RuleSet::default();
        assess(&crate::ParsedRecord::parse(&raw, &rules), &rules, today())
    }

    fn codes(assessment: Assessment) -> Vec<&'static str> {
        assessment.reasons.iter().map(Reason::code).collect()
    }

    #[test]
    fn a_clean_record_is_valid() {
        let a = check(row("B1", "2025-01-01", "120.5", "10.2", "acme"));
        assert_eq!(a.status, QualityStatus::Valid);
        assert!(a.reasons.is_empty());
    }

    #[test]
    fn each_missing_field_has_its_own_code() {
        let a = check(row(" ", "", "", "\t", ""));
        assert_eq!(a.status, QualityStatus::Incomplete);
        assert_eq!(
            codes(a),
            ["missing_building_id", "missing_date", "missing_consumption", "missing_temperature", "missing_provider"]
        );
    }

    #[test]
    fn incomplete_takes_precedence_but_all_reasons_are_reported() {
        let a = check(row("B1", "2099-01-01", "", "99", "acme"));
        assert_eq!(a.status, QualityStatus::Incomplete);
        assert_eq!(codes(a), ["missing_consumption", "temperature_out_of_range", "date_in_future"]);
    }

    #[test]
    fn unparsable_values_are_inconsistent() {
        let a = check(row("B1", "2024-13-45", "12,5", "NaN", "acme"));
        assert_eq!(a.status, QualityStatus::Inconsistent);
        assert_eq!(codes(a), ["unparsable_date", "unparsable_consumption", "unparsable_temperature"]);
    }

    #[test]
    fn consumption_bounds() {
        for (value, expected) in [
            ("0", Some("consumption_non_positive")),
            ("-0", Some("consumption_non_positive")),
            ("0.0", Some("consumption_non_positive")),
            ("-3", Some("consumption_non_positive")),
            ("0.001", None),
            ("1000000", None),
            ("1e6", None),
            ("1000000.0001", Some("consumption_too_high")),
            ("1.5e7", Some("consumption_too_high")),
        ] {
            let a = check(row("B1", "2025-01-01", value, "10", "acme"));
            assert_eq!(codes(a), expected.into_iter().collect::<Vec<_>>(), "{value}");
        }
    }

    #[test]
    fn temperature_bounds_are_inclusive() {
        for (value, valid) in [("-20", true), ("-20.0", true), ("55", true), ("-20.01", false), ("55.1", false)] {
            let a = check(row("B1", "2025-01-01", "1", value, "acme"));
            assert_eq!(a.status == QualityStatus::Valid, valid, "{value}");
            if !valid {
                assert_eq!(codes(a), ["temperature_out_of_range"]);
            }
        }
    }

    #[test]
    fn today_is_not_in_the_future_but_tomorrow_is() {
        assert_eq!(check(row("B1", TODAY, "1", "1", "p")).status, QualityStatus::Valid);
        assert_eq!(codes(check(row("B1", "2025-07-01", "1", "1", "p"))), ["date_in_future"]);
    }

    #[test]
    fn identifiers_too_long_or_with_control_characters() {
        let long = "x".repeat(129);
        assert_eq!(codes(check(row(&long, "2025-01-01", "1", "1", "p"))), ["invalid_identifier"]);
        assert_eq!(codes(check(row("B1", "2025-01-01", "1", "1", "a\u{1}b"))), ["invalid_identifier"]);
        let both = check(row(&long, "2025-01-01", "1", "1", "a\u{1}b"));
        assert_eq!(both.reasons.len(), 1);
    }

    #[test]
    fn wrong_json_types_are_unusable_not_missing() {
        let mut raw = row("B1", "2025-01-01", "1", "1", "p");
        raw.consumption = RawField::WrongType("true");
        raw.provider = RawField::WrongType("{}");
        raw.date = RawField::WrongType("[]");
        assert_eq!(codes(check(raw)), ["unparsable_date", "unparsable_consumption", "invalid_identifier"]);
    }

    #[test]
    fn malformed_rows_are_flagged() {
        let mut raw = row("B1", "2025-01-01", "1", "1", "p");
        raw.malformed = true;
        let a = check(raw);
        assert_eq!(a.status, QualityStatus::Inconsistent);
        assert_eq!(codes(a), ["malformed_row"]);
        let empty = RawRecord { malformed: true, ..RawRecord::default() };
        assert_eq!(check(empty).status, QualityStatus::Incomplete);
    }

    #[test]
    fn configured_thresholds_apply() {
        let mut rules = RuleSet::default();
        rules.temperature.max = 60.0;
        let raw = row("B1", "2025-01-01", "1", "58", "p");
        assert_eq!(assess(&crate::ParsedRecord::parse(&raw, &rules), &rules, today()).status, QualityStatus::Valid);
        assert_eq!(check(raw).status, QualityStatus::Inconsistent);
    }

    /// Every reason's bit number and code, as stored in databases (a bitmask column and the
    /// codes' text). Never edit a row: add new reasons at the end.
    const STORED: [(Reason, u8, &str); 14] = [
        (Reason::MissingBuildingId, 0, "missing_building_id"),
        (Reason::MissingDate, 1, "missing_date"),
        (Reason::MissingConsumption, 2, "missing_consumption"),
        (Reason::MissingTemperature, 3, "missing_temperature"),
        (Reason::MissingProvider, 4, "missing_provider"),
        (Reason::UnparsableDate, 5, "unparsable_date"),
        (Reason::UnparsableConsumption, 6, "unparsable_consumption"),
        (Reason::UnparsableTemperature, 7, "unparsable_temperature"),
        (Reason::ConsumptionNonPositive, 8, "consumption_non_positive"),
        (Reason::ConsumptionTooHigh, 9, "consumption_too_high"),
        (Reason::TemperatureOutOfRange, 10, "temperature_out_of_range"),
        (Reason::DateInFuture, 11, "date_in_future"),
        (Reason::InvalidIdentifier, 12, "invalid_identifier"),
        (Reason::MalformedRow, 13, "malformed_row"),
    ];

    #[test]
    fn reason_bits_and_codes_are_pinned() {
        const RULE: &str = "reason bit numbers and codes are stored in databases and are append-only: \
                            never change or reuse one; give a new reason the next number";
        assert_eq!(Reason::ALL.len(), STORED.len(), "a reason was added or removed: pin it here ({RULE})");
        for (index, (reason, bit, code)) in STORED.into_iter().enumerate() {
            assert_eq!(reason.bit(), bit, "{reason:?} changed its bit ({RULE})");
            assert_eq!(reason.code(), code, "{reason:?} changed its code ({RULE})");
            assert_eq!(Reason::ALL[index], reason, "Reason::ALL is in bit order");
            assert_eq!((Reason::from_code(code), reason.to_string()), (Some(reason), code.to_owned()));
            assert_eq!(ReasonSet::from_bits(1 << bit).iter().collect::<Vec<_>>(), [reason]);
        }
    }

    #[test]
    fn reason_codes_round_trip_and_bits_are_stable() {
        for reason in Reason::ALL {
            assert_eq!(Reason::from_code(reason.code()), Some(*reason));
            assert!(!reason.message(&RuleSet::default()).is_empty());
        }
        let set: ReasonSet = [Reason::MissingDate, Reason::MalformedRow].into_iter().collect();
        assert_eq!(ReasonSet::from_bits(set.bits()), set);
        assert_eq!(set.join(";"), "missing_date;malformed_row");
    }

    #[test]
    fn status_names() {
        crate::names::assert_names(&[
            (QualityStatus::Valid, "VALID"),
            (QualityStatus::Incomplete, "INCOMPLETE"),
            (QualityStatus::Inconsistent, "INCONSISTENT"),
        ]);
        for status in QualityStatus::ALL {
            assert_eq!(QualityStatus::parse(&status.as_str().to_lowercase()), Some(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(QualityStatus::parse(" VALID"), None, "not trimmed");
    }
}
