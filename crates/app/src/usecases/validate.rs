//! Use case: classify every record of a source without storing anything (`emdp validate`).
//!
//! Source → [`RowClassifier`] (parse, assess, find duplicates) → [`ValidationSink`] (e.g. a
//! per-row report) and a [`QualitySummary`]. When only the summary is wanted, [`summarize`]
//! splits the work over two threads.

use std::sync::mpsc;

use chrono::NaiveDate;
use emdp_domain::duplicates::KeyBatch;
use emdp_domain::{
    Assessment, DuplicateCounts, DuplicateIndex, DuplicateKind, ParsedRecord, QualitySummary, RawRecord, RuleSet,
    assess,
};

use crate::ports::{ReadError, RecordSource, SourceRow, VisitError};

/// Classifies records one after another, remembering keys to spot duplicates within the
/// stream. Memory grows only with the number of distinct keys.
#[derive(Debug)]
pub struct RowClassifier<'r> {
    rules: &'r RuleSet,
    today: NaiveDate,
    index: DuplicateIndex,
}

/// The outcome for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified<'a> {
    /// The typed record.
    pub record: ParsedRecord<'a>,
    /// Its status and reasons.
    pub assessment: Assessment,
    /// Whether it repeats an earlier record of the stream, and how.
    pub duplicate: Option<DuplicateKind>,
}

impl<'r> RowClassifier<'r> {
    /// A classifier applying `rules`, with `today` as the last day not in the future.
    pub fn new(rules: &'r RuleSet, today: NaiveDate) -> Self {
        RowClassifier { rules, today, index: DuplicateIndex::new() }
    }

    /// Parses, assesses and de-duplicates one record.
    pub fn classify<'a>(&mut self, raw: &RawRecord<'a>) -> Classified<'a> {
        let record = ParsedRecord::parse(raw, self.rules);
        let assessment = assess(&record, self.rules, self.today);
        let duplicate = record.key.as_ref().and_then(|key| self.index.observe(key, record.values));
        Classified { record, assessment, duplicate }
    }
}

/// Receives every classified row, e.g. to write a per-row report.
pub trait ValidationSink {
    /// Called once per row, in input order.
    fn accept(&mut self, row: &SourceRow<'_>, classified: &Classified<'_>) -> Result<(), VisitError>;
}

/// Discards rows: only the summary is wanted.
impl ValidationSink for () {
    fn accept(&mut self, _: &SourceRow<'_>, _: &Classified<'_>) -> Result<(), VisitError> {
        Ok(())
    }
}

/// Classifies every record of `source` with `rules`, passing each to `sink`, and returns the
/// counts. Streams: memory does not grow with the input except for the duplicate index.
pub fn validate(
    source: &mut dyn RecordSource,
    rules: &RuleSet,
    today: NaiveDate,
    sink: &mut dyn ValidationSink,
) -> Result<QualitySummary, ReadError> {
    let mut classifier = RowClassifier::new(rules, today);
    let mut summary = QualitySummary::default();
    source.read_all(&mut |row| {
        let classified = classifier.classify(&row.record);
        summary.record(&classified.assessment, classified.duplicate);
        sink.accept(&row, &classified)
    })?;
    Ok(summary)
}

/// Keys per batch handed to the duplicate thread of [`summarize`]: large enough that channel
/// traffic is negligible, small enough to stay in cache.
const KEY_BATCH: usize = 8 * 1024;

/// Building and provider text per batch at most (beyond one key): bounds a batch's memory
/// when identifiers are very long.
const KEY_BATCH_TEXT: usize = 1 << 20;

/// Batches queued for the duplicate thread before the reading thread waits: bounds memory.
const QUEUED_BATCHES: usize = 4;

