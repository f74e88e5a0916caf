//! Distributed load (issue 17): rollcheck's own load generators, deployed as a Swarm job on
//! the cluster lab's nodes, each sending one [`Shard`](crate::load::shard::Shard) of the load
//! and reporting through its container log ([`wire`]); the `rollcheck run` process merges
//! their records into its own history and gates on the merged data.

pub mod placement;
pub mod run;
pub mod spec;
pub mod wire;

/// This process's CPU time (user + system) and peak RSS so far: what an agent reports with
/// its closing count, and what the coordinator spends merging, for `ci/bench-distributed`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub cpu_s: f64,
    pub peak_rss_mb: f64,
}

impl Usage {
    pub fn now() -> Usage {
        // SAFETY: getrusage writes into the struct it is given and nothing else.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return Usage::default();
        }
        let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Usage {
            cpu_s: s(u.ru_utime) + s(u.ru_stime),
            // ru_maxrss is in KiB on Linux.
            peak_rss_mb: u.ru_maxrss as f64 / 1024.0,
        }
    }
}
