//! Writes an example run (tmescope-report's synthetic data) and times rendering its report.
//!
//! ```text
//! cargo run --release -p tmescope-report --example bench_report -- --cells 1000000 --samples 1 \
//!     --run /tmp/bench/run --report /tmp/bench/report
//! ```
//! Options: `--cells N` (per sample, default 4000), `--samples K` (default 3; conditions alternate
//! untreated/treated), `--run DIR`, `--report DIR`, `--max-points N`, `--reuse` (keep an existing run).

use std::path::PathBuf;
use std::time::Instant;
use tmescope_report::example::{write_example_run, ExampleSample};
use tmescope_report::{render_report, ReportOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cells = 4000usize;
    let mut samples = 3usize;
    let mut run = PathBuf::from("bench-run");
    let mut report = PathBuf::from("bench-report");
    let mut opts = ReportOptions::default();
    let mut reuse = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--cells" => cells = value()?.parse()?,
            "--samples" => samples = value()?.parse()?,
            "--run" => run = PathBuf::from(value()?),
            "--report" => report = PathBuf::from(value()?),
            "--max-points" => opts.max_points = value()?.parse()?,
            "--reuse" => reuse = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let names = ["P1-pre", "P1-post", "P2-pre", "P2-post", "P3-pre", "P3-post"];
    let spec: Vec<ExampleSample> = (0..samples)
        .map(|i| ExampleSample {
            name: names.get(i).map(|s| s.to_string()).unwrap_or_else(|| format!("S{i}")),
            condition: if i % 2 == 0 { "untreated" } else { "treated" }.into(),
            n_cells: cells,
        })
        .collect();
    if !(reuse && run.exists()) {
        let t = Instant::now();
        write_example_run(&run, &spec, 42)?;
        eprintln!("wrote {} sample(s) x {cells} cells in {:.1} s", samples, t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    let out = render_report(&[run], &report, &opts)?;
    eprintln!(
        "rendered {} figures for {} sample(s) in {:.2} s on {} thread(s): {}",
        out.n_figures,
        out.n_samples,
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
        out.index.display()
    );
    for l in &out.summary {
        eprintln!("  {l}");
    }
    Ok(())
}
