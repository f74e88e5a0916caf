//! The user's side of a swarm in the stack and existing-swarm tests: stacks deployed with
//! the CLI as their owner would, the swarm they need, and what a run must leave unchanged.

use super::labelled;
use super::run::rt;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A stack deployed with the CLI, as its owner would, not through rollcheck; removed on drop
/// (and waited for: `docker stack rm` returns before the engine has removed the network).
pub struct TheirStack(pub &'static str);

impl TheirStack {
    pub fn deploy(name: &'static str, compose: &Path) -> TheirStack {
        swarm();
        let deploy = Command::new("docker")
            .args(["stack", "deploy", "--resolve-image", "never", "-c"])
            .arg(compose)
            .arg(name)
            .output()
            .unwrap();
        assert!(
            deploy.status.success(),
            "{}",
            String::from_utf8_lossy(&deploy.stderr)
        );
        TheirStack(name)
    }
}

impl Drop for TheirStack {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["stack", "rm", self.0])
            .output();
        let label = format!("label=com.docker.stack.namespace={}", self.0);
        for _ in 0..60 {
            let left = ["service", "network"].iter().any(|kind| {
                Command::new("docker")
                    .args([kind, "ls", "-q", "--filter", &label])
                    .output()
                    .is_ok_and(|o| !o.stdout.is_empty())
            });
            if !left {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The engine is in a swarm, as a user's would be (and as rollcheck's lab makes it: the same
/// addresses and rollcheck's label, so `lab down` leaves it again).
pub fn swarm() {
    if docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim() == "active" {
        return;
    }
    docker(&[
        "swarm",
        "init",
        "--advertise-addr",
        "127.0.0.1",
        "--listen-addr",
        "127.0.0.1:2377",
    ]);
    docker(&[
        "node",
        "update",
        "--label-add",
        "rollcheck.created-swarm=true",
        "self",
    ]);
}

/// Nothing carrying the stack's own namespace label is left (its networks, configs).
pub fn assert_stack_gone(name: &str) {
    let left = rt().block_on(labelled(format!("com.docker.stack.namespace={name}")));
    assert_eq!(left, 0, "objects of stack {name} left behind");
}

/// `docker <args>` stdout; the command must succeed.
pub fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The swarm's objects a run could create or remove, by kind (task containers come and go
/// with any update, so they are not in it).
pub fn inventory() -> Vec<(String, Vec<String>)> {
    ["service", "network", "config", "secret", "volume"]
        .iter()
        .map(|kind| {
            let mut ids: Vec<String> = docker(&[kind, "ls", "-q"])
                .lines()
                .map(String::from)
                .collect();
            ids.sort();
            (kind.to_string(), ids)
        })
        .collect()
}

pub fn spec_of(service: &str) -> Value {
    serde_json::from_str(&docker(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec}}",
        service,
    ]))
    .unwrap()
}
