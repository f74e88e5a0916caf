//! The failure-mode catalogue, run for real through `rollcheck catalogue` on the local engine:
//! every bad twin fails with the class (or threshold) its manifest names and every fixed twin
//! passes — the command judges each pair; this test reads its catalogue.json, adds what the
//! modes' headers promise beyond that, and checks that each run left nothing behind. Bad
//! input is refused before anything runs.

mod common;

use common::run::*;
use common::{BIN, labelled_at};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The cluster lab's first manager, once the catalogue's cluster mode has brought the lab up.
const MANAGER_1: &str = "unix:///run/rollcheck-lab/manager-1/docker.sock";
const MANAGER_1_SOCKET: &str = "/run/rollcheck-lab/manager-1/docker.sock";

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/catalogue/catalogue.toml")
}

/// A twin's run, read back from its report directory.
fn twin(output: &std::process::Output, t: &Value) -> Run {
    let dir = PathBuf::from(
        t["report"]
            .as_str()
            .unwrap_or_else(|| panic!("no report: {t}")),
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&summary);
    Run {
        output: output.clone(),
        dir,
        summary,
    }
}

#[test]
fn every_bad_twin_fails_its_way_and_every_fixed_twin_passes() {
    let _engine = lock();
    let out = tempfile::tempdir().unwrap().keep();
    let started = Instant::now();
    let output = Command::new(BIN)
        .arg("catalogue")
        .arg(manifest())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    eprintln!(
        "catalogue: exit {:?} in {:.0?}\n{stderr}\n{stdout}",
        output.status.code(),
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("catalogue.json")).unwrap()).unwrap();
    let modes = results["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 10, "{results}");
    let mut runs = std::collections::BTreeMap::new();
    for m in modes {
        let id = m["id"].as_str().unwrap().to_string();
        if id == "proxy-pool" {
            // Written down with its reason and the measurement behind it, not run.
            let reason = m["not_reproducible"]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("proxy-pool.toml"), "{m}");
            continue;
        }
        assert_eq!(m["measured"]["as_expected"], true, "{m}");
        let bad = twin(&output, &m["measured"]["bad"]);
        let fixed = twin(&output, &m["measured"]["fixed"]);
        // The judgement rests on verdicts the runs wrote themselves.
        assert_eq!(bad.summary["verdict"], "fail", "{id}");
        assert_eq!(fixed.summary["verdict"], "pass", "{id}");
        for r in [&bad, &fixed] {
            // The rollout step really ran, and converged, or failed as its scenario expects.
            let step = &r.summary["steps"][0];
            assert_ne!(step["ok"], step["expected_failure"], "{id}: {step}");
            assert_cleaned_up(r);
            // A cluster mode's objects live on the lab's managers, not on this engine.
            if Path::new(MANAGER_1_SOCKET).exists() {
                let label = format!("rollcheck.run={}", r.run_id());
                assert_eq!(rt().block_on(labelled_at(MANAGER_1, label)), 0, "{id}");
            }
        }
        runs.insert(id, (bad, fixed));
    }

    // keepalive-l4: every reset the client saw is a request a task received and cut.
    let (bad, _) = &runs["keepalive-l4"];
    let truth = &bad.summary["server_truth"];
    assert_eq!(truth["cut"].as_u64(), Some(bad.outcome("reset")), "{truth}");
    assert_eq!(
        (&truth["never_arrived"], &truth["mismatch"]),
        (&Value::from(0), &Value::from(0)),
        "{truth}"
    );

    // sigterm-ignored: the long exports were cut, by the SIGKILL, and only they dropped.
    let (bad, _) = &runs["sigterm-ignored"];
    let entries = bad.summary["requests_by_entry"].as_array().unwrap();
    let by = |name: &str| entries.iter().find(|e| e["name"] == name).unwrap().clone();
    assert_eq!(by("page")["dropped"], 0, "{entries:?}");
    // Every dropped export reached a task. The server may count a few more cut than the
    // client lost: a task killed by SIGKILL never writes the end of its truth log, so what it
    // answered after its last flush looks cut (and mismatched): 15 cut, 13 dropped, mismatch 2
    // in one CI run here.
    let truth = &bad.summary["server_truth"];
    assert_eq!(truth["never_arrived"], 0, "{truth}");
    let (cut, dropped) = (truth["cut"].as_u64(), by("export")["dropped"].as_u64());
    assert!(cut >= dropped, "{truth}");

    // slow-start: the edge's 502s never reached a task (the new one was not listening yet).
    let (bad, _) = &runs["slow-start"];
    let truth = &bad.summary["server_truth"];
    assert_eq!(
        truth["never_arrived"], bad.summary["requests"]["dropped"],
        "{truth}"
    );

    // host-port-start-first: nothing dropped, nothing deployed: no v2 response at all.
    let (bad, fixed) = &runs["host-port-start-first"];
    assert_eq!(bad.summary["requests"]["dropped"], 0);
    assert!(
        bad.summary["versions"].get("2").is_none(),
        "{}",
        bad.summary["versions"]
    );
    assert!(fixed.summary["versions"]["2"].as_u64().unwrap() > 0);

    // static-proxy: nginx kept sending to addresses that were gone, and never reached v2.
    let (bad, fixed) = &runs["static-proxy"];
    let dropped = bad.summary["requests"]["dropped"].as_u64().unwrap();
    assert!(dropped > 100, "{}", bad.context());
    assert_eq!(bad.outcome("http_5xx"), dropped);
    assert!(
        bad.summary["versions"].get("2").is_none(),
        "{}",
        bad.summary["versions"]
    );
    assert!(fixed.summary["versions"]["2"].as_u64().unwrap() > 0);

    // slow-healthcheck: nothing dropped, the rollout only crawled.
    let (bad, fixed) = &runs["slow-healthcheck"];
    assert_eq!(bad.summary["requests"]["dropped"], 0);
    let converge = |r: &Run| {
        r.summary["gate"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["threshold"] == "max_converge")
            .and_then(|c| c["value"].as_f64())
            .unwrap()
    };
    assert!(converge(bad) > 30_000.0 && converge(fixed) < 30_000.0);

    // single-replica-drain: the drain that hit the replica left no task at all; the nodes'
    // nginx answered 502 without reaching one. With three replicas the same drains drop none.
    let (bad, fixed) = &runs["single-replica-drain"];
    let dropped = bad.summary["requests"]["dropped"].as_u64().unwrap();
    assert_eq!(bad.outcome("http_5xx"), dropped, "{}", bad.context());
    let truth = &bad.summary["server_truth"];
    assert_eq!(truth["never_arrived"].as_u64(), Some(dropped), "{truth}");
    let steps = fixed.summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    assert!(steps.iter().all(|s| s["ok"] == true), "{steps:?}");

    // The tables: a row per twin, the page with both charts of each pair.
    let md = std::fs::read_to_string(out.join("catalogue.md")).unwrap();
    assert_eq!(md.matches("| bad (expected: fails with").count(), 9, "{md}");
    assert_eq!(md.matches("| fixed: ").count(), 9, "{md}");
    assert!(md.contains("**proxy-pool**"), "{md}");
    assert!(md.contains("Docker engine "), "{md}");
    let html = std::fs::read_to_string(out.join("catalogue.html")).unwrap();
    assert!(html.matches("<svg").count() >= 36, "2 charts per run");
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bad_manifest = dir.path().join("catalogue.toml");
    std::fs::write(
        &bad_manifest,
        "[[mode]]\nid = \"x\"\ntitle = \"t\"\nfix = \"f\"\nfails_with = \"http_5xx\"\n",
    )
    .unwrap();
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, "# no catalogue section\n").unwrap();
    let manifest = manifest();
    let cases: [(Vec<&std::ffi::OsStr>, &str); 3] = [
        // A pair whose files do not exist.
        (
            vec![bad_manifest.as_os_str()],
            "x-bad.toml: cannot read scenario",
        ),
        (
            vec![manifest.as_os_str(), "--only".as_ref(), "nope".as_ref()],
            "--only nope: no such mode",
        ),
        (
            vec![
                manifest.as_os_str(),
                "--readme".as_ref(),
                readme.as_os_str(),
            ],
            "no catalogue section",
        ),
    ];
    for (args, want) in cases {
        let out = dir.path().join("out");
        let output = Command::new(BIN)
            .arg("catalogue")
            .args(&args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}
