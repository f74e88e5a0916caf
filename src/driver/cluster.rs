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

mod watch;

use super::images::{HAPROXY_IMAGE, NGINX_IMAGE, NODE_IMAGE};
use super::lab::{LabHandle, is_run_network, network_name, wait_http_stable};
use super::{Driver, DriverError, LABEL_MANAGED, LABEL_ROLE, call_within, edge, spec};
use crate::clock::Clock;
use crate::event::{Event, EventSink};
use crate::scenario::{Edge, EdgeKind, EdgeProtocol, Lab, NodeName, NodeOp, NodeRole, Plan};
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
        match plan.lab {
            Some(Lab::SwarmCluster {
                managers,
                workers,
                drain_managers,
            }) => Some(Shape {
                managers,
                workers,
                drain_managers,
            }),
            _ => None,
        }
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

impl Driver {
    /// A driver for the engine behind a unix socket (a lab node), bound to this run.
    async fn connect_unix(&self, path: &std::path::Path) -> Result<Driver, DriverError> {
        let socket = format!("unix://{}", path.display());
        let unreachable = |source| DriverError::Unreachable {
            socket: socket.clone(),
            source,
        };
        let docker = bollard::Docker::connect_with_unix(
            &socket,
            super::CALL_TIMEOUT.as_secs(),
            &bollard::ClientVersion {
                major_version: 1,
                minor_version: 41,
            },
        )
        .map_err(unreachable)?;
        Ok(Driver {
            docker,
            run_id: self.run_id.clone(),
            socket,
        })
    }

