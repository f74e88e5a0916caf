//! The shipped Swarm scenarios, run for real through `rollcheck run` on the local engine:
//! each must reach the verdict its header promises, with the outcome class it names, and
//! leave nothing labelled behind — also when interrupted.

mod common;

use common::{BIN, labelled};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One lab at a time: the scenarios share the service name and the edge port.
static ENGINE: Mutex<()> = Mutex::new(());

struct Run {
    output: Output,
    dir: PathBuf,
    summary: Value,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn outcome(&self, class: &str) -> u64 {
        self.summary["outcomes"][class].as_u64().unwrap()
    }

    /// The failure class with the most requests.
    fn dominant_failure(&self) -> String {
        let o = self.summary["outcomes"].as_object().unwrap();
        o.iter()
            .filter(|(k, _)| *k != "ok" && *k != "late")
            .max_by_key(|(_, v)| v.as_u64().unwrap())
            .map(|(k, _)| k.clone())
            .unwrap()
    }

    fn run_id(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    fn context(&self) -> String {
        format!(
            "exit {:?}\n{}\n{}",
            self.code(),
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.toml"))
}

fn only_dir(out: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one report dir: {dirs:?}");
    dirs[0].clone()
}

fn run(path: &Path) -> Run {
    let out = tempfile::tempdir().unwrap().keep();
    let started = Instant::now();
    let output = Command::new(BIN)
        .arg("run")
        .arg(path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let dir = only_dir(&out);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    eprintln!(
        "{}: exit {:?} in {:.0?}: {} requests, outcomes {}, p50 {} ms, p99 {} ms",
        path.display(),
        output.status.code(),
        started.elapsed(),
        summary["requests"]["total"],
        summary["outcomes"],
        summary["latency_ms"]["p50"],
        summary["latency_ms"]["p99"],
    );
    Run {
        output,
        dir,
        summary,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Nothing carrying this run's label is left in the engine.
fn assert_cleaned_up(r: &Run) {
    let left = rt().block_on(labelled(format!("rollcheck.run={}", r.run_id())));
    assert_eq!(left, 0, "objects of run {} left behind", r.run_id());
}

/// Opens the run's report.html in headless Chromium: every chart is an SVG with content, no
/// console error, no request leaves file://. Saves the screenshot into the run's report dir.
fn assert_report_renders(r: &Run) {
    let page = r.dir.join("report.html");
    let shot = r.dir.join("report.png");
    let rendered = common::chromium(&page, &shot);
    let charts: Vec<&str> = rendered.dom.split("<svg").skip(1).collect();
    assert!(
        charts.len() >= 5,
        "{} charts in {}",
        charts.len(),
        page.display()
    );
    for (i, svg) in charts.iter().enumerate() {
        let body = &svg[..svg.find("</svg>").unwrap_or(svg.len())];
        let marks = [
            "<path",
            "<rect",
            "<circle",
            "<line",
            "<polyline",
            "<polygon",
        ];
        assert!(
            marks.iter().any(|m| body.contains(m)),
            "chart {i} of {} is empty",
            page.display()
        );
    }
    assert!(
        rendered.console.is_empty(),
        "console: {:?}",
        rendered.console
    );
    assert!(
        rendered.network.is_empty(),
        "requests: {:?}",
        rendered.network
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    eprintln!("screenshot: {}", shot.display());
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn rolling_update_drops_nothing() {
    let _engine = lock();
    let r = run(&scenario("rolling"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    assert_eq!(r.summary["steps"][0]["ok"], true);
    // Both versions served: the update really happened under load.
    assert!(r.summary["versions"]["1"].as_u64().unwrap() > 0);
    assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
    assert!(
        !r.summary["environment"]["docker.server"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    let events = std::fs::read_to_string(r.dir.join("events.csv")).unwrap();
    for kind in ["exec_start", "health_status", "die"] {
        assert!(events.contains(kind), "no {kind} event in events.csv");
    }
    // Requests carry the task that served them (Swarm's {{.Task.Name}} in TASK).
    let requests = std::fs::read_to_string(r.dir.join("requests.csv")).unwrap();
    assert!(
        requests.contains(",app.1."),
        "no task names in requests.csv"
    );
    assert_report_renders(&r);
    assert_cleaned_up(&r);
}

/// The user's own stack (scenarios/stack/): deployed with the real `docker stack deploy`,
/// its app updated under load through the stack's own nginx; afterwards nothing the stack
/// created is left, by rollcheck's label or by the stack's own.
#[test]
fn stack_rolling_update_drops_nothing() {
    let _engine = lock();
    let r = run(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/stack-rolling.toml"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    assert_eq!(r.summary["steps"][0]["ok"], true, "{}", r.summary["steps"]);
    assert!(r.summary["versions"]["1"].as_u64().unwrap() > 0);
    assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
    let requests = std::fs::read_to_string(r.dir.join("requests.csv")).unwrap();
    assert!(
        requests.contains(",shop_app.1."),
        "no stack task names in requests.csv"
    );
    assert!(r.dir.join("stack-labels.yml").exists());
    assert_cleaned_up(&r);
    let left = rt().block_on(labelled("com.docker.stack.namespace=shop".into()));
    assert_eq!(left, 0, "objects of stack shop left behind");
}

/// Known-bad: the stack's nginx resolves a static `proxy_pass http://app:8080;` once; after
/// the update replaced both dnsrr tasks it sends to addresses that are gone (502s, the edge's
/// `http_5xx`), and no v2 response arrives. Its fixed twin (Docker's resolver, a variable in
/// proxy_pass) drops nothing and serves v2.
#[test]
fn stack_static_proxy_fails_and_its_fixed_twin_passes() {
    let _engine = lock();
    let bad = run(&scenario("stack/stack-static-proxy"));
    assert_eq!(bad.code(), Some(1), "{}", bad.context());
    assert_eq!(bad.summary["steps"][0]["ok"], true, "{}", bad.summary["steps"]);
    let outcomes = &bad.summary["outcomes"];
    let dropped = bad.summary["requests"]["dropped"].as_u64().unwrap();
    assert!(dropped > 100, "{}", bad.context());
    assert_eq!(outcomes["http_5xx"].as_u64(), Some(dropped), "{outcomes}");
    assert!(bad.summary["versions"].get("2").is_none(), "{}", bad.summary["versions"]);
    assert_cleaned_up(&bad);
    let fixed = run(&scenario("stack/stack-static-proxy-fixed"));
    assert_eq!(fixed.code(), Some(0), "{}", fixed.context());
    assert_eq!(fixed.summary["requests"]["dropped"], 0);
    assert!(fixed.summary["versions"]["2"].as_u64().unwrap() > 0);
    assert_cleaned_up(&fixed);
    let left = rt().block_on(labelled("com.docker.stack.namespace=static".into()));
    assert_eq!(left, 0, "objects of stack static left behind");
}

/// A stack of the scenario's name that rollcheck did not deploy is the user's: the run is
/// refused (inconclusive, exit 2) before it deploys anything, and the user's stack is still
/// there afterwards, untouched.
#[test]
fn a_stack_rollcheck_did_not_deploy_is_refused_and_left_alone() {
    let _engine = lock();
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("theirs.yml");
    std::fs::write(
        &compose,
        format!(
            "version: \"3.8\"\nservices:\n  app:\n    image: {}:1\n",
            rollcheck::driver::images::TESTSVC_REPO
        ),
    )
    .unwrap();
    let deploy = Command::new("docker")
        .args(["stack", "deploy", "--resolve-image", "never", "-c"])
        .arg(&compose)
        .arg("shop")
        .output()
        .unwrap();
    assert!(
        deploy.status.success(),
        "{}",
        String::from_utf8_lossy(&deploy.stderr)
    );
    // Their stack goes at the end, whatever the assertions say.
    struct Theirs;
    impl Drop for Theirs {
        fn drop(&mut self) {
            let _ = Command::new("docker")
                .args(["stack", "rm", "shop"])
                .output();
            // `docker stack rm` returns before the engine has removed the network.
            let label = "label=com.docker.stack.namespace=shop";
            for _ in 0..60 {
                let left = ["service", "network"].iter().any(|kind| {
                    Command::new("docker")
                        .args([kind, "ls", "-q", "--filter", label])
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
    let _theirs = Theirs;
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stack/stack-rolling.toml"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a stack named \"shop\" is already deployed"),
        "{err}"
    );
    let still = Command::new("docker")
        .args([
            "service",
            "inspect",
            "--format",
            "{{.Spec.Name}}",
            "shop_app",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&still.stdout).trim(),
        "shop_app",
        "their service was removed"
    );
    let run_id = only_dir(out.path())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        rt().block_on(labelled(format!("rollcheck.run={run_id}"))),
        0
    );
}

#[test]
fn start_first_drops_nothing() {
    let _engine = lock();
    let r = run(&scenario("start-first"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    assert_cleaned_up(&r);
}

#[test]
fn rollback_switches_versions_twice() {
    let _engine = lock();
    let r = run(&scenario("rollback"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    // The version mix per interval goes 1 → 2 → 1.
    let mix: Vec<String> = r.summary["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| {
            let v = i["versions"].as_object()?;
            (v.len() == 1).then(|| v.keys().next().unwrap().clone())
        })
        .collect();
    let mut switches: Vec<&String> = mix.iter().collect();
    switches.dedup();
    assert_eq!(switches, ["1", "2", "1"], "pure-version intervals: {mix:?}");
    assert_cleaned_up(&r);
}

#[test]
fn scaling_drops_nothing() {
    let _engine = lock();
    let r = run(&scenario("scale"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["steps"].as_array().unwrap().len(), 2);
    assert_cleaned_up(&r);
}

#[test]
fn one_replica_stop_first_is_an_outage() {
    let _engine = lock();
    let r = run(&scenario("one-replica-stop-first"));
    assert_eq!(r.code(), Some(1), "{}", r.context());
    assert!(r.summary["requests"]["dropped"].as_u64().unwrap() > 0);
    assert_eq!(
        r.dominant_failure(),
        "http_5xx",
        "{}",
        r.summary["outcomes"]
    );
    assert_report_renders(&r);
    assert_cleaned_up(&r);
}

#[test]
fn abrupt_shutdown_cuts_requests_in_flight() {
    let _engine = lock();
    let r = run(&scenario("abrupt-shutdown"));
    assert_eq!(r.code(), Some(1), "{}", r.context());
    assert!(r.outcome("reset") > 0);
    assert_eq!(r.dominant_failure(), "reset", "{}", r.summary["outcomes"]);
    assert_cleaned_up(&r);
}

#[test]
fn slow_start_without_healthcheck_fails() {
    let _engine = lock();
    let r = run(&scenario("no-healthcheck-slow-start"));
    assert_eq!(r.code(), Some(1), "{}", r.context());
    let failure = r.dominant_failure();
    assert!(
        failure == "http_5xx" || failure == "refused",
        "{}",
        r.summary["outcomes"]
    );
    assert_cleaned_up(&r);
}

#[test]
fn paused_update_is_inconclusive_unless_expected() {
    let _engine = lock();
    let r = run(&fixture("paused-update"));
    assert_eq!(r.code(), Some(2), "{}", r.context());
    assert_eq!(r.summary["verdict"], "inconclusive");
    let problem = r.summary["problems"][0].as_str().unwrap();
    assert!(problem.contains("paused"), "{problem}");
    assert_cleaned_up(&r);

    let r = run(&fixture("paused-update-expected"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["steps"][0]["ok"], false);
    assert_cleaned_up(&r);
}

#[test]
fn interrupted_run_writes_a_partial_report_and_cleans_up() {
    let _engine = lock();
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .arg("run")
        .arg(scenario("rolling"))
        .arg("--out")
        .arg(out.path())
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once load is flowing and the update has started.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the run never started its update"
        );
        let started = std::fs::read_dir(out.path())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("events.csv")).ok())
            .any(|events| events.contains("step_start"));
        if started {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let dir = only_dir(out.path());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let r = Run {
        output,
        dir,
        summary,
    };
    assert_eq!(r.code(), Some(130), "{}", r.context());
    assert_eq!(r.summary["run"]["interrupted"], true);
    assert!(r.summary["requests"]["total"].as_u64().unwrap() > 0);
    assert_cleaned_up(&r);
}

#[test]
fn unreachable_engine_is_inconclusive_and_says_how_to_start_it() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("run")
        .arg(scenario("rolling"))
        .arg("--out")
        .arg(out.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("unix:///nonexistent/docker.sock"), "{err}");
    assert!(err.contains("ci/setup"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn missing_image_is_inconclusive_and_named() {
    let _engine = lock();
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .arg("run")
        .arg(fixture("missing-image"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("rollcheck-missing/nope:1"), "{err}");
}
