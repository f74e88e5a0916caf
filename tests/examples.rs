//! The CI examples in ci/examples run as written: their YAML parses and calls the shared
//! script the way the README says, and that script — the examples' shell steps — runs here
//! with this build of rollcheck: a docker-lab scenario (as on a hosted runner), the staging
//! example with its secrets (which must not reach the artifacts), and a failing gate whose
//! exit code the job must see.

mod common;

use common::{BIN, Service};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("ci/examples").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `run:` lines of a GitHub Actions workflow's steps.
fn runs(workflow: &Value) -> Vec<String> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap().clone())
        .filter_map(|step| step["run"].as_str().map(String::from))
        .collect()
}

/// The steps that use an action, by the action's name.
fn uses(workflow: &Value, action: &str) -> Vec<Value> {
    workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|job| job["steps"].as_array().unwrap().clone())
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
        .collect()
}

#[test]
fn the_workflows_parse_call_the_script_and_keep_reports_of_failed_runs() {
    for name in ["github-actions.yml", "staging-github-actions.yml"] {
        let w = yaml(name);
        assert!(
            runs(&w)
                .iter()
                .any(|r| r.starts_with("bash ci/rollcheck-ci.sh ")),
            "{name}: no step runs ci/rollcheck-ci.sh"
        );
        for action in ["actions/upload-artifact", "mikepenz/action-junit-report"] {
            let steps = uses(&w, action);
            assert_eq!(steps.len(), 1, "{name}: {action}");
            assert_eq!(
                steps[0]["if"], "always()",
                "{name}: {action} must run on failure"
            );
        }
        let junit = &uses(&w, "mikepenz/action-junit-report")[0]["with"]["report_paths"];
        assert_eq!(junit, "rollcheck-artifacts/junit.xml", "{name}");
        // The junit action publishes a check run: the token must be allowed to.
        assert_eq!(w["permissions"]["checks"], "write", "{name}");
        // sudo would drop the job's environment, and with it the scenario's ${VAR}s.
        assert!(!runs(&w).iter().any(|r| r.contains("sudo")), "{name}");
    }
    // The staging workflow takes its target and token from secrets, never literally.
    let staging = yaml("staging-github-actions.yml");
    let step = &staging["jobs"]["deploy"]["steps"][2];
    assert_eq!(
        step["env"]["ROLLCHECK_TARGET"],
        "${{ secrets.STAGING_URL }}"
    );
    assert_eq!(step["env"]["DEPLOY_TOKEN"], "${{ secrets.DEPLOY_TOKEN }}");
    assert_eq!(
        step["run"],
        "bash ci/rollcheck-ci.sh ci/staging.toml rollcheck-artifacts"
    );

    let gitlab = yaml("gitlab-ci.yml");
    let job = &gitlab["rollcheck"];
    assert!(
        job["script"][0]
            .as_str()
            .unwrap()
            .starts_with("bash ci/rollcheck-ci.sh ")
    );
    assert_eq!(job["artifacts"]["when"], "always");
    assert_eq!(
        job["artifacts"]["reports"]["junit"],
        "rollcheck-artifacts/junit.xml"
    );
}

/// `ci/examples/rollcheck-ci.sh SCENARIO ARTIFACTS` with this build as rollcheck.
fn script(scenario: &Path, artifacts: &Path, env: &[(&str, &str)]) -> Output {
    let out = Command::new(root().join("ci/examples/rollcheck-ci.sh"))
        .arg(scenario)
        .arg(artifacts)
        .env("ROLLCHECK_BIN", BIN)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    eprintln!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a CI would publish: junit.xml, summary.json and one report directory.
fn artifacts_of(dir: &Path) -> (Value, PathBuf) {
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    common::assert_valid_summary(&summary);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite"), "{junit}");
    let report = common::run::only_dir(&dir.join("reports"));
    assert!(report.join("report.html").is_file());
    (summary, report)
}

#[test]
fn the_script_gates_a_docker_lab_scenario() {
    let _engine = common::run::lock();
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("rollcheck-artifacts");
    let out = script(
        &root().join("scenarios/hot-deploy/hot-deploy.toml"),
        &artifacts,
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    let (summary, _) = artifacts_of(&artifacts);
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["requests"]["dropped"], 0);
}

/// The staging example with a deploy script that prints its token (as `set -x` or
/// `curl -v` would): the step's output is kept, and the token in it is not.
#[test]
fn the_staging_example_keeps_its_secrets_out_of_the_artifacts() {
    let svc = Service::start(&["--delay", "200ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("rollcheck-artifacts");
    let token = "tok-3c9f1e7d5b";
    let out = script(
        &root().join("ci/examples/staging.toml"),
        &artifacts,
        &[
            ("ROLLCHECK_TARGET", &svc.url),
            ("DEPLOY_TOKEN", token),
            ("DEPLOY_SCRIPT", ">&2 echo deploying"),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let (summary, report) = artifacts_of(&artifacts);
    assert_eq!(summary["verdict"], "pass");
    let step = &summary["steps"][0];
    assert_eq!(step["ok"], true, "{step}");
    // What the deploy printed is in the report, with the token's name in its place.
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("deploying staging --token ${DEPLOY_TOKEN}"),
        "{step}"
    );
    for entry in std::fs::read_dir(&report).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(!text.contains(token), "the token is in {}", path.display());
    }
    for f in ["summary.json", "junit.xml"] {
        let text = std::fs::read_to_string(artifacts.join(f)).unwrap();
        assert!(!text.contains(token), "the token is in {f}");
    }
}

#[test]
fn a_failed_gate_fails_the_job_with_its_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("rollcheck-artifacts");
    // Nothing listens on port 9: every request is refused, the gate fails.
    let out = script(
        &root().join("scenarios/external.toml"),
        &artifacts,
        &[
            ("ROLLCHECK_TARGET", "http://127.0.0.1:9/"),
            ("ROLLCHECK_DEPLOY_CMD", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let (summary, _) = artifacts_of(&artifacts);
    assert_eq!(summary["verdict"], "fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rollcheck: FAIL "), "{stderr}");
}
