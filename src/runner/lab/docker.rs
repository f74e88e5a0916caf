//! A run in a `docker` lab: plain containers and rollcheck's nginx on one engine, no
//! orchestrator. The steps start, stop and remove containers and switch the edge's upstream;
//! the watchers follow this run's containers; everything labelled with the run is removed at
//! the end, on every path.

use super::{Around, Lab, RunError, RunResult, Watch, say};
use crate::analysis::truth::ServerLog;
use crate::clock::Clock;
use crate::driver::Driver;
use crate::driver::containers::DockerHandle;
use crate::event::EventSink;
use crate::runner::steps::Orchestrator;
use crate::scenario::{Action, DockerSetup};
use crate::testsvc::truth::Seen;
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

struct DockerLab<'a> {
    driver: &'a Driver,
    handle: DockerHandle,
    /// The server truth of containers a step removed, read just before (and how many).
    removed: tokio::sync::Mutex<(Seen, u64)>,
}

impl Orchestrator for DockerLab<'_> {
    async fn apply(
        &self,
        action: &Action,
        _: Option<&str>,
        clock: Clock,
        events: &EventSink,
    ) -> Result<String, String> {
        let d = self.driver;
        let result = match action {
            Action::ContainerRun(c) => d.container_run(c).await,
            Action::ContainerWaitHealthy { name, timeout } => {
                d.container_wait_healthy(name, *timeout).await
            }
            Action::ContainerStop {
                name,
                signal,
                grace,
            } => d.container_stop(name, signal, *grace).await,
            Action::ContainerKill { name, signal } => d.container_kill(name, signal).await,
            Action::ContainerRm { name } => {
                // Its log goes with it: the server's record of the requests it served is
                // read first.
                let mut removed = self.removed.lock().await;
                let (seen, tasks) = &mut *removed;
                *tasks += u64::from(d.read_container_truth(name, seen).await);
                d.container_rm(name).await
            }
            Action::UpstreamSet {
                servers,
                switch,
                drain,
            } => {
                d.upstream_set(&self.handle, servers, *switch, *drain, clock, events)
                    .await
            }
            // Validation keeps Swarm actions out of a docker lab.
            other => return Err(format!("{} needs a swarm", other.name())),
        };
        result.map_err(|e| e.to_string())
    }
}

impl Watch for DockerLab<'_> {
    fn start(
        &self,
        clock: Clock,
        sink: EventSink,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        // No services: the engine's events and health logs of this run's containers.
        self.driver.watch_services(Vec::new(), clock, sink, stop)
    }

    async fn environment(&self) -> BTreeMap<String, String> {
        let mut env = Lab::engine_environment(self.driver).await;
        env.insert("lab.kind".into(), "docker".into());
        env
    }

    async fn server_log(&self) -> ServerLog {
        let mut log = self.driver.server_log().await;
        if let ServerLog::Read { seen, tasks, .. } = &mut log {
            let (removed, n) = std::mem::take(&mut *self.removed.lock().await);
            seen.merge(removed);
            *tasks += n;
        }
        log
    }
}

/// Starts the containers and the edge, measures, and removes what the run created.
pub(super) async fn run_docker(
    run: Around<'_>,
    setup: &DockerSetup,
    driver: &Driver,
) -> Result<RunResult, RunError> {
    let plan = run.plan;
    say(run.opts.quiet)(&format!(
        "starting {} container(s) and the nginx edge on {}",
        setup.containers.len(),
        setup.edge.publish
    ));
    run.go(
        |clock, tx| async move { driver.provision_docker(plan, setup, &clock, &tx).await },
        |handle| DockerLab {
            driver,
            handle,
            removed: Default::default(),
        },
        "removing what this run created",
        |_| driver.teardown(),
        super::LAB_DOWN,
    )
    .await
}
