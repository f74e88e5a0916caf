//! The `swarm-local` lab: a single-node Swarm on the local engine, an attachable overlay
//! network, the service under test and its edge. `provision` returns only once the service has
//! converged and the edge answers 200, so load never starts against a half-built lab.

use super::{Driver, DriverError, LABEL_CREATED_SWARM, LABEL_MANAGED, LABEL_RUN, edge, spec};
use crate::clock::Clock;
use crate::event::{Event, EventSink};
use crate::scenario::{Edge, EdgeKind, EdgeMode, Lab, Plan, Service};
use bollard::models::{LocalNodeState, NetworkCreateRequest, SwarmInitRequest};
use bollard::query_parameters::{InspectServiceOptions, UpdateNodeOptionsBuilder};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a fresh lab may take to converge (image already local, a few replicas).
const PROVISION_TIMEOUT: Duration = Duration::from_secs(120);
/// What `provision` created; the swarm actions and watchers work on it.
#[derive(Debug, Clone)]
pub struct LabHandle {
    /// The service as the plan describes it (a `deploy` step after `remove` recreates it).
    pub service: Service,
    pub edge: Edge,
    /// The attachable overlay network of this run.
    pub network: String,
    /// Where the load should go: the edge's (or the service's own) published address.
    pub target: SocketAddr,
    /// Name of the edge container (`mode = container`).
    pub edge_container: Option<String>,
    /// Name of the edge's global service (`mode = global-service`).
    pub edge_service: Option<String>,
    /// How the service itself publishes its port, if it does (edge none / ingress).
    pub(crate) publish: Option<(u16, EdgeKind)>,
}

impl LabHandle {
    /// The Swarm services whose events and tasks the watchers follow: the service and the
    /// edge's global service, if it has one.
    pub(crate) fn watched_services(&self) -> Vec<String> {
        std::iter::once(self.service.name.clone())
            .chain(self.edge_service.clone())
            .collect()
    }
}

