//! The probe analysis as the collector runs it: events and ok requests arrive as they happen,
//! and no request is kept longer than it takes for the probes that overlapped it to be known.
//!
//! A finished request waits [`HOLD`] of run time (measured by later requests' ends) before it
//! is judged in or out of probes: a probe that started before the request ended is reported by
//! then — its exec events arrive at once, its `State.Health.Log` entry within the watcher's
//! 2-s poll. A probe's own spike figure (the p99 of the requests it could affect) is final
//! once no request in flight during it can still arrive: the load's timeout after its end.
//!
//! Requests in flight while a step ran, or while a node fault lasted (from `node_stop` until
//! the `node_start` that undoes it), are left out and counted apart: in node-shutdown.toml the
//! 3-s answers of requests that met a stopped node's tasks were reported as "spikes" of
//! health probes that merely ran at the same time.

use super::{ContainerProbes, Probe, ProbeAnalysis, ProbeRequest, Spike};
use crate::analysis::Percentiles;
use crate::event::{ContainerAction, Event, What};
use crate::history::{micros, new_histogram};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// What a step does to the requests' path.
#[derive(Debug, Clone, PartialEq)]
pub enum StepRole {
    /// A node fault (stop, kill, pause, disconnect, drain) on this node: it lasts until undone.
    Fault(String),
    /// Undoes a fault on this node (start, unpause, connect, activate).
    Undo(String),
}

/// An ok request waiting [`HOLD`] for its probes, in 24 bytes (at 10,000 req/s, 100,000 of
/// them wait): µs, and its task by number.
#[derive(Debug, Clone, Copy)]
struct Held {
    sent: u64,
    done: u64,
    connect: u32,
    task: u32,
}

impl Held {
    fn done(&self) -> Duration {
        Duration::from_micros(self.done)
    }
}

/// How long (in run time of later finishes) a finished request waits for its probes.
pub const HOLD: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Slot {
    probe: Probe,
    from_log: bool,
    /// Latencies (µs) of the requests it could affect, until it is closed.
    latencies: Vec<u64>,
    /// (requests, their p99) once no more can arrive.
    closed: Option<Option<Percentiles>>,
}

#[derive(Debug, Clone)]
pub struct ProbeFold {
    /// `<service>.` of each service whose probes slow only their own requests.
    task_prefixes: Vec<String>,
    /// What each step does to the data path, by step index.
    roles: BTreeMap<usize, StepRole>,
    /// Spans no request is judged in: steps, and faults until undone. `None`: still open.
    excluded: Vec<(Duration, Option<Duration>)>,
    /// Open spans by key: a step by its index, a fault by its node.
    open: BTreeMap<String, usize>,
    /// Ok requests left out because they overlapped a step or a fault.
    left_out: u64,
    left_out_slow_connect: u64,
    spike_factor: f64,
    /// The longest a request can take (the load's timeout).
    longest_request: Duration,
    exec_open: BTreeMap<String, VecDeque<Duration>>,
    /// By start.
    slots: Vec<Slot>,
    longest_probe: Duration,
    /// Slots below this index are closed.
    closed_below: usize,
    pending: VecDeque<Held>,
    /// The tasks [`Held::task`] numbers.
    tasks: Vec<String>,
    task_numbers: HashMap<String, u32>,
    newest_done: Duration,
    inside: Histogram<u64>,
    outside: Histogram<u64>,
}

impl ProbeFold {
    /// `service`: its tasks (`<service>.…`) are probed for their own requests only; any other
    /// probed container (the edge) sits in front of every request.
    pub fn new(service: &str, longest_request: Duration, spike_factor: f64) -> ProbeFold {
        ProbeFold {
            task_prefixes: vec![format!("{service}.")],
            roles: BTreeMap::new(),
            excluded: Vec::new(),
            open: BTreeMap::new(),
            left_out: 0,
            left_out_slow_connect: 0,
            spike_factor,
            longest_request,
            exec_open: BTreeMap::new(),
            slots: Vec::new(),
            longest_probe: Duration::ZERO,
            closed_below: 0,
            pending: VecDeque::new(),
            tasks: Vec::new(),
            task_numbers: HashMap::new(),
            newest_done: Duration::ZERO,
            inside: new_histogram(),
            outside: new_histogram(),
        }
    }

    /// Several services whose tasks are probed for their own requests only (a stack's, but
    /// for its front door, which sits in front of every request).
    pub fn with_services(mut self, services: &[String]) -> ProbeFold {
        self.task_prefixes = services.iter().map(|s| format!("{s}.")).collect();
        self
    }

