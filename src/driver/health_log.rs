//! The containers' `State.Health.Log` (each HEALTHCHECK probe's start, end, exit code and
//! output) polled into `health_log` events on the run clock: the event stream carries only
//! exec start/die, without the probe's output or, on older engines, its exit code.

use super::{Driver, DriverError, LABEL_RUN};
use crate::clock::Clock;
use crate::event::{Event, EventSink, What};
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Docker keeps only the last 5 `State.Health.Log` entries per container: with probes every
/// second or more, a poll every 2 s sees each entry at least once.
const HEALTH_POLL: Duration = Duration::from_secs(2);

impl Driver {
    /// Copies new `State.Health.Log` entries of this run's containers into `health_log`
    /// events (the probe's start on the run clock; end and exit code in the detail), and
    /// polls once more when cancelled so the last probes before teardown are kept.
    pub(crate) async fn poll_health_logs(
        &self,
        clock: Clock,
        events: &EventSink,
        cancel: &CancellationToken,
    ) {
        let mut seen: HashSet<(String, Duration)> = HashSet::new();
        loop {
            let stopping = cancel.is_cancelled();
            // Errors here cost only probe detail; the exec events still show every probe.
            if let Ok(new) = self.health_logs_once(&clock, &mut seen).await {
                for e in new {
                    let _ = events.send(e);
                }
            }
            if stopping {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(HEALTH_POLL) => {}
            }
        }
    }

    async fn health_logs_once(
        &self,
        clock: &Clock,
        seen: &mut HashSet<(String, Duration)>,
    ) -> Result<Vec<Event>, DriverError> {
        let label = format!("{LABEL_RUN}={}", self.run_id());
        let mut out = Vec::new();
        for c in self.labelled_containers(&label).await? {
            let Some(id) = c.id else { continue };
            let Ok(inspected) = self.inspect_container(&id).await else {
                continue; // removed between list and inspect
            };
            let labels = inspected
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default();
            // Same subject as the engine events: the task name, else the container name.
            let subject = labels
                .get("com.docker.swarm.task.name")
                .cloned()
                .or_else(|| {
                    inspected
                        .name
                        .map(|n| n.trim_start_matches('/').to_string())
                })
                .unwrap_or(id);
            let log = inspected
                .state
                .and_then(|s| s.health)
                .and_then(|h| h.log)
                .unwrap_or_default();
            for entry in log {
                let (Some(start), Some(end)) = (entry.start, entry.end) else {
                    continue;
                };
                let (Some(at), Some(end_at)) = (run_time(clock, start), run_time(clock, end))
                else {
                    continue; // before the run clock started (lab setup)
                };
                if !seen.insert((subject.clone(), at)) {
                    continue;
                }
                out.push(Event::new(
                    at,
                    What::HealthProbe {
                        container: subject.clone(),
                        end: end_at.max(at),
                        exit_code: entry.exit_code,
                        output: entry.output.unwrap_or_default(),
                    },
                ));
            }
        }
        Ok(out)
    }
}

/// An engine timestamp on the run clock; `None` before the clock started.
fn run_time(clock: &Clock, t: bollard::models::BollardDate) -> Option<Duration> {
    let t = super::utc(t);
    (t >= clock.utc_start()).then(|| clock.from_utc(t))
}
