//! The validated plan: what a run will do, in types that cannot hold invalid states.
//! Everything here has been checked against the scenario file; the runner, the load generator
//! and the Docker driver read only these types, never the raw TOML model.

pub use super::setup::*;
use crate::outcome::Outcome;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub title: String,
    /// The scenario file this plan came from.
    pub source: PathBuf,
    /// File stem, lowercased, `[a-z0-9-]` only: names the report directory.
    pub slug: String,
    /// What rollcheck sets up before the load, if anything.
    pub setup: Setup,
    pub load: Load,
    pub steps: Vec<Step>,
    pub gate: Gate,
    /// What reports must not show, and what they show instead.
    pub secrets: super::secrets::Secrets,
}

/// Managers take addresses .11–.50 of the lab's /24, workers .51–.254.
pub const MAX_MANAGERS: u32 = 40;
pub const MAX_WORKERS: u32 = 204;

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub image: String,
    pub replicas: u64,
    pub endpoint_mode: EndpointMode,
    /// The port the service listens on inside its containers.
    pub port: u16,
    pub stop_grace_period: Option<Duration>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub update: UpdateConfig,
    pub rollback: UpdateConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    Vip,
    Dnsrr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    /// Docker's form: `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// Docker's `UpdateConfig` / `RollbackConfig`, with Docker's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateConfig {
    pub parallelism: u64,
    pub delay: Duration,
    pub order: UpdateOrder,
    pub failure_action: FailureAction,
    pub monitor: Duration,
    pub max_failure_ratio: f64,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            parallelism: 1,
            delay: Duration::ZERO,
            order: UpdateOrder::StopFirst,
            failure_action: FailureAction::Pause,
            monitor: Duration::from_secs(5),
            max_failure_ratio: 0.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub kind: EdgeKind,
    /// Where the load reaches the edge; always a loopback address.
    pub publish: SocketAddr,
    pub mode: EdgeMode,
    /// What the edge proxies: HTTP requests, or TCP connections (L4, like Swarm's routing
    /// mesh: a cut upstream connection reaches the client as a reset, not a 502).
    pub protocol: EdgeProtocol,
    /// Retry a request on another task when the connection fails (nginx
    /// `proxy_next_upstream`). Off shows in-flight cuts that retries would hide.
    pub retries: bool,
    /// A HEALTHCHECK on the edge container itself (health-probe latency experiments).
    pub healthcheck: Option<Healthcheck>,
    /// `tls = true`: the edge terminates https with this certificate, made for the run and
    /// signed by a CA made with it (which the load trusts).
    pub tls: Option<crate::tls::RunCertificate>,
}

