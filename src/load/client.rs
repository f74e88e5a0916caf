//! One HTTP/1.1 request on a real TCP socket (TLS for https), timed phase by phase and
//! classified.
//!
//! This is hyper's connection API, not reqwest: a load record needs the connect instant, the
//! first-byte instant, whether the connection was reused, and a refused / reset / timeout
//! distinction that survives error wrapping. reqwest exposes none of the first three.

use super::record::RequestRecord;
use crate::clock::Clock;
use crate::outcome::Outcome;
use crate::tls::Trust;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// Where requests go and what they look like; built once per run.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Host header: the URL's host, with its port when the URL names one.
    pub host: String,
    /// `host:port` connections go to: the URL's, or `[load] connect_to`'s. Resolved again for
    /// every new connection so DNS changes show.
    pub connect: String,
    /// https: the handshake's config and the name the certificate must be valid for (SNI).
    pub tls: Option<TlsTarget>,
    /// What to send: the target's path with `GET`, or the `[[load.request]]` mix.
    pub requests: Vec<Prepared>,
    /// Indexes into `requests`, one per unit of weight, spread evenly (smooth weighted
    /// round-robin, as nginx balances): request `id` is `requests[order[id % len]]`, so every
    /// cycle sends the exact proportions.
    order: Vec<u16>,
    /// `[load] headers` (and Basic auth from the URL), sent with every request.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub keepalive: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

/// One kind of request, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The mix entry's name; `None` for the single-target form.
    pub name: Option<Arc<str>>,
    pub method: http::Method,
    pub path_and_query: String,
    /// The entry's own headers, over `[load] headers`.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct TlsTarget {
    connector: tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsTarget({:?})", self.name)
    }
}

/// How requests are sent, whatever the URL: the scenario's `[load]` settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub headers: BTreeMap<String, String>,
    pub keepalive: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub trust: Trust,
    /// `[load] connect_to`: connections for this `host:port` (the target's) go to that
    /// address instead, with the URL's Host header and TLS name (curl's `--connect-to`).
    pub connect_to: Option<(String, String)>,
    /// `[[load.request]]`; empty: `GET` of the URL.
    pub mix: Vec<crate::scenario::MixEntry>,
}

impl Options {
    pub fn of(load: &crate::scenario::Load) -> Options {
        Options {
            headers: load.headers.clone(),
            keepalive: load.keepalive,
            connect_timeout: load.connect_timeout,
            timeout: load.timeout,
            trust: load.tls.clone(),
            connect_to: load
                .connect_to
                .clone()
                .map(|to| (host_port(&load.target), to)),
            mix: load.mix.clone(),
        }
    }
}

/// `host:port` of a URL, the port defaulted by its scheme.
fn host_port(uri: &http::Uri) -> String {
    let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    format!("{}:{port}", uri.host().unwrap_or_default())
}

impl Target {
    pub fn from_uri(uri: &http::Uri, opts: &Options) -> Result<Target, String> {
        let authority = uri.authority().ok_or_else(|| format!("{uri}: no host"))?;
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let mut headers = header_list(&opts.headers)?;
        // `http://user:password@host/` means HTTP Basic auth, as it does for curl; an
        // Authorization header of the scenario's own wins.
        if let Some((userinfo, _)) = authority.as_str().rsplit_once('@')
            && !headers
                .iter()
                .any(|(n, _)| n == http::header::AUTHORIZATION)
        {
            use base64::Engine;
            let decoded: Vec<u8> = percent_encoding::percent_decode_str(userinfo).collect();
            let token = base64::engine::general_purpose::STANDARD.encode(decoded);
            let mut value = http::HeaderValue::try_from(format!("Basic {token}"))
                .map_err(|e| format!("userinfo: {e}"))?;
            value.set_sensitive(true);
            headers.push((http::header::AUTHORIZATION, value));
        }
        let own = host_port(uri);
        let connect = match &opts.connect_to {
            Some((from, to)) if *from == own => to.clone(),
            _ => own,
        };
        let tls = if https {
            Some(TlsTarget {
                connector: tokio_rustls::TlsConnector::from(crate::tls::client_config(
                    &opts.trust,
                )?),
                name: crate::tls::server_name(authority.host())?,
            })
        } else {
            None
        };
        let (requests, weights): (Vec<Prepared>, Vec<u32>) = if opts.mix.is_empty() {
            let get = Prepared {
                name: None,
                method: http::Method::GET,
                path_and_query: uri
                    .path_and_query()
                    .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
                headers: Vec::new(),
                body: Bytes::new(),
            };
            (vec![get], vec![1])
        } else {
            opts.mix
                .iter()
                .map(|e| {
                    let entry = Prepared {
                        name: Some(Arc::from(e.name.as_str())),
                        method: e.method.clone(),
                        path_and_query: e.path.clone(),
                        headers: header_list(&e.headers)?,
                        body: e.body.clone(),
                    };
                    Ok((entry, e.weight))
                })
                .collect::<Result<Vec<_>, String>>()?
                .into_iter()
                .unzip()
        };
        Ok(Target {
            host: match authority.port() {
                Some(p) => format!("{}:{p}", authority.host()),
                None => authority.host().to_string(),
            },
            connect,
            tls,
            requests,
            order: smooth_order(&weights),
            headers,
            keepalive: opts.keepalive,
            connect_timeout: opts.connect_timeout,
            timeout: opts.timeout,
        })
    }
}

