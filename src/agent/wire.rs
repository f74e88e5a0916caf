//! What a load agent writes to its stdout, which is its container log: the engine carries
//! the lines to the coordinator (attached through bollard), so no port is opened anywhere.
//! One JSON object per line, after [`PREFIX`], like the test service's truth log; any other
//! output in the log is not an agent line and is skipped.
//!
//! Every request travels whole, to the µs requests.csv has (times on the agent's run clock,
//! which starts at the coordinator's start instant as the coordinator's does), so the merged
//! requests.csv is the union of the agents'. The rows travel in batches, one line per flush
//! of the agent's output ([`Batch`]), in a compact binary form ([`WireRow`]): the engine
//! sends each log line as its own frame (and flushes it), and a JSON line per request cost
//! the coordinator a socket read, a wake-up and a JSON parse per request (16 µs of CPU per
//! request in ci/bench-distributed, against 2.3 µs batched in this form).
//! Each interval's latency histogram travels too, in HdrHistogram's V2 + DEFLATE form, once
//! the interval has closed (a request that finishes in it later travels in a second histogram
//! of the same interval): the coordinator adds them (exact: an HdrHistogram sum equals the
//! histogram of all values) and checks the sum against the rows. A `done` line closes the
//! stream with the agent's own count, so a stream cut short (the agent's node stopped) is
//! told from a complete one. The engine splits a log line over 16 KiB into pieces (a busy
//! interval's histogram can exceed that): the reader joins a line's pieces before decoding
//! it.

use crate::history::micros;
use crate::load::record::RequestRecord;
use crate::outcome::Outcome;
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const PREFIX: &str = "rollcheck-agent ";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// The first line: which shard this agent sends, where it runs, and its wall clock
    /// (ns since the Unix epoch) when it wrote the line, for the coordinator's offset.
    Hello {
        shard: u32,
        of: u32,
        node: String,
        unix_ns: u64,
    },
    /// `count` requests, in the order the agent recorded them: [`WireRow`]s, base64
    /// ([`Batch`] writes them, [`each_record`] reads them).
    Requests { count: u64, rows: String },
    /// One interval's ok-request latency (µs from the scheduled start): [`histogram_text`].
    Interval { index: u64, latency: String },
    /// A note the agent's load recorded (its preconnect, its dispatcher's priority), at
    /// `at_ms` on its run clock: the coordinator records it in events.csv as the agent's.
    Note {
        at_ms: f64,
        kind: String,
        subject: String,
        detail: String,
    },
    /// The last line: how many requests the agent recorded, and the CPU time (s) and peak
    /// RSS (MB) it used (absent from an agent that could not read them).
    Done {
        requests: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu_s: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_rss_mb: Option<f64>,
    },
}

impl Line {
    /// The log line, without its newline.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("an agent line serializes");
        format!("{PREFIX}{json}")
    }

    /// `None` for a log line that is not an agent's; an error for one that is but does not
    /// parse (a line the engine split or cut).
    pub fn decode(log_line: &str) -> Option<Result<Line, String>> {
        Line::decode_bytes(log_line.as_bytes())
    }

    /// [`Line::decode`] of a log line as the engine sent it (serde_json checks the UTF-8).
    pub fn decode_bytes(log_line: &[u8]) -> Option<Result<Line, String>> {
        let json = log_line.trim_ascii_end().strip_prefix(PREFIX.as_bytes())?;
        Some(serde_json::from_slice(json).map_err(|e| format!("agent line: {e}")))
    }
}

/// Joins a log's frames into its lines: the engine sends each log line as a frame, and a
/// line over 16 KiB as several. A line within one frame is passed on without a copy.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Calls `each` with every line (without its newline) that `frame` ends, in order, until
    /// it returns false; keeps the unfinished rest for the next frame.
    pub fn feed(&mut self, mut frame: &[u8], mut each: impl FnMut(&[u8]) -> bool) -> bool {
        if !self.pending.is_empty() {
            let Some(end) = frame.iter().position(|b| *b == b'\n') else {
                self.pending.extend_from_slice(frame);
                return true;
            };
            self.pending.extend_from_slice(&frame[..end]);
            if !each(&self.pending) {
                return false;
            }
            self.pending.clear();
            frame = &frame[end + 1..];
        }
        while let Some(end) = frame.iter().position(|b| *b == b'\n') {
            if !each(&frame[..end]) {
                return false;
            }
            frame = &frame[end + 1..];
        }
        self.pending.extend_from_slice(frame);
        true
    }
}

