//! The ports: what use cases need from the outside, as traits and plain data.

pub mod clock;
pub mod source;

pub use clock::{Clock, FixedClock, SystemClock};
pub use source::{ReadError, RecordSource, SourceError, SourceFormat, SourceRow, VisitError};
