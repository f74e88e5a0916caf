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
        if let Lab::SwarmCluster { .. } = lab {
            return Err(self.err(
                s,
                "",
                "[stack] on a swarm-cluster lab is not supported yet: use kind = \"swarm-local\"",
            ));
        }
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
        let front = self.stack_edge(s, scenario.edge.as_ref(), &compose)?;
        if let Some(k) = r.keep.as_ref().filter(|_| *lab != Lab::Existing) {
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
            if !publishes.is_empty() {
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
        let fields = [
            ("publish", r.publish.as_ref().map(|v| v.span())),
            ("mode", r.mode.as_ref().map(|v| v.span())),
            ("protocol", r.protocol.as_ref().map(|v| v.span())),
            ("retries", r.retries.as_ref().map(|v| v.span())),
            ("healthcheck", r.healthcheck.as_ref().map(|v| v.span())),
        ];
        if let Some((field, Some(span))) = fields.into_iter().find(|(_, s)| s.is_some()) {
            return Err(self.err_span(
                span,
                &format!("edge.{field}"),
                "rollcheck runs no edge of its own in front of a stack: the stack's compose file says how its proxy publishes and proxies",
            ));
        }
        if !publishes.is_empty() && !consent {
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
