//! Known-bad settings in a valid plan: each one is a way a Swarm rollout drops requests that
//! the scenario may not intend to show. Warnings by default; `check --strict` makes them
//! errors. See DESIGN.md "Known Swarm behaviour".

use super::plan::*;
use std::fmt;
use std::time::Duration;

/// One warning about a valid plan, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// Key path, e.g. `service.update_config.order`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Swarm's default `stop_grace_period`.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// Swarm removes a stopping task from DNS / IPVS, then sleeps this long before SIGTERM.
const SWARM_STOP_DELAY: Duration = Duration::from_secs(2);

pub fn lint(plan: &Plan) -> Vec<Lint> {
    let mut out = Vec::new();
    let mut warn = |key: &str, message: String| {
        out.push(Lint {
            key: key.to_string(),
            message,
        })
    };
    // Open model: requests in flight ≈ rate × latency; at the timeout that is the most the
    // service can hold in flight, and more than max_in_flight are sent late.
    if let LoadModel::Open {
        rate,
        max_in_flight,
    } = plan.load.model
        && rate * plan.load.timeout.as_secs_f64() > max_in_flight as f64
    {
        warn(
            "load.max_in_flight",
            format!(
                "{rate}/s with timeout {} can hold {:.0} requests in flight, more than max_in_flight = {max_in_flight}: \
                 when the service slows down, requests are sent late (counted apart, not as drops)",
                humantime::format_duration(plan.load.timeout),
                rate * plan.load.timeout.as_secs_f64()
            ),
        );
    }
    let Some(LabSetup { service, edge, .. }) = plan.lab() else {
        return out;
    };
    let update = &service.update;
    if service.replicas == 0 {
        warn(
            "service.replicas",
            "0 replicas: nothing serves the load until a step scales the service up".into(),
        );
    }

    if service.replicas == 1 && update.order == UpdateOrder::StopFirst {
        warn(
            "service.update_config.order",
            "stop-first with 1 replica: no task serves while the new one starts (outage); \
             use order = \"start-first\" or replicas >= 2"
                .into(),
        );
    }
    // With one replica the outage lint above already says it; parallelism 0 means "all".
    if service.replicas >= 2 && (update.parallelism == 0 || update.parallelism >= service.replicas)
    {
        warn(
            "service.update_config.parallelism",
            format!(
                "parallelism {} with {} replicas replaces all tasks at once; use a parallelism below replicas",
                update.parallelism, service.replicas
            ),
        );
    }
    match &service.healthcheck {
        None => warn(
            "service.healthcheck",
            "no healthcheck: a new task takes traffic as soon as its process starts, before it can serve"
                .into(),
        ),
        Some(h) if h.test.first().is_some_and(|t| t == "NONE") => warn(
            "service.healthcheck",
            "healthcheck disabled (NONE): a new task takes traffic as soon as its process starts".into(),
        ),
        Some(_) => {}
    }
    shell_in_exec_form(
        &mut warn,
        "service.healthcheck.test",
        service.healthcheck.as_ref(),
    );
    {
        shell_in_exec_form(
            &mut warn,
            "edge.healthcheck.test",
            edge.healthcheck.as_ref(),
        );
    }

    let grace = service.stop_grace_period.unwrap_or(DEFAULT_GRACE);
    let (longest, why) = match service
        .env
        .get("DELAY")
        .and_then(|d| humantime::parse_duration(d.trim()).ok())
    {
        Some(delay) => (delay, "service env DELAY"),
        None => (plan.load.timeout, "load.timeout"),
    };
    if grace < longest + SWARM_STOP_DELAY {
        warn(
            "service.stop_grace_period",
            format!(
                "{} is shorter than the longest expected request ({} from {why}) + 2s (Swarm's delay \
                 before SIGTERM): in-flight requests are killed (exit 137)",
                humantime::format_duration(grace),
                humantime::format_duration(longest)
            ),
        );
    }

    if update.order == UpdateOrder::StartFirst && edge.kind == EdgeKind::None {
        warn(
            "service.update_config.order",
            "start-first with a host-mode published port (edge kind \"none\"): the new task cannot \
             bind the port while the old one holds it"
                .into(),
        );
    }
    out
}

/// Exec form (`CMD`) runs no shell: `||`, `|`, `;`, `>` reach the program as literal arguments.
fn shell_in_exec_form(warn: &mut impl FnMut(&str, String), key: &str, h: Option<&Healthcheck>) {
    let Some(h) = h else { return };
    if h.test.first().is_none_or(|t| t != "CMD") {
        return;
    }
    if let Some(arg) = h.test[1..]
        .iter()
        .find(|a| ["&&", "|", ";", ">", "<"].iter().any(|op| a.contains(op)))
    {
        warn(
            key,
            format!(
                "exec form (\"CMD\") runs no shell, so {arg:?} is passed as a literal argument; \
                 use [\"CMD-SHELL\", \"...\"] (needs /bin/sh in the image) or drop the operator"
            ),
        );
    }
}
