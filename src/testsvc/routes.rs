//! The test service's HTTP answers (`/`, `/healthz`, `/readyz`, `/color`, `/stats`) and its
//! counters.
//! Knows nothing of sockets or signals: `serve` hands each request to `handle` with the shared
//! `State`, and reads the counters when it logs its exit.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::ServeOptions;

const X_VERSION: HeaderName = HeaderName::from_static("x-rollcheck-version");
const X_HOST: HeaderName = HeaderName::from_static("x-rollcheck-host");
const X_TASK: HeaderName = HeaderName::from_static("x-rollcheck-task");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every request needs: options, identity, start time, counters.
pub(super) struct State {
    delay: Duration,
    unhealthy_after: Option<Duration>,
    warmup: Duration,
    started: Instant,
    version: String,
    hostname: String,
    color: String,
    /// Identity headers, checked once at start: an env value that is not a valid header
    /// value is left out rather than failing every request.
    identity: Vec<(HeaderName, HeaderValue)>,
    pub(super) counters: Counters,
    /// Every request with a numeric `X-Request-Id`, for the harness's reconciliation.
    pub(super) truth: super::truth::Truth,
    /// Set just before an abrupt shutdown drops the connections, so requests dropped from
    /// then on count as cut by shutdown rather than abandoned by their client.
    pub(super) cutting: AtomicBool,
}

/// Server-side counters, as `/stats` reports them. `/stats` itself is not counted: it is
/// the observer, and counting it would make every snapshot include itself in flight.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) connections_accepted: AtomicU64,
    pub(super) requests_started: AtomicU64,
    pub(super) requests_completed: AtomicU64,
    pub(super) requests_cut: AtomicU64,
    pub(super) requests_abandoned: AtomicU64,
}

impl Counters {
    pub(super) fn to_json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "connections_accepted": get(&self.connections_accepted),
            "requests_started": get(&self.requests_started),
            "requests_completed": get(&self.requests_completed),
            "requests_cut": get(&self.requests_cut),
            "requests_abandoned": get(&self.requests_abandoned),
        })
    }
}

impl State {
    pub(super) fn new(opts: &ServeOptions, hostname: String) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut identity = Vec::new();
        let mut add = |name: HeaderName, value: &str| match HeaderValue::from_str(value) {
            Ok(v) => identity.push((name, v)),
            Err(_) => warnings.push(format!("{name} left out: {value:?} is not a header value")),
        };
        add(X_VERSION, &opts.version);
        add(X_HOST, &hostname);
        if let Some(task) = &opts.task {
            add(X_TASK, task);
        }
        let state = State {
            delay: opts.delay,
            unhealthy_after: opts.unhealthy_after,
            warmup: opts.warmup,
            started: Instant::now(),
            version: opts.version.clone(),
            hostname,
            color: opts.color.clone(),
            identity,
            counters: Counters::default(),
            truth: Default::default(),
            cutting: AtomicBool::new(false),
        };
        (state, warnings)
    }
}

/// Counts a request from start to answer; dropped unanswered means it was cut or abandoned.
struct InFlight {
    state: Arc<State>,
    answered: bool,
    /// The client's `X-Request-Id`, when it is a number (rollcheck's load sends one).
    id: Option<u64>,
}

impl InFlight {
    fn start(state: &Arc<State>, id: Option<u64>) -> Self {
        state
            .counters
            .requests_started
            .fetch_add(1, Ordering::Relaxed);
        if let Some(id) = id {
            state.truth.received(id);
        }
        InFlight {
            state: state.clone(),
            answered: false,
            id,
        }
    }

