//! Raw model → [`Plan`]: defaults applied, durations parsed, names turned into enums, and the
//! cross-section rules checked. Each error points at the offending value (or its section
//! header when a key is missing) and starts with the key path.

use super::document::with_context;
use super::error::{ScenarioError, Source, Span, hint};
use super::plan::*;
use super::raw::{self, Text};
use super::steps;
use std::collections::BTreeMap;

use std::time::Duration;
use toml::Spanned;

pub(super) type R<T> = Result<T, ScenarioError>;

pub(super) const SECOND: Duration = Duration::from_secs(1);

/// The longest duration a scenario may give anywhere.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The fastest open-model rate: one generator here reaches about 27,000 req/s
/// (ci/bench-load); beyond this a typo writes gigabytes of requests.csv in minutes.
pub const MAX_RATE: f64 = 100_000.0;
/// The most tasks a scenario asks one service for: a lab runs on one machine.
pub const MAX_REPLICAS: u64 = 1000;
/// The shortest histogram interval: one histogram per interval, so "1ns" allocated gigabytes.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

pub(super) fn plan(
    raw: raw::Scenario,
    src: &Source<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> R<Plan> {
    let c = Check { src, env };
    let stem = src
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = match &raw.title {
        Some(t) if t.get_ref().trim().is_empty() => {
            return Err(c.err(t, "title", "must not be empty"));
        }
        Some(t) => t.get_ref().clone(),
        None => stem.clone(),
    };

    let lab = raw.lab.as_ref().map(|l| c.lab(l)).transpose()?;
    let existing = matches!(lab, Some(Lab::Existing { .. }));
    let docker = lab == Some(Lab::Docker);
    if let (false, Some(first)) = (docker, raw.container.first()) {
        return Err(c.err(
            first,
            "container",
            "[[container]] needs [lab] kind = \"docker\" (plain containers behind rollcheck's nginx); a swarm lab runs a [service] or a [stack]",
        ));
    }
    if let Some(u) = raw
        .edge
        .as_ref()
        .and_then(|e| e.get_ref().upstream.as_ref())
        .filter(|_| !docker)
    {
        return Err(c.err(
            u,
            "edge.upstream",
            "only valid with [lab] kind = \"docker\" (a swarm lab's edge follows the service's tasks)",
        ));
    }
    if existing {
        c.existing_sections(&raw)?;
    }
    if lab.is_none() {
        if let Some(s) = &raw.stack {
            return Err(c.err(
                s,
                "",
                "[stack] needs a [lab] section (kind = \"swarm-local\"): rollcheck deploys the stack on a lab it runs",
            ));
        }
        if let Some(s) = &raw.service {
            return Err(c.err(
                s,
                "",
                "[service] needs a [lab] section: rollcheck only creates services in a lab it runs",
            ));
        }
        if let Some(e) = &raw.edge {
            return Err(c.err(
                e,
                "",
                "[edge] needs a [lab] section: rollcheck only runs an edge proxy in a lab it runs",
            ));
        }
    }
    if let (Some(s), Some(_)) = (&raw.service, &raw.stack) {
        return Err(c.err(
            s,
            "",
            "[service] and [stack] exclude each other: a stack's services are in its compose file",
        ));
    }
    let docker_setup = if docker {
        let edge = raw.edge.as_ref().map(|e| c.edge(e)).transpose()?;
        Some(c.docker_setup(&raw, edge.unwrap_or_else(Edge::default_nginx))?)
    } else {
        None
    };
    let stack = match (&raw.stack, &lab) {
        (Some(s), Some(lab)) => Some(c.stack(s, &raw, lab)?),
        _ => None,
    };
    let service = match (&raw.service, &raw.lab) {
        (None, Some(_)) if docker => None,
        (Some(s), _) => Some(c.service(s)?),
        (None, Some(_)) if stack.is_some() || existing => None,
        (None, Some(l)) => {
            return Err(c.err(
                l,
                "",
                "[lab] needs a [service] section (the service under test) or a [stack] (your compose file)",
            ));
        }
        (None, None) => None,
    };
    let edge = match &raw.edge {
        // A stack's [edge] was read with it, a docker lab's too.
        _ if stack.is_some() || docker => None,
        Some(e) => Some(c.edge(e)?),
        None if lab.is_some() && !existing => Some(Edge::default_nginx()),
        None => None,
    };
    if let (Some(lab), Some(edge)) = (&lab, &edge) {
        c.edge_fits_lab(&raw, lab, edge, service.as_ref())?;
    }
    let mut load = match &raw.load {
        Some(l) => c.load(l)?,
        None => {
            return Err(src.error(
                None,
                "missing required section [load] (at least `target = \"http://...\"`)",
            ));
        }
    };
    if let Some(l) = raw.load.as_ref().map(|l| l.get_ref())
        && load.agents()
    {
        // Named where the agents were asked for: `generators`, else `placement`.
        let at = match (&l.generators, &l.placement) {
            (Some(g), _) => (g.span(), "load.generators"),
            (None, Some(p)) => (p.span(), "load.placement"),
            (None, None) => unreachable!("agents() needs one of them"),
        };
        c.generators_fit(at, &raw, lab.as_ref(), &load)?;
    }
    if let Some(e) = edge.as_ref().or(docker_setup.as_ref().map(|d| &d.edge))
        && let Some(cert) = &e.tls
    {
        c.edge_tls_fits(&raw, lab.as_ref(), e, &load)?;
        // The load trusts the run's CA unless the scenario names its own trust.
        if load.tls.ca.is_empty() && !load.tls.insecure {
            load.tls.ca = vec![cert.ca_der()];
        }
    }
    let steps = raw
        .step
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let targets = match (&stack, &service) {
                (Some(st), _) => steps::Targets::Stack(st),
                (None, Some(s)) => steps::Targets::Service(&s.name),
                (None, None) if existing => steps::Targets::Existing,
                (None, None) => steps::Targets::None,
            };
            steps::step(&c, i + 1, s, &targets, lab.as_ref())
        })
        .collect::<R<Vec<_>>>()?;
    c.steps_fit_run(&raw, &steps, load.duration)?;
    if let Some(d) = &docker_setup {
        c.containers_fit(&raw, d, &steps)?;
    }
    if let Some(step) = steps
        .iter()
        .find(|s| stack.is_some() && matches!(s.action, Action::NodeAvailability { .. }))
    {
        return Err(c.err(
            &raw.step[step.index - 1],
            &format!("step {}", step.index),
            "node_drain and node_activate on an existing swarm are not supported with a [stack] yet: act on the running services instead (no [stack])",
        ));
    }
    let gate = raw
        .gate
        .as_ref()
        .map(|g| c.gate(g))
        .transpose()?
        .unwrap_or_default();
    // A limit on the time to converge with no step that converges could never be checked.
    if let Some(limit) = raw
        .gate
        .as_ref()
        .and_then(|g| g.get_ref().max_converge.as_ref())
        && !steps.iter().any(|s| s.action.converges())
    {
        return Err(c.err(
            limit,
            "gate.max_converge",
            "no step waits for the service to converge: give a rollout step wait = \"converged\" (the default), or remove this limit",
        ));
    }

    Ok(Plan {
        title,
        source: src.path.to_path_buf(),
        slug: slug(&stem),
        setup: match (lab, service, edge, stack) {
            _ if docker_setup.is_some() => Setup::Docker(Box::new(docker_setup.expect("checked"))),
            (Some(_), _, _, Some(stack)) => Setup::Stack(Box::new(stack)),
            (Some(Lab::Existing { .. }), _, _, None) => {
                let mut services: Vec<String> = Vec::new();
                for name in steps.iter().filter_map(|s| s.service.as_ref()) {
                    if !services.contains(name) {
                        services.push(name.clone());
                    }
                }
                let restore = raw.lab.as_ref().and_then(|l| l.get_ref().restore.as_ref());
                Setup::Existing(Box::new(ExistingSetup {
                    services,
                    restore: restore.is_none_or(|r| *r.get_ref()),
                }))
            }
            (Some(lab), Some(service), Some(edge), None) => {
                Setup::Lab(Box::new(LabSetup { lab, service, edge }))
            }
            // Checked above: a lab has a service, and an edge (nginx unless [edge] says).
            _ => Setup::External,
        },
        load,
        steps,
        gate,
        secrets: Default::default(),
    })
}

