//! `[lab] kind = "docker"` as a plan: containers, the edge's upstream, the container steps
//! and their defaults; the refusals are in the malformed corpus (tests/malformed/docker).

use super::*;

#[test]
fn a_hot_deploy_becomes_containers_an_upstream_and_steps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("scenarios/hot-deploy/hot-deploy.toml");
    let plan = load(&path).unwrap();
    let d = plan.docker().expect("a docker lab");
    assert!(plan.has_lab() && plan.lab().is_none() && plan.cluster().is_none());
    assert_eq!(d.upstream, ["app-v1"]);
    assert_eq!(d.edge.publish.to_string(), "127.0.0.1:8080");
    let v1 = &d.containers[0];
    assert_eq!(
        (v1.name.as_str(), v1.port, v1.container_port),
        ("app-v1", 9091, 8080)
    );
    assert!(v1.healthcheck.is_some());
    let names: Vec<&str> = d
        .all_containers(&plan.steps)
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["app-v1", "app-v2"]);
    assert_eq!(plan.watched_services(), ["app-v1", "app-v2"]);
    let actions: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        actions,
        [
            "container_run",
            "container_wait_healthy",
            "upstream_set",
            "container_stop",
            "container_rm"
        ]
    );
    assert_eq!(
        plan.steps[2].action,
        Action::UpstreamSet {
            servers: vec!["app-v2".into()],
            switch: Switch::Reload,
            drain: Some(secs(60)),
        }
    );
    assert_eq!(
        plan.steps[3].action,
        Action::ContainerStop {
            name: "app-v1".into(),
            signal: "SIGTERM".into(),
            grace: secs(10),
        }
    );
    assert_eq!(
        plan.steps[0].label,
        "container_run app-v2 rollcheck/testsvc:2 :9092"
    );
    assert_eq!(plan.steps[3].label, "container_stop app-v1");
}

#[test]
fn container_steps_take_their_defaults() {
    let text = r#"
[lab]
kind = "docker"
[[container]]
name = "web-1"
image = "rollcheck/testsvc:1"
port = 9001
container_port = 80
env = { DELAY = "1s", DB_PASSWORD = "hunter2-literal" }
[load]
target = "http://127.0.0.1:8080/"
[[step]]
action = "upstream_set"
servers = ["web-1"]
mode = "restart"
[[step]]
action = "container_kill"
name = "web-1"
[[step]]
action = "upstream_set"
servers = ["web-1"]
wait = "none"
"#;
    let plan = ok(text);
    let d = plan.docker().unwrap();
    // No [edge]: nginx on 127.0.0.1:8080 in front of every [[container]].
    assert_eq!(d.edge.kind, EdgeKind::Nginx);
    assert_eq!(d.upstream, ["web-1"]);
    assert_eq!(d.containers[0].container_port, 80);
    assert_eq!(
        plan.steps[0].action,
        Action::UpstreamSet {
            servers: vec!["web-1".into()],
            switch: Switch::Restart,
            drain: None,
        }
    );
    assert_eq!(
        plan.steps[1].action,
        Action::ContainerKill {
            name: "web-1".into(),
            signal: "SIGKILL".into(),
        }
    );
    assert!(matches!(
        plan.steps[2].action,
        Action::UpstreamSet { drain: None, .. }
    ));
    // A container's env is as secret as a service's.
    assert_eq!(plan.secrets.redact("got hunter2-literal"), "got <redacted>");
}

/// v1 → v2 → v3 on two ports: a removed container's port is free again, and a signal that
/// need not stop a container (SIGHUP) leaves both stop and rm possible.
#[test]
fn a_removed_containers_port_is_free_again() {
    let text = r#"
[lab]
kind = "docker"
[[container]]
name = "v1"
image = "rollcheck/testsvc:1"
port = 9091
[load]
target = "http://127.0.0.1:8080/"
[[step]]
action = "container_run"
name = "v2"
image = "rollcheck/testsvc:2"
port = 9092
[[step]]
action = "upstream_set"
servers = ["v2"]
[[step]]
action = "container_kill"
name = "v1"
signal = "HUP"
[[step]]
action = "container_stop"
name = "v1"
[[step]]
action = "container_rm"
name = "v1"
[[step]]
action = "container_run"
name = "v3"
image = "rollcheck/testsvc:3"
port = 9091
"#;
    let plan = ok(text);
    assert_eq!(
        plan.steps[2].action,
        Action::ContainerKill {
            name: "v1".into(),
            signal: "SIGHUP".into(),
        }
    );
    let d = plan.docker().unwrap();
    let ports: Vec<u16> = d
        .all_containers(&plan.steps)
        .iter()
        .map(|c| c.port)
        .collect();
    assert_eq!(ports, [9091, 9092, 9091]);
}
