//! One run, start to finish: report directory, load, steps and watchers on one clock, then
//! analysis, gate and the written report. The lab (if any) is set up before the clock starts
//! and torn down after the report is written, on every path.

mod generators;
mod lab;
pub mod progress;
pub mod recover;
pub mod steps;

pub use lab::run_in_lab;

use crate::analysis;
use crate::analysis::probes::{DEFAULT_SPIKE_FACTOR, ProbeFold, StepRole};
use crate::analysis::truth::ServerLog;
use crate::clock::Clock;
use crate::driver::cluster::agents::Generators;
use crate::event::{Event, EventSink};
use crate::gate::{self, Verdict};
use crate::history::{Collector, Recorder};
use crate::load::{self, client::Target};
use crate::report::{ClusterOut, HealthProbes, RunFacts, Summary};
use crate::scenario::{LoadModel, Plan};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use steps::{NoOrchestrator, Orchestrator, StepSpan};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Lock(#[from] crate::lab_lock::LockError),
    #[error(transparent)]
    Engine(#[from] crate::driver::DriverError),
    #[error("cannot write the report in {}: {source}", path.display())]
    Report {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("load target: {0}")]
    Target(String),
    #[error("{0}")]
    Lab(String),
    #[error("the load target is not ready: {0}")]
    NotReady(#[from] crate::ready::NotReady),
}

fn report_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Report {
        path: path.to_path_buf(),
        source,
    }
}

pub struct RunOptions {
    /// Parent of the run's report directory.
    pub out: PathBuf,
    /// How the run's progress is shown on stderr while it runs.
    pub progress: progress::Mode,
    /// No progress of any kind on stderr (lab setup lines included).
    pub quiet: bool,
}

/// What a finished (or interrupted) run left behind.
pub struct RunResult {
    pub dir: PathBuf,
    pub summary: Summary,
    pub verdict: Verdict,
    pub interrupted: bool,
}

/// One whole run: the lab lock (a run with a `[lab]` must not change a lab another run is
/// using), the report directory with the resolved scenario, the engine, the lab or none,
/// the measured part, the teardown. Errors before the measurement leave nothing behind
/// (no report directory for a run that could not reach its engine).
pub async fn run(
    plan: &Plan,
    resolved_scenario: &str,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunResult, RunError> {
    let _lock = plan
        .has_lab()
        .then(crate::lab_lock::LabLock::acquire)
        .transpose()?;
    if let (false, Some(ready)) = (plan.has_lab(), &plan.load.ready) {
        // A deployed service the scenario says when to start on (a lab waits in the driver).
        crate::ready::wait(ready, &plan.load).await?;
    }
    let (id, dir) = create_report_dir(&opts.out, plan, resolved_scenario)?;
    if !plan.has_lab() {
        return measure(plan, &id, &dir, &NoOrchestrator, &NoWatch, opts, cancel).await;
    }
    let driver = match crate::driver::Driver::connect(id.clone()).await {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.into());
        }
    };
    run_in_lab(plan, &driver, &id, &dir, opts, cancel).await
}

/// The report dir's file that names the scenario file the run was started with.
pub const SCENARIO_SOURCE: &str = "scenario.source";

/// Creates `<out>/<UTC timestamp>-<slug>/` and writes the resolved scenario into it.
pub fn create_report_dir(
    out: &Path,
    plan: &Plan,
    resolved_scenario: &str,
) -> Result<(String, PathBuf), RunError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    std::fs::create_dir_all(out).map_err(report_err(out))?;
    for n in 1.. {
        let id = if n == 1 {
            format!("{stamp}-{}", plan.slug)
        } else {
            format!("{stamp}-{}-{n}", plan.slug)
        };
        let dir = out.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::write(dir.join("scenario.toml"), resolved_scenario)
                    .map_err(report_err(&dir))?;
                // Where it came from: files it names (compose, tls.ca, body_file) are found
                // relative to it when `rollcheck report` recovers a killed run.
                let source = std::path::absolute(&plan.source).unwrap_or(plan.source.clone());
                std::fs::write(
                    dir.join(SCENARIO_SOURCE),
                    source.as_os_str().as_encoded_bytes(),
                )
                .map_err(report_err(&dir))?;
                return Ok((id, dir));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(report_err(&dir)(e)),
        }
    }
    unreachable!("the loop returns")
}

