//! The per-row report of `validate --report FILE`: one CSV row per input record.

use std::io::Write;

use emdp_app::ports::{SourceRow, VisitError};
use emdp_app::usecases::validate::{Classified, ValidationSink};
use emdp_domain::FieldName;

/// Writes `line,building_id,date,consumption,temperature,provider,status,duplicate,reasons`
/// rows: the five fields as read, the status, `exact`/`conflicting` or empty, and the reason
/// codes joined by `;`. A field a spreadsheet would run as a formula is written with a leading
/// `'` ([`crate::spreadsheet_safe`]).
pub struct ReportWriter<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> ReportWriter<W> {
    /// Starts a report, writing its header row.
    pub fn new(out: W) -> Result<Self, csv::Error> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record([
            "line",
            "building_id",
            "date",
            "consumption",
            "temperature",
            "provider",
            "status",
            "duplicate",
            "reasons",
        ])?;
        Ok(ReportWriter { writer })
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> Result<(), std::io::Error> {
        self.writer.flush()
    }
}

impl<W: Write> ValidationSink for ReportWriter<W> {
    fn accept(&mut self, row: &SourceRow<'_>, classified: &Classified<'_>) -> Result<(), VisitError> {
        self.writer.write_field(row.line.to_string())?;
        for field in FieldName::ALL {
            self.writer.write_field(crate::spreadsheet_safe(row.record.get(field).as_read()).as_bytes())?;
        }
        self.writer.write_field(classified.assessment.status.as_str())?;
        self.writer.write_field(classified.duplicate.map_or("", |d| d.as_str()))?;
        self.writer.write_field(classified.assessment.reasons.join(";"))?;
        self.writer.write_record(None::<&[u8]>)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emdp_app::ports::RecordSource;
    use emdp_app::usecases::validate::validate;
    use emdp_domain::RuleSet;

    /// The report of validating the CSV `input` on 2025-01-01.
    fn report_of(input: &[u8]) -> String {
        let mut source = crate::CsvSource::new(input);
        let mut out = Vec::new();
        let mut report = ReportWriter::new(&mut out).unwrap();
        let today = emdp_domain::parse_iso_date("2025-01-01").unwrap();
        validate(&mut source as &mut dyn RecordSource, &RuleSet::default(), today, &mut report).unwrap();
        report.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_row_per_record_with_status_duplicate_and_reasons() {
        let input = b"building_id,date,consumption,temperature,provider\nB1,2024-01-01,1,2,p\nB1,2024-01-01,3,99,p\n";
        assert_eq!(
            report_of(input),
            "line,building_id,date,consumption,temperature,provider,status,duplicate,reasons\n\
             2,B1,2024-01-01,1,2,p,VALID,,\n\
             3,B1,2024-01-01,3,99,p,INCONSISTENT,conflicting,temperature_out_of_range\n"
        );
    }

    #[test]
    fn formulas_are_neutralized_and_negative_numbers_kept() {
        let input =
            b"building_id,date,consumption,temperature,provider\n=HYPERLINK(\"http://x\"),2024-01-01,-5,-3,@SUM(1+1)\n";
        let written = report_of(input);
        let row = written.lines().nth(1).unwrap();
        assert!(
            row.starts_with("2,\"'=HYPERLINK(\"\"http://x\"\")\",2024-01-01,-5,-3,'@SUM(1+1),INCONSISTENT,"),
            "{row}"
        );
    }
}
