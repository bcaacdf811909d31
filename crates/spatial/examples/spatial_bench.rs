//! Timing of the spatial stage on a simulated section: `cargo run --release -p tmescope-spatial --example
//! spatial_bench -- N [--cooccurrence]`.
//!
//! Cells are placed uniformly at one cell per 100 square micrometres (about Xenium's density), with ten
//! patchy cell types; 100 gene-like features vary smoothly in space. Prints one line per step with the wall
//! time and, at the end, the peak resident memory of the process.

use rand::SeedableRng;
use std::path::Path;
use std::time::Instant;
use tmescope_spatial::autocorr::{AutocorrWeights, FeatureColumn};
use tmescope_spatial::build::{build_graph, GraphKind};
use tmescope_spatial::cooccurrence::{co_occurrence, even_radii};
use tmescope_spatial::enrichment::nhood_enrichment;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let with_cooc = args.iter().any(|a| a == "--cooccurrence");
    let side = (n as f64 * 100.0).sqrt();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    use rand::Rng;
    let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * side).collect();
    let y: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * side).collect();
    // Patchy labels: type from a coarse 250 um checkerboard of random types, 20 % noise.
    let cell = 250.0;
    let cols = (side / cell).ceil() as usize + 1;
    let patch: Vec<u32> = (0..cols * cols).map(|_| rng.random_range(0..10)).collect();
    let labels: Vec<u32> = (0..n)
        .map(|i| {
            if rng.random::<f64>() < 0.2 {
                rng.random_range(0..10)
            } else {
                patch[(x[i] / cell) as usize * cols + (y[i] / cell) as usize]
            }
        })
        .collect();
    let sample = vec!["s".to_string(); n];
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let threads = rayon::current_num_threads();
    println!("cells {n}, side {side:.0} um, threads {threads}");

    let t = Instant::now();
    let build =
        |kind: &GraphKind| build_graph(&x, &y, &sample, &ids, kind, Path::new("bench"), &|_, _| Ok(())).unwrap();
    let knn = build(&GraphKind::Knn { k: 6, symmetric: false });
    println!("knn_graph_k6 {:.3} s ({} edges)", t.elapsed().as_secs_f64(), knn.n_edges());

    let t = Instant::now();
    let del = build(&GraphKind::Delaunay { prune_percentile: 99.0 });
    println!("delaunay_graph {:.3} s ({} edges)", t.elapsed().as_secs_f64(), del.n_edges());
    drop(del);

    let t = Instant::now();
    let e = nhood_enrichment(&knn, &labels, 10, 1000, 0, &|| ());
    println!("nhood_enrichment_1000_perms {:.3} s (z[0,0] = {:.2})", t.elapsed().as_secs_f64(), e.z[0]);

    use rayon::prelude::*;
    let feats: Vec<Vec<f64>> = (0..100)
        .into_par_iter()
        .map(|g| {
            let f = 0.002 + g as f64 * 0.0003;
            (0..n)
                .map(|i| ((x[i] * f).sin() + (y[i] * f * 0.7).cos() + (i % 7) as f64 * 0.1).max(0.0).ln_1p())
                .collect()
        })
        .collect();
    let t = Instant::now();
    let w = AutocorrWeights::new(&knn);
    let t_weights = t.elapsed().as_secs_f64();
    let cols: Vec<FeatureColumn> = feats.into_iter().map(FeatureColumn::Dense).collect();
    let res = w.test_many(&cols.iter().collect::<Vec<_>>(), 0, 0, 0);
    println!(
        "moran_geary_100_features {:.3} s (weights {t_weights:.3} s; I[0] = {:.3}, C[0] = {:.3})",
        t.elapsed().as_secs_f64(),
        res[0][0].value,
        res[0][1].value
    );
    drop(cols);

    if with_cooc {
        let pts: Vec<[f64; 2]> = x.iter().zip(&y).map(|(&a, &b)| [a, b]).collect();
        let t = Instant::now();
        let co = co_occurrence(&pts, &labels, 10, &even_radii(200.0, 20));
        println!(
            "cooccurrence_200um_20_radii {:.3} s ({} pairs within 200 um)",
            t.elapsed().as_secs_f64(),
            co.pairs[co.pairs.len() - 100..].iter().sum::<u64>()
        );
    }
    println!("peak_rss {:.0} MB", peak_rss_mb());
}
