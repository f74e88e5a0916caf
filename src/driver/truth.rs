//! Reads the test service's truth log (`testsvc::truth`) back from the containers of this
//! run, exited ones included, through the engine's log API: the server side of the count the
//! analysis reconciles with the client's. Read before teardown removes the containers.

use super::cluster::Cluster;
use super::{Driver, DriverError, LABEL_RUN};
use crate::analysis::truth::ServerLog;
use crate::testsvc::truth::{Batch, FLUSH_EVERY, Seen};
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

/// The tasks write their truth log every 250 ms: wait for the last requests' lines.
async fn last_flush() {
    tokio::time::sleep(FLUSH_EVERY + std::time::Duration::from_millis(100)).await;
}

impl Driver {
    /// Folds the truth lines of this run's containers on this engine into `seen`; returns how
    /// many containers had any.
    pub(crate) async fn read_truth(&self, seen: &mut Seen) -> Result<u64, DriverError> {
        let label = format!("{LABEL_RUN}={}", self.run_id());
        let mut with_truth = 0;
        for c in self.labelled_containers(&label).await? {
            let Some(id) = c.id else { continue };
            with_truth += u64::from(self.read_container_truth(&id, seen).await);
        }
        Ok(with_truth)
    }

    /// Folds one container's truth lines into `seen` (a `docker` lab reads a container's
    /// before a step removes it); whether it had any.
    pub(crate) async fn read_container_truth(&self, id: &str, seen: &mut Seen) -> bool {
        let opts = LogsOptions {
            stdout: true,
            ..Default::default()
        };
        // The engine splits lines longer than 16 KiB into several frames: join the
        // frames, then split at newlines.
        let mut text = Vec::new();
        let mut logs = self.docker.logs(id, Some(opts));
        while let Some(frame) = logs.next().await {
            match frame {
                Ok(f) => text.extend_from_slice(&f.into_bytes()),
                Err(_) => break, // removed meanwhile: what was read counts
            }
        }
        let mut any = false;
        for line in String::from_utf8_lossy(&text).lines() {
            if let Some(batch) = Batch::parse(line) {
                seen.add(batch);
                any = true;
            }
        }
        any
    }

    /// [`Driver::read_truth`] as a [`ServerLog`].
    pub async fn server_log(&self) -> ServerLog {
        last_flush().await;
        let mut seen = Seen::default();
        match self.read_truth(&mut seen).await {
            Ok(tasks) => ServerLog::Read {
                seen,
                tasks,
                unread: Vec::new(),
            },
            Err(e) => ServerLog::NotRead(format!("the containers' logs could not be read: {e}")),
        }
    }
}

impl Cluster {
    /// Every node's containers of this run; a node that does not answer (stopped by a step)
    /// is named as not read.
    pub async fn server_log(&self) -> ServerLog {
        last_flush().await;
        let mut seen = Seen::default();
        let (mut tasks, mut unread) = (0, Vec::new());
        for node in &self.nodes {
            match node.driver.read_truth(&mut seen).await {
                Ok(n) => tasks += n,
                Err(_) => unread.push(node.name.to_string()),
            }
        }
        ServerLog::Read {
            seen,
            tasks,
            unread,
        }
    }
}
