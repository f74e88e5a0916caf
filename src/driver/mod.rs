//! The Docker driver: images, the Swarm lab, rollout actions, event watchers and cleanup.
//! Everything rollcheck asks of the engine goes through here and only through bollard (never
//! the `docker` CLI); callers see `Driver`, `LabHandle`, `DriverError` and `Event`s.

mod cleanup;
pub mod cluster;
pub mod containers;
mod debian;
mod edge;
pub mod existing;
mod health_log;
pub mod images;
pub mod lab;
mod raw;
mod spec;
pub mod stack;
pub mod swarm;
mod truth;
mod upstream;
pub mod watch;

pub use cleanup::StatusRow;
pub use cluster::Cluster;
pub use lab::LabHandle;
pub use swarm::Converged;
pub use watch::EngineVersions;

use bollard::Docker;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// A timestamp from the engine (bollard's `time` feature) on chrono's clock, which the
/// history uses.
pub(crate) fn utc(t: bollard::models::BollardDate) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

/// Every object the driver creates carries these labels; cleanup removes only what has them.
pub const LABEL_RUN: &str = "rollcheck.run";
pub const LABEL_MANAGED: &str = "rollcheck.managed";
/// What the object is in the lab: `service`, `edge`, `network`.
pub const LABEL_ROLE: &str = "rollcheck.role";
/// On the Swarm node spec: rollcheck ran `swarm init`, so `lab down` may leave the swarm.
pub const LABEL_CREATED_SWARM: &str = "rollcheck.created-swarm";

/// Default limit for one engine call. Manager calls without quorum block ~16 s before they
/// fail (DESIGN.md), so this is a little longer than that.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(
        "cannot reach the docker engine at {socket}: {source}; run ci/setup as root, or start dockerd"
    )]
    Unreachable {
        socket: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "docker engine call `{call}` timed out after {after:?}; check that dockerd answers and the swarm has a leader"
    )]
    Timeout { call: String, after: Duration },
    #[error("docker engine call `{call}` failed: {source}")]
    Engine {
        call: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "{path}: not a statically linked executable ({why}); build rollcheck for x86_64-unknown-linux-gnu with crt-static (the crate's .cargo/config.toml does) and use that binary"
    )]
    NotStatic { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "image {image} is not present locally and could not be pulled ({reason}); load it with `docker load` or use a rollcheck/testsvc image"
    )]
    ImageMissing { image: String, reason: String },
    #[error("building image {image} failed: {reason}")]
    Build { image: String, reason: String },
    #[error(
        "cannot provide edge image {image}: pull failed ({pull}) and building it from Debian packages failed ({build}); install mmdebstrap (apt-get install mmdebstrap) or make a registry reachable"
    )]
    EdgeImage {
        image: String,
        pull: String,
        build: String,
    },
    #[error(
        "edge.kind = \"ingress\" needs the routing mesh, but this kernel has no IPVS ({evidence}); use edge.kind = \"nginx\" with endpoint_mode = \"dnsrr\""
    )]
    NoIpvs { evidence: String },
    #[error(
        "a {kind} named {name} exists and was not created by rollcheck; remove or rename it yourself (rollcheck only removes what it labelled)"
    )]
    Foreign { kind: &'static str, name: String },
    #[error(
        "the cluster lab is not ready: {what}; see `rollcheck lab status`, or `rollcheck lab down` and retry"
    )]
    ClusterNotReady { what: String },
    #[error("the managers answer but none of them is the leader")]
    NoLeader,
    #[error("control plane unavailable: no manager answered ({reason})")]
    ControlPlane { reason: String },
    #[error(
        "a lab of {nodes} nodes needs about {needed_mb} MB of memory but {available_mb} MB is available; use fewer managers or workers"
    )]
    NotEnoughMemory {
        nodes: u64,
        needed_mb: u64,
        available_mb: u64,
    },
    #[error("{what} is not supported by the driver yet")]
    Unsupported { what: String },
    #[error(
        "update of service {service} paused ({state}): {message}; see `docker service ps {service}` and fix the image or healthcheck"
    )]
    UpdatePaused {
        service: String,
        state: String,
        message: String,
    },
    #[error("update of service {service} failed and swarm rolled it back: {message}")]
    RolledBack { service: String, message: String },
    #[error(
        "service {service} did not converge within {timeout:?} ({status}); raise the wait timeout or check `docker service ps {service}`"
    )]
    ConvergeTimeout {
        service: String,
        timeout: Duration,
        status: String,
    },
    #[error(
        "service {service} does not exist (was it removed by an earlier step?); add a deploy step first"
    )]
    NoSuchService { service: String },
    #[error("{0}")]
    Stack(String),
    #[error("{0}")]
    ForeignStack(String),
    #[error(
        "[lab] kind = \"existing\" needs a swarm manager, but the engine at {socket} is not one (swarm: {state}); point DOCKER_HOST at a manager of your swarm (rollcheck never inits or joins one)"
    )]
    NotAManager { socket: String, state: String },
    #[error(
        "service {service} does not run on the swarm at {socket}: on an existing swarm the steps act on services that run there (see `docker service ls`; names are full, e.g. shop_app)"
    )]
    NotOnSwarm { service: String, socket: String },
    #[error(
        "node {node} is not one node of the swarm at {socket} ({}); name it by its hostname as `docker node ls` shows it, and remove stale entries with `docker node rm`",
        if found.is_empty() { "no node has that hostname".to_string() } else { format!("nodes {} have it", found.join(", ")) }
    )]
    NodeNotOnSwarm {
        node: String,
        socket: String,
        found: Vec<String>,
    },
    #[error(
        "port {port} on 127.0.0.1, which {whose} publishes, is taken by {holder}; free it or choose another port in the scenario"
    )]
    PortTaken {
        port: u16,
        whose: String,
        holder: String,
    },
    /// A container step or the docker lab's edge could not do what it was asked.
    #[error("{0}")]
    Container(String),
    #[error("the lab is up but not ready for load: {0}")]
    NotReady(#[from] crate::ready::NotReady),
}

