//! `rollcheck agent`: one load generator of a distributed run, as a task of the coordinator's
//! Swarm job. It reads its [`Spec`] and shard from the environment, opens its share of the
//! preconnected connections, says hello, waits at the start barrier (the coordinator writes
//! the start instant into [`START_FILE`] with `rollcheck agent start`), sends its shard of the
//! load on a clock that starts at that instant, and writes every request and each interval's
//! histogram to stdout ([`wire`]) until SIGTERM (the coordinator's stop) or its own limit.

use super::spec::{self, ENV_NODE, ENV_SLOT, ENV_SPEC, START_FILE, Spec};
use super::wire::{self, Line};
use crate::clock::Clock;
use crate::history::{Entry, Recorder, micros, new_histogram};
use crate::load::{self, Shard, client::Target};
use crate::outcome::Outcome;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How long an agent waits at the barrier before it gives up (the coordinator starts every
/// agent within seconds of their hellos, or removes the job).
const BARRIER_TIMEOUT: Duration = Duration::from_secs(300);

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// The agent's whole life; `Err` says why it could not run (on stderr, in its log).
pub async fn run() -> Result<(), String> {
    // First: as PID 1 of its container the agent ignores SIGTERM until it handles it.
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            term.recv().await;
            stop.cancel();
        });
    }
    let text = std::env::var(ENV_SPEC).map_err(|_| {
        format!("{ENV_SPEC} is not set: `rollcheck agent` runs as a task of a run's generator job (`[load] generators`)")
    })?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| format!("{ENV_SPEC}: {e}"))?;
    let index = spec::shard_of_slot(
        &std::env::var(ENV_SLOT).unwrap_or_default(),
        spec.first_slot,
    );
    let shard = Shard::new(index, spec.of)
        .ok_or_else(|| format!("slot {index} is not one of {} shards", spec.of))?;
    let node = std::env::var(ENV_NODE).unwrap_or_default();
    let mut plan =
        crate::scenario::parse(&spec.scenario, std::path::Path::new("agent.toml"), &|_| {
            None
        })
        .map_err(|e| e.to_string())?;
    spec.restore(&mut plan.load)?;
    let l = &plan.load;
    let target = Target::from_uri(&l.target, &crate::load::client::Options::of(l))?;
    let (warm, preconnected) = match l.preconnect.div_ceil(spec.of as usize) {
        0 => (Vec::new(), None),
        n => {
            let w = load::preconnect(&target, n).await;
            let note = w.note();
            (w.conns, Some(note))
        }
    };
    let out = std::io::stdout();
    say(
        &out,
        &Line::Hello {
            shard: shard.index,
            of: shard.of,
            node,
            unix_ns: unix_ns(),
        },
    );
    let Some(start) = barrier(&stop).await? else {
        say(&out, &done(0));
        return Ok(());
    };
    let clock = Clock::starting_at(start);
    // The barrier names an instant a little ahead: nothing is sent before it.
    tokio::select! {
        _ = tokio::time::sleep_until(clock.instant(Duration::ZERO).into()) => {}
        _ = stop.cancelled() => {
            say(&out, &done(0));
            return Ok(());
        }
    }
    let (recorder, entries) = Recorder::channel();
    let interval = l.interval;
    let writer = std::thread::Builder::new()
        .name("rollcheck-agent-log".into())
        .spawn(move || write_log(entries, interval, clock, shard))
        .map_err(|e| e.to_string())?;
    if let Some(note) = preconnected {
        recorder.event(note);
    }
    let limit = {
        let stop = stop.clone();
        let max = Duration::from_secs(spec.max_run_s);
        tokio::spawn(async move {
            tokio::time::sleep_until(clock.instant(max).into()).await;
            stop.cancel();
        })
    };
    load::run(
        std::sync::Arc::new(target),
        l.model,
        shard,
        warm,
        clock,
        recorder,
        stop,
    )
    .await;
    limit.abort();
    writer
        .join()
        .map_err(|_| "the log writer panicked".to_string())?;
    Ok(())
}

