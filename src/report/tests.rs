//! Tests of the HTML report against synthetic run directories (never /tmp fixtures).

use super::run_data::{ReportError, RunData};
use super::synthetic::{Synthetic, write_run_dir};
use super::{html, render_compare, write_report_html};
use std::time::Duration;

const XSS: &str = "<script>alert(1)</script>";

fn run_dir(tag: &str, requests: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run_dir(
        dir.path(),
        &Synthetic {
            requests,
            duration: Duration::from_secs(30),
            tag,
        },
    )
    .expect("synthetic run");
    dir
}

#[test]
fn loads_what_the_history_wrote() {
    let dir = run_dir("", 3000);
    let data = RunData::load(dir.path()).unwrap();
    assert_eq!(data.points.len(), 3000, "a 30-s run keeps every request");
    assert_eq!(data.summary.requests.total, 3000);
    let failed = data
        .points
        .iter()
        .filter(|r| r.outcome != crate::outcome::Outcome::Ok)
        .count() as u64;
    assert_eq!(
        failed,
        data.summary.requests.total - data.summary.requests.ok
    );
    assert!(failed > 0, "the synthetic update drops requests");
    assert!(data.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(data.scenario.contains("synthetic"));
}

#[test]
fn text_from_service_engine_and_scenario_is_escaped() {
    let dir = run_dir(XSS, 2000);
    let data = RunData::load(dir.path()).unwrap();
    assert!(data.summary.tasks.iter().any(|t| t.task.contains(XSS)));
    assert!(data.summary.versions.keys().any(|v| v.contains(XSS)));
    let mut out = Vec::new();
    html::render(&data, &mut out).unwrap();
    let page = String::from_utf8(out).unwrap();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !page.to_lowercase().contains("<script"),
        "raw <script in report"
    );

    let mut out = Vec::new();
    render_compare(&[data.clone(), data], &mut out).unwrap();
    assert!(
        !String::from_utf8(out)
            .unwrap()
            .to_lowercase()
            .contains("<script")
    );
}

