//! Helpers shared by the integration tests: the real test service on loopback, and a count of
//! what carries a label in the real engine.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_rollcheck");

/// `rollcheck serve` on a free loopback port; killed on drop.
pub struct Service {
    child: Child,
    pub addr: String,
    pub url: String,
}

impl Service {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1", "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_string();
        Service {
            url: format!("http://{addr}/"),
            addr,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Services, containers and networks carrying `label` (`key=value`), listed through bollard
/// directly: a test must not trust the code it checks.
pub async fn labelled(label: String) -> usize {
    let docker = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let filter = Some(std::collections::HashMap::from([(
        "label".to_string(),
        vec![label],
    )]));
    let services = docker
        .list_services(Some(bollard::query_parameters::ListServicesOptions {
            filters: filter.clone(),
            status: None,
        }))
        .await
        .unwrap_or_default();
    let containers = docker
        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: filter.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let networks = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: filter,
        }))
        .await
        .unwrap();
    services.len() + containers.len() + networks.len()
}
