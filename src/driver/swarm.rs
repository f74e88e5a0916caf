//! Scenario steps that change the Swarm service (deploy, update_image, update, rollback,
//! scale, remove, wait) and the convergence check behind `wait = "converged"`. Every wait has a
//! deadline and ends in a distinct error (paused, rolled back, timeout), never a hang.

use super::lab::LabHandle;
use super::{Driver, DriverError, spec};
use crate::clock::Clock;
use crate::event::{Event, EventSink, What};
use crate::poll::{self, Attempt};
use crate::scenario::{Action, Wait};
use bollard::models::{ServiceSpec, ServiceUpdateStatusStateEnum as UpdateState, TaskState};
use bollard::query_parameters::UpdateServiceOptionsBuilder;
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(300);
/// Retries of an update that lost a race with another writer ("update out of sequence").
const UPDATE_ATTEMPTS: usize = 5;

/// How a wait for convergence ended.
#[derive(Debug, Clone)]
pub struct Converged {
    /// Swarm's `UpdateStatus.State` at the end (`completed`, `rollback_completed`, ...), if
    /// the service has been updated at all.
    pub state: Option<String>,
    pub message: Option<String>,
    /// Desired-running tasks, all running the target spec.
    pub running: usize,
    pub image: String,
    pub took: Duration,
}

impl Converged {
    pub fn summary(&self) -> String {
        let state = self
            .state
            .as_deref()
            .map(|s| format!(", update {s}"))
            .unwrap_or_default();
        format!(
            "{} tasks on {}{state}, converged in {:.1?}",
            self.running, self.image, self.took
        )
    }
}

