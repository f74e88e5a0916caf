//! The load generator: closed (N workers, like `ab -c N`) or open (constant rate with
//! scheduled starts, like wrk2). Workers never print: each finished request goes to the
//! history's recorder, which owns all output.

pub mod client;
pub mod record;

use crate::clock::Clock;
use crate::history::Recorder;
use crate::outcome::Outcome;
use crate::scenario::LoadModel;
use client::{Conn, Target};
use record::RequestRecord;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Drives load until `stop` is cancelled, then lets in-flight requests finish (each is bounded
/// by the connect and request timeouts) and returns.
pub async fn run(
    target: Arc<Target>,
    model: LoadModel,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    match model {
        LoadModel::Closed {
            concurrency,
            error_pause,
        } => closed(target, concurrency, error_pause, clock, recorder, stop).await,
        LoadModel::Open {
            rate,
            max_in_flight,
        } => open(target, rate, max_in_flight, clock, recorder, stop).await,
    }
}

async fn closed(
    target: Arc<Target>,
    concurrency: usize,
    error_pause: Duration,
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
        workers.spawn(async move {
            let mut conn: Option<Conn> = None;
            while !stop.is_cancelled() {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
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

async fn open(
    target: Arc<Target>,
    rate: f64,
    max_in_flight: usize,
    clock: Clock,
    recorder: Recorder,
    stop: CancellationToken,
) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let capacity = Arc::new(Semaphore::new(max_in_flight));
    // Idle kept-alive connections, shared by all in-flight requests (keep-alive only).
    let pool: Arc<std::sync::Mutex<Vec<Conn>>> = Arc::default();
    let mut in_flight = JoinSet::new();
    let first = clock.now();
    for id in 0u64.. {
        // Each request's start is fixed by the schedule, not by when the previous one
        // finished; latency is measured from here (coordinated-omission correction).
        let scheduled = first + period.mul_f64(id as f64);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(clock.instant(scheduled).into()) => {}
        }
        // Reap finished tasks so the set does not grow for the whole run.
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = capacity.clone().try_acquire_owned() else {
            let mut late = RequestRecord::late(id, scheduled);
            late.request = target.pick(id).name.clone();
            recorder.request(late);
            continue;
        };
        let (target, recorder, pool) = (target.clone(), recorder.clone(), pool.clone());
        in_flight.spawn(async move {
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
    while in_flight.join_next().await.is_some() {}
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