/// A [`Line::Requests`] being written: each record is encoded as it comes ([`WireRow`]),
/// and the line is written out whole.
#[derive(Debug, Default)]
pub struct Batch {
    rows: Vec<u8>,
    count: u64,
    /// The strings this line has carried so far, by their [`Text::Seen`] number.
    seen: HashMap<Box<str>, u32>,
    line: String,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a record, which must be rounded to whole µs
    /// ([`RequestRecord::round_to_micros`]): the wire carries µs.
    pub fn push(&mut self, r: &RequestRecord) {
        let us = |d: Duration| micros(d) as i64;
        let scheduled = us(r.scheduled);
        let after = |d: Duration| us(d) - scheduled;
        let seen = &mut self.seen;
        let mut text = |s| Text::of(s, seen);
        let row = WireRow {
            id: r.id,
            scheduled: scheduled as u64,
            sent: r.sent.map(after),
            connected: r.connected.map(after),
            tls: r.tls.map(after),
            first_byte: r.first_byte.map(after),
            done: after(r.done),
            outcome: r.outcome,
            status: r.status,
            bytes: r.bytes,
            reused: r.reused,
            request: text(r.request.as_deref().unwrap_or_default()),
            version: text(&r.version),
            host: text(&r.host),
            task: text(&r.task),
            error: text(&r.error),
            agent: r.agent,
        };
        let rows = std::mem::take(&mut self.rows);
        self.rows = postcard::to_extend(&row, rows).expect("a row encodes into memory");
        self.count += 1;
    }

    /// The rows' encoded size so far, in bytes.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Writes the line (with its newline) if it holds a row, and starts the next.
    pub fn write_to(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        use std::fmt::Write as _;
        self.line.clear();
        let _ = write!(
            self.line,
            "{PREFIX}{{\"requests\":{{\"count\":{},\"rows\":\"",
            self.count
        );
        base64::engine::general_purpose::STANDARD.encode_string(&self.rows, &mut self.line);
        self.line.push_str("\"}}\n");
        self.rows.clear();
        self.seen.clear();
        self.count = 0;
        out.write_all(self.line.as_bytes())
    }
}

/// One request as it travels: µs (exact, as the records are rounded to µs before they
/// travel and requests.csv has µs), the times after `scheduled` as differences and every
/// string once per line, all as postcard varints: 35 bytes a request whose strings the line
/// already carried, against 86 or more as a requests.csv row in postcard (f64 ms, and the
/// strings each time), so the engine, the log stream and the coordinator carry and decode
/// less than half the bytes.
#[derive(Serialize, Deserialize)]
struct WireRow<'a> {
    id: u64,
    scheduled: u64,
    sent: Option<i64>,
    connected: Option<i64>,
    tls: Option<i64>,
    first_byte: Option<i64>,
    done: i64,
    outcome: Outcome,
    status: Option<u16>,
    bytes: u64,
    reused: bool,
    #[serde(borrow)]
    request: Text<'a>,
    #[serde(borrow)]
    version: Text<'a>,
    #[serde(borrow)]
    host: Text<'a>,
    #[serde(borrow)]
    task: Text<'a>,
    #[serde(borrow)]
    error: Text<'a>,
    agent: Option<u32>,
}

/// A string in a [`Line::Requests`]: the first time whole, then by number (versions, hosts
/// and tasks repeat on nearly every row).
#[derive(Serialize, Deserialize)]
enum Text<'a> {
    /// The line's n-th distinct string (from 0, in the order they came).
    Seen(u32),
    /// A string the line has not carried yet: it becomes the next number.
    New(&'a str),
}

