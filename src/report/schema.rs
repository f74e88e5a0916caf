//! summary.json's published shape: its JSON Schema, generated from the report model's types
//! (schemars), and where a summary says it is.

use super::Summary;

/// Where summary.json says its JSON Schema is: the file this version of rollcheck ships
/// (summary.schema.json at the repository's root, generated from these types).
pub const SCHEMA_URL: &str = concat!(
    "https://raw.githubusercontent.com/rollcheck/rollcheck/v",
    env!("CARGO_PKG_VERSION"),
    "/summary.schema.json"
);

/// summary.json's JSON Schema, generated from [`Summary`]'s types: the shipped
/// summary.schema.json is this text (a test keeps them equal).
pub fn summary_schema() -> String {
    let schema = schemars::schema_for!(Summary);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
