//! Figures for a multi-node lab, from the run's events and its ok responses per task: node lanes (stopped,
//! paused, disconnected, drained as the scenario made them; down and leader as the managers
//! saw them), control-plane unavailable spans, event-stream gaps, how long a lost node's
//! tasks took to run elsewhere and to get traffic, and requests served per node. Pure.

use crate::event::{Event, NodeState, TaskState, What};
use crate::history::TaskStats;
use crate::runner::steps::StepSpan;
use crate::scenario::{Action, NodeName, NodeOp};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One stretch of one node in one state. `end: None` = until the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpan {
    pub node: String,
    /// `stopped`, `paused`, `disconnected`, `drain` (from the steps); `down`, `leader` (as a
    /// manager reported it); `events lost` (rollcheck's stream from that node broke).
    pub state: String,
    pub start: Duration,
    pub end: Option<Duration>,
}

/// What happened to the tasks of a node a step took away.
#[derive(Debug, Clone, PartialEq)]
pub struct Reschedule {
    pub step: usize,
    pub node: String,
    pub at: Duration,
    /// The service's tasks running on that node when the step started.
    pub tasks_lost: usize,
    /// From the step's start until as many new tasks run on other nodes.
    pub running_elsewhere_after: Option<Duration>,
    /// From the step's start until the first ok request sent to one of those new tasks.
    pub first_request_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterFigures {
    pub lanes: Vec<NodeSpan>,
    /// Spans where no manager answered rollcheck's control poll.
    pub control_plane_unavailable: Vec<(Duration, Option<Duration>)>,
    pub control_plane_unavailable_total: Duration,
    pub reschedules: Vec<Reschedule>,
    /// Ok responses per node that ran the serving task.
    pub requests_per_node: BTreeMap<String, u64>,
    /// Tasks of the run (service and in-cluster edge) that Swarm rejected, per error.
    pub tasks_rejected: BTreeMap<String, u64>,
}

/// `None` for a run outside a cluster (no node states were recorded).
pub fn analyse(
    events: &[Event],
    steps: &[(StepSpan, Action)],
    served: &BTreeMap<String, TaskStats>,
    service: &str,
    run_end: Duration,
) -> Option<ClusterFigures> {
    let node_states: Vec<(Duration, &NodeState)> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::Node(n) => Some((e.at, n)),
            _ => None,
        })
        .collect();
    if node_states.is_empty() {
        return None;
    }
    let mut figures = ClusterFigures::default();
    let node_names: HashMap<String, String> = node_states
        .iter()
        .map(|(_, n)| (n.id.clone(), n.node.clone()))
        .collect();
    let managers = node_states
        .iter()
        .filter(|(_, n)| n.role == "manager")
        .map(|(_, n)| n.node.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u32;

    figures
        .lanes
        .extend(fault_lanes(steps, managers, &node_states));
    figures.lanes.extend(swarm_lanes(&node_states));
    figures.lanes.extend(paired(events, |w| match w {
        What::EventsLost { node, .. } => Some((node.clone(), "events lost", true)),
        What::EventsResumed { node, .. } => Some((node.clone(), "events lost", false)),
        _ => None,
    }));
    figures
        .lanes
        .sort_by(|a, b| (&a.node, a.start).cmp(&(&b.node, b.start)));

    for span in paired(events, |w| match w {
        What::ControlPlaneUnavailable { .. } => Some(("swarm".into(), "", true)),
        What::ControlPlaneAvailable { .. } => Some(("swarm".into(), "", false)),
        _ => None,
    }) {
        figures
            .control_plane_unavailable
            .push((span.start, span.end));
        figures.control_plane_unavailable_total +=
            span.end.unwrap_or(run_end).saturating_sub(span.start);
    }

    let tasks = task_history(events, service);
    let node_of_task = |task: &str| -> Option<String> {
        let id: String = task.rsplit('.').next()?.chars().take(12).collect();
        let node = Some(&tasks.get(&id)?.node).filter(|n| !n.is_empty())?;
        Some(
            node_names
                .get(node)
                .cloned()
                .unwrap_or_else(|| node.clone()),
        )
    };
    figures.tasks_rejected = rejections(events);
    for (task, t) in served {
        let node = node_of_task(task).unwrap_or_else(|| "unknown".into());
        *figures.requests_per_node.entry(node).or_default() += t.ok;
    }

    for (span, action) in steps {
        let lost_node = match action {
            Action::Node {
                op: NodeOp::Stop | NodeOp::Kill | NodeOp::Pause | NodeOp::Disconnect | NodeOp::Drain,
                node,
            } => node.to_string(),
            _ => continue,
        };
        let at = span.start;
        let node_id = node_names
            .iter()
            .find(|(_, name)| **name == lost_node)
            .map(|(id, _)| id.clone());
        let lost: Vec<&TaskHistory> = tasks
            .values()
            .filter(|t| Some(&t.node) == node_id.as_ref() && t.running_at(at))
            .collect();
        let mut replacements: Vec<(&String, Duration)> = tasks
            .iter()
            .filter(|(_, t)| Some(&t.node) != node_id.as_ref() && t.first_seen >= at)
            .filter_map(|(id, t)| t.first_running.map(|r| (id, r)))
            .collect();
        replacements.sort_by_key(|(_, r)| *r);
        replacements.truncate(lost.len());
        let running_elsewhere_after = (!lost.is_empty() && replacements.len() == lost.len())
            .then(|| replacements.last().map(|(_, r)| r.saturating_sub(at)))
            .flatten();
        // A replacement did not exist before the step, so its first ok request is after it.
        let first_request_after = served
            .iter()
            .filter(|(task, _)| {
                let id: String = task
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(12)
                    .collect();
                replacements.iter().any(|(t, _)| **t == id)
            })
            .map(|(_, t)| t.first_sent.saturating_sub(at))
            .min();
        figures.reschedules.push(Reschedule {
            step: span.index,
            node: lost_node,
            at,
            tasks_lost: lost.len(),
            running_elsewhere_after,
            first_request_after,
        });
    }
    Some(figures)
}

