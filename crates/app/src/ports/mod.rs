//! The ports: what use cases need from the outside, as traits and plain data.

pub mod clock;
pub mod source;
pub mod store;

pub use clock::{Clock, FixedClock, SystemClock};
pub use source::{ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError};
pub use store::{
    BatchId, IngestTx, NewBatch, NewRecord, RawLink, RawRow, RawVersion, RecordFields, RecordFilter, RecordId,
    RecordKey, RecordState, RecordStore, RecordUpdate, StoreError, StoredKey, StoredRecord, StoredVersion,
};
