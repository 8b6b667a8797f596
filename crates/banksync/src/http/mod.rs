//! The HTTP API: routes, extractors and the error format.

pub mod error;