/// Classifies every record of `source` like [`validate`] without a sink, and returns the
/// counts.
///
/// Duplicate counts do not depend on the order of the rows (per key: one first row, one
/// conflicting row per further distinct version, the rest exact), so the duplicate index
/// runs on a second thread: this thread reads, parses and assesses, and hands the keys over
/// in batches ([`KeyBatch`]). Memory stays bounded by the index and a few batches.
pub fn summarize(
    source: &mut dyn RecordSource,
    rules: &RuleSet,
    today: NaiveDate,
) -> Result<QualitySummary, ReadError> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel::<KeyBatch>(QUEUED_BATCHES);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<KeyBatch>(QUEUED_BATCHES + 2);
        let duplicates = scope.spawn(move || {
            let mut index = DuplicateIndex::new();
            let mut counts = DuplicateCounts::default();
            for mut batch in full_rx {
                index.observe_batch(&batch, |kind| match kind {
                    Some(DuplicateKind::Exact) => counts.exact += 1,
                    Some(DuplicateKind::Conflicting) => counts.conflicting += 1,
                    None => {}
                });
                batch.clear();
                // Recycled when the reader still wants batches; else dropped.
                let _ = empty_tx.try_send(batch);
            }
            counts
        });

        let mut summary = QualitySummary::default();
        let mut batch = KeyBatch::new();
        let read = source.read_all(&mut |row| {
            let record = ParsedRecord::parse(&row.record, rules);
            summary.record(&assess(&record, rules, today), None);
            if let Some(key) = &record.key {
                batch.push(key, record.values);
                if batch.len() == KEY_BATCH || batch.text_len() >= KEY_BATCH_TEXT {
                    let next = empty_rx.try_recv().unwrap_or_default();
                    // Fails only if the duplicate thread panicked, which `join` re-raises.
                    let _ = full_tx.send(std::mem::replace(&mut batch, next));
                }
            }
            Ok(())
        });
        if !batch.is_empty() {
            let _ = full_tx.send(batch);
        }
        drop(full_tx);
        let counts = duplicates.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read?;
        summary.duplicates = counts;
        Ok(summary)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SourceFormat;
    use emdp_domain::{QualityStatus, RawField};

    /// A source over fixed rows of five text fields.
    struct Rows(Vec<[&'static str; 5]>);

    impl RecordSource for Rows {
        fn format(&self) -> SourceFormat {
            SourceFormat::Csv
        }

        fn header(&self) -> Option<&str> {
            None
        }

        fn read_all(
            &mut self,
            visit: &mut dyn FnMut(SourceRow<'_>) -> Result<(), VisitError>,
        ) -> Result<(), ReadError> {
            for (i, [b, d, c, t, p]) in self.0.iter().enumerate() {
                let record = RawRecord {
                    building_id: RawField::Text(b),
                    date: RawField::Text(d),
                    consumption: RawField::Text(c),
                    temperature: RawField::Text(t),
                    provider: RawField::Text(p),
                    malformed: false,
                };
                visit(SourceRow {
                    line: i as u64 + 2,
                    raw: "",
                    record,
                    parse_error: None,
                    origin: None,
                    oversize: None,
                })
                .map_err(ReadError::Visit)?;
            }
            Ok(())
        }
    }

    struct Collect(Vec<(u64, QualityStatus, Option<DuplicateKind>)>);

    impl ValidationSink for Collect {
        fn accept(&mut self, row: &SourceRow<'_>, classified: &Classified<'_>) -> Result<(), VisitError> {
            self.0.push((row.line, classified.assessment.status, classified.duplicate));
            Ok(())
        }
    }

    #[test]
    fn counts_statuses_and_duplicates_in_order() {
        let mut source = Rows(vec![
            ["B1", "2025-01-01", "10", "5", "p"],
            ["B1", "2025-01-01", "10.0", "5", "p"],
            ["B1", "2025-01-01", "11", "5", "p"],
            ["B2", "", "10", "5", "p"],
            ["B3", "2025-01-02", "-1", "5", "p"],
        ]);
        let mut sink = Collect(Vec::new());
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let summary = validate(&mut source, &RuleSet::default(), today, &mut sink).unwrap();
        assert_eq!((summary.total, summary.valid, summary.incomplete, summary.inconsistent), (5, 3, 1, 1));
        assert_eq!((summary.duplicates.exact, summary.duplicates.conflicting), (1, 1));
        assert_eq!(sink.0[1], (3, QualityStatus::Valid, Some(DuplicateKind::Exact)));
        assert_eq!(sink.0[2].2, Some(DuplicateKind::Conflicting));
    }

    #[test]
    fn summarize_counts_like_validate() {
        let mut rows = Vec::new();
        for day in ["2025-01-01", "2025-01-02", "2025-01-03", "2099-01-01", "bad"] {
            for building in ["B1", "B2", " B1 ", ""] {
                for value in ["10", "10.0", "11", "-1", ""] {
                    rows.push([building, day, value, "5", "p"]);
                }
            }
        }
        // More rows than one batch, so batches are handed over and recycled.
        let rows: Vec<_> = rows.iter().cycle().take(3 * KEY_BATCH + 7).copied().collect();
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let rules = RuleSet::default();
        let expected = validate(&mut Rows(rows.clone()), &rules, today, &mut ()).unwrap();
        let summary = summarize(&mut Rows(rows), &rules, today).unwrap();
        assert_eq!(summary, expected);
        assert!(summary.duplicates.exact > 0 && summary.duplicates.conflicting > 0);
    }

    #[test]
    fn a_sink_error_stops_the_run() {
        struct Fail;
        impl ValidationSink for Fail {
            fn accept(&mut self, _: &SourceRow<'_>, _: &Classified<'_>) -> Result<(), VisitError> {
                Err("disk full".into())
            }
        }
        let mut source = Rows(vec![["B1", "2025-01-01", "10", "5", "p"]]);
        let err = validate(&mut source, &RuleSet::default(), NaiveDate::MIN, &mut Fail).unwrap_err();
        assert!(matches!(err, ReadError::Visit(e) if e.to_string() == "disk full"));
    }
}
