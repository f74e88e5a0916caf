//! A saved run read back from its report directory (summary.json, requests.csv, events.csv,
//! scenario.toml), for the HTML report and `rollcheck report` / `compare`. The csv columns are
//! the ones `history` writes ([`RequestRow`], [`EventRow`]); only the fields the charts need
//! are kept per request, and repeated text (version, task, error) is shared, so a run of a
//! million requests stays in the low hundreds of megabytes.

use super::{SCHEMA_VERSION, Summary};
use crate::history::{EventRow, RequestRow};
use crate::outcome::Outcome;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{}: summary schema_version {found} is not readable by this rollcheck {} (it reads schema_version {SCHEMA_VERSION}); re-render with the rollcheck that wrote the run",
        path.display(),
        env!("CARGO_PKG_VERSION")
    )]
    Schema { path: PathBuf, found: u64 },
    #[error("{}: line {line}: unknown outcome {outcome:?}", path.display())]
    Outcome {
        path: PathBuf,
        line: u64,
        outcome: String,
    },
}

/// One request as the charts need it. Times in ms on the run clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub scheduled_ms: f64,
    pub sent_ms: Option<f64>,
    pub connected_ms: Option<f64>,
    pub first_byte_ms: Option<f64>,
    pub latency_ms: f64,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub reused: bool,
    pub version: Arc<str>,
    pub task: Arc<str>,
    pub error: Arc<str>,
}

impl Request {
    /// TCP connect (connected − sent): a +1 s step here is a SYN retransmit.
    pub fn connect_ms(&self) -> Option<f64> {
        Some(self.connected_ms? - self.sent_ms?)
    }

    /// Time to first byte after the connection was up: the service's time.
    pub fn ttfb_ms(&self) -> Option<f64> {
        Some(self.first_byte_ms? - self.connected_ms?)
    }
}

/// One row of events.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct EventOut {
    pub at_ms: f64,
    pub source: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct RunData {
    pub summary: Summary,
    /// In file order (completion order), not sorted.
    pub requests: Vec<Request>,
    /// Sorted by time.
    pub events: Vec<EventOut>,
    /// The resolved scenario (empty when the file is missing).
    pub scenario: String,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData, ReportError> {
        let summary = read_summary(&dir.join("summary.json"))?;
        let requests = read_requests(&dir.join("requests.csv"))?;
        let events = read_events(&dir.join("events.csv"))?;
        let scenario = match std::fs::read_to_string(dir.join("scenario.toml")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ReportError::Io {
                    path: dir.join("scenario.toml"),
                    source,
                });
            }
        };
        Ok(RunData {
            summary,
            requests,
            events,
            scenario,
        })
    }

    /// Start of the first step (s), the origin of `compare`'s aligned time axis.
    pub fn first_step_start_s(&self) -> Option<f64> {
        self.summary
            .steps
            .iter()
            .map(|s| s.start_s)
            .min_by(f64::total_cmp)
    }
}

pub(crate) fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    let text = std::fs::read(path).map_err(|source| ReportError::Io {
        path: path.into(),
        source,
    })?;
    let json_err = |source| ReportError::Json {
        path: path.into(),
        source,
    };
    // Check the version before the shape: a newer schema may not parse at all, and "wrong
    // version" is the message the user can act on.
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(json_err)?;
    let found = value.get("schema_version").and_then(|v| v.as_u64());
    if found != Some(u64::from(SCHEMA_VERSION)) {
        return Err(ReportError::Schema {
            path: path.into(),
            found: found.unwrap_or(0),
        });
    }
    serde_json::from_value(value).map_err(json_err)
}

/// Hands out one shared copy of each distinct string.
#[derive(Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

fn csv_reader(path: &Path) -> Result<csv::Reader<std::fs::File>, ReportError> {
    csv::Reader::from_path(path).map_err(|source| ReportError::Csv {
        path: path.into(),
        source,
    })
}

fn read_requests(path: &Path) -> Result<Vec<Request>, ReportError> {
    let csv_err = |source| ReportError::Csv {
        path: path.into(),
        source,
    };
    let mut rdr = csv_reader(path)?;
    let headers = rdr.headers().map_err(csv_err)?.clone();
    let mut record = csv::StringRecord::new();
    let mut strings = Interner::default();
    let mut out = Vec::new();
    while rdr.read_record(&mut record).map_err(csv_err)? {
        let row: RequestRow<&str> = record.deserialize(Some(&headers)).map_err(csv_err)?;
        let outcome = Outcome::parse(row.outcome).ok_or_else(|| ReportError::Outcome {
            path: path.into(),
            line: record.position().map_or(0, |p| p.line()),
            outcome: row.outcome.to_string(),
        })?;
        out.push(Request {
            scheduled_ms: row.scheduled_ms,
            sent_ms: row.sent_ms,
            connected_ms: row.connected_ms,
            first_byte_ms: row.first_byte_ms,
            latency_ms: row.latency_ms,
            outcome,
            status: row.status,
            reused: row.reused,
            version: strings.get(row.version),
            task: strings.get(row.task),
            error: strings.get(row.error),
        });
    }
    Ok(out)
}

fn read_events(path: &Path) -> Result<Vec<EventOut>, ReportError> {
    let mut rdr = csv_reader(path)?;
    let mut out = Vec::new();
    for row in rdr.deserialize::<EventRow<String>>() {
        let row = row.map_err(|source| ReportError::Csv {
            path: path.into(),
            source,
        })?;
        out.push(EventOut {
            at_ms: row.at_ms,
            source: row.source,
            kind: row.kind,
            subject: row.subject,
            detail: row.detail,
        });
    }
    // Watchers report some states with their own (earlier) timestamps, so file order is
    // arrival order; the report wants time order.
    out.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    Ok(out)
}
