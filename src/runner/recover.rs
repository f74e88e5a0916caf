//! A run that was killed before it wrote its summary (SIGKILL, the OOM killer, a CI job
//! cancelled hard) still left requests.csv, events.csv and scenario.toml: `rollcheck report
//! DIR` folds them into the same history the collector builds and concludes the run the same
//! way ([`super::conclude`]). The summary says it was recovered, and the run is inconclusive
//! unless its record is complete: the load's `load_end` event is there with as many request
//! rows as it counted, and every step that started also ended.

use super::{Ending, RunResult, StepSpan, conclude, probe_fold, write_report};
use crate::analysis::truth::ServerLog;
use crate::event::{Event, What};
use crate::history::History;
use crate::history::read::{ReadError, Rows};
use crate::scenario::Plan;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(
        "{}: no summary.json, and its requests.csv is missing too: not a run directory, or a run that never started its load",
        dir.display()
    )]
    NotARun { dir: PathBuf },
    #[error(
        "cannot read the run's scenario (recovery reads it as the run did: set the variables it names): {0}"
    )]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] super::RunError),
}

/// The run's scenario as the run read it: the copy's text, with the files it names found
/// where the original was (a run dir written before `scenario.source` existed: beside the
/// copy).
fn run_scenario(dir: &Path) -> Result<Plan, RecoverError> {
    let copy = dir.join("scenario.toml");
    let Ok(source) = std::fs::read_to_string(dir.join(super::SCENARIO_SOURCE)) else {
        return Ok(crate::scenario::load(&copy)?);
    };
    let text = crate::scenario::read(&copy)?;
    let env = |name: &str| std::env::var(name).ok();
    Ok(crate::scenario::parse(
        &text,
        Path::new(source.trim_end()),
        &env,
    )?)
}

/// Rebuilds summary.json, summary.txt, junit.xml and report.html of the run in `dir`.
pub fn recover(dir: &Path) -> Result<RunResult, RecoverError> {
    let requests = dir.join("requests.csv");
    if !requests.exists() {
        return Err(RecoverError::NotARun { dir: dir.into() });
    }
    let mut plan = run_scenario(dir)?;
    let id = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (started_utc, slug) = parse_id(&id);
    if let Some(slug) = slug {
        plan.slug = slug;
    }
    let mut history = History::new(plan.load.interval, probe_fold(&plan));
    let record = fold(&requests, &dir.join("events.csv"), &mut history)?;
    let mut history = history.finish();
    let spans = spans(&plan, &history.events, record.end);

    let mut problems = Vec::new();
    match record.load_end {
        None => problems.push(format!(
            "recovered: the record ends at {:.1}s, before the load ended (no load_end in events.csv): the run was killed while it measured",
            record.end.as_secs_f64()
        )),
        Some(sent) if sent != history.rows_written => problems.push(format!(
            "recovered: requests.csv holds {} of the {sent} requests the load sent",
            history.rows_written
        )),
        Some(_) => {}
    }
    problems.extend(record.partial);
    let (summary, verdict) = conclude(
        &plan,
        Ending {
            id,
            started_utc,
            duration: record.end,
            interrupted: false,
            recovered: true,
            environment: Default::default(),
            problems,
            // The containers whose logs held the servers' side went with the lab.
            server: if plan.has_lab() {
                ServerLog::NotRead("recovered: the containers' logs went with the lab".into())
            } else {
                ServerLog::Unavailable
            },
            generators: None,
        },
        &spans,
        &mut history,
    );
    write_report(dir, &summary, &history)?;
    Ok(RunResult {
        dir: dir.into(),
        summary,
        verdict,
        interrupted: false,
    })
}

/// What the files held besides the rows.
struct Record {
    /// `load_end`'s request count, when the load ended.
    load_end: Option<u64>,
    /// The last time the record knows of (`load_end`'s, else the latest row).
    end: Duration,
    /// Partial last rows left out.
    partial: Vec<String>,
}

