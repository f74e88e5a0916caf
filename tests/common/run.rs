//! Running a scenario through the `rollcheck run` binary, and what the Swarm test binaries
//! (scenarios, stacks) assert after it.

use super::{BIN, assert_valid_summary, labelled};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Instant;

/// One lab at a time: the scenarios share the service name and the edge port.
pub static ENGINE: Mutex<()> = Mutex::new(());

pub struct Run {
    pub output: Output,
    pub dir: PathBuf,
    pub summary: Value,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn outcome(&self, class: &str) -> u64 {
        self.summary["outcomes"][class].as_u64().unwrap()
    }

    /// The failure class with the most requests.
    pub fn dominant_failure(&self) -> String {
        let o = self.summary["outcomes"].as_object().unwrap();
        o.iter()
            .filter(|(k, _)| *k != "ok" && *k != "late")
            .max_by_key(|(_, v)| v.as_u64().unwrap())
            .map(|(k, _)| k.clone())
            .unwrap()
    }

    pub fn run_id(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    pub fn context(&self) -> String {
        format!(
            "exit {:?}\n{}\n{}",
            self.code(),
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.toml"))
}

pub fn only_dir(out: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one report dir: {dirs:?}");
    dirs[0].clone()
}

pub fn run(path: &Path) -> Run {
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
    assert_valid_summary(&summary);
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

/// Runs `path` quietly and interrupts it (SIGINT, as Ctrl-C) `then` after its events.csv
/// first holds `when`; the run's partial report.
pub fn interrupted(path: &Path, when: &str, then: std::time::Duration) -> Run {
    use std::process::Stdio;
    let out = tempfile::tempdir().unwrap().keep();
    let mut child = Command::new(BIN)
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if Instant::now() >= deadline {
            // Not left holding the lab for the tests after this one.
            let _ = child.kill();
            panic!("the run never logged {when:?}");
        }
        let seen = std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("events.csv")).ok())
            .any(|events| events.contains(when));
        if seen {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(then);
    // SAFETY: kill(2) with a child's pid and a signal number has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let dir = only_dir(&out);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_valid_summary(&summary);
    Run {
        output,
        dir,
        summary,
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Nothing carrying this run's label is left in the engine.
pub fn assert_cleaned_up(r: &Run) {
    let left = rt().block_on(labelled(format!("rollcheck.run={}", r.run_id())));
    assert_eq!(left, 0, "objects of run {} left behind", r.run_id());
}

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|e| e.into_inner())
}
