//! A run in a Swarm lab: connect, images, provision, measure with the driver as the steps'
//! orchestrator and as the watcher, then tear down what this run created — on success, on
//! error and on Ctrl-C alike.

use super::{RunError, RunOptions, RunResult, Watch, measure};
use crate::analysis::truth::ServerLog;
use crate::clock::Clock;
use crate::driver::cluster::Shape;
use crate::driver::{Cluster, Driver, DriverError, LabHandle};
use crate::event::EventSink;
use crate::runner::steps::Orchestrator;
use crate::scenario::{Action, Plan};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use tokio_util::sync::CancellationToken;

mod docker;
mod existing;
use docker::run_docker;
use existing::run_existing;

/// The driver and the lab it built, as the steps' orchestrator and the run's watcher.
struct Lab<'a> {
    driver: &'a Driver,
    handle: LabHandle,
}

impl Orchestrator for Lab<'_> {
    async fn apply(
        &self,
        action: &Action,
        _: Option<&str>,
        clock: Clock,
        events: &EventSink,
    ) -> Result<String, String> {
        self.driver
            .apply(&self.handle, action, &clock, events)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Watch for Lab<'_> {
    fn start(
        &self,
        clock: Clock,
        sink: EventSink,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.driver.watch(&self.handle, clock, sink, stop)
    }

    async fn environment(&self) -> BTreeMap<String, String> {
        Lab::engine_environment(self.driver).await
    }

    async fn server_log(&self) -> ServerLog {
        self.driver.server_log().await
    }
}

impl Lab<'_> {
    /// The engine the run used: socket, versions, swarm state.
    async fn engine_environment(driver: &Driver) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([("docker.socket".to_string(), driver.socket().to_string())]);
        match driver.engine_versions().await {
            Ok(v) => {
                env.insert("docker.server".into(), v.server);
                env.insert("docker.api".into(), v.api);
                env.insert("docker.os".into(), v.os);
                env.insert("docker.kernel".into(), v.kernel);
                env.insert("docker.swarm".into(), v.swarm);
            }
            Err(e) => {
                env.insert("docker.error".into(), e.to_string());
            }
        }
        env
    }
}

/// A cluster lab: node faults go to the node containers, Swarm actions to whichever manager
/// answers (without quorum they fail, and the step records it), watchers to every node.
struct ClusterLab {
    cluster: Cluster,
    handle: LabHandle,
}

/// A node fault goes to the node containers; `None` for an action that is not one.
async fn node_fault(cluster: &Cluster, action: &Action) -> Option<Result<String, DriverError>> {
    Some(match action {
        Action::Node { op, node } => cluster.fault(*op, *node).await,
        Action::ManagerStop { count } => cluster.stop_managers(*count).await,
        Action::LeaderStop => cluster.stop_leader().await,
        _ => return None,
    })
}

impl Orchestrator for ClusterLab {
    async fn apply(
        &self,
        action: &Action,
        _: Option<&str>,
        clock: Clock,
        events: &EventSink,
    ) -> Result<String, String> {
        let result = match node_fault(&self.cluster, action).await {
            Some(r) => r,
            None => match self.cluster.manager().await {
                Ok(m) => m.apply(&self.handle, action, &clock, events).await,
                Err(e) => Err(e),
            },
        };
        result.map_err(|e| e.to_string())
    }
}

impl Watch for ClusterLab {
    fn start(
        &self,
        clock: Clock,
        sink: EventSink,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.cluster.watch(&self.handle, clock, sink, stop)
    }

    async fn environment(&self) -> BTreeMap<String, String> {
        cluster_environment(&self.cluster).await
    }

    async fn server_log(&self) -> ServerLog {
        self.cluster.server_log().await
    }

    async fn generators(
        &self,
        plan: &Plan,
        quiet: bool,
    ) -> Result<Option<crate::driver::cluster::agents::Generators>, String> {
        let progress = say(quiet);
        self.cluster
            .deploy_generators(plan, &self.handle, &progress)
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// The cluster lab a run used: its shape and every node as `lab status` shows it.
async fn cluster_environment(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([("lab.shape".to_string(), cluster.shape.to_string())]);
    for row in cluster.status().await {
        env.insert(
            format!("node.{}", row.name),
            format!(
                "{} {} {} {} engine {}",
                row.role, row.status, row.availability, row.manager, row.engine
            )
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        );
    }
    env
}

/// What to do when a lab's teardown did not finish.
const LAB_DOWN: &str = "run `rollcheck lab down`";

/// Setup events are not on the run clock (it starts with the load): a sink that prints them
/// as progress, and the task doing it (ends once every sender is dropped).
fn setup_printer(quiet: bool) -> (EventSink, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::event::Event>();
    let printer = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if !quiet {
                eprintln!("lab: {} {} {}", e.kind(), e.subject(), e.detail());
            }
        }
    });
    (tx, printer)
}

/// Prints lab progress for the user on stderr; these lines are the harness's, not a worker's.
fn say(quiet: bool) -> impl Fn(&str) + Send + Sync {
    move |line: &str| {
        if !quiet {
            eprintln!("lab: {line}");
        }
    }
}

