//! The test service's life: optional startup delay, bind, accept HTTP/1.1 connections, and end
//! the way `--shutdown` says when SIGTERM/SIGINT arrives. One stderr line per lifecycle event,
//! never per request. Stdout: first `listening on ADDR` (tests read it), then the truth log's
//! batches (`truth`).

use std::future::Future;
use std::io::{self, Write};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ServeOptions;
use super::routes::{State, handle};
use super::shutdown::{ShutdownMode, Signals};

/// Runs the test service until the shutdown mode says to stop; returns instead of exiting so
/// `main` decides the exit code and everything is dropped in order.
pub async fn serve(opts: ServeOptions) -> io::Result<()> {
    // Installed before anything else: a SIGTERM during the startup delay must not be lost.
    let mut signals = Signals::install()?;
    let (state, warnings) = State::new(&opts, hostname());
    let state = Arc::new(state);
    log(&format!(
        "started version={} shutdown={} delay={} pid={}",
        opts.version,
        opts.shutdown,
        humantime::format_duration(opts.delay),
        std::process::id()
    ));
    for w in warnings {
        log(&w);
    }

    if !opts.startup_delay.is_zero() {
        log(&format!(
            "waiting {} before listening",
            humantime::format_duration(opts.startup_delay)
        ));
        tokio::select! {
            _ = tokio::time::sleep(opts.startup_delay) => {}
            name = signals.stop_requested(opts.shutdown) => {
                log(&format!("signal {name} received before listening; exit"));
                return Ok(());
            }
        }
    }

    // A bad certificate is a startup error, before the port is taken.
    let tls = match &opts.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(cert, key).map_err(io::Error::other)?,
        )),
        None => None,
    };
    let listener = TcpListener::bind((opts.listen, opts.port)).await?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to learn the port chosen for `--port 0`.
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()?;
    drop(out);
    log(&format!(
        "listening on {addr}{}",
        if tls.is_some() { " (https)" } else { "" }
    ));

    // The truth log, in batches: a running task's container log is as complete as an
    // exited one's, give or take the last FLUSH_EVERY.
    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(super::truth::FLUSH_EVERY).await;
                state.truth.flush();
            }
        })
    };
    let mut conns = Connections {
        tasks: JoinSet::new(),
        closing: CancellationToken::new(),
        tls,
    };
    let name = accept_until(
        &listener,
        &state,
        &mut conns,
        signals.stop_requested(opts.shutdown),
    )
    .await;
    log(&format!(
        "signal {name} received; shutdown={}",
        opts.shutdown
    ));

    match opts.shutdown {
        ShutdownMode::Abrupt => {
            // Like an application that just exits: the listener goes first, so a client that
            // reconnects after its cut is refused (closing the connections first left the
            // listener open long enough for the kernel to accept those reconnects, which were
            // then reset at exit). Dropping the connection tasks closes their sockets
            // mid-request: the client sees EOF or a reset before a full response.
            drop(listener);
            state.cutting.store(true, Ordering::Relaxed);
            let in_flight = conns.tasks.len();
            conns.tasks.shutdown().await;
            log(&format!("dropped {in_flight} open connections"));
        }
        // `ignore` never gets here (no signal stops it) but shares the graceful path for safety.
        ShutdownMode::Graceful | ShutdownMode::Ignore => {
            if !opts.drain_delay.is_zero() {
                let d = opts.drain_delay;
                log(&format!(
                    "draining: still accepting for {}",
                    humantime::format_duration(d)
                ));
                // A second signal cuts the drain delay short, as impatient operators expect.
                let stop = async {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = signals.recv() => {}
                    }
                };
                accept_until(&listener, &state, &mut conns, stop).await;
            }
            // Closing the listener makes new connections refused; in-flight requests finish,
            // idle keep-alive connections are closed by hyper's graceful shutdown.
            drop(listener);
            conns.closing.cancel();
            log(&format!(
                "listener closed; finishing {} open connections",
                conns.tasks.len()
            ));
            while conns.tasks.join_next().await.is_some() {}
            log("drained");
        }
    }
    flusher.abort();
    state.truth.flush();
    log(&format!("exit {}", state.counters.to_json()));
    Ok(())
}

/// The connection tasks and the signal that asks them to finish gracefully.
struct Connections {
    tasks: JoinSet<()>,
    closing: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Accepts connections until `stop` completes, and returns its output.
async fn accept_until<T>(
    listener: &TcpListener,
    state: &Arc<State>,
    conns: &mut Connections,
    stop: impl Future<Output = T>,
) -> T {
    let mut stop = pin!(stop);
    loop {
        tokio::select! {
            biased;
            out = &mut stop => return out,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    state.counters.connections_accepted.fetch_add(1, Ordering::Relaxed);
                    // Small answers on a measured path: do not let Nagle delay them.
                    let _ = stream.set_nodelay(true);
                    let (state, closing) = (state.clone(), conns.closing.clone());
                    match conns.tls.clone() {
                        None => {
                            conns.tasks.spawn(connection(stream, state, closing));
                        }
                        Some(tls) => {
                            conns.tasks.spawn(async move {
                                // A client that never finishes its handshake is not served.
                                let handshake = tokio::time::timeout(TLS_HANDSHAKE, tls.accept(stream));
                                if let Ok(Ok(stream)) = handshake.await {
                                    connection(stream, state, closing).await;
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    log(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow for the life of the process.
            Some(_) = conns.tasks.join_next(), if !conns.tasks.is_empty() => {}
        }
    }
}

/// How long a connection accepted before shutdown may take to send its first request.
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);

/// How long an https client may take for its handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves one HTTP/1.1 connection (keep-alive) until the client leaves or shutdown closes it.
async fn connection<S>(stream: S, state: Arc<State>, closing: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let first_request = Arc::new(tokio::sync::Notify::new());
    let seen = first_request.clone();
    let service = service_fn(move |req| {
        seen.notify_one();
        handle(state.clone(), req)
    });
    let mut conn = pin!(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        // Connection errors (client resets, bad requests) are the client's business and not
        // a lifecycle event: not logged.
        _ = conn.as_mut() => return,
        _ = closing.cancelled() => {}
    }
    // hyper closes a connection whose first request it has not read yet as idle, so a client
    // that connected just before the signal would see its request cut. Give that request a
    // moment to arrive (a permit is stored if it already did).
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = first_request.notified() => {}
        _ = tokio::time::sleep(FIRST_REQUEST_GRACE) => {}
    }
    // Finishes the request in flight (if any) without keep-alive, or closes an idle connection.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// One lifecycle line on stderr, timestamped so it lines up with the harness's history.
pub(super) fn log(msg: &str) {
    eprintln!(
        "{} rollcheck serve: {msg}",
        Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
    );
}

/// The container's hostname (its ID under Docker). gethostname needs no /etc, which a scratch
/// image does not have; /etc/hostname is only the fallback.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..len])
            && !name.is_empty()
        {
            return name.to_owned();
        }
    }
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
