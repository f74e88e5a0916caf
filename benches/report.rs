//! Benchmark (not a test) of report.html for a big run: writes a synthetic run directory of N
//! requests (default 1,000,000) through the real history collector, then times reading it back
//! (the peer: the least any renderer must do) and rendering report.html, and prints the file
//! size against requests.csv's. Run with `ci/bench-report [requests]`.

use rollcheck::report::synthetic::{Synthetic, write_run_dir};
use rollcheck::report::{RunData, html};
use std::time::{Duration, Instant};

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let spec = Synthetic {
        requests: n,
        duration: Duration::from_secs(600),
        tag: "",
    };
    write_run_dir(dir.path(), &spec).expect("synthetic run");
    println!(
        "synthetic run of {n} requests written in {:.2?}",
        t.elapsed()
    );

    let t = Instant::now();
    let data = RunData::load(dir.path()).expect("load");
    let load = t.elapsed();
    let t = Instant::now();
    let mut page = Vec::new();
    html::render(&data, &mut page).expect("render");
    let render = t.elapsed();
    let csv = std::fs::metadata(dir.path().join("requests.csv"))
        .expect("requests.csv")
        .len();
    let mb = |b: u64| b as f64 / 1e6;
    println!("load run dir:       {load:>10.2?}");
    println!(
        "render report.html: {render:>10.2?}  ({:.2}x the load)",
        render.as_secs_f64() / load.as_secs_f64()
    );
    println!(
        "report.html:        {:>7.2} MB  (requests.csv {:.1} MB, {:.1}% of it; limit 5 MB)",
        mb(page.len() as u64),
        mb(csv),
        page.len() as f64 * 100.0 / csv as f64
    );
}
