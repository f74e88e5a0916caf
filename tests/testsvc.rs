//! Integration tests of `rollcheck serve` and `rollcheck probe`: the real binary on 127.0.0.1,
//! raw HTTP/1.1 over tokio sockets, real signals. Every test asserts on what it measured
//! (status, headers, elapsed time, refused connects, exit status).

use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

const BIN: &str = env!("CARGO_BIN_EXE_rollcheck");
const MS: fn(u64) -> Duration = Duration::from_millis;

/// A running `rollcheck serve`; killed on drop if a test fails half-way.
struct Svc {
    child: Child,
    addr: SocketAddr,
    stderr: JoinHandle<String>,
}

impl Svc {
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Svc {
        let mut child = spawn(args, env);
        let addr = read_listening_line(&mut child).await;
        let stderr = collect_stderr(&mut child);
        Svc {
            child,
            addr,
            stderr,
        }
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = self.child.id().expect("service still running") as libc::pid_t;
        // SAFETY: plain kill(2) on a child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Waits for the process to end; fails the test if it takes longer than `limit`.
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("service still running after {limit:?}"))
            .expect("wait")
    }

    async fn stderr(self) -> String {
        self.stderr.await.expect("stderr reader")
    }
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(["--listen", "127.0.0.1"]).args(args);
    // The service reads its configuration from the environment too: start from a clean slate.
    for var in rollcheck::testsvc::env_names() {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rollcheck serve")
}

async fn read_listening_line(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("no `listening on` line within 10 s")
    .expect("read stdout");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("stdout: {line:?}"));
    addr.parse().expect("socket address")
}

fn collect_stderr(child: &mut Child) -> JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr piped");
    tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    })
}

/// What a raw request measured.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    elapsed: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF. An error or a
/// reply without a status line means the request was dropped.
async fn get(addr: SocketAddr, target: &str, extra: &str) -> io::Result<Answer> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).await?;
    let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    parse(&raw, t0.elapsed())
}

fn parse(raw: &[u8], elapsed: Duration) -> io::Result<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("no full head: {text:?}"),
        )
    })?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line: {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
        elapsed,
    })
}

async fn get_ok(addr: SocketAddr, target: &str) -> Answer {
    let a = get(addr, target, "")
        .await
        .unwrap_or_else(|e| panic!("GET {target}: {e}"));
    assert_eq!(a.status, 200, "GET {target}: {a:?}");
    a
}

async fn assert_refused(addr: SocketAddr) {
    let err = TcpStream::connect(addr)
        .await
        .expect_err("connect should be refused");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn root_waits_for_sleep_and_names_version_task_and_request() {
    let env = [("VERSION", "v7"), ("TASK", "app.2.abc")];
    let svc = Svc::start(&["--port", "0", "--delay", "5s"], &env).await;

    let a = get(svc.addr, "/?sleep=50ms", "X-Request-Id: req-42\r\n")
        .await
        .expect("GET /");
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.elapsed >= MS(50),
        "answered after {:?}, before the 50 ms sleep",
        a.elapsed
    );
    assert!(
        a.elapsed < MS(2000),
        "sleep= did not override the 5 s delay: {:?}",
        a.elapsed
    );
    assert_eq!(a.header("x-rollcheck-version"), Some("v7"));
    assert_eq!(a.header("x-rollcheck-task"), Some("app.2.abc"));
    assert_eq!(a.header("x-request-id"), Some("req-42"));
    assert!(
        a.header("x-rollcheck-host").is_some_and(|h| !h.is_empty()),
        "{a:?}"
    );
    assert!(a.body.contains("version  v7"), "{}", a.body);
    assert!(a.body.starts_with("received 20"), "{}", a.body);

    let bad = get(svc.addr, "/?sleep=soon", "")
        .await
        .expect("GET bad sleep");
    assert_eq!(bad.status, 400, "{bad:?}");
    let health = get_ok(svc.addr, "/healthz").await;
    assert!(
        health.elapsed < MS(1000),
        "/healthz must not wait for the delay: {:?}",
        health.elapsed
    );
    let color = get_ok(svc.addr, "/color").await;
    assert!(color.body.contains("version v7"), "{}", color.body);
}

#[tokio::test]
async fn graceful_finishes_in_flight_refuses_new_and_exits_0() {
    let mut svc = Svc::start(&["--port", "0"], &[]).await;
    let addr = svc.addr;
    // An idle keep-alive connection: graceful shutdown must close it, not wait for it.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    let t0 = Instant::now();
    let in_flight: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(addr, "/?sleep=1s", "").await }))
        .collect();
    sleep(MS(200)).await;
    svc.signal(libc::SIGTERM);
    sleep(MS(100)).await;
    assert_refused(addr).await;
    let n = timeout(MS(500), idle.read(&mut buf))
        .await
        .expect("idle keep-alive left open");
    assert_eq!(
        n.expect("read idle"),
        0,
        "idle keep-alive connection not closed"
    );

    for h in in_flight {
        let a = h.await.expect("task").expect("in-flight request dropped");
        assert_eq!(a.status, 200, "{a:?}");
        assert!(a.elapsed >= MS(1000), "{:?}", a.elapsed);
    }
    let status = svc.exit_within(Duration::from_secs(3)).await;
    assert!(status.success(), "{status}");
    assert!(
        t0.elapsed() >= MS(1000),
        "exited before in-flight requests finished"
    );
    let log = svc.stderr().await;
    assert!(
        log.contains("signal SIGTERM received") && log.contains("drained"),
        "{log}"
    );
}

