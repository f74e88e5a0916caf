//! Each outcome class comes from a real socket condition on loopback, and the load models
//! behave as promised against the real test service.

mod common;

use common::Service;
use rollcheck::clock::Clock;
use rollcheck::history::Collector;
use rollcheck::load::client::{self, Target};
use rollcheck::load::record::RequestRecord;
use rollcheck::outcome::Outcome;
use rollcheck::scenario::LoadModel;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn target(addr: &str, keepalive: bool, timeout_ms: u64) -> Target {
    let uri: http::Uri = format!("http://{addr}/").parse().unwrap();
    let opts = client::Options {
        keepalive,
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(timeout_ms),
        ..Default::default()
    };
    Target::from_uri(&uri, &opts).unwrap()
}

async fn one(t: &Target) -> RequestRecord {
    let clock = Clock::start();
    client::send(t, &clock, 1, clock.now(), None).await.0
}

/// A server that reads the request head, then does `respond` with the socket.
async fn server<F, Fut>(respond: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            respond(s).await;
        }
    });
    addr
}

#[tokio::test]
async fn closed_port_is_refused() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let r = one(&target(&addr, false, 1000)).await;
    assert_eq!(r.outcome, Outcome::Refused, "{r:?}");
    assert!(r.connected.is_none());
}

#[tokio::test]
async fn close_mid_response_is_reset() {
    let addr = server(|mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
            .await;
        // Dropping the socket closes it with 93 body bytes missing.
    })
    .await;
    let r = one(&target(&addr, false, 2000)).await;
    assert_eq!(r.outcome, Outcome::Reset, "{r:?}");
    assert_eq!(r.status, Some(200), "headers arrived before the cut");
}

#[tokio::test]
async fn close_before_any_response_is_reset() {
    let addr = server(|s| async move {
        // SO_LINGER 0: close sends RST, the "connection reset by peer" case.
        #[allow(deprecated)] // blocking on drop is moot with a zero linger
        let _ = s.set_linger(Some(Duration::ZERO));
        drop(s);
    })
    .await;
    let r = one(&target(&addr, false, 2000)).await;
    assert_eq!(r.outcome, Outcome::Reset, "{r:?}");
    assert!(r.status.is_none());
}

#[tokio::test]
async fn silent_server_is_timeout() {
    let addr = server(|s| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(s);
    })
    .await;
    let r = one(&target(&addr, false, 300)).await;
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    let took = r.done - r.sent.unwrap();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test]
async fn full_accept_queue_is_connect_timeout() {
    // A listener that never accepts, with a backlog of 0: once its queue is full the kernel
    // drops further SYNs, so the handshake never completes.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(0).unwrap();
    let addr = l.local_addr().unwrap();
    let mut fill = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fill.push(s);
        }
    }
    let r = one(&target(&addr.to_string(), false, 1000)).await;
    assert_eq!(r.outcome, Outcome::ConnectTimeout, "{r:?}");
    drop(l);
}

#[tokio::test]
async fn status_codes_are_classified() {
    for (status, want) in [
        (503, Outcome::Http5xx),
        (502, Outcome::Http5xx),
        (404, Outcome::Http4xx),
        (302, Outcome::Ok),
    ] {
        let addr = server(move |mut s| async move {
            let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            let _ = s.write_all(head.as_bytes()).await;
        })
        .await;
        let r = one(&target(&addr, false, 1000)).await;
        assert_eq!(r.outcome, want, "status {status}: {r:?}");
        assert_eq!(r.status, Some(status));
    }
}

/// Starts `rollcheck serve` on a free loopback port as version 7, task app.1.xyz.
fn serve(args: &[&str]) -> (Service, String) {
    let svc = Service::start(args, &[("VERSION", "7"), ("TASK", "app.1.xyz")]);
    let addr = svc.addr.clone();
    (svc, addr)
}

#[tokio::test]
async fn keepalive_reuses_and_records_who_served() {
    let (child, addr) = serve(&["--delay", "0s"]);
    let t = target(&addr, true, 2000);
    let clock = Clock::start();
    let (a, conn) = client::send(&t, &clock, 1, clock.now(), None).await;
    let (b, _) = client::send(&t, &clock, 2, clock.now(), conn).await;
    drop(child);
    assert_eq!((a.outcome, b.outcome), (Outcome::Ok, Outcome::Ok));
    assert_eq!((a.reused, b.reused), (false, true));
    assert_eq!(b.connect_time(), Some(Duration::ZERO));
    assert_eq!(a.version, "7");
    assert_eq!(a.task, "app.1.xyz");
    assert!(!a.host.is_empty());
    assert!(a.bytes > 0);
}

/// Runs a load model for `secs`, returning the outcome of every row of requests.csv.
async fn run_model(model: LoadModel, t: Target, secs: f64, during: impl FnOnce()) -> Vec<String> {
    let rows = run_warm(model, t, Vec::new(), secs, during).await;
    rows.into_iter().map(|(outcome, _)| outcome).collect()
}

