//! Scenario files: TOML → raw serde model → validated [`Plan`]. Nothing outside this module
//! sees the raw model, and nothing touches Docker until a whole plan is valid.

pub mod plan;

pub use plan::*;

// TEMPORARY stubs until the parser lands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub String);
pub struct Lint {
    pub key: String,
    pub message: String,
}
pub fn load(_: &std::path::Path) -> Result<Plan, ScenarioError> {
    Err(ScenarioError("parser not merged".into()))
}
pub fn resolved_text(_: &std::path::Path) -> Result<String, ScenarioError> {
    Err(ScenarioError("parser not merged".into()))
}
pub fn lint(_: &Plan) -> Vec<Lint> {
    vec![]
}
