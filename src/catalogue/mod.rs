//! `rollcheck catalogue`: every failure mode's known-bad configuration run beside its fixed
//! twin, one after the other on the same lab, each judged against what the manifest says it
//! must show, and the figures written as one table (Markdown, JSON, and an HTML page with
//! each pair's charts side by side). The manifest and every scenario are validated before
//! the first run, so a typo fails in a second, not twenty minutes in.

mod table;

use crate::Exit;
use crate::gate::Verdict;
use crate::report::{RunData, Summary};
use crate::runner::{self, RunOptions};
use crate::scenario::catalogue::{self as manifest, Catalogue, Expect, ModeKind, Twin};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub struct CatalogueArgs {
    pub manifest: PathBuf,
    /// Where the runs' report directories and the catalogue's files go.
    pub out: Option<PathBuf>,
    /// Run only these modes (ids).
    pub only: Vec<String>,
    /// Replace the README's catalogue section (between its markers) with the new table.
    pub readme: Option<PathBuf>,
}

/// One twin's run, as the table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TwinResult {
    pub file: String,
    /// The run's report directory; absent when the run could not start.
    pub report: Option<PathBuf>,
    #[serde(skip)]
    pub summary: Option<Summary>,
    pub verdict: Option<Verdict>,
    pub requests: u64,
    pub dropped: u64,
    /// Dropped requests by class (classes with none left out).
    pub dropped_by_class: Vec<(String, u64)>,
    pub p99_ms: Option<f64>,
    /// The longest step that waited for convergence (s).
    pub converge_s: Option<f64>,
    /// Why it could not run, or why its verdict is inconclusive.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    pub id: String,
    pub title: String,
    #[serde(flatten)]
    pub outcome: ModeOutcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeOutcome {
    Measured {
        fix: String,
        /// The class (or gate threshold) the bad twin must fail with.
        fails_with: String,
        bad: Box<TwinResult>,
        fixed: Box<TwinResult>,
        /// Both twins did what the manifest says.
        as_expected: bool,
        /// What differed, when not as expected.
        why: Vec<String>,
    },
    NotReproducible {
        reason: String,
    },
}

/// The whole catalogue's result: what `catalogue.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub rollcheck_version: String,
    pub measured_utc: String,
    /// Engine and kernel of the first run that reached one.
    pub environment: std::collections::BTreeMap<String, String>,
    pub modes: Vec<ModeResult>,
    pub interrupted: bool,
}

pub async fn run(args: CatalogueArgs) -> Exit {
    let catalogue = match manifest::load(&args.manifest) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    if let Some(unknown) = args
        .only
        .iter()
        .find(|id| !catalogue.modes.iter().any(|m| m.id == **id))
    {
        let ids: Vec<&str> = catalogue.modes.iter().map(|m| m.id.as_str()).collect();
        eprintln!(
            "error: --only {unknown}: no such mode in {} (modes: {})",
            args.manifest.display(),
            ids.join(", ")
        );
        return Exit::Usage;
    }
    if let Some(readme) = &args.readme
        && let Err(e) = table::readme_section(readme)
    {
        eprintln!("error: {}: {e}", readme.display());
        return Exit::Usage;
    }
    let started = chrono::Utc::now();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!("catalogue-{}", started.format("%Y%m%dT%H%M%SZ")))
    });
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: {}: {e}", out.display());
        return Exit::Inconclusive;
    }
    let cancel = CancellationToken::new();
    crate::commands::cancel_on_signal(cancel.clone());
    let results = run_modes(&catalogue, &args.only, &out, &cancel, started).await;

    let mut stdout = std::io::stdout().lock();
    let _ = table::markdown(&results, &mut stdout);
    if let Err(e) = table::write_files(&results, &out) {
        eprintln!("error: {}: {e}", out.display());
        return Exit::Inconclusive;
    }
    if let Some(readme) = &args.readme
        && !results.interrupted
        && let Err(e) = table::update_readme(readme, &results)
    {
        eprintln!("error: {}: {e}", readme.display());
        return Exit::Inconclusive;
    }
    eprintln!(
        "catalogue: {} (table: {}, charts: {})",
        summary_line(&results),
        out.join("catalogue.md").display(),
        out.join("catalogue.html").display()
    );
    exit_of(&results)
}

