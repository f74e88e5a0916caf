//! The record of one request: every instant on the run clock, the class, and who served it.

use crate::outcome::Outcome;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub id: u64,
    /// The `[[load.request]]` entry it was; `None` in the single-target form.
    pub request: Option<std::sync::Arc<str>>,
    /// When the load model meant to send it (closed model: when the worker was free).
    pub scheduled: Duration,
    /// When sending began (connect or reuse). `None` for `late`: never sent.
    pub sent: Option<Duration>,
    /// TCP connected (the reuse instant on a kept-alive connection).
    pub connected: Option<Duration>,
    /// https on a new connection: the TLS handshake finished.
    pub tls: Option<Duration>,
    /// Response headers received.
    pub first_byte: Option<Duration>,
    pub done: Duration,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub bytes: u64,
    pub reused: bool,
    /// From `X-Rollcheck-Version` / `-Host` / `-Task`; empty for foreign services.
    pub version: String,
    pub host: String,
    pub task: String,
    /// Short reason for a failure; empty when ok.
    pub error: String,
    /// The generator that sent it (`[load] generators` > 1: its shard); `None` for this
    /// process.
    pub agent: Option<u32>,
}

impl RequestRecord {
    pub fn new(id: u64, scheduled: Duration) -> RequestRecord {
        RequestRecord {
            id,
            request: None,
            scheduled,
            sent: None,
            connected: None,
            tls: None,
            first_byte: None,
            done: scheduled,
            outcome: Outcome::Late,
            status: None,
            bytes: 0,
            reused: false,
            version: String::new(),
            host: String::new(),
            task: String::new(),
            error: String::new(),
            agent: None,
        }
    }

    /// A request the open model could not send within its slot.
    pub fn late(id: u64, scheduled: Duration) -> RequestRecord {
        let mut r = RequestRecord::new(id, scheduled);
        r.error = "no capacity within its slot (max_in_flight)".into();
        r
    }

    pub fn finish(&mut self, done: Duration, outcome: Outcome, error: String) {
        self.done = done;
        self.outcome = outcome;
        self.error = error;
    }

    pub fn served_by(&mut self, headers: &http::HeaderMap) {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        self.version = get("x-rollcheck-version");
        self.host = get("x-rollcheck-host");
        self.task = get("x-rollcheck-task");
    }

    /// Every instant to the nearest microsecond, as requests.csv holds it: the collector folds
    /// what it writes, so a summary rebuilt from the file has the same figures.
    pub fn round_to_micros(&mut self) {
        let round = |d: &mut Duration| {
            *d = Duration::from_micros(((d.as_nanos() + 500) / 1000).min(u64::MAX as u128) as u64)
        };
        round(&mut self.scheduled);
        round(&mut self.done);
        for d in [
            &mut self.sent,
            &mut self.connected,
            &mut self.tls,
            &mut self.first_byte,
        ]
        .into_iter()
        .flatten()
        {
            round(d);
        }
    }

    /// Latency from the scheduled start: corrected for coordinated omission (wrk2's figure).
    pub fn latency(&self) -> Duration {
        self.done.saturating_sub(self.scheduled)
    }

    /// Latency from the actual send: what the service and network took.
    pub fn service_latency(&self) -> Option<Duration> {
        self.sent.map(|s| self.done.saturating_sub(s))
    }

    /// Time to set up the connection (zero when reused).
    pub fn connect_time(&self) -> Option<Duration> {
        Some(self.connected?.saturating_sub(self.sent?))
    }

    /// The TLS handshake (https, new connections only).
    pub fn tls_time(&self) -> Option<Duration> {
        Some(self.tls?.saturating_sub(self.connected?))
    }

    /// From connected (and the TLS handshake, if any) to response headers.
    pub fn time_to_first_byte(&self) -> Option<Duration> {
        Some(
            self.first_byte?
                .saturating_sub(self.tls.or(self.connected)?),
        )
    }
}
