//! The multi-node scenarios, run for real: a lab of 3 managers (drained) + 3 workers as node
//! containers, each with its own dockerd, brought up by `rollcheck lab up`, reused by every
//! shipped cluster scenario (manager-loss, node-shutdown, drain, partition, manager-loss-update,
//! leader-stop, worker-freeze-crash, generators, generators-node-stop, and the
//! stack/stack-cluster.toml stack) and by one run
//! interrupted during quorum loss, and removed by
//! `rollcheck lab down`. Each run must reach the verdict its header
//! promises, report the figures that matter for its fault, and leave nothing of its own
//! behind on the host or inside the cluster.

mod common;

use common::{BIN, labelled, labelled_at};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MANAGER_1: &str = "unix:///run/rollcheck-lab/manager-1/docker.sock";

/// One test at a time: a second `rollcheck lab up` or `run` while a run holds the lab fails
/// with "the lab is in use" (that is the point of rollcheck's lab lock).
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(|e| e.into_inner())
}

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

    /// Every request as (sent_ms, outcome), from requests.csv.
    fn requests(&self) -> Vec<(f64, String)> {
        let mut csv = csv::Reader::from_path(self.dir.join("requests.csv")).unwrap();
        let headers = csv.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (sent, outcome) = (col("sent_ms"), col("outcome"));
        csv.records()
            .map(|r| {
                let r = r.unwrap();
                (r[sent].parse().unwrap(), r[outcome].to_string())
            })
            .collect()
    }

    /// Task events of the run where Swarm rejected a task, with its error.
    fn rejected_tasks(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("events.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(",task,rejected,"))
            .map(str::to_string)
            .collect()
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
    finish(name, |child, _| child.wait_with_output().unwrap())
}

/// Runs scenario `name` and sends SIGINT once its events.csv records `event`.
fn interrupt_when(name: &str, event: &'static str) -> Run {
    finish(name, |child, out| {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !events_of(out).contains(event) {
            assert!(Instant::now() < deadline, "{name}: no {event} in 180 s");
            std::thread::sleep(Duration::from_millis(250));
        }
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        child.wait_with_output().unwrap()
    })
}

fn events_of(out: &Path) -> String {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("events.csv")).ok())
        .collect()
}

/// Starts scenario `name`, lets `wait` see it to its end, and checks that nothing of the run
/// is left behind.
fn finish(name: &str, wait: impl FnOnce(Child, &Path) -> Output) -> Run {
    // A shipped scenario by name, or a scenario file the test wrote.
    let path = match Path::new(name).is_absolute() {
        true => PathBuf::from(name),
        false => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{name}.toml")),
    };
    let out = tempfile::tempdir().unwrap().keep();
    let started = Instant::now();
    let child = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait(child, &out);
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .expect("a report dir")
        .unwrap()
        .path();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&summary);
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

/// Creates an overlay network labelled as rollcheck's, for run `label` (`rollcheck.run=…`).
fn orphan_network(socket: &str, name: &str, label: &str) {
    let (key, value) = label.split_once('=').unwrap();
    let request = bollard::models::NetworkCreateRequest {
        name: name.into(),
        driver: Some("overlay".into()),
        labels: Some(std::collections::HashMap::from([
            ("rollcheck.managed".to_string(), "true".to_string()),
            (key.to_string(), value.to_string()),
        ])),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker =
            bollard::Docker::connect_with_unix(socket, 30, bollard::API_DEFAULT_VERSION).unwrap();
        docker.create_network(request).await.unwrap();
    });
}

