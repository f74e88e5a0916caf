//! Turns a history into figures: totals by class, dropped, percentiles overall and per phase
//! (before the first step / while steps run / after), and the per-interval series the
//! reports chart. Pure computation: no I/O.

pub mod cluster;
pub mod containers;
pub mod probes;
pub mod truth;

use crate::history::{History, new_histogram};
use crate::outcome::{Outcome, OutcomeCounts};
use crate::runner::steps::StepSpan;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Percentiles {
    /// `None` when the histogram is empty: no ok request, no percentile.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let q = |q: f64| Duration::from_micros(h.value_at_quantile(q));
        Some(Percentiles {
            count: h.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            max: Duration::from_micros(h.max()),
            mean: Duration::from_secs_f64(h.mean() / 1e6),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    Before,
    During,
    After,
}

/// A stretch of the run, in whole intervals (requests are binned by scheduled start);
/// `start`/`end` are the bounds of the intervals it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: PhaseName,
    pub start: Duration,
    pub end: Duration,
    pub outcomes: OutcomeCounts,
    pub dropped: u64,
    pub latency: Option<Percentiles>,
    /// See [`tail_curve`].
    pub curve: Vec<(f64, Duration)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalSummary {
    pub start: Duration,
    pub outcomes: OutcomeCounts,
    pub dropped: u64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub versions: BTreeMap<String, u64>,
}

/// One mix entry's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryFigures {
    pub name: String,
    pub outcomes: OutcomeCounts,
    pub dropped: u64,
    pub latency: Option<Percentiles>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub outcomes: OutcomeCounts,
    /// Every request, late ones included (= rows in requests.csv).
    pub total: u64,
    pub late: u64,
    pub dropped: u64,
    /// dropped / (total - late).
    pub error_rate: f64,
    /// The first dropped request's scheduled start and the last one's end: the outage as the
    /// clients saw it (in the closed model the dropped count also depends on `error_pause`).
    pub dropped_window: Option<(Duration, Duration)>,
    pub dropped_classes: Vec<Outcome>,
    /// Ok requests from scheduled start (corrected).
    pub latency: Option<Percentiles>,
    /// [`tail_curve`] of `latency`.
    pub curve: Vec<(f64, Duration)>,
    /// Ok requests from the actual send (uncorrected).
    pub service_latency: Option<Percentiles>,
    /// TLS handshakes that finished (https only).
    pub tls_handshake: Option<Percentiles>,
    /// The client's record against the servers' truth log (set by the runner).
    pub truth: Option<truth::ServerTruth>,
    /// Per `[[load.request]]` entry, by name: its classes, dropped count and ok latency.
    pub entries: Vec<EntryFigures>,
    pub phases: Vec<Phase>,
    /// Failed requests per class that had any, in [`Outcome::ALL`] order.
    pub failures: Vec<(Outcome, crate::history::ClassStats)>,
    /// Ok responses per task that named itself.
    pub tasks: BTreeMap<String, crate::history::TaskStats>,
    pub intervals: Vec<IntervalSummary>,
    pub interval: Duration,
    pub versions: BTreeMap<String, u64>,
    /// The longest step that waited for the service to converge and did: the rollout's
    /// time to converge.
    pub converge: Option<Duration>,
    /// Why the run could not measure what it promised (makes the verdict inconclusive).
    pub problems: Vec<String>,
}

impl Analysis {
    pub fn phase(&self, name: PhaseName) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }
}