    fn answered(mut self) {
        self.answered = true;
        self.state
            .counters
            .requests_completed
            .fetch_add(1, Ordering::Relaxed);
        if let Some(id) = self.id {
            self.state.truth.answered(id);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let c = &self.state.counters;
        if let Some(id) = self.id {
            self.state.truth.cut(id);
        }
        if self.state.cutting.load(Ordering::Relaxed) {
            c.requests_cut.fetch_add(1, Ordering::Relaxed);
        } else {
            c.requests_abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(super) async fn handle(
    state: Arc<State>,
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = Utc::now();
    if req.uri().path() == "/stats" {
        let mut body = state.counters.to_json();
        body["version"] = state.version.clone().into();
        return Ok(finish(
            &state,
            &req,
            text(StatusCode::OK, "application/json", body.to_string()),
        ));
    }
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let flight = InFlight::start(&state, id);
    // Owned, so a write's body can be read from `req` in its arm.
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let warming = state.started.elapsed() < state.warmup;
    let resp = match (&method, path.as_str()) {
        // Alive but not ready: what an app whose health check does not look at its
        // dependencies answers while it warms up.
        (_, "/") if warming => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "warming up\n".into(),
        ),
        (&Method::GET | &Method::HEAD, "/") => match parse_sleep(req.uri().query()) {
            Ok(sleep) => {
                tokio::time::sleep(sleep.unwrap_or(state.delay)).await;
                let body = format!(
                    "received {}\nreplied  {}\nversion  {}\nhost     {}\n",
                    received.to_rfc3339_opts(SecondsFormat::Nanos, true),
                    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
                    state.version,
                    state.hostname,
                );
                text(StatusCode::OK, "text/plain; charset=utf-8", body)
            }
            Err(e) => text(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                e + "\n",
            ),
        },
        // A write: the whole body is read (up to 16 MiB), then answered like `GET /`.
        (&Method::POST | &Method::PUT, "/") => {
            let sleep = parse_sleep(req.uri().query());
            let limit = http_body_util::Limited::new(req.body_mut(), 16 << 20);
            match (sleep, limit.collect().await) {
                (Ok(sleep), Ok(body)) => {
                    tokio::time::sleep(sleep.unwrap_or(state.delay)).await;
                    let body = format!(
                        "received {} bytes at {}\nversion  {}\nhost     {}\n",
                        body.to_bytes().len(),
                        received.to_rfc3339_opts(SecondsFormat::Nanos, true),
                        state.version,
                        state.hostname,
                    );
                    text(StatusCode::OK, "text/plain; charset=utf-8", body)
                }
                (Err(e), _) => text(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    e + "\n",
                ),
                (_, Err(e)) => text(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    format!("body: {e}\n"),
                ),
            }
        }
        (&Method::GET | &Method::HEAD, "/healthz") => match state.unhealthy_after {
            Some(after) if state.started.elapsed() >= after => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "unhealthy\n".into(),
            ),
            _ => text(StatusCode::OK, "text/plain", "ok\n".into()),
        },
        (&Method::GET | &Method::HEAD, "/readyz") if warming => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "warming up\n".into(),
        ),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            text(StatusCode::OK, "text/plain", "ready\n".into())
        }
        (&Method::GET | &Method::HEAD, "/color") => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            color_page(&state),
        ),
        (_, "/" | "/healthz" | "/readyz" | "/color") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET (or POST / PUT to /)\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    flight.answered();
    Ok(finish(&state, &req, resp))
}

/// Adds the identity headers and echoes `X-Request-Id`, so the load side can tie its record
/// of a request to the task that served it.
fn finish<B>(
    state: &State,
    req: &Request<B>,
    mut resp: Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    let headers = resp.headers_mut();
    for (name, value) in &state.identity {
        headers.insert(name.clone(), value.clone());
    }
    if let Some(id) = req.headers().get(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID, id.clone());
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `?sleep=250ms` → Some(250 ms); no `sleep` key → None (use the configured delay).
/// Other query keys are ignored so clients can add cache busters.
pub(super) fn parse_sleep(query: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(query) = query else { return Ok(None) };
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "sleep" {
            let d = humantime::parse_duration(value)
                .map_err(|e| format!("bad sleep={value:?}: {e} (try sleep=250ms)"))?;
            found = Some(d);
        }
    }
    Ok(found)
}

fn color_page(state: &State) -> String {
    let (color, version, host) = (
        crate::escape::markup(&state.color),
        crate::escape::markup(&state.version),
        crate::escape::markup(&state.hostname),
    );
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>rollcheck {version}</title></head>\n\
         <body style=\"background:{color};font-family:sans-serif\">\n\
         <h1>version {version}</h1>\n<p>host {host}</p>\n</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (query string, expected sleep; Err(()) = rejected with 400)
    type Case = (Option<&'static str>, Result<Option<Duration>, ()>);

    #[test]
    fn sleep_query_cases() {
        let ms = Duration::from_millis;
        let cases: &[Case] = &[
            (None, Ok(None)),
            (Some(""), Ok(None)),
            (Some("x=1"), Ok(None)),
            (Some("sleep=250ms"), Ok(Some(ms(250)))),
            (Some("sleep=1s"), Ok(Some(ms(1000)))),
            (Some("sleep=0s"), Ok(Some(ms(0)))),
            (Some("a=b&sleep=50ms&c"), Ok(Some(ms(50)))),
            (Some("sleep=1s&sleep=2s"), Ok(Some(ms(2000)))),
            (Some("sleep=fast"), Err(())),
            (Some("sleep="), Err(())),
            (Some("sleep"), Err(())),
            (Some("sleep=-1s"), Err(())),
        ];
        for (query, want) in cases {
            let got = parse_sleep(*query).map_err(|_| ());
            assert_eq!(&got, want, "query {query:?}");
        }
    }

    #[test]
    fn sleep_error_names_the_value() {
        let err = parse_sleep(Some("sleep=fast")).unwrap_err();
        assert!(err.contains("\"fast\""), "{err}");
    }
}
