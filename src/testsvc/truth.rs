//! The test service's own record of the requests it saw, by `X-Request-Id`: received,
//! answered, or cut (by an abrupt shutdown, or abandoned by the client). Written to stdout in
//! batches every [`FLUSH_EVERY`] and once more at exit, so a task's container log holds it
//! whether the task still runs or has exited, and the harness reads it through the engine
//! at the end of a run to check the client's count against the server's.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Each truth line starts with this; the rest is one JSON [`Batch`].
pub const PREFIX: &str = "rollcheck-truth ";
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Request ids seen since the last flush, by what happened to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answered: Vec<u64>,
    /// Received and not answered: cut by shutdown, or the client went away.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<u64>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.received.is_empty() && self.answered.is_empty() && self.cut.is_empty()
    }

    /// A truth line of a container log; `None` for any other line.
    pub fn parse(line: &str) -> Option<Batch> {
        serde_json::from_str(line.trim().strip_prefix(PREFIX)?).ok()
    }
}

#[derive(Default)]
pub(super) struct Truth {
    pending: Mutex<Batch>,
}

impl Truth {
    pub(super) fn received(&self, id: u64) {
        self.with(|b| b.received.push(id));
    }

    pub(super) fn answered(&self, id: u64) {
        self.with(|b| b.answered.push(id));
    }

    pub(super) fn cut(&self, id: u64) {
        self.with(|b| b.cut.push(id));
    }

    fn with(&self, f: impl FnOnce(&mut Batch)) {
        if let Ok(mut b) = self.pending.lock() {
            f(&mut b);
        }
    }

    /// Writes what was seen since the last call as one line on stdout.
    pub(super) fn flush(&self) {
        let batch = match self.pending.lock() {
            Ok(mut b) if !b.is_empty() => std::mem::take(&mut *b),
            _ => return,
        };
        if let Ok(json) = serde_json::to_string(&batch) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{PREFIX}{json}");
            let _ = out.flush();
        }
    }
}

/// The servers' truth about one run's request ids, merged over every task's log (an edge
/// that retried a request on another task makes one id appear on two).
#[derive(Debug, Default)]
pub struct Seen {
    pub received: std::collections::HashSet<u64>,
    pub answered: std::collections::HashSet<u64>,
}

impl Seen {
    pub fn add(&mut self, b: Batch) {
        self.received.extend(b.received.iter().chain(&b.cut));
        self.received.extend(&b.answered);
        self.answered.extend(b.answered);
    }

    /// What another set of containers saw, too.
    pub fn merge(&mut self, other: Seen) {
        self.received.extend(other.received);
        self.answered.extend(other.answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_through_its_log_line() {
        let b = Batch {
            received: vec![1, 2, 3],
            answered: vec![1],
            cut: vec![2],
        };
        let line = format!("{PREFIX}{}", serde_json::to_string(&b).unwrap());
        assert_eq!(Batch::parse(&line), Some(b));
        assert_eq!(
            Batch::parse("2026-12-01T00:00:00Z rollcheck serve: started"),
            None
        );
        assert_eq!(
            Batch::parse(&format!("{PREFIX}{{\"answered\":[7]}}")),
            Some(Batch {
                answered: vec![7],
                ..Batch::default()
            })
        );
    }
}
