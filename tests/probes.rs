//! The health-probe analysis on a real run: `scenarios/healthcheck-spikes.toml` through
//! `rollcheck run` on the local engine. Its edge probes every second, so a 30-s run must show
//! probes on the edge and on the tasks, requests inside and outside them, and the figures in
//! summary.json. The scenario uses its own service name and port, so it can share the engine
//! with the other scenario tests.

mod common;

use common::{BIN, labelled};
use rollcheck::report::Summary;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

static ENGINE: Mutex<()> = Mutex::new(());

#[test]
fn edge_healthcheck_probes_are_measured() {
    let _engine = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/healthcheck-spikes.toml");
    let output = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let context = format!(
        "exit {:?}\n{}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = std::fs::read_dir(out.path())
        .unwrap()
        .next()
        .expect("a report dir")
        .unwrap()
        .path();
    let raw = std::fs::read(dir.join("summary.json")).unwrap();
    let summary: Value = serde_json::from_slice(&raw).unwrap();
    common::assert_valid_summary(&summary);
    assert_eq!(output.status.code(), Some(0), "{context}");

    let h = &summary["health_probes"];
    assert!(h.is_object(), "no health_probes in summary.json\n{context}");
    let f = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    let containers = h["containers"].as_array().unwrap();
    let edge = containers
        .iter()
        .find(|c| c["name"] == "rollcheck-edge-spikes")
        .unwrap_or_else(|| panic!("no edge probes: {containers:?}"));
    // interval 1s over a 30-s run; Docker starts the first probe 1 s after the start.
    let edge_probes = edge["probes"].as_u64().unwrap();
    assert!(edge_probes >= 20, "{edge_probes} edge probes in 30 s");
    assert_eq!(edge["on_every_request"], true);
    assert_eq!(edge["failed"], 0, "the edge probe must succeed: {edge}");
    let task_probes: u64 = containers
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("spikes."))
        .map(|c| c["probes"].as_u64().unwrap())
        .sum();
    assert!(
        task_probes >= 20,
        "{task_probes} task probes (3 tasks, every 2 s)"
    );

    let probes = h["probes"].as_array().unwrap();
    assert_eq!(probes.len() as u64, edge_probes + task_probes);
    for p in probes {
        assert!(f(&p["duration_ms"]) > 0.0, "{p}");
        assert!(f(&p["end_s"]) >= f(&p["start_s"]), "{p}");
    }
    // Health.Log was polled: probes carry their exit code.
    assert!(
        probes.iter().any(|p| p["exit_code"] == 0),
        "no exit code in {probes:?}"
    );
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(events.contains(",health_log,rollcheck-edge-spikes,"));

    // Every ok request is either in a probe or outside all of them.
    let (inside, outside) = (&h["in_probe_ms"], &h["outside_ms"]);
    assert!(inside["count"].as_u64().unwrap() > 0, "{h}");
    assert!(outside["count"].as_u64().unwrap() > 0, "{h}");
    assert_eq!(
        inside["count"].as_u64().unwrap() + outside["count"].as_u64().unwrap(),
        summary["requests"]["ok"].as_u64().unwrap()
    );
    let ratio = f(&h["p99_ratio"]);
    assert!(
        (f(&inside["p99"]) / f(&outside["p99"]) - ratio).abs() < 0.01,
        "{h}"
    );
    assert_eq!(f(&h["spike_factor_k"]), 2.0);
    eprintln!(
        "healthcheck-spikes: {edge_probes} edge probes (mean {} ms, max {} ms), {task_probes} task probes; \
         in probe p50 {} p99 {} ms (n={}), outside p50 {} p99 {} ms (n={}), p99 ×{ratio}, {} spikes",
        edge["mean_ms"],
        edge["max_ms"],
        inside["p50"],
        inside["p99"],
        inside["count"],
        outside["p50"],
        outside["p99"],
        outside["count"],
        h["spikes"].as_array().unwrap().len()
    );
    let text = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(text.contains("Health probes"), "{text}");

    // The field is optional: the run's file loads, and so does one written without it.
    let full: Summary = serde_json::from_slice(&raw).unwrap();
    assert!(full.health_probes.is_some());
    let mut old = summary.clone();
    old.as_object_mut().unwrap().remove("health_probes");
    let old: Summary = serde_json::from_value(old).unwrap();
    assert_eq!(old.health_probes, None);
    assert!(
        !serde_json::to_string(&old)
            .unwrap()
            .contains("health_probes")
    );

    let run_id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left = rt.block_on(labelled(format!("rollcheck.run={run_id}")));
    assert_eq!(left, 0, "objects of run {run_id} left behind");
}
