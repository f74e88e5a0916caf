//! The report model: built once from a finished run, read by every renderer. It is also the
//! schema of `summary.json`, so it holds plain numbers (milliseconds, seconds) and strings,
//! and `rollcheck report` can re-render from a saved file.

pub mod charts;
mod cluster;
mod containers;
mod generators;
pub mod html;
pub mod junit;
mod probes;
pub mod run_data;
mod schema;
#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;
#[cfg(test)]
mod tests;
pub mod text;

pub use cluster::{ClusterOut, LaneOut, RescheduleOut, SpanOut};
pub use containers::{ContainerLaneOut, ContainersOut, UpstreamOut};
pub use generators::{AgentOut, Coordinator, GeneratorsOut, MergedHistograms};
pub use html::{render_compare, render_pairs, write_report_html, write_report_html_of};
pub use probes::{HealthProbes, ProbeOut, ProbedContainer, SpikeOut};
pub use run_data::{ReportError, RunData};
pub use schema::{SCHEMA_URL, summary_schema};

use crate::analysis::{Analysis, Percentiles};
use crate::gate::Evaluation;
use crate::outcome::OutcomeCounts;
use crate::runner::steps::StepSpan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Bump when a field changes meaning or disappears; adding fields keeps the version.
pub const SCHEMA_VERSION: u32 = 1;

/// What text and HTML say about a recovered run.
pub const RECOVERED: &str = "recovered: rebuilt by `rollcheck report` from requests.csv and events.csv (the run wrote no summary: it was killed)";

