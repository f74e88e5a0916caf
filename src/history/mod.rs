//! The run's history: every request and event, on one clock, streamed to `requests.csv` and
//! `events.csv` as it happens (whole rows, on disk within 250 ms, so a killed run loses
//! little and leaves no torn row), and
//! folded into per-interval HdrHistograms ([`intervals`]) and per-task and per-class figures
//! ([`served`]) as it arrives: nothing keeps every request. One collector thread owns all of
//! it; producers hold a cheap [`Recorder`] handle.

mod collect;
pub mod intervals;
pub mod read;
pub mod sample;
pub mod served;

pub use intervals::{IntervalStats, Intervals};
pub use served::{ClassStats, Served, TaskStats};

use crate::analysis::probes::ProbeFold;
use crate::event::Event;
use crate::load::record::RequestRecord;
use crate::outcome::{Outcome, OutcomeCounts};
pub use collect::Collector;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Latencies are recorded in microseconds, up to one hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// What a [`Recorder`] sends.
pub enum Entry {
    Request(Box<RequestRecord>),
    /// Requests that arrived together (a load agent's batch): one message for them all.
    Requests(Vec<RequestRecord>),
    Event(Event),
    Close,
}

/// Live totals for the progress display; the collector's figures are the authoritative ones.
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    /// Requests so far by class, in [`Outcome::ALL`]'s order.
    by_class: [AtomicU64; Outcome::ALL.len()],
    /// p50 and p99 (µs, from the scheduled start) of the ok requests that finished in the
    /// last whole interval of the run clock; 0 when none did. Set by the collector.
    recent_p50_us: AtomicU64,
    recent_p99_us: AtomicU64,
}

impl Live {
    pub fn count(&self, o: Outcome) -> u64 {
        self.by_class[o as usize].load(Ordering::Relaxed)
    }

    /// The last whole interval's ok p50 and p99, if any ok request finished in it.
    pub fn recent(&self) -> Option<(Duration, Duration)> {
        let p50 = self.recent_p50_us.load(Ordering::Relaxed);
        let p99 = self.recent_p99_us.load(Ordering::Relaxed);
        (p99 > 0).then(|| (Duration::from_micros(p50), Duration::from_micros(p99)))
    }
}

/// Sees every event on its way to the collector (the progress display).
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// A producer's handle: send a finished request or an event to the collector.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Entry>,
    live: Arc<Live>,
    observer: Option<Observer>,
}

impl Recorder {
    pub fn request(&self, rec: RequestRecord) {
        self.tally(&rec);
        // A send error means the collector already closed: the load has ended.
        let _ = self.tx.send(Entry::Request(Box::new(rec)));
    }

    /// [`Recorder::request`] for each of `recs`, in one message to the collector.
    pub fn requests(&self, recs: Vec<RequestRecord>) {
        if recs.is_empty() {
            return;
        }
        recs.iter().for_each(|r| self.tally(r));
        let _ = self.tx.send(Entry::Requests(recs));
    }

