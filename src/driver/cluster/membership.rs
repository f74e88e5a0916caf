//! The swarm among the nodes: forming it with join tokens read through the API, and asking
//! its managers (the first that answers, each call within a timeout) for nodes, the leader
//! and availability changes.

use super::*;

impl Cluster {
    /// Node 1 inits the swarm, the others join with tokens read through the API (never
    /// printed or written anywhere), managers are drained if asked, and this returns once a
    /// manager sees every node ready.
    pub(super) async fn form_swarm(&self) -> Result<(), DriverError> {
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
    pub(super) async fn node_id(
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

    pub(super) async fn set_availability(
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
}

pub(super) fn is_ready(n: &bollard::models::Node) -> bool {
    n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
}

/// Why one manager did not answer, in a few words: the manager's own message when it sent
/// one ("The swarm does not have a leader. ..."), else whether it could be reached at all.
pub(super) fn manager_reason(e: &DriverError) -> String {
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