#[test]
fn report_is_self_contained_and_holds_every_section() {
    let dir = run_dir("", 5000);
    write_report_html(dir.path()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for needle in [
        "FAIL",
        "max_dropped",
        "Outcomes per interval",
        "Version mix",
        "Connect time",
        "Latency distribution",
        "Failed requests",
        "http_5xx",
        "Phases",
        "Tasks that served requests",
        "Environment",
        "<details>",
    ] {
        assert!(page.contains(needle), "missing {needle:?}");
    }
    assert_eq!(page.matches("<svg").count(), 5);
    // Nothing is fetched: no script, no external reference of any kind.
    for fetch in ["<script", "src=", "href=", "url(", "@import", "<link"] {
        assert!(!page.contains(fetch), "{fetch}");
    }
}

#[test]
fn failures_are_all_drawn() {
    let dir = run_dir("", 4000);
    let data = RunData::load(dir.path()).unwrap();
    let svg =
        super::charts::latency::render(&data, super::charts::TimeAxis::of_run(&data)).unwrap();
    let red = super::charts::hex(super::charts::outcome_color(
        crate::outcome::Outcome::Http5xx,
    ));
    let path = svg
        .lines()
        .find(|l| l.starts_with("<path") && l.contains(&red))
        .expect("a path of 5xx points");
    assert!(path.matches('M').count() > 10);
}

#[test]
fn other_schema_versions_fail_with_the_version_named() {
    let dir = run_dir("", 100);
    let p = dir.path().join("summary.json");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replacen("\"schema_version\": 1", "\"schema_version\": 7", 1),
    )
    .unwrap();
    let e = RunData::load(dir.path()).unwrap_err();
    assert!(matches!(e, ReportError::Schema { found: 7, .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("schema_version 7") && msg.contains("reads schema_version 1"),
        "{msg}"
    );
}

#[test]
fn compare_aligns_runs_on_their_first_step() {
    let a = RunData::load(run_dir("", 1000).path()).unwrap();
    let b = RunData::load(run_dir("", 1000).path()).unwrap();
    let mut out = Vec::new();
    render_compare(&[a, b], &mut out).unwrap();
    let page = String::from_utf8(out).unwrap();
    assert!(page.contains("seconds since the first step started"));
    assert!(page.contains("convergence"));
    assert_eq!(page.matches("<svg").count(), 4);
}

/// Every key path summary.json can hold, with maps whose keys are data (versions, nodes,
/// errors) as `*` and array elements as `[]`. Scripts and dashboards read these paths: a
/// change here is a change of the published format. Adding a path is fine (extend the list);
/// removing one or changing what it means must also bump `SCHEMA_VERSION`.
const SUMMARY_KEYS: &str = "
$schema
attribution
attribution.tasks
attribution.versions
cluster
cluster.control_plane_unavailable
cluster.control_plane_unavailable[].end_s
cluster.control_plane_unavailable[].start_s
cluster.control_plane_unavailable_s
cluster.lanes
cluster.lanes[].end_s
cluster.lanes[].node
cluster.lanes[].start_s
cluster.lanes[].state
cluster.requests_per_node
cluster.requests_per_node.*
cluster.reschedules
cluster.reschedules[].at_s
cluster.reschedules[].first_request_after_s
cluster.reschedules[].node
cluster.reschedules[].running_elsewhere_after_s
cluster.reschedules[].step
cluster.reschedules[].tasks_lost
cluster.tasks_rejected
cluster.tasks_rejected.*
containers
containers.lanes
containers.lanes[].container
containers.lanes[].end_s
containers.lanes[].start_s
containers.lanes[].state
containers.upstream
containers.upstream[].end_s
containers.upstream[].old_workers
containers.upstream[].old_workers_exited_after_s
containers.upstream[].servers
containers.upstream[].start_s
containers.upstream[].switch
dropped_classes
environment
environment.*
failures
failures[].class
failures[].count
failures[].error
failures[].error_count
failures[].first_start_s
failures[].last_start_s
gate
gate[].bound
gate[].limit
gate[].passed
gate[].text
gate[].threshold
gate[].unit
gate[].value
health_probes
health_probes.containers
health_probes.containers[].failed
health_probes.containers[].max_ms
health_probes.containers[].mean_ms
health_probes.containers[].name
health_probes.containers[].on_every_request
health_probes.containers[].probes
health_probes.in_probe_ms
health_probes.in_probe_ms.count
health_probes.in_probe_ms.max
health_probes.in_probe_ms.mean
health_probes.in_probe_ms.p50
health_probes.in_probe_ms.p90
health_probes.in_probe_ms.p99
health_probes.in_probe_ms.p999
health_probes.left_out_during_steps
health_probes.left_out_slow_connect
health_probes.outside_ms
health_probes.outside_ms.count
health_probes.outside_ms.max
health_probes.outside_ms.mean
health_probes.outside_ms.p50
health_probes.outside_ms.p90
health_probes.outside_ms.p99
health_probes.outside_ms.p999
health_probes.p50_ratio
health_probes.p99_ratio
health_probes.probes
health_probes.probes[].container
health_probes.probes[].duration_ms
health_probes.probes[].end_s
health_probes.probes[].exit_code
health_probes.probes[].start_s
health_probes.spike_factor_k
health_probes.spikes
health_probes.spikes[].baseline_p99_ms
health_probes.spikes[].container
health_probes.spikes[].end_s
health_probes.spikes[].p99_ms
health_probes.spikes[].requests
health_probes.spikes[].start_s
interval_ms
intervals
intervals[].dropped
intervals[].outcomes
intervals[].outcomes.connect_timeout
intervals[].outcomes.http_4xx
intervals[].outcomes.http_5xx
intervals[].outcomes.late
intervals[].outcomes.ok
intervals[].outcomes.refused
intervals[].outcomes.reset
intervals[].outcomes.timeout
intervals[].outcomes.tls_handshake
intervals[].p50_ms
intervals[].p99_ms
intervals[].start_s
intervals[].versions
intervals[].versions.*
latency_curve
latency_ms
latency_ms.count
latency_ms.max
latency_ms.mean
latency_ms.p50
latency_ms.p90
latency_ms.p99
latency_ms.p999
outcomes
outcomes.connect_timeout
outcomes.http_4xx
outcomes.http_5xx
outcomes.late
outcomes.ok
outcomes.refused
outcomes.reset
outcomes.timeout
outcomes.tls_handshake
phases
phases[].dropped
phases[].end_s
phases[].latency_curve
phases[].latency_ms
phases[].latency_ms.count
phases[].latency_ms.max
phases[].latency_ms.mean
phases[].latency_ms.p50
phases[].latency_ms.p90
phases[].latency_ms.p99
phases[].latency_ms.p999
phases[].name
phases[].outcomes
phases[].outcomes.connect_timeout
phases[].outcomes.http_4xx
phases[].outcomes.http_5xx
phases[].outcomes.late
phases[].outcomes.ok
phases[].outcomes.refused
phases[].outcomes.reset
phases[].outcomes.timeout
phases[].outcomes.tls_handshake
phases[].requests
phases[].start_s
problems
requests
requests.dropped
requests.dropped_between_s
requests.error_rate
requests.late
requests.ok
requests.total
requests_by_entry
requests_by_entry[].dropped
requests_by_entry[].latency_ms
requests_by_entry[].latency_ms.count
requests_by_entry[].latency_ms.max
requests_by_entry[].latency_ms.mean
requests_by_entry[].latency_ms.p50
requests_by_entry[].latency_ms.p90
requests_by_entry[].latency_ms.p99
requests_by_entry[].latency_ms.p999
requests_by_entry[].name
requests_by_entry[].ok
requests_by_entry[].outcomes
requests_by_entry[].outcomes.connect_timeout
requests_by_entry[].outcomes.http_4xx
requests_by_entry[].outcomes.http_5xx
requests_by_entry[].outcomes.late
requests_by_entry[].outcomes.ok
requests_by_entry[].outcomes.refused
requests_by_entry[].outcomes.reset
requests_by_entry[].outcomes.timeout
requests_by_entry[].outcomes.tls_handshake
requests_by_entry[].requests
rollcheck_version
run
run.duration_s
run.id
run.interrupted
run.keepalive
run.model
run.recovered
run.started_utc
run.target
scenario
scenario.file
scenario.slug
scenario.title
schema_version
server_truth
server_truth.answered
server_truth.answered_but_client_failed
server_truth.available
server_truth.cut
server_truth.mismatch
server_truth.never_arrived
server_truth.received
server_truth.source
service_latency_ms
service_latency_ms.count
service_latency_ms.max
service_latency_ms.mean
service_latency_ms.p50
service_latency_ms.p90
service_latency_ms.p99
service_latency_ms.p999
steps
steps[].action
steps[].converges
steps[].detail
steps[].end_s
steps[].expected_failure
steps[].index
steps[].label
steps[].ok
steps[].start_s
tasks
tasks[].first_done_s
tasks[].first_sent_s
tasks[].last_done_s
tasks[].ok
tasks[].task
tasks[].versions
verdict
tls_handshake_ms
tls_handshake_ms.count
tls_handshake_ms.max
tls_handshake_ms.mean
tls_handshake_ms.p50
tls_handshake_ms.p90
tls_handshake_ms.p99
tls_handshake_ms.p999
versions
versions.*
";

/// The key paths of a JSON value, as [`SUMMARY_KEYS`] writes them.
fn key_paths(v: &serde_json::Value, path: &str, dynamic: &[&str], out: &mut Vec<String>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let key = if dynamic.contains(&path) { "*" } else { key };
                let p = join(key);
                out.push(p.clone());
                key_paths(value, &p, dynamic, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{path}[]"), dynamic, out);
            }
        }
        _ => {}
    }
}

