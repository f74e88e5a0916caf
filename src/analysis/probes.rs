//! Health-probe latency: when did each container's HEALTHCHECK run, and were the requests in
//! flight during a probe slower than the others? Pure computation over the run's events and
//! its ok requests; the runner loads the requests, the report turns this into summary.json.
//!
//! A probe is known from two sources: the `exec_start`/`exec_die` pair Docker emits for every
//! probe (paired per container in time order), and the [`What::HealthProbe`] events the watcher
//! copies from `State.Health.Log` (start, end, exit code; Docker keeps only the last 5, so it
//! polls).
//! A log entry wins where both describe the same probe: it carries the exit code.

use super::Percentiles;
use crate::event::{ContainerAction, Event, What};
use crate::history::{micros, new_histogram};
use std::collections::BTreeMap;
use std::time::Duration;

/// A spike is a probe during which the p99 of the requests it could affect exceeded this
/// many times the p99 of requests that ran outside every probe.
pub const DEFAULT_SPIKE_FACTOR: f64 = 2.0;

/// One ok request as the probe analysis needs it (from requests.csv).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    /// Swarm task that served it (`app.2.<id>`); empty when unknown.
    pub task: String,
    pub sent: Duration,
    pub done: Duration,
}

impl ProbeRequest {
    fn latency(&self) -> Duration {
        self.done.saturating_sub(self.sent)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Container (Swarm task) name, as events name it.
    pub container: String,
    pub start: Duration,
    pub end: Duration,
    /// From the log entry or `exec_die`; `None` when the engine sent none.
    pub exit_code: Option<i64>,
}

impl Probe {
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerProbes {
    pub name: String,
    /// True when its probes affect every request (the edge), not only the ones it served.
    pub on_every_request: bool,
    pub probes: usize,
    pub failed: usize,
    pub mean: Duration,
    pub max: Duration,
}

/// A probe during which the requests it could affect were slow.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub container: String,
    pub start: Duration,
    pub end: Duration,
    pub requests: u64,
    pub p99: Duration,
    pub baseline_p99: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeAnalysis {
    pub containers: Vec<ContainerProbes>,
    /// Every probe, by start time.
    pub probes: Vec<Probe>,
    /// Ok requests in flight (sent..done) while a probe ran on the edge or on their own task.
    pub in_probe: Option<Percentiles>,
    /// Ok requests that overlapped no such probe: the baseline.
    pub outside: Option<Percentiles>,
    pub spike_factor: f64,
    pub spikes: Vec<Spike>,
}

impl ProbeAnalysis {
    /// in-probe p99 / outside p99, when both exist.
    pub fn p99_ratio(&self) -> Option<f64> {
        ratio(self.in_probe?.p99, self.outside?.p99)
    }

    pub fn p50_ratio(&self) -> Option<f64> {
        ratio(self.in_probe?.p50, self.outside?.p50)
    }
}

fn ratio(a: Duration, b: Duration) -> Option<f64> {
    (!b.is_zero()).then(|| a.as_secs_f64() / b.as_secs_f64())
}

/// `service` is the name of the service under test: containers named `<service>.…` are its
/// tasks, whose probes affect only the requests they served; any other probed container of the
/// lab (the edge) sits in front of every request. `None` when the run saw no probe.
pub fn analyse(
    events: &[Event],
    requests: &[ProbeRequest],
    service: &str,
    spike_factor: f64,
) -> Option<ProbeAnalysis> {
    let probes = probes(events);
    if probes.is_empty() {
        return None;
    }
    let task_prefix = format!("{service}.");
    let is_task = |c: &str| c.starts_with(&task_prefix);
    let reqs = Requests::new(requests, &task_prefix);

    let mut in_probe = vec![false; reqs.sorted.len()];
    for p in &probes {
        for (i, _) in reqs.affected_by(p) {
            in_probe[i] = true;
        }
    }
    let (mut inside, mut outside) = (new_histogram(), new_histogram());
    for (r, hit) in reqs.sorted.iter().zip(&in_probe) {
        let h = if *hit { &mut inside } else { &mut outside };
        h.saturating_record(micros(r.latency()));
    }
    let in_probe_p = Percentiles::of(&inside);
    let outside_p = Percentiles::of(&outside);

    let mut spikes = Vec::new();
    if let Some(base) = outside_p {
        for p in &probes {
            let mut h = new_histogram();
            for (_, r) in reqs.affected_by(p) {
                h.saturating_record(micros(r.latency()));
            }
            if let Some(pp) = Percentiles::of(&h)
                && pp.p99.as_secs_f64() > spike_factor * base.p99.as_secs_f64()
            {
                spikes.push(Spike {
                    container: p.container.clone(),
                    start: p.start,
                    end: p.end,
                    requests: pp.count,
                    p99: pp.p99,
                    baseline_p99: base.p99,
                });
            }
        }
    }

    let mut by_container: BTreeMap<&str, Vec<&Probe>> = BTreeMap::new();
    for p in &probes {
        by_container.entry(&p.container).or_default().push(p);
    }
    let containers = by_container
        .into_iter()
        .map(|(name, ps)| {
            let total: Duration = ps.iter().map(|p| p.duration()).sum();
            ContainerProbes {
                name: name.to_string(),
                on_every_request: !is_task(name),
                probes: ps.len(),
                failed: ps
                    .iter()
                    .filter(|p| p.exit_code.is_some_and(|c| c != 0))
                    .count(),
                mean: total / ps.len() as u32,
                max: ps.iter().map(|p| p.duration()).max().unwrap_or_default(),
            }
        })
        .collect();

    Some(ProbeAnalysis {
        containers,
        probes,
        in_probe: in_probe_p,
        outside: outside_p,
        spike_factor,
        spikes,
    })
}

/// Ok requests by send time, so each probe looks only at the ones that could overlap it.
struct Requests<'a> {
    sorted: Vec<&'a ProbeRequest>,
    longest: Duration,
    task_prefix: &'a str,
}

impl<'a> Requests<'a> {
    fn new(requests: &'a [ProbeRequest], task_prefix: &'a str) -> Requests<'a> {
        let mut sorted: Vec<&ProbeRequest> = requests.iter().collect();
        sorted.sort_by_key(|r| r.sent);
        let longest = sorted.iter().map(|r| r.latency()).max().unwrap_or_default();
        Requests {
            sorted,
            longest,
            task_prefix,
        }
    }

