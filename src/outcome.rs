//! The class every request ends in. Shared by the load generator (which classifies), the
//! history (which records), the analysis (which counts) and the scenario (which may redefine
//! what counts as "dropped").

use serde::{Deserialize, Serialize};
use std::fmt;

/// Exactly one per request; see DESIGN.md "Outcomes of one request".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 2xx or 3xx.
    Ok,
    Http5xx,
    Http4xx,
    /// Connect refused or unreachable.
    Refused,
    /// The TCP handshake did not finish within the connect timeout.
    ConnectTimeout,
    /// https only: the TLS handshake failed (an untrusted or wrong certificate, a cut
    /// connection, no common protocol) or did not finish within the connect timeout.
    TlsHandshake,
    /// The connection was reset or closed before a full response: dropped in flight.
    Reset,
    /// No full response within the timeout after the request was written.
    Timeout,
    /// Open model only: the harness could not send it within its slot (its own limit).
    Late,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Ok,
        Outcome::Http5xx,
        Outcome::Http4xx,
        Outcome::Refused,
        Outcome::ConnectTimeout,
        Outcome::TlsHandshake,
        Outcome::Reset,
        Outcome::Timeout,
        Outcome::Late,
    ];

    /// What counts as dropped unless the scenario says otherwise.
    pub const DEFAULT_DROPPED: [Outcome; 6] = [
        Outcome::Refused,
        Outcome::Reset,
        Outcome::Timeout,
        Outcome::ConnectTimeout,
        Outcome::TlsHandshake,
        Outcome::Http5xx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http5xx => "http_5xx",
            Outcome::Http4xx => "http_4xx",
            Outcome::Refused => "refused",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::TlsHandshake => "tls_handshake",
            Outcome::Reset => "reset",
            Outcome::Timeout => "timeout",
            Outcome::Late => "late",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Classifies a received HTTP status.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            400..=499 => Outcome::Http4xx,
            _ => Outcome::Http5xx,
        }
    }
}

/// A count per outcome class; serializes as a map keyed by class name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts([u64; Outcome::ALL.len()]);

impl OutcomeCounts {
    pub fn add(&mut self, o: Outcome, n: u64) {
        self.0[o as usize] += n;
    }

    pub fn get(&self, o: Outcome) -> u64 {
        self.0[o as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Sum over a set of classes (e.g. what the gate counts as dropped).
    pub fn sum_of(&self, classes: &[Outcome]) -> u64 {
        classes.iter().map(|&o| self.get(o)).sum()
    }

    pub fn merge(&mut self, other: &OutcomeCounts) {
        for o in Outcome::ALL {
            self.add(o, other.get(o));
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL.into_iter().map(|o| (o, self.get(o)))
    }
}

impl Serialize for OutcomeCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(Outcome::ALL.len()))?;
        for (o, n) in self.iter() {
            m.serialize_entry(o.as_str(), &n)?;
        }
        m.end()
    }
}

/// What [`OutcomeCounts`] serializes to: every class, by name, with its count.
impl schemars::JsonSchema for OutcomeCounts {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OutcomeCounts".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let classes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
        let properties: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .map(|c| {
                let count =
                    serde_json::json!({ "type": "integer", "format": "uint64", "minimum": 0 });
                (c.to_string(), count)
            })
            .collect();
        // Not `required` nor closed: a class added later (as tls_handshake was) is a new key,
        // which the summary's versioning allows without a new schema_version.
        schemars::json_schema!({
            "description": format!("Requests per outcome class ({}).", classes.join(", ")),
            "type": "object",
            "properties": properties,
            "additionalProperties": { "type": "integer", "format": "uint64", "minimum": 0 }
        })
    }
}

impl<'de> Deserialize<'de> for OutcomeCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u64>::deserialize(d)?;
        let mut counts = OutcomeCounts::default();
        for (k, n) in map {
            let o = Outcome::parse(&k)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome {k:?}")))?;
            counts.add(o, n);
        }
        Ok(counts)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
