//! A minimal stand-in for `tmescope graph` / `tmescope stats` (same library calls, hand-parsed options),
//! for running `scripts/compare_squidpy.py` against this crate alone:
//! `cargo run --release -p tmescope-spatial --example spatial_cli -- graph DS -o OUT --kind knn --k 6`.

use std::path::PathBuf;
use tmescope_core::output::OutputDir;
use tmescope_core::provenance::Provenance;
use tmescope_spatial::build::GraphKind;
use tmescope_spatial::pipeline::{run_graph, run_stats, StatsOptions};

fn value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|k| args.get(k + 1).cloned())
}

fn list(args: &[String], name: &str) -> Vec<String> {
    value(args, name).map(|v| v.split(',').map(str::to_string).collect()).unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().cloned().unwrap_or_default();
    let dataset = PathBuf::from(args.get(1).cloned().ok_or("missing DATASET")?);
    let output = PathBuf::from(value(&args, "-o").ok_or("missing -o DIR")?);
    let out = OutputDir::create(&output)?;
    if cmd == "graph" {
        let k: usize = value(&args, "--k").map(|v| v.parse()).transpose()?.unwrap_or(6);
        let kind = match value(&args, "--kind").as_deref().unwrap_or("knn") {
            "knn" => GraphKind::Knn { k, symmetric: args.iter().any(|a| a == "--symmetric") },
            "radius" => GraphKind::Radius { radius: value(&args, "--radius").ok_or("--radius")?.parse()? },
            "delaunay" => GraphKind::Delaunay {
                prune_percentile: value(&args, "--prune-percentile").map(|v| v.parse()).transpose()?.unwrap_or(99.0),
            },
            "grid" => {
                GraphKind::Grid { k, rings: value(&args, "--rings").map(|v| v.parse()).transpose()?.unwrap_or(1) }
            }
            other => return Err(format!("unknown kind {other}").into()),
        };
        let s = run_graph(&dataset, &kind, &out, &Provenance::new("graph", kind.description()), &|_, _| Ok(()))?;
        println!("{s:?}");
    } else {
        let opts = StatsOptions {
            labels: value(&args, "--labels"),
            proportions: value(&args, "--proportions").map(PathBuf::from),
            hops: 1,
            perms: value(&args, "--perms").map(|v| v.parse()).transpose()?.unwrap_or(1000),
            seed: value(&args, "--seed").map(|v| v.parse()).transpose()?.unwrap_or(0),
            max_radius: value(&args, "--max-radius").map(|v| v.parse()).transpose()?,
            radius_steps: 20,
            radius_list: value(&args, "--radius-list")
                .map(|v| v.split(',').map(|r| r.parse::<f64>()).collect::<Result<Vec<_>, _>>())
                .transpose()?,
            genes: list(&args, "--genes"),
            top_variable: None,
            columns: list(&args, "--columns"),
            autocorr_perms: 0,
            hotspots: list(&args, "--hotspots"),
            ripley: list(&args, "--ripley"),
            no_cooccurrence: false,
        };
        let graph = PathBuf::from(value(&args, "--graph").ok_or("missing --graph")?);
        let prov = Provenance::new("stats", serde_json::to_value(&opts)?);
        let s = run_stats(&dataset, &graph, &opts, &out, &prov, &|_, _, _| ())?;
        println!("{}", s.lines.join("\n"));
    }
    out.commit()?;
    Ok(())
}
