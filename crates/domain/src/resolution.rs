//! Conflict resolution: the versions a stored record has received and which one wins.
//!
//! Every version a key receives is kept (in the raw store); a [`ConflictPolicy`] picks the one
//! the curated record shows. An incoming version whose values equal a kept version is not
//! kept again: a re-delivery when that version came in an earlier batch (the same file sent
//! again), an exact duplicate when it came in the same batch (a row repeated in the source).

use serde::{Deserialize, Serialize};

use crate::duplicates::{DuplicateKind, ValueFingerprint};
use crate::quality::QualityStatus;

/// How a conflict between versions of one key is resolved.
///
/// Named in snake_case (`keep_latest`) in every output; every input (CLI flags, config,
/// environment, API bodies) also accepts the kebab spelling (`keep-latest`). [`ConflictPolicy::parse`]
/// is the one parser: serde's `Deserialize` goes through it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
pub enum ConflictPolicy {
    /// A VALID version wins; among several (or none) the latest arrival wins.
    #[default]
    #[strum(to_string = "prefer_valid", serialize = "prefer-valid")]
    PreferValid,
    /// The first version to arrive stays.
    #[strum(to_string = "keep_first", serialize = "keep-first")]
    KeepFirst,
    /// The latest version to arrive wins.
    #[strum(to_string = "keep_latest", serialize = "keep-latest")]
    KeepLatest,
    /// No automatic winner: the group waits for someone to decide (the record keeps showing
    /// the version it had, flagged as pending review).
    #[strum(to_string = "manual")]
    Manual,
}

/// A policy name that is none of [`ConflictPolicy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a policy: expected {expected}", expected = ConflictPolicy::EXPECTED)]
pub struct UnknownPolicy(pub String);

impl ConflictPolicy {
    /// What a policy name must be, for error messages.
    pub const EXPECTED: &str = "prefer_valid, keep_first, keep_latest or manual";

    /// Every policy.
    pub const ALL: [ConflictPolicy; 4] = [Self::PreferValid, Self::KeepFirst, Self::KeepLatest, Self::Manual];

    /// The policy's name (`prefer_valid`, ...), as every output shows it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a policy name (trimmed, case-sensitive): `keep_latest` or `keep-latest`.
    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok()
    }

    /// [`ConflictPolicy::parse`], with an error naming the value and the policies.
    pub fn try_parse(text: &str) -> Result<Self, UnknownPolicy> {
        Self::parse(text).ok_or_else(|| UnknownPolicy(text.to_owned()))
    }
}

/// Reads a policy with [`ConflictPolicy::try_parse`] (either spelling).
impl<'de> Deserialize<'de> for ConflictPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ConflictPolicy::parse(&text).ok_or_else(|| {
            serde::de::Error::invalid_value(serde::de::Unexpected::Str(&text), &ConflictPolicy::EXPECTED)
        })
    }
}

/// Where a version came from, ordered by arrival: batch number, then line in the batch.
/// Written `{"batch_id": N, "line": N}` like every batch id; `batch` is read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Arrival {
    /// The ingestion batch (increasing over time).
    #[serde(rename = "batch_id", alias = "batch")]
    pub batch: i64,
    /// The line (or element) within the batch.
    pub line: i64,
}

/// One kept version of a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Version {
    /// Its arrival.
    pub arrival: Arrival,
    /// Its quality status.
    pub status: QualityStatus,
    /// What makes it equal or not to another version.
    pub values: ValueFingerprint,
}

/// What happened to an incoming version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Admission {
    /// The first version of its key: a new record.
    New,
    /// Equal to a version kept from the same batch (a row repeated in its source): counted
    /// and linked, not kept again.
    Exact,
    /// Different from every kept version: kept as a further version.
    Conflicting,
    /// An explicit edit of the record (`PATCH`): kept as a version that wins.
    Edit,
    /// Equal to a version an earlier batch stored (the same reading delivered again: a file
    /// ingested twice, a message resent): linked, not kept again, and not a duplicate within
    /// the sources.
    Redelivered,
}

impl Admission {
    /// Every admission.
    pub const ALL: [Admission; 5] =
        [Admission::New, Admission::Exact, Admission::Conflicting, Admission::Edit, Admission::Redelivered];