#[test]
fn summary_json_keeps_its_key_paths() {
    use super::{
        ClusterOut, HealthProbes, LaneOut, ProbeOut, ProbedContainer, RescheduleOut, SpanOut,
        SpikeOut, Summary,
    };
    let dir = run_dir("", 3000);
    let mut summary = Summary::load(dir.path()).unwrap();
    // What the synthetic run has no data for, filled in so every optional path shows.
    summary.requests.dropped_between_s = Some([1.0, 2.0]);
    summary.health_probes = Some(HealthProbes {
        containers: vec![ProbedContainer {
            name: "app.1".into(),
            on_every_request: false,
            probes: 1,
            failed: 0,
            mean_ms: 100.0,
            max_ms: 100.0,
        }],
        probes: vec![ProbeOut {
            container: "app.1".into(),
            start_s: 1.0,
            end_s: 1.1,
            duration_ms: 100.0,
            exit_code: Some(0),
        }],
        in_probe_ms: summary.latency_ms,
        outside_ms: summary.latency_ms,
        p50_ratio: Some(1.0),
        p99_ratio: Some(3.0),
        spike_factor_k: 2.0,
        spikes: vec![SpikeOut {
            container: "app.1".into(),
            start_s: 1.0,
            end_s: 1.1,
            requests: 3,
            p99_ms: 3000.0,
            baseline_p99_ms: 1000.0,
        }],
        left_out_during_steps: 0,
        left_out_slow_connect: 0,
    });
    summary.tls_handshake_ms = Some(summary.service_latency_ms);
    summary.server_truth = Some(crate::analysis::truth::ServerTruth::unavailable("a test"));
    summary.requests_by_entry = vec![crate::report::EntryOut {
        name: "GET /".into(),
        requests: 3,
        ok: 2,
        dropped: 1,
        outcomes: summary.outcomes,
        latency_ms: summary.latency_ms,
    }];
    summary.cluster = Some(ClusterOut {
        lanes: vec![LaneOut {
            node: "worker-1".into(),
            state: "down".into(),
            start_s: 1.0,
            end_s: None,
        }],
        control_plane_unavailable: vec![SpanOut {
            start_s: 1.0,
            end_s: Some(2.0),
        }],
        control_plane_unavailable_s: 1.0,
        reschedules: vec![RescheduleOut {
            step: 1,
            node: "worker-1".into(),
            at_s: 1.0,
            tasks_lost: 2,
            running_elsewhere_after_s: Some(5.0),
            first_request_after_s: None,
        }],
        requests_per_node: [("worker-1".to_string(), 10)].into(),
        tasks_rejected: [("Pool overlaps".to_string(), 1)].into(),
    });
    summary.containers = Some(crate::report::ContainersOut {
        lanes: vec![crate::report::ContainerLaneOut {
            container: "app-v1".into(),
            state: "healthy".into(),
            start_s: 0.0,
            end_s: Some(6.1),
        }],
        upstream: vec![crate::report::UpstreamOut {
            start_s: 5.5,
            end_s: None,
            servers: vec!["app-v2".into()],
            switch: Some("reload".into()),
            old_workers: Some(2),
            old_workers_exited_after_s: Some(0.6),
        }],
    });
    let value = serde_json::to_value(&summary).unwrap();
    // With every optional part filled in, it is what the published schema describes.
    let schema: serde_json::Value = serde_json::from_str(&super::summary_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let dynamic = [
        "versions",
        "environment",
        "intervals[].versions",
        "cluster.requests_per_node",
        "cluster.tasks_rejected",
    ];
    let mut got = Vec::new();
    key_paths(&value, "", &dynamic, &mut got);
    got.sort();
    got.dedup();
    let want: Vec<&str> = SUMMARY_KEYS.split_whitespace().collect();
    let added: Vec<&String> = got.iter().filter(|p| !want.contains(&p.as_str())).collect();
    let removed: Vec<&&str> = want
        .iter()
        .filter(|p| !got.contains(&p.to_string()))
        .collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "summary.json's key paths changed\n  added: {added:?}\n  removed: {removed:?}\n\
         adding is fine (extend SUMMARY_KEYS); removing a path or changing its meaning also \
         bumps SCHEMA_VERSION"
    );
}