/// Provisions the lab, measures, and always tears down. `Err` means nothing was measured.
pub async fn run_in_lab(
    plan: &Plan,
    driver: &Driver,
    id: &str,
    dir: &Path,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunResult, RunError> {
    let progress = say(opts.quiet);
    if plan.on_existing_swarm() {
        // Before anything is pulled or built on the user's engine.
        driver
            .ensure_manager()
            .await
            .map_err(|e| RunError::Lab(e.to_string()))?;
    }
    if plan.stack().is_some() {
        crate::driver::stack::cli_version()
            .await
            .map_err(|e| RunError::Lab(e.to_string()))?;
    }
    driver
        .ensure_images(plan, None, &progress)
        .await
        .map_err(|e| RunError::Lab(e.to_string()))?;
    let run = Around {
        plan,
        id,
        dir,
        opts,
        cancel,
    };
    if let Some(shape) = Shape::of(plan) {
        return run_in_cluster(run, driver, shape).await;
    }
    if let Some(stack) = plan.stack() {
        return run_stack(run, stack, driver).await;
    }
    if let Some(existing) = plan.existing() {
        return run_existing(run, existing, driver).await;
    }
    if let Some(docker) = plan.docker() {
        return run_docker(run, docker, driver).await;
    }
    run.go(
        |clock, tx| async move { driver.provision(plan, &clock, &tx).await },
        |handle| Lab { driver, handle },
        "removing what this run created",
        |_| driver.teardown(),
        LAB_DOWN,
    )
    .await
}

/// The same for a `swarm-cluster` lab: bring the lab up (or reuse it), provision this run's
/// part of it, measure, and remove this run's part. The lab itself stays up for the next run.
async fn run_in_cluster(
    run: Around<'_>,
    driver: &Driver,
    shape: Shape,
) -> Result<RunResult, RunError> {
    let plan = run.plan;
    let progress = say(run.opts.quiet);
    let up = tokio::select! {
        r = Cluster::up(driver, shape, &progress) => Some(r),
        _ = run.cancel.cancelled() => None,
    };
    let cluster = match up {
        None => {
            return Err(RunError::Lab(
                "interrupted while bringing the lab up".into(),
            ));
        }
        Some(Err(e)) => return Err(RunError::Lab(e.to_string())),
        Some(Ok(c)) => c,
    };
    let progress = &progress;
    let cluster = &cluster;
    if let Some(stack) = plan.stack() {
        let dir = run.dir;
        say(run.opts.quiet)(&format!(
            "deploying stack {} ({}) on the cluster lab",
            stack.name,
            stack.files_shown()
        ));
        return run
            .go(
                |clock, tx| async move {
                    cluster
                        .deploy_stack(plan, stack, dir, &clock, &tx, progress)
                        .await
                },
                |handle| StackLab {
                    on: On::Cluster(cluster),
                    handle: tokio::sync::Mutex::new(handle),
                    stack,
                },
                "removing what this run's stack created (the lab stays up; `rollcheck lab down` removes it)",
                |failed| {
                    let theirs = matches!(failed, Some(DriverError::ForeignStack(_)));
                    async move {
                        if theirs {
                            return cluster.teardown(progress).await;
                        }
                        cluster.teardown_stack(&stack.name, progress).await
                    }
                },
                LAB_DOWN,
            )
            .await;
    }
    run.go(
        |clock, tx| async move { cluster.provision(plan, &clock, &tx, progress).await },
        |handle| ClusterLab {
            cluster: cluster.clone(),
            handle,
        },
        "removing what this run created (the lab stays up; `rollcheck lab down` removes it)",
        |_| cluster.teardown(progress),
        LAB_DOWN,
    )
    .await
}

/// One run in a lab, whatever the lab: set it up (its setup events printed as progress:
/// they are not on the run clock, which starts with the load), measure with what was built,
/// and tear down — on success, on error and on Ctrl-C alike.
struct Around<'a> {
    plan: &'a Plan,
    id: &'a str,
    dir: &'a Path,
    opts: &'a RunOptions,
    cancel: &'a CancellationToken,
}

impl Around<'_> {
    async fn go<H, L, S, T>(
        self,
        set_up: impl FnOnce(Clock, EventSink) -> S,
        lab: impl FnOnce(H) -> L,
        removing: &str,
        tear_down: impl FnOnce(Option<&DriverError>) -> T,
        if_incomplete: &str,
    ) -> Result<RunResult, RunError>
    where
        S: Future<Output = Result<H, DriverError>>,
        L: Orchestrator + Watch,
        T: Future<Output = Result<(), DriverError>>,
    {
        let (tx, printer) = setup_printer(self.opts.quiet);
        let built = tokio::select! {
            r = set_up(Clock::start(), tx) => Some(r),
            _ = self.cancel.cancelled() => None,
        };
        let _ = printer.await;
        let (result, failed) = match built {
            None => (
                Err(RunError::Lab("interrupted while setting up the lab".into())),
                None,
            ),
            Some(Err(e)) => (Err(RunError::Lab(e.to_string())), Some(e)),
            Some(Ok(handle)) => {
                let lab = lab(handle);
                let r = measure(
                    self.plan,
                    self.id,
                    self.dir,
                    &lab,
                    &lab,
                    self.opts,
                    self.cancel,
                )
                .await;
                (r, None)
            }
        };
        say(self.opts.quiet)(removing);
        if let Err(e) = tear_down(failed.as_ref()).await {
            eprintln!(
                "warning: cleanup of run {} incomplete: {e}; {if_incomplete}",
                self.id
            );
        }
        result
    }
}