    /// The name used in storage and output (`new`, `exact`, `conflicting`, `edit`,
    /// `redelivered`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses [`Admission::as_str`] (exactly).
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// What a row equal to the kept version that arrived at `kept` is, arriving at `incoming`:
    /// an exact duplicate when that version came in the same batch (a row repeated in its
    /// file), else a re-delivery. A version of another batch seen at all was stored before the
    /// row arrived, by an earlier batch in time (two ingests running side by side commit chunk
    /// by chunk, so the other may have the larger id).
    pub fn repeat_of(kept: Arrival, incoming: Arrival) -> Self {
        if kept.batch == incoming.batch { Admission::Exact } else { Admission::Redelivered }
    }

    /// Whether the row is kept as a version of its record (with its typed values), rather
    /// than linked to the version it repeats.
    pub fn keeps_version(self) -> bool {
        match self {
            Admission::New | Admission::Conflicting | Admission::Edit => true,
            Admission::Exact | Admission::Redelivered => false,
        }
    }

    /// The duplicate kind this admission means, if any (a re-delivery is none: the reading
    /// is once in its sources).
    pub fn duplicate(self) -> Option<DuplicateKind> {
        match self {
            Admission::New | Admission::Edit | Admission::Redelivered => None,
            Admission::Exact => Some(DuplicateKind::Exact),
            Admission::Conflicting => Some(DuplicateKind::Conflicting),
        }
    }
}

/// The kept versions of one key and the index of the winning one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyVersions {
    versions: Vec<Version>,
    winner: usize,
    pending: bool,
}

impl KeyVersions {
    /// Rebuilds the state of a stored key from its kept versions and current winner.
    /// Returns `None` when `versions` is empty or `winner` is not one of them.
    pub fn from_stored(versions: Vec<Version>, winner: Arrival, pending: bool) -> Option<Self> {
        let winner = versions.iter().position(|v| v.arrival == winner)?;
        Some(KeyVersions { versions, winner, pending })
    }

    /// The kept versions, in the order they were admitted.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// The version the record shows.
    pub fn winner(&self) -> Option<&Version> {
        self.versions.get(self.winner)
    }

    /// Whether the group waits for a manual decision.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Admits an incoming version under `policy` and says what it was: new, conflicting, or a
    /// repeat of a kept version ([`Admission::repeat_of`]).
    pub fn admit(&mut self, version: Version, policy: ConflictPolicy) -> Admission {
        if self.versions.is_empty() {
            self.versions.push(version);
            self.winner = 0;
            return Admission::New;
        }
        if let Some(kept) = self.versions.iter().find(|kept| kept.values == version.values) {
            return Admission::repeat_of(kept.arrival, version.arrival);
        }
        self.versions.push(version);
        self.resolve(policy);
        Admission::Conflicting
    }

    /// Picks the winner again under `policy` (e.g. after the policy changed).
    pub fn resolve(&mut self, policy: ConflictPolicy) {
        let latest = |candidates: &mut dyn Iterator<Item = (usize, &Version)>| {
            candidates.max_by_key(|(_, v)| v.arrival).map(|(i, _)| i)
        };
        let pick = match policy {
            ConflictPolicy::PreferValid => {
                latest(&mut self.versions.iter().enumerate().filter(|(_, v)| v.status == QualityStatus::Valid))
                    .or_else(|| latest(&mut self.versions.iter().enumerate()))
            }
            ConflictPolicy::KeepFirst => {
                self.versions.iter().enumerate().min_by_key(|(_, v)| v.arrival).map(|(i, _)| i)
            }
            ConflictPolicy::KeepLatest => latest(&mut self.versions.iter().enumerate()),
            ConflictPolicy::Manual => {
                self.pending = self.versions.len() > 1;
                return;
            }
        };
        self.pending = false;
        self.winner = pick.unwrap_or(self.winner);
    }

