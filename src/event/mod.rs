//! Things that happened during a run that are not requests: step spans, Docker events, task and
//! node states, notes from the harness. Producers (steps, watchers, the lab) send them to the
//! history collector as typed values; analysis matches on the variants. Text exists only at
//! the edge: [`Event::source`], [`Event::kind`], [`Event::subject`] and [`Event::detail`] are
//! the columns of events.csv and the lines a person reads. Only `rollcheck report` reads them
//! back ([`parse`]), to rebuild the report of a run that was killed before it wrote one.

mod parse;

use std::fmt::Write;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Who reported an event: the `source` column of events.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// A scenario step started or ended.
    Step,
    /// Docker's event stream (container start/die/kill/health_status/exec_*) and the
    /// containers' health logs.
    Docker,
    /// A Swarm task changed state.
    Task,
    /// A Swarm service's update state changed.
    Service,
    /// A Swarm node changed state.
    Node,
    /// rollcheck's edge proxy: its upstream switched, its old workers gone.
    Edge,
    /// The harness itself (lab provisioned, cleanup, warnings, watcher gaps).
    Harness,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// On the run clock.
    pub at: Duration,
    pub what: What,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A scenario step started; `index` is its number in the file, `step` its name,
    /// `step 2: update_image`.
    StepStart { index: usize, step: String },
    /// A scenario step ended (`ok`) or failed, with what it reported.
    StepEnd {
        index: usize,
        step: String,
        ok: bool,
        detail: String,
    },
    /// An engine event about one of this run's containers (`container`: the Swarm task name,
    /// else the container name).
    Container {
        container: String,
        action: ContainerAction,
    },
    /// One HEALTHCHECK probe, from the container's `State.Health.Log`: it started at the
    /// event's time and ended at `end`.
    HealthProbe {
        container: String,
        end: Duration,
        exit_code: Option<i64>,
        output: String,
    },
    /// A Swarm task's state (or desired state) changed.
    Task(TaskState),
    /// A Swarm service event (`update`, `create`, `remove`), its update state (`updating`,
    /// `completed`, `paused`, ...) or `converged`, with Docker's detail.
    Service {
        service: String,
        state: String,
        detail: String,
    },
    /// A node as the managers list it (control poll of a cluster lab).
    Node(NodeState),
    /// A node event on the engine's own stream (a single-node swarm), with the changed
    /// attributes.
    NodeEvent {
        node: String,
        action: String,
        changed: String,
    },
    /// No manager answered the control poll; `reason` is the last error.
    ControlPlaneUnavailable { reason: String },
    /// A manager answers again, `after` the outage began.
    ControlPlaneAvailable { after: Duration },
    /// rollcheck's event stream from `node` broke (`driver` on a single engine).
    EventsLost { node: String, reason: String },
    /// ... and is back, after `gap`.
    EventsResumed { node: String, gap: Duration },
    /// The edge proxies to these containers from now on (`upstream_set`), switched by an
    /// nginx `reload` or a `restart` of its container.
    Upstream {
        servers: Vec<String>,
        switch: String,
    },
    /// The nginx workers that served before a reload have all exited, `after` the reload:
    /// from then on no request is in flight through the old upstream.
    OldWorkersExited { workers: u32, after: Duration },
    /// The load stopped and every request it sent was recorded: `requests` rows precede this
    /// event. Its presence is how a recovered run knows its record is complete.
    LoadEnd { requests: u64 },
    /// Anything else the harness says (swarm_init, lab provisioned, retry, watch_error):
    /// a record for a person, which no analysis reads.
    Note {
        kind: String,
        subject: String,
        detail: String,
    },
}

/// Engine container actions rollcheck reads, with their attributes; others keep their name.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerAction {
    Create {
        image: String,
    },
    Start {
        image: String,
    },
    Kill {
        signal: String,
    },
    Die {
        exit_code: Option<i64>,
    },
    /// An exec began, e.g. a HEALTHCHECK probe (`command`).
    ExecStart {
        command: String,
    },
    /// An exec ended; Docker 20.10 sends the exit code.
    ExecDie {
        exit_code: Option<i64>,
    },
    HealthStatus {
        status: String,
    },
    /// Any other action (`stop`, `destroy`, `exec_create`, ...) and the text after its name.
    Other {
        action: String,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    /// `app.2` like `docker service ps`; a global task is named by its node.
    pub task: String,
    /// First 12 characters of the task id.
    pub id: String,
    pub slot: Option<u64>,
    pub image: String,
    /// First 12 characters of the node id; `None` until the scheduler assigns it.
    pub node: Option<String>,
    /// Swarm's task state: `new`, `pending`, ..., `running`, `shutdown`, `rejected`, ...
    pub state: String,
    pub desired: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    /// The node's hostname: the lab's node name.
    pub node: String,
    /// First 12 characters of the Swarm node id.
    pub id: String,
    /// `ready`, `down`, `disconnected`, `unknown`.
    pub state: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    /// `manager`, `worker`.
    pub role: String,
    pub leader: bool,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Step => "step",
            EventSource::Docker => "docker",
            EventSource::Task => "task",
            EventSource::Service => "service",
            EventSource::Node => "node",
            EventSource::Edge => "edge",
            EventSource::Harness => "harness",
        }
    }
}