    fn scoped(&self, container: &str) -> bool {
        scoped(&self.task_prefixes, container)
    }

    /// What the plan's steps do, so a fault's span lasts until the step that undoes it.
    pub fn with_steps(mut self, roles: BTreeMap<usize, StepRole>) -> ProbeFold {
        self.roles = roles;
        self
    }

    fn open_span(&mut self, key: String, at: Duration) {
        if !self.open.contains_key(&key) {
            self.excluded.push((at, None));
            self.open.insert(key, self.excluded.len() - 1);
        }
    }

    fn close_span(&mut self, key: &str, at: Duration) {
        if let Some(i) = self.open.remove(key) {
            self.excluded[i].1 = Some(at);
        }
    }

    pub fn event(&mut self, e: &Event) {
        match &e.what {
            What::StepStart { index, .. } => {
                self.open_span(format!("step {index}"), e.at);
                if let Some(StepRole::Fault(node)) = self.roles.get(index).cloned() {
                    self.open_span(format!("node {node}"), e.at);
                }
            }
            What::StepEnd { index, .. } => {
                self.close_span(&format!("step {index}"), e.at);
                if let Some(StepRole::Undo(node)) = self.roles.get(index).cloned() {
                    self.close_span(&format!("node {node}"), e.at);
                }
            }
            What::Container { container, action } => match action {
                // The watcher's event stream starts at a whole second before the clock, and
                // earlier events are clamped to zero: such a probe's real start is unknown.
                ContainerAction::ExecStart { .. } if e.at.is_zero() => {}
                ContainerAction::ExecStart { .. } => self
                    .exec_open
                    .entry(container.clone())
                    .or_default()
                    .push_back(e.at),
                ContainerAction::ExecDie { exit_code } => {
                    let start = self
                        .exec_open
                        .get_mut(container)
                        .and_then(|s| s.pop_front());
                    if let Some(start) = start {
                        let probe = Probe {
                            container: container.clone(),
                            start,
                            end: e.at,
                            exit_code: *exit_code,
                        };
                        // Docker's log entry spans a little more than the exec (it starts
                        // before exec_create and ends after inspecting the exit code), so
                        // "covers" is an overlap on the same container.
                        if !self.overlapping(&probe).any(|i| self.slots[i].from_log) {
                            self.insert(probe, false, Vec::new());
                        }
                    }
                }
                _ => {}
            },
            What::HealthProbe {
                container,
                end,
                exit_code,
                ..
            } => {
                let probe = Probe {
                    container: container.clone(),
                    start: e.at,
                    end: (*end).max(e.at),
                    exit_code: *exit_code,
                };
                let same: Vec<usize> = self.overlapping(&probe).collect();
                // The same entry can be seen by two polls.
                if same
                    .iter()
                    .any(|&i| self.slots[i].from_log && self.slots[i].probe.start == probe.start)
                {
                    return;
                }
                // The entry replaces the exec pairs it covers, and takes what they measured.
                let mut latencies = Vec::new();
                for &i in same.iter().rev() {
                    if !self.slots[i].from_log && i >= self.closed_below {
                        latencies.extend(self.slots.remove(i).latencies);
                    }
                }
                self.insert(probe, true, latencies);
            }
            _ => {}
        }
    }

    /// Slots of `p`'s container that overlap it.
    fn overlapping<'a>(&'a self, p: &'a Probe) -> impl Iterator<Item = usize> + 'a {
        self.slots.iter().enumerate().filter_map(move |(i, s)| {
            (s.probe.container == p.container && s.probe.start <= p.end && p.start <= s.probe.end)
                .then_some(i)
        })
    }

    fn insert(&mut self, probe: Probe, from_log: bool, latencies: Vec<u64>) {
        self.longest_probe = self.longest_probe.max(probe.duration());
        let at = self.slots.partition_point(|s| {
            (s.probe.start, &s.probe.container) <= (probe.start, &probe.container)
        });
        let mut slot = Slot {
            probe,
            from_log,
            latencies,
            closed: None,
        };
        // Reported after the requests it overlapped were judged: listed, but no spike figure.
        if at < self.closed_below {
            close(&mut slot);
            self.closed_below += 1;
        }
        self.slots.insert(at, slot);
    }

    /// An ok request, when it finished.
    pub fn request(&mut self, r: ProbeRequest) {
        self.ok_request(&r.task, r.sent, r.done, r.connect);
    }

