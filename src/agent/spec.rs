//! What the coordinator tells its agents: the run's `[load]` as a scenario of its own (the
//! agent reads it with the same parser and checks as `rollcheck run`), with where to connect
//! from inside the cluster, and how many shards there are. It travels in the job's
//! environment ([`ENV_SPEC`]); each task learns its shard from its Swarm slot ([`ENV_SLOT`]).

use crate::scenario::{Load, LoadModel};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The job's environment variable holding the [`Spec`] (JSON).
pub const ENV_SPEC: &str = "ROLLCHECK_AGENT";
/// The task's slot, from the template `{{.Task.Slot}}`.
pub const ENV_SLOT: &str = "ROLLCHECK_AGENT_SLOT";
/// The node's hostname, from the template `{{.Node.Hostname}}`.
pub const ENV_NODE: &str = "ROLLCHECK_AGENT_NODE";
/// A tmpfs in the agent's container: the start barrier writes the start instant here.
pub const START_DIR: &str = "/run/rollcheck-agent";
pub const START_FILE: &str = "/run/rollcheck-agent/start";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The run this agent belongs to.
    pub run: String,
    /// How many shards (agents) there are.
    pub of: u32,
    /// A scenario with only a `[load]` section.
    pub scenario: String,
    /// The agent stops by itself after this long, if the coordinator never stopped it.
    pub max_run_s: u64,
    /// The first task slot: 0 in a replicated job, 1 in a replicated service (the fallback
    /// on engines without jobs).
    #[serde(default)]
    pub first_slot: u32,
    /// What the scenario's text cannot carry, base64: the CA certificates the load trusts
    /// (DER: `tls.ca`, or the lab edge's run CA), which name files on the coordinator's
    /// machine …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca: Vec<String>,
    /// … and each `[[load.request]]` entry's body, in order (bytes, not text: `body_file`
    /// may hold any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bodies: Vec<String>,
}

/// The agents' environment holds the spec: Linux refuses an environment string over 128 KiB
/// (MAX_ARG_STRLEN) when the agent's container starts. Checked before the run, with room
/// for the rest of the spec.
pub const MAX_BINARY: usize = 96 * 1024;

impl Spec {
    /// The spec for `load`: `scenario` is [`load_scenario`]'s text.
    pub fn new(
        run: String,
        load: &Load,
        scenario: String,
        max_run_s: u64,
        first_slot: u32,
    ) -> Spec {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        Spec {
            run,
            of: load.generators,
            scenario,
            max_run_s,
            first_slot,
            ca: load.tls.ca.iter().map(|c| b64(c)).collect(),
            bodies: load.mix.iter().map(|m| b64(&m.body)).collect(),
        }
    }

    /// Puts the CA certificates and bodies back into the agent's `load` (read from
    /// [`Spec::scenario`]).
    pub fn restore(&self, load: &mut Load) -> Result<(), String> {
        let bytes = |what: &str, s: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("the spec's {what}: {e}"))
        };
        if self.bodies.len() != load.mix.len() {
            return Err(format!(
                "the spec has {} bodies for {} [[load.request]] entries",
                self.bodies.len(),
                load.mix.len()
            ));
        }
        for (m, b) in load.mix.iter_mut().zip(&self.bodies) {
            m.body = bytes("body", b)?.into();
        }
        load.tls.ca = self
            .ca
            .iter()
            .map(|c| bytes("CA certificate", c))
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}

/// How many bytes `load`'s CA certificates and bodies take in the spec (base64).
pub fn binary_size(load: &Load) -> usize {
    let b64 = |n: usize| n.div_ceil(3) * 4;
    load.tls.ca.iter().map(|c| b64(c.len())).sum::<usize>()
        + load.mix.iter().map(|m| b64(m.body.len())).sum::<usize>()
}

