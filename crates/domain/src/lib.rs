//! The domain of emdp: what an energy record is, how raw input becomes typed values, which
//! rules decide its quality, and what makes two records duplicates.
//!
//! Everything here is pure: no I/O, no async, no web or database types. Input arrives as
//! [`RawRecord`] (borrowed text exactly as a reader found it), is parsed once by
//! [`ParsedRecord::parse`], and is classified by [`assess`] against a [`RuleSet`].

pub mod alerts;
pub mod analysis;
pub mod columns;
pub mod date;
pub mod duplicates;
pub mod energy;
pub mod field;
pub mod identifier;
#[cfg(test)]
mod names;
pub mod number;
pub mod quality;
pub mod record;
pub mod resolution;
pub mod rules;
pub mod summary;

pub use columns::{ColumnNames, ColumnNamesError};
pub use date::parse_iso_date;
pub use duplicates::{DuplicateIndex, DuplicateKey, DuplicateKind, ValueFingerprint};
pub use field::{Field, RawField};
pub use identifier::{BuildingId, IdentifierError, ProviderName};
pub use number::{NumberError, parse_decimal};
pub use quality::{Assessment, QualityStatus, Reason, ReasonSet, assess};
pub use record::{FieldName, ParsedRecord, RawRecord};
pub use resolution::{Admission, Arrival, ConflictPolicy, KeyVersions, UnknownPolicy, Version};
pub use rules::{RuleSet, RuleSetError};
pub use summary::{DuplicateCounts, QualitySummary};