fn rollcheck(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn cluster_scenarios_reach_their_verdicts() {
    let _lab = lab();
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

    // Each scenario's checks run even when an earlier one failed; all failures are reported
    // together at the end, after the lab is removed.
    let mut failed: Vec<String> = Vec::new();
    let mut check = |name: &str, f: &dyn Fn()| {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{name}: {why}"));
        }
    };
    check("manager-loss", &|| {
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
    });

    check("node-shutdown", &|| {
        // A worker shuts down: its two tasks run elsewhere. At most the requests in flight at the
        // stop are lost (the node leaves the overlay before its containers stop), by timeout only,
        // and the verdict says so.
        let r = run("node-shutdown");
        let dropped = r.summary["requests"]["dropped"].as_u64().unwrap();
        let expected_exit = if dropped == 0 { 0 } else { 1 };
        assert_eq!(
            r.output.status.code(),
            Some(expected_exit),
            "{}",
            r.context()
        );
        assert_eq!(r.summary["outcomes"]["timeout"], dropped, "{}", r.context());
        assert!(dropped <= 5, "{}", r.context());
        // In flight at the stop: sent in the 3 s before it, or while the node was still being
        // stopped (its dockerd takes ~2 s and accepts until its containers stop; one CI run
        // lost a request sent 40 ms into the stop).
        let stop_ms = r.summary["steps"][0]["start_s"].as_f64().unwrap() * 1000.0;
        let stopped_ms = r.summary["steps"][0]["end_s"].as_f64().unwrap() * 1000.0;
        for (sent_ms, outcome) in r.requests() {
            if outcome != "ok" {
                assert!(
                    sent_ms < stopped_ms && sent_ms > stop_ms - 3_000.0,
                    "{outcome} sent at {sent_ms} ms; the stop ran {stop_ms}..{stopped_ms} ms"
                );
            }
        }
        // The requests the stopped node held up are the fault's, not the probes' that ran
        // meanwhile: left out of the probe comparison (they were reported as 7 "spikes").
        let probes = &r.summary["health_probes"];
        assert!(
            probes["left_out_during_steps"].as_u64().unwrap() > 0,
            "{probes}"
        );
        assert_eq!(
            probes["spikes"].as_array().map(Vec::len),
            Some(0),
            "{probes}"
        );
        let moved = &r.cluster()["reschedules"][0];
        assert_eq!(moved["node"], "worker-3", "{}", r.cluster());
        assert_eq!(moved["tasks_lost"], 2, "{}", r.cluster());
        let after = moved["running_elsewhere_after_s"].as_f64().unwrap();
        assert!(after > 1.0 && after < 60.0, "{moved}");
        assert!(moved["first_request_after_s"].as_f64().unwrap() >= after);
        assert_eq!(r.lanes("worker-3", "down").len(), 1, "{}", r.cluster());
        assert!(!r.lanes("worker-3", "events lost").is_empty());
        let per_node = r.cluster()["requests_per_node"].as_object().unwrap();
        // No task is rejected on a worker that still holds an earlier run's overlay subnet (that
        // once put 4 tasks on worker-1, 2 on worker-3 and none on worker-2). The managers are
        // drained, so they never serve, and every ok request is attributed to a node.
        assert_eq!(r.rejected_tasks(), Vec::<String>::new());
        assert!(
            per_node.keys().all(|n| n.starts_with("worker-")),
            "only workers serve: {per_node:?}"
        );
        assert!(per_node["worker-3"].as_u64().unwrap() > 0, "{per_node:?}");
        let attributed: u64 = per_node.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(attributed, r.summary["outcomes"]["ok"], "{per_node:?}");
    });

    check("stack-cluster", &|| {
        // The user's stack on the cluster: deployed through a manager with the real CLI, its
        // nginx on every worker behind rollcheck's HAProxy, its app updated under load.
        let r = run("stack/stack-cluster");
        assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
        assert_eq!(r.summary["requests"]["dropped"], 0, "{}", r.context());
        assert_eq!(r.summary["steps"][0]["ok"], true, "{}", r.summary["steps"]);
        assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
        let per_node = r.cluster()["requests_per_node"].as_object().unwrap();
        assert!(per_node.len() >= 2, "{per_node:?}");
        // Health logs of the app's tasks, read on the workers that ran them.
        let probes = r.summary["health_probes"]["containers"].to_string();
        assert!(probes.contains("shop_app."), "{probes}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let stack = "com.docker.stack.namespace=shop".to_string();
        assert_eq!(rt.block_on(labelled_at(MANAGER_1, stack)), 0);
    });

    check("drain", &|| {
        // Drain: the node's tasks stop at once and start elsewhere; graceful tasks drop nothing.
        // It also finds the network a killed run left behind, with nothing else of that run, and
        // tears that run down.
        let orphan = "rollcheck.run=orphan-of-a-killed-run";
        orphan_network(MANAGER_1, "rollcheck-orphan-of-a-killed-run", orphan);
        let r = run("drain");
        assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
        assert!(
            r.context()
                .contains("removed the leftover network of run orphan-of-a-killed-run"),
            "{}",
            r.context()
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert_eq!(rt.block_on(labelled_at(MANAGER_1, orphan.into())), 0);
        assert_eq!(r.rejected_tasks(), Vec::<String>::new());
        let moved = &r.cluster()["reschedules"][0];
        assert_eq!(moved["tasks_lost"], 2, "{}", r.cluster());
        assert!(
            moved["running_elsewhere_after_s"].as_f64().is_some(),
            "{moved}"
        );
        assert_eq!(r.lanes("worker-1", "drain").len(), 1, "{}", r.cluster());
    });

    check("partition", &|| {
        // Partition: what was in flight through the cut-off worker hangs until the client's
        // timeout; the gate fails. The managers mark the worker down and move its tasks.
        let r = run("partition");
        assert_eq!(r.output.status.code(), Some(1), "{}", r.context());
        let outcomes = &r.summary["outcomes"];
        let dropped = r.summary["requests"]["dropped"].as_u64().unwrap();
        assert!(dropped > 0, "{}", r.context());
        assert_eq!(
            outcomes["timeout"].as_u64().unwrap() + outcomes["connect_timeout"].as_u64().unwrap(),
            dropped,
            "a partition drops by timeout only: {outcomes}"
        );
        let cut = r.lanes("worker-2", "disconnected");
        assert_eq!(cut.len(), 1, "{}", r.cluster());
        assert!(cut[0].1.unwrap() - cut[0].0 >= 29.0, "{cut:?}");
        assert_eq!(r.lanes("worker-2", "down").len(), 1, "{}", r.cluster());
        assert_eq!(r.cluster()["reschedules"][0]["node"], "worker-2");
    });

    check("manager-loss-update", &|| {
        // An update during quorum loss fails at once, naming why, and is recorded; after the
        // managers return the same update rolls the service to v2 without a dropped request.
        let r = run("manager-loss-update");
        assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
        assert_eq!(r.summary["requests"]["dropped"], 0, "{}", r.context());
        let during = &r.summary["steps"][1];
        assert_eq!(during["ok"], false, "{during}");
        assert_eq!(during["expected_failure"], true, "{during}");
        let why = during["detail"].as_str().unwrap();
        assert!(why.contains("control plane unavailable"), "{why}");
        for m in ["manager-1", "manager-2", "manager-3"] {
            assert!(why.contains(m), "{why}");
        }
        assert!(
            r.summary["steps"][4]["ok"] == true,
            "{}",
            r.summary["steps"][4]
        );
        assert!(
            r.summary["versions"]["2"].as_u64().unwrap() > 0,
            "{}",
            r.context()
        );
        assert!(r.cluster()["control_plane_unavailable_s"].as_f64().unwrap() > 5.0);
    });

    check("interrupt during quorum loss", &|| {
        // Ctrl-C while the managers have no quorum: the run still removes its service (after
        // starting the stopped managers again) and leaves the lab whole for the next run.
        let interrupted = interrupt_when("manager-loss-update", "control_plane_unavailable");
        assert_eq!(
            interrupted.output.status.code(),
            Some(130),
            "{}",
            interrupted.context()
        );
        assert_eq!(interrupted.summary["run"]["interrupted"], true);
        let stderr = String::from_utf8_lossy(&interrupted.output.stderr);
        assert!(!stderr.contains("cleanup of run"), "{stderr}");
    });

    check("leader-stop", &|| {
        // The leader stops: the other two managers elect a new one; nothing is dropped.
        let r = run("leader-stop");
        assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
        assert_eq!(r.summary["requests"]["dropped"], 0, "{}", r.context());
        let stopped = r.summary["steps"][0]["detail"].as_str().unwrap();
        let old = stopped.trim_start_matches("stopped the leader ");
        assert!(old.starts_with("manager-"), "{stopped}");
        assert_eq!(r.lanes(old, "stopped").len(), 1, "{}", r.cluster());
        let led_at_start = r.lanes(old, "leader");
        assert!(
            led_at_start.first().is_some_and(|l| l.0 < 1.0),
            "{}",
            r.cluster()
        );
        let stop_s = r.summary["steps"][0]["start_s"].as_f64().unwrap();
        let new_leader = ["manager-1", "manager-2", "manager-3"]
            .into_iter()
            .filter(|m| *m != old)
            .find_map(|m| r.lanes(m, "leader").first().map(|l| l.0));
        assert!(
            new_leader.is_some_and(|at| at > stop_s),
            "a new leader after the stop at {stop_s} s: {}",
            r.cluster()
        );
        let election = r.cluster()["control_plane_unavailable_s"].as_f64().unwrap();
        assert!(election > 1.0 && election < 60.0, "{}", r.cluster());
        for w in ["worker-1", "worker-2", "worker-3"] {
            assert!(
                r.lanes(w, "down").is_empty(),
                "{w} never down: {}",
                r.cluster()
            );
        }
    });

    check("worker-freeze-crash", &|| {
        // A frozen worker (its containers too): what was in flight to its tasks hangs until the
        // client's timeout. A crashed worker: requests whose task died under them get a 502.
        let r = run("worker-freeze-crash");
        assert_eq!(r.output.status.code(), Some(1), "{}", r.context());
        let steps = &r.summary["steps"];
        assert!(
            steps[0]["detail"].as_str().unwrap().contains(" and its "),
            "the pause names the containers it froze: {}",
            steps[0]
        );
        let pause_ms = steps[0]["start_s"].as_f64().unwrap() * 1000.0;
        let unpause_ms = steps[1]["start_s"].as_f64().unwrap() * 1000.0;
        let kill_ms = steps[2]["start_s"].as_f64().unwrap() * 1000.0;
        let failed: Vec<(f64, String)> = r
            .requests()
            .into_iter()
            .filter(|(_, o)| o != "ok")
            .collect();
        assert!(
            failed
                .iter()
                .any(|(sent, o)| o == "timeout" && *sent < pause_ms && *sent > pause_ms - 1_500.0),
            "requests in flight at the freeze hang: {failed:?}"
        );
        for (sent, outcome) in &failed {
            let at_freeze =
                outcome == "timeout" && *sent > pause_ms - 1_500.0 && *sent < unpause_ms;
            let at_crash = *sent > kill_ms - 3_000.0 && *sent < kill_ms + 3_000.0;
            assert!(
                at_freeze || at_crash,
                "{outcome} sent at {sent} ms: pause {pause_ms}, unpause {unpause_ms}, kill {kill_ms}"
            );
        }
        assert_eq!(r.lanes("worker-1", "paused").len(), 1, "{}", r.cluster());
        assert_eq!(r.lanes("worker-2", "stopped").len(), 1, "{}", r.cluster());
        let moved: Vec<&str> = r.cluster()["reschedules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["node"].as_str().unwrap())
            .collect();
        assert_eq!(moved, ["worker-1", "worker-2"], "{}", r.cluster());
    });

    check("generators", &|| {
        // Three generators on the workers, deployed as a Swarm job: the merged totals are
        // the agents' records, the merged histograms agree with the merged requests.csv, and
        // the verdict is the one-generator run's.
        let r = run("generators");
        assert_eq!(r.output.status.code(), Some(0), "{}", r.context());
        // The agents ran on the workers: nothing of the run is left there either (Swarm
        // removes a removed job's containers itself, within seconds).
        let id = r.dir.file_name().unwrap().to_string_lossy().into_owned();
        let rt = tokio::runtime::Runtime::new().unwrap();
        for w in ["worker-1", "worker-2", "worker-3"] {
            let socket = format!("unix:///run/rollcheck-lab/{w}/docker.sock");
            let deadline = Instant::now() + Duration::from_secs(30);
            while rt.block_on(labelled_at(&socket, format!("rollcheck.run={id}"))) > 0 {
                assert!(Instant::now() < deadline, "{w}: the run's agent is left");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        assert_eq!(r.summary["requests"]["dropped"], 0, "{}", r.context());
        let g = &r.summary["generators"];
        assert_eq!(g["count"], 3, "{g}");
        let agents = g["agents"].as_array().unwrap();
        let mut nodes: Vec<&str> = agents.iter().map(|a| a["node"].as_str().unwrap()).collect();
        nodes.sort_unstable();
        assert_eq!(nodes, ["worker-1", "worker-2", "worker-3"], "{g}");
        let mut shards: Vec<u64> = agents
            .iter()
            .map(|a| a["shard"].as_u64().unwrap())
            .collect();
        shards.sort_unstable();
        assert_eq!(shards, [0, 1, 2], "{g}");
        let total = r.summary["requests"]["total"].as_u64().unwrap();
        let sum: u64 = agents.iter().map(|a| a["requests"].as_u64().unwrap()).sum();
        assert_eq!(sum, total, "{g}");
        for a in agents {
            assert_eq!(a["reported"], a["requests"], "every record arrived: {a}");
            assert!(a["lost_at_s"].is_null(), "{a}");
            // Each sent a third of the same schedule (150/s for the run's length).
            let n = a["requests"].as_u64().unwrap();
            assert!(n * 3 + 9 >= total && n * 3 <= total + 9, "{a}: of {total}");
        }
        // requests.csv: each row names its agent, whose shard its id belongs to.
        let mut csv = csv::Reader::from_path(r.dir.join("requests.csv")).unwrap();
        let headers = csv.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (id, agent) = (col("id"), col("agent"));
        let mut per_agent = [0u64; 3];
        for row in csv.records() {
            let row = row.unwrap();
            let (i, a): (u64, usize) = (row[id].parse().unwrap(), row[agent].parse().unwrap());
            assert_eq!(i % 3, a as u64, "request {i} from agent {a}");
            per_agent[a] += 1;
        }
        for a in agents {
            let shard = a["shard"].as_u64().unwrap() as usize;
            assert_eq!(a["requests"].as_u64().unwrap(), per_agent[shard], "{a}");
        }
        // The agents' histograms, added, against the percentiles of the merged records.
        let h = &g["histograms"];
        assert_eq!(h["count"], r.summary["outcomes"]["ok"], "{g}");
        for q in ["p50", "p99"] {
            let (merged, rows) = (
                h[format!("{q}_ms")].as_f64().unwrap(),
                r.summary["latency_ms"][q].as_f64().unwrap(),
            );
            assert!(
                (merged - rows).abs() <= rows * 0.001,
                "{q}: {merged} vs {rows}"
            );
        }
        let bound = g["timing_error_bound_ms"].as_f64().unwrap();
        assert!(bound > 0.0 && bound < 1000.0, "{g}");
        let events = events_of(r.dir.parent().unwrap());
        assert!(events.contains(",generators,"), "the start is recorded");
        // Each agent's own notes reach events.csv as that agent's: its open-model
        // dispatcher's priority.
        for w in ["worker-1", "worker-2", "worker-3"] {
            assert!(
                events.contains(&format!(",dispatcher,{w},")),
                "{w}'s dispatcher note: {events}"
            );
        }

        // The same scenario with one generator (this process): the same verdict.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/generators.toml"),
        )
        .unwrap();
        let one: String = text
            .lines()
            .filter(|l| !l.starts_with("generators") && !l.starts_with("placement"))
            .map(|l| format!("{l}\n"))
            .collect();
        let file = tempfile::tempdir()
            .unwrap()
            .keep()
            .join("one-generator.toml");
        std::fs::write(&file, one).unwrap();
        let single = run(file.to_str().unwrap());
        assert_eq!(
            single.summary["verdict"],
            r.summary["verdict"],
            "{}",
            single.context()
        );
        assert!(single.summary.get("generators").is_none());
    });
    check("generators-node-stop", &|| {
        // The worker of one generator shuts down: that generator is lost (recorded, with
        // when), the run still has a verdict computed on what was sent.
        let r = run("generators-node-stop");
        let code = r.output.status.code();
        assert!(code == Some(0) || code == Some(1), "{}", r.context());
        let agents = r.summary["generators"]["agents"]
            .as_array()
            .unwrap()
            .clone();
        let lost: Vec<&Value> = agents
            .iter()
            .filter(|a| !a["lost_at_s"].is_null())
            .collect();
        assert_eq!(lost.len(), 1, "{agents:?}");
        assert_eq!(lost[0]["node"], "worker-3", "{agents:?}");
        let at = lost[0]["lost_at_s"].as_f64().unwrap();
        assert!((8.0..25.0).contains(&at), "lost at {at} s");
        for a in agents.iter().filter(|a| a["lost_at_s"].is_null()) {
            assert_eq!(a["reported"], a["requests"], "{a}");
        }
        assert!(events_of(r.dir.parent().unwrap()).contains("generator_lost"));
        let problems = r.summary["problems"].to_string();
        assert!(!problems.contains("generator"), "{problems}");
    });

    let status = rollcheck(&["lab", "status"]);
    assert!(status.status.success());
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(table.contains("worker-3"), "{table}");
    assert_eq!(table.matches(" ready ").count(), 6, "{table}");

    let down = rollcheck(&["lab", "down"]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(labelled("rollcheck.lab=cluster".into())), 0);
    assert!(!Path::new("/run/rollcheck-lab").exists());
    assert!(
        failed.is_empty(),
        "{} cluster scenario(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn a_lab_too_big_for_memory_fails_before_anything_starts() {
    let _lab = lab();
    let up = rollcheck(&["lab", "up", "--managers", "40", "--workers", "200"]);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert_eq!(up.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a lab of 240 nodes needs about 97024 MB of memory"),
        "{stderr}"
    );
    assert!(!stderr.contains("lab:"), "nothing may start: {stderr}");
    // More managers than the lab has addresses for is a usage error.
    let too_many = rollcheck(&["lab", "up", "--managers", "41"]);
    assert_eq!(too_many.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("41 is not in 1..=40"));
}
