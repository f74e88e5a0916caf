//! The node containers and their engines: creating a node (its capability set, socket
//! directory, fixed address on the lab network), waiting for its dockerd, reaching it over
//! its unix socket, repairing one a run left broken, and the memory a lab needs.

use super::*;
use crate::poll::{self, Attempt};

impl Driver {
    /// A driver for the engine behind a unix socket (a lab node), bound to this run.
    pub(super) async fn connect_unix(&self, path: &std::path::Path) -> Result<Driver, DriverError> {
        let socket = format!("unix://{}", path.display());
        let unreachable = |source| DriverError::Unreachable {
            socket: socket.clone(),
            source,
        };
        let docker = bollard::Docker::connect_with_unix(
            &socket,
            crate::driver::CALL_TIMEOUT.as_secs(),
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

    pub(super) async fn ping_within(&self, limit: Duration) -> bool {
        matches!(
            tokio::time::timeout(limit, self.docker.ping()).await,
            Ok(Ok(_))
        )
    }

    pub(super) fn lab_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_LAB.to_string(), "cluster".to_string()),
            (LABEL_ROLE.to_string(), "lab".to_string()),
        ])
    }

    /// The lab's node containers on the host engine, running or not.
    pub(crate) async fn lab_containers(
        &self,
    ) -> Result<Vec<bollard::models::ContainerSummary>, DriverError> {
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

    /// Makes the node image present: pulled (`docker:dind`) where a registry answers, else
    /// built from Debian packages.
    pub(super) async fn ensure_node_image(
        &self,
        progress: crate::driver::images::Progress<'_>,
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
    pub(super) async fn lab_network(&self, shape: Shape) -> Result<Ipv4Addr, DriverError> {
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

    pub(super) async fn create_node(
        &self,
        name: NodeName,
        ip: Ipv4Addr,
    ) -> Result<(), DriverError> {
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
    pub(super) async fn wait_node_engine(&self, name: NodeName) -> Result<Driver, DriverError> {
        let path = socket_dir(name).join("docker.sock");
        let answer = || async {
            match self.connect_unix(&path).await {
                Ok(driver) if driver.ping_within(Duration::from_secs(2)).await => {
                    Attempt::Ready(driver)
                }
                _ => Attempt::Pending(()),
            }
        };
        if let Ok(driver) =
            poll::until(NODE_READY_TIMEOUT, Duration::from_millis(300), answer).await
        {
            return Ok(driver);
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
    pub(super) async fn remove_leftover_container(&self, name: &str) -> Result<(), DriverError> {
        match self.inspect_container(name).await {
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
            Err(e) if crate::driver::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Cluster {
    /// Resumes, starts and reconnects one node as needed (see [`Cluster::restore`]).
    pub(super) async fn repair_node(
        &self,
        node: &ClusterNode,
        progress: crate::driver::images::Progress<'_>,
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
}

pub(super) fn fixed_ip(ip: Ipv4Addr) -> EndpointSettings {
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
pub(super) fn memory_fits(nodes: u64, available_mb: u64) -> Result<(), DriverError> {
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

pub(super) fn mem_available_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb / 1024)
}