/// A compose stack on a lab: Swarm actions go to the service the step names, `stack_deploy`
/// deploys the stack again, the watchers follow every service of the stack. On the cluster
/// lab node faults go to the nodes and the rest to whichever manager answers.
struct StackLab<'a> {
    on: On<'a>,
    handle: tokio::sync::Mutex<crate::driver::stack::StackHandle>,
    stack: &'a crate::scenario::StackSetup,
}

/// Where a stack runs.
enum On<'a> {
    /// The local engine's swarm (rollcheck's single-node lab, or the user's).
    Engine(&'a Driver),
    Cluster(&'a Cluster),
}

impl Orchestrator for StackLab<'_> {
    async fn apply(
        &self,
        action: &Action,
        service: Option<&str>,
        clock: Clock,
        events: &EventSink,
    ) -> Result<String, String> {
        let driver = match self.on {
            On::Engine(driver) => driver,
            On::Cluster(cluster) => {
                if let Some(r) = node_fault(cluster, action).await {
                    return r.map_err(|e| e.to_string());
                }
                cluster.manager().await.map_err(|e| e.to_string())?
            }
        };
        let result = match (action, service) {
            (
                Action::StackDeploy {
                    files,
                    compose,
                    wait,
                },
                _,
            ) => {
                let mut handle = self.handle.lock().await;
                let converge = matches!(wait, crate::scenario::Wait::Converged { .. });
                driver
                    .redeploy_stack(&mut handle, files, compose, converge, &clock, events)
                    .await
            }
            (other, Some(name)) => driver.apply_to(name, other, &clock, events).await,
            (other, None) => {
                return Err(format!("{} names no service of the stack", other.name()));
            }
        };
        result.map_err(|e| e.to_string())
    }
}

impl Watch for StackLab<'_> {
    fn start(
        &self,
        clock: Clock,
        sink: EventSink,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let services = self
            .stack
            .compose
            .services
            .keys()
            .map(|s| self.stack.full_name(s))
            .collect();
        match self.on {
            On::Engine(driver) => driver.watch_services(services, clock, sink, stop),
            On::Cluster(cluster) => cluster.watch_services(services, clock, sink, stop),
        }
    }

    async fn environment(&self) -> BTreeMap<String, String> {
        let mut env = match self.on {
            On::Engine(driver) => Lab::engine_environment(driver).await,
            On::Cluster(cluster) => cluster_environment(cluster).await,
        };
        env.insert("stack.name".into(), self.stack.name.clone());
        env.insert("stack.files".into(), self.stack.files_shown());
        env
    }

    async fn server_log(&self) -> ServerLog {
        match self.on {
            On::Engine(driver) => driver.server_log().await,
            On::Cluster(cluster) => cluster.server_log().await,
        }
    }
}

/// Deploys the plan's stack, measures, and always removes what the stack created.
async fn run_stack(
    run: Around<'_>,
    stack: &crate::scenario::StackSetup,
    driver: &Driver,
) -> Result<RunResult, RunError> {
    let (plan, dir, run_quiet) = (run.plan, run.dir, run.opts.quiet);
    say(run.opts.quiet)(&format!(
        "deploying stack {} ({})",
        stack.name,
        stack.files_shown()
    ));
    run.go(
        |clock, tx| async move {
            let handle = driver.deploy_stack(stack, dir, &clock, &tx).await?;
            crate::ready::wait(&plan.readiness(), &plan.load).await?;
            Ok(handle)
        },
        |handle| StackLab {
            on: On::Engine(driver),
            handle: tokio::sync::Mutex::new(handle),
            stack,
        },
        if stack.keep {
            "the stack stays deployed ([stack] keep = true)"
        } else {
            "removing what this run's stack created"
        },
        |failed| {
            // A stack refused as someone else's was never deployed: its objects are theirs.
            // Otherwise whatever carries the stack's name is this run's.
            let theirs = matches!(failed, Some(DriverError::ForeignStack(_)));
            // Kept only once deployed: a stack whose setup failed is removed.
            let kept = stack.keep && failed.is_none();
            async move {
                if kept {
                    // The stack is all this run created; its services keep the run's labels.
                    say(run_quiet)(&format!(
                        "stack {} kept ([stack] keep = true; `docker stack rm {}` removes it)",
                        stack.name, stack.name
                    ));
                    return Ok(());
                }
                driver.teardown().await?;
                if theirs {
                    return Ok(());
                }
                driver.remove_stack(&stack.name).await
            }
        },
        LAB_DOWN,
    )
    .await
}