impl Driver {
    /// Runs one Swarm action against the lab's service. Returns a short detail for the
    /// step's event (what changed, how convergence ended).
    pub async fn apply(
        &self,
        lab: &LabHandle,
        action: &Action,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<String, DriverError> {
        match action {
            Action::Deploy { wait } => {
                let what = self.deploy(lab).await?;
                self.finish(&lab.service.name, what, *wait, false, clock, events)
                    .await
            }
            other => self.apply_to(&lab.service.name, other, clock, events).await,
        }
    }

    /// A Swarm action on the service `name` (the lab's own, or one of a stack's).
    pub async fn apply_to(
        &self,
        name: &str,
        action: &Action,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<String, DriverError> {
        let (what, wait, expect_rollback) = match action {
            Action::UpdateImage { image, wait } => {
                let (old, _) = self
                    .update_spec(name, false, clock, events, |s| {
                        let old = image_of(s);
                        spec::set_image(s, image);
                        old
                    })
                    .await?;
                (format!("image {old} -> {image}"), *wait, false)
            }
            Action::Update { change, wait } => {
                let (changed, _) = self
                    .update_spec(name, false, clock, events, |s| {
                        spec::apply_change(s, change)
                    })
                    .await?;
                (format!("update {}", changed.join(", ")), *wait, false)
            }
            Action::Rollback { wait } => {
                let (image, _) = self
                    .update_spec(name, true, clock, events, |s| image_of(s))
                    .await?;
                (format!("rollback from {image}"), *wait, true)
            }
            Action::Scale { replicas, wait } => {
                self.update_spec(name, false, clock, events, |s| {
                    spec::set_replicas(s, *replicas)
                })
                .await?;
                (format!("scale to {replicas}"), *wait, false)
            }
            Action::Remove => {
                self.call("remove service", self.docker.delete_service(name))
                    .await?;
                return Ok(format!("removed service {name}"));
            }
            Action::Wait { timeout } => (
                "wait".to_string(),
                Wait::Converged { timeout: *timeout },
                true,
            ),
            other => {
                return Err(DriverError::Unsupported {
                    what: format!("action {} in the docker driver", other.name()),
                });
            }
        };
        self.finish(name, what, wait, expect_rollback, clock, events)
            .await
    }

    /// After an action: waits for convergence if the step asks, and says how it ended.
    pub(crate) async fn finish(
        &self,
        name: &str,
        what: String,
        wait: Wait,
        expect_rollback: bool,
        clock: &Clock,
        events: &EventSink,
    ) -> Result<String, DriverError> {
        let Wait::Converged { timeout } = wait else {
            return Ok(what);
        };
        let done = self
            .wait_converged(
                name,
                timeout,
                Some(Utc::now() - chrono::Duration::seconds(1)),
            )
            .await?;
        if !expect_rollback && done.state.as_deref() == Some("rollback_completed") {
            return Err(DriverError::RolledBack {
                service: name.to_string(),
                message: done.message.unwrap_or_default(),
            });
        }
        let _ = events.send(Event::new(
            clock.now(),
            What::Service {
                service: name.to_string(),
                state: "converged".into(),
                detail: done.summary(),
            },
        ));
        Ok(format!("{what}; {}", done.summary()))
    }

    /// Creates the service from the plan if it is gone (after `remove`), else resets its spec
    /// to the plan's.
    async fn deploy(&self, lab: &LabHandle) -> Result<String, DriverError> {
        let spec = spec::service_spec(
            &lab.service,
            &lab.network,
            self.labels("service"),
            lab.publish,
        );
        match self.inspect(&lab.service.name).await {
            Ok(current) => {
                let version = current.version.and_then(|v| v.index).unwrap_or(0);
                let opts = UpdateServiceOptionsBuilder::default()
                    .version(version as i32)
                    .build();
                self.call(
                    "update service",
                    self.docker
                        .update_service(&lab.service.name, spec, opts, None),
                )
                .await?;
                Ok(format!("redeployed {} from the plan", lab.service.name))
            }
            Err(DriverError::NoSuchService { .. }) => {
                self.call("create service", self.docker.create_service(spec, None))
                    .await?;
                Ok(format!("created {}", lab.service.name))
            }
            Err(e) => Err(e),
        }
    }

    /// The service with its healthcheck intact (see `raw.rs` for why not bollard's inspect).
    pub(crate) async fn inspect(
        &self,
        name: &str,
    ) -> Result<bollard::models::Service, DriverError> {
        self.inspect_service_full(name).await
    }

    /// Read-modify-write of the service spec at its current version; `rollback` asks the
    /// engine for its server-side rollback to the previous spec instead.
    async fn update_spec<R>(
        &self,
        name: &str,
        rollback: bool,
        clock: &Clock,
        events: &EventSink,
        change: impl Fn(&mut ServiceSpec) -> R,
    ) -> Result<(R, Vec<String>), DriverError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let service = self.inspect(name).await?;
            let version = service.version.and_then(|v| v.index).unwrap_or(0);
            let mut spec = service.spec.unwrap_or_default();
            let result = change(&mut spec);
            let mut opts = UpdateServiceOptionsBuilder::default().version(version as i32);
            if rollback {
                opts = opts.rollback("previous");
            }
            match self
                .call(
                    "update service",
                    self.docker.update_service(name, spec, opts.build(), None),
                )
                .await
            {
                Ok(resp) => return Ok((result, resp.warnings.unwrap_or_default())),
                Err(e)
                    if attempt < UPDATE_ATTEMPTS
                        && e.to_string().contains("update out of sequence") =>
                {
                    let _ = events.send(Event::note(
                        clock.now(),
                        "retry",
                        name,
                        "service update out of sequence; retrying at the new version",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the service has converged: no update in progress, every task that should
    /// run is running the service's current task spec (running implies healthy: Swarm holds
    /// a task in `starting` until its healthcheck passes), and every task that should stop
    /// has stopped. `since` ignores an `UpdateStatus` left from an earlier update.
    pub async fn wait_converged(
        &self,
        name: &str,
        timeout: Duration,
        since: Option<DateTime<Utc>>,
    ) -> Result<Converged, DriverError> {
        let started = Instant::now();
        let attempt = || async {
            let service = match self.inspect(name).await {
                Ok(s) => s,
                Err(e) => return Attempt::Failed(e),
            };
            let spec = service.spec.clone().unwrap_or_default();
            let template = spec.task_template.as_ref().map(task_fingerprint);
            let desired = spec
                .mode
                .as_ref()
                .and_then(|m| m.replicated.as_ref())
                .and_then(|r| r.replicas);
            let status = service.update_status.clone().filter(|u| {
                let started_at = u.started_at.map(super::utc);
                match (since, started_at) {
                    (Some(since), Some(at)) => at >= since,
                    _ => true,
                }
            });
            let state = status.as_ref().and_then(|u| u.state);
            let message = status.as_ref().and_then(|u| u.message.clone());
            if let Some(s @ (UpdateState::PAUSED | UpdateState::ROLLBACK_PAUSED)) = state {
                return Attempt::Failed(DriverError::UpdatePaused {
                    service: name.into(),
                    state: s.to_string(),
                    message: message.unwrap_or_default(),
                });
            }
            let tasks = match self.tasks(name).await {
                Ok(t) => t,
                Err(e) => return Attempt::Failed(e),
            };
            let (mut running, mut pending, mut stale) = (0usize, 0usize, 0usize);
            // The newest task error (e.g. "no suitable node (host-mode port already in use)")
            // says more in a timeout than the counts do.
            let mut last_error: Option<(DateTime<Utc>, String)> = None;
            for task in &tasks {
                if let Some(status) = &task.status
                    && let Some(err) = status.err.clone().filter(|e| !e.is_empty())
                {
                    let at = status.timestamp.map(super::utc).unwrap_or_default();
                    if last_error.as_ref().is_none_or(|(t, _)| at > *t) {
                        last_error = Some((at, err));
                    }
                }
                let should_run = task.desired_state == Some(TaskState::RUNNING);
                let is_running =
                    task.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING);
                let current = task.spec.as_ref().map(task_fingerprint) == template;
                if should_run && is_running && current {
                    running += 1;
                } else if should_run {
                    pending += 1;
                } else if !is_terminal(task) {
                    // Desired shutdown/remove but its container still runs or stops.
                    stale += 1;
                }
            }
            let updating = matches!(
                state,
                Some(UpdateState::UPDATING | UpdateState::ROLLBACK_STARTED)
            );
            let enough = match desired {
                Some(n) => running as i64 == n,
                None => running > 0, // global: at least the local node's task
            };
            if !updating && enough && pending == 0 && stale == 0 {
                return Attempt::Ready(Converged {
                    state: state.map(|s| s.to_string()),
                    message,
                    running,
                    image: image_of(&spec),
                    took: started.elapsed(),
                });
            }
            {
                let want = desired
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "global".into());
                let mut update = state.map(|s| format!(", update {s}")).unwrap_or_default();
                if let Some((_, err)) = last_error {
                    update.push_str(&format!(", last task error: {err}"));
                }
                Attempt::Pending(DriverError::ConvergeTimeout {
                    service: name.into(),
                    timeout,
                    status: format!(
                        "{running}/{want} running on {}, {pending} starting or out of date, {stale} old still running{update}",
                        image_of(&spec)
                    ),
                })
            }
        };
        poll::until(timeout, POLL, attempt).await
    }

    pub(crate) async fn tasks(
        &self,
        service: &str,
    ) -> Result<Vec<bollard::models::Task>, DriverError> {
        let tasks = self.list_tasks_full(service).await?;
        // The filter matches by prefix too (service "app" also lists "app-edge"); keep ours.
        let id = self.inspect(service).await?.id;
        Ok(tasks.into_iter().filter(|t| t.service_id == id).collect())
    }
}

fn image_of(spec: &ServiceSpec) -> String {
    spec.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// What makes a task current: its container spec and force counter. Docker renders a
/// task's copy of the spec without the defaults the service spec shows (`DNSConfig: {}`,
/// `RestartPolicy`, `Runtime`), so whole specs never compare equal; empty values are dropped.
fn task_fingerprint(spec: &bollard::models::TaskSpec) -> serde_json::Value {
    fn prune(v: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::Object(map) => {
                let map: serde_json::Map<_, _> = map
                    .into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!map.is_empty()).then_some(Value::Object(map))
            }
            Value::Array(a) if a.is_empty() => None,
            other => Some(other),
        }
    }
    let container = serde_json::to_value(&spec.container_spec)
        .ok()
        .and_then(prune);
    serde_json::json!([container, spec.force_update.unwrap_or(0)])
}

/// A task that will not run again (its container is gone or never started).
fn is_terminal(task: &bollard::models::Task) -> bool {
    matches!(
        task.status.as_ref().and_then(|s| s.state),
        Some(
            TaskState::COMPLETE
                | TaskState::SHUTDOWN
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::REMOVE
                | TaskState::ORPHANED
        ) | None
    )
}
