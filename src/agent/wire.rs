//! What a load agent writes to its stdout, which is its container log: the engine carries
//! the lines to the coordinator (attached through bollard), so no port is opened anywhere.
//! One JSON object per line, after [`PREFIX`], like the test service's truth log; any other
//! output in the log is not an agent line and is skipped.
//!
//! Every request travels as its requests.csv row (times on the agent's run clock, which
//! starts at the coordinator's start instant as the coordinator's does), so the merged
//! requests.csv is the union of the agents'. The rows travel in batches, one line per flush
//! of the agent's output ([`Batch`]), in postcard's binary form: the engine sends each log
//! line as its own frame (and flushes it), and a JSON line per request cost the coordinator
//! a socket read, a wake-up and a JSON parse per request (16 µs of CPU per request in
//! ci/bench-distributed, against 2.6 µs batched).
//! Each interval's latency histogram travels too, in HdrHistogram's V2 + DEFLATE form, once
//! the interval has closed (a request that finishes in it later travels in a second histogram
//! of the same interval): the coordinator adds them (exact: an HdrHistogram sum equals the
//! histogram of all values) and checks the sum against the rows. A `done` line closes the stream with the agent's own
//! count, so a stream cut short (the agent's node stopped) is told from a complete one. The
//! engine splits a log line over 16 KiB into pieces (a busy interval's histogram can exceed
//! that): the reader joins a line's pieces before decoding it.

use crate::history::RequestRow;
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

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
    /// `count` requests, as requests.csv has them, in the order the agent recorded them:
    /// their rows in postcard's compact binary form (a quarter of their JSON, and read
    /// without a copy of their text), base64 ([`Batch`] writes them, [`each_row`] reads).
    Requests { count: u64, rows: String },
    /// One interval's ok-request latency (µs from the scheduled start): [`histogram_text`].
    Interval { index: u64, latency: String },
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

/// A [`Line::Requests`] being written: rows are encoded as they come (borrowed, never
/// copied into owned ones), and the line is written out whole.
#[derive(Debug, Default)]
pub struct Batch {
    rows: Vec<u8>,
    count: u64,
    line: String,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, row: &RequestRow<&str>) {
        let rows = std::mem::take(&mut self.rows);
        self.rows = postcard::to_extend(row, rows).expect("a row encodes into memory");
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
        self.count = 0;
        out.write_all(self.line.as_bytes())
    }
}

/// Calls `each` with every row of a [`Line::Requests`], in order (borrowing its text); an
/// error if the rows do not decode or are not `count` rows.
pub fn each_row(
    count: u64,
    rows: &str,
    mut each: impl FnMut(RequestRow<&str>),
) -> Result<(), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rows)
        .map_err(|e| format!("requests: {e}"))?;
    let mut rest = &bytes[..];
    let mut seen = 0u64;
    while !rest.is_empty() {
        let (row, more) = postcard::take_from_bytes::<RequestRow<&str>>(rest)
            .map_err(|e| format!("requests: row {seen}: {e}"))?;
        each(row);
        seen += 1;
        rest = more;
    }
    match seen == count {
        true => Ok(()),
        false => Err(format!("requests: {seen} rows where the line says {count}")),
    }
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
    use crate::history::new_histogram;

    #[test]
    fn lines_round_trip_and_other_output_is_not_a_line() {
        let row = RequestRow::<String> {
            id: 7,
            request: "place order".into(),
            scheduled_ms: 1.5,
            sent_ms: Some(1.6),
            connected_ms: Some(1.6),
            tls_ms: None,
            first_byte_ms: Some(1002.0),
            done_ms: 1002.1,
            latency_ms: 1000.6,
            outcome: "ok".into(),
            status: Some(200),
            bytes: 105,
            reused: true,
            version: "2".into(),
            host: "h".into(),
            task: "app.1".into(),
            error: String::new(),
            agent: Some(2),
        };
        // The agent's way: the rows of its records, borrowed, in one line per flush.
        let record = row.record().unwrap();
        let mut batch = Batch::new();
        let mut out = Vec::new();
        batch.write_to(&mut out).unwrap();
        assert!(out.is_empty() && batch.is_empty(), "no rows, no line");
        batch.push(&RequestRow::of(&record));
        batch.push(&RequestRow::of(&record));
        batch.write_to(&mut out).unwrap();
        batch.push(&RequestRow::of(&record));
        batch.write_to(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let counts: Vec<_> = text
            .lines()
            .map(|l| match Line::decode(l) {
                Some(Ok(Line::Requests { count, rows })) => {
                    let mut seen = Vec::new();
                    each_row(count, &rows, |r| seen.push(r.record().unwrap())).unwrap();
                    assert!(
                        seen.iter()
                            .all(|r| RequestRow::of(r) == RequestRow::of(&record))
                    );
                    // The count is checked.
                    assert!(each_row(count + 1, &rows, |_| {}).is_err());
                    assert!(each_row(count, &rows[..rows.len() - 8], |_| {}).is_err());
                    count
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(counts, [2, 1]);
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