async fn run_modes(
    catalogue: &Catalogue,
    only: &[String],
    out: &Path,
    cancel: &CancellationToken,
    started: chrono::DateTime<chrono::Utc>,
) -> Results {
    let opts = RunOptions {
        out: out.to_path_buf(),
        progress: runner::progress::Mode::None,
        quiet: true,
    };
    let chosen: Vec<_> = catalogue
        .modes
        .iter()
        .filter(|m| only.is_empty() || only.contains(&m.id))
        .collect();
    let runs = chosen
        .iter()
        .filter(|m| matches!(m.kind, ModeKind::Reproduced { .. }))
        .count()
        * 2;
    let mut results = Results {
        rollcheck_version: env!("CARGO_PKG_VERSION").into(),
        measured_utc: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        environment: Default::default(),
        modes: Vec::new(),
        interrupted: false,
    };
    let mut n = 0;
    for mode in chosen {
        let outcome = match &mode.kind {
            ModeKind::NotReproducible { reason } => ModeOutcome::NotReproducible {
                reason: reason.clone(),
            },
            ModeKind::Reproduced {
                fix,
                expect,
                bad,
                fixed,
            } => {
                let mut twins = Vec::new();
                for (which, twin) in [("bad", bad), ("fixed", fixed)] {
                    if cancel.is_cancelled() {
                        break;
                    }
                    n += 1;
                    eprintln!(
                        "catalogue: [{n}/{runs}] {} {which}: {}",
                        mode.id,
                        twin.file.display()
                    );
                    let r = run_twin(twin, &opts, cancel).await;
                    eprintln!("catalogue: [{n}/{runs}]   {}", twin_line(&r));
                    // The host engine's figures: a cluster run's summary lists its nodes'.
                    if !results.environment.contains_key("docker.server")
                        && let Some(s) = &r.summary
                        && (results.environment.is_empty()
                            || s.environment.contains_key("docker.server"))
                    {
                        results.environment = s.environment.clone();
                    }
                    twins.push(r);
                }
                if twins.len() < 2 {
                    results.interrupted = true;
                    break;
                }
                let fixed = twins.pop().expect("two twins");
                let bad = twins.pop().expect("two twins");
                let why = judge(*expect, &bad, &fixed);
                eprintln!(
                    "catalogue: {} {}",
                    mode.id,
                    if why.is_empty() {
                        "as expected".to_string()
                    } else {
                        format!("NOT as expected: {}", why.join("; "))
                    }
                );
                ModeOutcome::Measured {
                    fix: fix.clone(),
                    fails_with: expect.name().into(),
                    as_expected: why.is_empty(),
                    why,
                    bad: Box::new(bad),
                    fixed: Box::new(fixed),
                }
            }
        };
        results.modes.push(ModeResult {
            id: mode.id.clone(),
            title: mode.title.clone(),
            outcome,
        });
        if cancel.is_cancelled() {
            results.interrupted = true;
            break;
        }
    }
    results
}

async fn run_twin(twin: &Twin, opts: &RunOptions, cancel: &CancellationToken) -> TwinResult {
    let mut r = TwinResult {
        file: twin.file.display().to_string(),
        report: None,
        summary: None,
        verdict: None,
        requests: 0,
        dropped: 0,
        dropped_by_class: Vec::new(),
        p99_ms: None,
        converge_s: None,
        problem: None,
    };
    match runner::run(&twin.plan, &twin.shown, opts, cancel).await {
        Err(e) => r.problem = Some(e.to_string()),
        Ok(run) => {
            let s = run.summary;
            r.report = Some(run.dir);
            r.verdict = Some(if run.interrupted {
                Verdict::Inconclusive
            } else {
                run.verdict
            });
            r.requests = s.requests.total;
            r.dropped = s.requests.dropped;
            r.dropped_by_class = dropped_by_class(&s);
            r.p99_ms = s.latency_ms.p99;
            r.converge_s = s.converge_s();
            if !s.problems.is_empty() {
                r.problem = Some(s.problems.join("; "));
            }
            r.summary = Some(s);
        }
    }
    r
}

/// Dropped requests by class, most first.
fn dropped_by_class(s: &Summary) -> Vec<(String, u64)> {
    let mut classes: Vec<(String, u64)> = s
        .outcomes
        .iter()
        .filter(|(o, n)| *n > 0 && s.dropped_classes.iter().any(|c| c == o.as_str()))
        .map(|(o, n)| (o.as_str().to_string(), n))
        .collect();
    classes.sort_by_key(|c| std::cmp::Reverse(c.1));
    classes
}

