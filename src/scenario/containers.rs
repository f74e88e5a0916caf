//! A `docker` lab (`[lab] kind = "docker"`): plain containers on one engine, no orchestrator,
//! and rollcheck's nginx in front of them, whose upstream the steps switch. This is the hot
//! deploy teams run on one host: start the new version on a new port, point nginx at it,
//! reload, stop the old one. Here: `[[container]]`, the container steps, and the rules that
//! tie them together in file order (a step names only containers started before it).

use super::plan::*;
use super::raw::{self, Text};
use super::service::{NAME_RULE, docker_name};
use super::validate::{Check, R};
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

mod order;
use order::{Started, State};

/// A plain container: `[[container]]`, or what a `container_run` step starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// The scenario's name for it, and its name on the engine.
    pub name: String,
    pub image: String,
    /// Published on 127.0.0.1 only; the edge proxies to `127.0.0.1:port`.
    pub port: u16,
    /// Where the app listens inside the container.
    pub container_port: u16,
    pub env: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
}

/// What a `docker` lab sets up before the load: its containers, and the nginx edge in front
/// of `upstream`.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSetup {
    pub containers: Vec<Container>,
    pub edge: Edge,
    /// The containers the edge proxies to when the load starts (`[edge] upstream`; all of
    /// `containers` when not given).
    pub upstream: Vec<String>,
}

impl DockerSetup {
    /// Every container the run may start, `[[container]]` first, then the steps' in order.
    pub fn all_containers<'a>(&'a self, steps: &'a [Step]) -> Vec<&'a Container> {
        self.containers
            .iter()
            .chain(steps.iter().filter_map(|s| match &s.action {
                Action::ContainerRun(c) => Some(c.as_ref()),
                _ => None,
            }))
            .collect()
    }
}

/// How `upstream_set` makes nginx use the new upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// `nginx -s reload`: new workers take new connections, old ones finish theirs.
    Reload,
    /// The edge container restarted: nginx stops listening until it is back.
    Restart,
}

/// The fields a container takes, from `[[container]]` or a `container_run` step.
pub(super) struct ContainerFields<'a> {
    pub name: &'a Option<Text>,
    pub image: &'a Option<Text>,
    pub port: &'a Option<Spanned<u16>>,
    pub container_port: &'a Option<Spanned<u16>>,
    pub env: Option<&'a raw::Map>,
    pub healthcheck: &'a Option<Spanned<raw::Healthcheck>>,
}

impl<'a> From<&'a raw::Container> for ContainerFields<'a> {
    fn from(c: &'a raw::Container) -> Self {
        ContainerFields {
            name: &c.name,
            image: &c.image,
            port: &c.port,
            container_port: &c.container_port,
            env: c.env.as_ref(),
            healthcheck: &c.healthcheck,
        }
    }
}

impl<'a> From<&'a raw::Step> for ContainerFields<'a> {
    fn from(s: &'a raw::Step) -> Self {
        ContainerFields {
            name: &s.name,
            image: &s.image,
            port: &s.port,
            container_port: &s.container_port,
            env: s.env.as_ref().map(|e| e.get_ref()),
            healthcheck: &s.healthcheck,
        }
    }
}

/// The `docker` lab's edge container: a name no scenario container may take.
pub const EDGE_CONTAINER: &str = "rollcheck-edge-docker";

const STOP_GRACE: Duration = Duration::from_secs(10);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

