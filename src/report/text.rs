//! The summary printed at the end of a run: steps, an ab-style failure breakdown,
//! percentiles per phase, versions served, and the verdict with each threshold.

use super::{HealthProbes, LatencyMs, Summary};
use crate::outcome::Outcome;
use std::io::{self, Write};

pub fn render(s: &Summary, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "rollcheck: {} ({})", s.scenario.title, s.scenario.file)?;
    writeln!(
        out,
        "target {} · {} · {} · {:.1} s{}",
        s.run.target,
        s.run.model,
        if s.run.keepalive {
            "keep-alive"
        } else {
            "new connection per request"
        },
        s.run.duration_s,
        if s.run.interrupted {
            " · INTERRUPTED"
        } else {
            ""
        }
    )?;
    if s.run.recovered {
        writeln!(out, "{}", super::RECOVERED)?;
    }

    if !s.steps.is_empty() {
        writeln!(out, "\nSteps")?;
        for st in &s.steps {
            let status = match (st.ok, st.expected_failure) {
                (true, false) => "ok",
                (false, true) => "failed (expected)",
                (true, true) => "ok (expected to fail)",
                (false, false) => "FAILED",
            };
            writeln!(
                out,
                "  #{:<2} {:>7.2}s → {:>7.2}s  {}  {}{}",
                st.index,
                st.start_s,
                st.end_s,
                st.label,
                status,
                if st.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", st.detail)
                }
            )?;
        }
    }

    let failed: u64 = s
        .outcomes
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Ok | Outcome::Late))
        .map(|(_, n)| n)
        .sum();
    writeln!(out, "\nRequests:               {}", s.requests.total)?;
    writeln!(out, "  ok:                   {}", s.requests.ok)?;
    writeln!(out, "  Failed requests:      {failed}")?;
    let breakdown: Vec<String> = s
        .outcomes
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Ok | Outcome::Late))
        .map(|(o, n)| format!("{o}: {n}"))
        .collect();
    writeln!(out, "    ({})", breakdown.join(", "))?;
    // The reason, as `ab` prints it: each class's most frequent error.
    for f in s.failures.iter().filter(|f| !f.error.is_empty()) {
        let error: String = f.error.chars().take(200).collect();
        writeln!(
            out,
            "    {}: {} of {} said: {error}",
            f.class, f.error_count, f.count
        )?;
    }
    writeln!(
        out,
        "  dropped:              {} ({} of sent; counts {})",
        s.requests.dropped,
        percent(s.requests.error_rate),
        s.dropped_classes.join(" + ")
    )?;
    if let Some([first, last]) = s.requests.dropped_between_s {
        writeln!(
            out,
            "  dropped between:      {first:.2} s and {last:.2} s ({:.2} s)",
            last - first
        )?;
    }
    if s.requests.late > 0 {
        writeln!(
            out,
            "  late (harness limit, not the service's): {}",
            s.requests.late
        )?;
    }

    writeln!(out, "\nLatency of ok requests (ms, from scheduled start)")?;
    writeln!(
        out,
        "  {:<8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "count", "p50", "p90", "p99", "p99.9", "max"
    )?;
    latency_row(out, "all", &s.latency_ms)?;
    if s.phases.len() > 1 {
        for p in &s.phases {
            latency_row(out, &p.name, &p.latency_ms)?;
        }
    }
    if s.service_latency_ms.p99 != s.latency_ms.p99 {
        latency_row(out, "from send", &s.service_latency_ms)?;
    }
    if let Some(t) = &s.tls_handshake_ms {
        latency_row(out, "TLS", t)?;
    }
    if !s.requests_by_entry.is_empty() {
        writeln!(
            out,
            "\nPer request entry ([[load.request]]; latency of ok requests, ms)"
        )?;
        writeln!(
            out,
            "  {:<24} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
            "", "requests", "ok", "dropped", "p50", "p99", "max"
        )?;
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        for e in &s.requests_by_entry {
            writeln!(
                out,
                "  {:<24} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
                e.name,
                e.requests,
                e.ok,
                e.dropped,
                f(e.latency_ms.p50),
                f(e.latency_ms.p99),
                f(e.latency_ms.max)
            )?;
        }
    }

    if let Some(g) = &s.generators {
        writeln!(out, "\nGenerators: {}", g.line())?;
    }
    if let Some(t) = &s.server_truth {
        writeln!(out, "\nServer truth: {}", t.line())?;
    }

    if s.attribution.foreign(s.requests.ok) {
        writeln!(out, "\nNot attributed: {}", super::Attribution::NOTICE)?;
    }
    if !s.versions.is_empty() {
        let v: Vec<String> = s
            .versions
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        writeln!(out, "\nVersions served (ok responses): {}", v.join(", "))?;
    }

    if let Some(c) = &s.cluster {
        cluster(out, c)?;
    }
    if let Some(c) = &s.containers {
        containers(out, c)?;
    }
    if let Some(h) = &s.health_probes {
        health_probes(out, h)?;
    }

    writeln!(out, "\nGate")?;
    for g in &s.gate {
        writeln!(
            out,
            "  {}  {}",
            if g.passed { "pass" } else { "FAIL" },
            g.text
        )?;
    }
    for p in &s.problems {
        writeln!(out, "  inconclusive: {p}")?;
    }
    writeln!(out, "\nVerdict: {}", s.verdict.as_str().to_uppercase())?;
    Ok(())
}

