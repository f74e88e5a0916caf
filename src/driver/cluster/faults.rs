//! Node faults a scenario's steps cause: stop, kill, start, pause (the node's containers
//! through its engine, then the node), drain, disconnect, and stopping managers or the leader.

use super::*;

impl Cluster {
    /// Pauses the node's running containers, or unpauses its paused ones, through the node's
    /// engine; returns how many.
    pub(super) async fn set_paused_inside(
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
}
