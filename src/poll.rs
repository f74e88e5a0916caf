//! Waiting for something outside rollcheck (an engine, a node, an edge, a network removal)
//! with a deadline, one way everywhere: try, and until the deadline passes, wait and try
//! again; at the deadline, the last reason it was not ready is the error. Every attempt is
//! made at least once, so a zero timeout still asks once.

use std::time::Duration;
use tokio::time::Instant;

/// What one attempt found.
pub enum Attempt<T, E> {
    /// Done: stop with this.
    Ready(T),
    /// Not yet, for this reason (the error if the deadline passes now).
    Pending(E),
    /// A failure waiting will not fix: stop at once.
    Failed(E),
}

/// Calls `attempt` every `every` until it is ready or fails, or `within` has passed since the
/// first call (then the last pending reason is the error).
pub async fn until<T, E, F: Future<Output = Attempt<T, E>>>(
    within: Duration,
    every: Duration,
    mut attempt: impl FnMut() -> F,
) -> Result<T, E> {
    let deadline = Instant::now() + within;
    loop {
        match attempt().await {
            Attempt::Ready(v) => return Ok(v),
            Attempt::Failed(e) => return Err(e),
            Attempt::Pending(e) if Instant::now() >= deadline => return Err(e),
            Attempt::Pending(_) => tokio::time::sleep(every).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_pending_failed_and_the_deadline() {
        let n = std::cell::Cell::new(0);
        let got: Result<u32, String> = until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async {
                n.set(n.get() + 1);
                if n.get() == 3 {
                    Attempt::Ready(n.get())
                } else {
                    Attempt::Pending(format!("try {}", n.get()))
                }
            },
        )
        .await;
        assert_eq!(got, Ok(3));

        let started = Instant::now();
        let got: Result<(), Duration> = until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Attempt::Pending(started.elapsed()) },
        )
        .await;
        let last = got.unwrap_err();
        assert!(
            last >= Duration::from_millis(50),
            "the last reason, at the deadline: {last:?}"
        );

        let calls = std::cell::Cell::new(0);
        let got: Result<(), &str> = until(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async {
                calls.set(calls.get() + 1);
                Attempt::Failed("gone")
            },
        )
        .await;
        assert_eq!(
            (got, calls.get()),
            (Err("gone"), 1),
            "a failure stops at once"
        );

        let got: Result<(), &str> = until(Duration::ZERO, Duration::from_millis(10), || async {
            Attempt::Pending("once")
        })
        .await;
        assert_eq!(got, Err("once"), "a zero timeout still asks once");
    }
}