/// Things that run beside the load for the whole measured window (Docker watchers).
pub trait Watch {
    /// Starts watching; events go to `sink` until `stop` is cancelled.
    fn start(
        &self,
        clock: Clock,
        sink: EventSink,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()>;

    /// Facts about where the run happened, for the report (engine versions).
    fn environment(&self) -> impl Future<Output = BTreeMap<String, String>> + Send;

    /// The test service's truth log from every task's container log, read after the load
    /// and before anything is removed.
    fn server_log(&self) -> impl Future<Output = ServerLog> + Send;

    /// `[load] generators` > 1: deploys the generators and waits for all of them; `None`
    /// where the run has no orchestrator to deploy them on.
    fn generators(
        &self,
        _plan: &Plan,
        _quiet: bool,
    ) -> impl Future<Output = Result<Option<Generators>, String>> + Send {
        async { Ok(None) }
    }
}

pub struct NoWatch;

impl Watch for NoWatch {
    fn start(&self, _: Clock, _: EventSink, _: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async {})
    }

    async fn environment(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    async fn server_log(&self) -> ServerLog {
        ServerLog::Unavailable
    }
}

/// The measured part of a run: load + steps + watchers on one clock, then the report.
/// `problems` carries what already went wrong before the clock started.
pub async fn measure<O: Orchestrator, W: Watch>(
    plan: &Plan,
    id: &str,
    dir: &Path,
    orchestrator: &O,
    watch: &W,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunResult, RunError> {
    let l = &plan.load;
    let target = Target::from_uri(&l.target, &crate::load::client::Options::of(l))
        .map_err(|e| RunError::Target(plan.secrets.redact(&e)))?;
    let collector = Collector::start(dir, l.interval, probe_fold(plan)).map_err(report_err(dir))?;
    // Deployed and released at their start barrier, which is this run's clock's start.
    let agents = match l.agents() {
        false => None,
        true => Some(generators::start(plan, watch, opts.quiet, cancel).await?),
    };
    let warm = match l.preconnect {
        _ if agents.is_some() => None,
        0 => None,
        n => {
            if !opts.quiet {
                eprintln!("rollcheck: opening {n} kept-alive connections (load.preconnect)");
            }
            tokio::select! {
                w = load::preconnect(&target, n) => Some(w),
                _ = cancel.cancelled() => None,
            }
        }
    };
    let (clock, agents) = match agents {
        None => (Clock::start(), None),
        Some((g, clock)) => (clock, Some(g)),
    };
    let progress = Arc::new(progress::Progress::start(
        opts.progress,
        plan,
        collector.recorder(),
        clock,
    ));
    let recorder = collector.recorder().observed({
        let progress = progress.clone();
        Arc::new(move |e: &Event| progress.event(e))
    });

    let (event_tx, mut event_rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let forward = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            while let Some(e) = event_rx.recv().await {
                recorder.event(e);
            }
        })
    };
    let stop_watch = CancellationToken::new();
    let watcher = watch.start(clock, event_tx.clone(), stop_watch.clone());

    let warm = warm.map_or_else(Vec::new, |w| {
        recorder.event(w.note());
        w.conns
    });
    let stop_load = cancel.child_token();
    let load_task = match agents {
        None => tokio::spawn({
            let (recorder, stop, model) = (recorder.clone(), stop_load.clone(), l.model);
            async move {
                load::run(
                    Arc::new(target),
                    model,
                    load::Shard::WHOLE,
                    warm,
                    clock,
                    recorder,
                    stop,
                )
                .await;
                None
            }
        }),
        Some(g) => {
            recorder.event(Event::new(
                Duration::ZERO,
                crate::event::What::Note {
                    kind: "generators".into(),
                    subject: "load".into(),
                    detail: g.describe(),
                },
            ));
            tokio::spawn({
                let merge = generators::merge(
                    g,
                    l.placement.clone(),
                    clock,
                    recorder.clone(),
                    stop_load.clone(),
                    l.timeout + Duration::from_secs(30),
                    plan.secrets.clone(),
                );
                async move { Some(merge.await) }
            })
        }
    };
    let spans = run_steps(plan, orchestrator, clock, &recorder, &event_tx, cancel).await;
    // The forwarder ends once the watcher has stopped and this last sender is gone.
    drop(event_tx);
    let load_end = match l.duration {
        Some(d) => d,
        None => spans.iter().map(|s| s.end).max().unwrap_or_default() + l.settle,
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep_until(clock.instant(load_end).into()) => {}
    }
    stop_load.cancel();
    let merged = load_task.await.ok().flatten();
    let duration = clock.now();
    // Every request is recorded before this event: a recovered run with it is complete.
    recorder.event(Event::new(
        duration,
        crate::event::What::LoadEnd {
            requests: recorder.live().requests.load(Ordering::Relaxed),
        },
    ));
    let server = watch.server_log().await;
    stop_watch.cancel();
    let _ = watcher.await;
    let _ = forward.await;
    progress.finish();
    let interrupted = cancel.is_cancelled();
    let mut history = collector.finish().map_err(report_err(dir))?;
    let (summary, verdict) = conclude(
        plan,
        Ending {
            id: id.to_string(),
            started_utc: clock.utc_start(),
            duration,
            interrupted,
            recovered: false,
            environment: watch.environment().await,
            problems: merged
                .as_ref()
                .map(|m| m.problems.clone())
                .unwrap_or_default(),
            server,
            generators: merged.map(|m| m.out),
        },
        &spans,
        &mut history,
    );
    write_report(dir, &summary, &history)?;
    Ok(RunResult {
        dir: dir.to_path_buf(),
        verdict,
        summary,
        interrupted,
    })
}