/// summary.json: one run's result, the report model every renderer reads. Its shape is
/// published (summary.schema.json); a field that changes meaning or goes away bumps
/// schema_version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "rollcheck summary.json")]
pub struct Summary {
    /// This file's JSON Schema: summary.schema.json of the rollcheck version that wrote it;
    /// absent in files written before it existed.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub schema_version: u32,
    pub rollcheck_version: String,
    pub scenario: ScenarioInfo,
    pub run: RunInfo,
    /// `pass` | `fail` | `inconclusive`.
    pub verdict: crate::gate::Verdict,
    /// Why the verdict is inconclusive.
    pub problems: Vec<String>,
    pub requests: Requests,
    pub outcomes: OutcomeCounts,
    pub dropped_classes: Vec<String>,
    /// Ok requests, from the scheduled start (coordinated-omission corrected).
    pub latency_ms: LatencyMs,
    /// Ok requests, from the actual send.
    pub service_latency_ms: LatencyMs,
    /// TLS handshakes that finished (https targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshake_ms: Option<LatencyMs>,
    /// The client's record against the test service's own (its truth log in every task's
    /// container log); absent in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_truth: Option<crate::analysis::truth::ServerTruth>,
    /// Per `[[load.request]]` entry (by name); absent in the single-target form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests_by_entry: Vec<EntryOut>,
    /// Ok latency from scheduled start as `[quantile, ms]` points on HdrHistogram's tail
    /// axis, ending with `[1.0, max]` (the report's percentile chart).
    #[serde(default)]
    pub latency_curve: Vec<[f64; 2]>,
    pub phases: Vec<PhaseOut>,
    /// Each failure class that occurred: count, first and last scheduled start, most
    /// frequent error.
    #[serde(default)]
    pub failures: Vec<FailureOut>,
    /// Tasks that served ok responses (`X-Rollcheck-Task`), by first response.
    #[serde(default)]
    pub tasks: Vec<TaskOut>,
    pub steps: Vec<StepOut>,
    pub gate: Vec<GateOut>,
    /// Ok responses per serving version (`X-Rollcheck-Version`).
    pub versions: BTreeMap<String, u64>,
    /// Whether any ok response named its version and its task: a service other than
    /// rollcheck's test service sends neither, and versions, tasks and task probes cannot be
    /// attributed.
    #[serde(default = "attributed")]
    pub attribution: Attribution,
    /// Where it ran: engine version, API, kernel, swarm state (empty without a lab).
    pub environment: BTreeMap<String, String>,
    pub interval_ms: f64,
    pub intervals: Vec<IntervalOut>,
    /// HEALTHCHECK probes and the latency of requests in flight during them; absent when the
    /// run saw no probe (and in files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_probes: Option<HealthProbes>,
    /// A multi-node lab's figures: node lanes, control-plane outages, reschedules, requests
    /// per node; absent outside a `swarm-cluster` lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterOut>,
    /// A `docker` lab's container lanes and the edge's upstream over time; absent outside
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainersOut>,
    /// `[load] generators` > 1: the agents that sent the load, each one's share and clock;
    /// absent when this process sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generators: Option<GeneratorsOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioInfo {
    pub title: String,
    pub file: String,
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunInfo {
    pub id: String,
    pub started_utc: String,
    pub duration_s: f64,
    pub interrupted: bool,
    /// Rebuilt by `rollcheck report` from the CSV files of a run that wrote no summary (it was
    /// killed); such a run is inconclusive unless its record is complete.
    #[serde(default)]
    pub recovered: bool,
    pub target: String,
    /// e.g. `closed, 10 workers` or `open, 50/s`.
    pub model: String,
    pub keepalive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Requests {
    /// Every request, late ones included (= data rows in requests.csv).
    pub total: u64,
    pub ok: u64,
    pub dropped: u64,
    pub late: u64,
    pub error_rate: f64,
    /// Seconds on the run clock: the first dropped request's scheduled start and the last
    /// dropped request's end. Absent when nothing was dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_between_s: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencyMs {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// One `[[load.request]]` entry's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EntryOut {
    /// The entry's `name`, or `METHOD path`.
    pub name: String,
    pub requests: u64,
    pub ok: u64,
    pub dropped: u64,
    pub outcomes: OutcomeCounts,
    /// Ok requests, from the scheduled start.
    pub latency_ms: LatencyMs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseOut {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    pub dropped: u64,
    pub outcomes: OutcomeCounts,
    pub latency_ms: LatencyMs,
    /// As the summary's `latency_curve`, for this phase's requests.
    #[serde(default)]
    pub latency_curve: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attribution {
    pub versions: bool,
    pub tasks: bool,
}

impl Attribution {
    /// What the text and HTML reports say when [`Attribution::foreign`] holds.
    pub const NOTICE: &str = "no ok response carried X-Rollcheck-Version or X-Rollcheck-Task \
        (a service other than rollcheck's test service), so versions, tasks and task health \
        probes cannot be told apart; edge probes are still compared";

    /// Ok responses came back, but none named its version or task.
    pub fn foreign(&self, ok: u64) -> bool {
        ok > 0 && !self.versions && !self.tasks
    }
}

fn attributed() -> Attribution {
    Attribution {
        versions: true,
        tasks: true,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailureOut {
    /// The outcome class: `refused`, `reset`, `http_5xx`, ...
    pub class: String,
    pub count: u64,
    pub first_start_s: f64,
    pub last_start_s: f64,
    /// The most frequent error text and how often it occurred.
    pub error: String,
    pub error_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskOut {
    pub task: String,
    pub versions: Vec<String>,
    pub ok: u64,
    pub first_sent_s: f64,
    /// First and last ok response's completion.
    pub first_done_s: f64,
    pub last_done_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepOut {
    pub index: usize,
    pub label: String,
    pub action: String,
    pub start_s: f64,
    pub end_s: f64,
    pub ok: bool,
    pub expected_failure: bool,
    /// The step lasted until the service converged: its span is the rollout's time to
    /// converge (`max_converge`); absent (false) in files written before it existed.
    #[serde(default)]
    pub converges: bool,
    pub detail: String,
}

impl Summary {
    /// The longest step that waited for convergence and got it, in seconds.
    pub fn converge_s(&self) -> Option<f64> {
        self.steps
            .iter()
            .filter(|s| s.converges && s.ok)
            .map(|s| s.end_s - s.start_s)
            .max_by(f64::total_cmp)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GateOut {
    pub threshold: String,
    pub limit: f64,
    pub value: Option<f64>,
    /// `requests`, `ratio` or `ms`.
    pub unit: crate::gate::Unit,
    /// `at_most` (max_* thresholds) or `at_least` (min_*); absent in files written before it
    /// existed, where every threshold but min_requests was at_most.
    #[serde(default = "at_most")]
    pub bound: crate::gate::Bound,
    pub passed: bool,
    /// Human-readable line: `max_dropped: 3 (limit ≤ 0)`.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntervalOut {
    pub start_s: f64,
    pub outcomes: OutcomeCounts,
    pub dropped: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub versions: BTreeMap<String, u64>,
}

impl Summary {
    /// Reads `summary.json` from a run directory, checking the schema version first so an
    /// old or future file fails with a clear message instead of a missing-field error.
    pub fn load(dir: &std::path::Path) -> Result<Summary, ReportError> {
        run_data::read_summary(&dir.join("summary.json"))
    }
}

/// Facts about the run that the analysis does not know.
pub struct RunFacts {
    pub id: String,
    pub started_utc: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    pub interrupted: bool,
    pub recovered: bool,
    pub title: String,
    pub file: String,
    pub slug: String,
    pub target: String,
    pub model: String,
    pub keepalive: bool,
    pub environment: BTreeMap<String, String>,
}

fn ms(d: Duration) -> f64 {
    crate::history::ms(d)
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

impl From<Option<Percentiles>> for LatencyMs {
    fn from(p: Option<Percentiles>) -> LatencyMs {
        match p {
            None => LatencyMs::default(),
            Some(p) => LatencyMs {
                count: p.count,
                p50: Some(ms(p.p50)),
                p90: Some(ms(p.p90)),
                p99: Some(ms(p.p99)),
                p999: Some(ms(p.p999)),
                max: Some(ms(p.max)),
                mean: Some(ms(p.mean)),
            },
        }
    }
}

impl Summary {
    pub fn build(facts: RunFacts, a: &Analysis, e: &Evaluation, steps: &[StepSpan]) -> Summary {
        Summary {
            schema: Some(SCHEMA_URL.to_string()),
            schema_version: SCHEMA_VERSION,
            rollcheck_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: ScenarioInfo {
                title: facts.title,
                file: facts.file,
                slug: facts.slug,
            },
            run: RunInfo {
                id: facts.id,
                started_utc: facts.started_utc.to_rfc3339(),
                duration_s: secs(facts.duration),
                interrupted: facts.interrupted,
                recovered: facts.recovered,
                target: facts.target,
                model: facts.model,
                keepalive: facts.keepalive,
            },
            verdict: e.verdict,
            problems: e.problems.clone(),
            requests: Requests {
                total: a.total,
                ok: a.outcomes.get(crate::outcome::Outcome::Ok),
                dropped: a.dropped,
                late: a.late,
                error_rate: a.error_rate,
                dropped_between_s: a
                    .dropped_window
                    .map(|(first, last)| [first.as_secs_f64(), last.as_secs_f64()]),
            },
            outcomes: a.outcomes,
            dropped_classes: a.dropped_classes.iter().map(|o| o.to_string()).collect(),
            latency_ms: a.latency.into(),
            service_latency_ms: a.service_latency.into(),
            tls_handshake_ms: a.tls_handshake.map(|p| Some(p).into()),
            server_truth: a.truth.clone(),
            requests_by_entry: a
                .entries
                .iter()
                .map(|e| EntryOut {
                    name: e.name.clone(),
                    requests: e.outcomes.total(),
                    ok: e.outcomes.get(crate::outcome::Outcome::Ok),
                    dropped: e.dropped,
                    outcomes: e.outcomes,
                    latency_ms: e.latency.into(),
                })
                .collect(),
            phases: a
                .phases
                .iter()
                .map(|p| PhaseOut {
                    name: serde_plain_name(&p.name),
                    start_s: secs(p.start),
                    end_s: secs(p.end),
                    requests: p.outcomes.total(),
                    dropped: p.dropped,
                    outcomes: p.outcomes,
                    latency_ms: p.latency.into(),
                    latency_curve: curve(&p.curve),
                })
                .collect(),
            latency_curve: curve(&a.curve),
            failures: a
                .failures
                .iter()
                .map(|(o, c)| {
                    let (error, error_count) = c.common_error().unwrap_or(("", 0));
                    FailureOut {
                        class: o.to_string(),
                        count: c.count,
                        first_start_s: secs(c.first_start),
                        last_start_s: secs(c.last_start),
                        error: error.to_string(),
                        error_count,
                    }
                })
                .collect(),
            tasks: {
                let mut tasks: Vec<TaskOut> = a
                    .tasks
                    .iter()
                    .map(|(name, t)| TaskOut {
                        task: name.clone(),
                        versions: t.versions.keys().cloned().collect(),
                        ok: t.ok,
                        first_sent_s: secs(t.first_sent),
                        first_done_s: secs(t.first_done),
                        last_done_s: secs(t.last_done),
                    })
                    .collect();
                tasks.sort_by(|a, b| {
                    a.first_done_s
                        .total_cmp(&b.first_done_s)
                        .then(a.task.cmp(&b.task))
                });
                tasks
            },
            steps: steps
                .iter()
                .map(|s| StepOut {
                    index: s.index,
                    label: s.label.clone(),
                    action: s.action.to_string(),
                    start_s: secs(s.start),
                    end_s: secs(s.end),
                    ok: s.ok,
                    expected_failure: s.expected_failure,
                    converges: s.converges,
                    detail: s.detail.clone(),
                })
                .collect(),
            gate: e
                .checks
                .iter()
                .map(|c| GateOut {
                    threshold: c.threshold.to_string(),
                    limit: c.limit,
                    value: c.value,
                    unit: c.unit,
                    bound: c.bound,
                    passed: c.passed,
                    text: c.describe(),
                })
                .collect(),
            versions: a.versions.clone(),
            attribution: Attribution {
                versions: !a.versions.is_empty(),
                tasks: !a.tasks.is_empty(),
            },
            environment: facts.environment,
            interval_ms: ms(a.interval),
            intervals: a
                .intervals
                .iter()
                .map(|i| IntervalOut {
                    start_s: secs(i.start),
                    outcomes: i.outcomes,
                    dropped: i.dropped,
                    p50_ms: i.p50.map(ms),
                    p99_ms: i.p99.map(ms),
                    versions: i.versions.clone(),
                })
                .collect(),
            health_probes: None,
            cluster: None,
            containers: None,
            generators: None,
        }
    }
}

fn at_most() -> crate::gate::Bound {
    crate::gate::Bound::AtMost
}

fn curve(points: &[(f64, Duration)]) -> Vec<[f64; 2]> {
    points.iter().map(|(q, d)| [*q, ms(*d)]).collect()
}

fn serde_plain_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
