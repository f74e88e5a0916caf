//! The scenario file as written: plain serde structs, unknown keys rejected, every field
//! optional and spanned so validation (not serde) decides what is required and can point at
//! the offending text. Enum-like values stay strings here so validation can suggest a name.
//! Nothing outside `scenario/` sees these types.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub(super) type Text = Spanned<String>;
pub(super) type Map = BTreeMap<String, Text>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Scenario {
    pub title: Option<Text>,
    pub lab: Option<Spanned<Lab>>,
    pub service: Option<Spanned<Service>>,
    pub stack: Option<Spanned<Stack>>,
    pub edge: Option<Spanned<Edge>>,
    pub load: Option<Spanned<Load>>,
    /// `[[container]]`: a `docker` lab's containers, running before the load starts.
    #[serde(default)]
    pub container: Vec<Spanned<Container>>,
    #[serde(default)]
    pub step: Vec<Spanned<Step>>,
    pub gate: Option<Spanned<Gate>>,
}

/// A plain container of a `docker` lab: `[[container]]`, or what a `container_run` step runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Container {
    pub name: Option<Text>,
    pub image: Option<Text>,
    /// Published on 127.0.0.1 only.
    pub port: Option<Spanned<u16>>,
    /// The port the app listens on inside the container (8080, the test service's).
    pub container_port: Option<Spanned<u16>>,
    pub env: Option<Map>,
    pub healthcheck: Option<Spanned<Healthcheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Lab {
    pub kind: Option<Text>,
    pub managers: Option<Spanned<u32>>,
    pub workers: Option<Spanned<u32>>,
    pub drain_managers: Option<Spanned<bool>>,
    pub restore: Option<Spanned<bool>>,
    pub node_faults: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Service {
    pub name: Option<Text>,
    pub image: Option<Text>,
    pub replicas: Option<Spanned<u64>>,
    pub endpoint_mode: Option<Text>,
    pub port: Option<Spanned<u16>>,
    pub stop_grace_period: Option<Text>,
    pub env: Option<Map>,
    /// Names of `env` entries that may be shown in reports (the others are redacted).
    pub show_env: Option<Spanned<Vec<String>>>,
    pub labels: Option<Map>,
    pub healthcheck: Option<Spanned<Healthcheck>>,
    #[serde(alias = "update")]
    pub update_config: Option<Spanned<UpdateConfig>>,
    #[serde(alias = "rollback")]
    pub rollback_config: Option<Spanned<UpdateConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Stack {
    pub name: Option<Text>,
    pub compose: Option<Spanned<Files>>,
    pub keep: Option<Spanned<bool>>,
}

/// One compose file or several, merged in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "expected a file name or an array of file names")]
pub(super) enum Files {
    One(String),
    Many(Vec<String>),
}

impl Files {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Files::One(f) => vec![f.as_str()],
            Files::Many(fs) => fs.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Healthcheck {
    pub test: Option<Spanned<Test>>,
    pub interval: Option<Text>,
    pub timeout: Option<Text>,
    pub retries: Option<Spanned<u32>>,
    pub start_period: Option<Text>,
}

/// Docker's two spellings: `["CMD", ...]` or a string meaning `["CMD-SHELL", string]`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected an array like [\"CMD\", \"...\"] or a shell command string"
)]
pub(super) enum Test {
    List(Vec<String>),
    Shell(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateConfig {
    pub parallelism: Option<Spanned<u64>>,
    pub delay: Option<Text>,
    pub order: Option<Text>,
    pub failure_action: Option<Text>,
    pub monitor: Option<Text>,
    pub max_failure_ratio: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Edge {
    pub kind: Option<Text>,
    /// `kind = "stack"`: the stack's own proxy service.
    pub service: Option<Text>,
    pub publish: Option<Text>,
    pub mode: Option<Text>,
    pub protocol: Option<Text>,
    pub retries: Option<Spanned<bool>>,
    pub healthcheck: Option<Spanned<Healthcheck>>,
    /// Consent to a Swarm-published port, which binds every interface of the machine.
    pub all_interfaces: Option<Spanned<bool>>,
    /// `kind = "stack"` on a cluster lab: rollcheck's outer edge on the host.
    pub outer: Option<Text>,
    /// nginx terminates https with a certificate made for the run.
    pub tls: Option<Spanned<bool>>,
    /// A `docker` lab: the containers nginx proxies to when the load starts.
    pub upstream: Option<Spanned<Vec<Text>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Load {
    pub target: Option<Text>,
    pub model: Option<Text>,
    pub concurrency: Option<Spanned<usize>>,
    pub rate: Option<Spanned<f64>>,
    pub max_in_flight: Option<Spanned<usize>>,
    pub error_pause: Option<Text>,
    pub keepalive: Option<Spanned<bool>>,
    /// Kept-alive connections opened before the clock starts.
    pub preconnect: Option<Spanned<usize>>,
    /// Load generators deployed as a Swarm job on the cluster lab's nodes.
    pub generators: Option<Spanned<u32>>,
    /// Swarm placement constraints for the generators.
    pub placement: Option<Spanned<Vec<Text>>>,
    pub timeout: Option<Text>,
    pub connect_timeout: Option<Text>,
    pub duration: Option<Text>,
    pub settle: Option<Text>,
    pub interval: Option<Text>,
    pub headers: Option<Map>,
    pub ready: Option<Spanned<Ready>>,
    pub tls: Option<Spanned<Tls>>,
    pub connect_to: Option<Text>,
    /// `[[load.request]]`: a weighted mix instead of one GET of the target.
    pub request: Option<Spanned<Vec<Spanned<Request>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Request {
    pub name: Option<Text>,
    pub method: Option<Text>,
    pub path: Option<Text>,
    pub headers: Option<Map>,
    pub body: Option<Text>,
    pub body_file: Option<Text>,
    pub weight: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Tls {
    pub ca: Option<Text>,
    pub insecure: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Ready {
    pub url: Option<Text>,
    pub status: Option<Spanned<u16>>,
    pub stable: Option<Text>,
    pub timeout: Option<Text>,
}

/// One `[[step]]`: the fields of every action in one flat table, so validation can say
/// "\"image\" is not a field of action \"exec\"" instead of serde's generic message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Step {
    pub at: Option<Text>,
    pub after: Option<Text>,
    pub action: Option<Text>,
    pub expect: Option<Text>,
    pub label: Option<Text>,
    pub command: Option<Text>,
    pub timeout: Option<Text>,
    pub url: Option<Text>,
    pub method: Option<Text>,
    pub duration: Option<Text>,
    pub interval: Option<Text>,
    pub wait: Option<Text>,
    pub image: Option<Text>,
    pub env: Option<Spanned<Map>>,
    pub labels: Option<Spanned<Map>>,
    pub replicas: Option<Spanned<u64>>,
    #[serde(alias = "update")]
    pub update_config: Option<Spanned<UpdateConfig>>,
    pub healthcheck: Option<Spanned<Healthcheck>>,
    pub stop_grace_period: Option<Text>,
    pub force: Option<Spanned<bool>>,
    pub node: Option<Text>,
    pub count: Option<Spanned<u32>>,
    /// The service a Swarm action acts on (a stack's, by its stack-local name).
    pub service: Option<Text>,
    /// `stack_deploy`: the compose files to deploy again.
    pub compose: Option<Spanned<Files>>,
    /// Container steps: the container's scenario name.
    pub name: Option<Text>,
    pub port: Option<Spanned<u16>>,
    pub container_port: Option<Spanned<u16>>,
    /// `container_stop` / `container_kill`: the signal sent.
    pub signal: Option<Text>,
    /// `container_stop`: how long after the signal before SIGKILL.
    pub grace: Option<Text>,
    /// `upstream_set`: the containers the edge proxies to from then on.
    pub servers: Option<Spanned<Vec<Text>>>,
    /// `upstream_set`: `reload` (nginx -s reload) or `restart` (the edge container).
    pub mode: Option<Text>,
}

impl Step {
    /// The action-specific fields present in this step, with their spans, in file order.
    pub fn action_fields(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        fn span<T>(v: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
            v.as_ref().map(Spanned::span)
        }
        let mut fields: Vec<_> = [
            ("command", span(&self.command)),
            ("timeout", span(&self.timeout)),
            ("url", span(&self.url)),
            ("method", span(&self.method)),
            ("duration", span(&self.duration)),
            ("interval", span(&self.interval)),
            ("wait", span(&self.wait)),
            ("image", span(&self.image)),
            ("env", span(&self.env)),
            ("labels", span(&self.labels)),
            ("replicas", span(&self.replicas)),
            ("update_config", span(&self.update_config)),
            ("healthcheck", span(&self.healthcheck)),
            ("stop_grace_period", span(&self.stop_grace_period)),
            ("force", span(&self.force)),
            ("node", span(&self.node)),
            ("count", span(&self.count)),
            ("service", span(&self.service)),
            ("compose", span(&self.compose)),
            ("name", span(&self.name)),
            ("port", span(&self.port)),
            ("container_port", span(&self.container_port)),
            ("signal", span(&self.signal)),
            ("grace", span(&self.grace)),
            ("servers", span(&self.servers)),
            ("mode", span(&self.mode)),
        ]
        .into_iter()
        .filter_map(|(name, span)| span.map(|s| (name, s)))
        .collect();
        fields.sort_by_key(|(_, s)| s.start);
        fields
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Gate {
    pub max_dropped: Option<Spanned<u64>>,
    pub max_error_rate: Option<Spanned<f64>>,
    pub max_p99: Option<Text>,
    pub max_p99_during: Option<Text>,
    pub min_requests: Option<Spanned<u64>>,
    pub max_truth_mismatch: Option<Spanned<u64>>,
    pub max_converge: Option<Text>,
    pub dropped: Option<Spanned<Vec<Text>>>,
}

impl Scenario {
    /// `[service] env` and `update` steps' `env` values that reports must not show: every
    /// entry but the test service's own knobs and the names in `show_env`. (span, value)
    pub fn hidden_env(&self) -> Vec<(std::ops::Range<usize>, String)> {
        let service = self.service.as_ref().map(|s| s.get_ref());
        // The test service's own settings are never secrets.
        let mut shown: Vec<String> = crate::testsvc::env_names();
        shown.extend(
            service
                .and_then(|s| s.show_env.as_ref())
                .into_iter()
                .flat_map(|l| l.get_ref().iter().cloned()),
        );
        let maps = service
            .and_then(|s| s.env.as_ref())
            .into_iter()
            .chain(
                self.container
                    .iter()
                    .filter_map(|c| c.get_ref().env.as_ref()),
            )
            .chain(
                self.step
                    .iter()
                    .filter_map(|s| s.get_ref().env.as_ref().map(|e| e.get_ref())),
            );
        maps.flat_map(|m| m.iter())
            .filter(|(name, _)| !shown.contains(name))
            .map(|(_, v)| (v.span(), v.get_ref().clone()))
            .collect()
    }
}
