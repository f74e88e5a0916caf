//! summary.json `generators`: the agents of a distributed run, beside the merged figures.

use serde::{Deserialize, Serialize};

/// The load generators of a distributed run. Every figure above them (requests, classes,
/// latency, the gate) is computed on their merged records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GeneratorsOut {
    pub count: u32,
    /// `[load] placement`.
    pub placement: Vec<String>,
    pub agents: Vec<AgentOut>,
    /// The largest |clock offset| + its uncertainty over the agents: how far apart two
    /// agents' instants (and an agent's and this process's steps) can be, in ms.
    pub timing_error_bound_ms: f64,
    /// The agents' per-interval latency histograms (ok requests, from the scheduled start),
    /// added: their count, p50 and p99 in ms. Equal to `latency_ms` computed from the merged
    /// records, within HdrHistogram's precision.
    pub histograms: MergedHistograms,
    /// What this process (the coordinator) spent while the agents sent the load and it merged
    /// their records: beside each agent's `cpu_s`, the cost of distributing the load.
    pub coordinator: Coordinator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Coordinator {
    /// CPU time (user + system, s) from the agents' start until their logs ended.
    pub cpu_s: f64,
    /// This process's peak RSS over the whole run (MB).
    pub peak_rss_mb: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MergedHistograms {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentOut {
    /// Its shard: it sent requests `shard`, `shard + count`, `shard + 2·count`, ...
    pub shard: u32,
    pub node: String,
    /// Its records that reached this process.
    pub requests: u64,
    /// Of those, not ok.
    pub failed: u64,
    /// How many requests the agent said it recorded (its closing line); absent when its
    /// log ended without one (it was lost).
    pub reported: Option<u64>,
    /// Its node's clock minus this process's, and the uncertainty of that (ms).
    pub clock_offset_ms: f64,
    pub clock_uncertainty_ms: f64,
    /// When its log ended before the run stopped it (its node went away), on the run clock.
    pub lost_at_s: Option<f64>,
    /// The CPU time (user + system, s) and peak RSS (MB) the agent reported with its closing
    /// count; absent without one.
    #[serde(default)]
    pub cpu_s: Option<f64>,
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

impl GeneratorsOut {
    /// One line for the text summary.
    pub fn line(&self) -> String {
        let agents: Vec<String> = self
            .agents
            .iter()
            .map(|a| {
                let lost = a
                    .lost_at_s
                    .map(|t| format!(", lost at {t:.1} s"))
                    .unwrap_or_default();
                format!("{} {} req{lost}", a.node, a.requests)
            })
            .collect();
        format!(
            "{} agents ({}); clocks within ±{:.2} ms; merged histograms p50 {:.1} ms, p99 {:.1} ms",
            self.count,
            agents.join(", "),
            self.timing_error_bound_ms,
            self.histograms.p50_ms,
            self.histograms.p99_ms
        )
    }
}
