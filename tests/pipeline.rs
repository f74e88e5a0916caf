//! What a CI pipeline gets from `rollcheck run` (no Docker: the real test service on
//! loopback): the report's parent from `ROLLCHECK_OUT`, junit.xml and summary.json copied
//! where `--junit` / `--summary` say, and one verdict line on stderr a script can parse.

mod common;

use common::{BIN, Service};
use std::process::Command;

fn scenario(dir: &std::path::Path, target: &str) -> std::path::PathBuf {
    let path = dir.join("ci.toml");
    let text = format!("[load]\ntarget = \"{target}\"\nconcurrency = 4\nduration = \"3s\"\n");
    std::fs::write(&path, text).unwrap();
    path
}

/// `key=value` of the verdict line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn a_pipeline_gets_its_files_where_it_asks_and_a_verdict_line() {
    let svc = Service::start(&["--delay", "100ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &svc.url);
    let out = dir.path().join("artifacts");
    let output = Command::new(BIN)
        .args(["run", "-q", "--junit"])
        .arg(dir.path().join("ci/test-results/rollcheck.xml"))
        .arg("--summary")
        .arg(dir.path().join("ci/summary.json"))
        .arg(&path)
        .env("ROLLCHECK_OUT", &out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // The report directory went under ROLLCHECK_OUT.
    let report = common::run::only_dir(&out);
    for (copy, name) in [
        ("ci/test-results/rollcheck.xml", "junit.xml"),
        ("ci/summary.json", "summary.json"),
    ] {
        assert_eq!(
            std::fs::read(dir.path().join(copy)).unwrap(),
            std::fs::read(report.join(name)).unwrap(),
            "{copy}"
        );
    }
    let line = stderr.lines().last().unwrap();
    assert!(line.starts_with("rollcheck: PASS "), "{line}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        field(line, "requests"),
        summary["requests"]["total"].to_string()
    );
    assert_eq!(field(line, "dropped"), "0");
    let p99: f64 = field(line, "p99").trim_end_matches('s').parse().unwrap();
    assert!((0.1..0.5).contains(&p99), "{line}");
    assert_eq!(
        field(line, "report"),
        report.join("report.html").display().to_string()
    );
}

#[test]
fn a_failed_gate_says_fail_with_its_dropped_classes() {
    // Nothing listens on port 9 (discard): every request is refused.
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "http://127.0.0.1:9/");
    let output = Command::new(BIN)
        .args(["run", "-q", "--out"])
        .arg(dir.path().join("reports"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let line = stderr.lines().last().unwrap();
    assert!(line.starts_with("rollcheck: FAIL "), "{line}");
    let dropped = field(line, "dropped");
    assert!(dropped.parse::<u64>().unwrap() > 0, "{line}");
    assert!(
        line.contains(&format!("dropped={dropped} (refused={dropped})")),
        "{line}"
    );
    assert!(!line.contains("p99="), "no ok request, no p99: {line}");
}

/// A file the pipeline asked for that cannot be written: the run is no pass (exit 2), and
/// the verdict line is still stderr's last.
#[test]
fn a_copy_that_cannot_be_written_is_no_pass() {
    let svc = Service::start(&["--delay", "50ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &svc.url);
    let output = Command::new(BIN)
        .args([
            "run",
            "-q",
            "--junit",
            "/proc/rollcheck-no-such-dir/junit.xml",
            "--out",
        ])
        .arg(dir.path().join("reports"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: cannot write junit.xml to /proc/rollcheck-no-such-dir/junit.xml"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("rollcheck: PASS "),
        "{stderr}"
    );
}
