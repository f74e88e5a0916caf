//! One load split across `of` generators (issue 17: `[load] generators`), so that what they
//! send together is exactly what one generator would have sent.
//!
//! - **Open model**: the single generator's schedule is slot `id` at `first + id / rate`.
//!   Shard `index` sends the slots `index, index + of, index + 2·of, ...` of that same
//!   schedule, at the same instants: the shards' schedules interleave into the single one,
//!   with no rounding (a shard at `rate / of` started `index / rate` late would drift from it
//!   by float error over a long run).
//! - **Closed model**: `concurrency` workers, dealt out like cards: the first
//!   `concurrency % of` shards get one more.
//! - **Request ids** stay unique across shards (`X-Request-Id`, and the server's truth log
//!   keyed by it): a shard's `n`-th request is `n · of + index`.

use std::time::Duration;

/// Which part of the load a generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based.
    pub index: u32,
    /// How many shards there are (≥ 1).
    pub of: u32,
}

impl Shard {
    /// The whole load: one generator.
    pub const WHOLE: Shard = Shard { index: 0, of: 1 };

    /// Shard `index` of `of`; `None` unless `index < of`.
    pub fn new(index: u32, of: u32) -> Option<Shard> {
        (index < of).then_some(Shard { index, of })
    }

    /// The request id of this shard's `n`-th request (0-based), unique across shards.
    pub fn id(&self, n: u64) -> u64 {
        n * u64::from(self.of) + u64::from(self.index)
    }

    /// Which shard sent request `id`.
    pub fn of_id(id: u64, of: u32) -> Shard {
        Shard {
            index: (id % u64::from(of.max(1))) as u32,
            of: of.max(1),
        }
    }

    /// Open model: this shard's `n`-th request, its id and when the single generator's
    /// schedule (slot `id` at `first + id · period`) sends it.
    pub fn slot(&self, first: Duration, period: Duration, n: u64) -> (u64, Duration) {
        let id = self.id(n);
        (id, first + period.mul_f64(id as f64))
    }

    /// Closed model: this shard's share of `concurrency` workers.
    pub fn workers(&self, concurrency: usize) -> usize {
        let of = self.of as usize;
        concurrency / of + usize::from((self.index as usize) < concurrency % of)
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;
    use std::time::Duration;

    #[test]
    fn open_shards_interleave_into_the_single_schedule() {
        let (first, period) = (Duration::from_millis(7), Duration::from_secs_f64(1.0 / 3.0));
        let single: Vec<(u64, Duration)> = (0..300)
            .map(|n| Shard::WHOLE.slot(first, period, n))
            .collect();
        for of in 1..=4u32 {
            let mut merged: Vec<(u64, Duration)> = (0..of)
                .flat_map(|i| {
                    let s = Shard::new(i, of).unwrap();
                    (0..300 / u64::from(of)).map(move |n| s.slot(first, period, n))
                })
                .collect();
            merged.sort();
            let whole = 300 / of as usize * of as usize;
            // The same ids at the same instants, bit for bit.
            assert_eq!(merged, single[..whole], "{of} shards");
            for &(id, _) in &merged {
                let s = Shard::of_id(id, of);
                assert_eq!(s.id(id / u64::from(of)), id);
            }
        }
    }

    #[test]
    fn closed_workers_are_dealt_out_whole() {
        for concurrency in [1usize, 2, 3, 10, 11, 100] {
            for of in 1..=5u32 {
                let shares: Vec<usize> = (0..of)
                    .map(|i| Shard::new(i, of).unwrap().workers(concurrency))
                    .collect();
                assert_eq!(shares.iter().sum::<usize>(), concurrency);
                let (lo, hi) = (shares.iter().min(), shares.iter().max());
                assert!(
                    hi.unwrap() - lo.unwrap() <= 1,
                    "{concurrency}/{of}: {shares:?}"
                );
            }
        }
        assert_eq!(Shard::new(3, 3), None);
    }

    #[test]
    fn ids_are_unique_across_shards() {
        let mut ids: Vec<u64> = (0..3)
            .flat_map(|i| (0..50).map(move |n| Shard::new(i, 3).unwrap().id(n)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 150);
    }
}
