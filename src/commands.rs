//! The subcommands as library functions: each takes parsed arguments, prints what the user
//! reads, and returns an [`Exit`]. Errors are printed here, once, in the user's terms.

use crate::Exit;
use crate::driver::{Cluster, Driver};
use crate::gate::Verdict;
use crate::lab_lock::LabLock;
use crate::runner::{self, RunOptions};
use crate::scenario;
use crate::scenario::plan::{MAX_MANAGERS, MAX_WORKERS};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// How `run` prints its summary on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// How `run` shows its progress on stderr (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// A bar in a terminal, plain lines otherwise (a CI log).
    Auto,
    None,
    Plain,
    Bar,
}

pub struct RunArgs {
    pub scenario: PathBuf,
    pub out: PathBuf,
    pub format: Format,
    pub quiet: bool,
    pub progress: ProgressArg,
    /// How often `plain` progress prints its status line.
    pub progress_every: std::time::Duration,
    /// Also write junit.xml / summary.json here (where a CI picks them up).
    pub junit: Option<PathBuf>,
    pub summary: Option<PathBuf>,
}

impl RunArgs {
    fn progress_mode(&self) -> runner::progress::Mode {
        use runner::progress::Mode;
        let plain = Mode::Plain {
            every: self.progress_every,
        };
        match (self.quiet, self.progress) {
            (true, _) | (_, ProgressArg::None) => Mode::None,
            (_, ProgressArg::Plain) => plain,
            (_, ProgressArg::Bar) => Mode::Bar,
            (_, ProgressArg::Auto) if std::io::stderr().is_terminal() => Mode::Bar,
            (_, ProgressArg::Auto) => plain,
        }
    }
}

/// Validates every file; stops at the first invalid one.
pub fn check(files: &[PathBuf], strict: bool) -> Exit {
    for f in files {
        match scenario::load(f) {
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Usage;
            }
            Ok(plan) => {
                let lints = scenario::lint(&plan);
                for l in &lints {
                    let level = if strict { "error" } else { "warning" };
                    eprintln!("{level}: {}: {}: {}", f.display(), l.key, l.message);
                }
                if strict && !lints.is_empty() {
                    return Exit::Usage;
                }
                println!("{}: ok ({} steps)", f.display(), plan.steps.len());
            }
        }
    }
    Exit::Pass
}

/// Cancels `token` on Ctrl-C or SIGTERM, so every task stops and cleanup runs.
pub(crate) fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("rollcheck: interrupted; writing a partial report and cleaning up");
        token.cancel();
    });
}

pub async fn run(args: RunArgs) -> Exit {
    let (plan, resolved) = match scenario::load_shown(&args.scenario) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    let cancel = CancellationToken::new();
    cancel_on_signal(cancel.clone());
    let opts = RunOptions {
        out: args.out.clone(),
        progress: args.progress_mode(),
        quiet: args.quiet,
    };
    let result = runner::run(&plan, &resolved, &opts, &cancel).await;
    let for_scripts = !std::io::stdout().is_terminal();
    match result {
        Err(e) => {
            eprintln!("error: {e}");
            let exit = if cancel.is_cancelled() {
                Exit::Interrupted
            } else {
                Exit::Inconclusive
            };
            if for_scripts {
                let verdict = if exit == Exit::Interrupted {
                    "INTERRUPTED"
                } else {
                    "INCONCLUSIVE"
                };
                eprintln!("rollcheck: {verdict} no report: the run did not start");
            }
            exit
        }
        Ok(r) => {
            print_summary(&r.summary, &r.dir, args.format);
            let mut exit = if r.interrupted {
                Exit::Interrupted
            } else {
                exit_for(r.verdict)
            };
            let copies = [(&args.junit, "junit.xml"), (&args.summary, "summary.json")];
            for (to, name) in copies {
                let Some(to) = to else { continue };
                if let Err(e) = copy_out(&r.dir.join(name), to) {
                    eprintln!("error: cannot write {} to {}: {e}", name, to.display());
                    // The pipeline misses a file it asked for: not a pass, but a failed gate
                    // or an interrupt keeps its own code.
                    if exit == Exit::Pass {
                        exit = Exit::Inconclusive;
                    }
                }
            }
            // Last, so a script finds it on stderr's last line.
            if for_scripts {
                eprintln!("{}", verdict_line(&r.summary, &r.dir, r.interrupted));
            }
            exit
        }
    }
}

