//! When a lab (or a stack) is ready for load: its front door answers the way the scenario
//! says, for long enough in a row. Not `GET /` = 200: a user's image may answer `/` with a 404
//! and serve at `/cgi-bin/slow`. By default the load target itself must answer with any
//! status below 500; `[load] ready = { url, status }` names another URL or one status. The
//! load's own headers go with every request (a target behind auth answers 401 without them).

use crate::poll::{self, Attempt};
use crate::scenario::{Ready, ReadyStatus};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

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
pub async fn wait(ready: &Ready, headers: &BTreeMap<String, String>) -> Result<(), NotReady> {
    let not_ready = |last: String| NotReady {
        url: ready.url.to_string(),
        want: ready.status.describe(),
        stable: ready.stable,
        timeout: ready.timeout,
        last,
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| not_ready(format!("http client: {e}")))?;
    let since: std::cell::Cell<Option<Instant>> = std::cell::Cell::new(None);
    let attempt = || async {
        let mut request = client.get(ready.url.to_string());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        match request.send().await {
            Ok(resp) if ready.status.accepts(resp.status().as_u16()) => {
                let first = since.get().unwrap_or_else(Instant::now);
                since.set(Some(first));
                if first.elapsed() >= ready.stable {
                    Attempt::Ready(())
                } else {
                    Attempt::Pending(format!("{}, not yet for long enough", resp.status()))
                }
            }
            Ok(resp) => {
                since.set(None);
                Attempt::Pending(resp.status().to_string())
            }
            Err(e) => {
                since.set(None);
                Attempt::Pending(error_chain(&e))
            }
        }
    };
    poll::until(ready.timeout, Duration::from_millis(250), attempt)
        .await
        .map_err(not_ready)
}

/// reqwest's error and its sources: "error sending request" alone says nothing.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
