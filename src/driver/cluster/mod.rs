//! The `swarm-cluster` lab: managers and workers as node containers on the host engine, each
//! running its own dockerd (never `--privileged`: the explicit capability set of DESIGN.md),
//! with `/var/lib/docker` on a volume and its API socket on a host directory, so rollcheck
//! talks to every node through bollard over a unix socket and no node listens on TCP.
//!
//! The lab outlives runs: its objects carry [`LABEL_LAB`], not a run id, and a run reuses a lab
//! that is already up. What a run creates inside the cluster (overlay network, the service,
//! the in-cluster edge) and on the host (the outer edge) carries the run id as usual.
//!
//! The data path without IPVS: a global nginx service on the nodes publishes
//! [`NODE_EDGE_PORT`] in host mode and proxies to `tasks.<service>` (dnsrr); HAProxy (or nginx)
//! on the host, on the lab network, health-checks those node ports and listens on loopback.

pub mod agents;
mod faults;
mod membership;
mod net;
mod nodes;
mod provision;
mod stack;
mod watch;

use super::edge::{Probe, haproxy_conf, nginx_upstream_conf};
use crate::poll::{self, Attempt};
use membership::is_ready;
use net::{free_slash24, host_routes, subnets_of};
use nodes::{fixed_ip, mem_available_mb, memory_fits};

use super::images::{HAPROXY_IMAGE, NGINX_IMAGE, NODE_IMAGE};
use super::lab::{LabHandle, is_run_network, network_name};
use super::{Driver, DriverError, LABEL_MANAGED, LABEL_ROLE, call_within, edge, spec};
use crate::clock::Clock;
use crate::event::{Event, EventSink};
use crate::scenario::{Edge, EdgeKind, NodeName, NodeOp, NodeRole, Plan};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig,
    HostConfigCgroupnsModeEnum, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NodeSpecAvailabilityEnum, NodeState, RestartPolicy,
    RestartPolicyNameEnum, SwarmInitRequest, SwarmJoinRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{
    KillContainerOptions, ListContainersOptions, ListNetworksOptions, ListNodesOptions,
    LogsOptions, RemoveContainerOptionsBuilder, RemoveVolumeOptions, StopContainerOptions,
    UpdateNodeOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Marks the lab's own objects (node containers, their volumes, the lab network).
pub const LABEL_LAB: &str = "rollcheck.lab";
/// On a node container: its scenario name (`manager-1`).
const LABEL_NODE: &str = "rollcheck.node";
/// On the lab network: whether managers were drained.
const LABEL_DRAIN: &str = "rollcheck.lab.drain-managers";
const LAB_NETWORK: &str = "rollcheck-lab";
/// Second octet of the /16 the runs' overlay networks take their /24s from (10.214.x.0/24).
const OVERLAY_SUBNETS: u8 = 214;
/// How long a run waits for the nodes to release an earlier run's overlay network.
const OVERLAY_RELEASE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end of a run waits for the managers to answer again after restoring the lab
/// (after a quorum loss they took 0.1–43 s here).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);
/// Host directory holding one directory per node with that node's API socket.
const SOCKET_ROOT: &str = "/run/rollcheck-lab";
/// The port the in-cluster edge publishes (host mode) on every node that runs tasks.
pub const NODE_EDGE_PORT: u16 = 8000;
/// What one node costs in memory (dockerd, containerd, a few small tasks), for the check
/// before anything starts.
const NODE_MEMORY_MB: u64 = 400;
/// Kept free for the host engine, the load and the report.
const HOST_RESERVE_MB: u64 = 1024;
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
const SWARM_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// A manager call in the control loop; without quorum they block ~16 s (DESIGN.md).
pub(crate) const MANAGER_CALL: Duration = Duration::from_secs(5);
/// Seconds a stopped node container gets before SIGKILL; dockerd stops its own containers
/// first (10 s each by default).
const NODE_STOP_SECS: i32 = 30;
/// Capabilities a node's dockerd needs (DESIGN.md: `--privileged` fails here).
const CAPS: [&str; 14] = [
    "SYS_ADMIN",
    "NET_ADMIN",
    "NET_RAW",
    "SYS_PTRACE",
    "SYS_MODULE",
    "MKNOD",
    "SETFCAP",
    "SYS_CHROOT",
    "DAC_READ_SEARCH",
    "IPC_LOCK",
    "SYS_NICE",
    "LINUX_IMMUTABLE",
    "AUDIT_CONTROL",
    "SYSLOG",
];

/// How many nodes of which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub managers: u32,
    pub workers: u32,
    pub drain_managers: bool,
}