/// summary.schema.json (shipped at the repository's root) is the schema of the report model
/// as it is: a field added, renamed or retyped without regenerating it fails here.
#[test]
fn the_shipped_schema_is_the_models() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("summary.schema.json");
    let generated = super::summary_schema();
    if std::env::var_os("ROLLCHECK_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "summary.schema.json is not the report model's schema: regenerate it with \
         `ROLLCHECK_BLESS=1 cargo test --lib the_shipped_schema_is_the_models` and commit it \
         (a field that changed meaning or went away also bumps SCHEMA_VERSION)"
    );
    // It says what it is.
    let schema: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    assert_eq!(schema["title"], "rollcheck summary.json");
    assert!(schema["properties"]["verdict"].is_object());
}

/// The schema is no rubber stamp: what the model cannot write, it refuses.
#[test]
fn the_schema_refuses_what_the_model_cannot_write() {
    let schema: serde_json::Value = serde_json::from_str(&super::summary_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let dir = run_dir("", 100);
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert!(validator.is_valid(&good));
    for (path, bad) in [
        ("/verdict", serde_json::json!("maybe")),
        ("/requests/dropped", serde_json::json!(-1)),
        ("/outcomes/refused", serde_json::json!("3")),
        ("/latency_ms/p99", serde_json::json!("1s")),
    ] {
        let mut v = good.clone();
        *v.pointer_mut(path).unwrap() = bad;
        assert!(!validator.is_valid(&v), "{path} accepted");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("requests");
    assert!(!validator.is_valid(&missing));
}

#[test]
fn generators_get_a_table_with_their_nodes_escaped() {
    let dir = run_dir("", 1000);
    let mut data = RunData::load(dir.path()).unwrap();
    data.summary.generators = Some(super::GeneratorsOut {
        count: 2,
        placement: vec!["node.role == worker".into()],
        agents: vec![
            super::AgentOut {
                shard: 0,
                node: "worker-1".into(),
                requests: 600,
                failed: 0,
                reported: Some(600),
                clock_offset_ms: 0.4,
                clock_uncertainty_ms: 21.0,
                lost_at_s: None,
                cpu_s: Some(4.5),
                peak_rss_mb: Some(21.0),
            },
            super::AgentOut {
                shard: 1,
                node: XSS.into(),
                requests: 400,
                failed: 3,
                reported: None,
                clock_offset_ms: -1.5,
                clock_uncertainty_ms: 30.0,
                lost_at_s: Some(9.1),
                cpu_s: None,
                peak_rss_mb: None,
            },
        ],
        timing_error_bound_ms: 31.5,
        histograms: super::MergedHistograms {
            count: 997,
            p50_ms: 1002.5,
            p99_ms: 1007.6,
        },
        coordinator: super::Coordinator {
            cpu_s: 0.3,
            peak_rss_mb: 40.0,
        },
    });
    let mut out = Vec::new();
    html::render(&data, &mut out).unwrap();
    let page = String::from_utf8(out).unwrap();
    assert!(page.contains("<h2>Generators</h2>"));
    assert!(page.contains("9.1 s"), "the lost agent's time");
    assert!(page.contains("±31.50 ms"));
    assert!(page.contains("4.50 s"), "the agent's CPU");
    assert!(page.contains("0.30 s"), "the coordinator's CPU");
    assert!(!page.to_lowercase().contains("<script"));
    let line = data.summary.generators.as_ref().unwrap().line();
    assert!(line.contains("lost at 9.1 s"), "{line}");
}