impl Check<'_> {
    /// A container's fields; `at` is where a missing key is reported, `ctx` starts each key.
    pub(super) fn container<T>(
        &self,
        at: &Spanned<T>,
        ctx: &str,
        f: ContainerFields<'_>,
    ) -> R<Container> {
        let key = |k: &str| format!("{ctx}{k}");
        let missing = |k: &str| {
            self.err(
                at,
                ctx.trim_end_matches(['.', ' ', ':']),
                format!("missing required key \"{k}\""),
            )
        };
        let name = self.container_name(
            &key("name"),
            f.name.as_ref().ok_or_else(|| missing("name"))?,
        )?;
        let image = self.image(
            &key("image"),
            f.image.as_ref().ok_or_else(|| missing("image"))?,
        )?;
        let port = f.port.as_ref().ok_or_else(|| {
            self.err(
                at,
                ctx.trim_end_matches(['.', ' ', ':']),
                "missing required key \"port\" (the port it publishes on 127.0.0.1, e.g. port = 9091)",
            )
        })?;
        let nonzero = |p: &Spanned<u16>, k: &str| {
            if *p.get_ref() == 0 {
                Err(self.err(p, &key(k), "must be between 1 and 65535"))
            } else {
                Ok(*p.get_ref())
            }
        };
        Ok(Container {
            name,
            image,
            port: nonzero(port, "port")?,
            container_port: match f.container_port {
                Some(p) => nonzero(p, "container_port")?,
                None => 8080,
            },
            env: self.map(&key("env"), &f.env.cloned())?,
            healthcheck: f
                .healthcheck
                .as_ref()
                .map(|h| self.healthcheck(&key("healthcheck"), h))
                .transpose()?,
        })
    }

    fn container_name(&self, key: &str, v: &Text) -> R<String> {
        if v.get_ref().starts_with("rollcheck-") {
            return Err(self.err(
                v,
                key,
                format!(
                    "\"{}\": names starting with \"rollcheck-\" are rollcheck's own (its edge is {EDGE_CONTAINER}); choose another",
                    v.get_ref()
                ),
            ));
        }
        if !docker_name(v.get_ref()) {
            return Err(self.err(
                v,
                key,
                format!("invalid container name \"{}\" ({NAME_RULE})", v.get_ref()),
            ));
        }
        Ok(v.get_ref().clone())
    }

    /// `[lab] kind = "docker"`: its `[[container]]`s and the edge in front of them.
    pub(super) fn docker_setup(&self, raw: &raw::Scenario, edge: Edge) -> R<DockerSetup> {
        if let Some(s) = &raw.service {
            return Err(self.err(
                s,
                "",
                "[service] is a Swarm service; a docker lab runs plain containers: give them as [[container]] (name, image, port) and start more with container_run steps",
            ));
        }
        if let Some(s) = &raw.stack {
            return Err(self.err(
                s,
                "",
                "[stack] is deployed on a swarm; a docker lab has none: use [lab] kind = \"swarm-local\" for a stack",
            ));
        }
        if raw.container.is_empty() {
            return Err(self.src.error(
                None,
                "[lab] kind = \"docker\" needs at least one [[container]] (name, image, port): the app the load reaches before any step runs",
            ));
        }
        let containers = raw
            .container
            .iter()
            .enumerate()
            .map(|(i, c)| self.container(c, &format!("container[{i}]."), c.get_ref().into()))
            .collect::<R<Vec<_>>>()?;
        let edge_raw = raw.edge.as_ref().map(|e| e.get_ref());
        if let Some(e) = edge_raw {
            let refuse = |at: Option<std::ops::Range<usize>>, key: &str, why: &str| match at {
                Some(span) => Err(self.err_span(span, key, why)),
                None => Ok(()),
            };
            if edge.kind != EdgeKind::Nginx {
                refuse(
                    e.kind.as_ref().map(|k| k.span()),
                    "edge.kind",
                    "a docker lab's edge is nginx (rollcheck renders its upstream and reloads it)",
                )?;
            }
            refuse(
                e.mode.as_ref().map(|m| m.span()),
                "edge.mode",
                "a docker lab's nginx is one container on the host's network (no mode to choose)",
            )?;
            if edge.protocol != EdgeProtocol::Http {
                refuse(
                    e.protocol.as_ref().map(|p| p.span()),
                    "edge.protocol",
                    "a docker lab's nginx proxies http",
                )?;
            }
        }
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        let upstream = match edge_raw.and_then(|e| e.upstream.as_ref()) {
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.err(
                        list,
                        "edge.upstream",
                        "must name at least one [[container]]",
                    ));
                }
                list.get_ref()
                    .iter()
                    .map(|n| {
                        if names.contains(&n.get_ref().as_str()) {
                            Ok(n.get_ref().clone())
                        } else {
                            Err(self.err(
                                n,
                                "edge.upstream",
                                format!(
                                    "no [[container]] is named \"{}\"{} (the edge starts in front of containers that run before the load)",
                                    n.get_ref(),
                                    super::error::hint(n.get_ref(), &names)
                                ),
                            ))
                        }
                    })
                    .collect::<R<Vec<_>>>()?
            }
            None => names.iter().map(|n| n.to_string()).collect(),
        };
        Ok(DockerSetup {
            containers,
            edge,
            upstream,
        })
    }

    /// A container step's action: `container_run`, `container_wait_healthy`,
    /// `container_stop`, `container_kill`, `container_rm` or `upstream_set`.
    pub(super) fn container_action(
        &self,
        ctx: &str,
        s: &Spanned<raw::Step>,
        action: &str,
    ) -> R<Action> {
        let r = s.get_ref();
        let key = |k: &str| format!("{ctx}: {k}");
        let name = || -> R<String> {
            let v = r.name.as_ref().ok_or_else(|| {
                self.err(
                    s,
                    ctx,
                    format!("missing required key \"name\" for action \"{action}\" (the container's name)"),
                )
            })?;
            self.container_name(&key("name"), v)
        };
        let signal = |default: &str| -> R<String> {
            match &r.signal {
                Some(v) => signal_name(v.get_ref()).ok_or_else(|| {
                    self.err(
                        v,
                        &key("signal"),
                        format!(
                            "unknown signal \"{}\" (write e.g. \"SIGTERM\", \"SIGQUIT\", \"SIGINT\", \"SIGKILL\")",
                            v.get_ref()
                        ),
                    )
                }),
                None => Ok(default.to_string()),
            }
        };
        Ok(match action {
            "container_run" => Action::ContainerRun(Box::new(self.container(
                s,
                &format!("{ctx}: "),
                r.into(),
            )?)),
            "container_wait_healthy" => Action::ContainerWaitHealthy {
                name: name()?,
                timeout: self.positive(&key("timeout"), &r.timeout, HEALTHY_TIMEOUT)?,
            },
            "container_stop" => Action::ContainerStop {
                name: name()?,
                signal: signal("SIGTERM")?,
                grace: self.opt_duration(&key("grace"), &r.grace, STOP_GRACE)?,
            },
            "container_kill" => Action::ContainerKill {
                name: name()?,
                signal: signal("SIGKILL")?,
            },
            "container_rm" => Action::ContainerRm { name: name()? },
            "upstream_set" => {
                let servers = r.servers.as_ref().ok_or_else(|| {
                    self.err(
                        s,
                        ctx,
                        "missing required key \"servers\" for action \"upstream_set\" (the containers nginx proxies to from now on, e.g. servers = [\"app-v2\"])",
                    )
                })?;
                if servers.get_ref().is_empty() {
                    return Err(self.err(
                        servers,
                        &key("servers"),
                        "must name at least one container (nginx refuses an empty upstream)",
                    ));
                }
                let servers = servers
                    .get_ref()
                    .iter()
                    .map(|n| self.container_name(&key("servers"), n))
                    .collect::<R<Vec<_>>>()?;
                let switch = self.opt_choice(
                    &key("mode"),
                    &r.mode,
                    &[("reload", Switch::Reload), ("restart", Switch::Restart)],
                )?;
                let drain = match &r.wait {
                    Some(v) => self.choice(
                        &key("wait"),
                        "value",
                        v,
                        &[("drained", true), ("none", false)],
                    )?,
                    None => switch == Switch::Reload,
                };
                if let (Some(w), Switch::Restart, true) = (&r.wait, switch, drain) {
                    return Err(self.err(
                        w,
                        &key("wait"),
                        "wait = \"drained\" waits for the old nginx workers after a reload; a restart has none",
                    ));
                }
                if let (Some(t), false) = (&r.timeout, drain) {
                    return Err(self.err(
                        t,
                        &key("timeout"),
                        "only applies with wait = \"drained\"",
                    ));
                }
                Action::UpstreamSet {
                    servers,
                    switch,
                    drain: drain
                        .then(|| self.positive(&key("timeout"), &r.timeout, DRAIN_TIMEOUT))
                        .transpose()?,
                }
            }
            other => unreachable!("not a container action: {other}"),
        })
    }

    /// In file order: each container name is started once, a step names only a container
    /// started before it and not removed since, and no two containers (nor the edge) publish
    /// the same port.
    pub(super) fn containers_fit(
        &self,
        raw: &raw::Scenario,
        setup: &DockerSetup,
        steps: &[Step],
    ) -> R<()> {
        let mut started = Started {
            known: BTreeMap::new(),
            ports: BTreeMap::from([(
                setup.edge.publish.port(),
                "the edge (edge.publish)".to_string(),
            )]),
        };
        let start = |started: &mut Started,
                     c: &Container,
                     by: String,
                     at: std::ops::Range<usize>,
                     key: &str|
         -> R<()> {
            started
                .start(c, by)
                .map_err(|why| self.err_span(at, key, why))
        };
        for (i, c) in setup.containers.iter().enumerate() {
            let r = &raw.container[i];
            let at = r.get_ref().port.as_ref().map_or(r.span(), |p| p.span());
            start(
                &mut started,
                c,
                format!("[[container]] {}", i + 1),
                at,
                &format!("container[{i}]"),
            )?;
        }
        for step in steps {
            let r = raw.step[step.index - 1].get_ref();
            let ctx = format!("step {}", step.index);
            if let Action::ContainerRun(c) = &step.action {
                let at = r
                    .name
                    .as_ref()
                    .map_or(raw.step[step.index - 1].span(), |n| n.span());
                let at = if started.known.contains_key(&c.name) {
                    at
                } else {
                    r.port.as_ref().map_or(at, |p| p.span())
                };
                start(&mut started, c, ctx.clone(), at, &ctx)?;
                continue;
            }
            let named: Vec<(&str, std::ops::Range<usize>)> = match &step.action {
                Action::UpstreamSet { servers, .. } => {
                    let list = r.servers.as_ref().expect("validated");
                    servers
                        .iter()
                        .zip(list.get_ref())
                        .map(|(n, t)| (n.as_str(), t.span()))
                        .collect()
                }
                a => match a.container() {
                    Some(n) => vec![(n, r.name.as_ref().expect("validated").span())],
                    None => continue,
                },
            };
            for (name, span) in named {
                let Some(life) = started.known.get_mut(name) else {
                    let names: Vec<&str> = started.known.keys().map(String::as_str).collect();
                    return Err(self.err_span(
                        span,
                        &ctx,
                        format!(
                            "no container \"{name}\" was started before this step{} (start it with [[container]] or a container_run step first)",
                            super::error::hint(name, &names)
                        ),
                    ));
                };
                let next = life.after(&step.action, step.index).map_err(|why| {
                    self.err_span(span.clone(), &ctx, format!("container \"{name}\" {why}"))
                })?;
                life.state = next;
                if let State::Removed(_) = next {
                    let port = life.port;
                    started.ports.remove(&port);
                }
            }
        }
        Ok(())
    }
}

