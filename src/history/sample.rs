//! The requests the report's scatter charts draw, kept bounded however long the run: time is
//! cut into at most [`BUCKETS`] buckets (their width doubles, merging pairs, when the run
//! outgrows them), and each bucket keeps the extremes a chart must show — its fastest and
//! slowest ok request, its slowest connect and time to first byte, each failure class's
//! fastest and slowest — plus a uniform subsample (bottom-k of a hash of the request id, which
//! survives merging unchanged). Fed by the collector during a run and by `rollcheck report`
//! from requests.csv, with the same result for the same requests.

use crate::outcome::Outcome;
use std::time::Duration;

/// Buckets over the run's time; a chart is ~1100 px wide.
const BUCKETS: usize = 1024;
const OK_PER_BUCKET: usize = 8;
const FAILED_PER_BUCKET: usize = 24;
/// The first bucket width; it doubles each time the run outgrows [`BUCKETS`] of them.
const FIRST_WIDTH: Duration = Duration::from_millis(10);

/// One request as the charts draw it (times in ms on the run clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub scheduled_ms: f64,
    pub latency_ms: f64,
    pub outcome: Outcome,
    /// TCP connect time (zero on a reused connection); `None` when it never connected.
    pub connect_ms: Option<f64>,
    /// TLS handshake time (https, new connections only).
    pub tls_ms: Option<f64>,
    /// Time to first byte after connect (and the TLS handshake).
    pub ttfb_ms: Option<f64>,
    /// Sampling key: a hash of the request id.
    key: u64,
}

impl Point {
    pub fn of(r: &crate::load::record::RequestRecord) -> Point {
        use crate::history::ms;
        let span = |d: Option<Duration>| d.map(ms);
        Point {
            scheduled_ms: ms(r.scheduled),
            latency_ms: ms(r.latency()),
            outcome: r.outcome,
            connect_ms: span(r.connect_time()),
            tls_ms: span(r.tls_time()),
            ttfb_ms: span(r.time_to_first_byte()),
            key: splitmix64(r.id),
        }
    }
}

/// A well-mixed 64-bit hash (SplitMix64's finaliser): request ids are sequential.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    ok: Vec<Point>,
    failed: Vec<Point>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    width: Duration,
    buckets: Vec<Bucket>,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            width: FIRST_WIDTH,
            buckets: Vec::new(),
        }
    }
}

impl Sample {
    pub fn add(&mut self, p: Point) {
        let at = Duration::from_secs_f64(p.scheduled_ms.max(0.0) / 1e3);
        let mut idx = (at.as_nanos() / self.width.as_nanos()) as usize;
        while idx >= BUCKETS {
            self.coarsen();
            idx = (at.as_nanos() / self.width.as_nanos()) as usize;
        }
        if self.buckets.len() <= idx {
            self.buckets.resize_with(idx + 1, Bucket::default);
        }
        let b = &mut self.buckets[idx];
        let (list, cap) = if p.outcome == Outcome::Ok {
            (&mut b.ok, OK_PER_BUCKET)
        } else {
            (&mut b.failed, FAILED_PER_BUCKET)
        };
        list.push(p);
        // Reduce in batches, not on every add past the cap.
        if list.len() >= cap * 2 {
            reduce(list, cap);
        }
    }

    /// Twice as wide buckets, each the merge of two.
    fn coarsen(&mut self) {
        self.width *= 2;
        let old = std::mem::take(&mut self.buckets);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                a.ok.extend(b.ok);
                a.failed.extend(b.failed);
            }
            reduce(&mut a.ok, OK_PER_BUCKET);
            reduce(&mut a.failed, FAILED_PER_BUCKET);
            self.buckets.push(a);
        }
    }

    /// The kept points, in time order.
    pub fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        for b in &self.buckets {
            let (mut ok, mut failed) = (b.ok.clone(), b.failed.clone());
            reduce(&mut ok, OK_PER_BUCKET);
            reduce(&mut failed, FAILED_PER_BUCKET);
            out.extend(ok);
            out.extend(failed);
        }
        out.sort_by(|a, b| a.scheduled_ms.total_cmp(&b.scheduled_ms));
        out
    }
}