    async fn ping_within(&self, limit: Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.docker.ping()).await,
            Ok(Ok(_))
        )
    }

    fn lab_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_LAB.to_string(), "cluster".to_string()),
            (LABEL_ROLE.to_string(), "lab".to_string()),
        ])
    }

    /// The lab's node containers on the host engine, running or not.
    async fn lab_containers(&self) -> Result<Vec<bollard::models::ContainerSummary>, DriverError> {
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("{LABEL_LAB}=cluster")],
            )])),
            ..Default::default()
        };
        self.call(
            "list lab containers",
            self.docker.list_containers(Some(opts)),
        )
        .await
    }
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
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.list_nodes().await {
                Ok(list) if list.len() == self.nodes.len() && list.iter().all(is_ready) => {
                    return Ok(list);
                }
                Ok(list) => DriverError::ClusterNotReady {
                    what: format!(
                        "{} of {} nodes ready after {timeout:?}",
                        list.iter().filter(|n| is_ready(n)).count(),
                        self.nodes.len()
                    ),
                },
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits (up to [`OVERLAY_RELEASE_TIMEOUT`]) until no node holds the overlay network of
    /// an earlier run, then returns a /24 for this run's overlay that no node has a network
    /// on. The managers remove a run's network at once, but a worker keeps it until its old
    /// tasks are gone, and Swarm hands the same subnet and VXLAN id to the next network:
    /// every task placed on that worker is then rejected ("Pool overlaps with other one on
    /// this address space", or "error creating vxlan interface: file exists"), and after a
    /// few rejections Swarm stops placing the service there at all.
    async fn settle_overlays(
        &self,
        progress: super::images::Progress<'_>,
    ) -> Result<Ipv4Addr, DriverError> {
        let deadline = Instant::now() + OVERLAY_RELEASE_TIMEOUT;
        let mut said = false;
        loop {
            let mut used = Vec::new();
            let mut stale = Vec::new();
            for node in &self.nodes {
                let networks = node
                    .driver
                    .call(
                        format!("list networks on {}", node.name),
                        node.driver
                            .docker
                            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>),
                    )
                    .await?;
                used.extend(subnets_of(&networks));
                stale.extend(
                    networks
                        .iter()
                        .filter(|n| n.driver.as_deref() == Some("overlay"))
                        .filter_map(|n| n.name.as_deref())
                        .filter(|n| is_run_network(n))
                        .map(|n| format!("{} on {}", n, node.name)),
                );
            }
            if !stale.is_empty() && Instant::now() < deadline {
                if !said {
                    progress(&format!(
                        "waiting for the nodes to release earlier runs' networks ({})",
                        stale.join(", ")
                    ));
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if !stale.is_empty() {
                progress(&format!(
                    "still held after {OVERLAY_RELEASE_TIMEOUT:?}: {}; tasks placed there may be rejected",
                    stale.join(", ")
                ));
            }
            return free_slash24(OVERLAY_SUBNETS, &used).ok_or(DriverError::ClusterNotReady {
                what: format!(
                    "no free /24 in 10.{OVERLAY_SUBNETS}.0.0/16 for the run's overlay network"
                ),
            });
        }
    }

    /// Pauses the node's running containers, or unpauses its paused ones, through the node's
    /// engine; returns how many.
    async fn set_paused_inside(
        &self,
        node: &ClusterNode,
        pause: bool,
    ) -> Result<usize, DriverError> {
        let d = &node.driver;
        let opts = ListContainersOptions {
            filters: Some(HashMap::from([(
                "status".to_string(),
                vec![if pause { "running" } else { "paused" }.to_string()],
            )])),
            ..Default::default()
        };
        let list = d
            .call(
                format!("list containers on {}", node.name),
                d.docker.list_containers(Some(opts)),
            )
            .await?;
        let ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
        let calls = ids.iter().map(|id| async move {
            if pause {
                d.call("pause container", d.docker.pause_container(id))
                    .await
            } else {
                d.call("unpause container", d.docker.unpause_container(id))
                    .await
            }
        });
        for r in futures_util::future::join_all(calls).await {
            r?;
        }
        Ok(ids.len())
    }

    /// Resumes, starts and reconnects one node as needed (see [`Cluster::restore`]).
    async fn repair_node(
        &self,
        node: &ClusterNode,
        progress: super::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        let host = &self.host;
        let (name, c) = (node.name, node.container.as_str());
        let state = host
            .call(
                format!("inspect {name}"),
                host.docker.inspect_container(c, None),
            )
            .await?;
        let running = state.state.as_ref().and_then(|s| s.running) == Some(true);
        let paused = state.state.as_ref().and_then(|s| s.paused) == Some(true);
        let connected = state
            .network_settings
            .and_then(|n| n.networks)
            .is_some_and(|n| n.contains_key(LAB_NETWORK));
        if paused {
            progress(&format!("restoring the lab: unpausing {name}"));
            self.fault(NodeOp::Unpause, name).await?;
        } else if running {
            // A Ctrl-C between freezing the containers and the node leaves them paused.
            let resumed = self.set_paused_inside(node, false).await?;
            if resumed > 0 {
                progress(&format!(
                    "restoring the lab: unpaused {resumed} container(s) on {name}"
                ));
            }
        } else {
            progress(&format!("restoring the lab: starting {name}"));
            self.fault(NodeOp::Start, name).await?;
        }
        if !connected {
            progress(&format!("restoring the lab: reconnecting {name}"));
            self.fault(NodeOp::Connect, name).await?;
        }
        Ok(())
    }

    pub fn node(&self, name: NodeName) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    fn managers(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes
            .iter()
            .filter(|n| n.name.role == NodeRole::Manager)
    }

    /// Node 1 inits the swarm, the others join with tokens read through the API (never
    /// printed or written anywhere), managers are drained if asked, and this returns once a
    /// manager sees every node ready.
    async fn form_swarm(&self) -> Result<(), DriverError> {
        let first = self
            .node(NodeName::manager(1))
            .ok_or(DriverError::Unsupported {
                what: "a cluster without manager-1".into(),
            })?;
        let request = SwarmInitRequest {
            listen_addr: Some(format!("{}:2377", first.ip)),
            advertise_addr: Some(first.ip.to_string()),
            ..Default::default()
        };
        first
            .driver
            .call("swarm init", first.driver.docker.init_swarm(request))
            .await?;
        let swarm = first
            .driver
            .call("inspect swarm", first.driver.docker.inspect_swarm())
            .await?;
        let tokens = swarm.join_tokens.unwrap_or_default();
        let remote = vec![format!("{}:2377", first.ip)];
        let join = |node: &ClusterNode, token: Option<String>| {
            let request = SwarmJoinRequest {
                listen_addr: Some(format!("{}:2377", node.ip)),
                advertise_addr: Some(node.ip.to_string()),
                remote_addrs: Some(remote.clone()),
                join_token: token,
                ..Default::default()
            };
            let driver = node.driver.clone();
            let what = format!("swarm join ({})", node.name);
            async move { driver.call(what, driver.docker.join_swarm(request)).await }
        };
        // Managers one at a time (each changes the Raft membership), workers together.
        for node in self.managers().skip(1) {
            join(node, tokens.manager.clone()).await?;
        }
        let workers: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.name.role == NodeRole::Worker)
            .map(|n| join(n, tokens.worker.clone()))
            .collect();
        for r in futures_util::future::join_all(workers).await {
            r?;
        }
        self.wait_all_ready(SWARM_READY_TIMEOUT).await?;
        if self.shape.drain_managers {
            for m in self.managers() {
                self.set_availability(m.name, NodeSpecAvailabilityEnum::DRAIN)
                    .await?;
            }
        }
        Ok(())
    }

    /// The nodes and the manager that listed them: the first manager that answers within
    /// [`MANAGER_CALL`]. When none does, a control-plane error with every manager's reason.
    pub(crate) async fn first_answer(
        &self,
    ) -> Result<(Vec<bollard::models::Node>, &ClusterNode), DriverError> {
        let mut reasons = Vec::new();
        for m in self.managers() {
            match call_within(
                "list nodes",
                MANAGER_CALL,
                m.driver.docker.list_nodes(None::<ListNodesOptions>),
            )
            .await
            {
                Ok(list) => return Ok((list, m)),
                Err(e) => reasons.push(format!("{}: {}", m.name, manager_reason(&e))),
            }
        }
        Err(DriverError::ControlPlane {
            reason: reasons.join("; "),
        })
    }

    /// The nodes as a manager sees them, from the first manager that answers.
    pub async fn list_nodes(&self) -> Result<Vec<bollard::models::Node>, DriverError> {
        self.first_answer().await.map(|(list, _)| list)
    }

    /// A manager that answers a read within [`MANAGER_CALL`], for Swarm actions. Without
    /// quorum this may still succeed (reads answer a while); the write then fails or times out.
    pub async fn manager(&self) -> Result<&Driver, DriverError> {
        self.first_answer().await.map(|(_, m)| &m.driver)
    }

    /// Swarm's node id of `name` (its hostname is the node name).
    async fn node_id(
        &self,
        name: NodeName,
    ) -> Result<(String, bollard::models::Node), DriverError> {
        let hostname = name.to_string();
        self.list_nodes()
            .await?
            .into_iter()
            .find(|n| {
                n.description.as_ref().and_then(|d| d.hostname.as_deref())
                    == Some(hostname.as_str())
            })
            .and_then(|n| n.id.clone().map(|id| (id, n)))
            .ok_or(DriverError::ClusterNotReady {
                what: format!("no swarm node with hostname {hostname}"),
            })
    }

    async fn set_availability(
        &self,
        name: NodeName,
        availability: NodeSpecAvailabilityEnum,
    ) -> Result<(), DriverError> {
        let manager = self.manager().await?;
        let (id, node) = self.node_id(name).await?;
        let mut spec = node.spec.unwrap_or_default();
        spec.availability = Some(availability);
        let version = node.version.and_then(|v| v.index).unwrap_or(0);
        let opts = UpdateNodeOptionsBuilder::default()
            .version(version as i64)
            .build();
        manager
            .call(
                format!("update node {name}"),
                manager.docker.update_node(&id, spec, opts),
            )
            .await
    }

    /// The name of the manager that leads the Raft group now.
    pub async fn leader(&self) -> Result<NodeName, DriverError> {
        self.list_nodes()
            .await?
            .into_iter()
            .find(|n| n.manager_status.as_ref().and_then(|m| m.leader) == Some(true))
            .and_then(|n| n.description.and_then(|d| d.hostname))
            .and_then(|h| NodeName::parse(&h))
            .ok_or(DriverError::NoLeader)
    }

    /// Applies one node fault. Returns a short detail for the step's event.
    pub async fn fault(&self, op: NodeOp, name: NodeName) -> Result<String, DriverError> {
        let host = &self.host;
        let node = self.node(name).ok_or(DriverError::ClusterNotReady {
            what: format!("no node {name} in the lab"),
        })?;
        let c = node.container.as_str();
        let started = Instant::now();
        let mut inside = None;
        match op {
            NodeOp::Stop => {
                let opts = StopContainerOptions {
                    t: Some(NODE_STOP_SECS),
                    signal: None,
                };
                // Stopping waits for dockerd to stop its containers: longer than one call.
                call_within(
                    format!("stop {name}"),
                    Duration::from_secs(NODE_STOP_SECS as u64 + 15),
                    host.docker.stop_container(c, Some(opts)),
                )
                .await?;
            }
            NodeOp::Kill => {
                let opts = KillContainerOptions {
                    signal: "SIGKILL".into(),
                };
                host.call(
                    format!("kill {name}"),
                    host.docker.kill_container(c, Some(opts)),
                )
                .await?;
            }
            NodeOp::Start => {
                host.call(
                    format!("start {name}"),
                    host.docker.start_container(
                        c,
                        None::<bollard::query_parameters::StartContainerOptions>,
                    ),
                )
                .await?;
                host.wait_node_engine(name).await?;
            }
            // The node's containers live in cgroups of their own, beside the node container's
            // (the nodes share the host's cgroup namespace), so pausing the node container
            // alone froze its dockerd and containerd while its tasks went on serving. A frozen
            // node freezes its containers first, through its own engine, then itself.
            NodeOp::Pause => {
                inside = Some(self.set_paused_inside(node, true).await?);
                host.call(format!("pause {name}"), host.docker.pause_container(c))
                    .await?;
            }
            NodeOp::Unpause => {
                host.call(format!("unpause {name}"), host.docker.unpause_container(c))
                    .await?;
                inside = Some(self.set_paused_inside(node, false).await?);
            }
            NodeOp::Drain => {
                self.set_availability(name, NodeSpecAvailabilityEnum::DRAIN)
                    .await?
            }
            NodeOp::Activate => {
                self.set_availability(name, NodeSpecAvailabilityEnum::ACTIVE)
                    .await?
            }
            NodeOp::Disconnect => {
                let request = NetworkDisconnectRequest {
                    container: c.to_string(),
                    force: Some(true),
                };
                host.call(
                    format!("disconnect {name}"),
                    host.docker.disconnect_network(LAB_NETWORK, request),
                )
                .await?;
            }
            NodeOp::Connect => {
                let request = NetworkConnectRequest {
                    container: c.to_string(),
                    endpoint_config: Some(fixed_ip(node.ip)),
                };
                host.call(
                    format!("connect {name}"),
                    host.docker.connect_network(LAB_NETWORK, request),
                )
                .await?;
            }
        }
        Ok(format!(
            "{} {name}{} in {:.1?}",
            op.keyword().trim_start_matches("node_"),
            inside.map_or_else(String::new, |n| format!(" and its {n} container(s)")),
            started.elapsed()
        ))
    }

    /// Stops the `count` highest-numbered managers at once, as one outage.
    pub async fn stop_managers(&self, count: u32) -> Result<String, DriverError> {
        let names: Vec<NodeName> = (1..=self.shape.managers)
            .rev()
            .take(count as usize)
            .map(NodeName::manager)
            .collect();
        let stops = names.iter().map(|&n| self.fault(NodeOp::Stop, n));
        for r in futures_util::future::join_all(stops).await {
            r?;
        }
        let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let quorum = if count >= self.shape.managers.div_ceil(2) {
            "quorum lost"
        } else {
            "quorum kept"
        };
        Ok(format!("stopped {} ({quorum})", list.join(", ")))
    }

    /// Stops the manager that leads now.
    pub async fn stop_leader(&self) -> Result<String, DriverError> {
        let leader = self.leader().await?;
        self.fault(NodeOp::Stop, leader).await?;
        Ok(format!("stopped the leader {leader}"))
    }

    /// Copies `images` from the host engine to every node that runs tasks and lacks them
    /// (same image id), streaming `save` into `load` through bollard.
    pub async fn distribute_images(
        &self,
        images: &[&str],
        progress: super::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        for image in images {
            let id = self
                .host
                .call("inspect image", self.host.docker.inspect_image(image))
                .await?
                .id;
            for node in self.nodes.iter().filter(|n| self.shape.runs_tasks(n.name)) {
                let present = node
                    .driver
                    .call("inspect image", node.driver.docker.inspect_image(image))
                    .await
                    .ok()
                    .and_then(|i| i.id);
                if present.is_some() && present == id {
                    continue;
                }
                let started = Instant::now();
                let saved = self.host.docker.export_image(image);
                let load = node
                    .driver
                    .docker
                    .import_image_stream(
                        bollard::query_parameters::ImportImageOptions {
                            quiet: true,
                            ..Default::default()
                        },
                        saved,
                        None,
                    )
                    .try_collect::<Vec<_>>();
                match tokio::time::timeout(Duration::from_secs(300), load).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(source)) => {
                        return Err(DriverError::Engine {
                            call: format!("load {image} into {}", node.name),
                            source,
                        });
                    }
                    Err(_) => {
                        return Err(DriverError::Timeout {
                            call: format!("load {image} into {}", node.name),
                            after: Duration::from_secs(300),
                        });
                    }
                }
                progress(&format!(
                    "loaded {image} into {} in {:.1?}",
                    node.name,
                    started.elapsed()
                ));
            }
        }
        Ok(())
    }

    /// Builds this run's part of the lab: images on the nodes, the overlay network, the
    /// service and the in-cluster edge through a manager, the outer edge on the host.
    pub async fn provision(
        &self,
        plan: &Plan,
        clock: &Clock,
        events: &EventSink,
        progress: super::images::Progress<'_>,
    ) -> Result<LabHandle, DriverError> {
        let service = plan.service.clone().ok_or(DriverError::NoService)?;
        let outer = plan.edge.clone().ok_or(DriverError::Unsupported {
            what: "a swarm-cluster lab without an [edge] (use kind = \"haproxy\" or \"nginx\")"
                .into(),
        })?;
        if !matches!(outer.kind, EdgeKind::Haproxy | EdgeKind::Nginx) {
            return Err(DriverError::Unsupported {
                what: format!(
                    "edge.kind = {:?} in a swarm-cluster lab (use \"haproxy\" or \"nginx\")",
                    outer.kind
                ),
            });
        }
        let started = Instant::now();
        let mut images: Vec<&str> = vec![service.image.as_str(), NGINX_IMAGE];
        for step in &plan.steps {
            if let crate::scenario::Action::UpdateImage { image, .. } = &step.action
                && !images.contains(&image.as_str())
            {
                images.push(image);
            }
        }
        self.distribute_images(&images, progress).await?;

        let manager = self.manager().await?;
        let inner_edge_service = edge::service_name(&service.name);
        for run in manager
            .replace_leftovers(&service.name, None, Some(&inner_edge_service))
            .await?
        {
            progress(&format!("removed the leftover lab of run {run}"));
        }
        for run in manager.remove_orphan_networks().await? {
            progress(&format!("removed the leftover network of run {run}"));
        }
        let outer_name = edge::container_name(&service.name);
        self.host.remove_leftover_container(&outer_name).await?;

        let network = network_name(manager.run_id());
        let subnet = self.settle_overlays(progress).await?;
        let request = NetworkCreateRequest {
            name: network.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(format!("{subnet}/24")),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(manager.labels("network")),
            ..Default::default()
        };
        manager
            .call("create network", manager.docker.create_network(request))
            .await?;
        let spec = spec::service_spec(&service, &network, manager.labels("service"), None);
        manager
            .call("create service", manager.docker.create_service(spec, None))
            .await?;
        // The in-cluster edge: nginx on every node, host-mode port, dnsrr to the tasks.
        let inner = Edge {
            kind: EdgeKind::Nginx,
            publish: SocketAddr::from((Ipv4Addr::UNSPECIFIED, NODE_EDGE_PORT)),
            healthcheck: None,
            ..outer.clone()
        };
        let conf = edge::nginx_conf(&service, &inner, plan.load.timeout);
        let spec =
            edge::global_service_spec(&service, &inner, &network, &conf, manager.labels("edge"));
        manager
            .call(
                "create edge service",
                manager.docker.create_service(spec, None),
            )
            .await?;

        let backends: Vec<(String, SocketAddr)> = self
            .nodes
            .iter()
            .filter(|n| self.shape.runs_tasks(n.name))
            .map(|n| (n.name.to_string(), SocketAddr::from((n.ip, NODE_EDGE_PORT))))
            .collect();
        let body = outer_edge_body(
            &outer,
            &backends,
            plan.load.timeout,
            self.host.labels("edge"),
        );
        self.host
            .create_and_start("edge container", &outer_name, body)
            .await?;

        let converged = manager
            .wait_converged(&service.name, Duration::from_secs(120), None)
            .await?;
        let _ = events.send(Event::note(
            clock.now(),
            "service_converged",
            "lab",
            converged.summary(),
        ));
        manager
            .wait_converged(&inner_edge_service, Duration::from_secs(120), None)
            .await?;
        // Past HAProxy's first checks (fall 2 x 1 s) with every answer a 200.
        wait_http_stable(
            outer.publish,
            Duration::from_secs(3),
            Duration::from_secs(60),
        )
        .await?;
        progress(&format!(
            "service {} ready behind {:?} on {} after {:.1?}",
            service.name,
            outer.kind,
            outer.publish,
            started.elapsed()
        ));
        Ok(LabHandle {
            target: Some(outer.publish),
            service,
            edge: Some(outer),
            network,
            edge_container: Some(outer_name),
            edge_service: Some(inner_edge_service),
            publish: None,
        })
    }

    /// Removes this run's objects: inside the cluster through a manager, and on the host.
    pub async fn teardown(&self, progress: super::images::Progress<'_>) -> Result<(), DriverError> {
        let restored = self.restore(progress).await;
        let inside = match restored {
            Ok(()) => match self.manager().await {
                Ok(m) => m.teardown().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.host.teardown().await?;
        inside
    }

    /// Undoes what a run's steps did to the lab, so that the next run finds it whole (and this
    /// one can remove its service): paused nodes resume, stopped or killed ones start,
    /// disconnected ones get their address back, and once the managers answer again, drained
    /// nodes that should serve are activated. Needed after a scenario that ends with a node
    /// down, and after Ctrl-C in the middle of a fault.
    async fn restore(&self, progress: super::images::Progress<'_>) -> Result<(), DriverError> {
        let repairs = self
            .nodes
            .iter()
            .map(|node| self.repair_node(node, progress));
        for r in futures_util::future::join_all(repairs).await {
            r?;
        }
        // Wait until the managers answer and see every node ready again (after a quorum loss
        // they report nodes `unknown` for a few seconds), so the next run finds the lab whole.
        let nodes = self.wait_all_ready(RESTORE_TIMEOUT).await?;
        for n in nodes {
            let Some(name) = n
                .description
                .as_ref()
                .and_then(|d| d.hostname.as_deref())
                .and_then(NodeName::parse)
            else {
                continue;
            };
            let drained = n.spec.as_ref().and_then(|s| s.availability)
                == Some(NodeSpecAvailabilityEnum::DRAIN);
            let should_drain = name.role == NodeRole::Manager && self.shape.drain_managers;
            if drained && !should_drain {
                progress(&format!("restoring the lab: activating {name}"));
                self.set_availability(name, NodeSpecAvailabilityEnum::ACTIVE)
                    .await?;
            }
        }
        Ok(())
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

impl Driver {
    /// Makes the node image present: pulled (`docker:dind`) where a registry answers, else
    /// built from Debian packages.
    async fn ensure_node_image(
        &self,
        progress: super::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        self.ensure_debian_image(
            NODE_IMAGE,
            "docker.io/library/docker:dind",
            "docker.io,iptables,iproute2,ca-certificates,procps",
            &[r#"CMD ["dockerd"]"#],
            progress,
        )
        .await
    }

    /// Creates the lab network on a /24 that no network or route of the host uses yet.
    async fn lab_network(&self, shape: Shape) -> Result<Ipv4Addr, DriverError> {
        let networks = self
            .call(
                "list networks",
                self.docker
                    .list_networks(None::<bollard::query_parameters::ListNetworksOptions>),
            )
            .await?;
        let mut used = subnets_of(&networks);
        used.extend(host_routes());
        let subnet = free_slash24(213, &used).ok_or(DriverError::ClusterNotReady {
            what: "no free /24 in 10.213.0.0/16 for the lab network".into(),
        })?;
        let mut labels = self.lab_labels();
        labels.insert(LABEL_DRAIN.into(), shape.drain_managers.to_string());
        let request = NetworkCreateRequest {
            name: LAB_NETWORK.into(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(format!("{subnet}/24")),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels),
            ..Default::default()
        };
        self.call("create lab network", self.docker.create_network(request))
            .await?;
        Ok(subnet)
    }

    async fn create_node(&self, name: NodeName, ip: Ipv4Addr) -> Result<(), DriverError> {
        let container = container_name(name);
        let volume = container.clone();
        let dir = socket_dir(name);
        std::fs::create_dir_all(&dir).map_err(|source| DriverError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut labels = self.lab_labels();
        labels.insert(LABEL_NODE.into(), name.to_string());
        self.call(
            "create volume",
            self.docker.create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            }),
        )
        .await?;
        let body = ContainerCreateBody {
            image: Some(NODE_IMAGE.into()),
            hostname: Some(name.to_string()),
            cmd: Some(
                [
                    "dockerd",
                    "--host=unix:///var/run/docker.sock",
                    "--host=unix:///rollcheck/docker.sock",
                ]
                .map(String::from)
                .to_vec(),
            ),
            labels: Some(labels),
            stop_timeout: Some(i64::from(NODE_STOP_SECS)),
            host_config: Some(HostConfig {
                cap_add: Some(CAPS.map(String::from).to_vec()),
                security_opt: Some(vec![
                    "seccomp=unconfined".into(),
                    "apparmor=unconfined".into(),
                ]),
                cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
                binds: Some(vec![
                    "/sys/fs/cgroup:/sys/fs/cgroup:rw".into(),
                    format!("{volume}:/var/lib/docker"),
                    format!("{}:/rollcheck", dir.display()),
                ]),
                tmpfs: Some(HashMap::from([("/run".to_string(), String::new())])),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            networking_config: Some(bollard::models::NetworkingConfig {
                endpoints_config: Some(HashMap::from([(LAB_NETWORK.to_string(), fixed_ip(ip))])),
            }),
            ..Default::default()
        };
        self.create_and_start("node container", &container, body)
            .await
    }

    /// Waits until the node's dockerd answers on its socket; returns a driver for it. A node
    /// that does not come up aborts with the tail of its log.
    async fn wait_node_engine(&self, name: NodeName) -> Result<Driver, DriverError> {
        let path = socket_dir(name).join("docker.sock");
        let deadline = Instant::now() + NODE_READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(driver) = self.connect_unix(&path).await
                && driver.ping_within(Duration::from_secs(2)).await
            {
                return Ok(driver);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let logs: Vec<String> = self
            .docker
            .logs(
                &container_name(name),
                Some(LogsOptions {
                    stdout: true,
                    stderr: true,
                    tail: "5".into(),
                    ..Default::default()
                }),
            )
            .filter_map(|l| async move { l.ok().map(|l| l.to_string().trim().to_string()) })
            .collect()
            .await;
        Err(DriverError::ClusterNotReady {
            what: format!(
                "node {name}'s dockerd did not answer within {NODE_READY_TIMEOUT:?}; last log lines: {}",
                logs.join(" / ")
            ),
        })
    }

    /// Removes a container of an earlier run by name, if rollcheck labelled it.
    async fn remove_leftover_container(&self, name: &str) -> Result<(), DriverError> {
        match self
            .call(
                "inspect container",
                self.docker.inspect_container(name, None),
            )
            .await
        {
            Ok(c) => {
                let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
                if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true") {
                    return Err(DriverError::Foreign {
                        kind: "container",
                        name: name.into(),
                    });
                }
                let opts = RemoveContainerOptionsBuilder::default().force(true).build();
                self.call(
                    "remove container",
                    self.docker.remove_container(name, Some(opts)),
                )
                .await
            }
            Err(e) if super::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn is_ready(n: &bollard::models::Node) -> bool {
    n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// Why one manager did not answer, in a few words: the manager's own message when it sent
/// one ("The swarm does not have a leader. ..."), else whether it could be reached at all.
fn manager_reason(e: &DriverError) -> String {
    use bollard::errors::Error as B;
    match e {
        DriverError::Engine {
            source: B::DockerResponseServerError { message, .. },
            ..
        } => message
            .trim_start_matches("rpc error: code = Unknown desc = ")
            .to_string(),
        DriverError::Engine {
            source: B::HyperLegacyError { .. } | B::IOError { .. },
            ..
        } => "engine not reachable".into(),
        DriverError::Timeout { after, .. } => format!("no answer within {after:?}"),
        other => other.to_string(),
    }
}

fn fixed_ip(ip: Ipv4Addr) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Whether `nodes` more node containers fit in `available_mb` (MemAvailable, plus what the
/// nodes of a lab that is about to be replaced use).
fn memory_fits(nodes: u64, available_mb: u64) -> Result<(), DriverError> {
    let needed = nodes * NODE_MEMORY_MB + HOST_RESERVE_MB;
    if needed > available_mb {
        return Err(DriverError::NotEnoughMemory {
            nodes,
            needed_mb: needed,
            available_mb,
        });
    }
    Ok(())
}

fn mem_available_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb / 1024)
}

fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (addr, len) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(addr) & mask, mask))
}

/// The IPv4 subnets `networks` are configured with.
fn subnets_of(networks: &[bollard::models::Network]) -> Vec<(u32, u32)> {
    networks
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.clone())
        .flatten()
        .filter_map(|c| parse_cidr(c.subnet.as_deref()?))
        .collect()
}

/// The first 10.`b`.x.0/24 that overlaps none of `used`.
fn free_slash24(b: u8, used: &[(u32, u32)]) -> Option<Ipv4Addr> {
    (0..=255u8).map(|c| Ipv4Addr::new(10, b, c, 0)).find(|s| {
        let net = (u32::from(*s), 0xffff_ff00);
        used.iter().all(|u| !overlaps(net, *u))
    })
}

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    let mask = a.1 & b.1;
    a.0 & mask == b.0 & mask
}

/// Destinations of the host's IPv4 routes other than the default route.
fn host_routes() -> Vec<(u32, u32)> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            (mask != 0).then_some((dest & mask, mask))
        })
        .collect()
}

