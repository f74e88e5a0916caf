//! Health-probe figures for the summary. The collector keeps only histograms, so the
//! per-request view the probe analysis needs is read back from requests.csv once the run has
//! ended (the file is complete then): no per-request vector in memory for the whole run, and
//! no change to the collector's hot path.

use crate::analysis::cluster::ServedRequest;
use crate::analysis::probes::{self, DEFAULT_SPIKE_FACTOR, ProbeRequest};
use crate::event::Event;
use crate::report::HealthProbes;
use serde::Deserialize;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The columns of requests.csv this needs (the others are skipped by name).
#[derive(Deserialize)]
struct Row {
    sent_ms: Option<f64>,
    done_ms: f64,
    outcome: String,
    task: String,
}

/// Ok requests of a run directory's requests.csv (late and failed ones have no latency).
pub fn ok_requests(path: &Path) -> io::Result<Vec<ProbeRequest>> {
    let mut reader = csv::Reader::from_path(path).map_err(io::Error::other)?;
    let mut out = Vec::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(io::Error::other)?;
        let Some(sent) = row.sent_ms.filter(|_| row.outcome == "ok") else {
            continue;
        };
        let at = |ms: f64| Duration::from_secs_f64(ms.max(0.0) / 1e3);
        out.push(ProbeRequest {
            task: row.task,
            sent: at(sent),
            done: at(row.done_ms),
        });
    }
    Ok(out)
}

/// `None` when the run saw no health probe.
pub fn health_probes(
    dir: &Path,
    events: &[Event],
    service: &str,
) -> io::Result<Option<HealthProbes>> {
    if probes::probes(events).is_empty() {
        return Ok(None);
    }
    let requests = ok_requests(&dir.join("requests.csv"))?;
    Ok(
        probes::analyse(events, &requests, service, DEFAULT_SPIKE_FACTOR)
            .as_ref()
            .map(HealthProbes::from),
    )
}

/// `None` outside a cluster lab (no node states were recorded).
pub fn cluster(
    dir: &Path,
    plan: &crate::scenario::Plan,
    spans: &[crate::steps::StepSpan],
    events: &[Event],
    run_end: Duration,
) -> io::Result<Option<crate::report::ClusterOut>> {
    if !matches!(plan.lab, Some(crate::scenario::Lab::SwarmCluster { .. })) {
        return Ok(None);
    }
    let steps: Vec<_> = spans
        .iter()
        .filter_map(|s| {
            let step = plan.steps.iter().find(|p| p.index == s.index)?;
            Some((s.clone(), step.action.clone()))
        })
        .collect();
    let requests: Vec<ServedRequest> = ok_requests(&dir.join("requests.csv"))?
        .into_iter()
        .map(|r| ServedRequest {
            task: r.task,
            ok: true,
            sent: r.sent,
        })
        .collect();
    let service = plan.service.as_ref().map_or("", |s| s.name.as_str());
    Ok(
        crate::analysis::cluster::analyse(events, &steps, &requests, service, run_end)
            .as_ref()
            .map(crate::report::ClusterOut::from),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ok_requests_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        std::fs::write(
            &path,
            "id,scheduled_ms,sent_ms,connected_ms,first_byte_ms,done_ms,latency_ms,outcome,status,bytes,reused,version,host,task,error\n\
             1,0.5,0.6,0.8,50.1,50.2,49.7,ok,200,113,false,1,h,app.1.x,\n\
             2,1.0,1.1,,,4.1,3.0,refused,,0,false,,,,connection refused\n\
             3,2.0,,,,2.0,0.0,late,,0,false,,,,\n\
             4,3.0,3.0,3.2,9.0,9.5,6.5,ok,200,113,true,2,h,,\n",
        )
        .unwrap();
        let got = ok_requests(&path).unwrap();
        let at = |ms: f64| Duration::from_secs_f64(ms / 1e3);
        assert_eq!(
            got,
            vec![
                ProbeRequest {
                    task: "app.1.x".into(),
                    sent: at(0.6),
                    done: at(50.2)
                },
                ProbeRequest {
                    task: String::new(),
                    sent: at(3.0),
                    done: at(9.5)
                },
            ]
        );
    }
}
