//! `[load] generators` on the cluster lab: rollcheck's agents as a Swarm replicated job, one
//! task per node, reached only through the engines: their container logs (attached through
//! each node's engine) carry their records, and `docker exec` of `rollcheck agent start`
//! releases them at one instant and measures each node's clock against this process's.
//! Nothing listens on any port for them.

mod job;

use super::{Cluster, ClusterNode, LAB_NETWORK};
use crate::agent::placement::{Constraint, NodeFacts, matches_all};
use crate::agent::spec::{self, Spec};
use crate::agent::wire::Line;
use crate::driver::lab::LabHandle;
use crate::driver::{DriverError, call_within};
use crate::poll::{self, Attempt};
use crate::scenario::{NodeName, Plan};
use bollard::exec::StartExecResults;
use bollard::models::{ExecConfig, NodeSpecAvailabilityEnum, NodeState, TaskState};
use bollard::query_parameters::{KillContainerOptions, LogsOptions};
use futures_util::StreamExt;
pub use job::{AgentMode, ENV_MODE};
use job::{api_at_least, job_spec};
use std::time::Duration;
use tokio::sync::mpsc;

/// The image the agents run: the test service's, which is rollcheck's static binary.
pub const AGENT_IMAGE: &str = "rollcheck/testsvc:1";
/// How long the job's tasks may take to start and say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(90);
/// Between the barrier's decision and the agents' start: time for the `exec`s (each took
/// 70–120 ms here).
const START_MARGIN: Duration = Duration::from_millis(2000);
/// One barrier exec, output included.
const EXEC_TIMEOUT: Duration = Duration::from_secs(5);
/// Barrier execs per agent; the one with the shortest round trip measures its clock.
const CLOCK_SAMPLES: usize = 3;

/// One agent of the job, once its container runs.
#[derive(Debug, Clone)]
pub struct AgentTask {
    pub shard: u32,
    pub node: NodeName,
    pub container: String,
    /// Its clock minus this process's (ns), measured at the barrier.
    pub offset_ns: i64,
    /// Half the barrier exec's round trip: the offset is known within ± this (ns).
    pub uncertainty_ns: i64,
}

/// What an agent's log reader passes on: the agent's line, or the end of its log.
#[derive(Debug)]
pub enum AgentLine {
    Line(usize, Line),
    /// A line that starts like an agent's and does not parse, or the agent's stderr.
    Other(usize, String),
    Ended(usize),
}

/// The job, running, every agent said hello.
pub struct Generators {
    pub job: String,
    pub agents: Vec<AgentTask>,
    /// Agent lines, by the index into `agents`.
    pub lines: mpsc::UnboundedReceiver<AgentLine>,
    /// The agents' nodes, by index.
    drivers: Vec<crate::driver::Driver>,
}

/// A node as the constraints see it, from a manager's node list.
fn facts(n: &bollard::models::Node) -> NodeFacts {
    let spec = n.spec.clone().unwrap_or_default();
    let desc = n.description.clone().unwrap_or_default();
    let platform = desc.platform.unwrap_or_default();
    NodeFacts {
        id: n.id.clone().unwrap_or_default(),
        hostname: desc.hostname.unwrap_or_default(),
        ip: n
            .status
            .as_ref()
            .and_then(|s| s.addr.clone())
            .unwrap_or_default(),
        role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
        os: platform.os.unwrap_or_default(),
        arch: platform.architecture.unwrap_or_default(),
        labels: spec.labels.unwrap_or_default(),
        engine_labels: desc.engine.and_then(|e| e.labels).unwrap_or_default(),
    }
}

impl Cluster {
    /// The nodes the generators may run on: ready, active, and matching `placement`.
    pub async fn generator_nodes(&self, placement: &[String]) -> Result<Vec<String>, DriverError> {
        let constraints: Vec<Constraint> = placement
            .iter()
            .filter_map(|c| Constraint::parse(c).ok())
            .collect();
        Ok(self
            .list_nodes()
            .await?
            .iter()
            .filter(|n| {
                n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
                    && n.spec.as_ref().and_then(|s| s.availability)
                        == Some(NodeSpecAvailabilityEnum::ACTIVE)
            })
            .map(facts)
            .filter(|f| matches_all(&constraints, f))
            .map(|f| f.hostname)
            .collect())
    }

