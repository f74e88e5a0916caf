//! events.csv's columns back to typed events: the inverse of [`Event::source`],
//! [`Event::kind`], [`Event::subject`] and [`Event::detail`], for `rollcheck report` on a run
//! that was killed before it wrote its summary. A row this rollcheck cannot read as a variant
//! (an older file, a detail that does not have its shape) becomes a [`What::Note`] with its
//! columns: analysis ignores notes, and the report still lists the row.

use super::{ContainerAction, Event, NodeState, TaskState, What};
use std::time::Duration;

impl Event {
    /// The event one row of events.csv describes.
    pub fn from_columns(
        at: Duration,
        source: &str,
        kind: &str,
        subject: &str,
        detail: &str,
    ) -> Event {
        let what = typed(source, kind, subject, detail).unwrap_or_else(|| What::Note {
            kind: kind.into(),
            subject: subject.into(),
            detail: detail.into(),
        });
        Event::new(at, what)
    }
}

fn typed(source: &str, kind: &str, subject: &str, detail: &str) -> Option<What> {
    let s = || subject.to_string();
    let d = || detail.to_string();
    Some(match (source, kind) {
        ("step", "step_start") => What::StepStart {
            index: step_index(subject)?,
            step: s(),
        },
        ("step", "step_end" | "step_failed") => What::StepEnd {
            index: step_index(subject)?,
            step: s(),
            ok: kind == "step_end",
            detail: d(),
        },
        ("docker", "health_log") => health_log(subject, detail)?,
        ("docker", _) => What::Container {
            container: s(),
            action: container_action(kind, detail)?,
        },
        ("task", _) => What::Task(task_state(subject, kind, detail)?),
        ("service", _) => What::Service {
            service: s(),
            state: kind.into(),
            detail: d(),
        },
        ("node", "node_state") => What::Node(node_state(subject, detail)?),
        ("node", _) => What::NodeEvent {
            node: s(),
            action: kind.into(),
            changed: d(),
        },
        ("harness", "control_plane_unavailable") => What::ControlPlaneUnavailable { reason: d() },
        ("harness", "control_plane_available") => What::ControlPlaneAvailable {
            after: seconds(detail.strip_prefix("managers answer again after ")?)?,
        },
        ("harness", "events_lost") => What::EventsLost {
            node: s(),
            reason: d(),
        },
        ("harness", "events_resumed") => What::EventsResumed {
            node: s(),
            gap: seconds(detail.strip_prefix("gap ")?)?,
        },
        ("edge", "upstream") => {
            let (servers, switch) = detail.rsplit_once(" (")?;
            What::Upstream {
                servers: servers.split(' ').map(String::from).collect(),
                switch: switch.strip_suffix(')')?.into(),
            }
        }
        ("edge", "old_workers_exited") => {
            let (n, rest) = detail.split_once(" old workers exited ")?;
            What::OldWorkersExited {
                workers: n.parse().ok()?,
                after: seconds(rest.strip_suffix(" after the reload")?)?,
            }
        }
        ("harness", "load_end") => What::LoadEnd {
            requests: detail.strip_suffix(" requests")?.parse().ok()?,
        },
        _ => return None,
    })
}

/// `step 2: update_image` → 2.
fn step_index(subject: &str) -> Option<usize> {
    subject
        .strip_prefix("step ")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// `12.3s` → 12.3 s.
fn seconds(text: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(text.strip_suffix('s')?.parse().ok()?).ok()
}

fn millis(text: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(text.parse::<f64>().ok()? / 1e3).ok()
}

/// `-` → `None`, else the number.
fn exit_code(text: &str) -> Option<Option<i64>> {
    match text {
        "-" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// `end_ms=2500.25 exit_code=0 output=ok fine`.
fn health_log(container: &str, detail: &str) -> Option<What> {
    let rest = detail.strip_prefix("end_ms=")?;
    let (end, rest) = rest.split_once(" exit_code=")?;
    let (code, output) = rest.split_once(" output=")?;
    Some(What::HealthProbe {
        container: container.into(),
        end: millis(end)?,
        exit_code: exit_code(code)?,
        output: output.into(),
    })
}

fn container_action(kind: &str, detail: &str) -> Option<ContainerAction> {
    let code = || match detail {
        "" => Some(None),
        d => d.strip_prefix("exit code ")?.parse().ok().map(Some),
    };
    Some(match kind {
        "create" => ContainerAction::Create {
            image: detail.into(),
        },
        "start" => ContainerAction::Start {
            image: detail.into(),
        },
        "kill" => ContainerAction::Kill {
            signal: detail.strip_prefix("signal ")?.into(),
        },
        "die" => ContainerAction::Die { exit_code: code()? },
        "exec_die" => ContainerAction::ExecDie { exit_code: code()? },
        "exec_start" => ContainerAction::ExecStart {
            command: detail.into(),
        },
        "health_status" => ContainerAction::HealthStatus {
            status: detail.into(),
        },
        _ => ContainerAction::Other {
            action: kind.into(),
            detail: detail.into(),
        },
    })
}

/// `task ID slot S image IMG node N desired D[ error: E]`; `-` for an unknown slot or node.
fn task_state(task: &str, state: &str, detail: &str) -> Option<TaskState> {
    let (fields, error) = match detail.split_once(" error: ") {
        Some((f, e)) => (f, Some(e.to_string())),
        None => (detail, None),
    };
    let f: Vec<&str> = fields.split(' ').collect();
    let [
        "task",
        id,
        "slot",
        slot,
        "image",
        image,
        "node",
        node,
        "desired",
        desired,
    ] = f[..]
    else {
        return None;
    };
    let known = |v: &str| (v != "-").then(|| v.to_string());
    Some(TaskState {
        task: task.into(),
        id: id.into(),
        slot: match slot {
            "-" => None,
            n => Some(n.parse().ok()?),
        },
        image: image.into(),
        node: known(node),
        state: state.into(),
        desired: desired.into(),
        error,
    })
}

/// `ready drain manager leader id n1`.
fn node_state(node: &str, detail: &str) -> Option<NodeState> {
    let f: Vec<&str> = detail.split(' ').collect();
    let (state, availability, role, leader, id) = match f[..] {
        [s, a, r, "leader", "id", id] => (s, a, r, true, id),
        [s, a, r, "id", id] => (s, a, r, false, id),
        _ => return None,
    };
    Some(NodeState {
        node: node.into(),
        id: id.into(),
        state: state.into(),
        availability: availability.into(),
        role: role.into(),
        leader,
    })
}