    /// The live totals, for the progress display.
    fn tally(&self, rec: &RequestRecord) {
        self.live.requests.fetch_add(1, Ordering::Relaxed);
        self.live.by_class[rec.outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn event(&self, event: Event) {
        if let Some(observe) = &self.observer {
            observe(&event);
        }
        let _ = self.tx.send(Entry::Event(event));
    }

    /// This recorder, with `observer` called on every event it records.
    pub fn observed(mut self, observer: Observer) -> Recorder {
        self.observer = Some(observer);
        self
    }

    pub fn live(&self) -> &Live {
        &self.live
    }

    /// A recorder whose entries go to the returned receiver instead of a collector (a load
    /// agent writes them to its log); the receiver ends once every clone is dropped.
    pub fn channel() -> (Recorder, mpsc::Receiver<Entry>) {
        let (tx, rx) = mpsc::channel();
        let recorder = Recorder {
            tx,
            live: Arc::default(),
            observer: None,
        };
        (recorder, rx)
    }
}

/// Everything the collector kept in memory when the run ended.
#[derive(Debug, Clone)]
pub struct History {
    pub intervals: Intervals,
    /// Failures per class, ok responses per task.
    pub served: Served,
    /// The requests the scatter charts draw, bounded.
    pub sample: sample::Sample,
    /// Health probes and the requests in flight during them; taken by the runner to finish.
    pub probes: Option<ProbeFold>,
    pub outcomes: OutcomeCounts,
    /// Ok requests, from scheduled start (coordinated-omission corrected), µs.
    pub latency: Histogram<u64>,
    /// Ok requests, from the actual send, µs.
    pub service_latency: Histogram<u64>,
    /// TLS handshakes that finished (any outcome after them), µs.
    pub tls_handshake: Histogram<u64>,
    /// Each request's class by id (`None`: no record), for the reconciliation with the
    /// servers' truth log: one byte per request (`Option<Outcome>` fits in one).
    pub by_id: Vec<Option<Outcome>>,
    /// Per `[[load.request]]` entry, by name (empty in the single-target form).
    pub entries: BTreeMap<String, EntryStats>,
    pub events: Vec<Event>,
    /// Data rows written to requests.csv (equals the total of `outcomes`).
    pub rows_written: u64,
}

/// Ids past this are not kept by id (a 1 GB table); the reconciliation covers the first.
const MAX_BY_ID: usize = 1 << 30;
const _: () = assert!(std::mem::size_of::<Option<Outcome>>() == 1);

/// One mix entry's requests: every class, and the latency of its ok ones (µs, from the
/// scheduled start).
#[derive(Debug, Clone)]
pub struct EntryStats {
    pub outcomes: OutcomeCounts,
    pub latency: Histogram<u64>,
}

/// One row of requests.csv. Times are milliseconds on the run clock, µs precision. Generic
/// over the text type so the writer borrows (`&str`) and `rollcheck report` reads the same
/// columns back (`&str` from a csv record, or `String`): one column list for both directions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow<S> {
    pub id: u64,
    /// The `[[load.request]]` entry's name; empty in the single-target form (and in files
    /// written before mixes existed).
    #[serde(default)]
    pub request: S,
    pub scheduled_ms: f64,
    pub sent_ms: Option<f64>,
    pub connected_ms: Option<f64>,
    /// https on a new connection: the TLS handshake finished. Absent in files written before
    /// rollcheck spoke https.
    #[serde(default)]
    pub tls_ms: Option<f64>,
    pub first_byte_ms: Option<f64>,
    pub done_ms: f64,
    pub latency_ms: f64,
    /// [`Outcome::as_str`].
    pub outcome: S,
    pub status: Option<u16>,
    pub bytes: u64,
    pub reused: bool,
    pub version: S,
    pub host: S,
    pub task: S,
    pub error: S,
    /// The generator that sent it (`[load] generators` > 1); empty for the run's own process
    /// and in files written before generators existed.
    #[serde(default)]
    pub agent: Option<u32>,
}

/// One row of events.csv, as the collector writes it and `rollcheck report` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub at_ms: f64,
    /// [`EventSource::as_str`](crate::event::EventSource::as_str).
    pub source: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
}

impl From<&Event> for EventRow {
    /// A typed event flattened to its columns: the only place event text is made.
    fn from(e: &Event) -> EventRow {
        EventRow {
            at_ms: ms(e.at),
            source: e.source().as_str().to_string(),
            kind: e.kind().to_string(),
            subject: e.subject().to_string(),
            detail: e.detail(),
        }
    }
}

impl EventRow {
    /// The typed event this row was flattened from (see [`Event::from_columns`]).
    pub fn event(&self) -> Event {
        Event::from_columns(
            from_ms(self.at_ms),
            &self.source,
            &self.kind,
            &self.subject,
            &self.detail,
        )
    }
}

impl<S: AsRef<str>> RequestRow<S> {
    /// The record this row was written from; `None` for an outcome this rollcheck does not
    /// know.
    pub fn record(&self) -> Option<RequestRecord> {
        Some(RequestRecord {
            id: self.id,
            request: Some(self.request.as_ref())
                .filter(|r| !r.is_empty())
                .map(std::sync::Arc::from),
            scheduled: from_ms(self.scheduled_ms),
            sent: self.sent_ms.map(from_ms),
            connected: self.connected_ms.map(from_ms),
            tls: self.tls_ms.map(from_ms),
            first_byte: self.first_byte_ms.map(from_ms),
            done: from_ms(self.done_ms),
            outcome: Outcome::parse(self.outcome.as_ref())?,
            status: self.status,
            bytes: self.bytes,
            reused: self.reused,
            version: self.version.as_ref().into(),
            host: self.host.as_ref().into(),
            task: self.task.as_ref().into(),
            error: self.error.as_ref().into(),
            agent: self.agent,
        })
    }
}