impl<'a> Text<'a> {
    /// `s`, by number if `seen` (the line's strings so far) has it, else whole (and added).
    fn of(s: &'a str, seen: &mut HashMap<Box<str>, u32>) -> Text<'a> {
        if let Some(n) = seen.get(s) {
            return Text::Seen(*n);
        }
        let n = seen.len() as u32;
        seen.insert(s.into(), n);
        Text::New(s)
    }
}

/// Calls `each` with every record of a [`Line::Requests`], in order; an error if the rows
/// do not decode or are not `count` rows.
pub fn each_record(
    count: u64,
    rows: &str,
    mut each: impl FnMut(RequestRecord),
) -> Result<(), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rows)
        .map_err(|e| format!("requests: {e}"))?;
    let mut rest = &bytes[..];
    let mut seen: Vec<&str> = Vec::new();
    let mut n = 0u64;
    while !rest.is_empty() {
        let (row, more) = postcard::take_from_bytes::<WireRow>(rest)
            .map_err(|e| format!("requests: row {n}: {e}"))?;
        each(record_of(row, &mut seen).map_err(|e| format!("requests: row {n}: {e}"))?);
        n += 1;
        rest = more;
    }
    match n == count {
        true => Ok(()),
        false => Err(format!("requests: {n} rows where the line says {count}")),
    }
}

/// The record a [`WireRow`] carries; `seen` is the line's strings so far.
fn record_of<'a>(row: WireRow<'a>, seen: &mut Vec<&'a str>) -> Result<RequestRecord, String> {
    let mut text = |t: Text<'a>| match t {
        Text::Seen(i) => seen
            .get(i as usize)
            .map(|s| s.to_string())
            .ok_or_else(|| format!("string {i} before the line carried it")),
        Text::New(s) => {
            seen.push(s);
            Ok(s.to_string())
        }
    };
    let at = |us: i64| Duration::from_micros(us.max(0) as u64);
    let after = |d: i64| at(row.scheduled as i64 + d);
    let request = text(row.request)?;
    Ok(RequestRecord {
        id: row.id,
        request: Some(request).filter(|r| !r.is_empty()).map(Arc::from),
        scheduled: Duration::from_micros(row.scheduled),
        sent: row.sent.map(after),
        connected: row.connected.map(after),
        tls: row.tls.map(after),
        first_byte: row.first_byte.map(after),
        done: after(row.done),
        outcome: row.outcome,
        status: row.status,
        bytes: row.bytes,
        reused: row.reused,
        version: text(row.version)?,
        host: text(row.host)?,
        task: text(row.task)?,
        error: text(row.error)?,
        agent: row.agent,
    })
}

