//! The coordinator's side of `[load] generators` > 1: the agents' lines become this run's
//! records (each with its agent), their histograms are added, and each agent's share and
//! clock go to the report. An agent whose log ends before the run stopped it is lost: its
//! records up to then count, its share of the load after that was not sent (a recorded
//! gap: an event, its `lost_at_s`), and the verdict is computed on what was sent. The run is
//! inconclusive only when records are missing: an agent's count that does not match what
//! arrived, or a log that never ended.

use crate::agent::wire::{Line, each_record, histogram_of_text};
use crate::clock::Clock;
use crate::driver::cluster::agents::{AgentLine, Generators};
use crate::event::{Event, What};
use crate::history::{Recorder, new_histogram};
use crate::outcome::Outcome;
use crate::report::{AgentOut, Coordinator, GeneratorsOut, MergedHistograms};
use crate::runner::{RunError, Watch};
use crate::scenario::Plan;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Deploys the generators, releases them at their start barrier and returns them with the
/// run's clock, which starts at that instant; waits there.
pub async fn start<W: Watch>(
    plan: &Plan,
    watch: &W,
    quiet: bool,
    cancel: &CancellationToken,
) -> Result<(Generators, Clock), RunError> {
    let deployed = tokio::select! {
        g = watch.generators(plan, quiet) => g,
        _ = cancel.cancelled() => Err("interrupted while starting the generators".into()),
    };
    let mut g = deployed
        .map_err(|e| RunError::Lab(plan.secrets.redact(&e)))?
        .ok_or_else(|| {
            RunError::Lab(format!(
                "{} generators need the cluster lab's orchestrator to deploy them",
                plan.load.generators
            ))
        })?;
    let at = tokio::select! {
        at = g.start() => at.map_err(|e| RunError::Lab(plan.secrets.redact(&e.to_string())))?,
        _ = cancel.cancelled() => {
            return Err(RunError::Lab("interrupted at the generators' start barrier".into()));
        }
    };
    let clock = Clock::starting_at(at);
    tokio::time::sleep_until(clock.instant(Duration::ZERO).into()).await;
    Ok((g, clock))
}

/// What the merge saw, for the summary.
pub struct Merged {
    pub out: GeneratorsOut,
    /// Why the record is incomplete (lost agents), for the run's problems.
    pub problems: Vec<String>,
}

