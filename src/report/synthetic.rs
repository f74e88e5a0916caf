//! A made-up but realistic run directory, written through the real history collector,
//! analysis, gate and summary, for the HTML report's tests and its benchmark (ci/bench-report):
//! a rolling update from version 1 to 2 over three tasks, with 502s and resets while each old
//! task stops, SYN retransmits (+1 s connect), health probes and their latency bumps.

use super::{RunFacts, Summary};
use crate::analysis;
use crate::event::{ContainerAction, Event, What};
use crate::gate;
use crate::history::Collector;
use crate::load::record::RequestRecord;
use crate::outcome::Outcome;
use crate::runner::steps::StepSpan;
use crate::scenario::Gate;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::Duration;

/// What to put in the run.
pub struct Synthetic<'a> {
    pub requests: u64,
    pub duration: Duration,
    /// Goes into the title, every task name and every version (for escaping tests).
    pub tag: &'a str,
}

/// Small deterministic generator (xorshift), so runs are reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes requests.csv, events.csv, summary.json and scenario.toml into `dir`.
pub fn write_run_dir(dir: &Path, spec: &Synthetic) -> io::Result<Summary> {
    let interval = Duration::from_secs(1);
    let probes = crate::analysis::probes::ProbeFold::new(
        "app",
        Duration::from_secs(5),
        crate::analysis::probes::DEFAULT_SPIKE_FACTOR,
    );
    let collector = Collector::start(dir, interval, probes)?;
    let rec = collector.recorder();
    let total_s = spec.duration.as_secs_f64();
    let (step_from, step_to) = (total_s * 0.2, total_s * 0.8);
    // Old task i stops at cut[i] and its replacement starts 2 s later.
    let cuts: Vec<f64> = (0..3)
        .map(|i| step_from + (step_to - step_from) * (i as f64 + 0.5) / 3.0)
        .collect();
    let event = |at: f64, what: What| rec.event(Event::new(Duration::from_secs_f64(at), what));
    let container = |at: f64, container: String, action: ContainerAction| {
        event(at, What::Container { container, action })
    };
    let task = |slot: usize, new: bool| {
        format!(
            "app.{}.{}{}",
            slot + 1,
            if new { "new" } else { "old" },
            spec.tag
        )
    };
    let step = || "step 1: update_image".to_string();
    event(
        step_from,
        What::StepStart {
            index: 1,
            step: step(),
        },
    );
    for (slot, &cut) in cuts.iter().enumerate() {
        container(
            cut,
            task(slot, false),
            ContainerAction::Kill {
                signal: "15".into(),
            },
        );
        container(
            cut + 0.3,
            task(slot, false),
            ContainerAction::Die { exit_code: Some(0) },
        );
        container(
            cut + 2.0,
            task(slot, true),
            ContainerAction::Start {
                image: "testsvc:2".into(),
            },
        );
        container(
            cut + 4.0,
            task(slot, true),
            ContainerAction::HealthStatus {
                status: "healthy".into(),
            },
        );
    }
    let mut probe = 0.5;
    while probe < total_s {
        for (slot, cut) in cuts.iter().enumerate() {
            let new = cut + 2.0 < probe;
            let command = "probe".to_string();
            container(
                probe,
                task(slot, new),
                ContainerAction::ExecStart { command },
            );
            container(
                probe + 0.05,
                task(slot, new),
                ContainerAction::ExecDie { exit_code: None },
            );
        }
        probe += 2.0;
    }
    event(
        step_to,
        What::StepEnd {
            index: 1,
            step: step(),
            ok: true,
            detail: String::new(),
        },
    );

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let gap = total_s / spec.requests as f64;
    for id in 0..spec.requests {
        let at = id as f64 * gap;
        let slot = (id % 3) as usize;
        let new = at > cuts[slot] + 2.0;
        let mut r = RequestRecord::new(id, Duration::from_secs_f64(at));
        let mut connect = 0.0002 + rng.next() * 0.0005;
        if rng.next() < 0.0005 {
            connect += 1.0; // SYN retransmit
        }
        // Probes bump latency for ~50 ms every 2 s.
        let bump = if (at - 0.5).rem_euclid(2.0) < 0.06 {
            0.15
        } else {
            0.0
        };
        let service = 1.0 + rng.next() * 0.01 + bump;
        let down = cuts[slot] <= at && at < cuts[slot] + 2.0;
        let sent = at;
        r.sent = Some(Duration::from_secs_f64(sent));
        let (outcome, error, done) = if down && rng.next() < 0.6 {
            let o = if rng.next() < 0.8 {
                Outcome::Http5xx
            } else {
                Outcome::Reset
            };
            (o, "502 Bad Gateway".to_string(), sent + connect + 0.002)
        } else {
            (Outcome::Ok, String::new(), sent + connect + service)
        };
        r.connected = Some(Duration::from_secs_f64(sent + connect));
        r.first_byte = Some(Duration::from_secs_f64(done - 0.00001));
        r.status = match outcome {
            Outcome::Ok => Some(200),
            Outcome::Http5xx => Some(502),
            _ => None,
        };
        r.finish(Duration::from_secs_f64(done), outcome, error);
        if outcome == Outcome::Ok {
            r.version = format!("{}{}", if new { 2 } else { 1 }, spec.tag);
            r.task = task(slot, new);
            r.host = format!("host{slot}");
        }
        rec.request(r);
    }
    drop(rec);
    let history = collector.finish()?;
    let steps = [StepSpan {
        index: 1,
        label: format!("update_image testsvc:2 {}", spec.tag),
        action: "update_image",
        start: Duration::from_secs_f64(step_from),
        end: Duration::from_secs_f64(step_to),
        ok: true,
        expected_failure: false,
        converges: true,
        detail: "converged".into(),
    }];
    let g = Gate::default();
    let a = analysis::analyse(&history, &steps, &g.dropped, Vec::new());
    let e = gate::evaluate(&a, &g);
    let summary = Summary::build(
        RunFacts {
            id: "synthetic".into(),
            started_utc: chrono::Utc::now(),
            duration: spec.duration,
            interrupted: false,
            recovered: false,
            title: format!("synthetic rolling update {}", spec.tag),
            file: "synthetic.toml".into(),
            slug: "synthetic".into(),
            target: "http://127.0.0.1:8080/".into(),
            model: "closed, 10 workers".into(),
            keepalive: false,
            environment: BTreeMap::from([("docker.server".into(), spec.tag.to_string())]),
        },
        &a,
        &e,
        &steps,
    );
    let json = serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json)?;
    std::fs::write(
        dir.join("scenario.toml"),
        format!("title = \"synthetic {}\"\n", spec.tag),
    )?;
    Ok(summary)
}