/// summary.json, summary.txt, junit.xml, then report.html. The charts are a convenience on
/// top of the files written first: a failure to draw them must not lose the run's verdict.
pub(crate) fn write_report(
    dir: &Path,
    summary: &Summary,
    history: &crate::history::History,
) -> Result<(), RunError> {
    write_summary(dir, summary)?;
    let scenario = std::fs::read_to_string(dir.join("scenario.toml")).unwrap_or_default();
    let data = crate::report::RunData::of_run(summary.clone(), history, scenario);
    if let Err(e) = crate::report::write_report_html_of(dir, &data) {
        eprintln!("rollcheck: warning: report.html not written: {e}");
    }
    Ok(())
}

/// How a run ended, for [`conclude`].
pub(crate) struct Ending {
    pub id: String,
    pub started_utc: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    pub interrupted: bool,
    /// Rebuilt from the CSV files by `rollcheck report`.
    pub recovered: bool,
    pub environment: BTreeMap<String, String>,
    /// What already makes the run inconclusive (a recovered run's incomplete record).
    pub problems: Vec<String>,
    /// The servers' own record, to reconcile with the client's.
    pub server: ServerLog,
    /// `[load] generators` > 1: the agents, as the merge saw them.
    pub generators: Option<crate::report::GeneratorsOut>,
}