/// A histogram as one line of text: V2 + DEFLATE, base64.
pub fn histogram_text(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing a histogram into memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The histogram [`histogram_text`] wrote.
pub fn histogram_of_text(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("histogram: {e}"))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{RequestRow, new_histogram};

    #[test]
    fn lines_round_trip_and_other_output_is_not_a_line() {
        let ms = |m: f64| Duration::from_micros((m * 1000.0) as u64);
        let record = RequestRecord {
            id: 7,
            request: Some(Arc::from("place order")),
            scheduled: ms(1.5),
            sent: Some(ms(1.6)),
            connected: Some(ms(1.6)),
            tls: None,
            first_byte: Some(ms(1002.0)),
            done: ms(1002.1),
            outcome: Outcome::Ok,
            status: Some(200),
            bytes: 105,
            reused: true,
            version: "2".into(),
            host: "h".into(),
            task: "app.1".into(),
            error: String::new(),
            agent: Some(2),
        };
        // Another record with other strings, one of them new, and times that are not in
        // order (a clock step on the agent): each travels exactly.
        let other = RequestRecord {
            id: 8,
            request: None,
            scheduled: ms(3000.0),
            sent: Some(ms(2999.0)),
            connected: None,
            first_byte: None,
            done: ms(3010.0),
            outcome: Outcome::Reset,
            status: None,
            reused: false,
            task: "app.2".into(),
            error: "connection reset".into(),
            ..record.clone()
        };
        // The agent's way: the records, in one line per flush.
        let mut batch = Batch::new();
        let mut out = Vec::new();
        batch.write_to(&mut out).unwrap();
        assert!(out.is_empty() && batch.is_empty(), "no rows, no line");
        batch.push(&record);
        batch.push(&other);
        let before = batch.len();
        batch.push(&record);
        // A row whose strings the line already carries: 35 bytes, against 86 in the
        // requests.csv row's form (f64 ms and the strings each time).
        let again = batch.len() - before;
        let as_csv_row = postcard::to_allocvec(&RequestRow::of(&record))
            .unwrap()
            .len();
        assert!(
            again <= 40 && as_csv_row >= 2 * again,
            "{again} and {as_csv_row} bytes"
        );
        batch.write_to(&mut out).unwrap();
        batch.push(&other);
        batch.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut seen = Vec::new();
        let counts: Vec<_> = text
            .lines()
            .map(|l| match Line::decode(l) {
                Some(Ok(Line::Requests { count, rows })) => {
                    each_record(count, &rows, |r| seen.push(r)).unwrap();
                    // The count is checked, and so is a cut line.
                    assert!(each_record(count + 1, &rows, |_| {}).is_err());
                    assert!(each_record(count, &rows[..rows.len() - 8], |_| {}).is_err());
                    count
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let want = [&record, &other, &record, &other];
        assert_eq!(seen.len(), want.len());
        for (got, want) in seen.iter().zip(want) {
            assert_eq!(RequestRow::of(got), RequestRow::of(want));
        }
        assert_eq!(counts, [3, 1]);
        let lines = [
            Line::Hello {
                shard: 1,
                of: 3,
                node: "worker-2".into(),
                unix_ns: 1_764_900_000_000_000_000,
            },
            Line::Requests {
                count: 0,
                rows: String::new(),
            },
            Line::Interval {
                index: 4,
                latency: histogram_text(&new_histogram()),
            },
            Line::Note {
                at_ms: 0.25,
                kind: "dispatcher".into(),
                subject: "load".into(),
                detail: "at normal priority (\"EPERM\")\nsecond line".into(),
            },
            Line::Done {
                requests: 1,
                cpu_s: Some(0.25),
                peak_rss_mb: Some(12.5),
            },
            Line::Done {
                requests: 0,
                cpu_s: None,
                peak_rss_mb: None,
            },
        ];
        for line in lines {
            let text = line.encode();
            assert!(!text.contains('\n'), "{text}");
            assert_eq!(Line::decode(&format!("{text}\n")), Some(Ok(line)));
        }
        assert_eq!(Line::decode("listening on 0.0.0.0:8080"), None);
        assert!(matches!(
            Line::decode("rollcheck-agent {\"done\":{\"requ"),
            Some(Err(_))
        ));
    }

    #[test]
    fn frames_join_into_lines() {
        let mut lines = Lines::default();
        let mut seen: Vec<String> = Vec::new();
        let mut feed = |frame: &str| {
            lines.feed(frame.as_bytes(), |l| {
                seen.push(String::from_utf8(l.to_vec()).unwrap());
                true
            })
        };
        // Whole lines, two in one frame, one split over three frames (the engine's 16-KiB
        // pieces), and a frame that ends one line and starts the next.
        assert!(feed("a\n"));
        assert!(feed("b\nc\n"));
        assert!(feed("d1"));
        assert!(feed("d2"));
        assert!(feed("d3\ne1"));
        assert!(feed("e2\n"));
        assert!(feed("f"));
        assert_eq!(seen, ["a", "b", "c", "d1d2d3", "e1e2"]);
        // The receiver can stop the reading.
        assert!(!lines.feed(b"x\ny\n", |_| false));
    }

    #[test]
    fn histograms_from_agents_add_up_exactly() {
        // Three agents' latencies (µs), one histogram each, through the wire and added: the
        // same histogram as all values recorded in one.
        let mut whole = new_histogram();
        let mut agents = [new_histogram(), new_histogram(), new_histogram()];
        let mut x: u64 = 12345;
        for i in 0..30_000u64 {
            // A spread from 100 µs to ~20 s, deterministic.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 100 + (x >> 33) % 20_000_000;
            whole.record(v).unwrap();
            agents[(i % 3) as usize].record(v).unwrap();
        }
        let mut merged = new_histogram();
        for a in &agents {
            let text = histogram_text(a);
            assert!(text.len() < 64 * 1024, "{} bytes", text.len());
            merged.add(histogram_of_text(&text).unwrap()).unwrap();
        }
        assert_eq!(merged.len(), whole.len());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                whole.value_at_quantile(q),
                "q {q}"
            );
        }
        assert!(merged == whole);
        assert!(histogram_of_text("not base64!").is_err());
    }
}
