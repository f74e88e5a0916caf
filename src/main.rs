//! Command-line entry: parse arguments, call the library, map the outcome to an exit code.

use clap::{Parser, Subcommand};
use rollcheck::Exit;
use rollcheck::commands::{self, Format, ProgressArg, RunArgs};
use rollcheck::testsvc;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit codes:
  0    gate passed
  1    gate failed (requests dropped or thresholds exceeded)
  2    inconclusive (the run could not measure what it promised: environment or step failure)
  64   usage error or invalid scenario
  130  interrupted (Ctrl-C)

Examples:
  rollcheck run scenarios/rolling.toml
  rollcheck run scenarios/stack/stack-rolling.toml          # your compose file, docker stack deploy
  DOCKER_HOST=unix:///tmp/staging.sock rollcheck run mine.toml   # kind = \"existing\": a manager
                                      # (e.g. ssh -L /tmp/staging.sock:/var/run/docker.sock staging)
  ROLLCHECK_DEPLOY_CMD='./deploy.sh' rollcheck run scenarios/external.toml
  rollcheck run scenarios/hot-deploy/hot-deploy.toml          # kind = \"docker\": new port, nginx reload
  rollcheck check scenarios/*.toml
  rollcheck compare reports/*-rolling reports/*-start-first
  rollcheck lab images && rollcheck lab status
  rollcheck lab up --managers 3 --workers 3 --drain-managers
  rollcheck serve --port 8080 --delay 1s";

/// `--progress-every`: a duration of at least 100 ms (a log line more often says nothing new).
fn progress_every(s: &str) -> Result<std::time::Duration, String> {
    let d =
        humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. \"5s\", \"500ms\")"))?;
    if d < std::time::Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(d)
}

/// Zero-downtime rollout test harness: drives real HTTP load at a service while a scenario
/// updates, rolls back, scales or breaks it, and reports every dropped request.
#[derive(Parser)]
#[command(name = "rollcheck", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: load + steps, then a report directory and a verdict.
    #[command(after_help = AFTER_HELP)]
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Parent directory of the run's report directory.
        #[arg(long, env = "ROLLCHECK_OUT", default_value = "reports")]
        out: PathBuf,
        /// How to print the summary on stdout (`json` prints summary.json).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write the run's junit.xml here (where your CI reads test reports).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
        /// Also write the run's summary.json here.
        #[arg(long, value_name = "PATH")]
        summary: Option<PathBuf>,
        /// Nothing on stderr while running: no progress, no lab lines.
        #[arg(long, short)]
        quiet: bool,
        /// Progress on stderr: a bar in a terminal, plain lines otherwise (auto), or say which.
        #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
        progress: ProgressArg,
        /// How often plain progress prints its status line (steps and notable events are
        /// printed as they happen).
        #[arg(long, default_value = "5s", value_parser = progress_every)]
        progress_every: std::time::Duration,
    },
    /// Validate scenario files without touching anything; lint known-bad settings.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Treat lint warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Re-render summary.txt, junit.xml and report.html of a saved run (no Docker).
    ///
    /// A run killed before it wrote summary.json (SIGKILL, a cancelled CI job) is recovered
    /// from its requests.csv, events.csv and scenario.toml: the summary is marked recovered,
    /// the run is inconclusive unless its record is complete, and the exit code is the
    /// verdict's (0 pass, 1 gate failed, 2 inconclusive). `${VAR}` in the scenario must be set
    /// as they were for the run.
    Report {
        /// A run's report directory, e.g. reports/20261122T030850Z-rolling.
        dir: PathBuf,
    },
    /// Compare saved runs side by side (e.g. stop-first vs start-first).
    Compare {
        #[arg(required = true, num_args = 2..)]
        dirs: Vec<PathBuf>,
        /// Where to write the HTML with the runs' charts aligned on their first step.
        #[arg(long, default_value = "compare.html")]
        html: PathBuf,
    },
    /// Run the failure-mode catalogue: each known-bad rollout beside its fixed twin.
    ///
    /// Validates the manifest and every scenario it names first, then runs each pair on the
    /// lab (bad, then fixed), judges it against the manifest (the bad twin fails with its
    /// stated class or threshold, the fixed twin passes), and writes catalogue.md,
    /// catalogue.json and catalogue.html (each pair's charts side by side) with every run's
    /// report directory. Exit 0 every mode as expected, 1 one was not, 2 a run could not be
    /// measured, 130 interrupted.
    #[command(after_help = "\
Examples:
  rollcheck catalogue                                   # every mode, ~15 min
  rollcheck catalogue --only all-at-once --only sigterm-ignored
  rollcheck catalogue --readme README.md                # refresh the README's table")]
    Catalogue {
        /// The manifest: modes, what each bad twin fails with, modes not reproducible here.
        #[arg(default_value = "scenarios/catalogue/catalogue.toml")]
        manifest: PathBuf,
        /// Directory for the runs' reports and the catalogue's files
        /// [default: reports/catalogue-<UTC time>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only this mode (by id); repeat for more.
        #[arg(long, value_name = "ID")]
        only: Vec<String>,
        /// Replace the catalogue section of this README with the measured table.
        #[arg(long, value_name = "PATH")]
        readme: Option<PathBuf>,
    },
    /// The slow test service (1 s per request by default) that the lab deploys.
    Serve(testsvc::ServeArgs),
    /// The local Swarm lab outside a run: build images, show or remove what rollcheck created.
    #[command(subcommand)]
    Lab(commands::LabCommand),
    /// Exit 0 if URL answers 2xx, 1 otherwise (HEALTHCHECK for images without curl).
    Probe(testsvc::ProbeArgs),
    /// A load generator of a run with `[load] generators` > 1 (rollcheck deploys it as a
    /// Swarm job task; not for use by hand).
    #[command(hide = true)]
    Agent {
        #[command(subcommand)]
        barrier: Option<AgentCommand>,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Release the agent in this container at a start instant (ns since the Unix epoch).
    Start { at_unix_ns: i64 },
}

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; every other parse error is usage (64).
            return if e.use_stderr() {
                ExitCode::from(Exit::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let exit = match cli.command {
        Command::Check { files, strict } => commands::check(&files, strict),
        Command::Run {
            scenario,
            out,
            format,
            quiet,
            progress,
            progress_every,
            junit,
            summary,
        } => runtime().block_on(commands::run(RunArgs {
            scenario,
            out,
            format,
            quiet,
            progress,
            progress_every,
            junit,
            summary,
        })),
        Command::Report { dir } => commands::report(&dir),
        Command::Compare { dirs, html } => commands::compare(&dirs, &html),
        Command::Catalogue {
            manifest,
            out,
            only,
            readme,
        } => runtime().block_on(rollcheck::catalogue::run(
            rollcheck::catalogue::CatalogueArgs {
                manifest,
                out,
                only,
                readme,
            },
        )),
        Command::Lab(cmd) => runtime().block_on(commands::lab(cmd)),
        Command::Serve(args) => match runtime().block_on(testsvc::serve(args.into())) {
            Ok(()) => Exit::Pass,
            Err(e) => {
                eprintln!("serve: {e}");
                Exit::Inconclusive
            }
        },
        Command::Agent { barrier } => {
            let result = match barrier {
                None => runtime().block_on(rollcheck::agent::run::run()),
                Some(AgentCommand::Start { at_unix_ns }) => {
                    rollcheck::agent::run::start(at_unix_ns)
                }
            };
            match result {
                Ok(()) => Exit::Pass,
                Err(e) => {
                    eprintln!("agent: {e}");
                    Exit::Inconclusive
                }
            }
        }
        Command::Probe(args) => {
            match runtime().block_on(testsvc::probe(&args.url, args.timeout.into())) {
                Ok(_) => Exit::Pass,
                Err(e) => {
                    eprintln!("probe: {e}");
                    Exit::GateFailed
                }
            }
        }
    };
    ExitCode::from(exit.code())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
}

/// One glibc malloc arena for all threads, unless the environment chose
/// (`MALLOC_ARENA_MAX`, `GLIBC_TUNABLES`). rollcheck's memory is mostly per connection
/// (heaptrack: hyper's request channel, a 9-KB block per connection, and its 8-KB read and
/// write buffers), and most requests allocate a new read buffer and free the last one, on
/// whichever thread runs them. Measured with the open model at 10,000 req/s against a 1-s
/// service (10,000 connections): peak RSS 259–267 MB with an arena per thread (glibc's
/// default), 244–246 with one; throughput (ci/bench-load) unchanged. Each thread keeps its
/// own cache of small blocks in front of the arena, so the load seldom waits on its lock.
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    // SAFETY: called first in main, before any other thread exists; mallopt only sets a
    // parameter of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
