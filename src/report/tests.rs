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
    assert_eq!(data.requests.len(), 3000);
    assert_eq!(data.summary.requests.total, 3000);
    let failed = data.requests.iter().filter(|r| !r.error.is_empty()).count() as u64;
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
    assert!(data.requests.iter().any(|r| r.task.contains(XSS)));
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