impl Edge {
    /// What a lab gets without an `[edge]`: nginx in a container on 127.0.0.1:8080, retrying
    /// connect errors on another task.
    pub fn default_nginx() -> Edge {
        Edge {
            kind: EdgeKind::Nginx,
            publish: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 8080)),
            mode: EdgeMode::Container,
            protocol: EdgeProtocol::Http,
            retries: true,
            healthcheck: None,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Nginx,
    Haproxy,
    /// Swarm's routing mesh (needs IPVS in the kernel).
    Ingress,
    /// The service publishes its own port in host mode.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeProtocol {
    Http,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeMode {
    /// A plain container on the attachable overlay, port bound to the loopback address.
    Container,
    /// A global Swarm service with a host-mode published port (binds all interfaces).
    GlobalService,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// `http://` or `https://`; host and port are where connections go unless `connect_to`
    /// says otherwise.
    pub target: http::Uri,
    pub model: LoadModel,
    pub keepalive: bool,
    /// `[load] preconnect`: kept-alive connections opened before the run's clock starts (like
    /// wrk's connections), so the first second measures the service, not the handshakes.
    pub preconnect: usize,
    /// `[load] generators`: how many load generators send the load. 1 without `placement`:
    /// this process; more, or any with `placement`: rollcheck agents deployed as a Swarm job
    /// on the cluster lab's nodes, each sending one shard of the load
    /// ([`crate::load::shard`]), their records merged into this run's ([`Load::agents`]).
    pub generators: u32,
    /// `[load] placement`: Swarm placement constraints for the generators (`node.role ==
    /// worker`); at most one generator runs on a node.
    pub placement: Vec<String>,
    /// Whole-request timeout, counted from when the request is written.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Fixed length of the load. `None`: until the last step ends plus `settle`.
    pub duration: Option<Duration>,
    pub settle: Duration,
    /// Width of one histogram interval (1 s by default).
    pub interval: Duration,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// https: which certificates the load trusts (`[load] tls`, or a lab edge's run CA).
    pub tls: crate::tls::Trust,
    /// `[load] connect_to = "127.0.0.1:8443"`: the target's connections go there, with the
    /// target's Host header and TLS name.
    pub connect_to: Option<String>,
    /// `[[load.request]]`: what each request is, by weight. Empty: `GET` of the target.
    pub mix: Vec<MixEntry>,
    /// `[load] ready`, when the scenario says when the service is ready; else
    /// [`Plan::readiness`]'s default.
    pub ready: Option<Ready>,
}

impl Load {
    /// Whether agents on the cluster's nodes send the load (`generators` > 1, or a
    /// `placement` for them), rather than this process.
    pub fn agents(&self) -> bool {
        self.generators > 1 || !self.placement.is_empty()
    }
}

/// One `[[load.request]]` entry, sent to the target's scheme, host and port.
#[derive(Debug, Clone, PartialEq)]
pub struct MixEntry {
    /// How reports name it: `name`, or `METHOD path`.
    pub name: String,
    pub method: http::Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Over `[load] headers`.
    pub headers: BTreeMap<String, String>,
    pub body: bytes::Bytes,
    pub weight: u32,
}

/// When the load may start: `url` answers as `status` says, every time, for `stable`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    pub url: http::Uri,
    pub status: ReadyStatus,
    pub stable: Duration,
    /// How long to wait for that before the run is inconclusive.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadyStatus {
    /// Any answer below 500: the front door is up, whatever the app says to that path.
    Below500,
    Exactly(u16),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// `concurrency` workers, each sends, waits, sends again (like `ab -c N`). After a failed
    /// request a worker sends its next one no sooner than `error_pause` after the failed one
    /// was sent, so a refusing service gets a client's retries, not a busy loop.
    Closed {
        concurrency: usize,
        error_pause: Duration,
    },
    /// A constant `rate` per second with scheduled starts (like wrk2).
    Open { rate: f64, max_in_flight: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based position in the file.
    pub index: usize,
    /// Short human label, e.g. `update_image rollcheck/testsvc:2`.
    pub label: String,
    pub timing: Timing,
    pub action: Action,
    /// The scenario expects this step to fail (e.g. an update during quorum loss).
    pub expect_failure: bool,
    /// The Swarm service a Swarm action acts on (`shop_app`); `None`: the lab's `[service]`.
    pub service: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Offset from the load start.
    At(Duration),
    /// Delay after the previous step ended.
    After(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a shell command (`sh -c`).
    Exec {
        command: String,
        timeout: Option<Duration>,
    },
    /// Send one request.
    Http {
        url: http::Uri,
        method: http::Method,
        timeout: Duration,
    },
    Sleep(Duration),
    /// Poll a URL until it answers 2xx.
    WaitHttp {
        url: http::Uri,
        timeout: Duration,
        interval: Duration,
    },
    // --- Swarm actions (need `[lab]` or an existing service) ---
    Deploy {
        wait: Wait,
    },
    /// `docker stack deploy` again with these compose files (an edited or newer file), as
    /// validation read them.
    StackDeploy {
        files: Vec<PathBuf>,
        compose: super::compose::Compose,
        wait: Wait,
    },
    UpdateImage {
        image: String,
        wait: Wait,
    },
    Update {
        change: ServiceChange,
        wait: Wait,
    },
    /// Server-side rollback to the previous spec.
    Rollback {
        wait: Wait,
    },
    Scale {
        replicas: u64,
        wait: Wait,
    },
    Remove,
    /// Wait for the service to converge.
    Wait {
        timeout: Duration,
    },
    // --- Node faults (need a `swarm-cluster` lab) ---
    Node {
        op: NodeOp,
        node: NodeName,
    },
    /// A node of an existing swarm, by hostname, drained or made active through its manager
    /// (`[lab] node_faults = true`).
    NodeAvailability {
        node: String,
        drain: bool,
    },
    /// Stop the `count` highest-numbered managers (`manager-3`, then `manager-2`, ...).
    ManagerStop {
        count: u32,
    },
    /// Stop whichever manager currently leads the Raft group.
    LeaderStop,
    // --- Containers and the edge's upstream (need a `docker` lab) ---
    ContainerRun(Box<super::containers::Container>),
    /// Until the container's HEALTHCHECK says healthy.
    ContainerWaitHealthy {
        name: String,
        timeout: Duration,
    },
    /// `signal`, then SIGKILL if it still runs after `grace`.
    ContainerStop {
        name: String,
        signal: String,
        grace: Duration,
    },
    ContainerKill {
        name: String,
        signal: String,
    },
    ContainerRm {
        name: String,
    },
    /// Render the edge's upstream with these containers, `nginx -t`, then reload (or restart)
    /// nginx; `drain`: wait (at most this long) until the old workers have exited.
    UpstreamSet {
        servers: Vec<String>,
        switch: super::containers::Switch,
        drain: Option<Duration>,
    },
}

impl Action {
    /// Whether the step lasts until the service has converged: its span is the rollout's
    /// time to converge (what `max_converge` limits).
    pub fn converges(&self) -> bool {
        match self {
            Action::Deploy { wait }
            | Action::StackDeploy { wait, .. }
            | Action::UpdateImage { wait, .. }
            | Action::Update { wait, .. }
            | Action::Rollback { wait }
            | Action::Scale { wait, .. } => matches!(wait, Wait::Converged { .. }),
            Action::Wait { .. } => true,
            _ => false,
        }
    }

    /// The scenario keyword of this action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Exec { .. } => "exec",
            Action::Http { .. } => "http",
            Action::Sleep(_) => "sleep",
            Action::WaitHttp { .. } => "wait_http",
            Action::Deploy { .. } => "deploy",
            Action::StackDeploy { .. } => "stack_deploy",
            Action::UpdateImage { .. } => "update_image",
            Action::Update { .. } => "update",
            Action::Rollback { .. } => "rollback",
            Action::Scale { .. } => "scale",
            Action::Remove => "remove",
            Action::Wait { .. } => "wait",
            Action::Node { op, .. } => op.keyword(),
            Action::NodeAvailability { drain: true, .. } => "node_drain",
            Action::NodeAvailability { drain: false, .. } => "node_activate",
            Action::ManagerStop { .. } => "manager_stop",
            Action::LeaderStop => "leader_stop",
            Action::ContainerRun(_) => "container_run",
            Action::ContainerWaitHealthy { .. } => "container_wait_healthy",
            Action::ContainerStop { .. } => "container_stop",
            Action::ContainerKill { .. } => "container_kill",
            Action::ContainerRm { .. } => "container_rm",
            Action::UpstreamSet { .. } => "upstream_set",
        }
    }

