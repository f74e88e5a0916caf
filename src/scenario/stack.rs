//! `[stack]` → [`StackSetup`]: the stack's name, its compose files (read before anything is
//! deployed: see [`compose`]), and its front door. With a stack, the stack's own proxy takes
//! the load: `[edge]` may only say `kind = "stack"`, which of the stack's services that is,
//! and consent to the ports a stack publishes (Swarm binds them on every interface).

use super::compose::{self, Compose};
use super::error::hint;
use super::plan::*;
use super::raw;
use super::validate::{Check, R};
use std::path::PathBuf;
use toml::Spanned;

impl Check<'_> {
    pub(super) fn stack(
        &self,
        s: &Spanned<raw::Stack>,
        scenario: &raw::Scenario,
        lab: &Lab,
    ) -> R<StackSetup> {
        let r = s.get_ref();
        let cluster = matches!(lab, Lab::SwarmCluster { .. });
        let name = self.required(s, "stack", "name", &r.name)?;
        if !stack_name(name.get_ref()) {
            return Err(self.err(
                name,
                "stack.name",
                format!(
                    "invalid stack name \"{}\" (lowercase letters, digits, \"_\" and \"-\", starting with a letter or digit; at most 32)",
                    name.get_ref()
                ),
            ));
        }
        let files = r.compose.as_ref().ok_or_else(|| {
            self.err(
                s,
                "stack",
                "missing required key \"compose\" (your compose file, e.g. compose = \"docker-compose.yml\")",
            )
        })?;
        let (files, compose) = self.compose_files("stack.compose", files)?;
        let front = self.stack_edge(s, scenario.edge.as_ref(), &compose, cluster)?;
        let outer = if cluster {
            Some(self.stack_outer(s, scenario.edge.as_ref(), &compose, front.as_deref())?)
        } else {
            None
        };
        if let Some(k) = r
            .keep
            .as_ref()
            .filter(|_| !matches!(lab, Lab::Existing { .. }))
        {
            return Err(self.err(
                k,
                "stack.keep",
                "only on an existing swarm ([lab] kind = \"existing\"): rollcheck removes what it deploys on its own lab",
            ));
        }
        Ok(StackSetup {
            lab: lab.clone(),
            name: name.get_ref().clone(),
            files,
            compose,
            front,
            keep: r.keep.as_ref().is_some_and(|k| *k.get_ref()),
            outer,
        })
    }

    /// Resolves compose file names against the scenario's directory and reads them.
    pub(super) fn compose_files(
        &self,
        key: &str,
        files: &Spanned<raw::Files>,
    ) -> R<(Vec<PathBuf>, Compose)> {
        let names = files.get_ref().list();
        if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
            return Err(self.err(files, key, "name at least one compose file, none empty"));
        }
        let paths: Vec<PathBuf> = names
            .iter()
            .map(|n| compose::resolve(self.src.path, n))
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
            return Err(self.err(
                files,
                key,
                format!(
                    "{} does not exist (compose files are found relative to the scenario file)",
                    missing.display()
                ),
            ));
        }
        let compose = compose::read(&paths, self.env)?;
        Ok((paths, compose))
    }

    /// `[edge]` beside a `[stack]`: the stack's own proxy, optionally named.
    fn stack_edge(
        &self,
        stack: &Spanned<raw::Stack>,
        edge: Option<&Spanned<raw::Edge>>,
        compose: &Compose,
        cluster: bool,
    ) -> R<Option<String>> {
        let publishes: Vec<&str> = compose
            .services
            .iter()
            .filter(|(_, s)| s.publishes)
            .map(|(n, _)| n.as_str())
            .collect();
        let consent = edge
            .and_then(|e| e.get_ref().all_interfaces.as_ref())
            .is_some_and(|b| *b.get_ref());
        let Some(e) = edge else {
            // On a cluster the ports bind on the node containers, not on this machine.
            if !publishes.is_empty() && !cluster {
                return Err(self.err(
                    stack,
                    "stack",
                    format!(
                        "{} publishes ports, which Swarm binds on every interface of this machine (Swarm ports take no address); add [edge] kind = \"stack\" with all_interfaces = true to accept that",
                        publishes.join(", ")
                    ),
                ));
            }
            return Ok(None);
        };
        let r = e.get_ref();
        match &r.kind {
            Some(k) if k.get_ref() != "stack" => {
                return Err(self.err(
                    k,
                    "edge.kind",
                    format!(
                        "\"{}\" with a [stack]: the stack's own proxy is the front door, so the only kind is \"stack\"",
                        k.get_ref()
                    ),
                ));
            }
            _ => {}
        }
        // On a cluster lab rollcheck's outer edge takes `publish` and `outer`.
        let own = |v: Option<std::ops::Range<usize>>| v.filter(|_| !cluster);
        let fields = [
            ("publish", own(r.publish.as_ref().map(|v| v.span()))),
            ("outer", own(r.outer.as_ref().map(|v| v.span()))),
            ("mode", r.mode.as_ref().map(|v| v.span())),
            ("protocol", r.protocol.as_ref().map(|v| v.span())),
            ("retries", r.retries.as_ref().map(|v| v.span())),
            ("healthcheck", r.healthcheck.as_ref().map(|v| v.span())),
            ("tls", r.tls.as_ref().map(|v| v.span())),
        ];
        if let Some((field, Some(span))) = fields.into_iter().find(|(_, s)| s.is_some()) {
            return Err(self.err_span(
                span,
                &format!("edge.{field}"),
                if matches!(field, "publish" | "outer") {
                    "rollcheck runs no edge of its own in front of a stack on this lab: the stack's compose file says how its proxy publishes (on a swarm-cluster lab, `outer` and `publish` place rollcheck's edge in front of the nodes)"
                } else {
                    "rollcheck runs no edge of its own in front of a stack: the stack's compose file says how its proxy publishes and proxies"
                },
            ));
        }
        if !publishes.is_empty() && !consent && !cluster {
            return Err(self.err(
                e,
                "edge",
                format!(
                    "{} publishes ports, which Swarm binds on every interface of this machine (Swarm ports take no address); set edge.all_interfaces = true to accept that",
                    publishes.join(", ")
                ),
            ));
        }
        match &r.service {
            Some(s) if !compose.services.contains_key(s.get_ref()) => {
                let names: Vec<&str> = compose.services.keys().map(String::as_str).collect();
                Err(self.err(
                    s,
                    "edge.service",
                    format!(
                        "the stack has no service \"{}\"{}",
                        s.get_ref(),
                        hint(s.get_ref(), &names)
                    ),
                ))
            }
            Some(s) => Ok(Some(s.get_ref().clone())),
            None => Ok(None),
        }
    }

    /// A stack on the cluster lab: the front door named in `[edge] service` and the first
    /// port it publishes, which rollcheck's outer edge (`outer`, HAProxy by default, on
    /// `publish`, 127.0.0.1:8080 by default) sends the load to on every node.
    fn stack_outer(
        &self,
        stack: &Spanned<raw::Stack>,
        edge: Option<&Spanned<raw::Edge>>,
        compose: &Compose,
        front: Option<&str>,
    ) -> R<StackOuter> {
        let need = || {
            self.err(
                stack,
                "stack",
                "a stack on a swarm-cluster lab needs [edge] kind = \"stack\" with service = its proxy: rollcheck's outer edge on 127.0.0.1 sends the load to that service's published port on every node",
            )
        };
        let (Some(e), Some(front)) = (edge, front) else {
            return Err(need());
        };
        let r = e.get_ref();
        let node_port = compose.services[front]
            .published
            .first()
            .copied()
            .ok_or_else(|| {
                self.err(
                    e,
                    "edge.service",
                    format!(
                        "\"{front}\" publishes no port (as a number) in the compose files: on a cluster lab the outer edge sends the load to it"
                    ),
                )
            })?;
        let publish = match &r.publish {
            Some(p) => self.publish(p)?,
            None => std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 8080)),
        };
        Ok(StackOuter {
            edge: Edge {
                kind: self.opt_choice(
                    "edge.outer",
                    &r.outer,
                    &[("haproxy", EdgeKind::Haproxy), ("nginx", EdgeKind::Nginx)],
                )?,
                publish,
                mode: EdgeMode::Container,
                protocol: EdgeProtocol::Http,
                retries: true,
                healthcheck: None,
                tls: None,
            },
            node_port,
        })
    }
}

/// `docker stack deploy` takes names its services and networks are prefixed with.
fn stack_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
}
