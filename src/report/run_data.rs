//! A saved run read back from its report directory (summary.json, requests.csv, events.csv,
//! scenario.toml), for the HTML report and `rollcheck report` / `compare`. The csv columns are
//! the ones `history` writes ([`RequestRow`], [`EventRow`]); only the fields the charts need
//! are kept per request, and repeated text (version, task, error) is shared, so a run of a
//! million requests stays in the low hundreds of megabytes.

use super::{SCHEMA_VERSION, Summary};
use crate::history::EventRow;
use crate::history::read::Rows;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] crate::history::read::ReadError),
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
}

/// One request as the charts need it. Times in ms on the run clock.
pub use crate::history::sample::Point;

#[derive(Debug, Clone)]
pub struct RunData {
    pub summary: Summary,
    /// The requests the scatter charts draw: a bounded sample ([`crate::history::sample`]),
    /// in time order.
    pub points: Vec<Point>,
    /// Sorted by time.
    pub events: Vec<EventRow>,
    /// The resolved scenario (empty when the file is missing).
    pub scenario: String,
}

impl RunData {
    pub fn load(dir: &Path) -> Result<RunData, ReportError> {
        let summary = read_summary(&dir.join("summary.json"))?;
        let points = read_points(&dir.join("requests.csv"))?;
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
            points,
            events,
            scenario,
        })
    }

    /// Start of the first step (s), the origin of `compare`'s aligned time axis.
    /// A run just measured, from what the collector kept: nothing is read back but the
    /// scenario text.
    pub fn of_run(
        summary: Summary,
        history: &crate::history::History,
        scenario: String,
    ) -> RunData {
        let mut events: Vec<EventRow> = history.events.iter().map(EventRow::from).collect();
        events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        RunData {
            summary,
            points: history.sample.points(),
            events,
            scenario,
        }
    }

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

/// Streams requests.csv into the same bounded sample the collector builds during a run.
fn read_points(path: &Path) -> Result<Vec<Point>, ReportError> {
    let mut sample = crate::history::sample::Sample::default();
    Rows::open(path)?.requests(|r| sample.add(Point::of(&r)))?;
    Ok(sample.points())
}

fn read_events(path: &Path) -> Result<Vec<EventRow>, ReportError> {
    let mut out = Rows::open(path)?.events()?;
    // Watchers report some states with their own (earlier) timestamps, so file order is
    // arrival order; the report wants time order.
    out.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    Ok(out)
}