    /// Whether the action acts on a `docker` lab's containers or its edge.
    pub fn is_container(&self) -> bool {
        matches!(
            self,
            Action::ContainerRun(_)
                | Action::ContainerWaitHealthy { .. }
                | Action::ContainerStop { .. }
                | Action::ContainerKill { .. }
                | Action::ContainerRm { .. }
                | Action::UpstreamSet { .. }
        )
    }

    /// The one container the action names, if it names one.
    pub fn container(&self) -> Option<&str> {
        match self {
            Action::ContainerRun(c) => Some(&c.name),
            Action::ContainerWaitHealthy { name, .. }
            | Action::ContainerStop { name, .. }
            | Action::ContainerKill { name, .. }
            | Action::ContainerRm { name } => Some(name),
            _ => None,
        }
    }

    /// Whether the action needs the Docker driver.
    pub fn needs_docker(&self) -> bool {
        !matches!(
            self,
            Action::Exec { .. } | Action::Http { .. } | Action::Sleep(_) | Action::WaitHttp { .. }
        )
    }

    /// Whether the action acts on the nodes of a `swarm-cluster` lab.
    pub fn is_node_fault(&self) -> bool {
        matches!(
            self,
            Action::Node { .. }
                | Action::NodeAvailability { .. }
                | Action::ManagerStop { .. }
                | Action::LeaderStop
        )
    }
}