impl Target {
    /// What request `id` is.
    pub fn pick(&self, id: u64) -> &Prepared {
        let slot = self.order[(id % self.order.len() as u64) as usize];
        &self.requests[usize::from(slot)]
    }
}

fn header_list(
    headers: &BTreeMap<String, String>,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
    headers
        .iter()
        .map(|(k, v)| {
            let name =
                http::HeaderName::try_from(k.as_str()).map_err(|e| format!("header {k:?}: {e}"))?;
            let value = http::HeaderValue::try_from(v.as_str())
                .map_err(|e| format!("header {k:?}: {e}"))?;
            Ok((name, value))
        })
        .collect()
}

/// One slot per unit of weight, each entry's slots spread evenly: at every step the entry
/// furthest behind its share goes next (nginx's smooth weighted round-robin).
fn smooth_order(weights: &[u32]) -> Vec<u16> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..total)
        .map(|_| {
            for (c, &w) in current.iter_mut().zip(weights) {
                *c += i64::from(w);
            }
            let best = (0..weights.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            best as u16
        })
        .collect()
}

/// An open connection that can carry the next request (keep-alive only).
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub fn is_usable(&self) -> bool {
        self.sender.is_ready()
    }
}

/// Opens a kept-alive connection before the run's clock starts (`[load] preconnect`): the
/// connect and handshakes a request would make, belonging to no request.
pub async fn open(target: &Target) -> Result<Conn, String> {
    let clock = Clock::start();
    let mut rec = RequestRecord::new(0, Duration::ZERO);
    match Box::pin(connect(target, &clock, &mut rec)).await {
        Ok(sender) => Ok(Conn { sender }),
        Err((outcome, error)) => Err(format!("{}: {error}", outcome.as_str())),
    }
}

/// Sends one request. `conn` is a kept-alive connection to reuse, if any; the returned
/// connection (keep-alive only) can carry the next request.
pub async fn send(
    target: &Target,
    clock: &Clock,
    id: u64,
    scheduled: Duration,
    conn: Option<Conn>,
) -> (RequestRecord, Option<Conn>) {
    let what = target.pick(id);
    let mut rec = RequestRecord::new(id, scheduled);
    rec.request = what.name.clone();
    let sent = clock.now();
    rec.sent = Some(sent);
    // The timeout counts from the first byte written, so a slow connect is not double counted;
    // connect has its own limit.
    let mut sender = match conn.filter(Conn::is_usable) {
        Some(c) => {
            rec.reused = true;
            // A reused connection has no connect phase.
            rec.connected = Some(sent);
            c.sender
        }
        // Boxed: the connect and TLS states are large, and a request in flight on a
        // kept-alive connection should not carry them (10,000 in flight, each smaller).
        None => match Box::pin(connect(target, clock, &mut rec)).await {
            Ok(s) => s,
            Err((outcome, error)) => {
                rec.finish(clock.now(), outcome, error);
                return (rec, None);
            }
        },
    };

    let deadline = Instant::now() + target.timeout;
    let mut req = http::Request::builder()
        .method(what.method.clone())
        .uri(what.path_and_query.as_str())
        .header(http::header::HOST, target.host.as_str())
        .header("x-request-id", id.to_string());
    if !target.keepalive {
        req = req.header(http::header::CONNECTION, "close");
    }
    let Some(headers) = req.headers_mut() else {
        rec.finish(clock.now(), Outcome::Reset, "bad request".into());
        return (rec, None);
    };
    for (k, v) in &target.headers {
        headers.insert(k, v.clone());
    }
    // The entry's own headers win over [load] headers of the same name.
    for (k, v) in &what.headers {
        headers.insert(k, v.clone());
    }
    let req = match req.body(Full::new(what.body.clone())) {
        Ok(r) => r,
        Err(e) => {
            rec.finish(clock.now(), Outcome::Reset, format!("bad request: {e}"));
            return (rec, None);
        }
    };

    let resp = match timeout_at(deadline, sender.send_request(req)).await {
        Err(_) => {
            rec.finish(
                clock.now(),
                Outcome::Timeout,
                "no response headers in time".into(),
            );
            return (rec, None);
        }
        Ok(Err(e)) => {
            let (outcome, error) = classify_hyper(&e);
            rec.finish(clock.now(), outcome, error);
            return (rec, None);
        }
        Ok(Ok(resp)) => resp,
    };
    rec.first_byte = Some(clock.now());
    rec.status = Some(resp.status().as_u16());
    rec.served_by(resp.headers());

    let body = resp.into_body();
    match timeout_at(deadline, body.collect()).await {
        Err(_) => {
            rec.finish(
                clock.now(),
                Outcome::Timeout,
                "body not complete in time".into(),
            );
            (rec, None)
        }
        Ok(Err(e)) => {
            let (outcome, error) = classify_hyper(&e);
            rec.finish(clock.now(), outcome, error);
            (rec, None)
        }
        Ok(Ok(collected)) => {
            rec.bytes = collected.to_bytes().len() as u64;
            let status = rec.status.unwrap_or(0);
            rec.finish(clock.now(), Outcome::from_status(status), String::new());
            let keep = target.keepalive.then_some(Conn { sender });
            (rec, keep)
        }
    }
}

