//! The ports: what use cases need from the outside, as traits and plain data.

pub mod alerts;
pub mod analytics;
pub mod clock;
pub mod dead_letters;
pub mod duplicates;
pub mod keys;
pub mod quality;
pub mod source;
pub mod store;

pub use alerts::{
    Alert, AlertEvent, AlertFilter, AlertRule, AlertState, AlertStore, DeliveryAttempt, EventKind, NewAlert, RuleKind,
    RuleSpec, Severity, ShareScope,
};
pub use analytics::{AnalyticsStore, BuildingObservations, BuildingSummary, Granularity, SeriesPoint, SeriesQuery};
pub use clock::{Clock, FixedClock, SystemClock};
pub use dead_letters::{DeadLetter, DeadLetterPayload, DeadLetterStore, NewDeadLetter};
pub use duplicates::{
    ConflictGroup, Decision, DecisionMethod, DuplicateFilter, DuplicateStore, GroupVersion, Resolution,
};
pub use keys::{ApiKey, KeyStore, NewApiKey, Role};
pub use quality::{
    BatchCounts, BuildingQuality, Completeness, CompletenessTotals, DuplicateTotals, Flatline, Freshness, Gap,
    GroupCounts, QualityFilter, QualityStore, ReasonCounts, RecordBreakdown, RecordCounts, RowBreakdown, RowCounts,
    StatusCounts,
};
pub use source::{Oversize, RECORD_LIMIT, ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError};
pub use store::{
    BatchFilter, BatchId, BatchInfo, IngestTx, KeyProbe, NewBatch, NewRecord, PoolUsage, Probed, RawLink, RawRow,
    RawVersion, RecordFields, RecordFilter, RecordId, RecordKey, RecordState, RecordStore, RecordUpdate, StoreError,
    StoredKey, StoredRecord, StoredVersion,
};
