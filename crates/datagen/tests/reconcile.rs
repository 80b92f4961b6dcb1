//! The manifest of a generated file must be exactly what emdp's rules find in it.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::collections::HashSet;

use chrono::{Days, NaiveDate};
use emdp_datagen::{GeneratorConfig, HEADER, Manifest, generate};
use emdp_domain::{DuplicateIndex, ParsedRecord, QualityStatus, QualitySummary, RawField, RawRecord, RuleSet, assess};

fn generated(config: &GeneratorConfig) -> (Vec<u8>, Manifest) {
    let mut bytes = Vec::new();
    let manifest = generate(config, &mut bytes).unwrap();
    (bytes, manifest)
}

/// Classifies every row as `emdp validate` does, returning the summary and the number of
/// building-days of the clean range without a VALID row.
fn classify(bytes: &[u8], manifest: &Manifest, today: NaiveDate) -> (QualitySummary, u64) {
    let rules = RuleSet::default();
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>().join(","), HEADER);
    let mut summary = QualitySummary::default();
    let mut index = DuplicateIndex::new();
    let mut covered = HashSet::new();
    for row in reader.records() {
        let row = row.unwrap();
        assert_eq!(row.len(), 5);
        let raw = RawRecord {
            building_id: RawField::Text(&row[0]),
            date: RawField::Text(&row[1]),
            consumption: RawField::Text(&row[2]),
            temperature: RawField::Text(&row[3]),
            provider: RawField::Text(&row[4]),
            malformed: false,
        };
        let record = ParsedRecord::parse(&raw, &rules);
        let assessment = assess(&record, &rules, today);
        let duplicate = record.key.and_then(|key| index.observe(&key, record.values));
        summary.record(&assessment, duplicate);
        if assessment.status == QualityStatus::Valid {
            let date = record.date.value().copied().unwrap();
            if manifest.clean_dates.first <= date && date <= manifest.clean_dates.last {
                covered.insert((row[0].to_owned(), date));
            }
        }
    }
    let slots = u64::from(manifest.buildings) * u64::from(manifest.days);
    (summary, slots - covered.len() as u64)
}

fn assert_reconciles(config: &GeneratorConfig) {
    let (bytes, manifest) = generated(config);
    let expected = &manifest.expected;
    for today in [manifest.today.first, manifest.clean_dates.last + Days::new(1), manifest.today.last] {
        let (summary, gaps) = classify(&bytes, &manifest, today);
        assert_eq!(summary.total, expected.total);
        assert_eq!(summary.valid, expected.valid);
        assert_eq!(summary.incomplete, expected.incomplete);
        assert_eq!(summary.inconsistent, expected.inconsistent);
        assert_eq!(summary.duplicates, expected.duplicates);
        for (code, count) in &expected.reasons {
            let reason = emdp_domain::Reason::from_code(code).unwrap();
            assert_eq!(summary.reason(reason), *count, "{code}");
        }
        assert_eq!(serde_json::to_value(&summary).unwrap(), serde_json::to_value(expected).unwrap());
        assert_eq!(gaps, manifest.gaps);
    }
    // Past the window the future-date faults are no longer in the future.
    if manifest.injected["future_date"] > 0 {
        let far = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        let (summary, _) = classify(&bytes, &manifest, far);
        assert_ne!(summary.valid, expected.valid);
    }
}

#[test]
fn validation_reports_exactly_the_manifest() {
    let config = GeneratorConfig { buildings: 50, days: 200, seed: 7, ..GeneratorConfig::default() };
    let (_, manifest) = generated(&config);
    assert_eq!(manifest.rows, 10_000);
    assert!(manifest.expected.incomplete > 0 && manifest.expected.inconsistent > 0);
    assert!(manifest.expected.duplicates.exact > 0 && manifest.expected.duplicates.conflicting > 0);
    assert_reconciles(&config);
}

#[test]
fn validation_reports_exactly_the_manifest_for_other_shapes() {
    for (buildings, days, seed, fault_rate) in [(7, 300, 1, 4.0), (120, 30, 99, 0.5), (1, 1, 3, 1.0), (3, 8000, 5, 2.0)]
    {
        let end_date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_reconciles(&GeneratorConfig { buildings, days, seed, fault_rate, end_date });
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let config = GeneratorConfig { buildings: 20, days: 50, seed: 11, ..GeneratorConfig::default() };
    let (first, manifest) = generated(&config);
    let (again, manifest_again) = generated(&config);
    assert_eq!(first, again);
    assert_eq!(manifest, manifest_again);
    let (other, _) = generated(&GeneratorConfig { seed: 12, ..config });
    assert_ne!(first, other);
}

#[test]
fn zero_fault_rate_gives_an_all_valid_file_without_duplicates() {
    let config = GeneratorConfig { buildings: 30, days: 60, fault_rate: 0.0, ..GeneratorConfig::default() };
    let (bytes, manifest) = generated(&config);
    let (summary, gaps) = classify(&bytes, &manifest, config.end_date);
    assert!(summary.all_valid());
    assert_eq!(summary.total, 1800);
    assert_eq!(summary.duplicates.exact + summary.duplicates.conflicting, 0);
    assert_eq!(gaps, 0);
    assert_eq!(manifest.expected.valid, 1800);
    assert_reconciles(&config);
}