/// Node lanes, control-plane outages, reschedules and requests per node.
fn cluster(out: &mut impl Write, c: &crate::report::ClusterOut) -> io::Result<()> {
    let end = |e: Option<f64>| e.map_or_else(|| "end".to_string(), |e| format!("{e:.2}s"));
    writeln!(out, "\nCluster")?;
    writeln!(
        out,
        "  control plane unavailable: {:.1} s in {} span(s)",
        c.control_plane_unavailable_s,
        c.control_plane_unavailable.len()
    )?;
    for sp in &c.control_plane_unavailable {
        writeln!(out, "    {:>7.2}s → {:>7}", sp.start_s, end(sp.end_s))?;
    }
    for r in &c.reschedules {
        let after = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1} s"));
        writeln!(
            out,
            "  step {} took {} at {:.2}s: {} task(s) lost; running elsewhere after {}; first request to them after {}",
            r.step,
            r.node,
            r.at_s,
            r.tasks_lost,
            after(r.running_elsewhere_after_s),
            after(r.first_request_after_s)
        )?;
    }
    writeln!(out, "  node lanes")?;
    for l in c
        .lanes
        .iter()
        .filter(|l| !(l.state == "leader" && l.end_s.is_none() && l.start_s == 0.0))
    {
        writeln!(
            out,
            "    {:<10} {:<13} {:>7.2}s → {:>7}",
            l.node,
            l.state,
            l.start_s,
            end(l.end_s)
        )?;
    }
    let per_node: Vec<String> = c
        .requests_per_node
        .iter()
        .map(|(n, k)| format!("{n}: {k}"))
        .collect();
    writeln!(out, "  ok requests per node: {}", per_node.join(", "))?;
    for (error, n) in &c.tasks_rejected {
        writeln!(out, "  tasks rejected by Swarm: {n} × {error}")?;
    }
    Ok(())
}

/// A docker lab: the edge's upstream over time, then each container's states.
fn containers(out: &mut impl Write, c: &crate::report::ContainersOut) -> io::Result<()> {
    let end = |e: Option<f64>| e.map_or_else(|| "end".to_string(), |e| format!("{e:.2}s"));
    writeln!(out, "\nUpstream (the edge proxies to)")?;
    for u in &c.upstream {
        writeln!(out, "  {:>7.2}s  {}", u.start_s, u.describe())?;
    }
    writeln!(out, "Containers")?;
    // Each container's states together, containers in the order they first appear.
    let mut lanes: Vec<&crate::report::ContainerLaneOut> = c.lanes.iter().collect();
    let first = |name: &str| c.lanes.iter().position(|l| l.container == name);
    lanes.sort_by_key(|l| first(&l.container));
    for l in lanes {
        writeln!(
            out,
            "  {:<24} {:<9} {:>7.2}s → {:>7}",
            l.container,
            l.state,
            l.start_s,
            end(l.end_s)
        )?;
    }
    Ok(())
}

