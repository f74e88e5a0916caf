//! A `docker` lab over time, from the run's events: each container's life (running, healthy,
//! stopping, until it died) and what the edge proxied to (its upstream, switched by reloads or
//! restarts, and how long nginx's old workers lived after each reload).

use crate::event::{ContainerAction, Event, What};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerFigures {
    /// Each container's states in time order; a container's spans do not overlap.
    pub lanes: Vec<Lane>,
    /// The upstream the load met: the initial one from 0, then each switch.
    pub upstream: Vec<Upstream>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub container: String,
    /// `running` (started, not yet healthy), `healthy`, `unhealthy`, `stopping` (signalled).
    pub state: &'static str,
    pub start: Duration,
    /// `None`: still so at the end of the run.
    pub end: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub start: Duration,
    pub end: Option<Duration>,
    pub servers: Vec<String>,
    /// `reload` or `restart`; `None` for the upstream the edge started with.
    pub switch: Option<String>,
    /// After a reload: how many workers served the old upstream, and when the last one exited.
    pub old_workers: Option<u32>,
    pub old_workers_exited_after: Option<Duration>,
}

/// `initial`: the upstream the edge started with; `running`: the containers already up when
/// the run's clock started, in their state then (their own start events came before it).
pub fn analyse(
    events: &[Event],
    initial: &[String],
    running: &[(String, &'static str)],
) -> ContainerFigures {
    let mut lanes: Vec<Lane> = running
        .iter()
        .map(|(container, state)| Lane {
            container: container.clone(),
            state,
            start: Duration::ZERO,
            end: None,
        })
        .collect();
    // container → index of its open span in `lanes`
    let mut open: BTreeMap<&str, usize> = running
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (c.as_str(), i))
        .collect();
    let mut upstream = vec![Upstream {
        start: Duration::ZERO,
        end: None,
        servers: initial.to_vec(),
        switch: None,
        old_workers: None,
        old_workers_exited_after: None,
    }];
    // The engine's events can reach the collector after a step's own.
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by_key(|e| e.at);
    for e in ordered {
        match &e.what {
            What::Container { container, action } => {
                let next = match action {
                    ContainerAction::Start { .. } => Some("running"),
                    ContainerAction::HealthStatus { status } if status == "healthy" => {
                        Some("healthy")
                    }
                    ContainerAction::HealthStatus { status } if status == "unhealthy" => {
                        Some("unhealthy")
                    }
                    ContainerAction::Kill { .. } => Some("stopping"),
                    ContainerAction::Die { .. } => None,
                    _ => continue,
                };
                let current = open.get(container.as_str()).map(|&i| lanes[i].state);
                // A second signal while stopping, or a state that is already so, changes
                // nothing; a kill to a container that is not running is no stop either.
                if next.is_some()
                    && (current == next || (next == Some("stopping") && current.is_none()))
                {
                    continue;
                }
                if let Some(i) = open.remove(container.as_str()) {
                    lanes[i].end = Some(e.at);
                }
                if let Some(state) = next {
                    lanes.push(Lane {
                        container: container.clone(),
                        state,
                        start: e.at,
                        end: None,
                    });
                    open.insert(container, lanes.len() - 1);
                }
            }
            What::Upstream { servers, switch } => {
                if let Some(last) = upstream.last_mut() {
                    last.end = Some(e.at);
                }
                upstream.push(Upstream {
                    start: e.at,
                    end: None,
                    servers: servers.clone(),
                    switch: Some(switch.clone()),
                    old_workers: None,
                    old_workers_exited_after: None,
                });
            }
            What::OldWorkersExited { workers, after } => {
                // The reload these workers served before: the one `after` before this event
                // (a second reload may come before the first one's old workers are gone).
                let reload = e.at.saturating_sub(*after);
                if let Some(u) = upstream
                    .iter_mut()
                    .filter(|u| u.switch.as_deref() == Some("reload") && u.old_workers.is_none())
                    .min_by_key(|u| u.start.abs_diff(reload))
                {
                    u.old_workers = Some(*workers);
                    u.old_workers_exited_after = Some(*after);
                }
            }
            _ => {}
        }
    }
    ContainerFigures { lanes, upstream }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ms: u64, container: &str, action: ContainerAction) -> Event {
        Event::new(
            Duration::from_millis(ms),
            What::Container {
                container: container.into(),
                action,
            },
        )
    }

    #[test]
    fn lanes_and_upstream_of_a_hot_deploy() {
        let health = |s: &str| ContainerAction::HealthStatus { status: s.into() };
        let events = vec![
            c(4000, "app-v2", ContainerAction::Start { image: "2".into() }),
            c(5200, "app-v2", health("healthy")),
            Event::new(
                Duration::from_millis(5500),
                What::Upstream {
                    servers: vec!["app-v2".into()],
                    switch: "reload".into(),
                },
            ),
            Event::new(
                Duration::from_millis(6100),
                What::OldWorkersExited {
                    workers: 2,
                    after: Duration::from_millis(600),
                },
            ),
            c(
                6100,
                "app-v1",
                ContainerAction::Kill {
                    signal: "15".into(),
                },
            ),
            c(
                6150,
                "app-v1",
                ContainerAction::Kill {
                    signal: "15".into(),
                },
            ),
            c(6200, "app-v1", ContainerAction::Die { exit_code: Some(0) }),
            // A kill after it died is no stop.
            c(6300, "app-v1", ContainerAction::Kill { signal: "9".into() }),
        ];
        let f = analyse(&events, &["app-v1".into()], &[("app-v1".into(), "healthy")]);
        let lanes: Vec<(&str, &str, u128, Option<u128>)> = f
            .lanes
            .iter()
            .map(|l| {
                (
                    l.container.as_str(),
                    l.state,
                    l.start.as_millis(),
                    l.end.map(|e| e.as_millis()),
                )
            })
            .collect();
        assert_eq!(
            lanes,
            [
                ("app-v1", "healthy", 0, Some(6100)),
                ("app-v2", "running", 4000, Some(5200)),
                ("app-v2", "healthy", 5200, None),
                ("app-v1", "stopping", 6100, Some(6200)),
            ]
        );
        assert_eq!(f.upstream.len(), 2);
        assert_eq!(f.upstream[0].servers, ["app-v1"]);
        assert_eq!(f.upstream[0].end, Some(Duration::from_millis(5500)));
        assert_eq!(f.upstream[1].switch.as_deref(), Some("reload"));
        assert_eq!(f.upstream[1].old_workers, Some(2));
        assert_eq!(
            f.upstream[1].old_workers_exited_after,
            Some(Duration::from_millis(600))
        );
    }

    #[test]
    fn old_workers_are_credited_to_their_own_reload() {
        let reload = |ms: u64, to: &str| {
            Event::new(
                Duration::from_millis(ms),
                What::Upstream {
                    servers: vec![to.into()],
                    switch: "reload".into(),
                },
            )
        };
        let exited = |ms: u64, after: u64| {
            Event::new(
                Duration::from_millis(ms),
                What::OldWorkersExited {
                    workers: 2,
                    after: Duration::from_millis(after),
                },
            )
        };
        // The first reload's workers outlive the second reload.
        let events = vec![
            reload(1000, "b"),
            reload(1500, "c"),
            exited(1600, 100),
            exited(2000, 1000),
        ];
        let f = analyse(&events, &["a".into()], &[]);
        let after: Vec<Option<u128>> = f
            .upstream
            .iter()
            .map(|u| u.old_workers_exited_after.map(|d| d.as_millis()))
            .collect();
        assert_eq!(after, [None, Some(1000), Some(100)]);
    }
}
