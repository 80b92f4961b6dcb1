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
#[derive(strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum DuplicateKind {
    /// Same key and the same consumption and temperature as an earlier row.
    Exact,
    /// Same key, different values from every earlier row.
    Conflicting,
}

impl DuplicateKind {
    /// `exact` or `conflicting`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The values that make two rows with one key "the same reading": consumption and
/// temperature after parsing (so `100.50` equals `100.5`, and `-0` equals `0`).
///
/// A parsed number is kept exactly. A missing value and an unparsable one (by a 51-bit hash
/// of its trimmed text) are encoded as NaN payloads, which no parsed (finite) number can be.
///
/// Serialized as its two codes (for the ingest's temporary sort files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
    /// The fingerprint as two integers, for storage.
    pub fn to_parts(self) -> [i64; 2] {
        [self.consumption as i64, self.temperature as i64]
    }

    /// The parsed consumption and temperature the fingerprint holds exactly (`None` where the
    /// value was missing or unparsable). Lets stores keep typed values as integers.
    pub fn numbers(self) -> (Option<f64>, Option<f64>) {
        let number = |bits: u64| Some(f64::from_bits(bits)).filter(|value| !value.is_nan());
        (number(self.consumption), number(self.temperature))
    }

    /// Rebuilds a fingerprint from [`ValueFingerprint::to_parts`].
    pub fn from_parts([consumption, temperature]: [i64; 2]) -> Self {
        ValueFingerprint { consumption: consumption as u64, temperature: temperature as u64 }
    }

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
/// Memory is one 24-byte entry per key: each (building, provider) pair is interned once, so a
/// key is one integer (pair and day) and its entry holds the first version's fingerprint.
/// Further versions (rare: only keys with conflicting duplicates have any) live in a side
/// table that is consulted only when a row differs from its key's first version.
#[derive(Debug, Default)]
pub struct DuplicateIndex {
    /// Interned pairs, keyed by their [`encode_pair`] bytes.
    pairs: FxHashMap<Box<[u8]>, u32>,
    /// The first version of each key, by [`slot`].
    keys: FxHashMap<u64, ValueFingerprint>,
    /// Versions after the first, for keys that have them.
    more: FxHashMap<u64, Vec<ValueFingerprint>>,
    /// Reused buffer for encoding a pair.
    scratch: Vec<u8>,
}

/// Separates building and provider in an encoded pair: 0xFF never occurs in UTF-8, so the
/// encoding is unambiguous.
const PAIR_SEPARATOR: u8 = 0xFF;

/// Appends the bytes that identify a (building, provider) pair to `out`.
fn encode_pair(out: &mut Vec<u8>, building_id: &str, provider: &str) {
    out.extend_from_slice(building_id.as_bytes());
    out.push(PAIR_SEPARATOR);
    out.extend_from_slice(provider.as_bytes());
}

/// One integer for an interned pair and a day.
fn slot(pair: u32, date: NaiveDate) -> u64 {
    (u64::from(pair) << 32) | u64::from(date.num_days_from_ce() as u32)
}

impl DuplicateIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty index with room for `keys` distinct keys before it grows.
    pub fn with_capacity(keys: usize) -> Self {
        DuplicateIndex { keys: FxHashMap::with_capacity_and_hasher(keys, Default::default()), ..Self::default() }
    }

    fn intern(&mut self, pair: &[u8]) -> u32 {
        if let Some(&id) = self.pairs.get(pair) {
            return id;
        }
        let id = u32::try_from(self.pairs.len()).expect("fewer than 2^32 distinct pairs");
        self.pairs.insert(pair.into(), id);
        id
    }

    /// Records a row and says whether it duplicates an earlier one: `None` for the first row
    /// of its key, `Exact` when its values equal any earlier version, else `Conflicting`
    /// (and its values become a further version of the key).
    pub fn observe(&mut self, key: &DuplicateKey<'_>, values: ValueFingerprint) -> Option<DuplicateKind> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        encode_pair(&mut scratch, key.building_id, key.provider);
        let pair = self.intern(&scratch);
        self.scratch = scratch;
        self.observe_slot(slot(pair, key.date), values)
    }

