//! Health-probe latency: when did each container's HEALTHCHECK run, and were the requests in
//! flight during a probe slower than the others? Computed by [`ProbeFold`], which the collector
//! feeds with the run's events and ok requests as they arrive; the report turns the result
//! into summary.json.
//!
//! A probe is known from two sources: the `exec_start`/`exec_die` pair Docker emits for every
//! probe (paired per container in time order), and the [`What::HealthProbe`] events the watcher
//! copies from `State.Health.Log` (start, end, exit code; Docker keeps only the last 5, so it
//! polls).
//! A log entry wins where both describe the same probe: it carries the exit code.

mod fold;

pub use fold::{ProbeFold, StepRole};

use super::Percentiles;
use std::time::Duration;

/// A spike is a probe during which the p99 of the requests it could affect exceeded this
/// many times the p99 of requests that ran outside every probe.
pub const DEFAULT_SPIKE_FACTOR: f64 = 2.0;

/// One ok request as the probe analysis needs it (from requests.csv).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    /// Swarm task that served it (`app.2.<id>`); empty when unknown.
    pub task: String,
    pub sent: Duration,
    pub done: Duration,
    /// How long its own TCP connect took (zero on a reused connection).
    pub connect: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Container (Swarm task) name, as events name it.
    pub container: String,
    pub start: Duration,
    pub end: Duration,
    /// From the log entry or `exec_die`; `None` when the engine sent none.
    pub exit_code: Option<i64>,
}

impl Probe {
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerProbes {
    pub name: String,
    /// True when its probes affect every request (the edge), not only the ones it served.
    pub on_every_request: bool,
    pub probes: usize,
    pub failed: usize,
    pub mean: Duration,
    pub max: Duration,
}

/// A probe during which the requests it could affect were slow.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub container: String,
    pub start: Duration,
    pub end: Duration,
    pub requests: u64,
    pub p99: Duration,
    pub baseline_p99: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeAnalysis {
    pub containers: Vec<ContainerProbes>,
    /// Every probe, by start time.
    pub probes: Vec<Probe>,
    /// Ok requests in flight (sent..done) while a probe ran on the edge or on their own task.
    pub in_probe: Option<Percentiles>,
    /// Ok requests that overlapped no such probe: the baseline.
    pub outside: Option<Percentiles>,
    pub spike_factor: f64,
    pub spikes: Vec<Spike>,
    /// Ok requests left out of the comparison: in flight while a step ran or a node fault
    /// lasted, whose latency is the step's or the fault's, not a probe's.
    pub left_out: u64,
    /// Ok requests left out because their connect took [`SLOW_CONNECT`] or longer: a SYN
    /// that went unanswered and was sent again, whose latency is the network's.
    pub left_out_slow_connect: u64,
}

/// A connect this slow needed a SYN retransmit (Linux's first one waits 1 s).
pub const SLOW_CONNECT: Duration = Duration::from_secs(1);

impl ProbeAnalysis {
    /// in-probe p99 / outside p99, when both exist.
    pub fn p99_ratio(&self) -> Option<f64> {
        ratio(self.in_probe?.p99, self.outside?.p99)
    }

    pub fn p50_ratio(&self) -> Option<f64> {
        ratio(self.in_probe?.p50, self.outside?.p50)
    }
}

fn ratio(a: Duration, b: Duration) -> Option<f64> {
    (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
}

#[cfg(test)]
mod tests;