/// What differs from the manifest: the bad twin fails with its stated class (the most
/// frequent dropped class) or threshold, the fixed twin passes. Empty: as expected.
pub fn judge(expect: Expect, bad: &TwinResult, fixed: &TwinResult) -> Vec<String> {
    let mut why = Vec::new();
    match (bad.verdict, &bad.summary) {
        (Some(Verdict::Fail), Some(s)) => match expect {
            Expect::Dropped(o) => match bad.dropped_by_class.first() {
                Some((class, _)) if class == o.as_str() => {}
                Some((class, n)) => why.push(format!(
                    "bad twin's drops are mostly {class} ({n}), expected {}",
                    o.as_str()
                )),
                None => why.push(format!(
                    "bad twin failed its gate without dropping, expected {}",
                    o.as_str()
                )),
            },
            Expect::Threshold(t) => {
                if !s.gate.iter().any(|c| c.threshold == t && !c.passed) {
                    why.push(format!("bad twin did not fail {t}"));
                }
            }
        },
        (v, _) => why.push(format!(
            "bad twin: {}, expected fail{}",
            v.map_or("no verdict", Verdict::as_str),
            bad.problem
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        )),
    }
    if fixed.verdict != Some(Verdict::Pass) {
        let fails: Vec<String> = fixed
            .summary
            .iter()
            .flat_map(|s| s.gate.iter().filter(|c| !c.passed))
            .map(|c| c.threshold.clone())
            .collect();
        why.push(format!(
            "fixed twin: {}, expected pass{}{}",
            fixed.verdict.map_or("no verdict", Verdict::as_str),
            if fails.is_empty() {
                String::new()
            } else {
                format!(" (failed {})", fails.join(", "))
            },
            fixed
                .problem
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        ));
    }
    why
}

fn twin_line(r: &TwinResult) -> String {
    let Some(v) = r.verdict else {
        return format!("did not run: {}", r.problem.as_deref().unwrap_or("?"));
    };
    let classes: Vec<String> = r
        .dropped_by_class
        .iter()
        .map(|(c, n)| format!("{c}={n}"))
        .collect();
    let mut line = format!(
        "{} requests={} dropped={}",
        v.as_str().to_uppercase(),
        r.requests,
        r.dropped
    );
    if !classes.is_empty() {
        line.push_str(&format!(" ({})", classes.join(",")));
    }
    if let Some(c) = r.converge_s {
        line.push_str(&format!(" converged in {c:.1}s"));
    }
    if let Some(d) = &r.report {
        line.push_str(&format!(" report={}", d.display()));
    }
    line
}

fn summary_line(r: &Results) -> String {
    let measured: Vec<&ModeOutcome> = r
        .modes
        .iter()
        .map(|m| &m.outcome)
        .filter(|o| matches!(o, ModeOutcome::Measured { .. }))
        .collect();
    let expected = measured
        .iter()
        .filter(|o| {
            matches!(
                o,
                ModeOutcome::Measured {
                    as_expected: true,
                    ..
                }
            )
        })
        .count();
    let mut line = format!(
        "{expected} of {} measured modes as expected, {} written down as not reproducible",
        measured.len(),
        r.modes.len() - measured.len()
    );
    if r.interrupted {
        line.push_str(" (interrupted)");
    }
    line
}

/// 0 every measured mode as expected; 1 one was not; 2 a twin could not be measured (no
/// report, or inconclusive); 130 interrupted.
fn exit_of(r: &Results) -> Exit {
    if r.interrupted {
        return Exit::Interrupted;
    }
    let mut exit = Exit::Pass;
    for m in &r.modes {
        if let ModeOutcome::Measured {
            bad,
            fixed,
            as_expected,
            ..
        } = &m.outcome
        {
            let unmeasured = [bad, fixed]
                .iter()
                .any(|t| matches!(t.verdict, None | Some(Verdict::Inconclusive)));
            if unmeasured {
                return Exit::Inconclusive;
            }
            if !as_expected {
                exit = Exit::GateFailed;
            }
        }
    }
    exit
}

/// Loads each measured pair's runs for the HTML page.
fn pairs(r: &Results) -> Vec<(String, Vec<RunData>)> {
    r.modes
        .iter()
        .filter_map(|m| match &m.outcome {
            ModeOutcome::Measured { bad, fixed, .. } => {
                let runs: Vec<RunData> = [bad, fixed]
                    .iter()
                    .filter_map(|t| RunData::load(t.report.as_ref()?).ok())
                    .collect();
                Some((format!("{}: {}", m.id, m.title), runs))
            }
            ModeOutcome::NotReproducible { .. } => None,
        })
        .filter(|(_, runs)| !runs.is_empty())
        .collect()
}

#[cfg(test)]
mod tests;
