//! Removing what rollcheck created, and listing it. Everything goes by label: a run removes
//! only objects labelled with its run id, `lab down` only objects labelled as managed by
//! rollcheck, and the swarm is left only if rollcheck initialised it. Images are kept.

use super::{Driver, DriverError, LABEL_CREATED_SWARM, LABEL_MANAGED, LABEL_RUN};
use crate::poll::{self, Attempt};
use bollard::models::LocalNodeState;
use bollard::query_parameters::{
    LeaveSwarmOptionsBuilder, ListConfigsOptions, ListContainersOptions, ListNetworksOptions,
    ListSecretsOptions, ListServicesOptions, RemoveContainerOptionsBuilder,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long to wait for Swarm to remove the task containers of deleted services; the
/// network cannot be removed while they are attached.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(40);

/// One row of `rollcheck lab status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// `swarm`, `service`, `container`, `network` or `image`.
    pub kind: &'static str,
    pub name: String,
    /// The run that created it (empty for the swarm and images).
    pub run: String,
    pub state: String,
}

fn filter(label: String) -> Option<HashMap<String, Vec<String>>> {
    Some(HashMap::from([("label".to_string(), vec![label])]))
}

impl Driver {
    /// Removes the services, containers and networks of this run.
    pub async fn teardown(&self) -> Result<(), DriverError> {
        self.teardown_run(&self.run_id.clone()).await
    }

    pub(crate) async fn teardown_run(&self, run_id: &str) -> Result<(), DriverError> {
        self.remove_labelled(&format!("{LABEL_RUN}={run_id}")).await
    }

    /// Tears down every other run that still has a network here: a run killed during its
    /// teardown (SIGKILL, a lost engine) can leave its network behind after its services are
    /// gone, where neither a service nor a container leads to it. Returns those runs' ids.
    /// Only where no other run can be live: the cluster lab, whose lab lock a run holds.
    pub(crate) async fn remove_orphan_networks(&self) -> Result<Vec<String>, DriverError> {
        let networks = self
            .call(
                "list networks",
                self.docker.list_networks(Some(ListNetworksOptions {
                    filters: filter(format!("{LABEL_MANAGED}=true")),
                })),
            )
            .await?;
        let mut runs: Vec<String> = networks
            .into_iter()
            .filter_map(|n| n.labels?.remove(LABEL_RUN))
            .filter(|run| *run != self.run_id)
            .collect();
        runs.sort();
        runs.dedup();
        for run in &runs {
            self.teardown_run(run).await?;
        }
        Ok(runs)
    }

    /// Removes everything rollcheck manages (every run), then leaves the swarm if rollcheck
    /// created it.
    pub async fn lab_down(&self) -> Result<(), DriverError> {
        let stacks = self.managed_stacks().await?;
        self.remove_labelled(&format!("{LABEL_MANAGED}=true"))
            .await?;
        // A killed stack run left its networks and configs, which carry only the stack's own
        // label: rollcheck's services named the stacks it deployed.
        for stack in stacks {
            self.remove_stack(&stack).await?;
        }
        if self.swarm_created_by_rollcheck().await? {
            let opts = LeaveSwarmOptionsBuilder::default().force(true).build();
            self.call("swarm leave", self.docker.leave_swarm(Some(opts)))
                .await?;
        }
        Ok(())
    }

