//! The failure-mode catalogue's manifest (`scenarios/catalogue/catalogue.toml`): which modes
//! there are, what the known-bad twin must fail with, and which modes cannot be reproduced
//! on this kind of machine and why. Validated like a scenario, every pair's files included,
//! before any run starts.

use super::Plan;
use super::document::Document;
use super::error::{ScenarioError, Source, hint};
use crate::outcome::Outcome;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Gate thresholds a bad twin may be expected to fail instead of dropping requests.
pub const THRESHOLDS: [&str; 4] = [
    "max_converge",
    "max_p99",
    "max_p99_during",
    "max_error_rate",
];

#[derive(Debug, Clone)]
pub struct Catalogue {
    pub path: PathBuf,
    pub modes: Vec<Mode>,
}

#[derive(Debug, Clone)]
pub struct Mode {
    /// `sigterm-ignored`: the pair is `<id>-bad.toml` and `<id>-fixed.toml` beside the manifest.
    pub id: String,
    pub title: String,
    pub kind: ModeKind,
}

#[derive(Debug, Clone)]
pub enum ModeKind {
    Reproduced {
        /// What the fixed twin changes, in a line.
        fix: String,
        expect: Expect,
        bad: Box<Twin>,
        fixed: Box<Twin>,
    },
    /// Written down, not run: why this machine cannot show it.
    NotReproducible { reason: String },
}

/// What the known-bad twin must fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Its dropped requests, this class the most frequent.
    Dropped(Outcome),
    /// This gate threshold failed (the rollout crawled, latency, ...).
    Threshold(&'static str),
}

