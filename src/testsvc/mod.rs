//! The slow test service (`rollcheck serve`) and its health probe (`rollcheck probe`).
//! Fixtures deploy this binary in a FROM-scratch image, so everything here works as PID 1
//! with no shell and no /etc: options come from flags or environment, signals are handled here.

mod probe;
mod routes;
mod serve;
mod shutdown;
pub mod truth;

use std::net::IpAddr;
use std::time::Duration;

pub use probe::{ProbeError, probe};
pub use serve::serve;
pub use shutdown::ShutdownMode;

/// Flags of `rollcheck serve`. Every flag also reads an environment variable, because Swarm
/// services configure a scratch image through `env`, not through a command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0")]
    pub listen: IpAddr,
    /// TCP port; 0 picks a free one (the bound address is printed on stdout).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Time `GET /` waits before answering (`?sleep=250ms` overrides it per request).
    #[arg(long, env = "DELAY", default_value = "1s")]
    pub delay: humantime::Duration,
    /// What SIGTERM/SIGINT does: finish in-flight requests, cut them, or nothing.
    #[arg(long, env = "SHUTDOWN", value_enum, default_value_t = ShutdownMode::Graceful)]
    pub shutdown: ShutdownMode,
    /// Graceful mode only: keep serving and accepting for this long after the signal.
    #[arg(long, env = "DRAIN_DELAY", default_value = "0s")]
    pub drain_delay: humantime::Duration,
    /// Wait this long before binding, so connections are refused meanwhile.
    #[arg(long, env = "STARTUP_DELAY", default_value = "0s")]
    pub startup_delay: humantime::Duration,
    /// Make /healthz answer 503 once this much time has passed since start.
    #[arg(long, env = "UNHEALTHY_AFTER")]
    pub unhealthy_after: Option<humantime::Duration>,
    /// For this long after start, `/` answers 503 (not ready: caches, pools, migrations)
    /// while `/healthz` already answers 200; `/readyz` answers 503 until then.
    #[arg(long, env = "WARMUP", default_value = "0s")]
    pub warmup: humantime::Duration,
    /// Version reported in responses (`X-Rollcheck-Version`). Not `--version`: clap owns that.
    #[arg(long = "service-version", env = "VERSION", default_value = "dev")]
    pub version: String,
    /// Background colour of `GET /color` (any CSS colour).
    #[arg(long, env = "COLOR", default_value = "#d8dde3")]
    pub color: String,
    /// Task name reported in `X-Rollcheck-Task` (Swarm: `TASK={{.Task.Name}}`).
    #[arg(long, env = "TASK")]
    pub task: Option<String>,
    /// Serve https with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "TLS_CERT", requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// The environment variables the test service reads its settings from (`DELAY`,
/// `SHUTDOWN`, ...), as its flags declare them.
pub fn env_names() -> Vec<String> {
    use clap::Args;
    ServeArgs::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

/// Resolved options of the test service: plain `Duration`s, no clap types.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: IpAddr,
    pub port: u16,
    pub delay: Duration,
    pub shutdown: ShutdownMode,
    pub drain_delay: Duration,
    pub startup_delay: Duration,
    pub unhealthy_after: Option<Duration>,
    pub warmup: Duration,
    pub version: String,
    pub color: String,
    pub task: Option<String>,
    /// https: the certificate chain and key files (PEM).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl From<ServeArgs> for ServeOptions {
    fn from(a: ServeArgs) -> Self {
        ServeOptions {
            listen: a.listen,
            port: a.port,
            delay: a.delay.into(),
            shutdown: a.shutdown,
            drain_delay: a.drain_delay.into(),
            startup_delay: a.startup_delay.into(),
            unhealthy_after: a.unhealthy_after.map(Into::into),
            warmup: a.warmup.into(),
            version: a.version,
            color: a.color,
            task: a.task.filter(|t| !t.is_empty()),
            tls: a.tls_cert.zip(a.tls_key),
        }
    }
}

/// Arguments of `rollcheck probe URL`: exit 0 on a 2xx answer, 1 otherwise.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// URL to GET, e.g. http://127.0.0.1:8080/healthz (IP literals need no DNS).
    pub url: String,
    /// Give up after this long (connect + full response).
    #[arg(long, default_value = "2s")]
    pub timeout: humantime::Duration,
}