    /// Deploys the generator job of this run and waits until every agent said hello. Fails
    /// (nothing measured yet) when too few nodes match, or an agent does not start.
    pub async fn deploy_generators(
        &self,
        plan: &Plan,
        handle: &LabHandle,
        progress: crate::driver::images::Progress<'_>,
    ) -> Result<Generators, DriverError> {
        let l = &plan.load;
        let nodes = self.generator_nodes(&l.placement).await?;
        if (nodes.len() as u32) < l.generators {
            return Err(DriverError::ClusterNotReady {
                what: format!(
                    "{} generators need {} ready, active nodes{}; {} match ({}): lower [load] generators or widen placement",
                    l.generators,
                    l.generators,
                    match l.placement.is_empty() {
                        true => String::new(),
                        false => format!(" matching {}", l.placement.join(", ")),
                    },
                    nodes.len(),
                    nodes.join(", ")
                ),
            });
        }
        let edge = handle
            .edge_container
            .as_deref()
            .ok_or(DriverError::Unsupported {
                what: "generators without rollcheck's edge container".into(),
            })?;
        let edge_ip = self.host.container_ip(edge, LAB_NETWORK).await?;
        let manager = self.manager().await?;
        let api = manager
            .call("version", manager.docker.version())
            .await?
            .api_version
            .unwrap_or_default();
        let mode = AgentMode::for_engine(&api, std::env::var(ENV_MODE).ok().as_deref());
        let job = format!("{}-generators", handle.service.name);
        let max_run = l
            .duration
            .unwrap_or(Duration::from_secs(24 * 3600))
            .saturating_add(Duration::from_secs(600));
        let spec = Spec::new(
            manager.run_id().to_string(),
            l,
            spec::load_scenario(l, &format!("{edge_ip}:80")),
            max_run.as_secs(),
            mode.first_slot(),
        );
        let body = job_spec(
            &job,
            (mode, api_at_least(&api, 41)),
            &spec,
            &l.placement,
            &handle.network,
            l.timeout,
            manager.labels("generators"),
        );
        manager
            .call(
                "create generator job",
                manager.docker.create_service(body, None),
            )
            .await?;
        progress(&format!(
            "generator {} {job}: {} agents, sending to the edge at {edge_ip}:80",
            match mode {
                AgentMode::Job => "job",
                AgentMode::Service => "service",
            },
            l.generators
        ));

        // Every task running, with its container and node.
        let running = || async {
            let tasks = match manager.list_tasks_full(&job).await {
                Ok(t) => t,
                Err(e) => return Attempt::Pending(e),
            };
            if let Some(failed) = tasks.iter().find(|t| {
                matches!(
                    t.status.as_ref().and_then(|s| s.state),
                    Some(TaskState::FAILED | TaskState::REJECTED)
                )
            }) {
                let status = failed.status.clone().unwrap_or_default();
                return Attempt::Failed(DriverError::ClusterNotReady {
                    what: format!(
                        "a generator task failed: {}",
                        status.err.or(status.message).unwrap_or_default()
                    ),
                });
            }
            let up: Vec<(String, String)> = tasks
                .iter()
                .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
                .filter_map(|t| {
                    let container = t
                        .status
                        .as_ref()?
                        .container_status
                        .as_ref()?
                        .container_id
                        .clone()?;
                    Some((t.node_id.clone()?, container))
                })
                .collect();
            if up.len() as u32 >= spec.of {
                Attempt::Ready(up)
            } else {
                Attempt::Pending(DriverError::ClusterNotReady {
                    what: format!(
                        "{} of {} generator tasks running after {HELLO_TIMEOUT:?}",
                        up.len(),
                        spec.of
                    ),
                })
            }
        };
        let up = poll::until(HELLO_TIMEOUT, Duration::from_millis(300), running).await?;
        let swarm_nodes = self.list_nodes().await?;
        let mut on: Vec<(&ClusterNode, String)> = Vec::new();
        for (node_id, container) in up {
            let hostname = swarm_nodes
                .iter()
                .find(|n| n.id.as_deref() == Some(node_id.as_str()))
                .and_then(|n| n.description.as_ref()?.hostname.clone())
                .unwrap_or_default();
            let node = NodeName::parse(&hostname)
                .and_then(|n| self.node(n))
                .ok_or_else(|| DriverError::ClusterNotReady {
                    what: format!("a generator runs on {hostname:?}, not a node of the lab"),
                })?;
            on.push((node, container));
        }

        // Read every agent's log from the start; wait for every hello.
        let (tx, mut rx) = mpsc::unbounded_channel();
        for (i, (node, container)) in on.iter().enumerate() {
            tokio::spawn(read_log(
                node.driver.clone(),
                container.clone(),
                i,
                tx.clone(),
            ));
        }
        drop(tx);
        let mut shards: Vec<Option<u32>> = vec![None; on.len()];
        let mut said: Vec<String> = Vec::new();
        let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
        while shards.iter().any(Option::is_none) {
            let line = tokio::time::timeout_at(deadline, rx.recv()).await;
            match line {
                Ok(Some(AgentLine::Line(i, Line::Hello { shard, .. }))) => shards[i] = Some(shard),
                Ok(Some(AgentLine::Other(_, text))) => said.push(text),
                Ok(Some(AgentLine::Ended(i))) if shards[i].is_none() => {
                    return Err(DriverError::ClusterNotReady {
                        what: format!(
                            "generator on {} exited before it said hello: {}",
                            on[i].0.name,
                            said.join("; ")
                        ),
                    });
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    return Err(DriverError::ClusterNotReady {
                        what: format!(
                            "not every generator said hello within {HELLO_TIMEOUT:?}: {}",
                            said.join("; ")
                        ),
                    });
                }
            }
        }
        let mut seen: Vec<u32> = shards.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != on.len() {
            return Err(DriverError::ClusterNotReady {
                what: format!("the generators' shards are not distinct: {shards:?}"),
            });
        }
        let agents = on
            .iter()
            .zip(&shards)
            .map(|((node, container), shard)| AgentTask {
                shard: shard.unwrap_or_default(),
                node: node.name,
                container: container.clone(),
                offset_ns: 0,
                uncertainty_ns: 0,
            })
            .collect();
        Ok(Generators {
            job,
            agents,
            lines: rx,
            drivers: on.iter().map(|(n, _)| n.driver.clone()).collect(),
        })
    }
}