/// The outer edge on the host: HAProxy (or nginx) on the lab network in front of every
/// task-running node's edge port, health-checked, listening on the loopback address only.
fn outer_edge_body(
    edge: &Edge,
    backends: &[(String, SocketAddr)],
    read_timeout: Duration,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let (image, entrypoint, conf_env, stop_signal) = match edge.kind {
        EdgeKind::Haproxy => (
            HAPROXY_IMAGE,
            "printf '%s\\n' \"$EDGE_CONF\" > /tmp/haproxy.cfg && exec haproxy -W -db -f /tmp/haproxy.cfg",
            haproxy_conf(edge, backends, read_timeout),
            // HAProxy's soft stop: finish what is in flight.
            "SIGUSR1",
        ),
        _ => (
            NGINX_IMAGE,
            "printf '%s\\n' \"$EDGE_CONF\" > /etc/nginx/nginx.conf && exec nginx -g 'daemon off;'",
            nginx_upstream_conf(edge, backends, read_timeout),
            "SIGQUIT",
        ),
    };
    edge::proxy_body(
        image,
        &["/bin/sh", "-c", entrypoint],
        vec![format!("EDGE_CONF={conf_env}")],
        stop_signal,
        edge.publish,
        LAB_NETWORK,
        labels,
    )
}