    /// Services, containers and networks carrying `label` (`key=value`), in that order:
    /// services first so Swarm stops their tasks, networks last once nothing is attached.
    pub(crate) async fn remove_labelled(&self, label: &str) -> Result<(), DriverError> {
        let services = self.labelled_services(label).await?;
        for service in &services {
            if let Some(id) = &service.id {
                match self
                    .call("remove service", self.docker.delete_service(id))
                    .await
                {
                    Err(e) if !super::is_not_found(&e) => return Err(e),
                    _ => {}
                }
            }
        }
        // Task containers go away once Swarm has stopped them (after their grace period);
        // other containers (the edge) are removed at once. Not `poll::until`: the deadline
        // is not an error here but a change of method (tasks still there are then forced).
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let containers = self.labelled_containers(label).await?;
            if containers.is_empty() {
                break;
            }
            let late = Instant::now() >= deadline;
            for c in containers {
                let is_task = c
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("com.docker.swarm.task.id"));
                if (is_task && !late) || c.id.is_none() {
                    continue;
                }
                let opts = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                let id = c.id.unwrap_or_default();
                match self
                    .call(
                        "remove container",
                        self.docker.remove_container(&id, Some(opts)),
                    )
                    .await
                {
                    // Already gone, or already being removed by Swarm.
                    Err(DriverError::Engine {
                        source:
                            bollard::errors::Error::DockerResponseServerError {
                                status_code: 404 | 409,
                                ..
                            },
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                    Ok(()) => {}
                }
            }
            if late {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let networks = self
            .call(
                "list networks",
                self.docker.list_networks(Some(ListNetworksOptions {
                    filters: filter(label.to_string()),
                })),
            )
            .await?;
        for network in networks {
            let Some(id) = network.id else { continue };
            // Swarm detaches endpoints asynchronously; a removal right after the last task
            // stopped can fail with "has active endpoints".
            let remove = || async {
                match self
                    .call("remove network", self.docker.remove_network(&id))
                    .await
                {
                    Ok(()) => Attempt::Ready(()),
                    Err(e) if super::is_not_found(&e) => Attempt::Ready(()),
                    Err(e) => Attempt::Pending(e),
                }
            };
            poll::until(Duration::from_secs(20), Duration::from_millis(500), remove).await?;
        }
        // A stack's configs and secrets (rollcheck's own labs make none); a service that
        // used one is gone by now. Outside a swarm there are none, and listing them fails.
        if !self.swarm_active().await? {
            return Ok(());
        }
        let configs = self
            .call(
                "list configs",
                self.docker.list_configs(Some(ListConfigsOptions {
                    filters: filter(label.to_string()),
                })),
            )
            .await?;
        for id in configs.into_iter().filter_map(|c| c.id) {
            match self
                .call("remove config", self.docker.delete_config(&id))
                .await
            {
                Err(e) if !super::is_not_found(&e) => return Err(e),
                _ => {}
            }
        }
        let secrets = self
            .call(
                "list secrets",
                self.docker.list_secrets(Some(ListSecretsOptions {
                    filters: filter(label.to_string()),
                })),
            )
            .await?;
        for id in secrets.into_iter().filter_map(|s| s.id) {
            match self
                .call("remove secret", self.docker.delete_secret(&id))
                .await
            {
                Err(e) if !super::is_not_found(&e) => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Networks, configs and secrets carrying `label`, as `kind name` (outside a swarm: none).
    pub(crate) async fn labelled_objects(&self, label: &str) -> Result<Vec<String>, DriverError> {
        if !self.swarm_active().await? {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let networks = self
            .call(
                "list networks",
                self.docker.list_networks(Some(ListNetworksOptions {
                    filters: filter(label.to_string()),
                })),
            )
            .await?;
        out.extend(
            networks
                .into_iter()
                .filter_map(|n| Some(format!("network {}", n.name?))),
        );
        let configs = self
            .call(
                "list configs",
                self.docker.list_configs(Some(ListConfigsOptions {
                    filters: filter(label.to_string()),
                })),
            )
            .await?;
        out.extend(
            configs
                .into_iter()
                .filter_map(|c| Some(format!("config {}", c.spec?.name?))),
        );
        let secrets = self
            .call(
                "list secrets",
                self.docker.list_secrets(Some(ListSecretsOptions {
                    filters: filter(label.to_string()),
                })),
            )
            .await?;
        out.extend(
            secrets
                .into_iter()
                .filter_map(|s| Some(format!("secret {}", s.spec?.name?))),
        );
        Ok(out)
    }

    /// The stacks whose services rollcheck deployed (its label on a stack's service).
    async fn managed_stacks(&self) -> Result<Vec<String>, DriverError> {
        let mut stacks: Vec<String> = self
            .labelled_services(&format!("{LABEL_MANAGED}=true"))
            .await?
            .into_iter()
            .filter_map(|s| s.spec?.labels?.remove(super::stack::NAMESPACE))
            .collect();
        stacks.sort();
        stacks.dedup();
        Ok(stacks)
    }

    pub(crate) async fn labelled_services(
        &self,
        label: &str,
    ) -> Result<Vec<bollard::models::Service>, DriverError> {
        if !self.swarm_active().await? {
            return Ok(Vec::new());
        }
        let opts = ListServicesOptions {
            filters: filter(label.to_string()),
            status: Some(true),
        };
        self.call("list services", self.docker.list_services(Some(opts)))
            .await
    }

    pub(crate) async fn labelled_containers(
        &self,
        label: &str,
    ) -> Result<Vec<bollard::models::ContainerSummary>, DriverError> {
        let opts = ListContainersOptions {
            all: true,
            filters: filter(label.to_string()),
            ..Default::default()
        };
        self.call("list containers", self.docker.list_containers(Some(opts)))
            .await
    }

    async fn swarm_active(&self) -> Result<bool, DriverError> {
        let info = self.call("info", self.docker.info()).await?;
        let swarm = info.swarm.unwrap_or_default();
        Ok(swarm.local_node_state == Some(LocalNodeState::ACTIVE)
            && swarm.control_available == Some(true))
    }

    async fn swarm_created_by_rollcheck(&self) -> Result<bool, DriverError> {
        let info = self.call("info", self.docker.info()).await?;
        let Some(node_id) = info
            .swarm
            .and_then(|s| s.node_id)
            .filter(|id| !id.is_empty())
        else {
            return Ok(false);
        };
        let node = self
            .call("inspect node", self.docker.inspect_node(&node_id))
            .await?;
        Ok(node
            .spec
            .and_then(|s| s.labels)
            .is_some_and(|l| l.get(LABEL_CREATED_SWARM).map(String::as_str) == Some("true")))
    }

    /// Rows for `rollcheck lab status`: the swarm, then everything rollcheck manages.
    pub async fn lab_status(&self) -> Result<Vec<StatusRow>, DriverError> {
        let mut rows = Vec::new();
        let info = self.call("info", self.docker.info()).await?;
        let swarm = info.swarm.unwrap_or_default();
        let mut state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "inactive".into());
        if swarm.local_node_state == Some(LocalNodeState::ACTIVE)
            && self.swarm_created_by_rollcheck().await?
        {
            state.push_str(" (created by rollcheck)");
        }
        rows.push(StatusRow {
            kind: "swarm",
            name: swarm.node_addr.unwrap_or_default(),
            run: String::new(),
            state,
        });
        let managed = format!("{LABEL_MANAGED}=true");
        let run_of = |labels: Option<&HashMap<String, String>>| {
            labels
                .and_then(|l| l.get(LABEL_RUN))
                .cloned()
                .unwrap_or_default()
        };
        for s in self.labelled_services(&managed).await? {
            let spec = s.spec.unwrap_or_default();
            let tasks = s
                .service_status
                .map(|st| {
                    format!(
                        "{}/{} running",
                        st.running_tasks.unwrap_or(0),
                        st.desired_tasks.unwrap_or(0)
                    )
                })
                .unwrap_or_default();
            let update = s
                .update_status
                .and_then(|u| u.state)
                .map(|u| format!(", update {u}"))
                .unwrap_or_default();
            rows.push(StatusRow {
                kind: "service",
                run: run_of(spec.labels.as_ref()),
                name: spec.name.unwrap_or_default(),
                state: format!("{tasks}{update}"),
            });
        }
        for c in self.labelled_containers(&managed).await? {
            rows.push(StatusRow {
                kind: "container",
                run: run_of(c.labels.as_ref()),
                name: c
                    .names
                    .unwrap_or_default()
                    .join(",")
                    .trim_start_matches('/')
                    .to_string(),
                state: c.status.unwrap_or_default(),
            });
        }
        let opts = ListNetworksOptions {
            filters: filter(managed.clone()),
        };
        for n in self
            .call("list networks", self.docker.list_networks(Some(opts)))
            .await?
        {
            rows.push(StatusRow {
                kind: "network",
                run: run_of(n.labels.as_ref()),
                name: n.name.unwrap_or_default(),
                state: n.driver.unwrap_or_default(),
            });
        }
        for (name, size) in self.managed_images().await? {
            rows.push(StatusRow {
                kind: "image",
                name,
                run: String::new(),
                state: size,
            });
        }
        Ok(rows)
    }
}
