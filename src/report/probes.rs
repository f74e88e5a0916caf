//! summary.json `health_probes`: health-check probes and the requests in flight during them.

use super::{LatencyMs, ms, secs};
use crate::analysis::probes::ProbeAnalysis;
use serde::{Deserialize, Serialize};

/// Health-check probes and the latency of requests in flight during them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthProbes {
    pub containers: Vec<ProbedContainer>,
    /// Every probe, by start (the chart's probe instants and durations).
    pub probes: Vec<ProbeOut>,
    /// Ok requests in flight (sent → done) while a probe ran on the edge or on their own task.
    pub in_probe_ms: LatencyMs,
    /// Ok requests that overlapped no such probe: the baseline.
    pub outside_ms: LatencyMs,
    /// in-probe / outside.
    pub p50_ratio: Option<f64>,
    pub p99_ratio: Option<f64>,
    /// A spike: a probe whose affected requests had p99 > k × the outside p99.
    pub spike_factor_k: f64,
    pub spikes: Vec<SpikeOut>,
    /// Ok requests left out of the comparison because a step ran or a node fault lasted
    /// while they were in flight.
    #[serde(default)]
    pub left_out_during_steps: u64,
    /// Ok requests left out because their own connect needed a SYN retransmit (≥ 1 s).
    #[serde(default)]
    pub left_out_slow_connect: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbedContainer {
    pub name: String,
    /// True for the edge: its probes can slow every request, not only the ones it served.
    pub on_every_request: bool,
    pub probes: usize,
    /// Probes that exited non-zero.
    pub failed: usize,
    pub mean_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProbeOut {
    pub container: String,
    pub start_s: f64,
    pub end_s: f64,
    pub duration_ms: f64,
    /// Absent when only Docker's exec events saw the probe.
    pub exit_code: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SpikeOut {
    pub container: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Ok requests the probe could affect.
    pub requests: u64,
    pub p99_ms: f64,
    pub baseline_p99_ms: f64,
}

impl From<&ProbeAnalysis> for HealthProbes {
    fn from(a: &ProbeAnalysis) -> HealthProbes {
        let round = |r: Option<f64>| r.map(|r| (r * 1000.0).round() / 1000.0);
        HealthProbes {
            containers: a
                .containers
                .iter()
                .map(|c| ProbedContainer {
                    name: c.name.clone(),
                    on_every_request: c.on_every_request,
                    probes: c.probes,
                    failed: c.failed,
                    mean_ms: ms(c.mean),
                    max_ms: ms(c.max),
                })
                .collect(),
            probes: a
                .probes
                .iter()
                .map(|p| ProbeOut {
                    container: p.container.clone(),
                    start_s: secs(p.start),
                    end_s: secs(p.end),
                    duration_ms: ms(p.duration()),
                    exit_code: p.exit_code,
                })
                .collect(),
            in_probe_ms: a.in_probe.into(),
            outside_ms: a.outside.into(),
            p50_ratio: round(a.p50_ratio()),
            p99_ratio: round(a.p99_ratio()),
            spike_factor_k: a.spike_factor,
            spikes: a
                .spikes
                .iter()
                .map(|s| SpikeOut {
                    container: s.container.clone(),
                    start_s: secs(s.start),
                    end_s: secs(s.end),
                    requests: s.requests,
                    p99_ms: ms(s.p99),
                    baseline_p99_ms: ms(s.baseline_p99),
                })
                .collect(),
            left_out_during_steps: a.left_out,
            left_out_slow_connect: a.left_out_slow_connect,
        }
    }
}
