//! The load generator: closed (N workers, like `ab -c N`) or open (constant rate with
//! scheduled starts, like wrk2). Workers never print: each finished request goes to the
//! history's recorder, which owns all output.

pub mod client;
pub mod record;
pub mod shard;

use crate::clock::Clock;
use crate::history::Recorder;
use crate::outcome::Outcome;
use crate::scenario::LoadModel;
use client::{Conn, Target};
use record::RequestRecord;
pub use shard::Shard;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Kept-alive connections opened before the run (`[load] preconnect`), and how that went.
#[derive(Default)]
pub struct Preconnected {
    pub conns: Vec<Conn>,
    pub failed: usize,
    /// The first failure's class and message.
    pub first_error: Option<String>,
    pub took: Duration,
}

impl Preconnected {
    /// What [`Preconnected::note`] says.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} of {} kept-alive connections opened in {:.2} s, before the clock started",
            self.conns.len(),
            self.conns.len() + self.failed,
            self.took.as_secs_f64()
        );
        if let Some(e) = &self.first_error {
            s.push_str(&format!("; {} failed (first: {e})", self.failed));
        }
        s
    }

    /// The events.csv note, at the clock's start (the connections were opened before it).
    pub fn note(&self) -> crate::event::Event {
        crate::event::Event::new(
            Duration::ZERO,
            crate::event::What::Note {
                kind: "preconnect".into(),
                subject: "load".into(),
                detail: self.describe(),
            },
        )
    }
}

/// Handshakes at once while preconnecting. 10,000 connections to `rollcheck serve` took 1.1 s
/// here, or 4-5 s when the fresh server's accept queue overflowed (the kernel then resends
/// the SYNs after 1 s): a connect completes before the server accepts it, so the pace is
/// the server's.
const PRECONNECT_AT_ONCE: usize = 256;

/// Opens `n` kept-alive connections to the target for the first requests to reuse. A
/// connection that cannot be opened is counted, not fatal: the requests will open their own
/// and record why they fail.
pub async fn preconnect(target: &Target, n: usize) -> Preconnected {
    use futures_util::StreamExt;
    let started = std::time::Instant::now();
    let mut done = Preconnected::default();
    let mut opens = futures_util::stream::iter(0..n)
        .map(|_| client::open(target))
        .buffer_unordered(PRECONNECT_AT_ONCE);
    while let Some(r) = opens.next().await {
        match r {
            Ok(c) => done.conns.push(c),
            Err(e) => {
                done.failed += 1;
                done.first_error.get_or_insert(e);
            }
        }
    }
    done.took = started.elapsed();
    done
}

