//! Things that happened during a run that are not requests: step spans, Docker events, task
//! state changes, notes from the harness. Producers send them to the history collector.

use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// A scenario step started or ended.
    Step,
    /// Docker's event stream (container start/die/kill/health_status/exec_*).
    Docker,
    /// A Swarm task changed state.
    Task,
    /// A Swarm service's update state changed.
    Service,
    /// A Swarm node changed state.
    Node,
    /// The harness itself (lab provisioned, cleanup, warnings).
    Harness,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// On the run clock.
    pub at: Duration,
    pub source: EventSource,
    /// What happened, e.g. `die`, `health_status`, `step_start`, `running`.
    pub kind: String,
    /// What it happened to: a container/task/service name or a step label.
    pub subject: String,
    /// Free text: exit code, signal, image, stderr tail.
    pub detail: String,
}

/// Where producers (steps, watchers) send events; the collector owns the receiving end.
pub type EventSink = UnboundedSender<Event>;
