//! The application layer of emdp: one module per use case, and the ports (traits) those use
//! cases need from the outside world. Adapters implement the ports; `api` and `cli` wire them.
//!
//! Use cases are found by name under [`usecases`]: [`usecases::validate`] classifies a stream
//! of records without storing anything.

pub mod page;
pub mod ports;
pub mod usecases;
