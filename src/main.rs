//! THROWAWAY (wip-driver branch only): a minimal `serve` and `probe` so the driver's integration
//! tests have a test service to deploy before the real one lands. The lead discards this file
//! on merge.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match args.get(1).map(String::as_str) {
        Some("serve") => rt.block_on(serve()),
        Some("probe") => rt.block_on(probe(args.get(2).cloned().unwrap_or_default())),
        _ => {
            eprintln!("usage: rollcheck serve | rollcheck probe URL");
            64
        }
    };
    std::process::exit(code);
}

async fn serve() -> i32 {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let delay = std::env::var("DELAY")
        .ok()
        .and_then(|d| humantime::parse_duration(&d).ok())
        .unwrap_or(Duration::ZERO);
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind: {e}");
            return 1;
        }
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    loop {
        tokio::select! {
            _ = term.recv() => {
                // Let in-flight requests finish (they take at most `delay`).
                tokio::time::sleep(delay + Duration::from_millis(100)).await;
                return 0;
            }
            conn = listener.accept() => {
                if let Ok((stream, _)) = conn {
                    tokio::spawn(handle(stream, delay));
                }
            }
        }
    }
}

async fn handle(mut stream: TcpStream, delay: Duration) {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
        match stream.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path != "/healthz" {
        tokio::time::sleep(delay).await;
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let body = format!("version {}\n", env("VERSION"));
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\nX-Rollcheck-Version: {}\r\nX-Rollcheck-Host: {}\r\nX-Rollcheck-Task: {}\r\n\r\n{}",
        body.len(),
        env("VERSION"),
        host.trim(),
        env("TASK"),
        body
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn probe(url: String) -> i32 {
    let rest = url.strip_prefix("http://").unwrap_or(&url);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    let attempt = async {
        let mut s = TcpStream::connect(authority).await.ok()?;
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).to_string();
        text.split_whitespace().nth(1).map(|c| c.starts_with('2'))
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Some(true)) => 0,
        _ => 1,
    }
}
