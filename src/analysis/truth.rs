//! The client's record checked against the servers' own (the test service's truth log, read
//! from every task's container log at the end of a run): for each dropped request, whether a
//! task received it and cut it or none ever saw it; for each ok one, that a task answered it.

use crate::outcome::Outcome;
use crate::testsvc::truth::Seen;
use serde::{Deserialize, Serialize};

/// What the harness could read of the servers' truth.
#[derive(Debug, Default)]
pub enum ServerLog {
    /// Truth lines from `tasks` containers' logs; `unread` names what could not be read (a
    /// node that is down), which makes the figures a lower bound.
    Read {
        seen: Seen,
        tasks: u64,
        unread: Vec<String>,
    },
    /// No server log, and why (no lab, a foreign service, an existing swarm).
    #[default]
    Unavailable,
    NotRead(String),
}

/// summary.json `server_truth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerTruth {
    /// Whether the servers' logs were read and held truth lines.
    pub available: bool,
    /// Where the figures come from, or why there are none.
    pub source: String,
    /// Load requests (by id) a task received / answered / received and did not answer.
    pub received: u64,
    pub answered: u64,
    pub cut: u64,
    /// Dropped by the client, never received by any task (refused, lost at the edge).
    pub never_arrived: u64,
    /// Dropped by the client although a task answered it (lost after the task: the edge).
    pub answered_but_client_failed: u64,
    /// Ok for the client, but no task answered it: the two records disagree.
    pub mismatch: u64,
}

impl ServerTruth {
    pub fn unavailable(why: impl Into<String>) -> ServerTruth {
        ServerTruth {
            available: false,
            source: why.into(),
            received: 0,
            answered: 0,
            cut: 0,
            never_arrived: 0,
            answered_but_client_failed: 0,
            mismatch: 0,
        }
    }

    /// One line for the text summary and the HTML.
    pub fn line(&self) -> String {
        if !self.available {
            return format!("no server log ({})", self.source);
        }
        format!(
            "{} received, {} answered, {} cut by the server; of the dropped: {} never arrived, {} answered by a task; mismatch {} ({})",
            self.received,
            self.answered,
            self.cut,
            self.never_arrived,
            self.answered_but_client_failed,
            self.mismatch,
            self.source
        )
    }
}

/// `by_id[id]`: the client's class of request `id` ([`crate::history::History::by_id`]);
/// `dropped`: the gate's classes.
pub fn reconcile(by_id: &[Option<Outcome>], dropped: &[Outcome], log: &ServerLog) -> ServerTruth {
    let (seen, tasks, unread) = match log {
        ServerLog::Read {
            seen,
            tasks,
            unread,
        } => (seen, *tasks, unread),
        ServerLog::Unavailable => {
            return ServerTruth::unavailable(
                "no lab: rollcheck reads the test service's log from its containers",
            );
        }
        ServerLog::NotRead(why) => return ServerTruth::unavailable(why.clone()),
    };
    if seen.received.is_empty() {
        return ServerTruth::unavailable(format!(
            "{tasks} containers' logs hold no truth lines: a service other than rollcheck's test service keeps none"
        ));
    }
    let mut t = ServerTruth::unavailable("");
    t.available = true;
    t.source = if unread.is_empty() {
        format!("{tasks} container logs")
    } else {
        format!(
            "{tasks} container logs; not read: {} (a lower bound)",
            unread.join(", ")
        )
    };
    for (id, outcome) in by_id.iter().enumerate() {
        let Some(outcome) = outcome else { continue };
        let id = id as u64;
        let (received, answered) = (seen.received.contains(&id), seen.answered.contains(&id));
        t.received += u64::from(received);
        t.answered += u64::from(answered);
        t.cut += u64::from(received && !answered);
        if *outcome == Outcome::Ok {
            t.mismatch += u64::from(!answered);
        } else if dropped.contains(outcome) {
            t.never_arrived += u64::from(!received);
            t.answered_but_client_failed += u64::from(answered);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsvc::truth::Batch;

    #[test]
    fn each_request_is_placed_by_what_client_and_servers_saw() {
        use Outcome::*;
        // ids 0..=5: ok, ok, reset (cut), refused (never arrived), http_5xx (answered, then
        // lost at the edge), ok (no task answered it: a mismatch); id 6 was never recorded.
        let by_id = [Ok, Ok, Reset, Refused, Http5xx, Ok].map(Some);
        let mut seen = Seen::default();
        seen.add(Batch {
            received: vec![0, 1, 2, 4, 5],
            answered: vec![0, 1, 4],
            cut: vec![2],
        });
        // A retried request: cut on one task, answered on another, is answered.
        seen.add(Batch {
            received: vec![1],
            cut: vec![1],
            ..Batch::default()
        });
        let log = ServerLog::Read {
            seen,
            tasks: 2,
            unread: Vec::new(),
        };
        let t = reconcile(&by_id, &Outcome::DEFAULT_DROPPED, &log);
        assert_eq!(
            (t.received, t.answered, t.cut),
            (5, 3, 2),
            "ids 2 and 5 received, not answered"
        );
        assert_eq!(
            (t.never_arrived, t.answered_but_client_failed, t.mismatch),
            (1, 1, 1)
        );
        assert!(t.available && t.line().contains("mismatch 1"));
        let none = reconcile(&by_id, &Outcome::DEFAULT_DROPPED, &ServerLog::Unavailable);
        assert!(!none.available && none.line().starts_with("no server log"));
    }
}