    /// Requests in flight during `p` that it can slow down: all of them for the edge, the
    /// task's own for a task's probe. Yields (index in `sorted`, request).
    fn affected_by<'s>(
        &'s self,
        p: &'s Probe,
    ) -> impl Iterator<Item = (usize, &'a ProbeRequest)> + 's {
        let from = self
            .sorted
            .partition_point(|r| r.sent + self.longest <= p.start);
        let to = self.sorted.partition_point(|r| r.sent < p.end).max(from);
        let task_scoped = p.container.starts_with(self.task_prefix);
        (from..to)
            .map(|i| (i, self.sorted[i]))
            .filter(move |(_, r)| {
                r.sent < p.end && r.done > p.start && (!task_scoped || r.task == p.container)
            })
    }
}

/// Every probe the events show, by start: `health_log` entries, plus exec pairs that no log
/// entry covers (probes that scrolled out of Docker's last-5 log between two polls).
pub fn probes(events: &[Event]) -> Vec<Probe> {
    let mut logged: Vec<Probe> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::HealthProbe {
                container,
                end,
                exit_code,
                ..
            } => Some(Probe {
                container: container.clone(),
                start: e.at,
                end: (*end).max(e.at),
                exit_code: *exit_code,
            }),
            _ => None,
        })
        .collect();
    // The same entry can be seen by two polls; the watcher dedups, this makes sure.
    logged.sort_by(|a, b| (&a.container, a.start).cmp(&(&b.container, b.start)));
    logged.dedup_by(|a, b| a.container == b.container && a.start == b.start);

    let mut open: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut execs = Vec::new();
    let mut ordered: Vec<(Duration, &str, &ContainerAction)> = events
        .iter()
        .filter_map(|e| match &e.what {
            What::Container { container, action } => Some((e.at, container.as_str(), action)),
            _ => None,
        })
        .collect();
    ordered.sort_by_key(|(at, ..)| *at);
    for (at, container, action) in ordered {
        match action {
            // The watcher's event stream starts at a whole second before the clock, and
            // earlier events are clamped to zero: such a probe's real start is unknown.
            ContainerAction::ExecStart { .. } if at.is_zero() => {}
            ContainerAction::ExecStart { .. } => open.entry(container).or_default().push(at),
            ContainerAction::ExecDie { exit_code } => {
                let starts = open.entry(container).or_default();
                if !starts.is_empty() {
                    let start = starts.remove(0);
                    execs.push(Probe {
                        container: container.to_string(),
                        start,
                        end: at,
                        exit_code: *exit_code,
                    });
                }
            }
            _ => {}
        }
    }
    // Docker's log entry spans a little more than the exec (it starts before exec_create and
    // ends after inspecting the exit code), so "covers" is an overlap on the same container.
    let covered = |x: &Probe| {
        logged
            .iter()
            .any(|l| l.container == x.container && l.start <= x.end && x.start <= l.end)
    };
    let mut all: Vec<Probe> = execs.into_iter().filter(|x| !covered(x)).collect();
    all.extend(logged);
    all.sort_by(|a, b| (a.start, &a.container).cmp(&(b.start, &b.container)));
    all
}

#[cfg(test)]
mod tests;