/// One line a script can grep, on stderr when stdout is not a terminal (a pipeline's log):
/// `rollcheck: FAIL requests=270 dropped=20 (refused=20) p99=1.006s report=reports/…/report.html`.
pub fn verdict_line(s: &crate::report::Summary, dir: &Path, interrupted: bool) -> String {
    let verdict = if interrupted {
        "INTERRUPTED".to_string()
    } else {
        s.verdict.as_str().to_uppercase()
    };
    let mut line = format!(
        "rollcheck: {verdict} requests={} dropped={}",
        s.requests.total, s.requests.dropped
    );
    let classes: Vec<String> = s
        .outcomes
        .iter()
        .filter(|(o, n)| *n > 0 && s.dropped_classes.iter().any(|c| c == o.as_str()))
        .map(|(o, n)| format!("{}={n}", o.as_str()))
        .collect();
    if !classes.is_empty() {
        line.push_str(&format!(" ({})", classes.join(",")));
    }
    if let Some(p99) = s.latency_ms.p99 {
        line.push_str(&format!(" p99={:.3}s", p99 / 1e3));
    }
    line.push_str(&format!(" report={}", dir.join("report.html").display()));
    line
}

/// Copies a report file to where the pipeline wants it, making its directory.
fn copy_out(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to).map(drop)
}

fn print_summary(summary: &crate::report::Summary, dir: &Path, format: Format) {
    let mut out = std::io::stdout().lock();
    let _ = match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, summary)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Text => crate::report::text::render(summary, &mut out)
            .and_then(|()| writeln!(out, "Report: {}", dir.display())),
    };
}

pub fn exit_for(v: Verdict) -> Exit {
    match v {
        Verdict::Pass => Exit::Pass,
        Verdict::Fail => Exit::GateFailed,
        Verdict::Inconclusive => Exit::Inconclusive,
    }
}

/// `rollcheck lab ...`: the lab outside a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum LabCommand {
    /// Build the test-service images (v1, v2) and the edge image now, so runs start at once.
    Images,
    /// Bring up a multi-node lab (node containers running their own dockerd) that
    /// `swarm-cluster` scenarios reuse.
    Up {
        #[arg(long, default_value_t = 3,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_MANAGERS)))]
        managers: u32,
        #[arg(long, default_value_t = 3,
              value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_WORKERS)))]
        workers: u32,
        /// Drain the managers so only workers run tasks.
        #[arg(long)]
        drain_managers: bool,
    },
    /// Show the swarm, the cluster's nodes (like `docker node ls`) and everything rollcheck
    /// created (like `docker service ls`).
    Status,
    /// Remove everything rollcheck created (any run, and the cluster lab); leave the local
    /// swarm if rollcheck created it.
    Down {
        /// Also remove every `rollcheck/*` image, so the next run builds them as on a new
        /// machine (CI does this before the tests).
        #[arg(long)]
        images: bool,
    },
}

pub async fn lab(cmd: LabCommand) -> Exit {
    // `status` only reads; the others change what a running scenario may be using.
    let _lock = match cmd {
        LabCommand::Status => None,
        _ => match LabLock::acquire() {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Inconclusive;
            }
        },
    };
    let driver = match Driver::connect("lab").await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Inconclusive;
        }
    };
    let result = match cmd {
        LabCommand::Images => driver
            .ensure_lab_images(None, &|line: &str| eprintln!("lab: {line}"))
            .await
            .map(|()| println!("images ready")),
        LabCommand::Up {
            managers,
            workers,
            drain_managers,
        } => lab_up(&driver, managers, workers, drain_managers).await,
        LabCommand::Down { images } => lab_down(&driver, images).await,
        LabCommand::Status => lab_status(&driver).await,
    };
    match result {
        Ok(()) => Exit::Pass,
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Inconclusive
        }
    }
}