    /// Makes the version that arrived at `arrival` the winner (a manual decision). Returns
    /// false when no kept version arrived there.
    pub fn choose(&mut self, arrival: Arrival) -> bool {
        match self.versions.iter().position(|v| v.arrival == arrival) {
            Some(index) => {
                self.winner = index;
                self.pending = false;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FieldName, ParsedRecord, RawField, RawRecord, RuleSet};

    fn values(consumption: &'static str) -> ValueFingerprint {
        let mut raw = RawRecord::default();
        raw.set(FieldName::Consumption, RawField::Text(consumption));
        ParsedRecord::parse(&raw, &RuleSet::default()).values
    }

    fn version(line: i64, status: QualityStatus, consumption: &'static str) -> Version {
        Version { arrival: Arrival { batch: 1, line }, status, values: values(consumption) }
    }

    use QualityStatus::{Inconsistent, Valid};

    #[test]
    fn first_is_new_equal_is_exact_different_is_conflicting() {
        let mut key = KeyVersions::default();
        assert_eq!(key.admit(version(1, Valid, "10"), ConflictPolicy::PreferValid), Admission::New);
        assert_eq!(key.admit(version(2, Valid, "10.0"), ConflictPolicy::PreferValid), Admission::Exact);
        assert_eq!(key.admit(version(3, Valid, "11"), ConflictPolicy::PreferValid), Admission::Conflicting);
        assert_eq!(key.admit(version(4, Valid, "11"), ConflictPolicy::PreferValid), Admission::Exact);
        assert_eq!(key.versions().len(), 2);
    }

    #[test]
    fn a_repeat_of_an_earlier_batch_is_a_redelivery_of_the_same_batch_a_duplicate() {
        let at = |batch, line| Version { arrival: Arrival { batch, line }, ..version(line, Valid, "10") };
        let mut key = KeyVersions::default();
        assert_eq!(key.admit(at(1, 2), ConflictPolicy::PreferValid), Admission::New);
        assert_eq!(key.admit(at(1, 7), ConflictPolicy::PreferValid), Admission::Exact, "repeated in its file");
        assert_eq!(key.admit(at(2, 2), ConflictPolicy::PreferValid), Admission::Redelivered, "the file again");
        assert_eq!(key.admit(at(2, 7), ConflictPolicy::PreferValid), Admission::Redelivered);
        let other = Version { arrival: Arrival { batch: 2, line: 9 }, ..version(9, Valid, "11") };
        assert_eq!(key.admit(other, ConflictPolicy::PreferValid), Admission::Conflicting);
        let again = Version { arrival: Arrival { batch: 2, line: 10 }, ..version(10, Valid, "11") };
        assert_eq!(key.admit(again, ConflictPolicy::PreferValid), Admission::Exact, "repeats batch 2's version");
        assert_eq!(key.versions().len(), 2);
        assert!(!Admission::Redelivered.keeps_version() && Admission::Redelivered.duplicate().is_none());
        assert!(!Admission::Exact.keeps_version() && Admission::Conflicting.keeps_version());
    }

    #[test]
    fn prefer_valid_then_latest() {
        let mut key = KeyVersions::default();
        key.admit(version(1, Valid, "10"), ConflictPolicy::PreferValid);
        key.admit(version(2, Inconsistent, "-1"), ConflictPolicy::PreferValid);
        assert_eq!(key.winner().unwrap().arrival.line, 1, "a VALID version beats a later invalid one");
        key.admit(version(3, Valid, "12"), ConflictPolicy::PreferValid);
        assert_eq!(key.winner().unwrap().arrival.line, 3, "the latest VALID wins");

        let mut invalid_only = KeyVersions::default();
        invalid_only.admit(version(1, Inconsistent, "0"), ConflictPolicy::PreferValid);
        invalid_only.admit(version(2, Inconsistent, "-3"), ConflictPolicy::PreferValid);
        assert_eq!(invalid_only.winner().unwrap().arrival.line, 2, "no VALID version: the latest wins");
    }

    #[test]
    fn keep_first_keep_latest_and_manual() {
        let build = |policy| {
            let mut key = KeyVersions::default();
            key.admit(version(1, Inconsistent, "0"), policy);
            key.admit(version(2, Valid, "5"), policy);
            key.admit(version(3, Inconsistent, "-1"), policy);
            key
        };
        assert_eq!(build(ConflictPolicy::KeepFirst).winner().unwrap().arrival.line, 1);
        assert_eq!(build(ConflictPolicy::KeepLatest).winner().unwrap().arrival.line, 3);
        let mut manual = build(ConflictPolicy::Manual);
        assert!(manual.is_pending());
        assert_eq!(manual.winner().unwrap().arrival.line, 1, "manual keeps showing the version it had");
        assert!(manual.choose(Arrival { batch: 1, line: 2 }));
        assert!(!manual.is_pending());
        assert_eq!(manual.winner().unwrap().arrival.line, 2);
        assert!(!manual.choose(Arrival { batch: 9, line: 9 }));
    }

    #[test]
    fn re_resolving_with_another_policy() {
        let mut key = KeyVersions::default();
        key.admit(version(1, Valid, "1"), ConflictPolicy::KeepFirst);
        key.admit(version(2, Valid, "2"), ConflictPolicy::KeepFirst);
        assert_eq!(key.winner().unwrap().arrival.line, 1);
        key.resolve(ConflictPolicy::KeepLatest);
        assert_eq!(key.winner().unwrap().arrival.line, 2);
    }

    #[test]
    fn rebuilt_from_storage() {
        let versions = vec![version(1, Valid, "1"), version(2, Valid, "2")];
        let key = KeyVersions::from_stored(versions.clone(), Arrival { batch: 1, line: 2 }, false).unwrap();
        assert_eq!(key.winner().unwrap().arrival.line, 2);
        assert!(KeyVersions::from_stored(versions, Arrival { batch: 7, line: 7 }, false).is_none());
        assert!(KeyVersions::from_stored(Vec::new(), Arrival { batch: 1, line: 1 }, false).is_none());
    }

    #[test]
    fn names_are_pinned() {
        crate::names::assert_names(&[
            (ConflictPolicy::PreferValid, "prefer_valid"),
            (ConflictPolicy::KeepFirst, "keep_first"),
            (ConflictPolicy::KeepLatest, "keep_latest"),
            (ConflictPolicy::Manual, "manual"),
        ]);
        crate::names::assert_names(&[
            (Admission::New, "new"),
            (Admission::Exact, "exact"),
            (Admission::Conflicting, "conflicting"),
            (Admission::Edit, "edit"),
            (Admission::Redelivered, "redelivered"),
        ]);
        assert_eq!(ConflictPolicy::parse(" keep_first\n"), Some(ConflictPolicy::KeepFirst));
        assert_eq!(ConflictPolicy::parse("keep-latest"), Some(ConflictPolicy::KeepLatest), "kebab on input");
        assert_eq!(ConflictPolicy::parse("prefer-valid"), Some(ConflictPolicy::PreferValid));
        assert_eq!(serde_json::from_str::<ConflictPolicy>("\"keep-first\"").ok(), Some(ConflictPolicy::KeepFirst));
        assert_eq!(ConflictPolicy::KeepLatest.as_str(), "keep_latest", "snake_case on output");
        assert_eq!(
            ConflictPolicy::try_parse("newest").unwrap_err().to_string(),
            "'newest' is not a policy: expected prefer_valid, keep_first, keep_latest or manual"
        );
        assert_eq!(ConflictPolicy::parse("keep latest"), None);
        assert_eq!(ConflictPolicy::parse("Keep_First"), None, "case-sensitive");
        assert_eq!(Admission::parse(" new"), None, "read back from the store exactly");
    }

    #[test]
    fn an_arrival_is_written_with_batch_id_and_read_with_either_name() {
        let arrival = Arrival { batch: 3, line: 7 };
        assert_eq!(serde_json::to_value(arrival).unwrap(), serde_json::json!({"batch_id": 3, "line": 7}));
        for text in [r#"{"batch_id": 3, "line": 7}"#, r#"{"batch": 3, "line": 7}"#] {
            assert_eq!(serde_json::from_str::<Arrival>(text).unwrap(), arrival, "{text}");
        }
    }

    #[test]
    fn names_round_trip() {
        for policy in ConflictPolicy::ALL {
            assert_eq!(ConflictPolicy::parse(policy.as_str()), Some(policy));
        }
        for admission in Admission::ALL {
            assert_eq!(Admission::parse(admission.as_str()), Some(admission));
        }
    }
}
