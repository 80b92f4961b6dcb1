//! The energy record: as read ([`RawRecord`]) and as parsed ([`ParsedRecord`]).

use chrono::NaiveDate;

use crate::duplicates::{DuplicateKey, ValueFingerprint};
use crate::field::{Field, RawField};
use crate::identifier::{BuildingId, ProviderName};
use crate::rules::RuleSet;
use crate::{parse_decimal, parse_iso_date};

/// The five fields of a record, in their canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case", ascii_case_insensitive)]
pub enum FieldName {
    /// `building_id`
    BuildingId,
    /// `date`
    Date,
    /// `consumption`
    Consumption,
    /// `temperature`
    Temperature,
    /// `provider`
    Provider,
}

impl FieldName {
    /// The five fields in canonical column order.
    pub const ALL: [FieldName; 5] =
        [Self::BuildingId, Self::Date, Self::Consumption, Self::Temperature, Self::Provider];

    /// The field's name in files and JSON.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Matches a column header or JSON key: trimmed and case-insensitive.
    pub fn from_header(header: &str) -> Option<Self> {
        header.trim().parse().ok()
    }
}

/// A record exactly as a reader found it: five raw fields, and whether the row itself was
/// malformed (a CSV row longer than its header, an NDJSON line that is not a JSON object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawRecord<'a> {
    /// The building, as read.
    pub building_id: RawField<'a>,
    /// The day, as read.
    pub date: RawField<'a>,
    /// The consumption, as read.
    pub consumption: RawField<'a>,
    /// The temperature, as read.
    pub temperature: RawField<'a>,
    /// The provider, as read.
    pub provider: RawField<'a>,
    /// Whether the row did not have the shape of a record.
    pub malformed: bool,
}

impl<'a> RawRecord<'a> {
    /// The raw value of one field.
    pub fn get(&self, field: FieldName) -> RawField<'a> {
        match field {
            FieldName::BuildingId => self.building_id,
            FieldName::Date => self.date,
            FieldName::Consumption => self.consumption,
            FieldName::Temperature => self.temperature,
            FieldName::Provider => self.provider,
        }
    }

    /// Sets one field.
    pub fn set(&mut self, field: FieldName, value: RawField<'a>) {
        match field {
            FieldName::BuildingId => self.building_id = value,
            FieldName::Date => self.date = value,
            FieldName::Consumption => self.consumption = value,
            FieldName::Temperature => self.temperature = value,
            FieldName::Provider => self.provider = value,
        }
    }
}

/// A record parsed into typed values, ready for [`assess`](crate::assess).
///
/// This is the one place raw text becomes typed data: identifiers are trimmed and checked,
/// dates are ISO 8601 calendar days, numbers are finite decimals.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRecord<'a> {
    /// The building.
    pub building_id: Field<BuildingId<'a>>,
    /// The day of the reading.
    pub date: Field<NaiveDate>,
    /// Energy consumed that day.
    pub consumption: Field<f64>,
    /// Mean ambient temperature that day, °C.
    pub temperature: Field<f64>,
    /// The provider or data source.
    pub provider: Field<ProviderName<'a>>,
    /// Whether the row was malformed.
    pub malformed: bool,
    /// The duplicate key, when building, provider (present, trimmed) and a parsable date exist.
    pub key: Option<DuplicateKey<'a>>,
    /// What makes two versions of one key the same reading (consumption and temperature).
    pub values: ValueFingerprint,
}

impl<'a> ParsedRecord<'a> {
    /// Parses every field of a raw record; never fails, since an unusable field is itself a
    /// finding ([`Field::Missing`] or [`Field::Invalid`]).
    pub fn parse(raw: &RawRecord<'a>, rules: &RuleSet) -> Self {
        let max = rules.identifiers.max_length;
        // Each field is trimmed once: the typed value, the key and the fingerprint share it.
        let [building_text, date_text, consumption_text, temperature_text, provider_text] =
            [raw.building_id, raw.date, raw.consumption, raw.temperature, raw.provider].map(RawField::trimmed);
        let building_id = Field::parse_trimmed(building_text, |t| BuildingId::parse(t, max));
        let provider = Field::parse_trimmed(provider_text, |t| ProviderName::parse(t, max));
        let date = Field::parse_trimmed(date_text, parse_iso_date);
        let consumption = Field::parse_trimmed(consumption_text, parse_decimal);
        let temperature = Field::parse_trimmed(temperature_text, parse_decimal);

        let key = match (building_text, date, provider_text) {
            (Some(Ok(building_id)), Field::Present(date), Some(Ok(provider))) => {
                Some(DuplicateKey { building_id, date, provider })
            }
            _ => None,
        };
        let values = ValueFingerprint::new((&consumption, consumption_text), (&temperature, temperature_text));
        ParsedRecord { building_id, date, consumption, temperature, provider, malformed: raw.malformed, key, values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(fields: [&'a str; 5]) -> RawRecord<'a> {
        let mut record = RawRecord::default();
        for (field, text) in FieldName::ALL.into_iter().zip(fields) {
            record.set(field, RawField::Text(text));
        }
        record
    }

    #[test]
    fn parses_typed_values() {
        let record = ParsedRecord::parse(&raw([" B1 ", "2024-02-29", "100.50", "-3", "acme"]), &RuleSet::default());
        assert_eq!(record.building_id.value().unwrap().as_str(), "B1");
        assert_eq!(record.date, Field::Present(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()));
        assert_eq!(record.consumption, Field::Present(100.5));
        assert_eq!(record.temperature, Field::Present(-3.0));
        let key = record.key.unwrap();
        assert_eq!((key.building_id, key.provider), ("B1", "acme"));
    }

    #[test]
    fn key_needs_building_provider_and_a_parsable_date() {
        let rules = RuleSet::default();
        assert!(ParsedRecord::parse(&raw(["", "2024-01-01", "1", "1", "p"]), &rules).key.is_none());
        assert!(ParsedRecord::parse(&raw(["B", "2024-13-01", "1", "1", "p"]), &rules).key.is_none());
        assert!(ParsedRecord::parse(&raw(["B", "2024-01-01", "1", "1", " "]), &rules).key.is_none());
        // An over-long id is still present: it keys duplicates although it is invalid.
        let long = "x".repeat(200);
        assert!(ParsedRecord::parse(&raw([&long, "2024-01-01", "1", "1", "p"]), &rules).key.is_some());
    }

    #[test]
    fn equal_numbers_have_equal_fingerprints() {
        let rules = RuleSet::default();
        let a = ParsedRecord::parse(&raw(["B", "2024-01-01", "100.50", "1", "p"]), &rules);
        let b = ParsedRecord::parse(&raw(["B", "2024-01-01", "1.005e2", "1.0", "p"]), &rules);
        let c = ParsedRecord::parse(&raw(["B", "2024-01-01", "100.51", "1", "p"]), &rules);
        assert_eq!(a.values, b.values);
        assert_ne!(a.values, c.values);
    }

    #[test]
    fn header_names_match_loosely() {
        assert_eq!(FieldName::from_header(" Building_ID "), Some(FieldName::BuildingId));
        assert_eq!(FieldName::from_header("CONSUMPTION"), Some(FieldName::Consumption));
        assert_eq!(FieldName::from_header("kwh"), None);
    }

    #[test]
    fn field_names_are_pinned() {
        let names = ["building_id", "date", "consumption", "temperature", "provider"];
        for (field, name) in FieldName::ALL.into_iter().zip(names) {
            assert_eq!(field.as_str(), name, "{field:?}: column names are part of every file format");
            assert_eq!(FieldName::from_header(name), Some(field));
        }
    }
}
