//! A weighted `[[load.request]]` mix through a whole `rollcheck run` against the real test
//! service on loopback: every request is the entry the weights say, sent with its method
//! and body, and summary, text, HTML and requests.csv give figures per entry.

mod common;

use common::run::run;
use common::{BIN, Service};
use serde_json::Value;
use std::process::Command;

#[test]
fn a_weighted_mix_is_sent_as_weighted_and_reported_per_entry() {
    let svc = Service::start(&["--delay", "20ms"], &[("VERSION", "1")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.json"), br#"{"sku": 7, "qty": 2}"#).unwrap();
    let scenario = dir.path().join("mix.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"title = "mix"
[load]
target = "http://{}"
concurrency = 4
duration = "2s"

[[load.request]]
name = "browse"
path = "/"
weight = 6

[[load.request]]
name = "order"
method = "POST"
path = "/"
headers = {{ "content-type" = "application/json" }}
body_file = "order.json"
weight = 2

# The test service answers DELETE / with 405: a class of its own entry only.
[[load.request]]
method = "DELETE"
path = "/"
weight = 1

[gate]
dropped = ["http_5xx", "reset", "refused", "timeout"]
"#,
            svc.addr
        ),
    )
    .unwrap();
    let r = run(&scenario);
    assert_eq!(r.code(), Some(0), "{}", r.context());
    let (s, report) = (&r.summary, &r.dir);
    let entries = s["requests_by_entry"]
        .as_array()
        .expect("requests_by_entry");
    let by = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no entry {name} in {entries:?}"))
    };
    let n = |e: &Value, k: &str| e[k].as_u64().unwrap();
    let (browse, order, delete) = (by("browse"), by("order"), by("DELETE /"));
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!(total > 100, "{total}");
    assert_eq!(
        n(browse, "requests") + n(order, "requests") + n(delete, "requests"),
        total
    );
    // 6 : 2 : 1, exact in every cycle of 9 requests: off by less than one cycle.
    let cycles = total / 9;
    for (e, w) in [(browse, 6), (order, 2), (delete, 1)] {
        let got = n(e, "requests");
        assert!(
            got >= w * cycles && got <= w * (cycles + 1),
            "{got} for weight {w} in {total}"
        );
    }
    assert_eq!(n(browse, "ok"), n(browse, "requests"));
    assert_eq!(
        n(order, "ok"),
        n(order, "requests"),
        "POST / with a body is answered"
    );
    assert_eq!(
        delete["outcomes"]["http_4xx"].as_u64(),
        Some(n(delete, "requests"))
    );
    assert!(browse["latency_ms"]["p50"].as_f64().unwrap() >= 20.0);
    // Without a lab rollcheck cannot read the service's logs, and says so.
    assert_eq!(s["server_truth"]["available"], false);
    assert!(
        s["server_truth"]["source"]
            .as_str()
            .unwrap()
            .contains("no lab")
    );

    // requests.csv names each row's entry; text and HTML have the table.
    let mut rows = csv::Reader::from_path(report.join("requests.csv")).unwrap();
    let at = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "request")
        .unwrap();
    let names: std::collections::BTreeSet<String> =
        rows.records().map(|r| r.unwrap()[at].to_string()).collect();
    assert_eq!(
        names,
        ["DELETE /", "browse", "order"].map(String::from).into()
    );
    let text = std::fs::read_to_string(report.join("summary.txt")).unwrap();
    assert!(
        text.contains("Per request entry") && text.contains("order"),
        "{text}"
    );
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("<h2>Per request entry</h2>"));

    // `rollcheck report` re-renders the same per-entry figures from the saved files.
    std::fs::remove_file(report.join("summary.json")).unwrap();
    let o = Command::new(BIN)
        .arg("report")
        .arg(report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again: Value =
        serde_json::from_slice(&std::fs::read(report.join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&again);
    assert_eq!(again["requests_by_entry"], s["requests_by_entry"]);
}
