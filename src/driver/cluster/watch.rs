//! Watchers for a cluster: one event stream per node (container events are local to a
//! node), health logs per node, and a control-plane poll through whichever manager answers:
//! node states, availability and the leader, the service's tasks and update state, and spans
//! where no manager answers ("control plane unavailable"), which are neither crashes nor
//! request failures.

use super::Cluster;
use crate::clock::Clock;
use crate::driver::DriverError;
use crate::driver::lab::LabHandle;
use crate::driver::watch::{NodeStream, harness_on};
use crate::event::{Event, EventSink, EventSource};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CONTROL_POLL: Duration = Duration::from_secs(1);

/// What the control poll remembers between rounds, to report only changes.
#[derive(Default)]
struct Seen {
    nodes: HashMap<String, String>,
    tasks: HashMap<String, (String, String)>,
    updates: HashMap<String, String>,
}

impl Cluster {
    pub fn watch(
        &self,
        lab: &LabHandle,
        clock: Clock,
        events: EventSink,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let services = lab.watched_services();
        let cluster = self.clone();
        tokio::spawn(async move {
            let services_seen = Mutex::new(HashSet::new());
            let streams = cluster.nodes.iter().map(|n| {
                let name = n.name.to_string();
                let (services, events, cancel) = (&services, &events, &cancel);
                let services_seen = &services_seen;
                async move {
                    let node = NodeStream {
                        name: &name,
                        services_seen,
                    };
                    n.driver
                        .stream_events(services, clock, events, cancel, Some(node))
                        .await
                }
            });
            let health = cluster
                .nodes
                .iter()
                .map(|n| n.driver.poll_health_logs(clock, &events, &cancel));
            tokio::join!(
                futures_util::future::join_all(streams),
                futures_util::future::join_all(health),
                cluster.poll_control(&services, clock, &events, &cancel),
            );
        })
    }

    async fn poll_control(
        &self,
        services: &[String],
        clock: Clock,
        events: &EventSink,
        cancel: &CancellationToken,
    ) {
        let mut seen = Seen::default();
        let mut unavailable: Option<Duration> = None;
        while !cancel.is_cancelled() {
            let asked = clock.now();
            match self.control_once(services, &clock, &mut seen).await {
                Ok(new) => {
                    if let Some(since) = unavailable.take() {
                        let _ = events.send(harness_on(
                            &clock,
                            "control_plane_available",
                            "swarm",
                            format!(
                                "managers answer again after {:.1}s",
                                clock.now().saturating_sub(since).as_secs_f64()
                            ),
                        ));
                    }
                    for e in new {
                        let _ = events.send(e);
                    }
                }
                Err(e) => {
                    if unavailable.is_none() {
                        unavailable = Some(asked);
                        let _ = events.send(Event {
                            at: asked,
                            ..harness_on(
                                &clock,
                                "control_plane_unavailable",
                                "swarm",
                                e.to_string(),
                            )
                        });
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(CONTROL_POLL) => {}
            }
        }
    }

    /// One round through the first manager that lists the nodes. `Err` when none does.
    async fn control_once(
        &self,
        services: &[String],
        clock: &Clock,
        seen: &mut Seen,
    ) -> Result<Vec<Event>, DriverError> {
        let (nodes, manager) = self
            .first_answer()
            .await
            .map(|(nodes, m)| (nodes, &m.driver))?;
        let mut out = Vec::new();
        for n in nodes {
            let Some(hostname) = n.description.as_ref().and_then(|d| d.hostname.clone()) else {
                continue;
            };
            let state = node_state(&n);
            if seen.nodes.get(&hostname) != Some(&state) {
                seen.nodes.insert(hostname.clone(), state.clone());
                out.push(Event {
                    at: clock.now(),
                    source: EventSource::Node,
                    kind: "node_state".into(),
                    subject: hostname,
                    detail: state,
                });
            }
        }
        for name in services {
            // A failed task poll (removed service, a slow manager) costs only task detail.
            if let Ok(new) = manager
                .poll_once(name, clock, &mut seen.tasks, &mut seen.updates)
                .await
            {
                out.extend(new);
            }
        }
        Ok(out)
    }
}

/// `ready active worker id 1a2b3c4d5e6f`, `ready drain manager leader id ...`: the words the
/// analysis reads back (state, availability, role, leader, id).
pub(crate) fn node_state(n: &bollard::models::Node) -> String {
    let state = n
        .status
        .as_ref()
        .and_then(|s| s.state)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let spec = n.spec.clone().unwrap_or_default();
    let availability = spec
        .availability
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    let role = spec
        .role
        .map(|r| r.to_string())
        .unwrap_or_else(|| "unknown".into());
    let leader = if n.manager_status.as_ref().and_then(|m| m.leader) == Some(true) {
        " leader"
    } else {
        ""
    };
    let id: String = n.id.clone().unwrap_or_default().chars().take(12).collect();
    format!("{state} {availability} {role}{leader} id {id}")
}
