//! One module per use case.

pub mod ingest;
pub mod validate;