impl Generators {
    /// The start barrier: picks an instant a little ahead, writes it into every agent's
    /// container with `rollcheck agent start` (all agents at once, [`CLOCK_SAMPLES`] times
    /// each), and measures each node's clock against this process's from those execs: the
    /// agent reads its wall clock between the exec's start and end, so the offset is known
    /// within half the round trip; the sample with the shortest round trip is kept (as NTP
    /// does). Returns the instant.
    pub async fn start(&mut self) -> Result<chrono::DateTime<chrono::Utc>, DriverError> {
        let at = chrono::Utc::now() + START_MARGIN;
        let ns = at.timestamp_nanos_opt().unwrap_or_default();
        let execs = self
            .agents
            .iter()
            .zip(&self.drivers)
            .map(|(a, d)| async move {
                let mut best: Option<(i64, i64)> = None;
                for _ in 0..CLOCK_SAMPLES {
                    let sample = tokio::time::timeout(EXEC_TIMEOUT, release(d, &a.container, ns))
                        .await
                        .map_err(|_| DriverError::Timeout {
                            call: format!("release generator on {}", a.node),
                            after: EXEC_TIMEOUT,
                        })??;
                    if best.is_none_or(|b| sample.1 < b.1) {
                        best = Some(sample);
                    }
                }
                Ok::<_, DriverError>(best.unwrap_or_default())
            });
        let results = futures_util::future::join_all(execs).await;
        for (agent, r) in self.agents.iter_mut().zip(results) {
            let (offset, uncertainty) = r?;
            agent.offset_ns = offset;
            agent.uncertainty_ns = uncertainty;
        }
        // Each agent read the instant in its first exec; were that after the instant, its
        // first slots would go out at once, late. Every exec has ended now: if the instant
        // is still ahead, every first exec ended before it.
        if chrono::Utc::now() >= at {
            return Err(DriverError::ClusterNotReady {
                what: format!(
                    "the generators' start barrier took longer than {START_MARGIN:?}: the agents may have started late"
                ),
            });
        }
        Ok(at)
    }