/// `SIGTERM`, `TERM`, `15`, `sigterm` → `SIGTERM`; `None` for a name Docker would refuse.
fn signal_name(s: &str) -> Option<String> {
    const SIGNALS: [(&str, u8); 12] = [
        ("SIGHUP", 1),
        ("SIGINT", 2),
        ("SIGQUIT", 3),
        ("SIGKILL", 9),
        ("SIGUSR1", 10),
        ("SIGUSR2", 12),
        ("SIGTERM", 15),
        ("SIGCONT", 18),
        ("SIGSTOP", 19),
        ("SIGWINCH", 28),
        ("SIGPWR", 30),
        ("SIGALRM", 14),
    ];
    let up = s.trim().to_ascii_uppercase();
    let full = if up.starts_with("SIG") {
        up.clone()
    } else {
        format!("SIG{up}")
    };
    SIGNALS
        .iter()
        .find(|(n, num)| *n == full || up.parse::<u8>().ok() == Some(*num))
        .map(|(n, _)| n.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signals() {
        for (given, want) in [
            ("SIGTERM", Some("SIGTERM")),
            ("term", Some("SIGTERM")),
            ("15", Some("SIGTERM")),
            ("sigquit", Some("SIGQUIT")),
            ("SIGFOO", None),
            ("99", None),
        ] {
            assert_eq!(super::signal_name(given).as_deref(), want, "{given}");
        }
    }
}
