//! One `[[step]]` → [`Step`]: its timing, its action, and only the fields that action takes.
//! A field that belongs to another action is an error naming both, so a copied step that
//! kept a stale key does not silently do something else.

use super::error::hint;
use super::plan::*;
use super::raw::{self, Text};
use super::validate::{Check, R};
use std::time::Duration;
use toml::Spanned;

mod nodes;
use nodes::node_fault;

const ACTIONS: [&str; 29] = [
    "exec",
    "http",
    "sleep",
    "wait_http",
    "deploy",
    "stack_deploy",
    "update_image",
    "update",
    "rollback",
    "scale",
    "remove",
    "wait",
    "node_stop",
    "node_kill",
    "node_start",
    "node_pause",
    "node_unpause",
    "node_drain",
    "node_activate",
    "node_disconnect",
    "node_connect",
    "manager_stop",
    "leader_stop",
    "container_run",
    "container_wait_healthy",
    "container_stop",
    "container_kill",
    "container_rm",
    "upstream_set",
];

/// The action-specific fields each action takes (beyond at, after, action, expect, label).
fn fields_of(action: &str) -> &'static [&'static str] {
    match action {
        "exec" => &["command", "timeout"],
        "http" => &["url", "method", "timeout"],
        "sleep" => &["duration"],
        "wait_http" => &["url", "timeout", "interval"],
        "deploy" => &["wait", "timeout"],
        "stack_deploy" => &["compose", "wait", "timeout"],
        "rollback" => &["service", "wait", "timeout"],
        "update_image" => &["service", "image", "wait", "timeout"],
        "update" => &[
            "service",
            "env",
            "labels",
            "replicas",
            "update_config",
            "healthcheck",
            "stop_grace_period",
            "force",
            "wait",
            "timeout",
        ],
        "scale" => &["service", "replicas", "wait", "timeout"],
        "remove" => &["service"],
        "wait" => &["service", "timeout"],
        "manager_stop" => &["count"],
        "container_run" => &[
            "name",
            "image",
            "port",
            "container_port",
            "env",
            "healthcheck",
        ],
        "container_wait_healthy" => &["name", "timeout"],
        "container_stop" => &["name", "signal", "grace"],
        "container_kill" => &["name", "signal"],
        "container_rm" => &["name"],
        "upstream_set" => &["servers", "mode", "wait", "timeout"],
        n if n.starts_with("node_") => &["node"],
        _ => &[],
    }
}

const CONVERGE_TIMEOUT: Duration = Duration::from_secs(120);

