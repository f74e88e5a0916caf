//! Who served what, and how failures spread, folded request by request so the report's task
//! and failure tables need no request kept in memory: per failure class its first and last
//! scheduled start and its most frequent error texts; per task (`X-Rollcheck-Task`) its ok
//! count, versions, first send and first/last completion.

use crate::load::record::RequestRecord;
use crate::outcome::Outcome;
use std::collections::BTreeMap;
use std::time::Duration;

/// Distinct error texts kept per class; the rest are counted under [`OTHER_ERRORS`]. Error
/// texts name addresses and causes, so an outage across many tasks has a handful, not
/// thousands.
const MAX_ERRORS: usize = 64;
pub const OTHER_ERRORS: &str = "(other errors)";
/// Distinct tasks kept; more than this is not a Swarm service rollcheck runs.
const MAX_TASKS: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ClassStats {
    pub count: u64,
    /// Earliest and latest scheduled start of the class's requests.
    pub first_start: Duration,
    pub last_start: Duration,
    /// The latest end of the class's requests (with `first_start`: the span it covered).
    pub last_done: Duration,
    /// Error texts and their counts (failure classes only).
    pub errors: BTreeMap<String, u64>,
}

impl ClassStats {
    /// The most frequent error text and its count (ties: the alphabetically first).
    pub fn common_error(&self) -> Option<(&str, u64)> {
        self.errors
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(e, n)| (e.as_str(), *n))
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TaskStats {
    pub ok: u64,
    pub first_sent: Duration,
    pub first_done: Duration,
    pub last_done: Duration,
    pub versions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Served {
    /// Indexed by `Outcome as usize`.
    pub classes: [ClassStats; Outcome::ALL.len()],
    pub tasks: BTreeMap<String, TaskStats>,
}

impl Served {
    pub(super) fn add(&mut self, r: &RequestRecord) {
        let c = &mut self.classes[r.outcome as usize];
        if c.count == 0 {
            (c.first_start, c.last_start, c.last_done) = (r.scheduled, r.scheduled, r.done);
        }
        c.count += 1;
        c.first_start = c.first_start.min(r.scheduled);
        c.last_start = c.last_start.max(r.scheduled);
        c.last_done = c.last_done.max(r.done);
        if r.outcome != Outcome::Ok {
            let key = if c.errors.len() < MAX_ERRORS || c.errors.contains_key(&r.error) {
                r.error.as_str()
            } else {
                OTHER_ERRORS
            };
            super::count(&mut c.errors, key);
            return;
        }
        if r.task.is_empty() || (self.tasks.len() >= MAX_TASKS && !self.tasks.contains_key(&r.task))
        {
            return;
        }
        let sent = r.sent.unwrap_or(r.scheduled);
        if !self.tasks.contains_key(&r.task) {
            let fresh = TaskStats {
                ok: 0,
                first_sent: sent,
                first_done: r.done,
                last_done: r.done,
                versions: BTreeMap::new(),
            };
            self.tasks.insert(r.task.clone(), fresh);
        }
        let Some(t) = self.tasks.get_mut(&r.task) else {
            return;
        };
        t.ok += 1;
        t.first_sent = t.first_sent.min(sent);
        t.first_done = t.first_done.min(r.done);
        t.last_done = t.last_done.max(r.done);
        super::count(&mut t.versions, &r.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(outcome: Outcome, at_ms: u64, task: &str, error: &str) -> RequestRecord {
        let at = Duration::from_millis(at_ms);
        RequestRecord {
            outcome,
            sent: Some(at),
            done: at + Duration::from_millis(100),
            task: task.into(),
            version: "1".into(),
            error: error.into(),
            ..RequestRecord::new(0, at)
        }
    }

    #[test]
    fn classes_and_tasks_fold_without_keeping_requests() {
        let mut s = Served::default();
        s.add(&rec(Outcome::Reset, 500, "", "reset by peer"));
        s.add(&rec(Outcome::Reset, 200, "", "reset by peer"));
        s.add(&rec(Outcome::Reset, 900, "", "closed early"));
        s.add(&rec(Outcome::Ok, 1000, "app.1.x", ""));
        s.add(&rec(Outcome::Ok, 300, "app.1.x", ""));
        s.add(&rec(Outcome::Ok, 400, "", ""));
        let reset = &s.classes[Outcome::Reset as usize];
        assert_eq!(reset.count, 3);
        assert_eq!(
            (reset.first_start, reset.last_start),
            (Duration::from_millis(200), Duration::from_millis(900))
        );
        assert_eq!(reset.last_done, Duration::from_millis(1000));
        assert_eq!(reset.common_error(), Some(("reset by peer", 2)));
        let t = &s.tasks["app.1.x"];
        assert_eq!(t.ok, 2);
        assert_eq!(t.first_sent, Duration::from_millis(300));
        assert_eq!(t.last_done, Duration::from_millis(1100));
        assert_eq!(s.tasks.len(), 1, "no task header, no task");

        for i in 0..100 {
            s.add(&rec(Outcome::Refused, i, "", &format!("error {i}")));
        }
        let refused = &s.classes[Outcome::Refused as usize];
        assert_eq!(refused.errors.len(), MAX_ERRORS + 1);
        assert_eq!(refused.errors[OTHER_ERRORS], 100 - MAX_ERRORS as u64);
    }
}