/// Spans of one node in one state being built from events in time order: opened at one
/// moment, closed at a later one; what is still open at the end lasts until the end of the run.
#[derive(Default)]
struct Spans {
    open: BTreeMap<(String, String), Duration>,
    done: Vec<NodeSpan>,
}

impl Spans {
    /// Opens (or reopens, from `at`) the span of `node` in `state`.
    fn open(&mut self, node: String, state: &str, at: Duration) {
        self.open.insert((node, state.to_string()), at);
    }

    fn is_open(&self, node: &str, state: &str) -> bool {
        self.open
            .contains_key(&(node.to_string(), state.to_string()))
    }

    /// Ends the open span of `node` in `state` at `at`; nothing when none is open.
    fn close(&mut self, node: String, state: &str, at: Duration) {
        if let Some(start) = self.open.remove(&(node.clone(), state.to_string())) {
            self.done.push(NodeSpan {
                node,
                state: state.to_string(),
                start,
                end: Some(at),
            });
        }
    }

    /// The closed spans in the order they closed, then the open ones (`end: None`).
    fn finish(mut self) -> Vec<NodeSpan> {
        self.done.extend(
            self.open
                .into_iter()
                .map(|((node, state), start)| NodeSpan {
                    node,
                    state,
                    start,
                    end: None,
                }),
        );
        self.done
    }
}

/// Lanes the scenario's own steps made: from the fault until the step that undoes it. The
/// leader a `leader_stop` stopped is the one the managers last reported before it started.
fn fault_lanes(
    steps: &[(StepSpan, Action)],
    managers: u32,
    node_states: &[(Duration, &NodeState)],
) -> Vec<NodeSpan> {
    let leader_at = |t: Duration| {
        node_states
            .iter()
            .rfind(|(at, n)| *at <= t && n.leader)
            .map(|(_, n)| n.node.clone())
    };
    let mut spans = Spans::default();
    for (span, action) in steps.iter().filter(|(s, _)| s.ok) {
        match action {
            Action::Node { op, node } => {
                let node = node.to_string();
                match op {
                    NodeOp::Stop | NodeOp::Kill => spans.open(node, "stopped", span.start),
                    NodeOp::Pause => spans.open(node, "paused", span.start),
                    NodeOp::Disconnect => spans.open(node, "disconnected", span.start),
                    NodeOp::Drain => spans.open(node, "drain", span.start),
                    NodeOp::Start => spans.close(node, "stopped", span.end),
                    NodeOp::Unpause => spans.close(node, "paused", span.end),
                    NodeOp::Connect => spans.close(node, "disconnected", span.end),
                    NodeOp::Activate => spans.close(node, "drain", span.end),
                }
            }
            Action::ManagerStop { count } => {
                for i in (1..=managers).rev().take(*count as usize) {
                    spans.open(NodeName::manager(i).to_string(), "stopped", span.start);
                }
            }
            Action::LeaderStop => {
                if let Some(n) = leader_at(span.start) {
                    spans.open(n, "stopped", span.start);
                }
            }
            _ => {}
        }
    }
    spans.finish()
}

