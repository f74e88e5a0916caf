//! What a person sees while a run goes, on stderr: in a terminal a bar (time so far, time
//! left when the run's length is known, the running step and how far it got, requests by
//! class, the last interval's p50/p99), redrawn five times a second; in a CI log one plain
//! line every few seconds with the same facts. Both print a line for each step start and end
//! and each notable event (a task that failed, the control plane gone, a node down, a
//! container that died), so a log tells the run's story. It reads the load's live counters
//! and the events on their way to the collector; it never slows or waits for the load.

use crate::clock::Clock;
use crate::event::{ContainerAction, Event, What};
use crate::history::Recorder;
use crate::outcome::Outcome;
use crate::scenario::{Action, Plan};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    None,
    /// Plain lines: a status line every `every`, and one per step and notable event.
    Plain {
        every: Duration,
    },
    /// A bar redrawn in place (a terminal).
    Bar,
}

/// How long the run will take, as far as the plan tells.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Length {
    Exact(Duration),
    /// No fixed duration: the load runs until the last step ends, which starts at `at` or later.
    AtLeast(Duration),
    Unknown,
}

impl Length {
    fn of(plan: &Plan) -> Length {
        if let Some(d) = plan.load.duration {
            return Length::Exact(d);
        }
        let mut earliest = Duration::ZERO;
        for s in &plan.steps {
            earliest = match s.timing {
                crate::scenario::Timing::At(at) => at,
                crate::scenario::Timing::After(after) => earliest + after,
            };
        }
        if earliest.is_zero() {
            Length::Unknown
        } else {
            Length::AtLeast(earliest + plan.load.settle)
        }
    }
}

/// The running step, and what its events said so far.
#[derive(Debug, Default)]
struct Story {
    step: Option<Running>,
    /// Swarm tasks by name: (image, state, desired state).
    tasks: BTreeMap<String, (String, String, String)>,
}

#[derive(Debug)]
struct Running {
    index: usize,
    label: String,
    since: Duration,
    /// An image the step rolls out, whose running tasks are counted.
    image: Option<String>,
}

