//! When a lab (or a stack) is ready for load: its front door answers the way the scenario
//! says, for long enough in a row. Not `GET /` = 200: a user's image may answer `/` with a 404
//! and serve at `/cgi-bin/slow`. By default the load target itself must answer with any
//! status below 500; `[load] ready = { url, status }` names another URL or one status. Asked
//! with the load's own client and settings: its headers (a target behind auth answers 401
//! without them), its TLS trust and its `connect_to`.

use crate::clock::Clock;
use crate::load::client::{self, Options, Target};
use crate::poll::{self, Attempt};
use crate::scenario::{Ready, ReadyStatus};
use std::time::Duration;
use tokio::time::Instant;

/// The probe's `X-Request-Id`: never one of the load's (which count from 0), so the
/// servers' truth log does not mistake a probe for a load request.
pub const READY_PROBE_ID: u64 = u64::MAX;

#[derive(Debug, thiserror::Error)]
#[error(
    "{url} did not answer {want} for {stable:?} in a row within {timeout:?} (last: {last}); if the service is ready at another URL, say so with [load] ready = {{ url = \"...\", status = 200 }}"
)]
pub struct NotReady {
    pub url: String,
    pub want: String,
    pub stable: Duration,
    pub timeout: Duration,
    pub last: String,
}

impl ReadyStatus {
    fn accepts(self, status: u16) -> bool {
        match self {
            ReadyStatus::Below500 => status < 500,
            ReadyStatus::Exactly(s) => status == s,
        }
    }

    fn describe(self) -> String {
        match self {
            ReadyStatus::Below500 => "with a status below 500".into(),
            ReadyStatus::Exactly(s) => format!("HTTP {s}"),
        }
    }
}

/// Waits until `ready.url` has answered as wanted to every request for `ready.stable` (one
/// request every 250 ms; any other answer starts the count again). An edge with active
/// health checks (HAProxy) can answer once and then mark every backend down on its first
/// checks: the load must not start in that window.
pub async fn wait(ready: &Ready, load: &crate::scenario::Load) -> Result<(), NotReady> {
    let not_ready = |last: String| NotReady {
        url: ready.url.to_string(),
        want: ready.status.describe(),
        stable: ready.stable,
        timeout: ready.timeout,
        last,
    };
    let opts = Options {
        keepalive: false,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        // One GET of the ready URL, not the load's mix.
        mix: Vec::new(),
        ..Options::of(load)
    };
    let target = Target::from_uri(&ready.url, &opts).map_err(not_ready)?;
    let clock = Clock::start();
    let since: std::cell::Cell<Option<Instant>> = std::cell::Cell::new(None);
    let attempt = || async {
        let (rec, _) = client::send(&target, &clock, READY_PROBE_ID, clock.now(), None).await;
        // A status counts once its answer is complete (no error after the headers).
        match rec.status.filter(|_| rec.error.is_empty()) {
            Some(status) if ready.status.accepts(status) => {
                let first = since.get().unwrap_or_else(Instant::now);
                since.set(Some(first));
                if first.elapsed() >= ready.stable {
                    Attempt::Ready(())
                } else {
                    Attempt::Pending(format!("{}, not yet for long enough", status_text(status)))
                }
            }
            Some(status) => {
                since.set(None);
                Attempt::Pending(status_text(status))
            }
            None => {
                since.set(None);
                Attempt::Pending(format!("{}: {}", rec.outcome, rec.error))
            }
        }
    };
    poll::until(ready.timeout, Duration::from_millis(250), attempt)
        .await
        .map_err(not_ready)
}

/// `404 Not Found`, as reqwest said it before.
fn status_text(status: u16) -> String {
    http::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string())
}
