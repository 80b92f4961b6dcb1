//! Use case: classify every record of a source without storing anything (`emdp validate`).
//!
//! Source → [`RowClassifier`] (parse, assess, find duplicates) → [`ValidationSink`] (e.g. a
//! per-row report) and a [`QualitySummary`].

use chrono::NaiveDate;
use emdp_domain::{
    Assessment, DuplicateIndex, DuplicateKind, ParsedRecord, QualitySummary, RawRecord, RuleSet, assess,
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
                visit(SourceRow { line: i as u64 + 2, raw: "", record, parse_error: None })
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