/// Probe durations per container, then whether requests in flight during probes were slower.
fn health_probes(out: &mut impl Write, h: &HealthProbes) -> io::Result<()> {
    writeln!(out, "\nHealth probes")?;
    for c in &h.containers {
        writeln!(
            out,
            "  {:<40} {:>4} probes  mean {:>7.1} ms  max {:>7.1} ms{}{}",
            c.name,
            c.probes,
            c.mean_ms,
            c.max_ms,
            if c.failed > 0 {
                format!("  {} failed", c.failed)
            } else {
                String::new()
            },
            if c.on_every_request { "  (edge)" } else { "" }
        )?;
    }
    writeln!(out, "  requests in flight (ms, from send)")?;
    writeln!(
        out,
        "  {:<8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "count", "p50", "p90", "p99", "p99.9", "max"
    )?;
    latency_row(out, "in probe", &h.in_probe_ms)?;
    latency_row(out, "outside", &h.outside_ms)?;
    if h.left_out_during_steps > 0 {
        writeln!(
            out,
            "  {} requests in flight during steps or node faults left out (their latency is the step's)",
            h.left_out_during_steps
        )?;
    }
    if h.left_out_slow_connect > 0 {
        writeln!(
            out,
            "  {} requests whose connect needed a SYN retransmit (>= 1 s) left out (their latency is the network's)",
            h.left_out_slow_connect
        )?;
    }
    let r = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    writeln!(
        out,
        "  in probe / outside: p50 ×{}, p99 ×{}",
        r(h.p50_ratio),
        r(h.p99_ratio)
    )?;
    writeln!(
        out,
        "  spikes (p99 > {}× outside p99 during a probe): {}",
        h.spike_factor_k,
        h.spikes.len()
    )?;
    for sp in h.spikes.iter().take(5) {
        writeln!(
            out,
            "    {:>7.2}s → {:>7.2}s  {}  p99 {:.1} ms over {} requests (baseline {:.1} ms)",
            sp.start_s, sp.end_s, sp.container, sp.p99_ms, sp.requests, sp.baseline_p99_ms
        )?;
    }
    if h.spikes.len() > 5 {
        writeln!(out, "    … {} more in summary.json", h.spikes.len() - 5)?;
    }
    Ok(())
}

fn percent(r: f64) -> String {
    format!("{:.3}%", r * 100.0)
}

fn latency_row(out: &mut impl Write, name: &str, l: &LatencyMs) -> io::Result<()> {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    writeln!(
        out,
        "  {:<8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        name,
        l.count,
        f(l.p50),
        f(l.p90),
        f(l.p99),
        f(l.p999),
        f(l.max)
    )
}

/// Runs side by side, one column each: what `rollcheck compare` prints.
pub fn render_compare(runs: &[Summary], out: &mut impl Write) -> io::Result<()> {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "scenario".into(),
            runs.iter().map(|s| s.scenario.slug.clone()).collect(),
        ),
        (
            "verdict".into(),
            runs.iter().map(|s| s.verdict.to_string()).collect(),
        ),
        (
            "requests".into(),
            runs.iter().map(|s| s.requests.total.to_string()).collect(),
        ),
        (
            "dropped".into(),
            runs.iter()
                .map(|s| s.requests.dropped.to_string())
                .collect(),
        ),
    ];
    for o in Outcome::ALL {
        if o == Outcome::Ok || runs.iter().all(|s| s.outcomes.get(o) == 0) {
            continue;
        }
        rows.push((
            format!("  {o}"),
            runs.iter().map(|s| s.outcomes.get(o).to_string()).collect(),
        ));
    }
    rows.push((
        "p50 ms".into(),
        runs.iter().map(|s| f(s.latency_ms.p50)).collect(),
    ));
    rows.push((
        "p99 ms".into(),
        runs.iter().map(|s| f(s.latency_ms.p99)).collect(),
    ));
    rows.push((
        "max ms".into(),
        runs.iter().map(|s| f(s.latency_ms.max)).collect(),
    ));
    // How long the steps took: for an update with wait = converged, the time to converge.
    rows.push((
        "steps s".into(),
        runs.iter()
            .map(|s| {
                let d: Vec<String> = s
                    .steps
                    .iter()
                    .map(|st| format!("{:.1}", st.end_s - st.start_s))
                    .collect();
                if d.is_empty() {
                    "-".into()
                } else {
                    d.join("+")
                }
            })
            .collect(),
    ));
    let label_w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let col_w = rows
        .iter()
        .flat_map(|(_, v)| v.iter().map(String::len))
        .max()
        .unwrap_or(0)
        .max(8);
    for (label, values) in rows {
        write!(out, "{label:<label_w$}")?;
        for v in values {
            write!(out, "  {v:>col_w$}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