/// `down` (the managers saw the node down or disconnected), `unknown` and `leader` spans from
/// the node states. A newly elected leader reports every other node `unknown` until that
/// node's next heartbeat reaches it (1-5 s after a leader change here, while the workers
/// kept serving), so `unknown` is not `down`.
fn swarm_lanes(node_states: &[(Duration, &NodeState)]) -> Vec<NodeSpan> {
    let mut spans = Spans::default();
    for (at, n) in node_states {
        let flags = [
            ("down", n.state != "ready" && n.state != "unknown"),
            ("unknown", n.state == "unknown"),
            ("leader", n.leader),
        ];
        for (state, on) in flags {
            match (spans.is_open(&n.node, state), on) {
                (false, true) => spans.open(n.node.clone(), state, *at),
                (true, false) => spans.close(n.node.clone(), state, *at),
                _ => {}
            }
        }
    }
    spans.finish()
}

/// A lane edge: the span of (`node`, `state`) starts here (`true`) or ends here.
type Edge = Option<(String, &'static str, bool)>;

/// Spans between an event that `edge` calls a start and the next end of the same lane,
/// sorted by start.
fn paired(events: &[Event], edge: impl Fn(&What) -> Edge) -> Vec<NodeSpan> {
    let mut spans = Spans::default();
    for e in events {
        match edge(&e.what) {
            Some((node, state, true)) if !spans.is_open(&node, state) => {
                spans.open(node, state, e.at)
            }
            Some((node, state, false)) => spans.close(node, state, e.at),
            _ => {}
        }
    }
    let mut out = spans.finish();
    out.sort_by_key(|s| s.start);
    out
}

/// A task of the service, from its task events.
#[derive(Debug)]
struct TaskHistory {
    node: String,
    first_seen: Duration,
    first_running: Option<Duration>,
    /// (at, state) in event order.
    states: Vec<(Duration, String)>,
}

impl TaskHistory {
    fn running_at(&self, at: Duration) -> bool {
        self.states
            .iter()
            .filter(|(t, _)| *t <= at)
            .max_by_key(|(t, _)| *t)
            .is_some_and(|(_, s)| s == "running")
    }
}

/// Rejected tasks counted once each, per error ("Pool overlaps with other one on this address
/// space").
fn rejections(events: &[Event]) -> BTreeMap<String, u64> {
    let mut seen = std::collections::HashSet::new();
    let mut per_error = BTreeMap::new();
    for t in tasks(events).filter(|t| t.state == "rejected") {
        if !seen.insert(t.id.as_str()) {
            continue;
        }
        let error = t.error.as_deref().unwrap_or("(no error given)");
        *per_error.entry(error.trim().to_string()).or_default() += 1;
    }
    per_error
}

fn tasks(events: &[Event]) -> impl Iterator<Item = &TaskState> {
    events.iter().filter_map(|e| match &e.what {
        What::Task(t) => Some(t),
        _ => None,
    })
}

/// Task id (12 characters) → its node and states, for `service`'s tasks only (not the edge's).
fn task_history(events: &[Event], service: &str) -> HashMap<String, TaskHistory> {
    let mut tasks: HashMap<String, TaskHistory> = HashMap::new();
    let prefix = format!("{service}.");
    for (at, task) in events.iter().filter_map(|e| match &e.what {
        What::Task(t) if t.task.starts_with(&prefix) => Some((e.at, t)),
        _ => None,
    }) {
        let t = tasks.entry(task.id.clone()).or_insert(TaskHistory {
            node: String::new(),
            first_seen: at,
            first_running: None,
            states: Vec::new(),
        });
        // `None` until the scheduler assigns the task to a node.
        if let Some(node) = &task.node {
            t.node = node.clone();
        }
        t.first_seen = t.first_seen.min(at);
        if task.state == "running" && task.desired == "running" {
            t.first_running = Some(t.first_running.map_or(at, |r| r.min(at)));
        }
        t.states.push((at, task.state.clone()));
    }
    tasks
}

#[cfg(test)]
mod tests;