/// Adds one to `key`'s count, copying the key only the first time (the collector sees every
/// request: an allocation per request is most of what a count costs).
pub fn count(counts: &mut std::collections::BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// Run-clock milliseconds (µs precision) as written in the CSV files.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// [`ms`] read back; negative or non-finite values (not written by rollcheck) are zero.
pub fn from_ms(ms: f64) -> Duration {
    let micros = (ms * 1e3).round();
    if micros.is_finite() && micros > 0.0 {
        Duration::from_micros(micros.min(u64::MAX as f64) as u64)
    } else {
        Duration::ZERO
    }
}

impl<'a> RequestRow<&'a str> {
    /// The row of a record (its instants rounded to the microsecond: see
    /// [`RequestRecord::round_to_micros`]).
    pub fn of(r: &'a RequestRecord) -> RequestRow<&'a str> {
        RequestRow {
            id: r.id,
            request: r.request.as_deref().unwrap_or_default(),
            scheduled_ms: ms(r.scheduled),
            sent_ms: r.sent.map(ms),
            connected_ms: r.connected.map(ms),
            tls_ms: r.tls.map(ms),
            first_byte_ms: r.first_byte.map(ms),
            done_ms: ms(r.done),
            latency_ms: ms(r.latency()),
            outcome: r.outcome.as_str(),
            status: r.status,
            bytes: r.bytes,
            reused: r.reused,
            version: r.version.as_str(),
            host: r.host.as_str(),
            task: r.task.as_str(),
            error: r.error.as_str(),
            agent: r.agent,
        }
    }
}

impl History {
    /// An empty history: the collector folds a run into it as it happens, and
    /// `rollcheck report` folds a killed run's CSV files into it the same way.
    pub fn new(interval: Duration, probes: ProbeFold) -> History {
        History {
            intervals: Intervals::new(interval),
            served: Served::default(),
            sample: sample::Sample::default(),
            probes: Some(probes),
            outcomes: OutcomeCounts::default(),
            latency: new_histogram(),
            service_latency: new_histogram(),
            tls_handshake: new_histogram(),
            by_id: Vec::new(),
            entries: BTreeMap::new(),
            events: Vec::new(),
            rows_written: 0,
        }
    }

    /// The histogram interval.
    pub fn interval(&self) -> Duration {
        self.intervals.width
    }

    pub fn event(&mut self, e: Event) {
        if let Some(p) = &mut self.probes {
            p.event(&e);
        }
        self.events.push(e);
    }

    /// Events in time order (watchers report some states with their own, earlier times).
    pub fn finish(mut self) -> History {
        self.events.sort_by_key(|e| e.at);
        self
    }

    pub fn request(&mut self, r: &RequestRecord) {
        self.rows_written += 1;
        let slot = self.intervals.slot(r.scheduled);
        slot.outcomes.add(r.outcome, 1);
        if r.outcome == Outcome::Ok && !r.version.is_empty() {
            count(&mut slot.versions, &r.version);
        }
        self.outcomes.add(r.outcome, 1);
        self.served.add(r);
        if let (Some(p), Outcome::Ok, Some(sent)) = (&mut self.probes, r.outcome, r.sent) {
            let connect = r
                .connected
                .map_or(Duration::ZERO, |c| c.saturating_sub(sent));
            p.ok_request(&r.task, sent, r.done, connect);
        }
        self.sample.add(sample::Point::of(r));
        if let Some(t) = r.tls_time() {
            self.tls_handshake.saturating_record(micros(t));
        }
        if let Ok(id) = usize::try_from(r.id)
            && id < MAX_BY_ID
        {
            if self.by_id.len() <= id {
                self.by_id.resize(id + 1, None);
            }
            self.by_id[id] = Some(r.outcome);
        }
        if let Some(name) = &r.request {
            if !self.entries.contains_key(&**name) {
                let fresh = EntryStats {
                    outcomes: OutcomeCounts::default(),
                    latency: new_histogram(),
                };
                self.entries.insert(name.to_string(), fresh);
            }
            if let Some(e) = self.entries.get_mut(&**name) {
                e.outcomes.add(r.outcome, 1);
                if r.outcome == Outcome::Ok {
                    e.latency.saturating_record(micros(r.latency()));
                }
            }
        }
        if r.outcome == Outcome::Ok {
            let lat = micros(r.latency());
            self.intervals.record_latency(r.scheduled, lat);
            self.latency.saturating_record(lat);
            if let Some(s) = r.service_latency() {
                self.service_latency.saturating_record(micros(s));
            }
        }
    }
}