/// The agent's scenario: `load` as `[load]`, connecting to `connect_to` (the edge's
/// address on the lab network), without what only the coordinator does (duration, ready),
/// and without what [`Spec`] carries beside it (CA certificates, bodies).
pub fn load_scenario(load: &Load, connect_to: &str) -> String {
    use toml::Value;
    let mut l = toml::Table::new();
    // Values are already expanded: `$$` keeps a `$` literal when the agent reads them back.
    let text = |s: &str| Value::String(s.replace('$', "$$"));
    let dur = |d: Duration| Value::String(humantime::format_duration(d).to_string());
    l.insert("target".into(), text(&load.target.to_string()));
    match load.model {
        LoadModel::Closed {
            concurrency,
            error_pause,
        } => {
            l.insert("model".into(), text("closed"));
            l.insert("concurrency".into(), Value::Integer(concurrency as i64));
            l.insert("error_pause".into(), dur(error_pause));
        }
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            l.insert("model".into(), text("open"));
            l.insert("rate".into(), Value::Float(rate));
            l.insert("max_in_flight".into(), Value::Integer(max_in_flight as i64));
        }
    }
    l.insert("keepalive".into(), Value::Boolean(load.keepalive));
    if load.preconnect > 0 {
        l.insert("preconnect".into(), Value::Integer(load.preconnect as i64));
    }
    l.insert("timeout".into(), dur(load.timeout));
    l.insert("connect_timeout".into(), dur(load.connect_timeout));
    l.insert("interval".into(), dur(load.interval));
    let headers = |h: &std::collections::BTreeMap<String, String>| {
        Value::Table(h.iter().map(|(k, v)| (k.clone(), text(v))).collect())
    };
    if !load.headers.is_empty() {
        l.insert("headers".into(), headers(&load.headers));
    }
    if load.tls.insecure {
        let mut t = toml::Table::new();
        t.insert("insecure".into(), Value::Boolean(true));
        l.insert("tls".into(), Value::Table(t));
    }
    l.insert("connect_to".into(), text(connect_to));
    if !load.mix.is_empty() {
        let entries = load
            .mix
            .iter()
            .map(|m| {
                let mut e = toml::Table::new();
                e.insert("name".into(), text(&m.name));
                e.insert("method".into(), text(m.method.as_str()));
                e.insert("path".into(), text(&m.path));
                if !m.headers.is_empty() {
                    e.insert("headers".into(), headers(&m.headers));
                }
                e.insert("weight".into(), Value::Integer(i64::from(m.weight)));
                Value::Table(e)
            })
            .collect();
        l.insert("request".into(), Value::Array(entries));
    }
    let mut doc = toml::Table::new();
    doc.insert("title".into(), text("rollcheck agent"));
    doc.insert("load".into(), Value::Table(l));
    toml::to_string(&doc).expect("a TOML table serializes")
}

/// A task's shard from its slot, the first being `first`: Swarm renders slot 0 of a job as
/// the node's ID (the template falls back to it for slot 0), so a value that is not a number
/// is shard 0.
pub fn shard_of_slot(slot: &str, first: u32) -> u32 {
    slot.trim()
        .parse::<u32>()
        .map_or(0, |n| n.saturating_sub(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan(text: &str) -> crate::scenario::Plan {
        crate::scenario::parse(text, Path::new("s.toml"), &|_| None).unwrap()
    }

    #[test]
    fn the_agents_load_is_the_runs_with_the_edge_address() {
        let mut run = plan(
            r#"
[load]
target = "http://127.0.0.1:18080"
model = "open"
rate = 300
max_in_flight = 900
keepalive = true
preconnect = 30
timeout = "7s"
interval = "500ms"
headers = { "X-Team" = "a b", "X-Cost" = "$$5 ${X:-y}" }
duration = "20s"

[[load.request]]
name = "order"
method = "POST"
path = "/orders"
body = "{\"n\": 1}"
weight = 2

[[load.request]]
path = "/"
"#,
        );
        // What TOML text cannot carry travels beside it: a body that is not UTF-8 (from a
        // body_file) and the CA certificates (DER).
        run.load.mix[1].body = bytes::Bytes::from_static(&[0xff, 0x00, 0xfe]);
        run.load.tls.ca = vec![vec![0x30, 0x82, 0x01], vec![0x30]];
        let spec = Spec::new(
            "r1".into(),
            &run.load,
            load_scenario(&run.load, "10.213.0.2:80"),
            60,
            0,
        );
        let spec: Spec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        let mut agent = plan(&spec.scenario);
        spec.restore(&mut agent.load).unwrap();
        assert_eq!(agent.load.tls, run.load.tls);
        assert!(crate::agent::spec::binary_size(&run.load) < MAX_BINARY);
        let (a, r) = (&agent.load, &run.load);
        assert_eq!(a.target, r.target);
        assert_eq!(a.model, r.model);
        assert_eq!(
            (a.keepalive, a.preconnect, a.timeout, a.interval),
            (r.keepalive, r.preconnect, r.timeout, r.interval)
        );
        assert_eq!(a.headers, r.headers);
        assert_eq!(a.mix, r.mix);
        assert_eq!(a.connect_to.as_deref(), Some("10.213.0.2:80"));
        assert_eq!(a.duration, None);
        assert_eq!(a.generators, 1);
    }

    #[test]
    fn slot_zero_renders_as_a_node_id() {
        assert_eq!(shard_of_slot("2", 0), 2);
        assert_eq!(shard_of_slot("x1vj8kbm0nq2rz", 0), 0);
        // A replicated service's slots start at 1.
        assert_eq!(shard_of_slot("1", 1), 0);
        assert_eq!(shard_of_slot("3", 1), 2);
    }
}