impl Check<'_> {
    /// `[load] generators` > 1 or a `placement`: rollcheck deploys its agents as a Swarm job on the cluster
    /// lab's nodes, and sends them what it would send itself.
    fn generators_fit(
        &self,
        (at, key): (std::ops::Range<usize>, &str),
        raw: &raw::Scenario,
        lab: Option<&Lab>,
        load: &Load,
    ) -> R<()> {
        let Some(Lab::SwarmCluster {
            managers,
            workers,
            drain_managers,
        }) = lab
        else {
            return Err(self.err_span(
                at.clone(),
                key,
                "generators on the cluster's nodes need [lab] kind = \"swarm-cluster\": rollcheck deploys them as a Swarm job on the lab's nodes (one per node); without it, leave generators and placement out (this process sends the load)",
            ));
        };
        if raw.stack.is_some() {
            return Err(self.err_span(
                at.clone(),
                key,
                "generators on the cluster's nodes are not supported with a [stack] yet: use a [service]",
            ));
        }
        let nodes = workers + if *drain_managers { 0 } else { *managers };
        if load.generators > nodes {
            return Err(self.err_span(
                at.clone(),
                key,
                format!(
                    "{} generators need {} nodes that run tasks (one generator per node); the lab has {nodes}",
                    load.generators, load.generators
                ),
            ));
        }
        if let LoadModel::Closed { concurrency, .. } = load.model
            && concurrency < load.generators as usize
        {
            return Err(self.err_span(
                at.clone(),
                key,
                format!(
                    "{} generators share load.concurrency = {concurrency} workers: each needs at least one",
                    load.generators
                ),
            ));
        }
        let binary = crate::agent::spec::binary_size(load);
        if binary > crate::agent::spec::MAX_BINARY {
            return Err(self.err_span(
                at.clone(),
                key,
                format!(
                    "the generators get the [[load.request]] bodies and load.tls.ca in their environment, which holds at most {} KiB of them; these take {} KiB: use smaller bodies, or leave generators and placement out (this process sends the load)",
                    crate::agent::spec::MAX_BINARY / 1024,
                    binary.div_ceil(1024)
                ),
            ));
        }
        Ok(())
    }
}

