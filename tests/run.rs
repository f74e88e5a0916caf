//! `rollcheck run` and `rollcheck check` end to end, through the real binary, against the real
//! test service on loopback. No Docker.

mod common;

use common::{BIN, Service};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Runs `rollcheck run` and returns its output and the one report directory it wrote.
fn run(scenario: &Path, env: &[(&str, &str)]) -> (Output, PathBuf, Value) {
    let out = tempfile::tempdir().unwrap().keep();
    let output = Command::new(BIN)
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(&out)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let dirs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one report dir: {dirs:?}\n{}",
        stderr(&output)
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&summary);
    (output, dirs[0].clone(), summary)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn csv_rows(dir: &Path, file: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(dir.join(file))
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn external_scenario_passes_against_a_healthy_service() {
    let svc = Service::start(&["--delay", "1s"], &[]);
    let (out, dir, s) = run(
        &repo("scenarios/external.toml"),
        &[
            ("ROLLCHECK_TARGET", &svc.url),
            ("ROLLCHECK_DEPLOY_CMD", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(s["verdict"], "pass");
    assert_eq!(s["requests"]["dropped"], 0);
    assert!(
        s["requests"].get("dropped_between_s").is_none(),
        "{}",
        s["requests"]
    );
    let p50 = s["latency_ms"]["p50"].as_f64().unwrap();
    assert!((1000.0..1100.0).contains(&p50), "p50 {p50}");
    // 10 workers × 1 s requests over ~10 s.
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!((80..=120).contains(&total), "{total} requests");
    assert_eq!(csv_rows(&dir, "requests.csv").len() as u64, total);
    assert_eq!(s["steps"][0]["ok"], true);
    assert_eq!(s["gate"][0]["threshold"], "max_dropped");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verdict: PASS"), "{text}");
    let events = csv_rows(&dir, "events.csv");
    assert!(events.iter().any(|e| &e[2] == "step_end"), "{events:?}");
    assert!(dir.join("scenario.toml").exists());
}

#[test]
fn external_scenario_fails_when_the_deploy_cuts_requests() {
    let svc = Service::start(&["--delay", "1s", "--shutdown", "abrupt"], &[]);
    let kill = format!("kill -TERM {}", svc.pid());
    let (out, _dir, s) = run(
        &repo("scenarios/external.toml"),
        &[
            ("ROLLCHECK_TARGET", &svc.url),
            ("ROLLCHECK_DEPLOY_CMD", &kill),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(s["verdict"], "fail");
    // The requests in flight when the service died were cut: each of the 10 workers has one in
    // flight except for the moment between two requests. A connect that lands in the accept
    // queue just as the listener closes is reset too, one at most per worker, since the worker
    // then waits on it. Later connects were refused.
    let reset = s["outcomes"]["reset"].as_u64().unwrap();
    assert!(
        (5..=20).contains(&reset),
        "reset {reset}: {}",
        s["outcomes"]
    );
    // After its cut each worker retries every 100 ms (error_pause) until the load ends ~5 s
    // after the kill: ~500 refused connects, not the hundreds of thousands of a busy loop.
    let refused = s["outcomes"]["refused"].as_u64().unwrap();
    assert!((400..=600).contains(&refused), "refused {refused}");
    // The outage as the clients saw it: from the start of the first request cut (sent ~1 s
    // before the kill at 5 s) to the last refused connect at the end of the load (~10 s).
    let [first, last] = [0, 1].map(|i| s["requests"]["dropped_between_s"][i].as_f64().unwrap());
    assert!((3.9..5.0).contains(&first), "first dropped {first}");
    assert!((9.5..10.5).contains(&last), "last dropped {last}");
    assert_eq!(s["gate"][0]["passed"], false);
    let junit = std::fs::read_to_string(_dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<testcase classname="rollcheck.external.gate" name="max_dropped""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<failure type="threshold" message="max_dropped: "#),
        "{junit}"
    );
    assert!(junit.contains(r#"failures="1" errors="0""#), "{junit}");
}

#[test]
fn saved_runs_re_render_and_compare_without_the_service() {
    let svc = Service::start(&["--delay", "100ms"], &[]);
    let (out, dir, s) = run(
        &repo("scenarios/external.toml"),
        &[
            ("ROLLCHECK_TARGET", &svc.url),
            ("ROLLCHECK_DEPLOY_CMD", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    drop(svc);
    std::fs::remove_file(dir.join("junit.xml")).unwrap();
    // One report model: the page the run wrote from what its collector kept is the page
    // `rollcheck report` writes from the files, byte for byte.
    let written = std::fs::read(dir.join("report.html")).unwrap();
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let report = Command::new(BIN).arg("report").arg(&dir).output().unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    assert!(
        std::fs::read(dir.join("report.html")).unwrap() == written,
        "report.html re-rendered from the files differs from the run's"
    );
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("Verdict: PASS"), "{text}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains(r#"errors="0""#), "{junit}");
    assert!(
        dir.join("report.html").exists(),
        "report re-renders the HTML"
    );

    let compare_html = dir.join("compare.html");
    let compare = Command::new(BIN)
        .arg("compare")
        .args([&dir, &dir])
        .arg("--html")
        .arg(&compare_html)
        .output()
        .unwrap();
    assert_eq!(compare.status.code(), Some(0), "{}", stderr(&compare));
    let table = String::from_utf8_lossy(&compare.stdout);
    let total = s["requests"]["total"].to_string();
    let requests_row = table.lines().find(|l| l.starts_with("requests")).unwrap();
    assert_eq!(requests_row.matches(&total).count(), 2, "{table}");
    let html = std::fs::read_to_string(&compare_html).unwrap();
    assert_eq!(html.matches("<svg").count(), 4, "two charts per run");

    // A summary from another schema version fails with a message, not a missing field.
    let mut old = s.clone();
    old["schema_version"] = 99.into();
    std::fs::write(dir.join("summary.json"), old.to_string()).unwrap();
    let report = Command::new(BIN).arg("report").arg(&dir).output().unwrap();
    assert_eq!(report.status.code(), Some(64));
    assert!(
        stderr(&report).contains("schema_version 99"),
        "{}",
        stderr(&report)
    );
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let svc = Service::start(&["--delay", "1s", "--shutdown", "graceful"], &[]);
    let kill = format!("kill -TERM {}", svc.pid());
    let (out, _dir, s) = run(
        &repo("scenarios/external.toml"),
        &[
            ("ROLLCHECK_TARGET", &svc.url),
            ("ROLLCHECK_DEPLOY_CMD", &kill),
        ],
    );
    // Nothing is cut in flight; new connections after the exit are refused.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(s["outcomes"]["reset"], 0, "{}", s["outcomes"]);
    assert!(s["outcomes"]["refused"].as_u64().unwrap() > 0);
    assert!(s["outcomes"]["ok"].as_u64().unwrap() >= 50);
}

#[test]
fn open_model_corrects_for_a_stalled_service() {
    let svc = Service::start(&["--delay", "50ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("stall.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
[load]
target = "{url}"
model = "open"
rate = 20
timeout = "10s"
duration = "8s"

[[step]]
at = "2s"
action = "exec"
command = "kill -STOP {pid}"

[[step]]
at = "5s"
action = "exec"
command = "kill -CONT {pid}"

[gate]
max_dropped = 0
"#,
            url = svc.url,
            pid = svc.pid()
        ),
    )
    .unwrap();
    let (out, _dir, s) = run(&scenario, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let corrected = s["latency_ms"]["p99"].as_f64().unwrap();
    let uncorrected = s["service_latency_ms"]["p99"].as_f64().unwrap();
    eprintln!("3-s stall: corrected p99 {corrected} ms, from send {uncorrected} ms");
    assert!(corrected >= 2000.0, "corrected p99 {corrected}");
    let during = &s["phases"][1];
    assert_eq!(during["name"], "during");
    assert!(during["latency_ms"]["p99"].as_f64().unwrap() >= 2000.0);
    // Before the stall the service answered in ~50 ms (a request caught by the SIGSTOP at
    // the phase boundary may still land in its tail).
    let before = s["phases"][0]["latency_ms"]["p50"].as_f64().unwrap();
    assert!(before < 500.0, "p50 before the stall {before}");
}

#[test]
fn invalid_scenario_exits_64_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[load]\ntarget = \"http://127.0.0.1:1/\"\nconcurency = 10\n",
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let check = Command::new(BIN).arg("check").arg(&bad).output().unwrap();
    let run = Command::new(BIN)
        .arg("run")
        .arg(&bad)
        .arg("--out")
        .arg(&reports)
        .output()
        .unwrap();
    for (cmd, out) in [("check", check), ("run", run)] {
        assert_eq!(out.status.code(), Some(64), "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("bad.toml:3:1"), "{cmd}: {err}");
        assert!(err.contains("did you mean \"concurrency\""), "{cmd}: {err}");
    }
    assert!(!reports.exists(), "an invalid scenario touches nothing");
}

#[test]
fn shipped_scenarios_are_valid() {
    let out = Command::new(BIN)
        .arg("check")
        .args(
            [
                "scenarios",
                "scenarios/stack",
                "scenarios/catalogue/proxy-pool",
            ]
            .into_iter()
            .flat_map(|d| std::fs::read_dir(repo(d)).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml")),
        )
        .env("ROLLCHECK_DEPLOY_CMD", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn http_wait_http_and_sleep_steps_run_in_order() {
    let svc = Service::start(&["--delay", "50ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("steps.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
[load]
target = "{url}"
concurrency = 2
settle = "1s"

[[step]]
action = "wait_http"
url = "{url}healthz"
timeout = "5s"

[[step]]
after = "200ms"
action = "sleep"
duration = "500ms"

[[step]]
action = "http"
url = "{url}?sleep=10ms"

[[step]]
action = "http"
url = "{url}nope"
"#,
            url = svc.url
        ),
    )
    .unwrap();
    let (out, _dir, s) = run(&scenario, &[]);
    // The last step's 404 is a step failure for the gate to weigh, not an inconclusive run.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let steps = s["steps"].as_array().unwrap();
    let ok: Vec<bool> = steps.iter().map(|st| st["ok"].as_bool().unwrap()).collect();
    assert_eq!(ok, [true, true, true, false], "{steps:?}");
    let sleep = &steps[1];
    let took = sleep["end_s"].as_f64().unwrap() - sleep["start_s"].as_f64().unwrap();
    // Bounds leave room for a loaded 2-core machine (this file's tests run concurrently);
    // the instants are recorded to the µs, so an exact 500 ms can differ by float rounding
    // (0.49999999999999994 in one CI run).
    assert!((0.5 - 1e-6..0.9).contains(&took), "sleep took {took}");
    let gap = sleep["start_s"].as_f64().unwrap() - steps[0]["end_s"].as_f64().unwrap();
    assert!((0.2 - 1e-6..0.5).contains(&gap), "after = 200ms gave {gap}");
    assert!(steps[3]["detail"].as_str().unwrap().contains("404"));
}

#[test]
fn a_second_command_does_not_touch_a_lab_in_use() {
    // This test holds the lab, as a running `rollcheck run` would.
    let held = rollcheck::lab_lock::LabLock::acquire().unwrap();
    let out = tempfile::tempdir().unwrap();
    let busy = format!(
        "error: the lab is in use by another rollcheck (pid {},",
        std::process::id()
    );
    let run = Command::new(BIN)
        .arg("run")
        .arg(repo("scenarios/rolling.toml"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).starts_with(&busy), "{}", stderr(&run));
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "no report dir"
    );
    let down = Command::new(BIN).args(["lab", "down"]).output().unwrap();
    assert_eq!(down.status.code(), Some(2), "{}", stderr(&down));
    assert!(stderr(&down).starts_with(&busy), "{}", stderr(&down));
    drop(held);
    // Released with its holder: the next command gets the lab.
    drop(rollcheck::lab_lock::LabLock::acquire().unwrap());
}

/// The worst defect a gate can have is a PASS for a rollout that never ran. Validation refuses
/// a step that cannot start before a fixed `duration` ends; this one passes validation (its
/// earliest start, 2.5 s, is inside the 3 s) but starts only after the sleep before it, at
/// 3.5 s, when the load has ended. The run must say so and be inconclusive.
#[test]
fn a_step_that_never_ran_makes_the_run_inconclusive() {
    let svc = Service::start(&["--delay", "10ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("late-step.toml");
    std::fs::write(
        &scenario,
        format!(
            "[load]\ntarget = \"{}\"\nconcurrency = 2\nduration = \"3s\"\n\
             [[step]]\nat = \"0s\"\naction = \"sleep\"\nduration = \"1s\"\n\
             [[step]]\nafter = \"2500ms\"\naction = \"exec\"\ncommand = \"true\"\n",
            svc.url
        ),
    )
    .unwrap();
    let (out, _, s) = run(&scenario, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(s["verdict"], "inconclusive");
    assert_eq!(s["steps"].as_array().unwrap().len(), 1, "{}", s["steps"]);
    let problems = s["problems"].to_string();
    assert!(
        problems.contains("step 2 (exec true) never ran"),
        "{problems}"
    );
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "the load ran");
}

/// A secret from the environment, used in the target URL's userinfo, an Authorization header
/// and an exec step's command (which prints it to stderr), appears in no file of the report
/// directory and nowhere on stdout or stderr; its `${NAME}` does.
#[test]
fn a_planted_secret_reaches_no_report_file_nor_output() {
    const SECRET: &str = "planted-s3cret-7f2a9c";
    let svc = Service::start(&["--delay", "10ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("secret.toml");
    let target = svc
        .url
        .replacen("http://", "http://rc:${ROLLCHECK_TEST_SECRET}@", 1);
    std::fs::write(
        &scenario,
        format!(
            "[load]\ntarget = \"{target}\"\nconcurrency = 2\nduration = \"2s\"\n\
             headers = {{ Authorization = \"Bearer ${{ROLLCHECK_TEST_SECRET}}\" }}\n\
             [[step]]\nat = \"500ms\"\naction = \"exec\"\n\
             command = \"echo token ${{ROLLCHECK_TEST_SECRET}} >&2; exit 3\"\n"
        ),
    )
    .unwrap();
    let (out, report, s) = run(&scenario, &[("ROLLCHECK_TEST_SECRET", SECRET)]);
    assert!(
        s["requests"]["ok"].as_u64().unwrap() > 0,
        "{}",
        stderr(&out)
    );
    for (name, text) in [
        ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
        ("stderr", stderr(&out)),
    ] {
        assert!(!text.contains(SECRET), "secret on {name}:\n{text}");
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&report).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(SECRET), "secret in {}", path.display());
        files += 1;
    }
    assert!(files >= 7, "{files} files checked");
    // Shown by name, so the check above looked where the secret would have been.
    let step = &s["steps"][0];
    assert!(
        step["label"]
            .as_str()
            .unwrap()
            .contains("${ROLLCHECK_TEST_SECRET}"),
        "{step}"
    );
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .contains("token ${ROLLCHECK_TEST_SECRET}"),
        "the command's stderr, redacted: {step}"
    );
    assert!(
        s["run"]["target"].as_str().unwrap().contains("rc:***@"),
        "{}",
        s["run"]["target"]
    );
}

/// A run killed with SIGKILL mid-load leaves requests.csv and events.csv with whole rows
/// only (rows reach the disk whole, at most 250 ms late): every line parses, none is torn.
/// `rollcheck report` then recovers it: a summary of every row it left, marked recovered, and
/// inconclusive (exit 2) because the load never ended.
#[test]
fn a_killed_run_leaves_whole_rows_and_is_recovered() {
    let svc = Service::start(&["--delay", "1ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("soak.toml");
    std::fs::write(
        &scenario,
        format!(
            "[load]\ntarget = \"{}\"\nmodel = \"open\"\nrate = 4000\nkeepalive = true\nduration = \"30s\"\n",
            svc.url
        ),
    )
    .unwrap();
    let out = dir.path().join("reports");
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for file in ["requests.csv", "events.csv"] {
        let bytes = std::fs::read(run_dir.join(file)).unwrap();
        if file == "requests.csv" {
            assert!(
                bytes.len() > 10_000,
                "{} bytes of requests.csv",
                bytes.len()
            );
        }
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{file} ends in a torn row"
        );
        let mut reader = csv::Reader::from_reader(&bytes[..]);
        let width = reader.headers().unwrap().len();
        let mut rows = 0;
        for record in reader.records() {
            assert_eq!(
                record.unwrap().len(),
                width,
                "{file}: a row of the wrong width"
            );
            rows += 1;
        }
        if file == "requests.csv" {
            assert!(rows > 1000, "{rows} rows");
        }
    }
    assert!(!run_dir.join("summary.json").exists());
    let rows = csv_rows(&run_dir, "requests.csv").len() as u64;

    let report = Command::new(BIN)
        .arg("report")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(2), "{}", stderr(&report));
    let s: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&s);
    assert_eq!(s["run"]["recovered"], true);
    assert_eq!(s["verdict"], "inconclusive");
    assert_eq!(s["requests"]["total"], rows, "every row left is counted");
    assert!(
        s["problems"][0]
            .as_str()
            .unwrap()
            .contains("before the load ended"),
        "{}",
        s["problems"]
    );
    for file in ["summary.txt", "junit.xml", "report.html"] {
        let text = std::fs::read_to_string(run_dir.join(file)).unwrap();
        assert!(text.contains("recovered"), "{file} says it was recovered");
    }
}

/// A run whose record is complete (its load ended, every step ended) is recovered to the
/// same verdict and figures as the summary the run wrote itself.
#[test]
fn a_complete_record_recovers_to_the_runs_own_summary() {
    let svc = Service::start(&["--delay", "20ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("short.toml");
    std::fs::write(
        &scenario,
        format!(
            "[load]\ntarget = \"{}\"\nconcurrency = 4\nduration = \"4s\"\n\n\
             [[step]]\nat = \"1s\"\naction = \"exec\"\ncommand = \"sleep 1\"\n",
            svc.url
        ),
    )
    .unwrap();
    let (out, run_dir, live) = run(&scenario, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for file in ["summary.json", "summary.txt", "junit.xml", "report.html"] {
        std::fs::remove_file(run_dir.join(file)).unwrap();
    }
    let report = Command::new(BIN)
        .arg("report")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    let back: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&back);
    assert_eq!(back["run"]["recovered"], true);
    assert_eq!(back["problems"], live["problems"]);
    for key in [
        "verdict",
        "requests",
        "outcomes",
        "latency_ms",
        "service_latency_ms",
        "failures",
        "gate",
        "intervals",
    ] {
        assert_eq!(back[key], live[key], "{key}");
    }
    assert_eq!(back["steps"][0]["ok"], true);
    let (a, b) = (&back["steps"][0]["end_s"], &live["steps"][0]["end_s"]);
    assert!(
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 0.002,
        "{a} vs {b}"
    );
}

/// Against a service that sends none of rollcheck's headers, the summary says versions and
/// tasks could not be attributed, instead of showing an empty version mix as a finding.
#[test]
fn a_foreign_service_is_said_to_be_unattributed() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
                );
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("foreign.toml");
    std::fs::write(
        &scenario,
        format!("[load]\ntarget = \"{url}\"\nconcurrency = 2\nduration = \"1s\"\n"),
    )
    .unwrap();
    let (out, _, s) = run(&scenario, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0);
    assert_eq!(s["attribution"]["versions"], false, "{}", s["attribution"]);
    assert_eq!(s["attribution"]["tasks"], false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Not attributed: no ok response carried"),
        "{text}"
    );

    // rollcheck's own test service names both.
    let svc = Service::start(&["--delay", "10ms"], &[]);
    std::fs::write(
        &scenario,
        format!(
            "[load]\ntarget = \"{}\"\nconcurrency = 2\nduration = \"1s\"\n",
            svc.url
        ),
    )
    .unwrap();
    let (out, _, s) = run(&scenario, &[]);
    assert_eq!(s["attribution"]["versions"], true, "{}", s["attribution"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Not attributed"));
}

/// The malformed corpus (tests/malformed/, one directory per class of defect; the unit tests
/// hold each file's exact message) through the binary: `check` and `run` both exit 64 with
/// that one error line, and `run` touches nothing: the engine is unreachable, and no report
/// directory appears. Inputs no file can hold (bytes that are not UTF-8, an oversized file,
/// an empty one) are made here.
#[test]
fn malformed_scenarios_fail_before_anything_is_touched() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cases: Vec<(String, Option<String>)> = Vec::new();
    for class in std::fs::read_dir(root.join("tests/malformed")).unwrap() {
        for file in std::fs::read_dir(class.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let shown = path.strip_prefix(root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let want = text
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("# error: "))
                .map(|w| format!("error: {}", w.replace("FILE", &shown)));
            cases.push((shown, want));
        }
    }
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let made = tempfile::tempdir().unwrap();
    let mut big = String::from("[load]\ntarget = \"http://127.0.0.1:9/\"\n");
    while big.len() <= 1 << 20 {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    for (name, bytes) in [
        ("not-utf8.toml", b"[load]\ntarget = \"\xff\xfe\"\n".to_vec()),
        ("oversized.toml", big.into_bytes()),
        ("empty.toml", Vec::new()),
        ("binary.toml", (0..=255u8).cycle().take(4096).collect()),
    ] {
        let path = made.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        cases.push((path.display().to_string(), None));
    }
    let out = made.path().join("reports");
    for (file, want) in &cases {
        for cmd in ["check", "run"] {
            let mut c = Command::new(BIN);
            c.current_dir(root)
                .arg(cmd)
                .arg(file)
                .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
                .env("TAG", "2")
                .env("PORT", "9090")
                .env_remove("NOPE");
            if cmd == "run" {
                c.arg("--out").arg(&out);
            }
            let o = c.output().unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(64), "{file}: {cmd}: {err}");
            assert!(!err.contains("panicked"), "{file}: {cmd}: {err}");
            let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(lines.len(), 1, "{file}: {cmd}: one error line: {err}");
            match want {
                Some(w) => assert_eq!(lines[0], w, "{file}: {cmd}"),
                None => assert!(
                    lines[0].starts_with(&format!("error: {file}")),
                    "{file}: {cmd}: names the file: {err}"
                ),
            }
        }
        assert!(!out.exists(), "{file}: run wrote a report directory");
    }
}

/// `[load] ready` holds the load back until the service answers as the scenario says, and a
/// service that never does makes the run inconclusive before any request, saying what it
/// waited for.
#[test]
fn the_load_waits_for_ready_and_a_service_never_ready_is_inconclusive() {
    let svc = Service::start(&["--delay", "10ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("ready.toml");
    let write = |ready: &str| {
        std::fs::write(
            &scenario,
            format!(
                "[load]\ntarget = \"{}\"\nconcurrency = 2\nduration = \"2s\"\nready = {ready}\n",
                svc.url
            ),
        )
        .unwrap()
    };
    write(&format!(
        "{{ url = \"{}healthz\", status = 200, stable = \"500ms\" }}",
        svc.url
    ));
    let (out, _, s) = run(&scenario, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0);

    write("{ url = \"http://127.0.0.1:9/\", timeout = \"1s\" }");
    let reports = dir.path().join("reports");
    let o = Command::new(BIN)
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&reports)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("http://127.0.0.1:9/ did not answer with a status below 500"),
        "{err}"
    );
    assert!(
        !reports.exists(),
        "no report directory for a run that never started"
    );
}
