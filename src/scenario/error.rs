//! Scenario errors a user can act on: every one names the file and, when the text is known,
//! the line and column, plus the key path. Also the "did you mean" helper and the rewording
//! of serde's messages (backticks, Rust type names) into the scenario's own vocabulary.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario file that cannot become a [`Plan`](super::Plan).
///
/// Displays as `scenarios/x.toml:14:9: step 2: unknown action "update-image" (did you mean
/// "update_image"?)`, or without `line:col` when no position is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct ScenarioError {
    pub path: PathBuf,
    /// 1-based line and column (in characters) of the offending text, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong, starting with the key path or step (`load.timeout: ...`, `step 2: ...`).
    pub message: String,
}

fn render(e: &ScenarioError) -> String {
    match e.position {
        Some((line, col)) => format!("{}:{line}:{col}: {}", e.path.display(), e.message),
        None => format!("{}: {}", e.path.display(), e.message),
    }
}

pub(super) type Span = Range<usize>;

/// The file being read: turns byte offsets into `line:col` for errors.
pub(super) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn error(&self, span: Option<Span>, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: self.path.to_path_buf(),
            position: span.map(|s| self.position(s.start)),
            message: message.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(super) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            let lower = c.to_ascii_lowercase();
            let dist = strsim::levenshtein(&word, &lower);
            (dist, strsim::jaro_winkler(&word, &lower), *c)
        })
        .filter(|(dist, jw, _)| *dist <= 2 || *jw >= 0.9)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

/// ` (did you mean "x"?)`, or the list of valid names when none is close.
pub(super) fn hint(word: &str, candidates: &[&str]) -> String {
    match nearest(word, candidates) {
        Some(c) => format!(" (did you mean \"{c}\"?)"),
        None => format!(" (expected one of: {})", candidates.join(", ")),
    }
}

/// Rewords a serde / toml message: names in double quotes, TOML types instead of Rust ones,
/// and a suggestion for unknown fields.
pub(super) fn reword(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let mut names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        names.dedup();
        if names.is_empty() {
            return format!("unknown field \"{field}\" (this table takes no fields)");
        }
        return format!("unknown field \"{field}\"{}", hint(field, &names));
    }
    let mut out = message.replace('`', "\"");
    for (rust, toml) in [
        ("expected u16", "expected a port number (0-65535)"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        out = out.replace(rust, toml);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_rejects_strangers() {
        let actions = ["exec", "update_image", "update", "rollback", "wait_http"];
        assert_eq!(nearest("update-image", &actions), Some("update_image"));
        assert_eq!(nearest("rolback", &actions), Some("rollback"));
        assert_eq!(nearest("Update", &actions), Some("update"));
        assert_eq!(nearest("frobnicate", &actions), None);
    }

    #[test]
    fn reword_unknown_field_suggests() {
        assert_eq!(
            reword("unknown field `concurency`, expected one of `target`, `concurrency`"),
            "unknown field \"concurency\" (did you mean \"concurrency\"?)"
        );
        assert_eq!(
            reword("unknown field `zzz`, expected `kind`"),
            "unknown field \"zzz\" (expected one of: kind)"
        );
        assert_eq!(
            reword("invalid type: string \"3\", expected u64"),
            "invalid type: string \"3\", expected a non-negative integer"
        );
    }

    #[test]
    fn positions_are_one_based_chars() {
        let src = Source {
            path: Path::new("x.toml"),
            text: "a = 1\nbé = \"x\"\n",
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // "bé = " is 6 bytes but 5 chars.
        assert_eq!(src.position(12), (2, 6));
    }
}