/// Keeps at most `cap` points: the extremes first (per outcome class: fastest and slowest;
/// slowest connect; slowest first byte), then the smallest sampling keys.
fn reduce(points: &mut Vec<Point>, cap: usize) {
    if points.len() <= cap {
        return;
    }
    let mut keep = vec![false; points.len()];
    let mut mark = |i: Option<usize>| {
        if let Some(i) = i {
            keep[i] = true;
        }
    };
    let by = |f: fn(&Point) -> Option<f64>, max: bool| {
        let pts = &*points;
        move |class: Outcome| {
            pts.iter()
                .enumerate()
                .filter(|(_, p)| p.outcome == class)
                .filter_map(|(i, p)| f(p).map(|v| (i, v)))
                .reduce(|a, b| {
                    if (b.1 > a.1) == max && b.1 != a.1 {
                        b
                    } else {
                        a
                    }
                })
                .map(|(i, _)| i)
        }
    };
    let mut classes: Vec<Outcome> = points.iter().map(|p| p.outcome).collect();
    classes.sort();
    classes.dedup();
    for &c in &classes {
        mark(by(|p| Some(p.latency_ms), true)(c));
        mark(by(|p| Some(p.latency_ms), false)(c));
        mark(by(|p| p.connect_ms, true)(c));
        mark(by(|p| p.tls_ms, true)(c));
        mark(by(|p| p.ttfb_ms, true)(c));
    }
    let mut rest: Vec<usize> = (0..points.len()).filter(|&i| !keep[i]).collect();
    rest.sort_by_key(|&i| points[i].key);
    let room = cap.saturating_sub(keep.iter().filter(|k| **k).count());
    for &i in rest.iter().take(room) {
        keep[i] = true;
    }
    let mut i = 0;
    points.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: u64, at_ms: f64, latency_ms: f64, outcome: Outcome) -> Point {
        let at = |ms: f64| Duration::from_secs_f64(ms / 1e3);
        let mut r = crate::load::record::RequestRecord::new(id, at(at_ms));
        r.sent = Some(at(at_ms));
        r.connected = Some(at(at_ms + 0.2));
        r.first_byte = Some(at(at_ms + 1.0));
        r.finish(at(at_ms + latency_ms), outcome, String::new());
        Point::of(&r)
    }

    /// An hour at 1,000 req/s keeps the same bounded number of points as ten minutes, and
    /// every extreme a chart must show survives: the one slow request, and the failures.
    #[test]
    fn stays_bounded_and_keeps_the_extremes() {
        let run = |seconds: u64| {
            let mut s = Sample::default();
            let mut id = 0;
            for ms in 0..seconds * 1000 {
                id += 1;
                let slow = ms == seconds * 500;
                s.add(point(
                    id,
                    ms as f64,
                    if slow {
                        4000.0
                    } else {
                        1000.0 + (ms % 7) as f64
                    },
                    Outcome::Ok,
                ));
                if ms % 100_000 == 0 {
                    id += 1;
                    s.add(point(id, ms as f64, 0.1, Outcome::Refused));
                }
            }
            s.points()
        };
        let (short, long) = (run(600), run(3600));
        assert!(
            long.len() <= BUCKETS * (OK_PER_BUCKET + FAILED_PER_BUCKET),
            "{}",
            long.len()
        );
        assert!(
            long.len() < short.len() * 2,
            "{} points for an hour, {} for ten minutes",
            long.len(),
            short.len()
        );
        for (pts, failed) in [(&short, 6), (&long, 36)] {
            assert!(
                pts.iter().any(|p| p.latency_ms == 4000.0),
                "the slow request"
            );
            let kept = pts.iter().filter(|p| p.outcome == Outcome::Refused).count();
            assert_eq!(kept, failed, "every failure kept");
        }
        assert!(
            long.windows(2)
                .all(|w| w[0].scheduled_ms <= w[1].scheduled_ms)
        );
    }

    #[test]
    fn a_short_run_keeps_every_request() {
        let mut s = Sample::default();
        for id in 0..500 {
            s.add(point(id, id as f64 * 20.0, 10.0, Outcome::Ok));
        }
        assert_eq!(s.points().len(), 500);
    }
}
