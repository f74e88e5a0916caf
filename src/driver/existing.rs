//! Services already running on the user's swarm (`[lab] kind = "existing"`): rollcheck reads
//! each one's spec before the first step and, at the end, puts back any spec a step changed
//! and waits for the service to converge on it. It creates and removes nothing there.

use super::{Driver, DriverError};
use bollard::models::{Node, NodeSpecAvailabilityEnum, ServiceSpec};
use bollard::query_parameters::{UpdateNodeOptionsBuilder, UpdateServiceOptionsBuilder};
use std::time::Duration;

/// A service's spec as the run found it.
#[derive(Debug, Clone)]
pub struct Saved {
    pub name: String,
    spec: ServiceSpec,
}

/// A node's availability as the run found it.
#[derive(Debug, Clone)]
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
    /// it. Returns one line per service for the user. A service a step removed is not
    /// recreated (its spec is in the line, and rollcheck never creates on a user's swarm).
    pub async fn restore_specs(&self, saved: &[Saved]) -> Result<Vec<String>, DriverError> {
        let mut lines = Vec::new();
        for s in saved {
            let now = match self.inspect(&s.name).await {
                Ok(now) => now,
                Err(DriverError::NoSuchService { .. }) => {
                    lines.push(format!("{}: removed by a step; not recreated", s.name));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if now.spec.as_ref() == Some(&s.spec) {
                lines.push(format!("{}: unchanged", s.name));
                continue;
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
            lines.push(format!(
                "{}: spec restored, {} tasks on {} in {:.1?}",
                s.name, converged.running, converged.image, converged.took
            ));
        }
        Ok(lines)
    }

    /// The swarm's node with this hostname; one that is not there is an error naming it.
    async fn node_by_hostname(&self, hostname: &str) -> Result<Node, DriverError> {
        let nodes = self
            .call("list nodes", self.docker.list_nodes(None))
            .await?;
        nodes
            .into_iter()
            .find(|n| n.description.as_ref().and_then(|d| d.hostname.as_deref()) == Some(hostname))
            .ok_or_else(|| DriverError::NotOnSwarm {
                service: format!("node {hostname}"),
                socket: self.socket().to_string(),
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

    /// Puts back every node's saved availability that a step changed.
    pub async fn restore_nodes(&self, saved: &[SavedNode]) -> Result<Vec<String>, DriverError> {
        let mut lines = Vec::new();
        for s in saved {
            let now = self
                .node_by_hostname(&s.hostname)
                .await?
                .spec
                .and_then(|spec| spec.availability);
            if now == Some(s.availability) {
                lines.push(format!("node {}: unchanged", s.hostname));
                continue;
            }
            let changed = self
                .set_node_availability(&s.hostname, s.availability)
                .await?;
            lines.push(format!("{changed} (restored)"));
        }
        Ok(lines)
    }
}