#[tokio::test]
async fn graceful_drain_delay_keeps_accepting_after_signal() {
    let mut svc = Svc::start(&["--port", "0", "--drain-delay", "1s"], &[]).await;
    let t0 = Instant::now();
    svc.signal(libc::SIGTERM);
    sleep(MS(300)).await;
    let a = get(svc.addr, "/?sleep=10ms", "")
        .await
        .expect("request 300 ms after SIGTERM");
    assert_eq!(a.status, 200, "{a:?}");
    let status = svc.exit_within(Duration::from_secs(3)).await;
    assert!(status.success(), "{status}");
    assert!(
        t0.elapsed() >= MS(1000),
        "exited before the drain delay: {:?}",
        t0.elapsed()
    );
    assert_refused(svc.addr).await;
}

#[tokio::test]
async fn abrupt_cuts_in_flight_requests_and_exits_at_once() {
    let mut svc = Svc::start(&["--port", "0", "--shutdown", "abrupt"], &[]).await;
    let addr = svc.addr;
    let in_flight: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { get(addr, "/?sleep=3s", "").await }))
        .collect();
    sleep(MS(200)).await;
    let t0 = Instant::now();
    svc.signal(libc::SIGTERM);
    let status = svc.exit_within(MS(1500)).await;
    assert!(status.success(), "{status}");
    for h in in_flight {
        let r = timeout(MS(1000), h)
            .await
            .expect("client still waiting")
            .expect("task");
        assert!(r.is_err(), "in-flight request got a full answer: {r:?}");
    }
    assert!(t0.elapsed() < MS(2000), "abrupt took {:?}", t0.elapsed());
    let log = svc.stderr().await;
    assert!(log.contains("\"requests_cut\":2"), "{log}");
}

#[tokio::test]
async fn ignore_keeps_serving_after_sigterm_until_killed() {
    let mut svc = Svc::start(&["--port", "0", "--shutdown", "ignore"], &[]).await;
    svc.signal(libc::SIGTERM);
    sleep(MS(200)).await;
    get_ok(svc.addr, "/?sleep=10ms").await;
    assert!(
        svc.child.try_wait().expect("try_wait").is_none(),
        "exited on SIGTERM"
    );
    svc.signal(libc::SIGKILL);
    let status = svc.exit_within(MS(2000)).await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let log = svc.stderr().await;
    assert!(log.contains("ignored"), "{log}");
}

#[tokio::test]
async fn startup_delay_refuses_until_listening() {
    let port = free_port();
    let t0 = Instant::now();
    let mut child = spawn(&["--port", &port.to_string(), "--startup-delay", "1s"], &[]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    sleep(MS(200)).await;
    assert_refused(addr).await;
    assert_eq!(read_listening_line(&mut child).await, addr);
    assert!(
        t0.elapsed() >= MS(1000),
        "listening after {:?}",
        t0.elapsed()
    );
    get_ok(addr, "/healthz").await;
}

#[tokio::test]
async fn healthz_turns_503_after_unhealthy_after() {
    let svc = Svc::start(&["--port", "0", "--unhealthy-after", "500ms"], &[]).await;
    get_ok(svc.addr, "/healthz").await;
    sleep(MS(600)).await;
    let a = get(svc.addr, "/healthz", "").await.expect("GET /healthz");
    assert_eq!(a.status, 503, "{a:?}");
}

/// WARMUP: alive (`/healthz` 200) but not ready (`/` and `/readyz` 503) until it has passed.
#[tokio::test]
async fn warmup_answers_503_on_the_real_path_but_healthz_says_ok() {
    let svc = Svc::start(&["--port", "0", "--warmup", "700ms"], &[]).await;
    get_ok(svc.addr, "/healthz").await;
    for path in ["/?sleep=0s", "/readyz"] {
        let a = get(svc.addr, path, "").await.expect(path);
        assert_eq!(a.status, 503, "{path}: {a:?}");
    }
    sleep(MS(800)).await;
    get_ok(svc.addr, "/?sleep=0s").await;
    get_ok(svc.addr, "/readyz").await;
}

#[tokio::test]
async fn stats_count_completed_and_abandoned_requests() {
    let svc = Svc::start(&["--port", "0"], &[("VERSION", "v3")]).await;
    get_ok(svc.addr, "/?sleep=10ms").await;
    get_ok(svc.addr, "/?sleep=10ms").await;
    // A client that gives up mid-request: counted as started, never completed.
    let mut quitter = TcpStream::connect(svc.addr).await.expect("connect");
    quitter
        .write_all(b"GET /?sleep=5s HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    sleep(MS(100)).await;
    drop(quitter);
    sleep(MS(200)).await;

    let a = get_ok(svc.addr, "/stats").await;
    let stats: serde_json::Value = serde_json::from_str(&a.body).expect("stats JSON");
    assert_eq!(stats["connections_accepted"], 4, "{stats}");
    assert_eq!(stats["requests_started"], 3, "{stats}");
    assert_eq!(stats["requests_completed"], 2, "{stats}");
    assert_eq!(stats["requests_abandoned"], 1, "{stats}");
    assert_eq!(stats["requests_cut"], 0, "{stats}");
    assert_eq!(stats["version"], "v3", "{stats}");
}

async fn probe(url: &str) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["probe", url, "--timeout", "2s"])
        .output()
        .await
        .expect("run rollcheck probe");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn probe_exit_code_follows_health() {
    let healthy = Svc::start(&["--port", "0"], &[]).await;
    let (code, err) = probe(&format!("http://{}/healthz", healthy.addr)).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "");

    let closed = format!("http://127.0.0.1:{}/healthz", free_port());
    let (code, err) = probe(&closed).await;
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim(), format!("probe: {closed}: connection refused"));

    let sick = Svc::start(&["--port", "0", "--unhealthy-after", "0s"], &[]).await;
    let url = format!("http://{}/healthz", sick.addr);
    let (code, err) = probe(&url).await;
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim(), format!("probe: {url}: HTTP 503"));
}
