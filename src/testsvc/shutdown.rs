//! What the test service does on SIGTERM/SIGINT, and the signal source itself.
//! The service is PID 1 in its container: the kernel gives PID 1 no default signal action,
//! so unless we listen here a SIGTERM does nothing and Swarm has to SIGKILL us.

use std::fmt;
use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// How the service reacts to SIGTERM/SIGINT; each mode reproduces a kind of real application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShutdownMode {
    /// Stop accepting, finish in-flight requests, close idle keep-alive connections, exit 0.
    Graceful,
    /// Exit at once, cutting in-flight requests (the "Empty reply" application).
    Abrupt,
    /// Keep serving until killed (the application that needs SIGKILL after the grace period).
    Ignore,
}

impl fmt::Display for ShutdownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShutdownMode::Graceful => "graceful",
            ShutdownMode::Abrupt => "abrupt",
            ShutdownMode::Ignore => "ignore",
        })
    }
}

/// SIGTERM (what Docker sends) and SIGINT (Ctrl-C when run by hand), installed once at start
/// so a signal that arrives during `--startup-delay` is not lost.
pub(super) struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub(super) fn install() -> io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next signal and names it.
    pub(super) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// Waits for the next signal that should end serving; in `ignore` mode none does.
    pub(super) async fn stop_requested(&mut self, mode: ShutdownMode) -> &'static str {
        loop {
            let name = self.recv().await;
            if mode != ShutdownMode::Ignore {
                return name;
            }
            super::serve::log(&format!(
                "signal {name} received, ignored (shutdown=ignore)"
            ));
        }
    }
}