impl Event {
    pub fn new(at: Duration, what: What) -> Event {
        Event { at, what }
    }

    /// A harness note.
    pub fn note(at: Duration, kind: &str, subject: &str, detail: impl Into<String>) -> Event {
        Event::new(
            at,
            What::Note {
                kind: kind.into(),
                subject: subject.into(),
                detail: detail.into(),
            },
        )
    }

    pub fn source(&self) -> EventSource {
        match &self.what {
            What::StepStart { .. } | What::StepEnd { .. } => EventSource::Step,
            What::Container { .. } | What::HealthProbe { .. } => EventSource::Docker,
            What::Task(_) => EventSource::Task,
            What::Service { .. } => EventSource::Service,
            What::Node(_) | What::NodeEvent { .. } => EventSource::Node,
            What::Upstream { .. } | What::OldWorkersExited { .. } => EventSource::Edge,
            What::ControlPlaneUnavailable { .. }
            | What::ControlPlaneAvailable { .. }
            | What::EventsLost { .. }
            | What::EventsResumed { .. }
            | What::LoadEnd { .. }
            | What::Note { .. } => EventSource::Harness,
        }
    }

    /// The `kind` column: Docker's own word where there is one.
    pub fn kind(&self) -> &str {
        match &self.what {
            What::StepStart { .. } => "step_start",
            What::StepEnd { ok: true, .. } => "step_end",
            What::StepEnd { ok: false, .. } => "step_failed",
            What::Container { action, .. } => match action {
                ContainerAction::Create { .. } => "create",
                ContainerAction::Start { .. } => "start",
                ContainerAction::Kill { .. } => "kill",
                ContainerAction::Die { .. } => "die",
                ContainerAction::ExecStart { .. } => "exec_start",
                ContainerAction::ExecDie { .. } => "exec_die",
                ContainerAction::HealthStatus { .. } => "health_status",
                ContainerAction::Other { action, .. } => action,
            },
            What::HealthProbe { .. } => "health_log",
            What::Task(t) => &t.state,
            What::Service { state, .. } => state,
            What::Node(_) => "node_state",
            What::NodeEvent { action, .. } => action,
            What::ControlPlaneUnavailable { .. } => "control_plane_unavailable",
            What::ControlPlaneAvailable { .. } => "control_plane_available",
            What::EventsLost { .. } => "events_lost",
            What::EventsResumed { .. } => "events_resumed",
            What::LoadEnd { .. } => "load_end",
            What::Upstream { .. } => "upstream",
            What::OldWorkersExited { .. } => "old_workers_exited",
            What::Note { kind, .. } => kind,
        }
    }

    /// The `subject` column: what it happened to.
    pub fn subject(&self) -> &str {
        match &self.what {
            What::StepStart { step, .. } | What::StepEnd { step, .. } => step,
            What::Container { container, .. } | What::HealthProbe { container, .. } => container,
            What::Task(t) => &t.task,
            What::Service { service, .. } => service,
            What::Node(n) => &n.node,
            What::NodeEvent { node, .. } => node,
            What::ControlPlaneUnavailable { .. } | What::ControlPlaneAvailable { .. } => "swarm",
            What::EventsLost { node, .. } | What::EventsResumed { node, .. } => node,
            What::LoadEnd { .. } => "load",
            What::Upstream { .. } | What::OldWorkersExited { .. } => "edge",
            What::Note { subject, .. } => subject,
        }
    }