/// The progress display of one run; [`Progress::event`] is fed every event.
pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    story: Arc<Mutex<Story>>,
    images: BTreeMap<usize, String>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(mode: Mode, plan: &Plan, recorder: Recorder, clock: Clock) -> Progress {
        let length = Length::of(plan);
        let story = Arc::new(Mutex::new(Story::default()));
        let images = plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::UpdateImage { image, .. } => Some((s.index, image.clone())),
                _ => None,
            })
            .collect();
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
            let template = match length {
                Length::Exact(_) | Length::AtLeast(_) => "{spinner} [{bar:28}] {prefix}\n  {msg}",
                Length::Unknown => "{spinner} {prefix}\n  {msg}",
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("static progress template")
                    .progress_chars("=> "),
            );
            if let Length::Exact(d) | Length::AtLeast(d) = length {
                bar.set_length(d.as_millis().max(1) as u64);
            }
            bar
        });
        let task = (mode != Mode::None).then(|| {
            let (bar, story) = (bar.clone(), story.clone());
            tokio::spawn(async move {
                let every = match mode {
                    Mode::Plain { every } => every,
                    _ => Duration::from_millis(200),
                };
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    let now = clock.now();
                    let step = story.lock().map(|s| step_line(&s, now)).unwrap_or_default();
                    let counts = counts_line(&recorder);
                    match &bar {
                        Some(bar) => {
                            bar.set_prefix(time_line(now, length));
                            bar.set_position(now.as_millis() as u64);
                            bar.set_message(match step {
                                Some(step) => format!("{counts}\n  {step}"),
                                None => counts,
                            });
                        }
                        None => {
                            let mut line = format!("[{}] {counts}", time_line(now, length));
                            if let Some(step) = step {
                                let _ = write!(line, " | {step}");
                            }
                            eprintln!("{line}");
                        }
                    }
                }
            })
        });
        Progress {
            mode,
            bar,
            story,
            images,
            task,
        }
    }

    /// Follows the run's story: the running step and its tasks, and a line for each step
    /// start and end and each notable event.
    pub fn event(&self, e: &Event) {
        if self.mode == Mode::None {
            return;
        }
        if let Ok(mut story) = self.story.lock() {
            match &e.what {
                What::StepStart { index, step } => {
                    story.step = Some(Running {
                        index: *index,
                        label: step.clone(),
                        since: e.at,
                        image: self.images.get(index).cloned(),
                    });
                }
                What::StepEnd { index, .. }
                    if story.step.as_ref().is_some_and(|s| s.index == *index) =>
                {
                    story.step = None;
                }
                What::Task(t) => {
                    story.tasks.insert(
                        t.task.clone(),
                        (t.image.clone(), t.state.clone(), t.desired.clone()),
                    );
                }
                _ => {}
            }
        }
        if let Some(line) = notable(e) {
            let line = format!("{:>7.1}s  {line}", e.at.as_secs_f64());
            match &self.bar {
                // A bar asked for where stderr is no terminal is hidden, and so would be its
                // lines.
                Some(bar) if !bar.is_hidden() => bar.println(line),
                _ => eprintln!("{line}"),
            }
        }
    }

    /// Stops drawing and clears the bar (the summary follows on stdout).
    pub fn finish(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `12.3s / 25.0s, 12.7s left`, `12.3s / at least 40.0s`, `12.3s`.
fn time_line(now: Duration, length: Length) -> String {
    let s = |d: Duration| format!("{:.1}s", d.as_secs_f64());
    match length {
        Length::Exact(d) => format!("{} / {}, {} left", s(now), s(d), s(d.saturating_sub(now))),
        Length::AtLeast(d) if now < d => format!("{} / at least {}", s(now), s(d)),
        _ => s(now),
    }
}

/// `requests 250  ok 240  failed 10 (http_5xx 8, reset 2)  p50 1004 ms  p99 1012 ms`.
fn counts_line(recorder: &Recorder) -> String {
    let live = recorder.live();
    let ok = live.count(Outcome::Ok);
    let failed: Vec<(Outcome, u64)> = Outcome::ALL
        .into_iter()
        .filter(|&o| o != Outcome::Ok && o != Outcome::Late)
        .map(|o| (o, live.count(o)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let total_failed: u64 = failed.iter().map(|(_, n)| n).sum();
    let mut line = format!(
        "requests {}  ok {ok}  failed {total_failed}",
        live.requests.load(std::sync::atomic::Ordering::Relaxed)
    );
    if !failed.is_empty() {
        let by: Vec<String> = failed
            .iter()
            .map(|(o, n)| format!("{} {n}", o.as_str()))
            .collect();
        let _ = write!(line, " ({})", by.join(", "));
    }
    let late = live.count(Outcome::Late);
    if late > 0 {
        let _ = write!(line, "  late {late}");
    }
    if let Some((p50, p99)) = live.recent() {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let _ = write!(line, "  p50 {:.0} ms  p99 {:.0} ms", ms(p50), ms(p99));
    }
    line
}

/// `step 1: update_image rollcheck/testsvc:2 (12.0s) — 2/3 tasks run rollcheck/testsvc:2`.
fn step_line(story: &Story, now: Duration) -> Option<String> {
    let step = story.step.as_ref()?;
    let mut line = format!(
        "{} ({:.1}s)",
        step.label,
        now.saturating_sub(step.since).as_secs_f64()
    );
    if let Some(image) = &step.image {
        let wanted = story
            .tasks
            .values()
            .filter(|(_, _, desired)| desired == "running")
            .count();
        let done = story
            .tasks
            .values()
            .filter(|(i, state, desired)| {
                same_image(i, image) && state == "running" && desired == "running"
            })
            .count();
        if wanted > 0 {
            let _ = write!(line, " — {done}/{wanted} tasks run {image}");
        }
    }
    Some(line)
}

/// A task's image may carry the digest the engine resolved: `app:2@sha256:…`.
fn same_image(task: &str, image: &str) -> bool {
    task == image || task.split('@').next() == Some(image)
}

/// The line a person should see for this event, if any.
fn notable(e: &Event) -> Option<String> {
    Some(match &e.what {
        What::StepStart { step, .. } => format!("{step}: started"),
        What::StepEnd {
            step, ok, detail, ..
        } => {
            let how = if *ok { "done" } else { "FAILED" };
            let detail: String = detail.chars().take(160).collect();
            if detail.is_empty() {
                format!("{step}: {how}")
            } else {
                format!("{step}: {how}: {detail}")
            }
        }
        What::Task(t) if matches!(t.state.as_str(), "failed" | "rejected") => format!(
            "task {} {} ({})",
            t.task,
            t.state,
            t.error.as_deref().unwrap_or("no error given")
        ),
        What::Container {
            container,
            action: ContainerAction::Die {
                exit_code: Some(code),
            },
        } if *code != 0 => format!("container {container} exited with code {code}"),
        What::Node(n) if n.state == "down" || n.state == "unknown" => {
            format!("node {} is {}", n.node, n.state)
        }
        What::ControlPlaneUnavailable { reason } => {
            format!("control plane unavailable: {reason}")
        }
        What::ControlPlaneAvailable { .. }
        | What::EventsLost { .. }
        | What::EventsResumed { .. }
        | What::Upstream { .. }
        | What::OldWorkersExited { .. } => format!("{}: {}", e.kind(), e.detail()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TaskState;

    #[test]
    fn time_lines() {
        let s = Duration::from_secs;
        assert_eq!(
            time_line(Duration::from_millis(12_300), Length::Exact(s(25))),
            "12.3s / 25.0s, 12.7s left"
        );
        assert_eq!(
            time_line(s(3), Length::AtLeast(s(40))),
            "3.0s / at least 40.0s"
        );
        assert_eq!(time_line(s(41), Length::AtLeast(s(40))), "41.0s");
        assert_eq!(time_line(s(41), Length::Unknown), "41.0s");
    }

    #[test]
    fn a_rolling_step_counts_tasks_on_its_image() {
        let task = |name: &str, image: &str, state: &str, desired: &str| {
            (
                name.to_string(),
                (image.to_string(), state.to_string(), desired.to_string()),
            )
        };
        let story = Story {
            step: Some(Running {
                index: 1,
                label: "step 1: update_image rollcheck/testsvc:2".into(),
                since: Duration::from_secs(5),
                image: Some("rollcheck/testsvc:2".into()),
            }),
            tasks: [
                task(
                    "app.1",
                    "rollcheck/testsvc:2@sha256:ab",
                    "running",
                    "running",
                ),
                task("app.2", "rollcheck/testsvc:1", "running", "running"),
                task("app.3", "rollcheck/testsvc:2", "starting", "running"),
                task("app.1.old", "rollcheck/testsvc:1", "shutdown", "shutdown"),
            ]
            .into(),
        };
        assert_eq!(
            step_line(&story, Duration::from_secs(17)).unwrap(),
            "step 1: update_image rollcheck/testsvc:2 (12.0s) — 1/3 tasks run rollcheck/testsvc:2"
        );
    }

    #[test]
    fn notable_events_tell_the_story() {
        let at = Duration::from_secs(1);
        let failed = Event::new(
            at,
            What::Task(TaskState {
                task: "app.2".into(),
                id: "x".into(),
                slot: Some(2),
                image: "i".into(),
                node: None,
                state: "rejected".into(),
                desired: "shutdown".into(),
                error: Some("no such image".into()),
            }),
        );
        assert_eq!(
            notable(&failed).unwrap(),
            "task app.2 rejected (no such image)"
        );
        let died = Event::new(
            at,
            What::Container {
                container: "app-v1".into(),
                action: ContainerAction::Die {
                    exit_code: Some(137),
                },
            },
        );
        assert_eq!(
            notable(&died).unwrap(),
            "container app-v1 exited with code 137"
        );
        let clean = Event::new(
            at,
            What::Container {
                container: "app-v1".into(),
                action: ContainerAction::Die { exit_code: Some(0) },
            },
        );
        assert_eq!(notable(&clean), None);
    }
}