/// What a Swarm action can act on.
pub(super) enum Targets<'a> {
    /// No lab: only load-side actions.
    None,
    /// The lab's one `[service]`, by name.
    Service(&'a str),
    /// A stack's services.
    Stack(&'a StackSetup),
    /// Services already running on the user's swarm, by full name.
    Existing,
}

pub(super) fn step(
    c: &Check<'_>,
    index: usize,
    s: &Spanned<raw::Step>,
    targets: &Targets<'_>,
    lab: Option<&Lab>,
) -> R<Step> {
    let r = s.get_ref();
    let ctx = format!("step {index}");
    let key = |field: &str| format!("{ctx}: {field}");

    let action_raw = r.action.as_ref().ok_or_else(|| {
        c.err(
            s,
            &ctx,
            format!(
                "missing required key \"action\" (one of: {})",
                ACTIONS.join(", ")
            ),
        )
    })?;
    let name = action_raw.get_ref().as_str();
    if !ACTIONS.contains(&name) {
        return Err(c.err(
            action_raw,
            &ctx,
            format!("unknown action \"{name}\"{}", hint(name, &ACTIONS)),
        ));
    }
    let allowed = fields_of(name);
    for (field, span) in r.action_fields() {
        if !allowed.contains(&field) {
            let takes = if allowed.is_empty() {
                "it takes none".to_string()
            } else {
                format!("it takes: {}", allowed.join(", "))
            };
            return Err(c.err_span(
                span,
                &ctx,
                format!("\"{field}\" is not a field of action \"{name}\" ({takes})"),
            ));
        }
    }

    let timing = match (&r.at, &r.after) {
        (Some(_), Some(after)) => {
            return Err(c.err(after, &ctx, "give \"at\" or \"after\", not both"));
        }
        (Some(at), None) => Timing::At(c.duration(&key("at"), at)?),
        (None, Some(after)) => Timing::After(c.duration(&key("after"), after)?),
        (None, None) => Timing::After(Duration::ZERO),
    };
    let expect_failure = match &r.expect {
        Some(v) => c.choice(
            &key("expect"),
            "value",
            v,
            &[("success", false), ("failure", true)],
        )?,
        None => false,
    };

    let required = |field: &str, v: &Option<Text>| -> R<Text> {
        v.clone().ok_or_else(|| {
            c.err(
                s,
                &ctx,
                format!("missing required key \"{field}\" for action \"{name}\""),
            )
        })
    };
    // A docker lab has no orchestrator; its steps act on containers and the edge.
    let container_action = name.starts_with("container_") || name == "upstream_set";
    let docker_lab = lab == Some(&Lab::Docker);
    if container_action && !docker_lab {
        return Err(c.err(
            action_raw,
            &ctx,
            format!(
                "action \"{name}\" needs [lab] kind = \"docker\" (plain containers behind rollcheck's nginx)"
            ),
        ));
    }
    if docker_lab && !container_action && !["exec", "http", "sleep", "wait_http"].contains(&name) {
        return Err(c.err(
            action_raw,
            &ctx,
            format!(
                "action \"{name}\" needs a swarm, and [lab] kind = \"docker\" runs none: use container_run, container_wait_healthy, upstream_set, container_stop, container_kill, container_rm (or kind = \"swarm-local\")"
            ),
        ));
    }
    let wait = || -> R<Wait> {
        let converged = match &r.wait {
            Some(v) => c.choice(
                &key("wait"),
                "value",
                v,
                &[("converged", true), ("none", false)],
            )?,
            None => true,
        };
        match (&r.timeout, converged) {
            (Some(t), false) => {
                Err(c.err(t, &key("timeout"), "only applies with wait = \"converged\""))
            }
            (t, true) => Ok(Wait::Converged {
                timeout: c.positive(&key("timeout"), t, CONVERGE_TIMEOUT)?,
            }),
            (None, false) => Ok(Wait::No),
        }
    };

    let action = match name {
        "exec" => {
            let command = required("command", &r.command)?;
            if command.get_ref().trim().is_empty() {
                return Err(c.err(&command, &key("command"), "must not be empty"));
            }
            let timeout = match &r.timeout {
                Some(_) => Some(c.positive(&key("timeout"), &r.timeout, Duration::ZERO)?),
                None => None,
            };
            Action::Exec {
                command: command.into_inner(),
                timeout,
            }
        }
        "http" => {
            let method = match &r.method {
                Some(m) => http::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
                    .map_err(|_| {
                        c.err(
                            m,
                            &key("method"),
                            format!("invalid HTTP method \"{}\"", m.get_ref()),
                        )
                    })?,
                None => http::Method::GET,
            };
            Action::Http {
                url: c.http_url(&key("url"), &required("url", &r.url)?)?,
                method,
                timeout: c.positive(&key("timeout"), &r.timeout, Duration::from_secs(5))?,
            }
        }
        "sleep" => {
            Action::Sleep(c.duration(&key("duration"), &required("duration", &r.duration)?)?)
        }
        "wait_http" => Action::WaitHttp {
            url: c.http_url(&key("url"), &required("url", &r.url)?)?,
            timeout: c.positive(&key("timeout"), &r.timeout, Duration::from_secs(60))?,
            interval: c.positive(&key("interval"), &r.interval, Duration::from_millis(500))?,
        },
        "deploy" => Action::Deploy { wait: wait()? },
        "stack_deploy" => {
            let files = r.compose.as_ref().ok_or_else(|| {
                c.err(
                    s,
                    &ctx,
                    "missing required key \"compose\" for action \"stack_deploy\" (the compose files to deploy, e.g. compose = \"docker-compose.v2.yml\")",
                )
            })?;
            let (files, compose) = c.compose_files(&key("compose"), files)?;
            Action::StackDeploy {
                files,
                compose,
                wait: wait()?,
            }
        }
        "update_image" => {
            let image = c.image(&key("image"), &required("image", &r.image)?)?;
            Action::UpdateImage {
                image,
                wait: wait()?,
            }
        }
        "update" => Action::Update {
            change: change(c, &ctx, s)?,
            wait: wait()?,
        },
        "rollback" => Action::Rollback { wait: wait()? },
        "scale" => {
            let replicas = r.replicas.as_ref().ok_or_else(|| {
                c.err(
                    s,
                    &ctx,
                    "missing required key \"replicas\" for action \"scale\"",
                )
            })?;
            Action::Scale {
                replicas: c.replicas(replicas, &key("replicas"))?,
                wait: wait()?,
            }
        }
        "remove" => Action::Remove,
        "wait" => Action::Wait {
            timeout: c.positive(&key("timeout"), &r.timeout, CONVERGE_TIMEOUT)?,
        },
        _ if container_action => c.container_action(&ctx, s, name)?,
        _ => node_fault(c, &ctx, s, name, lab)?,
    };
    let service = if action.needs_docker() && !action.is_node_fault() && !action.is_container() {
        target(c, &ctx, s, action_raw, &action, targets)?
    } else {
        None
    };

    let label = match &r.label {
        Some(l) => l.get_ref().clone(),
        None => default_label(&action),
    };
    Ok(Step {
        index,
        label,
        timing,
        action,
        expect_failure,
        service,
    })
}

/// The Swarm service a Swarm action acts on: `None` for the lab's own `[service]`, a stack's
/// service by its full name (`service = "app"` or `"shop_app"`; a one-service stack needs no
/// `service`).
fn target(
    c: &Check<'_>,
    ctx: &str,
    s: &Spanned<raw::Step>,
    action_raw: &Text,
    action: &Action,
    targets: &Targets<'_>,
) -> R<Option<String>> {
    let name = action.name();
    let r = s.get_ref();
    match targets {
        Targets::None => Err(c.err(
            action_raw,
            ctx,
            format!("action \"{name}\" needs a [service] or a [stack] (in a [lab]) to act on"),
        )),
        Targets::Service(own) => {
            if let Action::StackDeploy { .. } = action {
                return Err(c.err(
                    action_raw,
                    ctx,
                    "action \"stack_deploy\" needs a [stack] (this lab runs its [service])",
                ));
            }
            match &r.service {
                Some(v) if v.get_ref() != own => Err(c.err(
                    v,
                    &format!("{ctx}: service"),
                    format!("this lab has one service, \"{own}\" (a [stack] has several)"),
                )),
                _ => Ok(None),
            }
        }
        Targets::Existing => {
            if let Action::Remove = action {
                return Err(c.err(
                    action_raw,
                    ctx,
                    "action \"remove\" on an existing swarm would delete your service for good: rollcheck changes running services there and puts their specs back, it never removes one",
                ));
            }
            if let Action::Deploy { .. } | Action::StackDeploy { .. } = action {
                return Err(c.err(
                    action_raw,
                    ctx,
                    format!(
                        "action \"{name}\" needs a [stack]: on an existing swarm without one, steps act on running services"
                    ),
                ));
            }
            let v = r.service.as_ref().ok_or_else(|| {
                c.err(
                    s,
                    ctx,
                    format!(
                        "missing required key \"service\" for action \"{name}\" (a running service of your swarm, as `docker service ls` names it)"
                    ),
                )
            })?;
            if !super::service::docker_name(v.get_ref()) {
                return Err(c.err(
                    v,
                    &format!("{ctx}: service"),
                    format!(
                        "invalid service name \"{}\" ({})",
                        v.get_ref(),
                        super::service::NAME_RULE
                    ),
                ));
            }
            Ok(Some(v.get_ref().clone()))
        }
        Targets::Stack(stack) => {
            if let Action::Deploy { .. } = action {
                return Err(c.err(
                    action_raw,
                    ctx,
                    "action \"deploy\" recreates a [service]; deploy a stack again with action = \"stack_deploy\"",
                ));
            }
            if let Action::StackDeploy { .. } = action {
                return Ok(None);
            }
            let names: Vec<&str> = stack.compose.services.keys().map(String::as_str).collect();
            let local = match &r.service {
                Some(v) => {
                    let given = v.get_ref().as_str();
                    let local = given
                        .strip_prefix(&format!("{}_", stack.name))
                        .unwrap_or(given);
                    if !names.contains(&local) {
                        return Err(c.err(
                            v,
                            &format!("{ctx}: service"),
                            format!(
                                "the stack has no service \"{given}\"{}",
                                super::error::hint(given, &names)
                            ),
                        ));
                    }
                    local.to_string()
                }
                None if names.len() == 1 => names[0].to_string(),
                None => {
                    return Err(c.err(
                        s,
                        ctx,
                        format!(
                            "missing required key \"service\" for action \"{name}\" (the stack has: {})",
                            names.join(", ")
                        ),
                    ));
                }
            };
            Ok(Some(stack.full_name(&local)))
        }
    }
}

fn change(c: &Check<'_>, ctx: &str, s: &Spanned<raw::Step>) -> R<ServiceChange> {
    let r = s.get_ref();
    let key = |field: &str| format!("{ctx}: {field}");
    let map = |m: &Option<Spanned<raw::Map>>| {
        m.as_ref().map(|m| {
            m.get_ref()
                .iter()
                .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                .collect()
        })
    };
    let change = ServiceChange {
        env: map(&r.env),
        labels: match &r.labels {
            Some(l) => Some(c.labels(&key("labels"), Some(l.get_ref()))?),
            None => None,
        },
        replicas: match &r.replicas {
            Some(n) => Some(c.replicas(n, &key("replicas"))?),
            None => None,
        },
        update: match &r.update_config {
            Some(_) => Some(c.update_config(&key("update_config"), &r.update_config, false)?),
            None => None,
        },
        healthcheck: r
            .healthcheck
            .as_ref()
            .map(|h| c.healthcheck(&key("healthcheck"), h))
            .transpose()?,
        stop_grace_period: r
            .stop_grace_period
            .as_ref()
            .map(|d| c.duration(&key("stop_grace_period"), d))
            .transpose()?,
        force: r.force.as_ref().is_some_and(|f| *f.get_ref()),
    };
    if change == ServiceChange::default() {
        return Err(c.err(
            s,
            ctx,
            "action \"update\" needs at least one of env, labels, replicas, update_config, healthcheck, stop_grace_period, force = true",
        ));
    }
    Ok(change)
}

/// `update_image rollcheck/testsvc:2`, `exec <command, first 40 characters>`, ...
fn default_label(action: &Action) -> String {
    let name = action.name();
    match action {
        Action::Exec { command, .. } => {
            let short: String = command.chars().take(40).collect();
            let more = if command.chars().count() > 40 {
                "…"
            } else {
                ""
            };
            format!("{name} {short}{more}")
        }
        Action::Http { url, method, .. } => format!("{name} {method} {url}"),
        Action::Sleep(d) => format!("{name} {}", humantime::format_duration(*d)),
        Action::WaitHttp { url, .. } => format!("{name} {url}"),
        Action::UpdateImage { image, .. } => format!("{name} {image}"),
        Action::Scale { replicas, .. } => format!("{name} {replicas}"),
        Action::Node { node, .. } => format!("{name} {node}"),
        Action::ManagerStop { count } => format!("{name} {count}"),
        Action::ContainerRun(c) => format!("{name} {} {} :{}", c.name, c.image, c.port),
        Action::UpstreamSet { servers, .. } => format!("{name} {}", servers.join(", ")),
        a if a.container().is_some() => format!("{name} {}", a.container().unwrap_or_default()),
        Action::Update { change, .. } => {
            let parts: Vec<&str> = [
                ("env", change.env.is_some()),
                ("labels", change.labels.is_some()),
                ("replicas", change.replicas.is_some()),
                ("update_config", change.update.is_some()),
                ("healthcheck", change.healthcheck.is_some()),
                ("stop_grace_period", change.stop_grace_period.is_some()),
                ("force", change.force),
            ]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect();
            format!("{name} {}", parts.join(", "))
        }
        _ => name.to_string(),
    }
}

impl Check<'_> {
    /// Steps run in file order: an `at` before the previous step's earliest start would run
    /// silently late, and with a fixed `duration` a step that cannot start before the load
    /// ends would never run, and the gate would pass a rollout that never happened.
    pub(super) fn steps_fit_run(
        &self,
        raw: &raw::Scenario,
        steps: &[Step],
        duration: Option<Duration>,
    ) -> R<()> {
        let mut earliest = Duration::ZERO;
        let mut previous: Option<&Step> = None;
        for (step, r) in steps.iter().zip(&raw.step) {
            let r = r.get_ref();
            let timing_at = r.at.as_ref().or(r.after.as_ref());
            let key = |name: &str| format!("step {}: {name}", step.index);
            let start = match step.timing {
                Timing::At(at) => {
                    if let (Some(p), Some(span)) = (previous, r.at.as_ref())
                        && at < earliest
                    {
                        return Err(self.err(
                            span,
                            &key("at"),
                            format!(
                                "{} is before step {} ({}), which starts at {} or later; steps run in file order",
                                humantime::format_duration(at),
                                p.index,
                                p.label,
                                humantime::format_duration(earliest)
                            ),
                        ));
                    }
                    at
                }
                Timing::After(after) => earliest + after,
            };
            if let Some(d) = duration
                && start >= d
            {
                let what = format!(
                    "starts at {} or later, when the load has ended (load.duration = {}): it would never run",
                    humantime::format_duration(start),
                    humantime::format_duration(d)
                );
                return Err(match timing_at {
                    Some(span) => self.err(
                        span,
                        &key(if r.at.is_some() { "at" } else { "after" }),
                        what,
                    ),
                    None => self.err_span(
                        raw_step_span(raw, step.index),
                        &format!("step {}", step.index),
                        what,
                    ),
                });
            }
            earliest = start;
            previous = Some(step);
        }
        Ok(())
    }
}

fn raw_step_span(raw: &raw::Scenario, index: usize) -> std::ops::Range<usize> {
    raw.step[index - 1].span()
}