    /// The `detail` column: the rest, for a person.
    pub fn detail(&self) -> String {
        match &self.what {
            What::StepStart { .. } => String::new(),
            What::StepEnd { detail, .. } => detail.clone(),
            What::Container { action, .. } => match action {
                ContainerAction::Create { image } | ContainerAction::Start { image } => {
                    image.clone()
                }
                ContainerAction::Kill { signal } => format!("signal {signal}"),
                ContainerAction::Die { exit_code } | ContainerAction::ExecDie { exit_code } => {
                    exit_code.map_or_else(String::new, |c| format!("exit code {c}"))
                }
                ContainerAction::ExecStart { command } => command.clone(),
                ContainerAction::HealthStatus { status } => status.clone(),
                ContainerAction::Other { detail, .. } => detail.clone(),
            },
            What::HealthProbe {
                end,
                exit_code,
                output,
                ..
            } => {
                let output: String = output.split_whitespace().collect::<Vec<_>>().join(" ");
                format!(
                    "end_ms={} exit_code={} output={}",
                    crate::history::ms(*end),
                    exit_code.map_or_else(|| "-".into(), |c| c.to_string()),
                    output.chars().take(200).collect::<String>()
                )
            }
            What::Task(t) => {
                let mut s = format!(
                    "task {} slot {} image {} node {} desired {}",
                    t.id,
                    t.slot.map_or_else(|| "-".into(), |s| s.to_string()),
                    t.image,
                    t.node.as_deref().unwrap_or("-"),
                    t.desired
                );
                if let Some(err) = &t.error {
                    let _ = write!(s, " error: {err}");
                }
                s
            }
            What::Service { detail, .. } => detail.clone(),
            What::Node(n) => format!(
                "{} {} {}{} id {}",
                n.state,
                n.availability,
                n.role,
                if n.leader { " leader" } else { "" },
                n.id
            ),
            What::NodeEvent { changed, .. } => changed.clone(),
            What::ControlPlaneUnavailable { reason } => reason.clone(),
            What::ControlPlaneAvailable { after } => {
                format!("managers answer again after {:.1}s", after.as_secs_f64())
            }
            What::EventsLost { reason, .. } => reason.clone(),
            What::EventsResumed { gap, .. } => format!("gap {:.1}s", gap.as_secs_f64()),
            What::LoadEnd { requests } => format!("{requests} requests"),
            What::Upstream { servers, switch } => format!("{} ({switch})", servers.join(" ")),
            What::OldWorkersExited { workers, after } => format!(
                "{workers} old workers exited {:.3}s after the reload",
                after.as_secs_f64()
            ),
            What::Note { detail, .. } => detail.clone(),
        }
    }
}

/// Where producers (steps, watchers) send events; the collector owns the receiving end.
pub type EventSink = UnboundedSender<Event>;

#[cfg(test)]
mod tests {
    use super::*;

    /// events.csv is read by people and by scripts: the flattened columns of the typed events
    /// are the ones the text events had.
    #[test]
    fn flattened_columns() {
        let at = Duration::from_millis(1500);
        let cases = [
            (
                What::Task(TaskState {
                    task: "app.2".into(),
                    id: "abcdefabcdef".into(),
                    slot: Some(2),
                    image: "rollcheck/testsvc:2".into(),
                    node: None,
                    state: "rejected".into(),
                    desired: "shutdown".into(),
                    error: Some("Pool overlaps".into()),
                }),
                ("task", "rejected", "app.2"),
                "task abcdefabcdef slot 2 image rollcheck/testsvc:2 node - desired shutdown error: Pool overlaps",
            ),
            (
                What::Node(NodeState {
                    node: "manager-1".into(),
                    id: "n1".into(),
                    state: "ready".into(),
                    availability: "drain".into(),
                    role: "manager".into(),
                    leader: true,
                }),
                ("node", "node_state", "manager-1"),
                "ready drain manager leader id n1",
            ),
            (
                What::HealthProbe {
                    container: "app.1.x".into(),
                    end: Duration::from_micros(2_500_250),
                    exit_code: Some(0),
                    output: "ok\n  fine".into(),
                },
                ("docker", "health_log", "app.1.x"),
                "end_ms=2500.25 exit_code=0 output=ok fine",
            ),
            (
                What::Container {
                    container: "app.1.x".into(),
                    action: ContainerAction::ExecDie { exit_code: None },
                },
                ("docker", "exec_die", "app.1.x"),
                "",
            ),
            (
                What::EventsResumed {
                    node: "worker-2".into(),
                    gap: Duration::from_millis(12_340),
                },
                ("harness", "events_resumed", "worker-2"),
                "gap 12.3s",
            ),
            (
                What::StepEnd {
                    index: 1,
                    step: "step 1: sleep".into(),
                    ok: false,
                    detail: "interrupted".into(),
                },
                ("step", "step_failed", "step 1: sleep"),
                "interrupted",
            ),
        ];
        for (what, (source, kind, subject), detail) in cases {
            let e = Event::new(at, what);
            assert_eq!(e.source().as_str(), source, "{e:?}");
            assert_eq!((e.kind(), e.subject()), (kind, subject), "{e:?}");
            assert_eq!(e.detail(), detail, "{e:?}");
        }
    }