/// The same with connections opened beforehand; each row's outcome and `reused`.
async fn run_warm(
    model: LoadModel,
    t: Target,
    warm: Vec<client::Conn>,
    secs: f64,
    during: impl FnOnce(),
) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let probes = rollcheck::analysis::probes::ProbeFold::new("app", Duration::from_secs(5), 2.0);
    let collector = Collector::start(dir.path(), Duration::from_secs(1), probes).unwrap();
    let stop = CancellationToken::new();
    let clock = Clock::start();
    let task = tokio::spawn(rollcheck::load::run(
        Arc::new(t),
        model,
        rollcheck::load::Shard::WHOLE,
        warm,
        clock,
        collector.recorder(),
        stop.clone(),
    ));
    during();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.cancel();
    task.await.unwrap();
    let h = collector.finish().unwrap();
    let mut csv = csv::Reader::from_path(dir.path().join("requests.csv")).unwrap();
    let headers = csv.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (at, reused) = (column("outcome"), column("reused"));
    let rows: Vec<(String, String)> = csv
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[at].to_string(), r[reused].to_string())
        })
        .collect();
    assert_eq!(rows.len() as u64, h.outcomes.total(), "csv rows = total");
    assert_eq!(h.rows_written, h.outcomes.total());
    rows
}

#[tokio::test]
async fn closed_model_keeps_n_requests_in_flight() {
    let (child, addr) = serve(&["--delay", "200ms"]);
    let rows = run_model(
        LoadModel::Closed {
            concurrency: 4,
            error_pause: Duration::from_millis(100),
        },
        target(&addr, false, 2000),
        1.0,
        || {},
    )
    .await;
    drop(child);
    // 4 workers × ~1 s / 200 ms ≈ 20 (in-flight ones finish after stop).
    assert!((18..=28).contains(&rows.len()), "{} requests", rows.len());
    assert!(rows.iter().all(|r| r == "ok"));
}

#[tokio::test]
async fn closed_model_pauses_after_an_error_instead_of_spinning() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let closed = |ms| LoadModel::Closed {
        concurrency: 4,
        error_pause: Duration::from_millis(ms),
    };
    let paused = run_model(closed(100), target(&addr, false, 2000), 1.0, || {}).await;
    let spinning = run_model(closed(0), target(&addr, false, 2000), 1.0, || {}).await;
    assert!(paused.iter().all(|r| r == "refused"));
    // 4 workers, one refused connect per 100 ms each, for 1 s.
    assert!(
        (36..=48).contains(&paused.len()),
        "{} requests",
        paused.len()
    );
    // Without the pause a refused connect takes microseconds and the loop just spins.
    assert!(
        spinning.len() > 20 * paused.len(),
        "{} requests without the pause, {} with it",
        spinning.len(),
        paused.len()
    );
}

#[tokio::test]
async fn open_model_marks_requests_beyond_capacity_late() {
    let (child, addr) = serve(&["--delay", "500ms"]);
    let rows = run_model(
        LoadModel::Open {
            rate: 40.0,
            max_in_flight: 5,
        },
        target(&addr, false, 2000),
        1.0,
        || {},
    )
    .await;
    drop(child);
    let late = rows.iter().filter(|r| *r == "late").count();
    let ok = rows.iter().filter(|r| *r == "ok").count();
    // 40/s for 1 s with 5 slots of 500 ms: ~10 sent, the rest late, none lost.
    assert!((38..=42).contains(&rows.len()), "{} scheduled", rows.len());
    assert!((8..=15).contains(&ok), "{ok} ok");
    assert_eq!(late + ok, rows.len());
}

#[tokio::test]
async fn preconnected_connections_carry_the_first_requests() {
    let (child, addr) = serve(&["--delay", "100ms"]);
    let t = target(&addr, true, 2000);
    let warm = rollcheck::load::preconnect(&t, 40).await;
    assert_eq!(
        (warm.conns.len(), warm.failed),
        (40, 0),
        "{}",
        warm.describe()
    );
    let open = LoadModel::Open {
        rate: 200.0,
        max_in_flight: 100,
    };
    // ~20 requests in flight at 200/s × 100 ms: the 40 warm connections carry all of them.
    let rows = run_warm(open, t.clone(), warm.conns, 1.0, || {}).await;
    assert!(rows.len() >= 190, "{} requests", rows.len());
    assert!(rows.iter().all(|(o, _)| o == "ok"), "{rows:?}");
    let new = rows.iter().filter(|(_, reused)| reused != "true").count();
    assert_eq!(new, 0, "{new} requests opened a connection");
    // Without them the first ~20 requests each open one: the count above can fail.
    let cold = run_warm(open, t, Vec::new(), 1.0, || {}).await;
    assert!(cold.iter().filter(|(_, r)| r != "true").count() >= 10);
    drop(child);
    // A target that refuses: counted, with the reason, not fatal.
    let refused = rollcheck::load::preconnect(&target(&closed_addr(), true, 500), 3).await;
    assert_eq!((refused.conns.len(), refused.failed), (0, 3));
    assert!(
        refused.describe().contains("3 failed (first: refused"),
        "{}",
        refused.describe()
    );
}

/// An address nothing listens on.
fn closed_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn a_response_head_larger_than_the_read_buffer_is_ok() {
    // 12 KiB of headers (a big Set-Cookie, a CSP): real services send them, and a proxy in
    // front of them often allows 8-16 KiB.
    let addr = server(|mut s| async move {
        let cookie = "a".repeat(12 * 1024);
        let resp =
            format!("HTTP/1.1 200 OK\r\nset-cookie: big={cookie}\r\ncontent-length: 2\r\n\r\nok");
        let _ = s.write_all(resp.as_bytes()).await;
    })
    .await;
    let r = one(&target(&addr, false, 2000)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.error);
}