    /// For events.csv: where the agents run and how their clocks compare with this one.
    pub fn describe(&self) -> String {
        let agents: Vec<String> = self
            .agents
            .iter()
            .map(|a| {
                format!(
                    "shard {} on {} (clock {:+.3} ms ± {:.3})",
                    a.shard,
                    a.node,
                    a.offset_ns as f64 / 1e6,
                    a.uncertainty_ns as f64 / 1e6
                )
            })
            .collect();
        format!(
            "{} generators of job {}: {}",
            self.agents.len(),
            self.job,
            agents.join(", ")
        )
    }

    /// Asks every agent to stop (SIGTERM: it finishes its requests in flight and writes its
    /// closing lines). An agent whose node is gone cannot be asked; its log has ended.
    pub async fn stop(&self) {
        let kills = self
            .agents
            .iter()
            .zip(&self.drivers)
            .map(|(a, d)| async move {
                let _ = call_within(
                    "stop generator",
                    Duration::from_secs(5),
                    d.docker.kill_container(
                        &a.container,
                        Some(KillContainerOptions {
                            signal: "SIGTERM".into(),
                        }),
                    ),
                )
                .await;
            });
        futures_util::future::join_all(kills).await;
    }
}

/// Runs `rollcheck agent start NS` in the agent's container; its clock minus ours (ns) and
/// half the round trip.
async fn release(
    driver: &crate::driver::Driver,
    container: &str,
    at_ns: i64,
) -> Result<(i64, i64), DriverError> {
    let what = format!("release generator {container}");
    let config = ExecConfig {
        cmd: Some(vec![
            "/rollcheck".into(),
            "agent".into(),
            "start".into(),
            at_ns.to_string(),
        ]),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = driver
        .call(what.clone(), driver.docker.create_exec(container, config))
        .await?;
    let sent = unix_ns();
    let started = driver
        .call(what.clone(), driver.docker.start_exec(&created.id, None))
        .await?;
    let mut text = Vec::new();
    if let StartExecResults::Attached { mut output, .. } = started {
        while let Some(Ok(chunk)) = output.next().await {
            text.extend_from_slice(&chunk.into_bytes());
        }
    }
    let back = unix_ns();
    let text = String::from_utf8_lossy(&text);
    let theirs: i64 = text
        .trim()
        .parse()
        .map_err(|_| DriverError::ClusterNotReady {
            what: format!("{what}: {}", text.trim()),
        })?;
    let mid = sent + (back - sent) / 2;
    Ok((theirs - mid, (back - sent) / 2))
}

fn unix_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

/// Follows one agent's container log until it ends (the container exited, or its node
/// went away), passing its lines on; the engine splits lines over 16 KiB into frames.
async fn read_log(
    driver: crate::driver::Driver,
    container: String,
    index: usize,
    tx: mpsc::UnboundedSender<AgentLine>,
) {
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = driver.docker.logs(&container, Some(opts));
    let mut lines = crate::agent::wire::Lines::default();
    while let Some(frame) = logs.next().await {
        let Ok(frame) = frame else { break };
        let stderr = matches!(frame, bollard::container::LogOutput::StdErr { .. });
        let more = lines.feed(&frame.into_bytes(), |line| {
            let msg = match Line::decode_bytes(line) {
                Some(Ok(line)) => AgentLine::Line(index, line),
                Some(Err(e)) => AgentLine::Other(index, e),
                None if stderr => {
                    AgentLine::Other(index, String::from_utf8_lossy(line).trim().to_string())
                }
                None => return true,
            };
            tx.send(msg).is_ok()
        });
        if !more {
            return;
        }
    }
    let _ = tx.send(AgentLine::Ended(index));
}