/// Drives load until `stop` is cancelled, then lets in-flight requests finish (each is bounded
/// by the connect and request timeouts) and returns. `shard`: the part of the load this
/// generator sends ([`shard::Shard::WHOLE`] for all of it). `warm`: connections opened
/// beforehand (`[load] preconnect`), reused first.
pub async fn run(
    target: Arc<Target>,
    model: LoadModel,
    shard: Shard,
    warm: Vec<Conn>,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    match model {
        LoadModel::Closed {
            concurrency,
            error_pause,
        } => {
            closed(
                target,
                shard,
                shard.workers(concurrency),
                error_pause,
                warm,
                clock,
                recorder,
                stop,
            )
            .await
        }
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            // Each shard may hold its share of the requests in flight.
            let max_in_flight = max_in_flight.div_ceil(shard.of as usize);
            open(
                target,
                shard,
                rate,
                max_in_flight,
                warm,
                clock,
                recorder,
                stop,
            )
            .await
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn closed(
    target: Arc<Target>,
    shard: Shard,
    concurrency: usize,
    error_pause: Duration,
    mut warm: Vec<Conn>,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    let next_id = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (target, recorder, stop, next_id) = (
            target.clone(),
            recorder.clone(),
            stop.clone(),
            next_id.clone(),
        );
        let mut conn: Option<Conn> = warm.pop();
        workers.spawn(async move {
            while !stop.is_cancelled() {
                let id = shard.id(next_id.fetch_add(1, Ordering::Relaxed));
                let scheduled = clock.now();
                let (rec, kept) = client::send(&target, &clock, id, scheduled, conn.take()).await;
                conn = kept;
                let failed = rec.outcome != Outcome::Ok;
                recorder.request(rec);
                if failed {
                    // A refusing port answers in microseconds: without the pause ten workers
                    // send hundreds of thousands of requests a second, and the counts say
                    // more about the loop than about what clients would have seen.
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep_until(clock.instant(scheduled + error_pause).into()) => {}
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// The open model. A dispatcher on a thread of its own keeps the schedule: a tokio timer has
/// 1-ms granularity and shares the runtime's threads with 10,000 connections, and measured
/// at 10,000 req/s only 21.5 % of requests were sent within 1 ms of their slot that way
/// (lag p99 57.7 ms). The thread sleeps to the next slot (timer slack 1 µs, at least
/// [`DISPATCH_EVERY`] between wake-ups, real-time priority where allowed), hands the slots
/// that are due to the runtime in one batch, and this task spawns them; a request's `sent`
/// is when it starts.
#[allow(clippy::too_many_arguments)]
async fn open(
    target: Arc<Target>,
    shard: Shard,
    rate: f64,
    max_in_flight: usize,
    warm: Vec<Conn>,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let capacity = Arc::new(Semaphore::new(max_in_flight));
    // Idle kept-alive connections, shared by all in-flight requests (keep-alive only).
    let pool = Arc::new(std::sync::Mutex::new(warm));
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<(u64, Duration)>>();
    let (priority_tx, priority_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let dispatcher = std::thread::Builder::new()
        .name("rollcheck-dispatch".into())
        .spawn(move || {
            precise_sleeps();
            let _ = priority_tx.send(real_time_priority());
            // Shards share the instant their clocks start at (the coordinator's start
            // barrier), so their schedules interleave into the single generator's.
            let first = if shard.of > 1 {
                Duration::ZERO
            } else {
                clock.now()
            };
            // This shard's n-th slot of the single generator's schedule: (id, instant).
            let slot = |n: u64| shard.slot(first, period, n);
            let (mut next, mut wake) = (0u64, first);
            // Each request's start is fixed by the schedule, not by when the previous one
            // finished; latency is measured from it (coordinated-omission correction). No
            // slot is handed over before its time.
            while sleep_until(&clock, wake, &stop) {
                let now = clock.now();
                let mut batch = Vec::new();
                while slot(next).1 <= now {
                    batch.push(slot(next));
                    next += 1;
                }
                if !batch.is_empty() && due_tx.send(batch).is_err() {
                    break;
                }
                wake = slot(next).1.max(now + DISPATCH_EVERY);
            }
        });
    if dispatcher.is_err() {
        return;
    }
    // Said once, at once: the thread reports before its first slot.
    if let Ok(priority) = priority_rx.recv() {
        recorder.event(crate::event::Event::new(
            clock.now(),
            crate::event::What::Note {
                kind: "dispatcher".into(),
                subject: "load".into(),
                detail: match priority {
                    Ok(()) => "the open model's schedule is kept by a thread at real-time priority (SCHED_FIFO 1)".into(),
                    Err(e) => format!("the open model's schedule is kept at normal priority ({e}); at real-time priority fewer requests start late when the machine is busy"),
                },
            },
        ));
    }
    while let Some(batch) = due_rx.recv().await {
        for (id, scheduled) in batch {
            let Ok(permit) = capacity.clone().try_acquire_owned() else {
                let mut late = RequestRecord::late(id, scheduled);
                late.request = target.pick(id).name.clone();
                recorder.request(late);
                continue;
            };
            let (target, recorder, pool) = (target.clone(), recorder.clone(), pool.clone());
            tokio::spawn(async move {
                let conn = if target.keepalive {
                    take_idle(&pool)
                } else {
                    None
                };
                let (rec, kept) = client::send(&target, &clock, id, scheduled, conn).await;
                if let Some(c) = kept
                    && let Ok(mut p) = pool.lock()
                {
                    p.push(c);
                }
                recorder.request(rec);
                drop(permit);
            });
        }
    }
    // The dispatcher ended (`stop`): every request in flight finishes (each bounded by its
    // timeouts) and hands its permit back.
    let _ = capacity.acquire_many(max_in_flight as u32).await;
}

/// The dispatcher wakes at most this often; the slots that came due meanwhile go in one
/// batch (at 10,000 req/s a wake-up per slot cost as much CPU as all requests' I/O).
const DISPATCH_EVERY: Duration = Duration::from_micros(250);

/// Sleeps on this thread until `at` on the run clock; false once `stop` is cancelled. Checks
/// `stop` at least every 50 ms so a run ends promptly.
fn sleep_until(clock: &Clock, at: Duration, stop: &CancellationToken) -> bool {
    loop {
        if stop.is_cancelled() {
            return false;
        }
        let now = clock.now();
        if now >= at {
            return true;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(50)));
    }
}

/// The dispatcher at real-time priority (SCHED_FIFO 1, the lowest), when the process may ask
/// for it: on a busy machine a thread at normal priority waits for a core behind the
/// runtime's workers and whatever else runs (the service under test, on one machine). Measured
/// at 10,000 req/s with the service on the same 2 cores: 653 and 1,108 of 200,000 slots were
/// handed over more than 1 ms late at normal priority, 0 to 239 (once 626) at SCHED_FIFO. It
/// sleeps between batches (at least [`DISPATCH_EVERY`]), so it cannot hold a core.
fn real_time_priority() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: pid 0 is the calling thread; `param` outlives the call.
    match unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } {
        0 => Ok(()),
        _ => {
            let e = std::io::Error::last_os_error();
            let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let why = match no_real_time_budget(&cgroups, |p| std::fs::read_to_string(p).ok()) {
                true => {
                    "this process's cgroup has no real-time budget (cpu.rt_runtime_us = 0: cgroup v1 with RT group scheduling, which Docker containers get unless dockerd runs with --cpu-rt-runtime and the container with --cpu-rt-runtime)"
                }
                false => "with CAP_SYS_NICE (or as root) the dispatcher runs at real-time priority",
            };
            Err(format!("SCHED_FIFO refused: {e}; {why}"))
        }
    }
}

/// Whether this process's cgroup (v1 `cpu` controller, from `/proc/self/cgroup`'s text) has
/// `cpu.rt_runtime_us` 0: then SCHED_FIFO is refused even with CAP_SYS_NICE.
fn no_real_time_budget(cgroups: &str, read: impl Fn(&str) -> Option<String>) -> bool {
    cgroups.lines().any(|l| {
        let mut parts = l.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        if !controllers.split(',').any(|c| c == "cpu") {
            return false;
        }
        // Inside a cgroup namespace the own cgroup is the mount's root.
        [controllers, "cpu", "cpu,cpuacct"].iter().any(|mount| {
            [path, "/"].iter().any(|p| {
                read(&format!(
                    "/sys/fs/cgroup/{mount}{}/cpu.rt_runtime_us",
                    p.trim_end_matches('/')
                ))
                .is_some_and(|v| v.trim() == "0")
            })
        })
    })
}

/// Linux wakes a sleeping thread up to its timer slack (50 µs by default) late; the
/// dispatcher asks for 1 µs.
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and affects only this thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

fn take_idle(pool: &std::sync::Mutex<Vec<Conn>>) -> Option<Conn> {
    let mut p = pool.lock().ok()?;
    while let Some(c) = p.pop() {
        if c.is_usable() {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::no_real_time_budget;

    #[test]
    fn a_cgroup_without_real_time_budget_is_named() {
        // Docker on cgroup v1 with RT group scheduling: the container's cgroup has 0.
        let files = |p: &str| match p {
            "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.rt_runtime_us" => Some("0\n".into()),
            "/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us" => Some("950000\n".into()),
            _ => None,
        };
        let v1 = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
        assert!(no_real_time_budget(v1, files));
        // Inside the container's cgroup namespace its cgroup is the mount's root.
        let inside = |p: &str| {
            (p == "/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us").then(|| "0".to_string())
        };
        assert!(no_real_time_budget("4:cpu,cpuacct:/\n", inside));
        // A budget, cgroup v2 (no cpu.rt_runtime_us) or no cpu controller: not this cause.
        assert!(!no_real_time_budget("4:cpu,cpuacct:/user.slice\n", files));
        assert!(!no_real_time_budget("0::/user.slice\n", files));
        assert!(!no_real_time_budget("", files));
    }
}
