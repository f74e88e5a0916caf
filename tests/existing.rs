//! `[lab] kind = "existing"`: the user's own swarm (here the local engine's, with a stack its
//! owner deployed with the CLI). rollcheck changes running services and nodes under load and
//! puts them back — also on Ctrl-C — and creates or removes nothing else there.

mod common;

use common::BIN;
use common::run::*;
use common::swarm::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `[lab] kind = "existing"`: a stack its owner deployed with the CLI (the shipped template,
/// under another name) has its app updated by rollcheck under load through its own nginx;
/// afterwards the app's spec is the one it had before, and no service, network, config,
/// secret or volume was created or removed.
#[test]
fn an_existing_swarms_service_is_updated_under_load_and_put_back() {
    let _engine = lock();
    let compose = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/docker-compose.yml");
    let _theirs = TheirStack::deploy("theirs", &compose);
    let before = spec_of("theirs_app");
    let objects = inventory();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("existing.toml");
    std::fs::write(
        &path,
        r#"title = "Their app, updated on their swarm"
[lab]
kind = "existing"
[load]
target = "http://127.0.0.1:8080/"
concurrency = 10
duration = "25s"
[[step]]
at = "5s"
action = "update_image"
service = "theirs_app"
image = "rollcheck/testsvc:2"
[gate]
max_dropped = 0
"#,
    )
    .unwrap();
    let r = run(&path);
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["steps"][0]["ok"], true, "{}", r.summary["steps"]);
    assert_eq!(r.summary["requests"]["dropped"], 0);
    assert!(r.summary["versions"]["1"].as_u64().unwrap() > 0);
    assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
    let err = String::from_utf8_lossy(&r.output.stderr);
    assert!(err.contains("theirs_app: spec restored"), "{err}");
    assert_eq!(spec_of("theirs_app"), before, "their spec was not put back");
    assert_eq!(inventory(), objects, "objects created or removed");
    assert_cleaned_up(&r);
}

/// `node_faults = true` on an existing swarm: draining its only node takes every task away
/// (known-bad: the run fails on refused requests), and at the end rollcheck makes the node
/// active again, as it found it.
#[test]
fn a_node_an_existing_swarm_run_drained_is_made_active_again() {
    let _engine = lock();
    swarm();
    let host = docker(&["info", "--format", "{{.Name}}"])
        .trim()
        .to_string();
    let availability = || {
        docker(&[
            "node",
            "inspect",
            "--format",
            "{{.Spec.Availability}}",
            &host,
        ])
        .trim()
        .to_string()
    };
    assert_eq!(availability(), "active");
    // Whatever the assertions say, the engine's node serves the next test.
    struct Active(String);
    impl Drop for Active {
        fn drop(&mut self) {
            let _ = Command::new("docker")
                .args(["node", "update", "--availability", "active", &self.0])
                .output();
        }
    }
    let _active = Active(host.clone());
    let compose = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/docker-compose.yml");
    let _theirs = TheirStack::deploy("theirs", &compose);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drain.toml");
    std::fs::write(
        &path,
        format!(
            r#"[lab]
kind = "existing"
node_faults = true
[load]
target = "http://127.0.0.1:8080/"
concurrency = 4
duration = "15s"
[[step]]
at = "5s"
action = "node_drain"
node = "{host}"
"#
        ),
    )
    .unwrap();
    let r = run(&path);
    assert_eq!(r.code(), Some(1), "{}", r.context());
    assert_eq!(r.summary["steps"][0]["ok"], true, "{}", r.summary["steps"]);
    assert!(r.summary["requests"]["ok"].as_u64().unwrap() > 0);
    assert!(r.summary["requests"]["dropped"].as_u64().unwrap() > 0);
    let err = String::from_utf8_lossy(&r.output.stderr);
    assert!(
        err.contains(&format!("node {host}: drain -> active (restored)")),
        "{err}"
    );
    assert_eq!(availability(), "active");
    assert_cleaned_up(&r);
}

/// `[lab] kind = "existing"` with a `[stack]` and `keep = true`: rollcheck deploys the stack
/// on the user's swarm, rolls it, and leaves it deployed (the run's own label removed from
/// nothing else); the stack's owner removes it.
#[test]
fn a_stack_kept_on_an_existing_swarm_stays_deployed() {
    let _engine = lock();
    let dir = tempfile::tempdir().unwrap();
    let stack_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack");
    for f in ["docker-compose.yml", "nginx.conf"] {
        std::fs::copy(stack_dir.join(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().join("kept.toml");
    std::fs::write(
        &path,
        r#"[lab]
kind = "existing"
[stack]
name = "kept"
compose = "docker-compose.yml"
keep = true
[edge]
kind = "stack"
service = "web"
all_interfaces = true
[load]
target = "http://127.0.0.1:8080/"
concurrency = 10
duration = "20s"
[[step]]
at = "5s"
action = "update_image"
service = "app"
image = "rollcheck/testsvc:2"
[gate]
max_dropped = 0
"#,
    )
    .unwrap();
    swarm();
    // The kept stack is removed at the end like anyone's.
    let _kept = TheirStack("kept");
    let r = run(&path);
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    let err = String::from_utf8_lossy(&r.output.stderr);
    assert!(
        err.contains("stack kept kept ([stack] keep = true;"),
        "{err}"
    );
    let image = docker(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        "kept_app",
    ]);
    assert_eq!(
        image.trim(),
        "rollcheck/testsvc:2",
        "the stack as the run left it"
    );
}

/// Ctrl-C in the middle of an update of a user's service: the run still puts the service's
/// spec back (and waits for it) before it exits with 130.
#[test]
fn an_interrupted_existing_swarm_run_still_puts_the_spec_back() {
    let _engine = lock();
    let compose = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/docker-compose.yml");
    let _theirs = TheirStack::deploy("theirs", &compose);
    let before = spec_of("theirs_app");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("interrupted.toml");
    std::fs::write(
        &path,
        r#"[lab]
kind = "existing"
[load]
target = "http://127.0.0.1:8080/"
concurrency = 4
duration = "60s"
[[step]]
at = "3s"
action = "update_image"
service = "theirs_app"
image = "rollcheck/testsvc:2"
"#,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("events.csv")).ok())
        .any(|events| events.contains("step_start"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the update never started"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("theirs_app: spec restored"), "{err}");
    assert_eq!(spec_of("theirs_app"), before, "their spec was not put back");
    let saved = std::fs::read_to_string(only_dir(out.path()).join("existing-before.json")).unwrap();
    assert!(saved.contains("theirs_app"), "{saved}");
}