/// HAProxy in front of the nodes: a check of each node's edge every second (down after 2
/// failures, up after 2 passes), and a retry on another node when a connection fails.
/// The check asks the node's nginx itself (`/_edge`), not the service behind it: nginx sends
/// a `/healthz` to any task in the cluster, so with one node cut off, the checks of the
/// healthy nodes would wait on its tasks and HAProxy would mark every node down (seen here:
/// 2.5 k 503s in 2 s during partition.toml). An L4 edge gets a connect check.
pub(crate) fn haproxy_conf(
    edge: &Edge,
    backends: &[(String, SocketAddr)],
    read_timeout: Duration,
) -> String {
    let read = read_timeout.as_secs().max(1) + 5;
    let mode = match edge.protocol {
        EdgeProtocol::Http => "http",
        EdgeProtocol::Tcp => "tcp",
    };
    let retries = if edge.retries {
        "retries 2\n  option redispatch"
    } else {
        "retries 0"
    };
    let servers: String = backends
        .iter()
        .map(|(name, addr)| format!("  server {name} {addr} check\n"))
        .collect();
    let check = match edge.protocol {
        EdgeProtocol::Http => "  option httpchk GET /_edge\n  http-check expect status 200\n",
        EdgeProtocol::Tcp => "",
    };
    format!(
        r#"global
  maxconn 4096
defaults
  mode {mode}
  timeout connect 2s
  timeout client {read}s
  timeout server {read}s
  {retries}
frontend edge
  bind :80
  default_backend nodes
backend nodes
  balance roundrobin
{check}  default-server inter 1s fall 2 rise 2
{servers}"#
    )
}