impl Driver {
    /// Builds the lab the plan asks for (images must already be present: `ensure_images`).
    /// Leftovers of an earlier run with the same names are removed first; objects with those
    /// names that rollcheck did not label are an error, and nothing is removed then.
    pub async fn provision(
        &self,
        plan: &Plan,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<LabHandle, DriverError> {
        // Which edge fits which lab, and how many replicas a host-mode port takes, are the
        // scenario's rules (scenario/edge.rs): `check` refuses them with their line.
        let setup = match plan.lab() {
            Some(s) if s.lab == Lab::SwarmLocal => s,
            Some(_) => {
                return Err(DriverError::Unsupported {
                    what: "a swarm-cluster lab through Driver::provision (use Cluster::provision)"
                        .into(),
                });
            }
            None => {
                return Err(DriverError::Unsupported {
                    what: "provisioning without a [lab]".into(),
                });
            }
        };
        let (service, edge) = (setup.service.clone(), setup.edge.clone());
        // Fail before creating anything when the edge cannot work on this machine.
        if edge.kind == EdgeKind::Ingress
            && let Some(evidence) = no_ipvs_evidence()
        {
            return Err(DriverError::NoIpvs { evidence });
        }
        let started = Instant::now();
        let say = |kind: &str, detail: String| {
            let _ = events.send(Event::note(clock.now(), kind, "lab", detail));
        };

        if self.ensure_swarm().await? {
            say(
                "swarm_init",
                "rollcheck initialised a single-node swarm on 127.0.0.1".into(),
            );
        }
        let edge_mode = (edge.kind == EdgeKind::Nginx).then_some(edge.mode);
        let edge_container =
            (edge_mode == Some(EdgeMode::Container)).then(|| edge::container_name(&service.name));
        let edge_service =
            (edge_mode == Some(EdgeMode::GlobalService)).then(|| edge::service_name(&service.name));
        let replaced = self
            .replace_leftovers(
                &service.name,
                edge_container.as_deref(),
                edge_service.as_deref(),
            )
            .await?;
        for run in replaced {
            say(
                "lab_replaced",
                format!("removed the leftover lab of run {run}"),
            );
        }

        let network = network_name(self.run_id());
        let request = NetworkCreateRequest {
            name: network.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(self.labels("network")),
            ..Default::default()
        };
        self.call("create network", self.docker.create_network(request))
            .await?;

        let publish = matches!(edge.kind, EdgeKind::None | EdgeKind::Ingress)
            .then_some((edge.publish.port(), edge.kind));
        let spec = spec::service_spec(&service, &network, self.labels("service"), publish);
        self.call("create service", self.docker.create_service(spec, None))
            .await?;
        let lab = LabHandle {
            target: edge.publish,
            service,
            edge,
            network,
            edge_container,
            edge_service,
            publish,
        };
        say("service_created", lab.service.name.clone());

        if lab.edge.kind == EdgeKind::Nginx {
            let e = &lab.edge;
            let conf = edge::nginx_conf(&lab.service, e, plan.load.timeout);
            if let Some(name) = &lab.edge_container {
                let body = edge::container_body(e, &lab.network, &conf, self.labels("edge"));
                self.create_and_start("edge container", name, body).await?;
            }
            if lab.edge_service.is_some() {
                let spec = edge::global_service_spec(
                    &lab.service,
                    e,
                    &lab.network,
                    &conf,
                    self.labels("edge"),
                );
                self.call(
                    "create edge service",
                    self.docker.create_service(spec, None),
                )
                .await?;
            }
        }

        let converged = self
            .wait_converged(&lab.service.name, PROVISION_TIMEOUT, None)
            .await?;
        say("service_converged", converged.summary());
        if let Some(name) = &lab.edge_service {
            self.wait_converged(name, PROVISION_TIMEOUT, None).await?;
        }
        crate::ready::wait(&plan.readiness(), &plan.load).await?;
        say("lab_ready", format!("took {:.1?}", started.elapsed()));
        Ok(lab)
    }

    /// Makes the engine a Swarm manager. Returns true when rollcheck initialised the swarm
    /// (and marked the node so `lab down` knows it may leave it again).
    pub(crate) async fn ensure_swarm(&self) -> Result<bool, DriverError> {
        let info = self.call("info", self.docker.info()).await?;
        let swarm = info.swarm.unwrap_or_default();
        match swarm.local_node_state {
            Some(LocalNodeState::ACTIVE) if swarm.control_available == Some(true) => {
                return Ok(false);
            }
            Some(LocalNodeState::ACTIVE) => {
                return Err(DriverError::Unsupported {
                    what: "a swarm-local lab on a worker node (run it on a manager)".into(),
                });
            }
            Some(LocalNodeState::INACTIVE) | None => {}
            Some(other) => {
                return Err(DriverError::Unsupported {
                    what: format!(
                        "a swarm in state {other:?} (fix it with `docker swarm leave --force` or unlock it)"
                    ),
                });
            }
        }
        let request = SwarmInitRequest {
            listen_addr: Some("127.0.0.1:2377".into()),
            advertise_addr: Some("127.0.0.1".into()),
            ..Default::default()
        };
        let node_id = self
            .call("swarm init", self.docker.init_swarm(request))
            .await?;
        let node = self
            .call("inspect node", self.docker.inspect_node(&node_id))
            .await?;
        let mut spec = node.spec.unwrap_or_default();
        spec.labels
            .get_or_insert_with(HashMap::new)
            .insert(LABEL_CREATED_SWARM.into(), "true".into());
        let version = node.version.and_then(|v| v.index).unwrap_or(0);
        let opts = UpdateNodeOptionsBuilder::default()
            .version(version as i64)
            .build();
        self.call("label node", self.docker.update_node(&node_id, spec, opts))
            .await?;
        Ok(true)
    }

    /// Removes the labs of earlier runs that used the same names. Checks every name first,
    /// so an unlabelled object stops provisioning before anything is removed.
    pub(crate) async fn replace_leftovers(
        &self,
        service: &str,
        edge_container: Option<&str>,
        edge_service: Option<&str>,
    ) -> Result<Vec<String>, DriverError> {
        let mut runs: Vec<String> = Vec::new();
        let mut note = |kind: &'static str, name: &str, labels: Option<HashMap<String, String>>| {
            leftover_of(kind, name, labels, &mut runs)
        };
        let service_names = [
            Some(service),
            edge_service,
            Some(&edge::service_name(service)),
        ];
        for name in service_names.into_iter().flatten() {
            match self
                .call(
                    "inspect service",
                    self.docker
                        .inspect_service(name, None::<InspectServiceOptions>),
                )
                .await
            {
                Ok(s) => note("service", name, s.spec.and_then(|s| s.labels))?,
                Err(e) if super::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        for name in [edge_container, Some(&edge::container_name(service))]
            .into_iter()
            .flatten()
        {
            match self.inspect_container(name).await {
                Ok(c) => note("container", name, c.config.and_then(|c| c.labels))?,
                Err(e) if super::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        for run in &runs {
            self.teardown_run(run).await?;
        }
        Ok(runs)
    }
}

/// An object named `name` found where this run will create one: rollcheck's (its run goes
/// into `runs`, to be torn down), or someone else's ([`DriverError::Foreign`]).
pub(crate) fn leftover_of(
    kind: &'static str,
    name: &str,
    labels: Option<HashMap<String, String>>,
    runs: &mut Vec<String>,
) -> Result<(), DriverError> {
    let labels = labels.unwrap_or_default();
    if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true") {
        return Err(DriverError::Foreign {
            kind,
            name: name.to_string(),
        });
    }
    if let Some(run) = labels.get(LABEL_RUN)
        && !runs.contains(run)
    {
        runs.push(run.clone());
    }
    Ok(())
}

/// What every run's overlay network is named with, before its run id.
const RUN_NETWORK_PREFIX: &str = "rollcheck-";

/// Whether a network named `name` may be a run's (see [`network_name`]). The name alone does
/// not tell: the host's lab bridge `rollcheck-lab` shares the prefix, so check the driver too.
pub(crate) fn is_run_network(name: &str) -> bool {
    name.starts_with(RUN_NETWORK_PREFIX)
}

/// Overlay network of a run; Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn network_name(run_id: &str) -> String {
    let safe: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{RUN_NETWORK_PREFIX}{safe}")
}

/// `Some(reason)` when the kernel has no IPVS, which the ingress routing mesh and VIPs need.
pub fn no_ipvs_evidence() -> Option<String> {
    let paths = ["/proc/net/ip_vs", "/sys/module/ip_vs"];
    if paths.iter().any(|p| std::path::Path::new(p).exists()) {
        None
    } else {
        Some(format!("neither {} nor {} exists", paths[0], paths[1]))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn network_names_are_valid() {
        assert_eq!(
            super::network_name("20250101T000000Z-roll ing"),
            "rollcheck-20250101T000000Z-roll-ing"
        );
        assert!(super::is_run_network(&super::network_name("x")));
        assert!(!super::is_run_network("ingress"));
    }
}
