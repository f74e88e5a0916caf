//! Helpers shared by the integration tests: the real test service on loopback, and a count of
//! what carries a label in the real engine.
#![allow(dead_code)] // each test binary uses a different part

pub mod run;
pub mod swarm;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_rollcheck");

/// Every summary.json a test reads is what the shipped summary.schema.json describes.
pub fn assert_valid_summary(summary: &serde_json::Value) {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("summary.schema.json");
        let schema = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).unwrap()
    });
    let errors: Vec<String> = validator
        .iter_errors(summary)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "summary.json does not match summary.schema.json: {errors:#?}"
    );
}

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
    labelled_on(&docker, label).await
}

/// The same count on another engine (a cluster node's, through its socket).
pub async fn labelled_at(socket: &str, label: String) -> usize {
    let docker = bollard::Docker::connect_with_unix(socket, 30, bollard::API_DEFAULT_VERSION)
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    labelled_on(&docker, label).await
}

async fn labelled_on(docker: &bollard::Docker, label: String) -> usize {
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

/// What headless Chromium made of a report page.
pub struct Rendered {
    /// The DOM after rendering.
    pub dom: String,
    /// Console messages Chromium logged for the page (`CONSOLE` lines, errors included).
    pub console: Vec<String>,
    /// URLs of requests Chromium's network log saw that were not `file://`.
    pub network: Vec<String>,
}

/// Loads `page` in Debian's headless Chromium (installed by ci/setup) with a fresh profile and
/// no background networking, saves a screenshot to `screenshot`, and returns the rendered DOM,
/// the console messages and every non-file request from Chromium's network log.
pub fn chromium(page: &std::path::Path, screenshot: &std::path::Path) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let netlog = profile.path().join("netlog.json");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let common = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut dump = Command::new("chromium");
    common(&mut dump);
    let out = dump
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs (ci/setup installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    // Chromium's own requests (update checks, time) carry the initiator "not an origin"; the
    // page's requests carry its origin ("null" for file://).
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&netlog).unwrap()).unwrap();
    let mut network: Vec<String> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let p = &e["params"];
            let url = p["url"].as_str()?;
            let initiator = p["initiator"].as_str()?;
            (initiator != "not an origin" && !url.starts_with("file://")).then(|| url.to_string())
        })
        .collect();
    network.dedup();
    let mut shot = Command::new("chromium");
    common(&mut shot);
    let status = shot
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1400,5000")
        .arg(&url)
        .output()
        .unwrap();
    assert!(status.status.success(), "chromium screenshot failed");
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
        network,
    }
}

/// Says on the test run's own stderr that a test did not test anything, and why: libtest
/// captures `eprintln!` of a passing test, so a skip would otherwise look like a pass.
#[allow(dead_code)] // not every test binary skips
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}
