//! Times the simulator without the command-line layer (release build):
//! `cargo run --release -p tmescope-sim --example simulate_bench -- [CELLS] [THREADS] [PLATFORM] [GENES]`.
//! Prints the wall time of one section of CELLS cells (no reference), then removes the output.

use std::time::Instant;
use tmescope_core::provenance::Provenance;
use tmescope_sim::config::{Platform, SimConfig};

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, 100 ticks per second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let cells: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let threads: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let platform = Platform::parse(args.get(3).map_or("xenium", String::as_str))?;
    let genes: usize = args.get(4).map_or(Ok(300), |s| s.parse())?;
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;
    let cfg = SimConfig {
        n_cells: cells,
        n_samples: 1,
        platform,
        reference_cells: 0,
        n_background_genes: genes,
        ..SimConfig::default()
    };
    let dir = std::env::temp_dir().join(format!("tmescope-sim-bench-{}", std::process::id()));
    let start = Instant::now();
    let mut last = Instant::now();
    let summary =
        tmescope_sim::simulate_cohort(&cfg, &dir, &Provenance::new("simulate", serde_json::json!({})), &mut |step| {
            eprintln!(
                "[{:7.2} s, +{:6.2} s, cpu {:7.2} s] {step}",
                start.elapsed().as_secs_f64(),
                last.elapsed().as_secs_f64(),
                cpu_seconds()
            );
            last = Instant::now();
        })?;
    let secs = start.elapsed().as_secs_f64();
    let s = &summary.sections[0];
    println!(
        "simulate cells={cells} platform={:?} genes={} threads={threads} wall_s={secs:.2} nnz_per_cell={:.1} counts_per_cell={:.1} spots={}",
        platform, summary.n_genes, s.mean_nonzeros_per_cell, s.mean_counts_per_cell, s.n_spots
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
