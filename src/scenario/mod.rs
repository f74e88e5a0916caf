//! Scenario files: TOML → raw serde model → validated [`Plan`]. Nothing outside this module
//! sees the raw model, and nothing touches Docker until a whole plan is valid.
//!
//! Stages: `document` (parse, `${VAR}` expansion, key paths for errors) → `raw` (serde
//! structs) → `validate` + `steps` (defaults, enums, cross checks) → `lint` (known-bad
//! settings in a valid plan).

pub mod catalogue;
pub mod compose;
pub mod containers;
mod document;
mod edge;
mod error;
mod interpolate;
mod lint;
mod load;
mod mix;
pub mod plan;
mod raw;
pub mod secrets;
mod service;
mod setup;
mod stack;
mod steps;
mod validate;

#[cfg(test)]
mod tests;

pub use containers::{Container, DockerSetup, Switch};
pub use error::ScenarioError;
pub use lint::{Lint, lint};
pub use plan::*;

use document::Document;
use error::Source;
use secrets::Secrets;
use std::path::Path;

/// Reads and validates a scenario file; `${VAR}` come from the process environment.
pub fn load(path: &Path) -> Result<Plan, ScenarioError> {
    load_shown(path).map(|(plan, _)| plan)
}

/// [`load`], plus the scenario text a report may show (see [`shown_toml`]).
pub fn load_shown(path: &Path) -> Result<(Plan, String), ScenarioError> {
    let text = read(path)?;
    let env = |name: &str| std::env::var(name).ok();
    build(&text, path, &env)
}

/// Validates scenario text. `path` names the file in errors and gives the default title and
/// the slug; `env` answers `${VAR}`.
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ScenarioError> {
    build(text, path, env).map(|(plan, _)| plan)
}

/// The scenario text for the report directory: as written (`${VAR}` stay unexpanded, so no
/// value from the environment is in it), with URL passwords as `***` and `[service]`/`update`
/// env values as `<redacted>` unless shown (see [`secrets`]).
pub fn shown_toml(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ScenarioError> {
    build(text, path, env).map(|(_, shown)| shown)
}

fn build(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Plan, String), ScenarioError> {
    let used = std::cell::RefCell::new(Vec::new());
    let recording = |name: &str| {
        let value = env(name);
        if let Some(v) = &value {
            used.borrow_mut().push((name.to_string(), v.clone()));
        }
        value
    };
    let src = Source { path, text };
    let raw: raw::Scenario = Document::parse(&src, &recording)?.deserialize(&src)?;
    let hidden = raw.hidden_env();
    let mut plan = validate::plan(raw, &src, &recording)?;
    let mut secrets = Secrets::default();
    for (name, value) in used.into_inner() {
        secrets.add(&value, &format!("${{{name}}}"));
    }
    let mut literals = Secrets::default();
    for uri in
        std::iter::once(&plan.load.target).chain(plan.steps.iter().filter_map(
            |s| match &s.action {
                Action::Http { url, .. } | Action::WaitHttp { url, .. } => Some(url),
                _ => None,
            },
        ))
    {
        secrets.add_userinfo(uri);
        literals.add_userinfo(uri);
    }
    for (_, value) in &hidden {
        secrets.add(value, secrets::REDACTED);
    }
    for step in &mut plan.steps {
        step.label = secrets.redact(&step.label);
    }
    plan.secrets = secrets;
    // The file's own text holds no expanded value; what it may hold in the clear is a literal
    // URL password or a literal env value.
    let mut spans: Vec<&(std::ops::Range<usize>, String)> = hidden
        .iter()
        .filter(|(span, _)| !text[span.clone()].contains("${"))
        .collect();
    spans.sort_by_key(|(span, _)| span.start);
    let mut shown = String::with_capacity(text.len());
    let mut pos = 0;
    for (span, _) in spans {
        shown.push_str(&text[pos..span.start]);
        shown.push_str(&format!("\"{}\"", secrets::REDACTED));
        pos = span.end;
    }
    shown.push_str(&text[pos..]);
    Ok((plan, literals.redact(&shown)))
}

/// No scenario is this long; a 10 MB file took 870 MB of memory to check.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// A scenario file's text (bounded in size), or why it cannot be read.
pub fn read(path: &Path) -> Result<String, ScenarioError> {
    let err = |message: String| ScenarioError {
        path: path.to_path_buf(),
        position: None,
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read scenario: {e}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_SCENARIO_BYTES {
        return Err(err(format!(
            "scenario is {len} bytes, more than the {MAX_SCENARIO_BYTES} a scenario may have; is this the right file?"
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_SCENARIO_BYTES + 1),
        &mut text,
    )
    .map_err(|e| err(format!("cannot read scenario: {e}")))?;
    Ok(text)
}
