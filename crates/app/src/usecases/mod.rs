//! One module per use case.

pub mod alerts;
pub mod analyze;
pub mod duplicates;
pub mod ingest;
pub mod keys;
pub mod records;
pub mod report;
pub mod validate;