async fn lab_up(
    driver: &Driver,
    managers: u32,
    workers: u32,
    drain_managers: bool,
) -> Result<(), crate::driver::DriverError> {
    let shape = crate::driver::cluster::Shape {
        managers,
        workers,
        drain_managers,
    };
    let started = std::time::Instant::now();
    let progress = |line: &str| eprintln!("lab: {line}");
    let cluster = Cluster::up(driver, shape, &progress).await?;
    driver.ensure_lab_images(None, &progress).await?;
    println!("lab up: {shape} in {:.1}s", started.elapsed().as_secs_f64());
    print_nodes(&cluster.status().await);
    Ok(())
}

async fn lab_down(driver: &Driver, images: bool) -> Result<(), crate::driver::DriverError> {
    // Runs' objects first: a cluster run killed with SIGKILL leaves its outer edge on the
    // host attached to the lab network, and the network could not be removed under it
    // ("has active endpoints").
    let nodes = driver.lab_containers().await?.len();
    driver.lab_down().await?;
    Cluster::down(driver).await?;
    println!("lab removed ({nodes} cluster nodes)");
    if images {
        let removed = driver.remove_managed_images().await?;
        println!("images removed: {}", removed.len());
        for tag in removed {
            println!("  {tag}");
        }
    }
    Ok(())
}

async fn lab_status(driver: &Driver) -> Result<(), crate::driver::DriverError> {
    let rows = driver.lab_status().await?;
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!("{:<10} {:<w$} {:<28} STATE", "KIND", "NAME", "RUN");
    for r in rows {
        println!("{:<10} {:<w$} {:<28} {}", r.kind, r.name, r.run, r.state);
    }
    if let Some(cluster) = Cluster::find(driver).await? {
        println!();
        print_nodes(&cluster.status().await);
    }
    Ok(())
}

/// The cluster's nodes, like `docker node ls`.
fn print_nodes(rows: &[crate::driver::cluster::NodeRow]) {
    println!(
        "{:<10} {:<14} {:<8} {:<8} {:<12} {:<14} ENGINE",
        "NODE", "ADDRESS", "ROLE", "STATUS", "AVAILABILITY", "MANAGER"
    );
    for r in rows {
        println!(
            "{:<10} {:<14} {:<8} {:<8} {:<12} {:<14} {}",
            r.name, r.address, r.role, r.status, r.availability, r.manager, r.engine
        );
    }
}

/// Re-renders summary.txt, junit.xml and report.html from a saved run's summary.json and CSVs;
/// no Docker needed. A run with no summary.json (it was killed) is recovered from its CSVs
/// and scenario.toml, and the exit code is its verdict's.
pub fn report(dir: &Path) -> Exit {
    if !dir.join("summary.json").exists() && dir.join("requests.csv").exists() {
        return match runner::recover::recover(dir) {
            Ok(r) => {
                eprintln!("rollcheck: {}", crate::report::RECOVERED);
                print_summary(&r.summary, dir, Format::Text);
                exit_for(r.verdict)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::Usage
            }
        };
    }
    let summary = match crate::report::Summary::load(dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    if let Err(e) = runner::write_summary(dir, &summary) {
        eprintln!("error: {e}");
        return Exit::Inconclusive;
    }
    if let Err(e) = crate::report::write_report_html(dir) {
        eprintln!("error: {e}");
        return Exit::Usage;
    }
    print_summary(&summary, dir, Format::Text);
    Exit::Pass
}

/// Saved runs side by side: a table on stdout (verdict, dropped by class, percentiles, step
/// durations) and one HTML file with their charts aligned on the first step.
pub fn compare(dirs: &[PathBuf], html: &Path) -> Exit {
    let mut runs = Vec::new();
    for d in dirs {
        match crate::report::RunData::load(d) {
            Ok(r) => runs.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Usage;
            }
        }
    }
    let summaries: Vec<_> = runs.iter().map(|r| r.summary.clone()).collect();
    let _ = crate::report::text::render_compare(&summaries, &mut std::io::stdout().lock());
    let written = std::fs::File::create(html).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        crate::report::render_compare(&runs, &mut w)?;
        w.flush()
    });
    match written {
        Ok(()) => {
            println!("Charts: {}", html.display());
            Exit::Pass
        }
        Err(e) => {
            eprintln!("error: {}: {e}", html.display());
            Exit::Inconclusive
        }
    }
}