/// `problems` come from the runner (failed steps, lab errors); analysis adds its own.
pub fn analyse(
    history: &History,
    steps: &[StepSpan],
    dropped_classes: &[Outcome],
    mut problems: Vec<String>,
) -> Analysis {
    let outcomes = history.outcomes;
    let total = outcomes.total();
    let late = outcomes.get(Outcome::Late);
    let dropped = outcomes.sum_of(dropped_classes);
    let sent = total - late;
    if sent == 0 {
        problems.push("no request was sent: nothing was measured".into());
    }
    let mut versions = BTreeMap::new();
    let intervals = history
        .intervals
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            for (v, n) in &s.versions {
                *versions.entry(v.clone()).or_insert(0) += n;
            }
            let p = Percentiles::of(&s.latency());
            IntervalSummary {
                start: history.interval() * i as u32,
                outcomes: s.outcomes,
                dropped: s.outcomes.sum_of(dropped_classes),
                p50: p.map(|p| p.p50),
                p99: p.map(|p| p.p99),
                versions: s.versions.clone(),
            }
        })
        .collect();
    Analysis {
        outcomes,
        total,
        late,
        dropped,
        error_rate: if sent == 0 {
            0.0
        } else {
            dropped as f64 / sent as f64
        },
        dropped_window: dropped_classes
            .iter()
            .map(|&o| &history.served.classes[o as usize])
            .filter(|c| c.count > 0)
            .map(|c| (c.first_start, c.last_done))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1))),
        dropped_classes: dropped_classes.to_vec(),
        latency: Percentiles::of(&history.latency),
        curve: tail_curve(&history.latency),
        service_latency: Percentiles::of(&history.service_latency),
        tls_handshake: Percentiles::of(&history.tls_handshake),
        truth: None,
        entries: history
            .entries
            .iter()
            .map(|(name, e)| EntryFigures {
                name: name.clone(),
                outcomes: e.outcomes,
                dropped: e.outcomes.sum_of(dropped_classes),
                latency: Percentiles::of(&e.latency),
            })
            .collect(),
        phases: phases(history, steps, dropped_classes),
        failures: Outcome::ALL
            .into_iter()
            .filter(|&o| o != Outcome::Ok)
            .map(|o| (o, history.served.classes[o as usize].clone()))
            .filter(|(_, c)| c.count > 0)
            .collect(),
        tasks: history.served.tasks.clone(),
        intervals,
        interval: history.interval(),
        versions,
        converge: steps
            .iter()
            .filter(|s| s.converges && s.ok)
            .map(|s| s.end.saturating_sub(s.start))
            .max(),
        problems,
    }
}

fn phases(history: &History, steps: &[StepSpan], dropped_classes: &[Outcome]) -> Vec<Phase> {
    let width = history.interval();
    let end = width * history.intervals.slots.len() as u32;
    let span = steps
        .iter()
        .map(|s| s.start)
        .min()
        .zip(steps.iter().map(|s| s.end).max());
    // An interval overlapping the steps' span belongs to "during", so a step shorter than
    // one interval still has a during phase; the others fall wholly before or after it.
    let phase_of = |at: Duration| match span {
        None => PhaseName::Before,
        Some((first, _)) if at + width <= first => PhaseName::Before,
        Some((first, last)) if at >= last.max(first + Duration::from_nanos(1)) => PhaseName::After,
        Some(_) => PhaseName::During,
    };
    let names: &[PhaseName] = match span {
        Some(_) => &[PhaseName::Before, PhaseName::During, PhaseName::After],
        None => &[PhaseName::Before],
    };
    names
        .iter()
        .map(|&name| {
            let mut outcomes = OutcomeCounts::default();
            let mut latency = new_histogram();
            let (mut start, mut stop) = (None, Duration::ZERO);
            for (i, s) in history.intervals.slots.iter().enumerate() {
                let at = width * i as u32;
                if phase_of(at) == name {
                    start.get_or_insert(at);
                    stop = at + width;
                    outcomes.merge(&s.outcomes);
                    latency.add(&*s.latency()).expect("same histogram bounds");
                }
            }
            Phase {
                name,
                start: start.unwrap_or(end),
                end: stop.max(start.unwrap_or(end)),
                dropped: outcomes.sum_of(dropped_classes),
                outcomes,
                latency: Percentiles::of(&latency),
                curve: tail_curve(&latency),
            }
        })
        .collect()
}

/// The latency distribution as (quantile, value) points spaced evenly on HdrHistogram's tail
/// axis, t = -log10(1 - q): every 0.1 from the median's side up to the count's order of
/// magnitude (a p99.9 of 100 requests means nothing), then the max at q = 1. Empty when no
/// request was recorded. At most ~70 points however long the run.
pub fn tail_curve(h: &Histogram<u64>) -> Vec<(f64, Duration)> {
    if h.is_empty() {
        return Vec::new();
    }
    let t_max = (h.len().max(2) as f64).log10().ceil().max(2.0);
    let steps = (t_max * 10.0).round() as u32;
    let mut out: Vec<(f64, Duration)> = (0..steps)
        .map(|i| {
            let q = 1.0 - 10f64.powf(-f64::from(i) / 10.0);
            (q, Duration::from_micros(h.value_at_quantile(q)))
        })
        .collect();
    out.push((1.0, Duration::from_micros(h.max())));
    out
}
