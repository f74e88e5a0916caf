//! The CI verdict: a pure function of the analysis and the scenario's thresholds.

use crate::analysis::{Analysis, PhaseName};
use crate::scenario::{Gate, Threshold};
use serde::Serialize;
use std::time::Duration;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// A threshold was exceeded (requests dropped, too slow).
    Fail,
    /// The run could not measure what it promised.
    Inconclusive,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Which side of its limit a threshold passes on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtMost,
    AtLeast,
}

impl Bound {
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::AtMost => "≤",
            Bound::AtLeast => "≥",
        }
    }

    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Bound::AtMost => value <= limit,
            Bound::AtLeast => value >= limit,
        }
    }
}

/// What a threshold's limit and value count.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Requests,
    /// A fraction (0.01 = 1 %).
    Ratio,
    Ms,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ms => format!("{v:.1} ms"),
            Unit::Ratio => format!("{:.3}%", v * 100.0),
            Unit::Requests => format!("{v}"),
        }
    }
}

/// One threshold checked: limit and measured value in the threshold's unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub threshold: &'static str,
    pub limit: f64,
    /// `None` when the metric has no value (e.g. p99 with no ok request): a failed check.
    pub value: Option<f64>,
    pub unit: Unit,
    pub bound: Bound,
    pub passed: bool,
}

