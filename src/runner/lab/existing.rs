//! A run on the user's own swarm (`[lab] kind = "existing"`) without a stack: the steps change
//! services that already run there (and, if the scenario opts in, drain nodes), and the run
//! puts every spec and node availability back at the end.

use super::{Around, Lab, RunError, RunResult, Watch, say};
use crate::analysis::truth::ServerLog;
use crate::clock::Clock;
use crate::driver::{Driver, DriverError};
use crate::event::EventSink;
use crate::runner::steps::Orchestrator;
use crate::scenario::{Action, ExistingSetup};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// The user's running services on their swarm: Swarm actions go to the service the step
/// names, the watchers follow those services.
struct ExistingLab<'a> {
    driver: &'a Driver,
    existing: &'a ExistingSetup,
}

impl Orchestrator for ExistingLab<'_> {
    async fn apply(
        &self,
        action: &Action,
        service: Option<&str>,
        clock: Clock,
        events: &EventSink,
    ) -> Result<String, String> {
        if let Action::NodeAvailability { node, drain } = action {
            return node_availability(self.driver, node, *drain).await;
        }
        // Validation gives every Swarm step on an existing swarm its service.
        let Some(name) = service else {
            return Err(format!("{} names no service", action.name()));
        };
        self.driver
            .apply_to(name, action, &clock, events)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Watch for ExistingLab<'_> {
    fn start(
        &self,
        clock: Clock,
        sink: EventSink,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.driver
            .watch_services(self.existing.services.clone(), clock, sink, stop)
    }

    async fn environment(&self) -> BTreeMap<String, String> {
        let mut env = Lab::engine_environment(self.driver).await;
        env.insert(
            "existing.services".into(),
            self.existing.services.join(", "),
        );
        env.insert("existing.restore".into(), self.existing.restore.to_string());
        // rollcheck reaches only the engine DOCKER_HOST names, not the other nodes' engines.
        env.insert(
            "existing.watched".into(),
            "task states of every node (through the manager); container events and health logs of this engine's node only".into(),
        );
        env
    }

    async fn server_log(&self) -> ServerLog {
        // The user's containers carry no run label, and most nodes' engines are out of reach.
        ServerLog::NotRead(
            "an existing swarm: rollcheck does not read your containers' logs".into(),
        )
    }
}

/// `node_drain` / `node_activate` of a node of the user's swarm, through its manager.
async fn node_availability(driver: &Driver, node: &str, drain: bool) -> Result<String, String> {
    use bollard::models::NodeSpecAvailabilityEnum as A;
    let availability = if drain { A::DRAIN } else { A::ACTIVE };
    driver
        .set_node_availability(node, availability)
        .await
        .map_err(|e| e.to_string())
}

/// Steps on services already running on the user's swarm: their specs are read first (each
/// must exist) and put back at the end — on success, on error and on Ctrl-C alike — unless
/// `[lab] restore = false`. Nothing is created there, so nothing else is removed.
pub(super) async fn run_existing(
    run: Around<'_>,
    existing: &ExistingSetup,
    driver: &Driver,
) -> Result<RunResult, RunError> {
    let (plan, quiet, dir) = (run.plan, run.opts.quiet, run.dir);
    let saved = std::sync::OnceLock::new();
    let saved = &saved;
    let nodes = std::sync::OnceLock::new();
    let nodes = &nodes;
    run.go(
        |_, _| async move {
            driver.ensure_manager().await?;
            let _ = saved.set(driver.save_specs(&existing.services).await?);
            let _ = nodes.set(driver.save_nodes(&plan.swarm_nodes()).await?);
            // On disk too, before the first step: a restore that fails can be done by hand.
            let before = serde_json::json!({ "services": saved.get(), "nodes": nodes.get() });
            let path = dir.join("existing-before.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&before).unwrap_or_default())
                .map_err(|source| DriverError::Io { path, source })?;
            crate::ready::wait(&plan.readiness(), &plan.load).await?;
            Ok(())
        },
        |()| ExistingLab { driver, existing },
        if existing.restore {
            "restoring the services' specs"
        } else {
            "leaving the services as the steps left them ([lab] restore = false)"
        },
        |_| async move {
            // Nodes first, whatever `restore` says: a drained node of the user's swarm must
            // not stay drained, and a service cannot converge on a node that takes no tasks.
            let mut lines = Vec::new();
            if let Some(nodes) = nodes.get() {
                lines = driver.restore_nodes(nodes).await;
            }
            if let Some(saved) = saved.get().filter(|_| existing.restore) {
                lines.extend(driver.restore_specs(saved).await);
            }
            let mut failed = Vec::new();
            for line in lines {
                match line {
                    Ok(line) => say(quiet)(&line),
                    Err(line) => failed.push(line),
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            Err(DriverError::Stack(failed.join("; ")))
        },
        "put it back by hand: existing-before.json in the report directory has each service's spec and node's availability as the run found them",
    )
    .await
}
