//! The multi-node scenarios, run for real: a lab of 3 managers (drained) + 3 workers as node
//! containers, each with its own dockerd, brought up by `rollcheck lab up`, reused by three
//! runs, and removed by `rollcheck lab down`. Each run must reach the verdict its header
//! promises, report the figures that matter for its fault, and leave nothing of its own
//! behind on the host or inside the cluster.

mod common;

use common::{BIN, labelled, labelled_at};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const MANAGER_1: &str = "unix:///run/rollcheck-lab/manager-1/docker.sock";

struct Run {
    output: Output,
    dir: PathBuf,
    summary: Value,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "exit {:?}\n{}\n{}",
            self.output.status.code(),
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    fn cluster(&self) -> &Value {
        &self.summary["cluster"]
    }

    /// Spans of `state` on `node`, as (start_s, end_s or null).
    fn lanes(&self, node: &str, state: &str) -> Vec<(f64, Option<f64>)> {
        self.cluster()["lanes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["node"] == node && l["state"] == state)
            .map(|l| (l["start_s"].as_f64().unwrap(), l["end_s"].as_f64()))
            .collect()
    }
}

fn run(name: &str) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    let out = tempfile::tempdir().unwrap().keep();
    let started = Instant::now();
    let output = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .expect("a report dir")
        .unwrap()
        .path();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    eprintln!(
        "{name}: exit {:?} in {:.0?}: {} requests, outcomes {}, p99 {} ms\n  cluster {}",
        output.status.code(),
        started.elapsed(),
        summary["requests"]["total"],
        summary["outcomes"],
        summary["latency_ms"]["p99"],
        summary["cluster"],
    );
    let run = Run {
        output,
        dir,
        summary,
    };
    // Nothing of this run is left, on the host or inside the cluster.
    let id = run.dir.file_name().unwrap().to_string_lossy().into_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let label = format!("rollcheck.run={id}");
    assert_eq!(rt.block_on(labelled(label.clone())), 0, "host: {id}");
    assert_eq!(
        rt.block_on(labelled_at(MANAGER_1, label)),
        0,
        "cluster: {id}"
    );
    run
}

fn rollcheck(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn cluster_scenarios_reach_their_verdicts() {
    let started = Instant::now();
    let up = rollcheck(&[
        "lab",
        "up",
        "--managers",
        "3",
        "--workers",
        "3",
        "--drain-managers",
    ]);
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    eprintln!("lab up in {:.0?}\n{stdout}", started.elapsed());
    assert_eq!(stdout.matches(" ready ").count(), 6, "{stdout}");
    assert_eq!(stdout.matches("Leader").count(), 1, "{stdout}");

    // Quorum loss: the data plane keeps serving, the control plane is recorded as gone.
    let r = run("manager-loss");
    assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0, "{}", r.context());
    assert!(r.summary["requests"]["total"].as_u64().unwrap() > 500);
    let outage = r.cluster()["control_plane_unavailable_s"].as_f64().unwrap();
    assert!(
        outage > 5.0,
        "control plane outage {outage} s: {}",
        r.cluster()
    );
    for m in ["manager-2", "manager-3"] {
        let stopped = r.lanes(m, "stopped");
        assert_eq!(stopped.len(), 1, "{m}: {}", r.cluster());
        let (start, end) = stopped[0];
        assert!(end.unwrap() - start >= 60.0, "{m} held down: {stopped:?}");
    }
    assert!(r.lanes("manager-1", "stopped").is_empty());

    // A worker shuts down: its two tasks run elsewhere, without a dropped request.
    let r = run("node-shutdown");
    assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
    let moved = &r.cluster()["reschedules"][0];
    assert_eq!(moved["node"], "worker-3", "{}", r.cluster());
    assert_eq!(moved["tasks_lost"], 2, "{}", r.cluster());
    let after = moved["running_elsewhere_after_s"].as_f64().unwrap();
    assert!(after > 1.0 && after < 60.0, "{moved}");
    assert!(moved["first_request_after_s"].as_f64().unwrap() >= after);
    assert_eq!(r.lanes("worker-3", "down").len(), 1, "{}", r.cluster());
    assert!(!r.lanes("worker-3", "events lost").is_empty());
    let per_node = r.cluster()["requests_per_node"].as_object().unwrap();
    assert_eq!(per_node.len(), 3, "only workers serve: {per_node:?}");

    // Drain: the node's tasks stop at once and start elsewhere; graceful tasks drop nothing.
    let r = run("drain");
    assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
    let moved = &r.cluster()["reschedules"][0];
    assert_eq!(moved["tasks_lost"], 2, "{}", r.cluster());
    assert!(
        moved["running_elsewhere_after_s"].as_f64().is_some(),
        "{moved}"
    );
    assert_eq!(r.lanes("worker-1", "drain").len(), 1, "{}", r.cluster());

    let status = rollcheck(&["lab", "status"]);
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("worker-3"));

    let down = rollcheck(&["lab", "down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(labelled("rollcheck.lab=cluster".into())), 0);
    assert!(!Path::new("/run/rollcheck-lab").exists());
}
