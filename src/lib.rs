//! rollcheck: does this rollout drop requests, and how much slower does it make them?
//! See DESIGN.md for the data flow: scenario → plan → runner (lab, load, steps, watchers)
//! → history → analysis → gate → report. `main.rs` only parses arguments and maps the
//! [`Exit`] of a command to the process exit code.

pub mod agent;
pub mod analysis;
pub mod catalogue;
pub mod clock;
pub mod commands;
pub mod driver;
pub mod escape;
pub mod event;
pub mod gate;
pub mod history;
pub mod lab_lock;
pub mod load;
pub mod outcome;
pub(crate) mod poll;
pub mod ready;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod testsvc;
pub mod tls;

/// Exit codes, documented in the README and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The gate passed.
    Pass = 0,
    /// The gate failed: requests dropped or thresholds exceeded.
    GateFailed = 1,
    /// The run could not measure what it promised (environment or step failure).
    Inconclusive = 2,
    /// Bad usage or an invalid scenario.
    Usage = 64,
    /// Interrupted (Ctrl-C).
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}