/// A connection to one engine, bound to one run id.
#[derive(Debug, Clone)]
pub struct Driver {
    docker: Docker,
    run_id: String,
    socket: String,
}

impl Driver {
    /// Connects to `$DOCKER_HOST`, else `unix:///var/run/docker.sock`, negotiates the API
    /// version down to the engine's (bollard defaults to a newer one than Debian's 20.10) and
    /// pings.
    pub async fn connect(run_id: impl Into<String>) -> Result<Driver, DriverError> {
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable = |source| DriverError::Unreachable {
            socket: socket.clone(),
            source,
        };
        let docker = if std::env::var_os("DOCKER_HOST").is_some() {
            Docker::connect_with_host(&socket)
        } else {
            Docker::connect_with_local_defaults()
        }
        .map_err(unreachable)?
        .with_timeout(CALL_TIMEOUT);
        let docker =
            match tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await {
                Ok(r) => r.map_err(unreachable)?,
                Err(_) => return Err(unreachable(bollard::errors::Error::RequestTimeoutError)),
            };
        match tokio::time::timeout(Duration::from_secs(10), docker.ping()).await {
            Ok(r) => r.map_err(unreachable)?,
            Err(_) => return Err(unreachable(bollard::errors::Error::RequestTimeoutError)),
        };
        Ok(Driver {
            docker,
            run_id: run_id.into(),
            socket,
        })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The engine address this driver talks to (for messages and the report).
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Labels for an object of this run.
    pub(crate) fn labels(&self, role: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_string(), self.run_id.clone()),
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_ROLE.to_string(), role.to_string()),
        ])
    }

    /// Runs one engine call under [`CALL_TIMEOUT`]; bollard's own timeout covers only the
    /// response headers, not reading the body.
    pub(crate) async fn call<T>(
        &self,
        what: impl Into<String>,
        fut: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<T, DriverError> {
        call_within(what, CALL_TIMEOUT, fut).await
    }

    /// The container `name` (or id) as the engine sees it.
    pub(crate) async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<bollard::models::ContainerInspectResponse, DriverError> {
        self.call(
            "inspect container",
            self.docker.inspect_container(name, None),
        )
        .await
    }

    /// The address of container `name` on `network`.
    pub(crate) async fn container_ip(
        &self,
        name: &str,
        network: &str,
    ) -> Result<std::net::Ipv4Addr, DriverError> {
        self.inspect_container(name)
            .await?
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| DriverError::Unsupported {
                what: format!("container {name} without an address on {network}"),
            })
    }

    /// Creates the container `name` from `body` and starts it; `what` names it in errors
    /// ("create edge container", "start edge container").
    pub(crate) async fn create_and_start(
        &self,
        what: &str,
        name: &str,
        body: bollard::models::ContainerCreateBody,
    ) -> Result<(), DriverError> {
        let opts = bollard::query_parameters::CreateContainerOptionsBuilder::default()
            .name(name)
            .build();
        self.call(
            format!("create {what}"),
            self.docker.create_container(Some(opts), body),
        )
        .await?;
        self.call(
            format!("start {what}"),
            self.docker.start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            ),
        )
        .await
    }
}

pub(crate) async fn call_within<T>(
    what: impl Into<String>,
    limit: Duration,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, DriverError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(DriverError::Engine {
            call: what.into(),
            source,
        }),
        Err(_) => Err(DriverError::Timeout {
            call: what.into(),
            after: limit,
        }),
    }
}

/// True when bollard reports HTTP 404 (no such object).
pub(crate) fn is_not_found(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::Engine {
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            },
            ..
        }
    )
}

/// Removes everything labelled with `run_id` (services, containers, networks; images stay).
/// For the Ctrl-C path, where no `Driver` may be at hand.
pub async fn cleanup_run(run_id: &str) -> Result<(), DriverError> {
    Driver::connect(run_id).await?.teardown().await
}