/// Feeds the agents' records to `recorder` until `stop`, then stops the agents and reads
/// on until every log ended, or `grace` passed.
pub async fn merge(
    mut g: Generators,
    placement: Vec<String>,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
    grace: Duration,
    secrets: crate::scenario::secrets::Secrets,
) -> Merged {
    let n = g.agents.len();
    let mut agents: Vec<AgentOut> = g
        .agents
        .iter()
        .map(|a| AgentOut {
            shard: a.shard,
            node: a.node.to_string(),
            requests: 0,
            failed: 0,
            reported: None,
            clock_offset_ms: a.offset_ns as f64 / 1e6,
            clock_uncertainty_ms: a.uncertainty_ns as f64 / 1e6,
            lost_at_s: None,
            cpu_s: None,
            peak_rss_mb: None,
        })
        .collect();
    let before = crate::agent::Usage::now();
    let mut said: Vec<Option<String>> = vec![None; n];
    let mut merged = new_histogram();
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let line = tokio::select! {
            _ = stop.cancelled(), if stopping.is_none() => {
                g.stop().await;
                stopping = Some(tokio::time::Instant::now() + grace);
                continue;
            }
            _ = tokio::time::sleep_until(stopping.unwrap_or_else(tokio::time::Instant::now)), if stopping.is_some() => break,
            line = g.lines.recv() => line,
        };
        match line {
            None => break,
            Some(AgentLine::Line(i, Line::Requests { count, rows })) => {
                let a = &mut agents[i];
                let mut recs = Vec::with_capacity(count.min(1 << 16) as usize);
                // Rows that do not decode are missing: the closing count shows it.
                if let Err(e) = each_record(count, &rows, |mut rec| {
                    rec.agent = Some(a.shard);
                    a.requests += 1;
                    if rec.outcome != Outcome::Ok {
                        a.failed += 1;
                    }
                    recs.push(rec);
                }) {
                    said[i] = Some(e);
                }
                recorder.requests(recs);
            }
            Some(AgentLine::Line(_, Line::Interval { latency, .. })) => {
                // A histogram that does not decode or add shows in the count check below.
                if let Ok(h) = histogram_of_text(&latency) {
                    let _ = merged.add(h);
                }
            }
            Some(AgentLine::Line(
                i,
                Line::Done {
                    requests,
                    cpu_s,
                    peak_rss_mb,
                },
            )) => {
                agents[i].reported = Some(requests);
                agents[i].cpu_s = cpu_s;
                agents[i].peak_rss_mb = peak_rss_mb;
            }
            Some(AgentLine::Line(
                i,
                Line::Note {
                    at_ms,
                    kind,
                    subject: _,
                    detail,
                },
            )) => {
                let a = &agents[i];
                recorder.event(Event::new(
                    crate::history::from_ms(at_ms),
                    What::Note {
                        kind,
                        subject: a.node.clone(),
                        detail: format!(
                            "generator {} (shard {}): {}",
                            a.node,
                            a.shard,
                            secrets.redact(&detail)
                        ),
                    },
                ));
            }
            Some(AgentLine::Line(_, Line::Hello { .. })) => {}
            Some(AgentLine::Other(i, text)) => said[i] = Some(text),
            Some(AgentLine::Ended(i)) => {
                // Before the run stopped it: its node went away (or stopped it).
                if stopping.is_none() {
                    let at = clock.now();
                    agents[i].lost_at_s = Some(at.as_secs_f64());
                    recorder.event(Event::new(
                        at,
                        What::Note {
                            kind: "generator_lost".into(),
                            subject: agents[i].node.clone(),
                            detail: format!(
                                "generator {} (shard {}) stopped reporting after {} requests{}",
                                agents[i].node,
                                agents[i].shard,
                                agents[i].requests,
                                match agents[i].reported {
                                    Some(_) =>
                                        " (it closed its log: its node stopped it)".to_string(),
                                    None => said[i]
                                        .as_ref()
                                        .map(|s| format!(": {}", secrets.redact(s)))
                                        .unwrap_or_default(),
                                }
                            ),
                        },
                    ));
                }
            }
        }
    }
    // An agent its node stopped early (it finished its requests and closed its log) is a
    // recorded gap: its share was not sent after `lost_at_s`. Missing data makes the run
    // inconclusive: records an agent counted that never arrived, or a log that ended without
    // its closing count (the agent crashed, or its node died with requests in flight), or
    // one still open long after the stop.
    let mut problems: Vec<String> = agents
        .iter()
        .zip(&said)
        .filter_map(|(a, said)| match (a.reported, a.lost_at_s) {
            (Some(r), _) if r != a.requests => Some(format!(
                "generator {} (shard {}) recorded {r} requests but {} reached this process",
                a.node, a.shard, a.requests
            )),
            (Some(_), _) => None,
            (None, Some(t)) => Some(format!(
                "generator {} (shard {}) stopped reporting at {t:.1} s without its closing count: its requests in flight then are not recorded{}",
                a.node,
                a.shard,
                said.as_ref()
                    .map(|s| format!(" ({})", secrets.redact(s)))
                    .unwrap_or_default()
            )),
            (None, None) => Some(format!(
                "generator {} (shard {}) did not finish its log within {grace:?} of the stop",
                a.node, a.shard
            )),
        })
        .collect();
    let ok: u64 = agents.iter().map(|a| a.requests - a.failed).sum();
    if problems.is_empty() && merged.len() != ok {
        problems.push(format!(
            "the generators' histograms hold {} ok requests, their records {ok}",
            merged.len()
        ));
    }
    let ms = |q: f64| match merged.is_empty() {
        true => 0.0,
        false => merged.value_at_quantile(q) as f64 / 1e3,
    };
    let bound = agents
        .iter()
        .map(|a| a.clock_offset_ms.abs() + a.clock_uncertainty_ms)
        .fold(0.0, f64::max);
    let after = crate::agent::Usage::now();
    Merged {
        out: GeneratorsOut {
            count: n as u32,
            coordinator: Coordinator {
                cpu_s: after.cpu_s - before.cpu_s,
                peak_rss_mb: after.peak_rss_mb,
            },
            placement,
            timing_error_bound_ms: bound,
            histograms: MergedHistograms {
                count: merged.len(),
                p50_ms: ms(0.5),
                p99_ms: ms(0.99),
            },
            agents,
        },
        problems,
    }
}