/// Waits for the start instant (the coordinator writes it once every agent said hello);
/// `None` when stopped first.
async fn barrier(
    stop: &CancellationToken,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let deadline = tokio::time::Instant::now() + BARRIER_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(START_FILE)
            && let Ok(ns) = text.trim().parse::<i64>()
        {
            return Ok(Some(chrono::DateTime::from_timestamp_nanos(ns)));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "no start instant in {START_FILE} after {BARRIER_TIMEOUT:?}"
            ));
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
    }
}

/// `rollcheck agent start NS`, run by the coordinator in each agent's container: writes the
/// start instant for [`barrier`] and prints this container's wall clock, read after the
/// write, for the coordinator's offset measurement.
pub fn start(at_unix_ns: i64) -> Result<(), String> {
    let part = format!("{START_FILE}.part");
    std::fs::write(&part, at_unix_ns.to_string())
        .and_then(|()| std::fs::rename(&part, START_FILE))
        .map_err(|e| format!("{START_FILE}: {e}"))?;
    println!("{}", unix_ns());
    Ok(())
}

/// The closing line, with what this agent used.
fn done(requests: u64) -> Line {
    let used = super::Usage::now();
    Line::Done {
        requests,
        cpu_s: Some(used.cpu_s),
        peak_rss_mb: Some(used.peak_rss_mb),
    }
}

fn say(out: &std::io::Stdout, line: &Line) {
    let mut out = out.lock();
    let _ = writeln!(out, "{}", line.encode());
    let _ = out.flush();
}

/// How long after an interval's end its histogram is written: requests finish out of order
/// by about this much between the runtime's workers. A request that finishes in an interval
/// after that travels in a second histogram of it.
const INTERVAL_LAG: Duration = Duration::from_secs(1);

/// A batch of rows is written at least every 100 ms, and before it grows past this (bytes):
/// the coordinator holds a line whole before it decodes it.
const MAX_BATCH: usize = 256 * 1024;

/// Every request in a batch of rows, written and flushed at least every 100 ms; each
/// interval's histogram of ok latencies once it has closed; at the end, what is left and the
/// closing count.
fn write_log(
    entries: std::sync::mpsc::Receiver<Entry>,
    interval: Duration,
    clock: Clock,
    shard: Shard,
) {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut intervals: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    let mut requests = 0u64;
    let mut batch = wire::Batch::new();
    let mut last_flush = std::time::Instant::now();
    let step = interval.as_nanos().max(1);
    let closed = |out: &mut std::io::BufWriter<_>,
                  intervals: &mut BTreeMap<u64, Histogram<u64>>,
                  before: u64| {
        while let Some(entry) = intervals.first_entry() {
            if *entry.key() >= before {
                break;
            }
            let (index, h) = entry.remove_entry();
            let line = Line::Interval {
                index,
                latency: wire::histogram_text(&h),
            };
            let _ = writeln!(out, "{}", line.encode());
        }
    };
    loop {
        let entry = match entries.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => Some(e),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match entry {
            Some(Entry::Request(mut r)) => {
                r.round_to_micros();
                r.agent = Some(shard.index);
                requests += 1;
                if r.outcome == Outcome::Ok {
                    let index = (r.done.as_nanos() / step) as u64;
                    intervals
                        .entry(index)
                        .or_insert_with(new_histogram)
                        .saturating_record(micros(r.latency()));
                }
                batch.push(&r);
            }
            Some(Entry::Event(crate::event::Event {
                at,
                what:
                    crate::event::What::Note {
                        kind,
                        subject,
                        detail,
                    },
            })) => {
                let note = Line::Note {
                    at_ms: crate::history::ms(at),
                    kind,
                    subject,
                    detail,
                };
                let _ = writeln!(out, "{}", note.encode());
            }
            _ => {}
        }
        if batch.len() >= MAX_BATCH {
            let _ = batch.write_to(&mut out);
        }
        if last_flush.elapsed() >= Duration::from_millis(100) {
            let _ = batch.write_to(&mut out);
            let open = clock.now().saturating_sub(INTERVAL_LAG).as_nanos() / step;
            closed(&mut out, &mut intervals, open as u64);
            let _ = out.flush();
            last_flush = std::time::Instant::now();
        }
    }
    let _ = batch.write_to(&mut out);
    closed(&mut out, &mut intervals, u64::MAX);
    let _ = writeln!(out, "{}", done(requests).encode());
    let _ = out.flush();
}