/// Feeds both files into `history` in time order, as the collector received them: a request
/// at its end, an event at its time.
fn fold(requests: &Path, events: &Path, history: &mut History) -> Result<Record, ReadError> {
    let mut event_rows = match Rows::open(events) {
        Ok(r) => Some(r),
        Err(ReadError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut next_event = || -> Result<Option<Event>, ReadError> {
        match &mut event_rows {
            Some(rows) => Ok(rows.next_event()?.map(|row| row.event())),
            None => Ok(None),
        }
    };
    let mut pending = next_event()?;
    let mut record = Record {
        load_end: None,
        end: Duration::ZERO,
        partial: Vec::new(),
    };
    let take = |e: Event, history: &mut History, record: &mut Record| {
        record.end = record.end.max(e.at);
        if let What::LoadEnd { requests } = e.what {
            record.load_end = Some(requests);
        }
        history.event(e);
    };
    let mut request_rows = Rows::open(requests)?;
    let mut failed = None;
    request_rows.requests(|r| {
        // Events up to this request's end come first; reading stops at the first bad row.
        while let Some(e) = pending.take_if(|e| e.at <= r.done) {
            take(e, history, &mut record);
            match next_event() {
                Ok(next) => pending = next,
                Err(err) => {
                    failed.get_or_insert(err);
                }
            }
        }
        record.end = record.end.max(r.done);
        history.request(&r);
    })?;
    if let Some(err) = failed {
        return Err(err);
    }
    while let Some(e) = pending.take() {
        take(e, history, &mut record);
        pending = next_event()?;
    }
    if let Some(end) = history.events.iter().find_map(|e| match e.what {
        What::LoadEnd { .. } => Some(e.at),
        _ => None,
    }) {
        record.end = end;
    }
    record.partial.extend(request_rows.partial_note());
    record
        .partial
        .extend(event_rows.as_ref().and_then(Rows::partial_note));
    Ok(record)
}

/// The steps as their events tell them; a step that started and never ended was cut by the
/// kill at `end`.
fn spans(plan: &Plan, events: &[Event], end: Duration) -> Vec<StepSpan> {
    let mut spans = Vec::new();
    for e in events {
        let What::StepStart { index, .. } = &e.what else {
            continue;
        };
        let Some(step) = plan.steps.iter().find(|s| s.index == *index) else {
            continue;
        };
        let ended = events.iter().find_map(|f| match &f.what {
            What::StepEnd {
                index: i,
                ok,
                detail,
                ..
            } if i == index && f.at >= e.at => Some((f.at, *ok, detail.clone())),
            _ => None,
        });
        let (end, ok, detail) = ended.unwrap_or_else(|| {
            (
                end.max(e.at),
                false,
                "no step_end in events.csv: the run was killed during this step".into(),
            )
        });
        spans.push(StepSpan {
            index: *index,
            label: step.label.clone(),
            action: step.action.name(),
            start: e.at,
            end,
            ok,
            expected_failure: step.expect_failure,
            converges: step.action.converges(),
            detail,
        });
    }
    spans
}

/// `20261201T121806Z-rolling` (or `…-rolling-2`) → its start and slug.
fn parse_id(id: &str) -> (chrono::DateTime<chrono::Utc>, Option<String>) {
    let parsed = id.split_once('-').and_then(|(stamp, slug)| {
        let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
        Some((t.and_utc(), slug.to_string()))
    });
    match parsed {
        Some((t, slug)) => (t, Some(slug)),
        None => (chrono::Utc::now(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_give_start_and_slug() {
        let (t, slug) = parse_id("20261201T121806Z-node-shutdown-2");
        assert_eq!(t.to_rfc3339(), "2026-12-01T12:18:06+00:00");
        assert_eq!(slug.as_deref(), Some("node-shutdown-2"));
        assert_eq!(parse_id("my-copy").1, None);
    }
}