impl Expect {
    pub fn name(self) -> &'static str {
        match self {
            Expect::Dropped(o) => o.as_str(),
            Expect::Threshold(t) => t,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Twin {
    pub file: PathBuf,
    pub plan: Plan,
    /// The scenario text a report may show (secrets redacted).
    pub shown: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    mode: Vec<Spanned<RawMode>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMode {
    id: Spanned<String>,
    title: String,
    fix: Option<String>,
    fails_with: Option<Spanned<String>>,
    not_reproducible: Option<String>,
}

/// Reads the manifest and every scenario it names (each validated as `check` would).
pub fn load(path: &Path) -> Result<Catalogue, ScenarioError> {
    let text = super::read(path)?;
    let src = Source { path, text: &text };
    let raw: Raw = Document::parse(&src, &|_| None)?.deserialize(&src)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut modes: Vec<Mode> = Vec::new();
    for (i, m) in raw.mode.iter().enumerate() {
        let at = |span: std::ops::Range<usize>, message: String| {
            src.error(Some(span), format!("mode[{i}]{message}"))
        };
        let r = m.get_ref();
        let id = r.id.get_ref();
        let valid = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(at(
                r.id.span(),
                format!(
                    ".id: {id:?} must be lowercase letters, digits and '-' (it names the files)"
                ),
            ));
        }
        if modes.iter().any(|o| o.id == *id) {
            return Err(at(r.id.span(), format!(".id: \"{id}\" is listed twice")));
        }
        let kind = match (&r.fails_with, &r.not_reproducible, &r.fix) {
            (None, Some(reason), None) => ModeKind::NotReproducible {
                reason: reason.clone(),
            },
            (Some(fails), None, Some(fix)) => {
                let expect = expect(fails.get_ref()).ok_or_else(|| {
                    let mut names: Vec<&str> = Outcome::ALL
                        .iter()
                        .filter(|&&o| o != Outcome::Ok && o != Outcome::Late)
                        .map(|o| o.as_str())
                        .collect();
                    names.extend(THRESHOLDS);
                    at(
                        fails.span(),
                        format!(
                            ".fails_with: \"{}\" is neither an outcome class nor a gate threshold{}",
                            fails.get_ref(),
                            hint(fails.get_ref(), &names)
                        ),
                    )
                })?;
                let twin = |which: &str| -> Result<Box<Twin>, ScenarioError> {
                    let file = dir.join(format!("{id}-{which}.toml"));
                    let (plan, shown) = super::load_shown(&file)?;
                    Ok(Box::new(Twin { file, plan, shown }))
                };
                ModeKind::Reproduced {
                    fix: fix.clone(),
                    expect,
                    bad: twin("bad")?,
                    fixed: twin("fixed")?,
                }
            }
            _ => {
                return Err(at(
                    m.span(),
                    ": give either fails_with and fix (a pair of scenario files), or not_reproducible (the reason), not both".into(),
                ));
            }
        };
        modes.push(Mode {
            id: id.clone(),
            title: r.title.clone(),
            kind,
        });
    }
    Ok(Catalogue {
        path: path.to_path_buf(),
        modes,
    })
}

fn expect(name: &str) -> Option<Expect> {
    if let Some(t) = THRESHOLDS.iter().find(|&&t| t == name) {
        return Some(Expect::Threshold(t));
    }
    Outcome::parse(name)
        .filter(|&o| o != Outcome::Ok && o != Outcome::Late)
        .map(Expect::Dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Catalogue, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalogue.toml");
        std::fs::write(&path, text).unwrap();
        let scenario = "[load]\ntarget = \"http://127.0.0.1:9/\"\nduration = \"2s\"\n";
        for twin in ["a-bad", "a-fixed"] {
            std::fs::write(dir.path().join(format!("{twin}.toml")), scenario).unwrap();
        }
        load(&path).map_err(|e| {
            e.to_string()
                .replace(&dir.path().display().to_string(), "DIR")
        })
    }

    #[test]
    fn manifest_errors_name_the_line_and_what_to_do() {
        let cases = [
            (
                "[[mode]]\nid = \"A\"\ntitle = \"t\"\nnot_reproducible = \"r\"\n",
                "DIR/catalogue.toml:2:6: mode[0].id: \"A\" must be lowercase letters, digits and '-' (it names the files)",
            ),
            (
                "[[mode]]\nid = \"a\"\ntitle = \"t\"\nfix = \"f\"\nfails_with = \"resets\"\n",
                "DIR/catalogue.toml:5:14: mode[0].fails_with: \"resets\" is neither an outcome class nor a gate threshold (did you mean \"reset\"?)",
            ),
            (
                "[[mode]]\nid = \"a\"\ntitle = \"t\"\nfails_with = \"reset\"\nnot_reproducible = \"r\"\n",
                "DIR/catalogue.toml:1:1: mode[0]: give either fails_with and fix (a pair of scenario files), or not_reproducible (the reason), not both",
            ),
            (
                "[[mode]]\nid = \"b\"\ntitle = \"t\"\nfix = \"f\"\nfails_with = \"reset\"\n",
                "DIR/b-bad.toml: cannot read scenario: No such file or directory (os error 2)",
            ),
            (
                "[[mode]]\nid = \"a\"\ntitle = \"t\"\nfixed = \"f\"\n",
                "DIR/catalogue.toml:4:1: mode[0]: unknown field \"fixed\" (did you mean \"fix\"?)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(load_text(text).unwrap_err(), want, "{text}");
        }
    }

    #[test]
    fn a_pair_and_a_mode_written_down() {
        let c = load_text(
            "[[mode]]\nid = \"a\"\ntitle = \"t\"\nfix = \"f\"\nfails_with = \"max_converge\"\n\
             [[mode]]\nid = \"vip\"\ntitle = \"v\"\nnot_reproducible = \"no IPVS\"\n",
        )
        .unwrap();
        assert_eq!(c.modes.len(), 2);
        let ModeKind::Reproduced { expect, bad, .. } = &c.modes[0].kind else {
            panic!("{:?}", c.modes[0]);
        };
        assert_eq!(*expect, Expect::Threshold("max_converge"));
        assert!(bad.file.ends_with("a-bad.toml"));
        assert!(matches!(
            &c.modes[1].kind,
            ModeKind::NotReproducible { reason } if reason == "no IPVS"
        ));
    }
}
