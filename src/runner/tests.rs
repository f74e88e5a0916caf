//! The measured part of a run against a fake orchestrator (the trait is the seam; integration
//! tests use the real engine): a step the engine rejects, a step expected to fail, a cancel in
//! the middle of a step, and a step that succeeds — each with the verdict it must give.

use super::*;
use crate::scenario;
use std::future::pending;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the fake engine does with every step.
#[derive(Clone, Copy)]
enum Engine {
    Accepts,
    Rejects,
    Hangs,
}

impl Orchestrator for Engine {
    async fn apply(
        &self,
        action: &crate::scenario::Action,
        _: Option<&str>,
        _: Clock,
        _: &EventSink,
    ) -> Result<String, String> {
        match self {
            Engine::Accepts => Ok(format!("{} done", action.name())),
            Engine::Rejects => Err("rpc error: update out of sequence".into()),
            Engine::Hangs => pending().await,
        }
    }
}

/// A loopback server answering 200 to every request: the load's target.
async fn ok_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    format!("http://{addr}/")
}

async fn measured(engine: Engine, expect: &str, cancel_after: Option<Duration>) -> RunResult {
    let url = ok_server().await;
    let text = format!(
        "[lab]\nkind = \"swarm-local\"\n[service]\nimage = \"x\"\n\
         [load]\ntarget = \"{url}\"\nconcurrency = 2\nduration = \"1500ms\"\n\
         [[step]]\nat = \"200ms\"\naction = \"update_image\"\nimage = \"y\"\nexpect = \"{expect}\"\n"
    );
    let plan = scenario::parse(&text, Path::new("fake.toml"), &|_| None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out: dir.path().to_path_buf(),
        progress: super::progress::Mode::None,
        quiet: true,
    };
    let cancel = CancellationToken::new();
    if let Some(after) = cancel_after {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            c.cancel();
        });
    }
    measure(&plan, "fake", dir.path(), &engine, &NoWatch, &opts, &cancel)
        .await
        .unwrap()
}

#[tokio::test]
async fn steps_through_a_fake_engine_reach_their_verdicts() {
    let r = measured(Engine::Accepts, "success", None).await;
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.summary.problems);
    assert!(r.summary.steps[0].ok);
    assert!(r.summary.requests.ok > 0);

    let r = measured(Engine::Rejects, "success", None).await;
    assert_eq!(
        r.verdict,
        Verdict::Inconclusive,
        "a rejected step is no pass"
    );
    assert!(!r.summary.steps[0].ok);
    assert!(
        r.summary.problems[0].contains("failed: rpc error: update out of sequence"),
        "{:?}",
        r.summary.problems
    );

    let r = measured(Engine::Rejects, "failure", None).await;
    assert_eq!(
        r.verdict,
        Verdict::Pass,
        "expected to fail, and it did: {:?}",
        r.summary.problems
    );

    let r = measured(Engine::Accepts, "failure", None).await;
    assert_eq!(
        r.verdict,
        Verdict::Inconclusive,
        "expected to fail, but it passed"
    );

    let r = measured(Engine::Hangs, "success", Some(Duration::from_millis(600))).await;
    assert!(r.interrupted);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.summary.steps[0].detail, "interrupted");
    assert!(
        r.summary.run.duration_s < 1.4,
        "stopped at the cancel: {} s",
        r.summary.run.duration_s
    );
}