impl Shape {
    pub fn of(plan: &Plan) -> Option<Shape> {
        plan.cluster()
            .map(|(managers, workers, drain_managers)| Shape {
                managers,
                workers,
                drain_managers,
            })
    }

    fn names(&self) -> Vec<NodeName> {
        (1..=self.managers)
            .map(NodeName::manager)
            .chain((1..=self.workers).map(NodeName::worker))
            .collect()
    }

    /// Nodes that run tasks: workers, and managers unless drained.
    fn runs_tasks(&self, name: NodeName) -> bool {
        name.role == NodeRole::Worker || !self.drain_managers
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} managers + {} workers", self.managers, self.workers)?;
        if self.drain_managers {
            write!(f, " (managers drained)")?;
        }
        Ok(())
    }
}

/// One node container and the engine inside it.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub name: NodeName,
    pub container: String,
    pub ip: Ipv4Addr,
    pub driver: Driver,
}

/// A lab that is up: the host engine and every node's engine, bound to one run id.
#[derive(Debug, Clone)]
pub struct Cluster {
    host: Driver,
    pub shape: Shape,
    pub nodes: Vec<ClusterNode>,
}

/// One row of `rollcheck lab status` for a cluster (like `docker node ls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    pub container: String,
    pub address: String,
    pub role: String,
    pub status: String,
    pub availability: String,
    pub manager: String,
    pub engine: String,
}

fn container_name(node: NodeName) -> String {
    format!("rollcheck-lab-{node}")
}

fn socket_dir(node: NodeName) -> PathBuf {
    PathBuf::from(SOCKET_ROOT).join(node.to_string())
}

/// Node addresses on the lab subnet: managers from .11, workers from .51.
fn node_ip(subnet: Ipv4Addr, node: NodeName) -> Ipv4Addr {
    let base = match node.role {
        NodeRole::Manager => 10,
        NodeRole::Worker => 50,
    };
    let [a, b, c, _] = subnet.octets();
    Ipv4Addr::new(a, b, c, (base + node.index) as u8)
}

