//! Counting what a batch of records looked like.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::duplicates::DuplicateKind;
use crate::quality::{Assessment, QualityStatus, Reason};

/// Exact and conflicting duplicate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DuplicateCounts {
    /// Rows repeating an earlier row's key and values.
    pub exact: u64,
    /// Rows repeating an earlier row's key with other values.
    pub conflicting: u64,
}

/// Counts per status, per duplicate kind and per reason code over a set of records.
///
/// Serializes as
/// `{"total":N,"valid":N,"incomplete":N,"inconsistent":N,"duplicates":{"exact":N,"conflicting":N},"reasons":{"<code>":N,...}}`
/// with every reason code present (zero when no row violated it), in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QualitySummary {
    /// Rows seen.
    pub total: u64,
    /// VALID rows.
    pub valid: u64,
    /// INCOMPLETE rows.
    pub incomplete: u64,
    /// INCONSISTENT rows.
    pub inconsistent: u64,
    /// Duplicate rows by kind.
    pub duplicates: DuplicateCounts,
    /// Rows per reason, indexed by `Reason as usize`.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, u64>))]
    pub reasons: [u64; Reason::COUNT],
}

impl QualitySummary {
    /// Counts one record.
    pub fn record(&mut self, assessment: &Assessment, duplicate: Option<DuplicateKind>) {
        self.total += 1;
        match assessment.status {
            QualityStatus::Valid => self.valid += 1,
            QualityStatus::Incomplete => self.incomplete += 1,
            QualityStatus::Inconsistent => self.inconsistent += 1,
        }
        match duplicate {
            Some(DuplicateKind::Exact) => self.duplicates.exact += 1,
            Some(DuplicateKind::Conflicting) => self.duplicates.conflicting += 1,
            None => {}
        }
        for reason in assessment.reasons.iter() {
            self.reasons[reason as usize] += 1;
        }
    }

    /// Adds another summary's counts to this one.
    pub fn merge(&mut self, other: &QualitySummary) {
        self.total += other.total;
        self.valid += other.valid;
        self.incomplete += other.incomplete;
        self.inconsistent += other.inconsistent;
        self.duplicates.exact += other.duplicates.exact;
        self.duplicates.conflicting += other.duplicates.conflicting;
        for (mine, theirs) in self.reasons.iter_mut().zip(other.reasons) {
            *mine += theirs;
        }
    }

    /// Rows with a given status.
    pub fn count(&self, status: QualityStatus) -> u64 {
        match status {
            QualityStatus::Valid => self.valid,
            QualityStatus::Incomplete => self.incomplete,
            QualityStatus::Inconsistent => self.inconsistent,
        }
    }

    /// Rows violating a given rule.
    pub fn reason(&self, reason: Reason) -> u64 {
        self.reasons[reason as usize]
    }

    /// Whether every row was VALID.
    pub fn all_valid(&self) -> bool {
        self.valid == self.total
    }
}

struct ReasonCounts<'a>(&'a [u64; Reason::COUNT]);

impl Serialize for ReasonCounts<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Reason::COUNT))?;
        for reason in Reason::ALL {
            map.serialize_entry(reason.code(), &self.0[*reason as usize])?;
        }
        map.end()
    }
}

impl Serialize for QualitySummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("QualitySummary", 6)?;
        s.serialize_field("total", &self.total)?;
        s.serialize_field("valid", &self.valid)?;
        s.serialize_field("incomplete", &self.incomplete)?;
        s.serialize_field("inconsistent", &self.inconsistent)?;
        s.serialize_field("duplicates", &self.duplicates)?;
        s.serialize_field("reasons", &ReasonCounts(&self.reasons))?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::ReasonSet;

    #[test]
    fn counts_and_serializes_in_the_documented_shape() {
        let mut summary = QualitySummary::default();
        let invalid = Assessment::from_reasons([Reason::MissingDate, Reason::DateInFuture].into_iter().collect());
        summary.record(&Assessment::from_reasons(ReasonSet::EMPTY), None);
        summary.record(&invalid, Some(DuplicateKind::Conflicting));
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["total"], 2);
        assert_eq!(json["valid"], 1);
        assert_eq!(json["incomplete"], 1);
        assert_eq!(json["inconsistent"], 0);
        assert_eq!(json["duplicates"], serde_json::json!({"exact": 0, "conflicting": 1}));
        assert_eq!(json["reasons"]["missing_date"], 1);
        assert_eq!(json["reasons"]["date_in_future"], 1);
        assert_eq!(json["reasons"].as_object().unwrap().len(), Reason::COUNT);
        let mut twice = summary.clone();
        twice.merge(&summary);
        assert_eq!(twice.total, 4);
        assert_eq!(twice.reason(Reason::MissingDate), 2);
        assert!(!twice.all_valid());
    }
}
