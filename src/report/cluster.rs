//! summary.json's `cluster` section: node lanes, control-plane outages, reschedules,
//! requests per node and rejected tasks, from the cluster analysis.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClusterOut {
    /// Node states over time: `stopped`, `paused`, `disconnected`, `drain` (from the steps),
    /// `down`, `leader` (as the managers saw them), `events lost`.
    pub lanes: Vec<LaneOut>,
    /// Spans where no manager answered (`end_s` null: until the end of the run).
    pub control_plane_unavailable: Vec<SpanOut>,
    pub control_plane_unavailable_s: f64,
    pub reschedules: Vec<RescheduleOut>,
    /// Ok responses per node that ran the serving task.
    pub requests_per_node: BTreeMap<String, u64>,
    /// Tasks Swarm rejected during the run, per error message.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks_rejected: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LaneOut {
    pub node: String,
    pub state: String,
    pub start_s: f64,
    pub end_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SpanOut {
    pub start_s: f64,
    pub end_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RescheduleOut {
    pub step: usize,
    pub node: String,
    pub at_s: f64,
    pub tasks_lost: usize,
    /// From the step until as many new tasks ran on other nodes.
    pub running_elsewhere_after_s: Option<f64>,
    /// From the step until the first ok request to one of those new tasks.
    pub first_request_after_s: Option<f64>,
}

impl From<&crate::analysis::cluster::ClusterFigures> for ClusterOut {
    fn from(f: &crate::analysis::cluster::ClusterFigures) -> Self {
        let s = |d: Duration| d.as_secs_f64();
        ClusterOut {
            lanes: f
                .lanes
                .iter()
                .map(|l| LaneOut {
                    node: l.node.clone(),
                    state: l.state.clone(),
                    start_s: s(l.start),
                    end_s: l.end.map(s),
                })
                .collect(),
            control_plane_unavailable: f
                .control_plane_unavailable
                .iter()
                .map(|(a, b)| SpanOut {
                    start_s: s(*a),
                    end_s: b.map(s),
                })
                .collect(),
            control_plane_unavailable_s: s(f.control_plane_unavailable_total),
            reschedules: f
                .reschedules
                .iter()
                .map(|r| RescheduleOut {
                    step: r.step,
                    node: r.node.clone(),
                    at_s: s(r.at),
                    tasks_lost: r.tasks_lost,
                    running_elsewhere_after_s: r.running_elsewhere_after.map(s),
                    first_request_after_s: r.first_request_after.map(s),
                })
                .collect(),
            requests_per_node: f.requests_per_node.clone(),
            tasks_rejected: f.tasks_rejected.clone(),
        }
    }
}
