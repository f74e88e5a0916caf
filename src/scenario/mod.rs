//! Scenario files: TOML → raw serde model → validated [`Plan`]. Nothing outside this module
//! sees the raw model, and nothing touches Docker until a whole plan is valid.

pub mod plan;

pub use plan::*;
