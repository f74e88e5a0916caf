//! The summary printed at the end of a run: steps, an ab-style failure breakdown,
//! percentiles per phase, versions served, and the verdict with each threshold.

use super::{LatencyMs, Summary};
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
    writeln!(
        out,
        "  dropped:              {} ({} of sent; counts {})",
        s.requests.dropped,
        percent(s.requests.error_rate),
        s.dropped_classes.join(" + ")
    )?;
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

    if !s.versions.is_empty() {
        let v: Vec<String> = s.versions.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        writeln!(out, "\nVersions served (ok responses): {}", v.join(", "))?;
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
    writeln!(out, "\nVerdict: {}", s.verdict.to_uppercase())?;
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
