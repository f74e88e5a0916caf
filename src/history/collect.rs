//! The collector thread: every request and event a [`Recorder`] sends goes to requests.csv
//! or events.csv and is folded into the run's [`History`] as it arrives.

use super::{Entry, EventRow, History, Live, Recorder, RequestRow, micros, new_histogram};
use crate::analysis::probes::ProbeFold;
use crate::load::record::RequestRecord;
use crate::outcome::Outcome;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running collector. Call [`Collector::finish`] once the load and every producer ended.
pub struct Collector {
    tx: mpsc::Sender<Entry>,
    live: Arc<Live>,
    thread: JoinHandle<io::Result<History>>,
}

impl Collector {
    /// Creates `requests.csv` and `events.csv` in `dir` and starts the collector thread,
    /// which folds every request into per-`interval` figures and `probes`.
    pub fn start(dir: &Path, interval: Duration, probes: ProbeFold) -> io::Result<Collector> {
        let requests = File::create(dir.join("requests.csv"))?;
        let events = File::create(dir.join("events.csv"))?;
        let (tx, rx) = mpsc::channel();
        let live = Arc::<Live>::default();
        let thread = {
            let live = live.clone();
            std::thread::Builder::new()
                .name("rollcheck-history".into())
                .spawn(move || {
                    yield_to_the_load();
                    collect(rx, requests, events, interval, probes, &live)
                })?
        };
        Ok(Collector { tx, live, thread })
    }

    pub fn recorder(&self) -> Recorder {
        Recorder {
            tx: self.tx.clone(),
            live: self.live.clone(),
            observer: None,
        }
    }

    /// Stops collecting (entries sent after this are ignored), flushes, returns the history.
    pub fn finish(self) -> io::Result<History> {
        let _ = self.tx.send(Entry::Close);
        self.thread
            .join()
            .map_err(|_| io::Error::other("history collector panicked"))?
    }
}

/// The collector only has to keep up on average (its channel holds what it has not folded
/// yet); the load's threads must not wait for a core behind it. Nice 10 for this thread.
fn yield_to_the_load() {
    // SAFETY: gettid has no arguments; setpriority on a thread id changes only that thread.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

fn collect(
    rx: mpsc::Receiver<Entry>,
    requests: File,
    events_csv: File,
    interval: Duration,
    probes: ProbeFold,
    live: &Live,
) -> io::Result<History> {
    let mut h = History::new(interval, probes);
    let mut recent = Recent::new(interval);
    let (mut requests, mut events_csv) = (RowFile::new(requests), RowFile::new(events_csv));
    let mut last_flush = Instant::now();
    loop {
        let entry = match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(e) => Some(e),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match entry {
            Some(Entry::Close) => break,
            Some(Entry::Request(r)) => {
                fold(*r, &mut requests, &mut recent, &mut h, live)?;
            }
            Some(Entry::Requests(rs)) => {
                for r in rs {
                    fold(r, &mut requests, &mut recent, &mut h, live)?;
                }
            }
            Some(Entry::Event(e)) => {
                events_csv.row(EventRow::from(&e))?;
                h.event(e);
            }
            None => {}
        }
        if last_flush.elapsed() >= FLUSH_EVERY || requests.pending() >= FLUSH_BYTES {
            requests.flush()?;
            events_csv.flush()?;
            last_flush = Instant::now();
        }
    }
    requests.flush()?;
    events_csv.flush()?;
    Ok(h.finish())
}

/// One request into requests.csv, the live figures and the history.
fn fold(
    mut r: RequestRecord,
    requests: &mut RowFile,
    recent: &mut Recent,
    h: &mut History,
    live: &Live,
) -> io::Result<()> {
    r.round_to_micros();
    write_request(requests, &r)?;
    recent.add(&r, live);
    h.request(&r);
    Ok(())
}

fn write_request(w: &mut RowFile, r: &RequestRecord) -> io::Result<()> {
    w.row(RequestRow::of(r))
}

/// The ok latencies of the requests finishing in the current interval of the run clock, for
/// the progress display: when a request ends in a later interval, the one before is whole
/// and its p50/p99 go to [`Live`].
struct Recent {
    width: Duration,
    /// Index of the interval being filled.
    current: u64,
    latency: Histogram<u64>,
}

impl Recent {
    fn new(width: Duration) -> Recent {
        Recent {
            width,
            current: 0,
            latency: new_histogram(),
        }
    }

    fn add(&mut self, r: &RequestRecord, live: &Live) {
        let index = (r.done.as_nanos() / self.width.as_nanos().max(1)) as u64;
        if index > self.current {
            let (p50, p99) = if self.latency.is_empty() || index > self.current + 1 {
                (0, 0)
            } else {
                (
                    self.latency.value_at_quantile(0.5),
                    self.latency.value_at_quantile(0.99),
                )
            };
            live.recent_p50_us.store(p50, Ordering::Relaxed);
            live.recent_p99_us.store(p99, Ordering::Relaxed);
            self.latency.reset();
            self.current = index;
        }
        if r.outcome == Outcome::Ok {
            self.latency.saturating_record(micros(r.latency()));
        }
    }
}

/// How often whole rows reach the disk, and how many bytes may wait at most.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
const FLUSH_BYTES: usize = 1 << 20;

/// A CSV file written whole rows at a time. A csv writer over a buffered file writes its
/// buffer out when it fills, mid-row: a run killed then (SIGKILL, OOM) left a torn last row.
/// Here rows are serialized into memory and each write to the file holds only whole rows.
struct RowFile {
    csv: csv::Writer<Rows>,
    rows: Rows,
    file: File,
}

/// The csv writer's output: whole rows once it is flushed after a row.
#[derive(Clone, Default)]
struct Rows(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Rows {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RowFile {
    fn new(file: File) -> RowFile {
        let rows = Rows::default();
        RowFile {
            csv: csv::Writer::from_writer(rows.clone()),
            rows,
            file,
        }
    }

    fn row(&mut self, row: impl Serialize) -> io::Result<()> {
        self.csv.serialize(row).map_err(io::Error::other)?;
        self.csv.flush()
    }

    fn pending(&self) -> usize {
        self.rows.0.borrow().len()
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut rows = self.rows.0.borrow_mut();
        if !rows.is_empty() {
            self.file.write_all(&rows)?;
            rows.clear();
        }
        Ok(())
    }
}
