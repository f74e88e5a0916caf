//! The run's one clock. Every request and event is stamped with a `Duration` since the run
//! started (monotonic), and the UTC wall time of that start is recorded once.

use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    utc_start: DateTime<Utc>,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
            utc_start: Utc::now(),
        }
    }

    /// A clock that starts (or started) at `at`, a wall-clock time: load agents on several
    /// nodes start theirs at the coordinator's start barrier. Wall-clock differences become
    /// monotonic ones once, here.
    pub fn starting_at(at: DateTime<Utc>) -> Clock {
        let (now, utc_now) = (Instant::now(), Utc::now());
        let start = match (at - utc_now).to_std() {
            Ok(ahead) => now + ahead,
            Err(_) => {
                let behind = (utc_now - at).to_std().unwrap_or_default();
                now.checked_sub(behind).unwrap_or(now)
            }
        };
        Clock {
            start,
            utc_start: at,
        }
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Position of an instant on the run clock (zero if it came before the start).
    pub fn at(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.start)
    }

    pub fn instant(&self, at: Duration) -> Instant {
        self.start + at
    }

    pub fn utc_start(&self) -> DateTime<Utc> {
        self.utc_start
    }

    /// Converts a wall-clock time (e.g. from a Docker event) to the run clock.
    /// Times before the start map to zero.
    pub fn from_utc(&self, t: DateTime<Utc>) -> Duration {
        (t - self.utc_start).to_std().unwrap_or(Duration::ZERO)
    }
}
