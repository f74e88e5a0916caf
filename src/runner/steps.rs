//! Runs a scenario's steps in order at their times, each as a span on the run clock. Steps
//! that need no Docker (exec, http, sleep, wait_http) run here; Swarm actions go to an
//! [`Orchestrator`] (the bollard driver in a real run, a fake in unit tests).

use crate::clock::Clock;
use crate::event::{Event, EventSink, What};
use crate::history::Recorder;
use crate::poll::{self, Attempt};
use crate::scenario::{Action, Step, Timing};
use serde::Serialize;
use std::future::Future;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSpan {
    pub index: usize,
    pub label: String,
    pub action: &'static str,
    pub start: Duration,
    pub end: Duration,
    pub ok: bool,
    pub expected_failure: bool,
    /// The step lasted until the service converged ([`crate::scenario::Action::converges`]).
    pub converges: bool,
    /// Exit code and stderr tail, status line, or the engine's error.
    pub detail: String,
}

impl StepSpan {
    /// A step whose result differs from what the scenario expects, for an action whose failure
    /// means the run did not do what it promised (exec and http failures are for the gate).
    pub fn is_problem(&self) -> bool {
        let unexpected = self.ok == self.expected_failure;
        // A deploy command or request that failed unexpectedly is the gate's to judge.
        let for_the_gate =
            matches!(self.action, "exec" | "http") && !self.ok && !self.expected_failure;
        unexpected && !for_the_gate
    }
}

