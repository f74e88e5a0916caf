//! summary.json's `containers` section: a `docker` lab's container lanes and the edge's
//! upstream over time, from the container analysis.

use crate::analysis::containers::ContainerFigures;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainersOut {
    /// Each container's states: `running`, `healthy`, `unhealthy`, `stopping` (`end_s` null:
    /// until the end of the run).
    pub lanes: Vec<ContainerLaneOut>,
    /// What the edge proxied to, from the start of the run.
    pub upstream: Vec<UpstreamOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerLaneOut {
    pub container: String,
    pub state: String,
    pub start_s: f64,
    pub end_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UpstreamOut {
    pub start_s: f64,
    pub end_s: Option<f64>,
    pub servers: Vec<String>,
    /// `reload` or `restart`; null for the upstream the edge started with.
    pub switch: Option<String>,
    /// After a reload: nginx's workers that served the old upstream, and how long after the
    /// reload the last of them exited (null: still running at the end of the run).
    pub old_workers: Option<u32>,
    pub old_workers_exited_after_s: Option<f64>,
}

impl From<&ContainerFigures> for ContainersOut {
    fn from(f: &ContainerFigures) -> Self {
        let s = |d: std::time::Duration| d.as_secs_f64();
        ContainersOut {
            lanes: f
                .lanes
                .iter()
                .map(|l| ContainerLaneOut {
                    container: l.container.clone(),
                    state: l.state.to_string(),
                    start_s: s(l.start),
                    end_s: l.end.map(s),
                })
                .collect(),
            upstream: f
                .upstream
                .iter()
                .map(|u| UpstreamOut {
                    start_s: s(u.start),
                    end_s: u.end.map(s),
                    servers: u.servers.clone(),
                    switch: u.switch.clone(),
                    old_workers: u.old_workers,
                    old_workers_exited_after_s: u.old_workers_exited_after.map(s),
                })
                .collect(),
        }
    }
}

impl UpstreamOut {
    /// `app-v2 (reload; 2 old workers exited 0.60 s later)`, for the text and the HTML.
    pub fn describe(&self) -> String {
        let servers = self.servers.join(", ");
        match (
            &self.switch,
            self.old_workers,
            self.old_workers_exited_after_s,
        ) {
            (None, ..) => format!("{servers} (at start)"),
            (Some(how), Some(n), Some(after)) => {
                format!("{servers} ({how}; {n} old workers exited {after:.2} s later)")
            }
            (Some(how), _, _) if how == "reload" => {
                format!("{servers} (reload; old workers still running at the end)")
            }
            (Some(how), _, _) => format!("{servers} ({how})"),
        }
    }
}
