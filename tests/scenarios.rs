//! The shipped Swarm scenarios, run for real through `rollcheck run` on the local engine:
//! each must reach the verdict its header promises, with the outcome class it names, and
//! leave nothing labelled behind — also when interrupted.

mod common;

use common::BIN;
use common::run::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

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

/// summary.json `server_truth`, which must have been read.
fn truth(r: &Run) -> Value {
    let t = r.summary["server_truth"].clone();
    assert_eq!(t["available"], true, "{t}");
    t
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
    // The servers' own count agrees: every request received and answered, none cut.
    let truth = truth(&r);
    let total = &r.summary["requests"]["total"];
    assert_eq!(
        (&truth["received"], &truth["answered"]),
        (total, total),
        "{truth}"
    );
    assert_eq!(
        (&truth["cut"], &truth["mismatch"]),
        (&Value::from(0), &Value::from(0)),
        "{truth}"
    );
    // Requests carry the task that served them (Swarm's {{.Task.Name}} in TASK).
    let requests = std::fs::read_to_string(r.dir.join("requests.csv")).unwrap();
    assert!(
        requests.contains(",app.1."),
        "no task names in requests.csv"
    );
    assert_report_renders(&r);
    assert_cleaned_up(&r);
}

/// TLS at the edge: the rolling update drops nothing over https, with a full handshake per
/// request, each timed (summary, text, requests.csv).
#[test]
fn https_edge_rolling_update_drops_nothing_and_times_every_handshake() {
    let _engine = lock();
    let r = run(&scenario("https"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    assert_eq!(r.summary["requests"]["dropped"], 0);
    assert_eq!(r.summary["steps"][0]["ok"], true);
    assert!(r.summary["versions"]["2"].as_u64().unwrap() > 0);
    let total = r.summary["requests"]["total"].as_u64().unwrap();
    assert_eq!(r.summary["tls_handshake_ms"]["count"].as_u64(), Some(total));
    assert!(r.summary["tls_handshake_ms"]["p99"].as_f64().unwrap() > 0.0);
    let text = std::fs::read_to_string(r.dir.join("summary.txt")).unwrap();
    assert!(text.contains("\n  TLS "), "{text}");
    assert_cleaned_up(&r);
}

/// The rolling update under a 3:1 GET/POST mix: both entries served throughout, figures per
/// entry, nothing dropped in either.
#[test]
fn a_request_mix_rolls_without_drops_and_reports_each_entry() {
    let _engine = lock();
    let r = run(&scenario("mix"));
    assert_eq!(r.code(), Some(0), "{}", r.context());
    let entries = r.summary["requests_by_entry"].as_array().unwrap();
    let by = |name: &str| entries.iter().find(|e| e["name"] == name).unwrap();
    let (views, orders) = (by("page view"), by("place order"));
    let n = |e: &Value, k: &str| e[k].as_u64().unwrap();
    assert!(n(orders, "requests") > 20, "{orders}");
    // Three views per order in every cycle of four requests.
    let cycles = r.summary["requests"]["total"].as_u64().unwrap() / 4;
    assert!(
        (3 * cycles..=3 * cycles + 3).contains(&n(views, "requests")),
        "{entries:?}"
    );
    for e in [views, orders] {
        assert_eq!((n(e, "dropped"), n(e, "ok")), (0, n(e, "requests")), "{e}");
    }
    assert_cleaned_up(&r);
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
    // The edge answered those 5xx itself: no task ever saw one of them.
    let truth = truth(&r);
    assert_eq!(
        truth["never_arrived"], r.summary["requests"]["dropped"],
        "{truth}"
    );
    assert_eq!(truth["answered"], r.summary["requests"]["ok"], "{truth}");
    assert_eq!(truth["mismatch"], 0, "{truth}");
    assert_report_renders(&r);
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
    // Interrupt once load is flowing and the update has started.
    let r = interrupted(&scenario("rolling"), "step_start", Duration::from_secs(3));
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
