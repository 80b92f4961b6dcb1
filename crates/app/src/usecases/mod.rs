//! One module per use case.

pub mod validate;
