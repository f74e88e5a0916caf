//! What `rollcheck run` shows on stderr while it runs, against the real test service on
//! loopback (no Docker): plain lines in order when stderr is a pipe (a CI log), a bar with the
//! step and the counts under a pseudo-terminal (`script`), nothing with `-q`.

mod common;

use common::{BIN, Service};
use std::path::Path;
use std::process::{Command, Output};

/// 7 s of load; a 2-s sleep step at 2 s, then an http step that fails (nothing listens).
fn scenario(dir: &Path, target: &str) -> std::path::PathBuf {
    let path = dir.join("progress.toml");
    std::fs::write(
        &path,
        format!(
            r#"[load]
target = "{target}"
concurrency = 5
duration = "7s"
[[step]]
at = "2s"
action = "sleep"
duration = "2s"
[[step]]
action = "http"
url = "http://127.0.0.1:9/"
timeout = "1s"
"#
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str]) -> (Output, String) {
    let svc = Service::start(&["--delay", "300ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &svc.url);
    let output = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("reports"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// `[2.0s / 7.0s, 5.0s left] requests 30 …` → 2.0.
fn status_time(line: &str) -> Option<f64> {
    line.strip_prefix('[')?.split('s').next()?.parse().ok()
}

#[test]
fn a_pipe_gets_plain_lines_that_tell_the_story_in_order() {
    let (output, stderr) = run(&["--progress-every", "1s"]);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let status: Vec<(usize, f64)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, status_time(l)?)))
        .collect();
    // One a second (auto mode picked plain lines: stderr is not a terminal).
    assert!(status.len() >= 6, "{stderr}");
    assert!(status.windows(2).all(|w| w[0].1 < w[1].1), "{stderr}");
    let (last, last_at) = status.last().map(|&(i, t)| (lines[i], t)).unwrap();
    assert!(last_at >= 6.0 && last.contains("/ 7.0s, "), "{last}");
    let requests: u64 = last
        .split("requests ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(requests > 50, "{last}");
    assert!(
        last.contains("p50 30") && last.contains("ms  p99"),
        "{last}"
    );
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{stderr}"))
    };
    let (started, done) = (
        at("step 1: sleep 2s: started"),
        at("step 1: sleep 2s: done"),
    );
    let failed = at("step 2: http GET http://127.0.0.1:9/: FAILED");
    assert!(started < done && done < failed, "{stderr}");
    // While the step ran, the status lines named it.
    assert!(
        lines[started..done]
            .iter()
            .any(|l| status_time(l).is_some() && l.contains("| step 1: sleep 2s (")),
        "{stderr}"
    );
    // Steps are stamped on the run clock between the status lines around them.
    let stamp = |i: usize| -> f64 { lines[i].trim().split('s').next().unwrap().parse().unwrap() };
    assert!((1.9..2.5).contains(&stamp(started)), "{}", lines[started]);
    assert!((3.9..4.5).contains(&stamp(done)), "{}", lines[done]);
}

/// `-q`: nothing while running; stdout being a pipe, only the verdict line at the end.
#[test]
fn quiet_prints_nothing_while_running() {
    let (output, stderr) = run(&["-q"]);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("rollcheck: PASS requests="), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Verdict: PASS"));
}

#[test]
fn a_terminal_gets_a_bar_with_time_left_the_step_and_the_counts() {
    let svc = Service::start(&["--delay", "300ms"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), &svc.url);
    let typescript = dir.path().join("pty.out");
    // `script` runs the command under a pseudo-terminal and keeps what it drew.
    let command = format!(
        "{BIN} run {} --out {}",
        path.display(),
        dir.path().join("reports").display()
    );
    let status = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &command])
        .arg(&typescript)
        .env("TERM", "xterm")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("script (util-linux) runs the command under a pty");
    assert!(status.success());
    let drawn = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    for needle in [
        "/ 7.0s, ",
        " left",
        "] 3.",
        "step 1: sleep 2s (1.",
        "requests ",
        "ok ",
        "failed 0",
        "step 2: http GET http://127.0.0.1:9/: FAILED",
        "Verdict: PASS",
    ] {
        assert!(
            drawn.contains(needle),
            "no {needle:?} in the terminal:\n{drawn}"
        );
    }
    // Redrawn several times a second over the 7 s, in place: the terminal got far more
    // redraws than lines.
    let redraws = drawn.matches(" left").count();
    assert!(redraws > 20, "{redraws} redraws:\n{drawn}");
    assert!(drawn.matches('\n').count() < redraws, "{drawn}");
}
