//! Services already running on the user's swarm (`[lab] kind = "existing"`): rollcheck reads
//! each one's spec before the first step and, at the end, puts back any spec a step changed
//! and waits for the service to converge on it; likewise the availability of the nodes steps
//! drain. It creates and removes nothing there. Every service and node is restored even when
//! an earlier one fails, and each failure is named.

use super::{Driver, DriverError};
use bollard::models::{Node, NodeSpecAvailabilityEnum, ServiceSpec};
use bollard::query_parameters::{UpdateNodeOptionsBuilder, UpdateServiceOptionsBuilder};
use std::time::Duration;

/// A service's spec as the run found it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Saved {
    pub name: String,
    spec: ServiceSpec,
}

/// A node's availability as the run found it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SavedNode {
    pub hostname: String,
    availability: NodeSpecAvailabilityEnum,
}

/// How long a restored service may take to converge.
const RESTORE_CONVERGE: Duration = Duration::from_secs(180);

impl Driver {
    /// The engine must be a manager of a swarm rollcheck did not make: it never inits one.
    pub async fn ensure_manager(&self) -> Result<(), DriverError> {
        let info = self.call("info", self.docker.info()).await?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.control_available == Some(true) {
            return Ok(());
        }
        let state = swarm
            .local_node_state
            .map_or("none".to_string(), |s| s.to_string());
        Err(DriverError::NotAManager {
            socket: self.socket().to_string(),
            state,
        })
    }

    /// Each named service's spec; one that does not exist is an error naming it.
    pub async fn save_specs(&self, names: &[String]) -> Result<Vec<Saved>, DriverError> {
        let mut saved = Vec::new();
        for name in names {
            let service = match self.inspect(name).await {
                Err(DriverError::NoSuchService { service }) => {
                    return Err(DriverError::NotOnSwarm {
                        service,
                        socket: self.socket().to_string(),
                    });
                }
                other => other?,
            };
            saved.push(Saved {
                name: name.clone(),
                spec: service.spec.unwrap_or_default(),
            });
        }
        Ok(saved)
    }

    /// Puts back every spec that differs from the saved one and waits until the service runs
    /// it: one line per service, each restored even when an earlier one failed.
    pub async fn restore_specs(&self, saved: &[Saved]) -> Vec<Result<String, String>> {
        let mut lines = Vec::new();
        for s in saved {
            lines.push(
                self.restore_spec(s)
                    .await
                    .map_err(|e| format!("{}: spec NOT restored: {e}", s.name)),
            );
        }
        lines
    }

    async fn restore_spec(&self, s: &Saved) -> Result<String, DriverError> {
        let now = self.inspect(&s.name).await?;
        if now.spec.as_ref() == Some(&s.spec) {
            return Ok(format!("{}: unchanged", s.name));
        }
        let version = now.version.and_then(|v| v.index).unwrap_or(0);
        let opts = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .build();
        let since = chrono::Utc::now();
        self.call(
            "restore service",
            self.docker
                .update_service(&s.name, s.spec.clone(), opts, None),
        )
        .await?;
        let converged = self
            .wait_converged(&s.name, RESTORE_CONVERGE, Some(since))
            .await?;
        Ok(format!(
            "{}: spec restored, {} tasks on {} in {:.1?}",
            s.name, converged.running, converged.image, converged.took
        ))
    }

    /// The swarm's node with this hostname. None, or several (a node that left and joined
    /// again keeps its old `down` entry under the same name), is an error naming them.
    async fn node_by_hostname(&self, hostname: &str) -> Result<Node, DriverError> {
        let nodes = self
            .call("list nodes", self.docker.list_nodes(None))
            .await?;
        let mut matching: Vec<Node> = nodes
            .into_iter()
            .filter(|n| {
                n.description.as_ref().and_then(|d| d.hostname.as_deref()) == Some(hostname)
            })
            .collect();
        if matching.len() == 1 {
            return Ok(matching.remove(0));
        }
        Err(DriverError::NodeNotOnSwarm {
            node: hostname.to_string(),
            socket: self.socket().to_string(),
            found: matching
                .iter()
                .filter_map(|n| n.id.as_deref())
                .map(|id| id.chars().take(12).collect())
                .collect(),
        })
    }

    /// Each named node's availability; one that is not in the swarm is an error.
    pub async fn save_nodes(&self, hostnames: &[String]) -> Result<Vec<SavedNode>, DriverError> {
        let mut saved = Vec::new();
        for hostname in hostnames {
            let node = self.node_by_hostname(hostname).await?;
            saved.push(SavedNode {
                hostname: hostname.clone(),
                availability: node
                    .spec
                    .and_then(|s| s.availability)
                    .unwrap_or(NodeSpecAvailabilityEnum::ACTIVE),
            });
        }
        Ok(saved)
    }

    /// `docker node update --availability` through this manager. Returns what changed.
    pub async fn set_node_availability(
        &self,
        hostname: &str,
        availability: NodeSpecAvailabilityEnum,
    ) -> Result<String, DriverError> {
        let node = self.node_by_hostname(hostname).await?;
        let id = node.id.clone().unwrap_or_default();
        let mut spec = node.spec.unwrap_or_default();
        let before = spec.availability;
        spec.availability = Some(availability);
        let version = node.version.and_then(|v| v.index).unwrap_or(0);
        let opts = UpdateNodeOptionsBuilder::default()
            .version(version as i64)
            .build();
        self.call(
            format!("update node {hostname}"),
            self.docker.update_node(&id, spec, opts),
        )
        .await?;
        Ok(format!(
            "node {hostname}: {} -> {availability}",
            before.map_or("unknown".to_string(), |a| a.to_string())
        ))
    }

    /// Puts back every node's saved availability that a step changed; one line per node.
    pub async fn restore_nodes(&self, saved: &[SavedNode]) -> Vec<Result<String, String>> {
        let mut lines = Vec::new();
        for s in saved {
            let restored = async {
                let now = self
                    .node_by_hostname(&s.hostname)
                    .await?
                    .spec
                    .and_then(|spec| spec.availability);
                if now == Some(s.availability) {
                    return Ok(format!("node {}: unchanged", s.hostname));
                }
                let changed = self
                    .set_node_availability(&s.hostname, s.availability)
                    .await?;
                Ok::<_, DriverError>(format!("{changed} (restored)"))
            }
            .await;
            lines.push(restored.map_err(|e| {
                format!(
                    "node {}: availability NOT restored (was {}): {e}",
                    s.hostname, s.availability
                )
            }));
        }
        lines
    }
}
