//! The hot-deploy scenarios (`[lab] kind = "docker"`: containers behind rollcheck's nginx,
//! no orchestrator), run for real through `rollcheck run` on the local engine: each reaches
//! the verdict its header states, with the class it names, reports the upstream switch and
//! the old nginx workers, and leaves nothing labelled behind.

mod common;

use common::BIN;
use common::run::*;
use serde_json::Value;
use std::process::Command;

fn hot(name: &str) -> Run {
    run(&scenario(&format!("hot-deploy/{name}")))
}

/// summary.json `containers.upstream`: the switch a step made (the second entry).
fn switched(r: &Run) -> Value {
    let u = &r.summary["containers"]["upstream"];
    assert_eq!(u[0]["servers"][0], "app-v1", "{u}");
    assert_eq!(u[0]["switch"], Value::Null, "{u}");
    assert_eq!(u[1]["servers"][0], "app-v2", "{u}");
    u[1].clone()
}

fn truth(r: &Run) -> Value {
    let t = r.summary["server_truth"].clone();
    assert_eq!(t["available"], true, "{t}");
    t
}

#[test]
fn hot_deploy_with_reload_and_drain_drops_nothing() {
    let _engine = lock();
    let r = hot("hot-deploy");
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    for s in r.summary["steps"].as_array().unwrap() {
        assert_eq!(s["ok"], true, "{s}");
    }
    // Both versions answered: the switch happened under load.
    assert!(r.summary["versions"]["1"].as_u64().unwrap() > 0);
    assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
    let u = switched(&r);
    assert_eq!(u["switch"], "reload");
    assert_eq!(u["old_workers"], 2, "{u}");
    // The old workers held 1-s requests on v1: they lived up to about that long.
    let lived = u["old_workers_exited_after_s"].as_f64().unwrap();
    assert!(lived > 0.0 && lived < 5.0, "{u}");
    // v1 was stopped only after them.
    let lanes = r.summary["containers"]["lanes"].as_array().unwrap();
    let stopping = lanes
        .iter()
        .find(|l| l["container"] == "app-v1" && l["state"] == "stopping")
        .expect("app-v1 stopped");
    assert!(
        stopping["start_s"].as_f64().unwrap() >= u["start_s"].as_f64().unwrap() + lived,
        "{lanes:?}"
    );
    let t = truth(&r);
    let total = &r.summary["requests"]["total"];
    assert_eq!(&t["answered"], total, "{t}");
    assert_eq!(t["mismatch"], 0, "{t}");
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(text.contains("old workers exited"), "{text}");
    assert_cleaned_up(&r);
}

#[test]
fn hot_deploy_known_bad_variants_fail_with_their_classes() {
    let _engine = lock();

    // v1 stopped before the switch: nginx answers 502 for v1's closed port, and no task
    // ever sees those requests.
    let r = hot("hot-deploy-stop-first");
    assert_eq!(r.code(), Some(1), "{}", r.context());
    assert_eq!(
        r.dominant_failure(),
        "http_5xx",
        "{}",
        r.summary["outcomes"]
    );
    let t = truth(&r);
    assert_eq!(t["never_arrived"], r.summary["requests"]["dropped"], "{t}");
    assert_eq!(switched(&r)["switch"], "reload");
    assert_cleaned_up(&r);

    // nginx restarted instead of reloaded: nothing listens while it restarts.
    let r = hot("hot-deploy-restart");
    assert_eq!(r.code(), Some(1), "{}", r.context());
    assert_eq!(r.dominant_failure(), "refused", "{}", r.summary["outcomes"]);
    assert_eq!(switched(&r)["switch"], "restart");
    let edge_stopped = r.summary["containers"]["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["container"] == "rollcheck-edge-docker" && l["state"] == "stopping");
    assert!(edge_stopped, "{}", r.summary["containers"]);
    assert_cleaned_up(&r);

    // An abrupt v1 stopped while the old workers still hold requests on it: they are cut,
    // the server's log says so, and nginx turns them into 502s.
    let r = hot("hot-deploy-no-drain");
    assert_eq!(r.code(), Some(1), "{}", r.context());
    assert_eq!(
        r.dominant_failure(),
        "http_5xx",
        "{}",
        r.summary["outcomes"]
    );
    let t = truth(&r);
    assert!(t["cut"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["mismatch"], 0, "{t}");
    // The old workers' 1-s requests were cut, not finished: they exited well within a second.
    let u = switched(&r);
    let lived = u["old_workers_exited_after_s"].as_f64().unwrap();
    assert!(lived < 0.9, "{u}");
    assert_cleaned_up(&r);
}

/// A port the scenario publishes, taken at run time by something else: exit 2 naming the
/// port and that it is not a container's, before any container is created.
#[test]
fn a_taken_port_stops_the_run_before_anything_starts() {
    let _engine = lock();
    let holder = std::net::TcpListener::bind("127.0.0.1:9092").unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["run", "--out"])
        .arg(out.path())
        .arg(scenario("hot-deploy/hot-deploy"))
        .output()
        .unwrap();
    drop(holder);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("port 9092 on 127.0.0.1, which app-v2 publishes, is taken by a process"),
        "{stderr}"
    );
    // The check came before anything was started (the lab prints each start).
    assert!(!stderr.contains("container_started"), "{stderr}");
    assert!(!stderr.contains("edge_started"), "{stderr}");
    rt().block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        for name in ["app-v1", "app-v2", "rollcheck-edge-docker"] {
            let found = docker.inspect_container(name, None).await;
            assert!(found.is_err(), "{name} was created: {stderr}");
        }
    });
}

/// Ctrl-C after a step started a container: exit 130, a partial report, and every container
/// of the run removed (the one the step started too).
#[test]
fn an_interrupted_hot_deploy_removes_its_containers() {
    let _engine = lock();
    let r = interrupted(
        &scenario("hot-deploy/hot-deploy"),
        "step_end,step 1: container_run",
        std::time::Duration::ZERO,
    );
    assert_eq!(r.code(), Some(130), "{}", r.context());
    assert_eq!(r.summary["run"]["interrupted"], true);
    assert_cleaned_up(&r);
}
