//! Scenario files: TOML → raw serde model → validated [`Plan`]. Nothing outside this module
//! sees the raw model, and nothing touches Docker until a whole plan is valid.
//!
//! Stages: `document` (parse, `${VAR}` expansion, key paths for errors) → `raw` (serde
//! structs) → `validate` + `steps` (defaults, enums, cross checks) → `lint` (known-bad
//! settings in a valid plan).

mod document;
mod error;
mod interpolate;
mod lint;
mod load;
pub mod plan;
mod raw;
mod service;
mod steps;
mod validate;

#[cfg(test)]
mod tests;

pub use error::ScenarioError;
pub use lint::{Lint, lint};
pub use plan::*;

use document::Document;
use error::Source;
use std::path::Path;

/// Reads and validates a scenario file; `${VAR}` come from the process environment.
pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
    load_resolved(path).map(|(plan, _)| plan)
}

/// [`load`], plus the resolved scenario text (see [`resolved_toml`]) for the report directory.
pub fn load_resolved(path: &Path) -> Result<(Plan, String), ScenarioError> {
    let text = read(path)?;
    let env = |name: &str| std::env::var(name).ok();
    let src = Source { path, text: &text };
    let doc = Document::parse(&src, &env)?;
    let resolved = doc.resolved_text(&text);
    let plan = validate::plan(doc.deserialize(&src)?, &src)?;
    Ok((plan, resolved))
}

/// Validates scenario text. `path` names the file in errors and gives the default title and
/// the slug; `env` answers `${VAR}`.
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ScenarioError> {
    let src = Source { path, text };
    let raw = Document::parse(&src, env)?.deserialize(&src)?;
    validate::plan(raw, &src)
}

/// The scenario text after `${VAR}` substitution: each string that held a variable is
/// replaced by its value as a TOML string; comments and layout are kept. Does not validate
/// beyond TOML syntax and the variables themselves.
pub fn resolved_toml(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ScenarioError> {
    let src = Source { path, text };
    Ok(Document::parse(&src, env)?.resolved_text(text))
}

fn read(path: &Path) -> Result<String, ScenarioError> {
    std::fs::read_to_string(path).map_err(|e| ScenarioError {
        path: path.to_path_buf(),
        position: None,
        message: format!("cannot read scenario: {e}"),
    })
}
