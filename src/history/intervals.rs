//! Per-interval figures by scheduled start: outcomes, ok latency, versions. One HdrHistogram
//! covering 1 µs .. 1 h at 3 significant digits is 188 KB, so one per 1-s interval grew a run's
//! memory by 188 KB a second (678 MB for an hour). An interval that no request in flight can
//! still land in is kept serialized (HdrHistogram's V2 format: a few hundred bytes to a few KB)
//! and read back only when the phases are merged at the end.

use super::new_histogram;
use crate::outcome::OutcomeCounts;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

/// How far behind the newest interval a request may still land before its interval is
/// sealed: requests arrive when they end, most within a few seconds of their scheduled start.
/// A later one (a timeout longer than this) unseals the interval for its own record and seals
/// it again: correct, only slower. With 60 s here, the live histograms alone were 11 MB and
/// a 200-s soak peaked at 1.42x the memory of a 20-s one (ci/bench-soak).
const LIVE_WINDOW: Duration = Duration::from_secs(10);

/// What one interval (by scheduled start) saw.
#[derive(Debug, Clone)]
pub struct IntervalStats {
    pub outcomes: OutcomeCounts,
    /// Ok requests per serving version.
    pub versions: BTreeMap<String, u64>,
    latency: Latency,
}

#[derive(Debug, Clone)]
enum Latency {
    Live(Box<Histogram<u64>>),
    /// V2-serialized; never empty (an empty histogram stays live: nothing to gain).
    Sealed(Vec<u8>),
}

impl IntervalStats {
    fn new() -> IntervalStats {
        IntervalStats {
            outcomes: OutcomeCounts::default(),
            versions: BTreeMap::new(),
            latency: Latency::Live(Box::new(new_histogram())),
        }
    }

    /// Latency of ok requests from their scheduled start (µs).
    pub fn latency(&self) -> Cow<'_, Histogram<u64>> {
        match &self.latency {
            Latency::Live(h) => Cow::Borrowed(h),
            Latency::Sealed(bytes) => Cow::Owned(unseal(bytes)),
        }
    }

    fn record(&mut self, micros: u64) {
        match &mut self.latency {
            Latency::Live(h) => h.saturating_record(micros),
            Latency::Sealed(bytes) => {
                let mut h = unseal(bytes);
                h.saturating_record(micros);
                self.latency = Latency::Live(Box::new(h));
                self.seal();
            }
        }
    }

    fn seal(&mut self) {
        if let Latency::Live(h) = &self.latency
            && !h.is_empty()
        {
            let mut bytes = Vec::new();
            V2Serializer::new()
                .serialize(h.as_ref(), &mut bytes)
                .expect("serializing a histogram into memory cannot fail");
            self.latency = Latency::Sealed(bytes);
        }
    }

    #[cfg(test)]
    fn sealed_bytes(&self) -> usize {
        match &self.latency {
            Latency::Live(_) => 0,
            Latency::Sealed(b) => b.len(),
        }
    }
}

fn unseal(bytes: &[u8]) -> Histogram<u64> {
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .expect("a histogram this process serialized reads back")
}

/// The intervals of a run, sealed as they fall behind.
#[derive(Debug, Clone)]
pub struct Intervals {
    pub width: Duration,
    pub slots: Vec<IntervalStats>,
    /// Slots below this index are sealed (or empty).
    sealed_below: usize,
}

impl Intervals {
    pub fn new(width: Duration) -> Intervals {
        Intervals {
            width,
            slots: Vec::new(),
            sealed_below: 0,
        }
    }

    /// The slot of a request scheduled at `at`, created if new; seals what fell behind.
    pub(super) fn slot(&mut self, at: Duration) -> &mut IntervalStats {
        let width = self.width.as_nanos().max(1);
        let idx = (at.as_nanos() / width) as usize;
        if self.slots.len() <= idx {
            self.slots.resize_with(idx + 1, IntervalStats::new);
            let behind = (LIVE_WINDOW.as_nanos() / width) as usize + 1;
            let until = (idx + 1).saturating_sub(behind);
            for s in &mut self.slots[self.sealed_below.min(until)..until] {
                s.seal();
            }
            self.sealed_below = self.sealed_below.max(until);
        }
        &mut self.slots[idx]
    }

    pub(super) fn record_latency(&mut self, at: Duration, micros: u64) {
        self.slot(at).record(micros);
    }

    /// Bytes held by sealed intervals.
    #[cfg(test)]
    fn sealed_bytes(&self) -> usize {
        self.slots.iter().map(IntervalStats::sealed_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten minutes of 1-s intervals at 100 ok requests each: all but the last few sealed,
    /// in far less memory than live histograms, and every figure reads back unchanged,
    /// including a late request that lands in a sealed interval.
    #[test]
    fn old_intervals_are_sealed_and_read_back_unchanged() {
        let mut iv = Intervals::new(Duration::from_secs(1));
        let mut expected = Vec::new();
        for s in 0..600u64 {
            let mut h = new_histogram();
            for i in 0..100u64 {
                let at = Duration::from_millis(s * 1000 + i * 10);
                let micros = 900_000 + s * 37 + i * 1013;
                iv.record_latency(at, micros);
                h.record(micros).unwrap();
            }
            expected.push(h);
        }
        // Arrives 9 minutes late, into a sealed interval.
        iv.record_latency(Duration::from_millis(500), 2_000_000);
        expected[0].record(2_000_000).unwrap();

        let live = iv
            .slots
            .iter()
            .filter(|s| matches!(s.latency, Latency::Live(_)))
            .count();
        let window = LIVE_WINDOW.as_secs() as usize;
        assert!(
            (window..=window + 2).contains(&live),
            "{live} live intervals"
        );
        let sealed = iv.sealed_bytes();
        assert!(
            sealed < 600 * 4096,
            "{sealed} bytes for ~590 sealed intervals (live: 188 KB each)"
        );
        for (s, want) in iv.slots.iter().zip(&expected) {
            let got = s.latency();
            assert_eq!(got.len(), want.len());
            for q in [0.5, 0.9, 0.99, 1.0] {
                assert_eq!(got.value_at_quantile(q), want.value_at_quantile(q));
            }
        }
    }
}
