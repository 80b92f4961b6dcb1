//! The route handlers, one module per resource.

pub mod alerts;
pub mod batches;
pub mod buildings;
pub mod meta;
pub mod quality;
pub mod records;
pub mod seed;