/// nginx as the outer edge: open-source nginx has no active checks, so a failed node is
/// skipped for 2 s after a connection error, and the request retried on the next one.
fn nginx_upstream_conf(
    edge: &Edge,
    backends: &[(String, SocketAddr)],
    read_timeout: Duration,
) -> String {
    let read = read_timeout.as_secs().max(1) + 5;
    let next = if edge.retries {
        "error timeout http_502"
    } else {
        "off"
    };
    let servers: String = backends
        .iter()
        .map(|(_, addr)| format!("    server {addr} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        r#"worker_processes 2;
error_log /dev/stderr warn;
pid /tmp/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream nodes {{
{servers}  }}
  server {{
    listen 80;
    location / {{
      proxy_pass http://nodes;
      proxy_next_upstream {next};
      proxy_connect_timeout 2s;
      proxy_read_timeout {read}s;
      proxy_send_timeout {read}s;
    }}
  }}
}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let backends = vec![
            ("worker-1".to_string(), "10.213.0.51:8000".parse().unwrap()),
            ("worker-2".to_string(), "10.213.0.52:8000".parse().unwrap()),
        ];
        let conf = haproxy_conf(&edge, &backends, Duration::from_secs(10));
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
            ..edge
        };
        assert!(haproxy_conf(&off, &backends, Duration::from_secs(10)).contains("retries 0"));
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
