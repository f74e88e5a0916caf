//! Watchers for a cluster: one event stream per node (container events are local to a
//! node), health logs per node, and a control-plane poll through whichever manager answers:
//! node states, availability and the leader, the service's tasks and update state, and spans
//! where no manager answers ("control plane unavailable"), which are neither crashes nor
//! request failures.

use super::Cluster;
use crate::clock::Clock;
use crate::driver::DriverError;
use crate::driver::lab::LabHandle;
use crate::driver::watch::NodeStream;
use crate::event::{Event, EventSink, NodeState, What};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CONTROL_POLL: Duration = Duration::from_secs(1);

/// What the control poll remembers between rounds, to report only changes.
#[derive(Default)]
struct Seen {
    nodes: HashMap<String, NodeState>,
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
        self.watch_services(lab.watched_services(), clock, events, cancel)
    }

    /// [`Cluster::watch`] for these services (a stack's): every node's events and health
    /// logs, the control plane through whichever manager answers.
    pub fn watch_services(
        &self,
        services: Vec<String>,
        clock: Clock,
        events: EventSink,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
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
                        let _ = events.send(Event::new(
                            clock.now(),
                            What::ControlPlaneAvailable {
                                after: clock.now().saturating_sub(since),
                            },
                        ));
                    }
                    for e in new {
                        let _ = events.send(e);
                    }
                }
                Err(e) => {
                    if unavailable.is_none() {
                        unavailable = Some(asked);
                        let _ = events.send(Event::new(
                            asked,
                            What::ControlPlaneUnavailable {
                                reason: e.to_string(),
                            },
                        ));
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
            let state = node_state(&hostname, &n);
            if seen.nodes.get(&hostname) != Some(&state) {
                seen.nodes.insert(hostname, state.clone());
                out.push(Event::new(clock.now(), What::Node(state)));
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

/// A node as the managers list it, named by its hostname (the lab's node name).
pub(crate) fn node_state(hostname: &str, n: &bollard::models::Node) -> NodeState {
    let spec = n.spec.clone().unwrap_or_default();
    let or_unknown = |s: Option<String>| s.unwrap_or_else(|| "unknown".into());
    NodeState {
        node: hostname.to_string(),
        id: n.id.clone().unwrap_or_default().chars().take(12).collect(),
        state: or_unknown(
            n.status
                .as_ref()
                .and_then(|s| s.state)
                .map(|s| s.to_string()),
        ),
        availability: or_unknown(spec.availability.map(|a| a.to_string())),
        role: or_unknown(spec.role.map(|r| r.to_string())),
        leader: n.manager_status.as_ref().and_then(|m| m.leader) == Some(true),
    }
}
