//! The `docker` lab: plain containers on one engine and rollcheck's nginx in front of them,
//! with no orchestrator (never a swarm). Containers publish their port on 127.0.0.1 only; the
//! edge runs on the host's network, so it proxies to `127.0.0.1:<port>` exactly as a
//! host's own nginx does in the hot deploys this lab reproduces. The upstream switch itself
//! is in [`super::upstream`].

use super::spec::health_config;
use super::{Driver, DriverError};
use crate::clock::Clock;
use crate::event::{Event, EventSink};
use crate::poll::{self, Attempt};
use crate::scenario::{Container, DockerSetup, Plan};
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HealthStatusEnum, HostConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{KillContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The edge container of a `docker` lab (one lab per engine at a time: the lab lock).
pub use crate::scenario::containers::EDGE_CONTAINER;
/// How long the `[[container]]`s may take to become healthy before the load starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// What a `docker` lab built: every container the run may start, by name (the upstream is
/// rendered from their ports), and the edge.
#[derive(Debug, Clone)]
pub struct DockerHandle {
    pub containers: BTreeMap<String, Container>,
    pub edge: String,
}

impl Driver {
    /// Starts the `[[container]]`s and the edge, and returns once the load target is ready.
    /// Every port the run will publish is checked free first, so a port taken by something
    /// else stops the run before anything is created, naming its holder.
    pub async fn provision_docker(
        &self,
        plan: &Plan,
        setup: &DockerSetup,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<DockerHandle, DriverError> {
        let started = Instant::now();
        let say = |kind: &str, detail: String| {
            let _ = events.send(Event::note(clock.now(), kind, "lab", detail));
        };
        let all = setup.all_containers(&plan.steps);
        let names: Vec<&str> = all
            .iter()
            .map(|c| c.name.as_str())
            .chain([EDGE_CONTAINER])
            .collect();
        for run in self.replace_leftover_containers(&names).await? {
            say(
                "lab_replaced",
                format!("removed the leftover lab of run {run}"),
            );
        }
        let ports = all
            .iter()
            .map(|c| (c.port, c.name.as_str()))
            .chain([(setup.edge.publish.port(), EDGE_CONTAINER)]);
        for (port, whose) in ports {
            self.ensure_port_free(port, whose).await?;
        }
        for c in &setup.containers {
            self.container_run(c).await?;
            say("container_started", describe(c));
        }
        let upstream: Vec<&Container> = setup
            .upstream
            .iter()
            .filter_map(|n| all.iter().find(|c| &c.name == n).copied())
            .collect();
        let body = super::upstream::edge_body(
            &setup.edge,
            &upstream,
            plan.load.timeout,
            self.labels("edge"),
        );
        self.create_and_start("edge container", EDGE_CONTAINER, body)
            .await?;
        say(
            "edge_started",
            format!(
                "nginx on {} in front of {}",
                setup.edge.publish,
                setup.upstream.join(", ")
            ),
        );
        for c in setup.containers.iter().filter(|c| c.healthcheck.is_some()) {
            self.container_wait_healthy(&c.name, START_TIMEOUT).await?;
        }
        crate::ready::wait(&plan.readiness(), &plan.load).await?;
        say("lab_ready", format!("took {:.1?}", started.elapsed()));
        Ok(DockerHandle {
            containers: all
                .into_iter()
                .map(|c| (c.name.clone(), c.clone()))
                .collect(),
            edge: EDGE_CONTAINER.to_string(),
        })
    }

    /// Containers of earlier runs with these names are removed (with the rest of their run);
    /// one rollcheck did not label is an error, and nothing is removed then.
    async fn replace_leftover_containers(
        &self,
        names: &[&str],
    ) -> Result<Vec<String>, DriverError> {
        let mut runs: Vec<String> = Vec::new();
        for name in names {
            match self.inspect_container(name).await {
                Ok(c) => {
                    let labels = c.config.and_then(|c| c.labels);
                    super::lab::leftover_of("container", name, labels, &mut runs)?;
                }
                Err(e) if super::is_not_found(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        for run in &runs {
            self.teardown_run(run).await?;
        }
        Ok(runs)
    }

    /// Binds `127.0.0.1:port` for a moment; taken → who holds it, if a container does.
    async fn ensure_port_free(&self, port: u16, whose: &str) -> Result<(), DriverError> {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        let all = self
            .call(
                "list containers",
                self.docker.list_containers(Some(
                    bollard::query_parameters::ListContainersOptions::default(),
                )),
            )
            .await?;
        let holder = all
            .iter()
            .find(|c| {
                c.ports
                    .iter()
                    .flatten()
                    .any(|p| p.public_port == Some(port))
            })
            .and_then(|c| c.names.as_ref()?.first().cloned())
            .map(|n| format!("container {}", n.trim_start_matches('/')))
            .unwrap_or_else(|| {
                format!("a process on this machine (`ss -ltnp 'sport = :{port}'` names it)")
            });
        Err(DriverError::PortTaken {
            port,
            whose: whose.to_string(),
            holder,
        })
    }

    /// Creates and starts `c`, its port published on 127.0.0.1 only.
    pub(crate) async fn container_run(&self, c: &Container) -> Result<String, DriverError> {
        let inside = format!("{}/tcp", c.container_port);
        let mut env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !c.env.contains_key("TASK") {
            // The test service names the task that answered: the container's name here.
            env.push(format!("TASK={}", c.name));
        }
        let body = ContainerCreateBody {
            image: Some(c.image.clone()),
            hostname: Some(c.name.clone()),
            env: Some(env),
            labels: Some(self.labels("container")),
            exposed_ports: Some(vec![inside.clone()]),
            healthcheck: c.healthcheck.as_ref().map(health_config),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    inside,
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(c.port.to_string()),
                    }]),
                )])),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_and_start(&format!("container {}", c.name), &c.name, body)
            .await?;
        Ok(format!("started {}", describe(c)))
    }

    /// Until the container's HEALTHCHECK says healthy; an exited container, or one without
    /// a HEALTHCHECK, fails at once.
    pub(crate) async fn container_wait_healthy(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<String, DriverError> {
        let started = Instant::now();
        let probe = || async {
            let c = match self.inspect_container(name).await {
                Ok(c) => c,
                Err(e) => return Attempt::Failed(e),
            };
            let state = c.state.unwrap_or_default();
            if state.running != Some(true) {
                return Attempt::Failed(DriverError::Container(format!(
                    "container {name} is not running ({}, exit code {})",
                    state.status.map(|s| s.to_string()).unwrap_or_default(),
                    state.exit_code.unwrap_or_default()
                )));
            }
            match state.health.and_then(|h| h.status) {
                Some(HealthStatusEnum::HEALTHY) => Attempt::Ready(()),
                None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => {
                    Attempt::Failed(DriverError::Container(format!(
                        "container {name} has no HEALTHCHECK: give it a healthcheck to wait for"
                    )))
                }
                Some(other) => Attempt::Pending(DriverError::Container(format!(
                    "container {name} is not healthy within {timeout:?} (still {other}); see `docker inspect {name}`"
                ))),
            }
        };
        poll::until(timeout, POLL, probe).await?;
        Ok(format!(
            "{name} healthy after {:.1}s",
            started.elapsed().as_secs_f64()
        ))
    }

    /// `signal`, then SIGKILL when the container still runs after `grace`.
    pub(crate) async fn container_stop(
        &self,
        name: &str,
        signal: &str,
        grace: Duration,
    ) -> Result<String, DriverError> {
        let started = Instant::now();
        self.container_kill(name, signal).await?;
        let exited = || async {
            match self.inspect_container(name).await {
                Ok(c) => {
                    let state = c.state.unwrap_or_default();
                    match state.status {
                        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                            Attempt::Ready(state.exit_code.unwrap_or_default())
                        }
                        _ => Attempt::Pending(None),
                    }
                }
                Err(e) => Attempt::Failed(Some(e)),
            }
        };
        match poll::until(grace, POLL, exited).await {
            Ok(code) => Ok(format!(
                "{name} exited with code {code} {:.1}s after {signal}",
                started.elapsed().as_secs_f64()
            )),
            Err(Some(e)) => Err(e),
            Err(None) => {
                self.container_kill(name, "SIGKILL").await?;
                Ok(format!(
                    "{name} still ran {:.1}s after {signal}: killed (SIGKILL)",
                    grace.as_secs_f64()
                ))
            }
        }
    }

    pub(crate) async fn container_kill(
        &self,
        name: &str,
        signal: &str,
    ) -> Result<String, DriverError> {
        let opts = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.call(
            format!("kill container {name}"),
            self.docker.kill_container(name, Some(opts)),
        )
        .await?;
        Ok(format!("{signal} sent to {name}"))
    }

    /// Removes a stopped container (a running one is an error: stop it first, as `docker rm`).
    pub(crate) async fn container_rm(&self, name: &str) -> Result<String, DriverError> {
        let opts = RemoveContainerOptionsBuilder::default().v(true).build();
        self.call(
            format!("remove container {name}"),
            self.docker.remove_container(name, Some(opts)),
        )
        .await?;
        Ok(format!("{name} removed"))
    }
}

/// `app-v2 (rollcheck/testsvc:2) on 127.0.0.1:9092`.
fn describe(c: &Container) -> String {
    format!("{} ({}) on 127.0.0.1:{}", c.name, c.image, c.port)
}