/// What a node step does to its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOp {
    /// Clean shutdown of the node container (SIGTERM to its dockerd).
    Stop,
    /// SIGKILL: the node vanishes without stopping its tasks.
    Kill,
    Start,
    /// Freeze every process of the node (cgroup freezer).
    Pause,
    Unpause,
    /// `docker node update --availability drain`.
    Drain,
    Activate,
    /// Disconnect the node from the lab network (a partition).
    Disconnect,
    Connect,
}

impl NodeOp {
    pub const ALL: [NodeOp; 9] = [
        NodeOp::Stop,
        NodeOp::Kill,
        NodeOp::Start,
        NodeOp::Pause,
        NodeOp::Unpause,
        NodeOp::Drain,
        NodeOp::Activate,
        NodeOp::Disconnect,
        NodeOp::Connect,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            NodeOp::Stop => "node_stop",
            NodeOp::Kill => "node_kill",
            NodeOp::Start => "node_start",
            NodeOp::Pause => "node_pause",
            NodeOp::Unpause => "node_unpause",
            NodeOp::Drain => "node_drain",
            NodeOp::Activate => "node_activate",
            NodeOp::Disconnect => "node_disconnect",
            NodeOp::Connect => "node_connect",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeRole {
    Manager,
    Worker,
}

/// A node of a `swarm-cluster` lab: `manager-1`, `worker-2` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName {
    pub role: NodeRole,
    pub index: u32,
}

impl NodeName {
    pub fn manager(index: u32) -> NodeName {
        NodeName {
            role: NodeRole::Manager,
            index,
        }
    }

    pub fn worker(index: u32) -> NodeName {
        NodeName {
            role: NodeRole::Worker,
            index,
        }
    }

    /// `manager-1` → `Some`, anything else → `None`.
    pub fn parse(text: &str) -> Option<NodeName> {
        let (role, n) = text.split_once('-')?;
        let role = match role {
            "manager" => NodeRole::Manager,
            "worker" => NodeRole::Worker,
            _ => return None,
        };
        let index: u32 = n.parse().ok().filter(|&i| i > 0)?;
        (n == index.to_string()).then_some(NodeName { role, index })
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let role = match self.role {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
        };
        write!(f, "{role}-{}", self.index)
    }
}

/// After a Swarm action: return at once, or wait until the service converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    No,
    Converged { timeout: Duration },
}

/// Fields an `update` step changes; `None` leaves the field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceChange {
    pub env: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub replicas: Option<u64>,
    pub update: Option<UpdateConfig>,
    pub healthcheck: Option<Healthcheck>,
    pub stop_grace_period: Option<Duration>,
    /// Restart tasks even if nothing changed (`docker service update --force`).
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub thresholds: Vec<Threshold>,
    /// Which outcome classes count as dropped.
    pub dropped: Vec<Outcome>,
}

/// With no threshold given, the gate is `max_dropped = 0`: the question rollcheck exists for.
impl Default for Gate {
    fn default() -> Self {
        Gate {
            thresholds: vec![Threshold::MaxDropped(0)],
            dropped: Outcome::DEFAULT_DROPPED.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    MaxDropped(u64),
    /// Fraction of non-late requests that were dropped, 0.0..=1.0.
    MaxErrorRate(f64),
    MaxP99(Duration),
    /// p99 of requests that started while steps ran.
    MaxP99During(Duration),
    MinRequests(u64),
    /// Requests the client recorded ok that no task's truth log answered.
    MaxTruthMismatch(u64),
    /// The longest step that waits for convergence (a rollout's time to converge).
    MaxConverge(Duration),
}

impl Threshold {
    /// The key as written in `[gate]`.
    pub fn key(&self) -> &'static str {
        match self {
            Threshold::MaxDropped(_) => "max_dropped",
            Threshold::MaxErrorRate(_) => "max_error_rate",
            Threshold::MaxP99(_) => "max_p99",
            Threshold::MaxP99During(_) => "max_p99_during",
            Threshold::MinRequests(_) => "min_requests",
            Threshold::MaxTruthMismatch(_) => "max_truth_mismatch",
            Threshold::MaxConverge(_) => "max_converge",
        }
    }
}
