//! What a load agent writes to its stdout, which is its container log: the engine carries
//! the lines to the coordinator (attached through bollard), so no port is opened anywhere.
//! One JSON object per line, after [`PREFIX`], like the test service's truth log; any other
//! output in the log is not an agent line and is skipped.
//!
//! Every request travels as its requests.csv row (times on the agent's run clock, which
//! starts at the coordinator's start instant as the coordinator's does), so the merged
//! requests.csv is the union of the agents'.
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
    /// One request, as requests.csv has it (boxed: the row is most of a line's size).
    Request(Box<RequestRow<String>>),
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
        let json = log_line.trim_end().strip_prefix(PREFIX)?;
        Some(serde_json::from_str(json).map_err(|e| format!("agent line: {e}")))
    }
}

/// [`Line::Request`]'s log line, from a borrowed row: the agent writes one per request, so
/// it serializes the row it has instead of copying its text into an owned one.
pub fn encode_request(row: &RequestRow<&str>) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Borrowed<'a> {
        Request(&'a RequestRow<&'a str>),
    }
    let json = serde_json::to_string(&Borrowed::Request(row)).expect("a row serializes");
    format!("{PREFIX}{json}")
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
        // The agent's way: the row of its record, borrowed.
        let record = row.record().unwrap();
        assert_eq!(
            Line::decode(&encode_request(&RequestRow::of(&record))),
            Some(Ok(Line::Request(Box::new(row.clone()))))
        );
        let lines = [
            Line::Hello {
                shard: 1,
                of: 3,
                node: "worker-2".into(),
                unix_ns: 1_764_900_000_000_000_000,
            },
            Line::Request(Box::new(row)),
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
