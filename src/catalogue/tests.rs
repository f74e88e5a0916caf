//! The catalogue's judgement of a pair, on summaries made for the case.

use super::*;
use crate::outcome::Outcome;
use crate::report::GateOut;

fn twin(verdict: Verdict, classes: &[(&str, u64)], failed: &[&str]) -> TwinResult {
    let dir = tempfile::tempdir().unwrap();
    let spec = crate::report::synthetic::Synthetic {
        requests: 50,
        duration: std::time::Duration::from_secs(5),
        tag: "t",
    };
    let mut s = crate::report::synthetic::write_run_dir(dir.path(), &spec).unwrap();
    s.verdict = verdict;
    s.gate = failed
        .iter()
        .map(|t| GateOut {
            threshold: (*t).into(),
            limit: 0.0,
            value: Some(1.0),
            unit: crate::gate::Unit::Ms,
            bound: crate::gate::Bound::AtMost,
            passed: false,
            text: String::new(),
        })
        .collect();
    TwinResult {
        file: "x.toml".into(),
        report: None,
        verdict: Some(verdict),
        requests: 100,
        dropped: classes.iter().map(|c| c.1).sum(),
        dropped_by_class: classes.iter().map(|(c, n)| ((*c).into(), *n)).collect(),
        p99_ms: Some(1000.0),
        converge_s: None,
        problem: None,
        summary: Some(s),
    }
}

#[test]
fn a_pair_is_as_expected_only_when_bad_fails_its_way_and_fixed_passes() {
    use Verdict::*;
    let reset = Expect::Dropped(Outcome::Reset);
    let crawl = Expect::Threshold("max_converge");
    let pass = twin(Pass, &[], &[]);
    let cases: Vec<(&str, Expect, TwinResult, TwinResult, &str)> = vec![
        (
            "resets dominate",
            reset,
            twin(Fail, &[("reset", 9), ("http_5xx", 2)], &["max_dropped"]),
            pass.clone(),
            "",
        ),
        (
            "another class dominates",
            reset,
            twin(Fail, &[("http_5xx", 9), ("reset", 2)], &["max_dropped"]),
            pass.clone(),
            "bad twin's drops are mostly http_5xx (9), expected reset",
        ),
        (
            "the bad twin passed",
            reset,
            pass.clone(),
            pass.clone(),
            "bad twin: pass, expected fail",
        ),
        (
            "the fixed twin dropped too",
            reset,
            twin(Fail, &[("reset", 9)], &["max_dropped"]),
            twin(Fail, &[("reset", 1)], &["max_dropped"]),
            "fixed twin: fail, expected pass (failed max_dropped)",
        ),
        (
            "a crawl",
            crawl,
            twin(Fail, &[], &["max_converge"]),
            pass.clone(),
            "",
        ),
        (
            "failed on another threshold",
            crawl,
            twin(Fail, &[], &["max_p99"]),
            pass.clone(),
            "bad twin did not fail max_converge",
        ),
        (
            "inconclusive",
            crawl,
            twin(Inconclusive, &[], &[]),
            pass.clone(),
            "bad twin: inconclusive, expected fail",
        ),
    ];
    for (name, expect, bad, fixed, want) in cases {
        assert_eq!(judge(expect, &bad, &fixed).join("; "), want, "{name}");
    }
}