    /// [`ProbeFold::request`] without a copy of the task's name (the history calls this for
    /// every ok request).
    pub fn ok_request(&mut self, task: &str, sent: Duration, done: Duration, connect: Duration) {
        let task = match self.task_numbers.get(task) {
            Some(n) => *n,
            None => {
                let n = self.tasks.len() as u32;
                self.tasks.push(task.to_string());
                self.task_numbers.insert(task.to_string(), n);
                n
            }
        };
        self.newest_done = self.newest_done.max(done);
        self.pending.push_back(Held {
            sent: micros(sent),
            done: micros(done),
            connect: micros(connect).min(u32::MAX as u64) as u32,
            task,
        });
        while self
            .pending
            .front()
            .is_some_and(|f| f.done() + HOLD <= self.newest_done)
        {
            let r = self.pending.pop_front().expect("front exists");
            self.judge(&r);
        }
        let judged = self.newest_done.saturating_sub(HOLD);
        self.close_until(judged.saturating_sub(self.longest_request));
    }

    fn judge(&mut self, r: &Held) {
        let (sent, done) = (Duration::from_micros(r.sent), r.done());
        let task = self.tasks[r.task as usize].as_str();
        if self
            .excluded
            .iter()
            .any(|&(from, to)| done > from && to.is_none_or(|to| sent < to))
        {
            self.left_out += 1;
            return;
        }
        if Duration::from_micros(r.connect.into()) >= super::SLOW_CONNECT {
            self.left_out_slow_connect += 1;
            return;
        }
        let latency = r.done.saturating_sub(r.sent);
        let to = self.slots.partition_point(|s| s.probe.start < done);
        let mut hit = false;
        for i in (0..to).rev() {
            let s = &mut self.slots[i];
            if s.probe.start + self.longest_probe < sent {
                break;
            }
            let scoped = scoped(&self.task_prefixes, &s.probe.container);
            if s.probe.end > sent && (!scoped || task == s.probe.container) {
                hit = true;
                if s.closed.is_none() {
                    s.latencies.push(latency);
                }
            }
        }
        let h = if hit {
            &mut self.inside
        } else {
            &mut self.outside
        };
        h.saturating_record(latency);
    }

    /// Closes the slots that ended before `t`: no request in flight during them is pending.
    fn close_until(&mut self, t: Duration) {
        while let Some(s) = self.slots.get_mut(self.closed_below) {
            if s.probe.start + self.longest_probe >= t {
                break;
            }
            close(s);
            self.closed_below += 1;
        }
    }

    /// Every probe seen so far, by start.
    pub fn probes(&self) -> Vec<Probe> {
        let mut probes: Vec<Probe> = self.slots.iter().map(|s| s.probe.clone()).collect();
        probes.sort_by(|a, b| (a.start, &a.container).cmp(&(b.start, &b.container)));
        probes
    }

    /// Judges what is pending against every probe seen; `None` when the run saw no probe.
    pub fn finish(mut self) -> Option<ProbeAnalysis> {
        while let Some(r) = self.pending.pop_front() {
            self.judge(&r);
        }
        for s in &mut self.slots {
            close(s);
        }
        if self.slots.is_empty() {
            return None;
        }
        let outside = Percentiles::of(&self.outside);
        let spikes = match outside {
            None => Vec::new(),
            Some(base) => self
                .slots
                .iter()
                .filter_map(|s| {
                    let p = s.closed.flatten()?;
                    (p.p99.as_secs_f64() > self.spike_factor * base.p99.as_secs_f64()).then(|| {
                        Spike {
                            container: s.probe.container.clone(),
                            start: s.probe.start,
                            end: s.probe.end,
                            requests: p.count,
                            p99: p.p99,
                            baseline_p99: base.p99,
                        }
                    })
                })
                .collect(),
        };
        let probes = self.probes();
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
                    on_every_request: !self.scoped(name),
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
            in_probe: Percentiles::of(&self.inside),
            outside,
            spike_factor: self.spike_factor,
            spikes,
            left_out: self.left_out,
            left_out_slow_connect: self.left_out_slow_connect,
        })
    }
}

fn close(s: &mut Slot) {
    if s.closed.is_some() {
        return;
    }
    let mut h = new_histogram();
    for &v in &s.latencies {
        h.saturating_record(v);
    }
    s.closed = Some(Percentiles::of(&h));
    s.latencies = Vec::new();
}

/// A container of one of these services (its probes slow only its own requests).
/// A Swarm task of one of the services (`app.2.<id>` for `app.`), or a plain container of
/// that very name (a `docker` lab's `app-v1`).
fn scoped(prefixes: &[String], container: &str) -> bool {
    prefixes
        .iter()
        .any(|p| container.starts_with(p) || Some(container) == p.strip_suffix('.'))
}