impl Cluster {
    /// The lab that is up, if any, with a driver per node bound to `host`'s run id.
    pub async fn find(host: &Driver) -> Result<Option<Cluster>, DriverError> {
        let containers = host.lab_containers().await?;
        if containers.is_empty() {
            return Ok(None);
        }
        let drain = host
            .call(
                "list networks",
                host.docker.list_networks(Some(ListNetworksOptions {
                    filters: Some(HashMap::from([(
                        "name".to_string(),
                        vec![LAB_NETWORK.to_string()],
                    )])),
                })),
            )
            .await?
            .into_iter()
            .find(|n| n.name.as_deref() == Some(LAB_NETWORK))
            .and_then(|n| n.labels)
            .is_some_and(|l| l.get(LABEL_DRAIN).map(String::as_str) == Some("true"));
        let mut nodes = Vec::new();
        for c in containers {
            let labels = c.labels.unwrap_or_default();
            let Some(name) = labels.get(LABEL_NODE).and_then(|n| NodeName::parse(n)) else {
                continue;
            };
            let ip = c
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|mut n| n.remove(LAB_NETWORK))
                .and_then(|e| e.ipam_config.and_then(|i| i.ipv4_address).or(e.ip_address))
                .and_then(|ip| ip.parse().ok())
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            let driver = host
                .connect_unix(&socket_dir(name).join("docker.sock"))
                .await?;
            nodes.push(ClusterNode {
                name,
                container: container_name(name),
                ip,
                driver,
            });
        }
        nodes.sort_by_key(|n| n.name);
        let count = |role| nodes.iter().filter(|n| n.name.role == role).count() as u32;
        let shape = Shape {
            managers: count(NodeRole::Manager),
            workers: count(NodeRole::Worker),
            drain_managers: drain,
        };
        Ok(Some(Cluster {
            host: host.clone(),
            shape,
            nodes,
        }))
    }

    /// Brings up a lab of `shape`, or reuses the one that is up when it has that shape and
    /// its swarm answers. A lab of another shape is removed first.
    pub async fn up(
        host: &Driver,
        shape: Shape,
        progress: super::images::Progress<'_>,
    ) -> Result<Cluster, DriverError> {
        Cluster::check_memory(host, shape).await?;
        if let Some(existing) = Cluster::find(host).await? {
            if existing.shape == shape && existing.healthy().await {
                progress(&format!("reusing the lab that is up ({shape})"));
                return Ok(existing);
            }
            progress(&format!(
                "replacing the lab that is up ({}) with {shape}",
                existing.shape
            ));
            Cluster::down(host).await?;
        }
        let started = Instant::now();
        host.ensure_node_image(progress).await?;
        let subnet = host.lab_network(shape).await?;
        progress(&format!("lab network {LAB_NETWORK} on {subnet}/24"));

        // Start every node first, then wait for each engine: their dockerds start together.
        for name in shape.names() {
            host.create_node(name, node_ip(subnet, name)).await?;
        }
        let mut nodes = Vec::new();
        for name in shape.names() {
            nodes.push(ClusterNode {
                name,
                container: container_name(name),
                ip: node_ip(subnet, name),
                driver: host.wait_node_engine(name).await?,
            });
        }
        progress(&format!(
            "{} node engines up after {:.1?}",
            nodes.len(),
            started.elapsed()
        ));
        let cluster = Cluster {
            host: host.clone(),
            shape,
            nodes,
        };
        cluster.form_swarm().await?;
        progress(&format!(
            "swarm of {shape} formed after {:.1?}",
            started.elapsed()
        ));
        Ok(cluster)
    }

    /// Fails with the estimate when a lab of `shape` would not fit in memory, counting the
    /// memory of a lab that is up as free (it is replaced, or reused when it has this shape).
    /// Checked before anything is created or removed.
    pub async fn check_memory(host: &Driver, shape: Shape) -> Result<(), DriverError> {
        let Some(available) = mem_available_mb() else {
            return Ok(());
        };
        let up = host.lab_containers().await?.len() as u64;
        memory_fits(
            u64::from(shape.managers + shape.workers),
            available + up * NODE_MEMORY_MB,
        )
    }

    /// Every node container is running and a manager lists every node as ready.
    async fn healthy(&self) -> bool {
        for n in &self.nodes {
            if !n.driver.ping_within(Duration::from_secs(3)).await {
                return false;
            }
        }
        match self.list_nodes().await {
            Ok(list) => list.len() == self.nodes.len() && list.iter().all(is_ready),
            Err(_) => false,
        }
    }

    /// Waits until a manager answers and lists every node of the lab as ready; returns that
    /// list. The last reason (no manager, or how many are ready) when `timeout` runs out.
    async fn wait_all_ready(
        &self,
        timeout: Duration,
    ) -> Result<Vec<bollard::models::Node>, DriverError> {
        let all_ready = || async {
            match self.list_nodes().await {
                Ok(list) if list.len() == self.nodes.len() && list.iter().all(is_ready) => {
                    Attempt::Ready(list)
                }
                Ok(list) => Attempt::Pending(DriverError::ClusterNotReady {
                    what: format!(
                        "{} of {} nodes ready after {timeout:?}",
                        list.iter().filter(|n| is_ready(n)).count(),
                        self.nodes.len()
                    ),
                }),
                Err(e) => Attempt::Pending(e),
            }
        };
        poll::until(timeout, Duration::from_millis(500), all_ready).await
    }

    pub fn node(&self, name: NodeName) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    fn managers(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes
            .iter()
            .filter(|n| n.name.role == NodeRole::Manager)
    }

    /// Removes the lab: node containers, their volumes, the lab network, the socket
    /// directories. Leaves images.
    pub async fn down(host: &Driver) -> Result<usize, DriverError> {
        let containers = host.lab_containers().await?;
        let count = containers.len();
        for c in containers {
            let Some(id) = c.id else { continue };
            let opts = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            match host
                .call("remove node", host.docker.remove_container(&id, Some(opts)))
                .await
            {
                Ok(()) => {}
                Err(e) if super::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let volumes = host
            .call(
                "list volumes",
                host.docker
                    .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
                        filters: Some(HashMap::from([(
                            "label".to_string(),
                            vec![format!("{LABEL_LAB}=cluster")],
                        )])),
                    })),
            )
            .await?
            .volumes
            .unwrap_or_default();
        for v in volumes {
            host.call(
                "remove volume",
                host.docker
                    .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true })),
            )
            .await?;
        }
        match host
            .call("remove network", host.docker.remove_network(LAB_NETWORK))
            .await
        {
            Ok(()) => {}
            Err(e) if super::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        let _ = std::fs::remove_dir_all(SOCKET_ROOT);
        Ok(count)
    }

    /// Rows like `docker node ls`, plus the node container and its engine version.
    pub async fn status(&self) -> Vec<NodeRow> {
        let swarm = self.list_nodes().await.unwrap_or_default();
        let mut rows = Vec::new();
        for n in &self.nodes {
            let hostname = n.name.to_string();
            let seen = swarm.iter().find(|s| {
                s.description.as_ref().and_then(|d| d.hostname.as_deref())
                    == Some(hostname.as_str())
            });
            let engine =
                match call_within("version", Duration::from_secs(3), n.driver.docker.version())
                    .await
                {
                    Ok(v) => v.version.unwrap_or_default(),
                    Err(_) => "unreachable".into(),
                };
            let manager = seen
                .and_then(|s| s.manager_status.as_ref())
                .map(|m| {
                    if m.leader == Some(true) {
                        "Leader".to_string()
                    } else {
                        m.reachability.map(|r| r.to_string()).unwrap_or_default()
                    }
                })
                .unwrap_or_default();
            rows.push(NodeRow {
                name: hostname,
                container: n.container.clone(),
                address: n.ip.to_string(),
                role: seen
                    .and_then(|s| s.spec.as_ref())
                    .and_then(|s| s.role)
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "?".into()),
                status: seen
                    .and_then(|s| s.status.as_ref())
                    .and_then(|s| s.state)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                availability: seen
                    .and_then(|s| s.spec.as_ref())
                    .and_then(|s| s.availability)
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "?".into()),
                manager,
                engine,
            });
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::membership::manager_reason;
    use super::net::{overlaps, parse_cidr};
    use super::*;
    use crate::scenario::EdgeProtocol;

    #[test]
    fn memory_check_gives_the_estimate() {
        assert!(memory_fits(6, 6 * NODE_MEMORY_MB + HOST_RESERVE_MB).is_ok());
        let e = memory_fits(6, 3000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a lab of 6 nodes needs about 3424 MB of memory but 3000 MB is available; use fewer managers or workers"
        );
    }

    #[test]
    fn a_manager_without_quorum_is_quoted_and_a_silent_one_timed() {
        let no_leader = DriverError::Engine {
            call: "list nodes".into(),
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "rpc error: code = Unknown desc = The swarm does not have a leader."
                    .into(),
            },
        };
        assert_eq!(
            manager_reason(&no_leader),
            "The swarm does not have a leader."
        );
        let slow = DriverError::Timeout {
            call: "list nodes".into(),
            after: MANAGER_CALL,
        };
        assert_eq!(manager_reason(&slow), "no answer within 5s");
    }

    #[test]
    fn subnets_overlap_by_prefix() {
        let lab = parse_cidr("10.213.0.0/24").unwrap();
        assert!(overlaps(lab, parse_cidr("10.0.0.0/8").unwrap()));
        assert!(overlaps(lab, parse_cidr("10.213.0.128/25").unwrap()));
        assert!(!overlaps(lab, parse_cidr("10.213.1.0/24").unwrap()));
        assert!(!overlaps(lab, parse_cidr("172.17.0.0/16").unwrap()));
        assert_eq!(parse_cidr("10.1.2.3/33"), None);
    }

    #[test]
    fn a_free_subnet_skips_every_one_in_use() {
        let used =
            ["10.214.0.0/24", "10.214.1.128/25", "10.0.0.0/24"].map(|c| parse_cidr(c).unwrap());
        assert_eq!(free_slash24(214, &used), Some(Ipv4Addr::new(10, 214, 2, 0)));
        assert_eq!(
            free_slash24(214, &[parse_cidr("10.0.0.0/8").unwrap()]),
            None
        );
    }

    #[test]
    fn node_addresses_are_fixed_by_role_and_index() {
        let s = Ipv4Addr::new(10, 213, 4, 0);
        assert_eq!(
            node_ip(s, NodeName::manager(1)),
            Ipv4Addr::new(10, 213, 4, 11)
        );
        assert_eq!(
            node_ip(s, NodeName::worker(3)),
            Ipv4Addr::new(10, 213, 4, 53)
        );
    }

    #[test]
    fn haproxy_checks_every_node_and_retries_elsewhere() {
        let edge = Edge {
            kind: EdgeKind::Haproxy,
            publish: "127.0.0.1:18080".parse().unwrap(),
            mode: crate::scenario::EdgeMode::Container,
            protocol: EdgeProtocol::Http,
            retries: true,
            healthcheck: None,
            tls: None,
        };
        let backends = vec![
            ("worker-1".to_string(), "10.213.0.51:8000".parse().unwrap()),
            ("worker-2".to_string(), "10.213.0.52:8000".parse().unwrap()),
        ];
        let conf = haproxy_conf(&edge, &backends, Duration::from_secs(10), Probe::Edge);
        assert!(
            conf.contains("server worker-1 10.213.0.51:8000 check"),
            "{conf}"
        );
        assert!(
            conf.contains("server worker-2 10.213.0.52:8000 check"),
            "{conf}"
        );
        assert!(conf.contains("option httpchk GET /_edge"));
        assert!(conf.contains("option redispatch"));
        assert!(conf.contains("timeout server 15s"));
        let off = Edge {
            retries: false,
            ..edge.clone()
        };
        assert!(
            haproxy_conf(&off, &backends, Duration::from_secs(10), Probe::Edge)
                .contains("retries 0")
        );
        // A stack's own proxy is checked by connecting to its port.
        let stack = haproxy_conf(&edge, &backends, Duration::from_secs(10), Probe::Connect);
        assert!(!stack.contains("httpchk") && stack.contains("10.213.0.51:8000 check"));
    }

    #[test]
    fn shapes_say_which_nodes_run_tasks() {
        let shape = Shape {
            managers: 3,
            workers: 2,
            drain_managers: true,
        };
        assert_eq!(shape.names().len(), 5);
        assert!(!shape.runs_tasks(NodeName::manager(2)));
        assert!(shape.runs_tasks(NodeName::worker(2)));
        assert_eq!(
            shape.to_string(),
            "3 managers + 2 workers (managers drained)"
        );
    }
}