impl Check {
    /// `max_dropped: 3 (limit ≤ 0)`-style text for summaries and JUnit.
    pub fn describe(&self) -> String {
        let value = self
            .value
            .map_or_else(|| "no value".to_string(), |v| self.unit.format(v));
        format!(
            "{}: {} (limit {} {})",
            self.threshold,
            value,
            self.bound.symbol(),
            self.unit.format(self.limit)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    /// Why the verdict is inconclusive, if it is.
    pub problems: Vec<String>,
}

pub fn evaluate(a: &Analysis, gate: &Gate) -> Evaluation {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let checks: Vec<Check> = gate
        .thresholds
        .iter()
        .map(|t| {
            use Bound::*;
            let (limit, value, unit, bound) = match *t {
                Threshold::MaxDropped(n) => {
                    (n as f64, Some(a.dropped as f64), Unit::Requests, AtMost)
                }
                Threshold::MaxErrorRate(r) => (r, Some(a.error_rate), Unit::Ratio, AtMost),
                Threshold::MaxP99(d) => (ms(d), a.latency.map(|p| ms(p.p99)), Unit::Ms, AtMost),
                Threshold::MaxP99During(d) => (
                    ms(d),
                    a.phase(PhaseName::During)
                        .and_then(|p| p.latency)
                        .map(|p| ms(p.p99)),
                    Unit::Ms,
                    AtMost,
                ),
                Threshold::MaxTruthMismatch(n) => (
                    n as f64,
                    a.truth
                        .as_ref()
                        .filter(|t| t.available)
                        .map(|t| t.mismatch as f64),
                    Unit::Requests,
                    AtMost,
                ),
                Threshold::MaxConverge(d) => (ms(d), a.converge.map(ms), Unit::Ms, AtMost),
                Threshold::MinRequests(n) => (
                    n as f64,
                    Some((a.total - a.late) as f64),
                    Unit::Requests,
                    AtLeast,
                ),
            };
            Check {
                threshold: t.key(),
                limit,
                value,
                unit,
                bound,
                passed: value.is_some_and(|v| bound.holds(v, limit)),
            }
        })
        .collect();
    let verdict = if !a.problems.is_empty() {
        Verdict::Inconclusive
    } else if checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    Evaluation {
        verdict,
        checks,
        problems: a.problems.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Percentiles, Phase};
    use crate::outcome::{Outcome, OutcomeCounts};

    fn pct(p99_ms: u64) -> Percentiles {
        let d = Duration::from_millis(p99_ms);
        Percentiles {
            count: 100,
            p50: d,
            p90: d,
            p99: d,
            p999: d,
            max: d,
            mean: d,
        }
    }

    fn analysis(ok: u64, reset: u64, late: u64, p99_ms: Option<u64>) -> Analysis {
        let mut outcomes = OutcomeCounts::default();
        outcomes.add(Outcome::Ok, ok);
        outcomes.add(Outcome::Reset, reset);
        outcomes.add(Outcome::Late, late);
        let sent = ok + reset;
        Analysis {
            outcomes,
            total: ok + reset + late,
            late,
            dropped: reset,
            error_rate: if sent == 0 {
                0.0
            } else {
                reset as f64 / sent as f64
            },
            dropped_window: None,
            dropped_classes: Outcome::DEFAULT_DROPPED.to_vec(),
            latency: p99_ms.map(pct),
            curve: vec![],
            service_latency: None,
            tls_handshake: None,
            truth: None,
            entries: Vec::new(),
            failures: vec![],
            tasks: Default::default(),
            phases: vec![Phase {
                name: PhaseName::During,
                start: Duration::ZERO,
                end: Duration::from_secs(1),
                outcomes,
                dropped: reset,
                latency: p99_ms.map(|p| pct(p * 2)),
                curve: vec![],
            }],
            intervals: vec![],
            interval: Duration::from_secs(1),
            versions: Default::default(),
            converge: Some(Duration::from_secs(20)),
            problems: vec![],
        }
    }

    fn gate(t: &[Threshold]) -> Gate {
        Gate {
            thresholds: t.to_vec(),
            ..Gate::default()
        }
    }

    #[test]
    fn thresholds_table() {
        use Threshold::*;
        let s = Duration::from_millis;
        let cases: &[(&str, Analysis, Vec<Threshold>, Verdict)] = &[
            (
                "clean run passes",
                analysis(100, 0, 0, Some(1000)),
                vec![MaxDropped(0)],
                Verdict::Pass,
            ),
            (
                "one reset fails max_dropped 0",
                analysis(99, 1, 0, Some(1000)),
                vec![MaxDropped(0)],
                Verdict::Fail,
            ),
            (
                "dropped within limit",
                analysis(99, 1, 0, Some(1000)),
                vec![MaxDropped(1)],
                Verdict::Pass,
            ),
            (
                "late is not dropped",
                analysis(100, 0, 50, Some(1000)),
                vec![MaxDropped(0)],
                Verdict::Pass,
            ),
            (
                "error rate 1% > 0.5%",
                analysis(99, 1, 0, Some(1000)),
                vec![MaxErrorRate(0.005)],
                Verdict::Fail,
            ),
            (
                "error rate 1% <= 1%",
                analysis(99, 1, 0, Some(1000)),
                vec![MaxErrorRate(0.01)],
                Verdict::Pass,
            ),
            (
                "p99 over",
                analysis(100, 0, 0, Some(1600)),
                vec![MaxP99(s(1500))],
                Verdict::Fail,
            ),
            (
                "p99 equal passes",
                analysis(100, 0, 0, Some(1500)),
                vec![MaxP99(s(1500))],
                Verdict::Pass,
            ),
            (
                "no ok request: p99 has no value",
                analysis(0, 5, 0, None),
                vec![MaxP99(s(1500))],
                Verdict::Fail,
            ),
            (
                "p99 during uses the during phase",
                analysis(100, 0, 0, Some(1000)),
                vec![MaxP99During(s(1500))],
                Verdict::Fail,
            ),
            (
                "a rollout that converged within its limit",
                analysis(100, 0, 0, Some(1000)),
                vec![MaxConverge(s(20_000))],
                Verdict::Pass,
            ),
            (
                "a rollout that crawled past its limit",
                analysis(100, 0, 0, Some(1000)),
                vec![MaxConverge(s(19_999))],
                Verdict::Fail,
            ),
            (
                "min_requests not met",
                analysis(10, 0, 0, Some(1)),
                vec![MinRequests(11)],
                Verdict::Fail,
            ),
            (
                "min_requests counts sent only",
                analysis(10, 0, 5, Some(1)),
                vec![MinRequests(11)],
                Verdict::Fail,
            ),
            (
                "min_requests met",
                analysis(11, 0, 0, Some(1)),
                vec![MinRequests(11)],
                Verdict::Pass,
            ),
            (
                "all must pass",
                analysis(100, 0, 0, Some(1600)),
                vec![MaxDropped(0), MaxP99(s(1500))],
                Verdict::Fail,
            ),
        ];
        for (name, a, t, want) in cases {
            let got = evaluate(a, &gate(t));
            assert_eq!(got.verdict, *want, "{name}: {:?}", got.checks);
        }
    }

    #[test]
    fn problems_make_it_inconclusive_even_if_thresholds_fail() {
        let mut a = analysis(99, 1, 0, Some(1000));
        a.problems.push("step 1 (update_image) failed".into());
        let e = evaluate(&a, &gate(&[Threshold::MaxDropped(0)]));
        assert_eq!(e.verdict, Verdict::Inconclusive);
        assert!(!e.checks[0].passed);
    }

    #[test]
    fn describe_names_threshold_limit_and_value() {
        let e = evaluate(
            &analysis(99, 3, 0, Some(1000)),
            &gate(&[
                Threshold::MaxDropped(0),
                Threshold::MaxP99(Duration::from_millis(1500)),
            ]),
        );
        assert_eq!(e.checks[0].describe(), "max_dropped: 3 (limit ≤ 0)");
        let min = evaluate(
            &analysis(99, 3, 0, Some(1000)),
            &gate(&[Threshold::MinRequests(500)]),
        );
        assert_eq!(min.checks[0].describe(), "min_requests: 102 (limit ≥ 500)");
        assert_eq!(
            e.checks[1].describe(),
            "max_p99: 1000.0 ms (limit ≤ 1500.0 ms)"
        );
    }
}
