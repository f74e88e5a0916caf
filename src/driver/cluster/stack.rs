//! A compose stack on the cluster lab: its images onto the nodes, `docker stack deploy`
//! through a manager's socket, and rollcheck's outer edge on the host in front of the port
//! the stack's front door publishes on every node that runs tasks. At the end the lab is
//! restored and the stack removed (what carries the run's label, then the stack's own
//! networks and configs by its namespace).

use super::*;
use crate::driver::stack::StackHandle;
use crate::scenario::StackSetup;
use std::path::Path;

impl Cluster {
    pub async fn deploy_stack(
        &self,
        plan: &Plan,
        stack: &StackSetup,
        dir: &Path,
        clock: &Clock,
        events: &EventSink,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<StackHandle, DriverError> {
        let outer = stack
            .outer
            .as_ref()
            .ok_or_else(|| DriverError::Unsupported {
                what: "a stack on the cluster lab without an outer edge".into(),
            })?;
        self.distribute_images(&crate::driver::images::plan_images(plan), progress)
            .await?;
        let manager = self.manager().await?;
        for run in manager.remove_orphan_networks().await? {
            progress(&format!("removed the leftover network of run {run}"));
        }
        // Swarm hands a freed subnet out again; a node still holding it rejects the tasks.
        self.settle_overlays(progress).await?;
        let outer_name = edge::container_name(&stack.name);
        self.host.remove_leftover_container(&outer_name).await?;
        let handle = manager.deploy_stack(stack, dir, clock, events).await?;
        let backends: Vec<(String, SocketAddr)> = self
            .nodes
            .iter()
            .filter(|n| self.shape.runs_tasks(n.name))
            .map(|n| {
                (
                    n.name.to_string(),
                    SocketAddr::from((n.ip, outer.node_port)),
                )
            })
            .collect();
        let body = super::provision::outer_edge_body(
            &outer.edge,
            &backends,
            plan.load.timeout,
            Probe::Connect,
            self.host.labels("edge"),
        );
        self.host
            .create_and_start("edge container", &outer_name, body)
            .await?;
        crate::ready::wait(&plan.readiness(), &plan.load).await?;
        progress(&format!(
            "stack {} ready behind {:?} on {} (port {} on {} nodes)",
            stack.name,
            outer.edge.kind,
            outer.edge.publish,
            outer.node_port,
            backends.len()
        ));
        Ok(handle)
    }

    /// Removes this run's stack: the lab restored first (a node a step stopped may hold
    /// tasks), then inside the cluster through a manager, and the outer edge on the host.
    pub async fn teardown_stack(
        &self,
        name: &str,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<(), DriverError> {
        let inside = async {
            self.restore(progress).await?;
            let manager = self.manager().await?;
            manager.teardown().await?;
            manager.remove_stack(name).await
        }
        .await;
        self.host.teardown().await?;
        inside
    }
}