/// File stem, lowercased, every character outside `[a-z0-9]` replaced by `-`.
pub(super) fn slug(stem: &str) -> String {
    stem.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Validation helpers shared by the sections and the steps.
pub(super) struct Check<'a> {
    pub src: &'a Source<'a>,
    /// Answers `${VAR}` in files the scenario names (compose files).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Check<'_> {
    pub fn err<T>(
        &self,
        at: &Spanned<T>,
        key: &str,
        message: impl std::fmt::Display,
    ) -> ScenarioError {
        self.err_span(at.span(), key, message)
    }

    /// A replica count within [`MAX_REPLICAS`].
    pub fn replicas(&self, n: &Spanned<u64>, key: &str) -> Result<u64, ScenarioError> {
        if *n.get_ref() > MAX_REPLICAS {
            return Err(self.err(
                n,
                key,
                format!(
                    "must be at most {MAX_REPLICAS} (every task of a lab runs on this machine)"
                ),
            ));
        }
        Ok(*n.get_ref())
    }

    pub fn err_span(
        &self,
        span: Span,
        key: &str,
        message: impl std::fmt::Display,
    ) -> ScenarioError {
        self.src
            .error(Some(span), with_context(key, &message.to_string()))
    }

    pub fn required<'v, T, S>(
        &self,
        section: &Spanned<S>,
        key: &str,
        name: &str,
        v: &'v Option<Spanned<T>>,
    ) -> R<&'v Spanned<T>> {
        v.as_ref()
            .ok_or_else(|| self.err(section, key, format!("missing required key \"{name}\"")))
    }

    /// Every duration of a scenario, at most [`MAX_DURATION`]: humantime accepts up to u64
    /// seconds, and a run clock's `Instant` plus such a value overflowed (a panic in `run`
    /// after `check` had passed it).
    pub fn duration(&self, key: &str, v: &Text) -> R<Duration> {
        let d = humantime::parse_duration(v.get_ref().trim()).map_err(|_| {
            self.err(
                v,
                key,
                format!(
                    "invalid duration \"{}\" (write e.g. \"250ms\", \"5s\", \"2m\")",
                    v.get_ref()
                ),
            )
        })?;
        if d > MAX_DURATION {
            return Err(self.err(
                v,
                key,
                format!(
                    "\"{}\" is longer than 24h, the longest run rollcheck measures",
                    v.get_ref()
                ),
            ));
        }
        Ok(d)
    }

    /// A duration of at least `min` (Docker's own lower bounds, the histogram interval).
    pub fn at_least(
        &self,
        key: &str,
        v: &Option<Text>,
        default: Duration,
        min: Duration,
        why: &str,
    ) -> R<Duration> {
        let d = self.opt_duration(key, v, default)?;
        match v {
            Some(v) if d < min => Err(self.err(
                v,
                key,
                format!(
                    "must be at least {} ({why})",
                    humantime::format_duration(min)
                ),
            )),
            _ => Ok(d),
        }
    }

    pub fn opt_duration(&self, key: &str, v: &Option<Text>, default: Duration) -> R<Duration> {
        v.as_ref().map_or(Ok(default), |v| self.duration(key, v))
    }

    /// A duration that must not be zero (timeouts, intervals).
    pub fn positive(&self, key: &str, v: &Option<Text>, default: Duration) -> R<Duration> {
        let d = self.opt_duration(key, v, default)?;
        match v {
            Some(v) if d.is_zero() => Err(self.err(v, key, "must be greater than 0")),
            _ => Ok(d),
        }
    }

    pub fn choice<T: Copy>(&self, key: &str, what: &str, v: &Text, options: &[(&str, T)]) -> R<T> {
        let word = v.get_ref();
        options
            .iter()
            .find(|(name, _)| name == word)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.err(
                    v,
                    key,
                    format!("unknown {what} \"{word}\"{}", hint(word, &names)),
                )
            })
    }

    pub fn opt_choice<T: Copy>(&self, key: &str, v: &Option<Text>, options: &[(&str, T)]) -> R<T> {
        v.as_ref()
            .map_or(Ok(options[0].1), |v| self.choice(key, "value", v, options))
    }

    /// An `http://` URL with a host: the only kind rollcheck sends requests to.
    /// An `http://` URL (steps' URLs: an https one is refused with a word on why).
    pub fn http_url(&self, key: &str, v: &Text) -> R<http::Uri> {
        self.url(key, v, false)
    }

    /// An `http://` or `https://` URL: what the load sends to.
    pub fn web_url(&self, key: &str, v: &Text) -> R<http::Uri> {
        self.url(key, v, true)
    }

    fn url(&self, key: &str, v: &Text, https: bool) -> R<http::Uri> {
        let text = v.get_ref();
        let uri: http::Uri = text
            .parse()
            .map_err(|e| self.err(v, key, format!("invalid URL \"{text}\" ({e})")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") if https => {}
            Some("https") => {
                return Err(self.err(v, key, format!("\"{text}\": https is not supported here (only the load's target and ready URL speak https)")));
            }
            Some(other) => {
                return Err(self.err(
                    v,
                    key,
                    format!(
                        "\"{text}\": unsupported scheme \"{other}\" (only {} supported)",
                        if https {
                            "http:// and https:// are"
                        } else {
                            "http:// is"
                        }
                    ),
                ));
            }
            None => {
                return Err(self.err(
                    v,
                    key,
                    format!("\"{text}\" needs a scheme: write \"http://{text}\""),
                ));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(self.err(v, key, format!("\"{text}\" has no host")));
        }
        Ok(uri)
    }

    pub fn map(&self, key: &str, m: &Option<raw::Map>) -> R<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (k, v) in m.iter().flatten() {
            if k.is_empty() || k.contains('=') {
                return Err(self.err(v, key, format!("invalid name \"{k}\"")));
            }
            out.insert(k.clone(), v.get_ref().clone());
        }
        Ok(out)
    }

    /// An image reference as the engine's own parser (distribution/reference) reads it: "my
    /// app:1" or "MyApp:1" passed `check` and failed at the engine, after images were built.
    pub fn image(&self, key: &str, v: &Text) -> R<String> {
        let text = v.get_ref();
        if text.trim().is_empty() {
            return Err(self.err(v, key, "must not be empty"));
        }
        if let Err(e) = container_image_dist_ref::ImgRef::new(text) {
            let kind = format!("{:?}", e.kind());
            let mut words = String::new();
            for c in kind.chars() {
                if c.is_uppercase() && !words.is_empty() {
                    words.push(' ');
                }
                words.push(c.to_ascii_lowercase());
            }
            let at = usize::from(e.index());
            let near = text.get(at..).and_then(|t| t.chars().next());
            return Err(self.err(
                v,
                key,
                format!(
                    "\"{text}\" is not an image reference ({words}{}): write [registry/]name[:tag][@digest], the name in lowercase",
                    near.map_or_else(String::new, |c| format!(" at {c:?}"))
                ),
            ));
        }
        Ok(text.clone())
    }

    /// Labels a scenario sets on the service. `rollcheck.*` are rollcheck's own: they mark
    /// what a run created and must remove, so a service carrying someone else's
    /// `rollcheck.run` would be missed by its own run's teardown.
    pub fn labels(&self, key: &str, m: Option<&raw::Map>) -> R<BTreeMap<String, String>> {
        for (k, v) in m.into_iter().flatten() {
            if k.starts_with("rollcheck.") {
                return Err(self.err(
                    v,
                    key,
                    format!("label \"{k}\": rollcheck.* labels are rollcheck's own (they mark what a run created and must remove); choose another name"),
                ));
            }
        }
        self.map(key, &m.cloned())
    }

    /// `[lab] kind = "existing"`: the user's swarm has its own services and front door.
    fn existing_sections(&self, raw: &raw::Scenario) -> R<()> {
        if let Some(s) = &raw.service {
            return Err(self.err(
                s,
                "",
                "[service] on an existing swarm: rollcheck creates no service there; name your running services in the steps (service = \"web\"), or deploy a [stack]",
            ));
        }
        if let (Some(e), None) = (&raw.edge, &raw.stack) {
            return Err(self.err(
                e,
                "",
                "[edge] on an existing swarm: your own front door takes the load (point [load] target at it)",
            ));
        }
        let restore = raw.lab.as_ref().and_then(|l| l.get_ref().restore.as_ref());
        if let (Some(r), Some(_)) = (restore, &raw.stack) {
            return Err(self.err(
                r,
                "lab.restore",
                "a [stack] rollcheck deploys is removed at the end, not restored (keep it with [stack] keep = true)",
            ));
        }
        Ok(())
    }

    fn lab(&self, l: &Spanned<raw::Lab>) -> R<Lab> {
        #[derive(Clone, Copy, PartialEq)]
        enum Kind {
            Local,
            Cluster,
            Existing,
            Docker,
        }
        let kind = self.required(l, "lab", "kind", &l.get_ref().kind)?;
        let kind = self.choice(
            "lab.kind",
            "value",
            kind,
            &[
                ("swarm-local", Kind::Local),
                ("swarm-cluster", Kind::Cluster),
                ("existing", Kind::Existing),
                ("docker", Kind::Docker),
            ],
        )?;
        let raw::Lab {
            managers,
            workers,
            drain_managers,
            restore,
            node_faults,
            ..
        } = l.get_ref();
        for (key, v) in [("restore", restore), ("node_faults", node_faults)] {
            if let Some(v) = v.as_ref().filter(|_| kind != Kind::Existing) {
                return Err(self.err(
                    v,
                    &format!("lab.{key}"),
                    "only valid with kind = \"existing\"",
                ));
            }
        }
        if kind != Kind::Cluster {
            let extra = [
                ("managers", managers.as_ref().map(|m| m.span())),
                ("workers", workers.as_ref().map(|w| w.span())),
                ("drain_managers", drain_managers.as_ref().map(|d| d.span())),
            ];
            if let Some((name, Some(span))) = extra.into_iter().find(|(_, s)| s.is_some()) {
                return Err(self.err_span(
                    span,
                    &format!("lab.{name}"),
                    "only valid with kind = \"swarm-cluster\"",
                ));
            }
            return Ok(match kind {
                Kind::Existing => Lab::Existing {
                    node_faults: node_faults.as_ref().is_some_and(|b| *b.get_ref()),
                },
                Kind::Docker => Lab::Docker,
                _ => Lab::SwarmLocal,
            });
        }
        let managers_n = managers.as_ref().map_or(3, |m| *m.get_ref());
        if let Some(m) = managers
            .as_ref()
            .filter(|m| !(1..=MAX_MANAGERS).contains(m.get_ref()))
        {
            return Err(self.err(
                m,
                "lab.managers",
                format!("must be between 1 and {MAX_MANAGERS}"),
            ));
        }
        let workers_n = workers.as_ref().map_or(3, |w| *w.get_ref());
        if let Some(w) = workers.as_ref().filter(|w| *w.get_ref() > MAX_WORKERS) {
            return Err(self.err(w, "lab.workers", format!("must be at most {MAX_WORKERS}")));
        }
        let drain = drain_managers.as_ref().is_some_and(|d| *d.get_ref());
        if let Some(d) = drain_managers.as_ref().filter(|_| drain && workers_n == 0) {
            return Err(self.err(
                d,
                "lab.drain_managers",
                "needs at least one worker: drained managers run no tasks",
            ));
        }
        Ok(Lab::SwarmCluster {
            managers: managers_n,
            workers: workers_n,
            drain_managers: drain,
        })
    }
}
