//! The deterministic bank world: institutions, merchants and the transaction generator.

pub mod generator;
pub mod institutions;
pub mod merchants;