/// TCP connect, then the TLS handshake for https, each within `connect_timeout`; records
/// when each finished.
async fn connect(
    target: &Target,
    clock: &Clock,
    rec: &mut RequestRecord,
) -> Result<SendRequest<Full<Bytes>>, (Outcome, String)> {
    let deadline = Instant::now() + target.connect_timeout;
    let addrs: Vec<SocketAddr> =
        match timeout_at(deadline, tokio::net::lookup_host(&target.connect)).await {
            Err(_) => return Err((Outcome::ConnectTimeout, "name lookup timed out".into())),
            Ok(Err(e)) => return Err((Outcome::Refused, format!("name lookup: {e}"))),
            Ok(Ok(a)) => a.collect(),
        };
    let Some(addr) = addrs.first().copied() else {
        return Err((Outcome::Refused, "name lookup: no address".into()));
    };
    let stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return Err((Outcome::ConnectTimeout, "connect timed out".into())),
        Ok(Err(e)) => return Err((classify_connect(&e), e.to_string())),
        Ok(Ok(s)) => s,
    };
    rec.connected = Some(clock.now());
    // Requests are tiny; Nagle would only add delay.
    let _ = stream.set_nodelay(true);
    let Some(tls) = &target.tls else {
        return http_handshake(TokioIo::new(stream)).await;
    };
    let deadline = Instant::now() + target.connect_timeout;
    let stream = match timeout_at(deadline, tls.connector.connect(tls.name.clone(), stream)).await {
        Err(_) => {
            return Err((
                Outcome::TlsHandshake,
                "tls handshake: not finished within the connect timeout".into(),
            ));
        }
        Ok(Err(e)) => return Err((Outcome::TlsHandshake, crate::tls::handshake_error(&e))),
        Ok(Ok(s)) => s,
    };
    rec.tls = Some(clock.now());
    http_handshake(TokioIo::new(stream)).await
}

async fn http_handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, (Outcome, String)>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // hyper's own read buffer: 8 KiB, growing for larger responses. An exact 4-KiB buffer
    // saved ~11 MB at 10,000 connections, but hyper then refuses any response head over
    // 4 KiB ("message head is too large"): every request to a service with a big
    // Set-Cookie or CSP counted as reset.
    match http1::Builder::new().handshake(io).await {
        Ok((sender, connection)) => {
            // The connection future drives the socket; it ends when the connection closes.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(sender)
        }
        Err(e) => Err(classify_hyper(&e)),
    }
}

fn classify_connect(e: &io::Error) -> Outcome {
    match e.kind() {
        io::ErrorKind::TimedOut => Outcome::ConnectTimeout,
        // Refused, unreachable, address not available: the packet found no listener.
        _ => Outcome::Refused,
    }
}

/// Maps a hyper error after connect to a class. Anything that ends the exchange before a full
/// response — reset, EOF, a broken pipe — is `reset`: the request was dropped in flight.
fn classify_hyper(e: &hyper::Error) -> (Outcome, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            let outcome = match io.kind() {
                io::ErrorKind::TimedOut => Outcome::Timeout,
                io::ErrorKind::ConnectionRefused => Outcome::Refused,
                _ => Outcome::Reset,
            };
            return (outcome, format!("{e}: {io}"));
        }
        source = s.source();
    }
    if e.is_timeout() {
        return (Outcome::Timeout, e.to_string());
    }
    (Outcome::Reset, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::smooth_order;

    #[test]
    fn weights_are_exact_per_cycle_and_spread_evenly() {
        assert_eq!(smooth_order(&[1]), vec![0]);
        // 3 GETs per POST, the POST not bunched at one end of the cycle.
        assert_eq!(smooth_order(&[3, 1]), vec![0, 0, 1, 0]);
        assert_eq!(smooth_order(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        let order = smooth_order(&[70, 20, 10]);
        assert_eq!(order.len(), 100);
        for (entry, weight) in [(0u16, 70), (1, 20), (2, 10)] {
            assert_eq!(order.iter().filter(|&&e| e == entry).count(), weight);
        }
        // No entry waits longer than its share allows: 10 % comes every 10th request.
        let gaps: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, e)| **e == 2)
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        assert!(gaps.iter().all(|&g| g == 10), "{gaps:?}");
    }
}