/// The summary of a measured run, or of a killed run's record read back: the steps' problems,
/// analysis, gate and the report model, the same way for both.
pub(crate) fn conclude(
    plan: &Plan,
    ending: Ending,
    spans: &[StepSpan],
    history: &mut crate::history::History,
) -> (Summary, Verdict) {
    let Ending {
        duration,
        interrupted,
        mut problems,
        ..
    } = ending;
    problems.extend(spans.iter().filter(|s| s.is_problem()).map(|s| {
        let how = if s.ok {
            "succeeded but was expected to fail"
        } else {
            "failed"
        };
        format!("step {} ({}) {how}: {}", s.index, s.label, s.detail)
    }));
    // A rollout step that never started must not leave a PASS behind: validation refuses a
    // step that cannot start before a fixed duration ends, but one chained `after` a step
    // that ran long can still miss it.
    for step in plan
        .steps
        .iter()
        .filter(|p| !spans.iter().any(|s| s.index == p.index))
    {
        problems.push(format!(
            "step {} ({}) never ran: the run ended at {:.1}s before it started",
            step.index,
            step.label,
            duration.as_secs_f64()
        ));
    }
    if interrupted {
        problems.push("interrupted before the scenario finished".into());
    }
    let truth = analysis::truth::reconcile(&history.by_id, &plan.gate.dropped, &ending.server);
    if !truth.available
        && plan
            .gate
            .thresholds
            .iter()
            .any(|t| matches!(t, crate::scenario::Threshold::MaxTruthMismatch(_)))
    {
        problems.push(format!("max_truth_mismatch: {}", truth.line()));
    }
    let mut analysis = analysis::analyse(history, spans, &plan.gate.dropped, problems);
    analysis.truth = Some(truth);
    let evaluation = gate::evaluate(&analysis, &plan.gate);
    let l = &plan.load;
    let mut summary = Summary::build(
        RunFacts {
            id: ending.id,
            started_utc: ending.started_utc,
            duration,
            interrupted,
            recovered: ending.recovered,
            title: plan.title.clone(),
            file: plan.source.display().to_string(),
            slug: plan.slug.clone(),
            target: plan.secrets.redact(&l.target.to_string()),
            model: describe_model(l.model),
            keepalive: l.keepalive,
            environment: ending.environment,
        },
        &analysis,
        &evaluation,
        spans,
    );
    summary.health_probes = history
        .probes
        .take()
        .and_then(ProbeFold::finish)
        .as_ref()
        .map(HealthProbes::from);
    summary.cluster = cluster(plan, spans, history, duration);
    summary.generators = ending.generators;
    summary.containers = plan.docker().map(|d| {
        // Up before the clock started: the lab waited for the healthy ones.
        let running: Vec<(String, &'static str)> = d
            .containers
            .iter()
            .map(|c| {
                let state = if c.healthcheck.is_some() {
                    "healthy"
                } else {
                    "running"
                };
                (c.name.clone(), state)
            })
            .chain([(
                crate::driver::containers::EDGE_CONTAINER.to_string(),
                "running",
            )])
            .collect();
        crate::report::ContainersOut::from(&analysis::containers::analyse(
            &history.events,
            &d.upstream,
            &running,
        ))
    });
    (summary, evaluation.verdict)
}

/// The probe analysis as a run of `plan` feeds it.
fn probe_fold(plan: &Plan) -> ProbeFold {
    let fold = ProbeFold::new(plan.service_name(), plan.load.timeout, DEFAULT_SPIKE_FACTOR)
        .with_steps(
            plan.steps
                .iter()
                .filter_map(|s| step_role(&s.action).map(|r| (s.index, r)))
                .collect(),
        );
    // A stack's app tasks (or the existing services, or a docker lab's containers) are probed
    // for their own requests; a stack's front door (a docker lab's edge) for all.
    match plan.watched_services() {
        services if services.is_empty() => fold,
        services => fold.with_services(&services),
    }
}

/// What a step does to the requests' path, for the probe analysis: node faults last until
/// the step that undoes them.
fn step_role(action: &crate::scenario::Action) -> Option<StepRole> {
    use crate::scenario::{Action, NodeOp};
    match action {
        Action::NodeAvailability { node, drain } => Some(if *drain {
            StepRole::Fault(node.clone())
        } else {
            StepRole::Undo(node.clone())
        }),
        Action::Node { op, node } => Some(match op {
            NodeOp::Stop | NodeOp::Kill | NodeOp::Pause | NodeOp::Disconnect | NodeOp::Drain => {
                StepRole::Fault(node.to_string())
            }
            NodeOp::Start | NodeOp::Unpause | NodeOp::Connect | NodeOp::Activate => {
                StepRole::Undo(node.to_string())
            }
        }),
        _ => None,
    }
}

/// `None` outside a cluster lab.
fn cluster(
    plan: &Plan,
    spans: &[StepSpan],
    history: &crate::history::History,
    run_end: Duration,
) -> Option<ClusterOut> {
    plan.cluster()?;
    let steps: Vec<_> = spans
        .iter()
        .filter_map(|s| {
            let step = plan.steps.iter().find(|p| p.index == s.index)?;
            Some((s.clone(), step.action.clone()))
        })
        .collect();
    // A stack's service under test: the one its first Swarm step names, else its first app.
    let subject = match plan.service_name() {
        "" => plan
            .steps
            .iter()
            .find_map(|s| s.service.clone())
            .or_else(|| plan.watched_services().into_iter().next())
            .unwrap_or_default(),
        own => own.to_string(),
    };
    analysis::cluster::analyse(
        &history.events,
        &steps,
        &history.served.tasks,
        &subject,
        run_end,
    )
    .as_ref()
    .map(ClusterOut::from)
}

/// Steps run until the fixed duration ends, if there is one; steps still running then are cut.
async fn run_steps<O: Orchestrator>(
    plan: &Plan,
    orchestrator: &O,
    clock: Clock,
    recorder: &Recorder,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Vec<StepSpan> {
    let steps_cancel = cancel.child_token();
    let deadline = plan.load.duration.map(|d| {
        let t = steps_cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(clock.instant(d).into()).await;
            t.cancel();
        })
    });
    let spans = steps::run_all(
        &plan.steps,
        &plan.secrets,
        orchestrator,
        clock,
        recorder,
        events,
        &steps_cancel,
    )
    .await;
    if let Some(d) = deadline {
        d.abort();
    }
    spans
}

/// Writes the machine- and human-readable renderings of a summary into the run directory:
/// summary.json, summary.txt and junit.xml.
pub fn write_summary(dir: &Path, summary: &Summary) -> Result<(), RunError> {
    let json = serde_json::to_vec_pretty(summary).expect("summary serializes");
    // Written aside and renamed: a run killed mid-write leaves no torn summary.json, and
    // `rollcheck report` recovers it from the CSV files.
    let part = dir.join("summary.json.part");
    std::fs::write(&part, json)
        .and_then(|()| std::fs::rename(&part, dir.join("summary.json")))
        .map_err(report_err(dir))?;
    let mut text = Vec::new();
    crate::report::text::render(summary, &mut text).map_err(report_err(dir))?;
    std::fs::write(dir.join("summary.txt"), text).map_err(report_err(dir))?;
    let mut junit = Vec::new();
    crate::report::junit::render(summary, &mut junit).map_err(report_err(dir))?;
    std::fs::write(dir.join("junit.xml"), junit).map_err(report_err(dir))
}

pub fn describe_model(m: LoadModel) -> String {
    match m {
        LoadModel::Closed { concurrency, .. } => format!("closed, {concurrency} workers"),
        LoadModel::Open {
            rate,
            max_in_flight,
        } => format!("open, {rate}/s (max {max_in_flight} in flight)"),
    }
}

#[cfg(test)]
mod tests;