    /// `rollcheck report` rebuilds a killed run's analysis from events.csv: every variant
    /// analysis reads comes back as it was written.
    #[test]
    fn columns_read_back() {
        let task = |node: Option<&str>, error: Option<&str>| TaskState {
            task: "app.2".into(),
            id: "abcdefabcdef".into(),
            slot: node.map(|_| 2),
            image: "rollcheck/testsvc:2".into(),
            node: node.map(String::from),
            state: "running".into(),
            desired: "running".into(),
            error: error.map(String::from),
        };
        let container = |action| What::Container {
            container: "app.1.x".into(),
            action,
        };
        let cases = [
            What::StepStart {
                index: 12,
                step: "step 12: node_stop".into(),
            },
            What::StepEnd {
                index: 1,
                step: "step 1: exec".into(),
                ok: false,
                detail: "exit code 1: error: no such service".into(),
            },
            What::StepEnd {
                index: 2,
                step: "step 2: sleep".into(),
                ok: true,
                detail: String::new(),
            },
            container(ContainerAction::Create {
                image: "rollcheck/testsvc:1".into(),
            }),
            container(ContainerAction::Start {
                image: "rollcheck/testsvc:1".into(),
            }),
            container(ContainerAction::Kill {
                signal: "15".into(),
            }),
            container(ContainerAction::Die {
                exit_code: Some(137),
            }),
            container(ContainerAction::ExecStart {
                command: "/rollcheck probe http://127.0.0.1:8080/".into(),
            }),
            container(ContainerAction::ExecDie { exit_code: None }),
            container(ContainerAction::HealthStatus {
                status: "healthy".into(),
            }),
            container(ContainerAction::Other {
                action: "destroy".into(),
                detail: "gone".into(),
            }),
            What::HealthProbe {
                container: "app.1.x".into(),
                end: Duration::from_micros(2_500_250),
                exit_code: None,
                output: "connection refused: os error 111".into(),
            },
            What::Task(task(Some("n0d3"), Some("Pool overlaps: with other one"))),
            What::Task(task(None, None)),
            What::Service {
                service: "app".into(),
                state: "updating".into(),
                detail: "update in progress".into(),
            },
            What::Node(NodeState {
                node: "worker-1".into(),
                id: "n1".into(),
                state: "down".into(),
                availability: "active".into(),
                role: "worker".into(),
                leader: false,
            }),
            What::NodeEvent {
                node: "lab".into(),
                action: "update".into(),
                changed: "availability=drain".into(),
            },
            What::ControlPlaneUnavailable {
                reason: "connection refused".into(),
            },
            What::ControlPlaneAvailable {
                after: Duration::from_millis(4_200),
            },
            What::EventsLost {
                node: "worker-2".into(),
                reason: "stream ended".into(),
            },
            What::EventsResumed {
                node: "worker-2".into(),
                gap: Duration::from_millis(12_300),
            },
            What::LoadEnd { requests: 720 },
            What::Upstream {
                servers: vec!["app-v2".into(), "app-v3".into()],
                switch: "reload".into(),
            },
            What::OldWorkersExited {
                workers: 2,
                after: Duration::from_millis(1_020),
            },
            What::Note {
                kind: "lab_provisioned".into(),
                subject: "app".into(),
                detail: "2 tasks".into(),
            },
        ];
        for what in cases {
            let e = Event::new(Duration::from_micros(1_500_250), what);
            let row = crate::history::EventRow::from(&e);
            let back = Event::from_columns(
                Duration::from_secs_f64(row.at_ms / 1e3),
                &row.source,
                &row.kind,
                &row.subject,
                &row.detail,
            );
            assert_eq!(back, e, "{row:?}");
        }
        // A row that has not the shape of its kind stays a note with its columns.
        let odd = Event::from_columns(Duration::ZERO, "task", "running", "app.1", "slot");
        assert!(matches!(odd.what, What::Note { ref detail, .. } if detail == "slot"));
    }
}
