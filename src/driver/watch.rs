//! Watchers that turn what the engine sees into run events: Docker's event stream (this
//! lab's containers, its services, the nodes) and a poll of task states and update states,
//! which the event stream does not carry; the containers' `State.Health.Log` is polled in
//! [`super::health_log`]. All of it is stamped on the run clock.

use super::lab::LabHandle;
use super::{Driver, DriverError, LABEL_RUN};
use crate::clock::Clock;
use crate::event::{ContainerAction, Event, EventSink, TaskState, What};
use bollard::models::{EventMessage, EventMessageTypeEnum, Task};
use bollard::query_parameters::EventsOptions;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Task states change within a few hundred ms during an update; a faster poll only costs
/// manager calls.
const TASK_POLL: Duration = Duration::from_millis(300);

/// Versions for the report's environment section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineVersions {
    pub server: String,
    pub api: String,
    pub os: String,
    pub kernel: String,
    /// `inactive`, `active`, ...
    pub swarm: String,
}

/// One node's event stream in a cluster.
pub(crate) struct NodeStream<'a> {
    pub name: &'a str,
    /// Service events already recorded from any node: (time, action, service id).
    pub services_seen: &'a Mutex<HashSet<(i64, String, String)>>,
}

impl NodeStream<'_> {
    /// Whether `m` is this node's own news rather than a repeat of what another node reports.
    /// Every manager reports the same service and node events; node states come from the
    /// cluster's control poll instead, and a service event is kept from the first manager that
    /// reports it. A manager that catches up after a restart replays older service events,
    /// which belong to before the run when they are older than its start.
    fn first_report(&self, m: &EventMessage, clock: &Clock) -> bool {
        match m.typ {
            Some(EventMessageTypeEnum::NODE) => false,
            Some(EventMessageTypeEnum::SERVICE) => {
                let at = m.time_nano.unwrap_or_default();
                if at < clock.utc_start().timestamp_nanos_opt().unwrap_or_default() {
                    return false;
                }
                let id = m
                    .actor
                    .as_ref()
                    .and_then(|a| a.id.clone())
                    .unwrap_or_default();
                let action = m.action.clone().unwrap_or_default();
                self.services_seen
                    .lock()
                    .expect("poisoned")
                    .insert((at, action, id))
            }
            _ => true,
        }
    }
}

impl Driver {
    pub async fn engine_versions(&self) -> Result<EngineVersions, DriverError> {
        let v = self.call("version", self.docker.version()).await?;
        let info = self.call("info", self.docker.info()).await?;
        Ok(EngineVersions {
            server: v.version.unwrap_or_default(),
            api: v.api_version.unwrap_or_default(),
            os: info.operating_system.unwrap_or_default(),
            kernel: v.kernel_version.unwrap_or_default(),
            swarm: info
                .swarm
                .and_then(|s| s.local_node_state)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        })
    }

    /// Streams this lab's engine events and task/update states into `events` until `cancel`.
    pub fn watch(
        &self,
        lab: &LabHandle,
        clock: Clock,
        events: EventSink,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        self.watch_services(lab.watched_services(), clock, events, cancel)
    }

    /// [`Driver::watch`] for these services (a stack's).
    pub fn watch_services(
        &self,
        services: Vec<String>,
        clock: Clock,
        events: EventSink,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let driver = self.clone();
        tokio::spawn(async move {
            tokio::join!(
                driver.stream_events(&services, clock, &events, &cancel, None),
                driver.poll_tasks(&services, clock, &events, &cancel),
                driver.poll_health_logs(clock, &events, &cancel),
            );
        })
    }