    fn observe_slot(&mut self, slot: u64, values: ValueFingerprint) -> Option<DuplicateKind> {
        let first = match self.keys.entry(slot) {
            Entry::Vacant(entry) => {
                entry.insert(values);
                return None;
            }
            Entry::Occupied(entry) => *entry.get(),
        };
        if first == values {
            return Some(DuplicateKind::Exact);
        }
        let versions = self.more.entry(slot).or_default();
        if versions.contains(&values) {
            return Some(DuplicateKind::Exact);
        }
        versions.push(values);
        Some(DuplicateKind::Conflicting)
    }

    /// Observes every key of `batch` in order, as [`observe`](Self::observe) would, passing
    /// each outcome to `outcome`.
    pub fn observe_batch(&mut self, batch: &KeyBatch, mut outcome: impl FnMut(Option<DuplicateKind>)) {
        let mut start = 0;
        for &(end, date, values) in &batch.keys {
            let pair = self.intern(&batch.pairs[start..end]);
            start = end;
            outcome(self.observe_slot(slot(pair, date), values));
        }
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

/// Duplicate keys and fingerprints copied out of borrowed records, so that another thread
/// can feed them to a [`DuplicateIndex`] ([`DuplicateIndex::observe_batch`]) while the
/// records' buffer is reused. Clearing keeps the allocations for the next batch.
#[derive(Debug, Default)]
pub struct KeyBatch {
    /// The encoded pairs of all keys, back to back.
    pairs: Vec<u8>,
    /// Per key: where its pair ends in `pairs`, its day and its values.
    keys: Vec<(usize, NaiveDate, ValueFingerprint)>,
}

impl KeyBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a key and its values.
    pub fn push(&mut self, key: &DuplicateKey<'_>, values: ValueFingerprint) {
        encode_pair(&mut self.pairs, key.building_id, key.provider);
        self.keys.push((self.pairs.len(), key.date, values));
    }

    /// How many keys the batch holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// How many bytes of building and provider text the batch holds.
    pub fn text_len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the batch holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Removes every key, keeping the allocations.
    pub fn clear(&mut self) {
        self.pairs.clear();
        self.keys.clear();
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
    fn kind_names_are_pinned() {
        crate::names::assert_names(&[(DuplicateKind::Exact, "exact"), (DuplicateKind::Conflicting, "conflicting")]);
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
    fn batches_classify_like_single_rows() {
        let rows = [
            ["B1", "2024-01-01", "1", "3", "p"],
            ["B1", "2024-01-01", "1.0", "3", "p"],
            ["B1", "2024-01-01", "2", "3", "p"],
            ["B1", "2024-01-01", "2", "3", "p"],
            ["B", "2024-01-01", "1", "3", "1p"],
            ["B1", "2024-01-01", "1", "3", "p"],
            ["B1", "2024-01-02", "1", "3", "p"],
        ];
        let mut single = DuplicateIndex::new();
        let expected: Vec<_> = rows.iter().map(|row| observe(&mut single, *row)).collect();
        let mut batch = KeyBatch::new();
        let records: Vec<_> = rows.iter().map(|row| parsed(*row)).collect();
        for record in &records {
            batch.push(&record.key.unwrap(), record.values);
        }
        assert_eq!(batch.len(), rows.len());
        // "B1" + separator + "p" per key, but "B" + separator + "1p" for the fifth.
        assert_eq!(batch.text_len(), 4 * rows.len());
        let mut batched = DuplicateIndex::with_capacity(4);
        let mut got = Vec::new();
        batched.observe_batch(&batch, |kind| got.push(kind));
        assert_eq!(got, expected);
        assert_eq!(batched.len(), single.len());
        batch.clear();
        assert!(batch.is_empty() && batch.text_len() == 0);
    }

    #[test]
    fn numbers_come_back_exactly() {
        let record = parsed(["B1", "2024-01-01", "0.1", "", "p"]);
        assert_eq!(record.values.numbers(), (Some(0.1), None));
        let invalid = parsed(["B1", "2024-01-01", "abc", "-3.25", "p"]);
        assert_eq!(ValueFingerprint::from_parts(invalid.values.to_parts()).numbers(), (None, Some(-3.25)));
    }

    #[test]
    fn zero_and_negative_zero_are_equal() {
        let mut index = DuplicateIndex::new();
        observe(&mut index, ["B1", "2024-01-01", "0", "1", "p"]);
        assert_eq!(observe(&mut index, ["B1", "2024-01-01", "-0.0", "1", "p"]), Some(DuplicateKind::Exact));
    }
}
