//! Duplicate detection: the key that identifies a reading, and an index that tells whether a
//! row repeats an earlier one exactly or conflicts with it.

use std::hash::{Hash, Hasher};

use chrono::{Datelike, NaiveDate};
use std::collections::hash_map::Entry;

use rustc_hash::{FxHashMap, FxHasher};

use crate::Field;

/// What identifies one reading: a building, a day and a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DuplicateKey<'a> {
    /// The building, trimmed.
    pub building_id: &'a str,
    /// The day.
    pub date: NaiveDate,
    /// The provider, trimmed.
    pub provider: &'a str,
}

/// How a row relates to earlier rows with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKind {
    /// Same key and the same consumption and temperature as an earlier row.
    Exact,
    /// Same key, different values from every earlier row.
    Conflicting,
}

impl DuplicateKind {
    /// `exact` or `conflicting`.
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateKind::Exact => "exact",
            DuplicateKind::Conflicting => "conflicting",
        }
    }
}

/// The values that make two rows with one key "the same reading": consumption and
/// temperature after parsing (so `100.50` equals `100.5`, and `-0` equals `0`).
///
/// A parsed number is kept exactly. A missing value and an unparsable one (by a 51-bit hash
/// of its trimmed text) are encoded as NaN payloads, which no parsed (finite) number can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueFingerprint {
    consumption: u64,
    temperature: u64,
}

const MISSING: u64 = 0x7ff8_0000_0000_0001;
const INVALID_TAG: u64 = 0x7ff4_0000_0000_0000;

fn encode(field: &Field<f64>, trimmed: Option<Result<&str, &str>>) -> u64 {
    match field {
        Field::Present(value) => (value + 0.0).to_bits(), // -0.0 + 0.0 == +0.0
        Field::Missing => MISSING,
        Field::Invalid => {
            let text = match trimmed {
                Some(Ok(text) | Err(text)) => text,
                None => "",
            };
            let mut hasher = FxHasher::default();
            text.hash(&mut hasher);
            // Keep the exponent all ones and the mantissa non-zero: a NaN, never a number.
            INVALID_TAG | (hasher.finish() & 0x0003_ffff_ffff_ffff) | 1
        }
    }
}

impl ValueFingerprint {
    /// Builds the fingerprint of a record's consumption and temperature, each given as the
    /// parsed field and its trimmed raw text.
    pub fn new(
        consumption: (&Field<f64>, Option<Result<&str, &str>>),
        temperature: (&Field<f64>, Option<Result<&str, &str>>),
    ) -> Self {
        ValueFingerprint {
            consumption: encode(consumption.0, consumption.1),
            temperature: encode(temperature.0, temperature.1),
        }
    }
}

/// Remembers every key seen and the distinct versions of its values, to classify each new
/// row as first, exact duplicate or conflicting duplicate.
///
/// Memory is one 32-byte entry per key: building and provider names are interned, so the
/// index holds two integers, a day number, the first version's fingerprint and a link to
/// further versions (rare: only keys with conflicting duplicates have any).
#[derive(Debug, Default)]
pub struct DuplicateIndex {
    names: FxHashMap<Box<str>, u32>,
    keys: FxHashMap<(u32, i32, u32), (ValueFingerprint, u32)>,
    /// Versions after the first, for keys that have them; linked by index from `keys`.
    more: Vec<Vec<ValueFingerprint>>,
}

/// Marks a key with a single version.
const NO_MORE: u32 = u32::MAX;

impl DuplicateIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        self.names.insert(name.into(), id);
        id
    }

    /// Records a row and says whether it duplicates an earlier one: `None` for the first row
    /// of its key, `Exact` when its values equal any earlier version, else `Conflicting`
    /// (and its values become a further version of the key).
    pub fn observe(&mut self, key: &DuplicateKey<'_>, values: ValueFingerprint) -> Option<DuplicateKind> {
        let building = self.intern(key.building_id);
        let provider = self.intern(key.provider);
        let slot = (building, key.date.num_days_from_ce(), provider);
        let (first, more) = match self.keys.entry(slot) {
            Entry::Vacant(entry) => {
                entry.insert((values, NO_MORE));
                return None;
            }
            Entry::Occupied(entry) => entry.into_mut(),
        };
        if *first == values {
            return Some(DuplicateKind::Exact);
        }
        if *more == NO_MORE {
            *more = u32::try_from(self.more.len()).expect("fewer than 2^32 conflicting keys");
            self.more.push(Vec::new());
        }
        let versions = &mut self.more[*more as usize];
        if versions.contains(&values) {
            return Some(DuplicateKind::Exact);
        }
        versions.push(values);
        Some(DuplicateKind::Conflicting)
    }

    /// How many distinct keys have been seen.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key has been seen.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FieldName, ParsedRecord, RawField, RawRecord, RuleSet};

    fn parsed(fields: [&'static str; 5]) -> ParsedRecord<'static> {
        let mut raw = RawRecord::default();
        for (field, text) in FieldName::ALL.into_iter().zip(fields) {
            raw.set(field, RawField::Text(text));
        }
        ParsedRecord::parse(&raw, &RuleSet::default())
    }

    fn observe(index: &mut DuplicateIndex, fields: [&'static str; 5]) -> Option<DuplicateKind> {
        let record = parsed(fields);
        index.observe(&record.key.unwrap(), record.values)
    }

    #[test]
    fn first_exact_and_conflicting() {
        let mut index = DuplicateIndex::new();
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "100.5", "3", "p"]), None);
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "100.50", "3.0", "p"]), Some(DuplicateKind::Exact));
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "101", "3", "p"]), Some(DuplicateKind::Conflicting));
        // Equal to the second version: exact again.
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "101", "3", "p"]), Some(DuplicateKind::Exact));
        // Another provider or day is another key.
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "100.5", "3", "q"]), None);
        assert_eq!(observe(&mut index, ["B1", "2024-01-02", "100.5", "3", "p"]), None);
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn temperature_counts_for_exactness() {
        let mut index = DuplicateIndex::new();
        observe(&mut index, ["B1", "2024-01-01", "1", "3", "p"]);
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "1", "4", "p"]), Some(DuplicateKind::Conflicting));
    }

    #[test]
    fn missing_and_unparsable_values_compare_by_text() {
        let mut index = DuplicateIndex::new();
        observe(&mut index, ["B1", "2024-01-01", "", "abc", "p"]);
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", " ", " abc ", "p"]), Some(DuplicateKind::Exact));
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "", "abd", "p"]), Some(DuplicateKind::Conflicting));
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "0", "abc", "p"]), Some(DuplicateKind::Conflicting));
    }

    #[test]
    fn zero_and_negative_zero_are_equal() {
        let mut index = DuplicateIndex::new();
        observe(&mut index, ["B1", "2024-01-01", "0", "1", "p"]);
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "-0.0", "1", "p"]), Some(DuplicateKind::Exact));
    }
}