    /// Streams this engine's events from the run start, reconnecting (from the last event
    /// seen) when the stream breaks. `node` names the engine in a cluster: losing its stream
    /// (the node went down) and getting it back are recorded once each, with the gap, and
    /// cluster-wide events, which every manager reports, are recorded once.
    pub(crate) async fn stream_events(
        &self,
        services: &[String],
        clock: Clock,
        events: &EventSink,
        cancel: &CancellationToken,
        node: Option<NodeStream<'_>>,
    ) {
        let subject = node.as_ref().map_or("driver", |n| n.name);
        let mut since = clock.utc_start().timestamp().to_string();
        let mut lost: Option<Duration> = None;
        while !cancel.is_cancelled() {
            let up = matches!(
                tokio::time::timeout(Duration::from_secs(2), self.docker.ping()).await,
                Ok(Ok(_))
            );
            if !up {
                if lost.is_none() {
                    lost = Some(clock.now());
                    let _ = events.send(Event::new(
                        clock.now(),
                        What::EventsLost {
                            node: subject.into(),
                            reason: format!("{} does not answer", self.socket),
                        },
                    ));
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            if let Some(at) = lost.take() {
                let gap = clock.now().saturating_sub(at);
                let _ = events.send(Event::new(
                    clock.now(),
                    What::EventsResumed {
                        node: subject.into(),
                        gap,
                    },
                ));
            }
            let opts = EventsOptions {
                since: Some(since.clone()),
                until: None,
                filters: Some(HashMap::from([(
                    "type".to_string(),
                    vec!["container".into(), "service".into(), "node".into()],
                )])),
            };
            let mut stream = self.docker.events(Some(opts));
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return,
                    next = stream.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        if let Some(t) = message.time {
                            since = t.to_string();
                        }
                        if let Some(n) = &node
                            && !n.first_report(&message, &clock)
                        {
                            continue;
                        }
                        if let Some(event) = self.translate(&message, services, &clock) {
                            let _ = events.send(event);
                        }
                    }
                    Some(Err(e)) => {
                        if node.is_none() {
                            let _ = events.send(Event::note(
                                clock.now(),
                                "watch_error",
                                "driver",
                                format!("docker events: {e}"),
                            ));
                        }
                        break;
                    }
                    None => break,
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// An engine event → a run event, or `None` when it is not about this lab.
    fn translate(&self, m: &EventMessage, services: &[String], clock: &Clock) -> Option<Event> {
        let attrs = m
            .actor
            .as_ref()
            .and_then(|a| a.attributes.clone())
            .unwrap_or_default();
        let at = m
            .time_nano
            .and_then(|ns| {
                DateTime::<Utc>::from_timestamp(ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
            })
            .map(|t| clock.from_utc(t))
            .unwrap_or_else(|| clock.now());
        let action = m.action.clone().unwrap_or_default();
        // "exec_start: /rollcheck probe ..." and "health_status: healthy" carry their detail
        // in the action itself.
        let (kind, rest) = match action.split_once(": ") {
            Some((k, r)) => (k.to_string(), r.to_string()),
            None => (action.clone(), String::new()),
        };
        let get = |k: &str| attrs.get(k).cloned().unwrap_or_default();
        let exit_code = || attrs.get("exitCode").and_then(|c| c.parse().ok());
        let what = match m.typ {
            Some(EventMessageTypeEnum::CONTAINER) => {
                if attrs.get(LABEL_RUN).map(String::as_str) != Some(self.run_id()) {
                    return None;
                }
                let container = attrs
                    .get("com.docker.swarm.task.name")
                    .cloned()
                    .unwrap_or_else(|| get("name"));
                let action = match kind.as_str() {
                    "create" => ContainerAction::Create {
                        image: get("image"),
                    },
                    "start" => ContainerAction::Start {
                        image: get("image"),
                    },
                    "kill" => ContainerAction::Kill {
                        signal: get("signal"),
                    },
                    "die" => ContainerAction::Die {
                        exit_code: exit_code(),
                    },
                    // rollcheck's own execs (the docker lab's nginx -t and reload) are no
                    // HEALTHCHECK probes.
                    "exec_start" if rest.contains(super::upstream::OWN_EXEC) => {
                        ContainerAction::Other {
                            action: "rollcheck_exec".into(),
                            detail: rest,
                        }
                    }
                    "exec_start" => ContainerAction::ExecStart { command: rest },
                    // How the probe (or any exec) exited; 20.10 sends it, as `die` does.
                    "exec_die" => ContainerAction::ExecDie {
                        exit_code: exit_code(),
                    },
                    "health_status" => ContainerAction::HealthStatus { status: rest },
                    _ => ContainerAction::Other {
                        action: kind,
                        detail: rest,
                    },
                };
                What::Container { container, action }
            }
            Some(EventMessageTypeEnum::SERVICE) => {
                let service = get("name");
                if !services.contains(&service) {
                    return None;
                }
                What::Service {
                    service,
                    state: kind,
                    detail: changed_attributes(&attrs),
                }
            }
            Some(EventMessageTypeEnum::NODE) => What::NodeEvent {
                node: attrs.get("name").cloned().unwrap_or_else(|| {
                    m.actor
                        .as_ref()
                        .and_then(|a| a.id.clone())
                        .unwrap_or_default()
                }),
                action: kind,
                changed: changed_attributes(&attrs),
            },
            _ => return None,
        };
        Some(Event::new(at, what))
    }

    pub(crate) async fn poll_tasks(
        &self,
        services: &[String],
        clock: Clock,
        events: &EventSink,
        cancel: &CancellationToken,
    ) {
        let mut tasks_seen: HashMap<String, (String, String)> = HashMap::new();
        let mut updates_seen: HashMap<String, String> = HashMap::new();
        let mut failing = false;
        while !cancel.is_cancelled() {
            for name in services {
                match self
                    .poll_once(name, &clock, &mut tasks_seen, &mut updates_seen)
                    .await
                {
                    Ok(new) => {
                        failing = false;
                        for e in new {
                            let _ = events.send(e);
                        }
                    }
                    // A removed service (a `remove` step) is not a watcher failure.
                    Err(DriverError::NoSuchService { .. }) => {}
                    // Report once per outage (e.g. no manager quorum), not every poll.
                    Err(e) if !failing => {
                        failing = true;
                        let _ = events.send(Event::note(
                            clock.now(),
                            "watch_error",
                            "driver",
                            e.to_string(),
                        ));
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(TASK_POLL) => {}
            }
        }
    }

    pub(crate) async fn poll_once(
        &self,
        name: &str,
        clock: &Clock,
        tasks_seen: &mut HashMap<String, (String, String)>,
        updates_seen: &mut HashMap<String, String>,
    ) -> Result<Vec<Event>, DriverError> {
        let mut out = Vec::new();
        let service = self.inspect(name).await?;
        if let Some(status) = service.update_status {
            let state = status.state.map(|s| s.to_string()).unwrap_or_default();
            let key = format!(
                "{state}|{}",
                status
                    .started_at
                    .map(|t| super::utc(t).to_rfc3339())
                    .unwrap_or_default()
            );
            if updates_seen.get(name) != Some(&key) {
                updates_seen.insert(name.to_string(), key);
                out.push(Event::new(
                    clock.now(),
                    What::Service {
                        service: name.to_string(),
                        state,
                        detail: status.message.unwrap_or_default(),
                    },
                ));
            }
        }
        let mut tasks = self.tasks(name).await?;
        tasks.sort_by_key(|t| t.status.as_ref().and_then(|s| s.timestamp));
        for task in tasks {
            let Some(id) = task.id.clone() else { continue };
            let state = task_state(&task);
            let desired = task
                .desired_state
                .map(|s| s.to_string())
                .unwrap_or_default();
            let now = (state.clone(), desired.clone());
            if tasks_seen.get(&id) == Some(&now) {
                continue;
            }
            tasks_seen.insert(id.clone(), now);
            out.push(task_event(name, &task, state, desired, clock));
        }
        Ok(out)
    }
}

fn task_state(task: &Task) -> String {
    task.status
        .as_ref()
        .and_then(|s| s.state)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn task_event(service: &str, task: &Task, state: String, desired: String, clock: &Clock) -> Event {
    let status = task.status.clone().unwrap_or_default();
    let at = status
        .timestamp
        .map(|t| clock.from_utc(super::utc(t)))
        .unwrap_or_else(|| clock.now());
    let short = |s: &Option<String>| {
        s.as_deref()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect::<String>()
    };
    // `app.2` like `docker service ps`; global tasks have no slot, so the node names them.
    let name = match task.slot {
        Some(slot) => format!("{service}.{slot}"),
        None => format!("{service}.{}", short(&task.node_id)),
    };
    let image = task
        .spec
        .as_ref()
        .and_then(|s| s.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    Event::new(
        at,
        What::Task(TaskState {
            task: name,
            id: short(&task.id),
            slot: task.slot.and_then(|s| u64::try_from(s).ok()),
            image,
            // Not assigned to a node yet (pending).
            node: Some(short(&task.node_id)).filter(|n| !n.is_empty()),
            state,
            desired,
            error: status.err.filter(|e| !e.is_empty()),
        }),
    )
}

/// `key=value` for each attribute Docker reports as changed (`<key>.new`), sorted.
fn changed_attributes(attrs: &HashMap<String, String>) -> String {
    let mut changed: Vec<String> = attrs
        .iter()
        .filter(|(k, _)| k.ends_with(".new"))
        .map(|(k, v)| format!("{}={v}", k.trim_end_matches(".new")))
        .collect();
    changed.sort();
    changed.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{EventActor, EventMessage};

    fn service_update(at: i64) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::SERVICE),
            action: Some("update".into()),
            actor: Some(EventActor {
                id: Some("svc1".into()),
                attributes: None,
            }),
            time_nano: Some(at),
            ..Default::default()
        }
    }

    #[test]
    fn a_service_event_reported_by_every_manager_is_kept_once() {
        let clock = Clock::start();
        let seen = Mutex::new(HashSet::new());
        let start = clock.utc_start().timestamp_nanos_opt().unwrap();
        let m1 = NodeStream {
            name: "manager-1",
            services_seen: &seen,
        };
        let m2 = NodeStream {
            name: "manager-2",
            services_seen: &seen,
        };
        let update = service_update(start + 5_000_000_000);
        assert!(m1.first_report(&update, &clock));
        assert!(!m2.first_report(&update, &clock));
        // The next update of the same service is news again.
        assert!(m2.first_report(&service_update(start + 6_000_000_000), &clock));
        // A replay from before the run (a manager catching up after its restart) is not.
        assert!(!m2.first_report(&service_update(start - 1), &clock));
        // Node events come from the control poll; container events are each node's own.
        let node = EventMessage {
            typ: Some(EventMessageTypeEnum::NODE),
            ..Default::default()
        };
        let container = EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            ..Default::default()
        };
        assert!(!m1.first_report(&node, &clock));
        assert!(m1.first_report(&container, &clock));
        assert!(m2.first_report(&container, &clock));
    }
}