/// Carries out Swarm actions. `Ok` holds a detail line, `Err` the engine's reason. What it
/// observes on the way (update states, convergence) goes to `events` on the run clock.
pub trait Orchestrator: Sync {
    /// `service`: the Swarm service to act on (a stack's), `None` for the lab's own.
    fn apply(
        &self,
        action: &Action,
        service: Option<&str>,
        clock: Clock,
        events: &EventSink,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// For runs without a lab: a Swarm action cannot run (validation prevents this).
pub struct NoOrchestrator;

impl Orchestrator for NoOrchestrator {
    async fn apply(
        &self,
        action: &Action,
        _: Option<&str>,
        _: Clock,
        _: &EventSink,
    ) -> Result<String, String> {
        Err(format!("{} needs a [lab]", action.name()))
    }
}

/// Runs every step; returns the spans of those that started. Stops early on cancel.
pub async fn run_all<O: Orchestrator>(
    steps: &[Step],
    secrets: &crate::scenario::secrets::Secrets,
    orchestrator: &O,
    clock: Clock,
    recorder: &Recorder,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Vec<StepSpan> {
    let mut spans = Vec::new();
    let mut previous_end = clock.now();
    for step in steps {
        let start_at = match step.timing {
            Timing::At(d) => d,
            Timing::After(d) => previous_end + d,
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(clock.instant(start_at).into()) => {}
        }
        let start = clock.now();
        recorder.event(Event::new(
            start,
            What::StepStart {
                index: step.index,
                step: step_name(step),
            },
        ));
        let result = tokio::select! {
            _ = cancel.cancelled() => Err("interrupted".to_string()),
            r = perform(step, orchestrator, clock, events) => r,
        };
        let end = clock.now();
        // A step's output (a deploy command's stderr) may echo a secret it was given.
        let (ok, detail) = match result {
            Ok(d) => (true, secrets.redact(&d)),
            Err(d) => (false, secrets.redact(&d)),
        };
        recorder.event(Event::new(
            end,
            What::StepEnd {
                index: step.index,
                step: step_name(step),
                ok,
                detail: detail.clone(),
            },
        ));
        spans.push(StepSpan {
            index: step.index,
            label: step.label.clone(),
            action: step.action.name(),
            start,
            end,
            ok,
            expected_failure: step.expect_failure,
            converges: step.action.converges(),
            detail,
        });
        previous_end = end;
        if cancel.is_cancelled() {
            break;
        }
    }
    spans
}

/// `step 2: update_image`, the subject of its events.
fn step_name(step: &Step) -> String {
    format!("step {}: {}", step.index, step.label)
}

async fn perform<O: Orchestrator>(
    step: &Step,
    orchestrator: &O,
    clock: Clock,
    events: &EventSink,
) -> Result<String, String> {
    match &step.action {
        Action::Exec { command, timeout } => exec(command, *timeout).await,
        Action::Http {
            url,
            method,
            timeout,
        } => http_once(url, method, *timeout).await,
        Action::Sleep(d) => {
            tokio::time::sleep(*d).await;
            Ok(String::new())
        }
        Action::WaitHttp {
            url,
            timeout,
            interval,
        } => wait_http(url, *timeout, *interval).await,
        swarm => {
            orchestrator
                .apply(swarm, step.service.as_deref(), clock, events)
                .await
        }
    }
}

/// Keeps the last `max` bytes of stderr: the end is where a deploy script says why it failed.
fn tail(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}

async fn exec(command: &str, timeout: Option<Duration>) -> Result<String, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let mut stderr = child.stderr.take();
    let run = async {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        let status = child.wait().await;
        (status, buf)
    };
    let (status, buf) = match timeout {
        Some(t) => tokio::time::timeout(t, run)
            .await
            .map_err(|_| format!("timed out after {}", humantime::format_duration(t)))?,
        None => run.await,
    };
    let status = status.map_err(|e| format!("wait: {e}"))?;
    let err = tail(&buf, 400);
    let code = status
        .code()
        .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
    let detail = if err.is_empty() {
        code
    } else {
        format!("{code}; stderr: {err}")
    };
    if status.success() {
        Ok(detail)
    } else {
        Err(detail)
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("http client: {e}"))
}

async fn http_once(
    url: &http::Uri,
    method: &http::Method,
    timeout: Duration,
) -> Result<String, String> {
    let client = http_client(timeout)?;
    let started = std::time::Instant::now();
    let resp = client
        .request(method.clone(), url.to_string())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let detail = format!("{} in {} ms", resp.status(), started.elapsed().as_millis());
    if resp.status().is_success() {
        Ok(detail)
    } else {
        Err(detail)
    }
}

async fn wait_http(
    url: &http::Uri,
    timeout: Duration,
    interval: Duration,
) -> Result<String, String> {
    let client = http_client(interval.max(Duration::from_millis(500)))?;
    let started = std::time::Instant::now();
    let attempts = std::cell::Cell::new(0u32);
    let answer = || async {
        attempts.set(attempts.get() + 1);
        match client.get(url.to_string()).send().await {
            Ok(r) if r.status().is_success() => Attempt::Ready(format!(
                "{} after {} attempts, {} ms",
                r.status(),
                attempts.get(),
                started.elapsed().as_millis()
            )),
            Ok(r) => Attempt::Pending(r.status().to_string()),
            Err(e) => Attempt::Pending(e.to_string()),
        }
    };
    poll::until(timeout, interval, answer)
        .await
        .map_err(|last| {
            format!(
                "{url} did not answer 2xx within {} ({} attempts; last: {last})",
                humantime::format_duration(timeout),
                attempts.get()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(action: &'static str, ok: bool, expected_failure: bool) -> StepSpan {
        StepSpan {
            index: 1,
            label: action.into(),
            action,
            start: Duration::ZERO,
            end: Duration::ZERO,
            ok,
            expected_failure,
            converges: false,
            detail: String::new(),
        }
    }

    #[test]
    fn which_step_results_make_a_run_inconclusive() {
        let cases = [
            ("exec", false, false, false), // a failing deploy command: the gate decides
            ("exec", true, false, false),
            ("exec", true, true, true), // expected to fail but did not
            ("http", false, false, false),
            ("update_image", false, false, true),
            ("update_image", true, false, false),
            ("update_image", false, true, false),
            ("update_image", true, true, true),
            ("wait_http", false, false, true),
        ];
        for (action, ok, expected_failure, problem) in cases {
            assert_eq!(
                span(action, ok, expected_failure).is_problem(),
                problem,
                "{action} ok={ok} expected_failure={expected_failure}"
            );
        }
    }

    #[tokio::test]
    async fn exec_reports_exit_code_and_stderr_tail() {
        let err = exec("echo boom >&2; exit 3", None).await.unwrap_err();
        assert_eq!(err, "exit 3; stderr: boom");
        assert_eq!(exec("true", None).await.unwrap(), "exit 0");
        let t = exec("sleep 5", Some(Duration::from_millis(100))).await;
        assert_eq!(t.unwrap_err(), "timed out after 100ms");
    }
}
