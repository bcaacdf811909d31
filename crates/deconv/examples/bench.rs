//! Accuracy (Spotless patterns, rctd vs nnls) and speed benchmark of the deconvolution.
//!
//! `cargo run --release -p tmescope-deconv --example bench -- [--reference-csv DIR] [--spots N]
//! [--speed-spots N] [--mean-total N] [--threads N] [--speed-only] [--full-only]`. `--mean-total` sets the
//! mean counts per simulated spot of the speed run (1,000; e.g. 300 for Visium HD 8-16 um bins; sd 25% of
//! it); `--full-only` stops after the full-mode run with the sigma search. With `--reference-csv`, the reference is read from a folder with
//! `dge.csv` (genes x cells) and `meta_data.csv` (`barcode,cluster,nUMI`), e.g. the RCTD validation
//! pack; otherwise a synthetic 10-type reference is used.

use std::path::Path;
use std::time::Instant;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::Column;
use tmescope_deconv::likelihood::TableCache;
use tmescope_deconv::synth::{
    dataset, evaluate, split_cells, synthesize, synthetic_reference, Metrics, Pattern, SynthOptions,
};
use tmescope_deconv::{deconvolve, prepare_reference, Method, Mode, Params};

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect())
        .collect()
}

/// Reference counts (cells x genes), type index per cell, type names, gene names.
fn csv_reference(dir: &Path) -> (CsrCounts, Vec<usize>, Vec<String>, Vec<String>) {
    let rows = read_csv(&dir.join("dge.csv"));
    let cells: Vec<String> = rows[0][1..].to_vec();
    let genes: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    let mut trip = Vec::new();
    for (g, r) in rows[1..].iter().enumerate() {
        for (c, v) in r[1..].iter().enumerate() {
            let x: f64 = v.parse().unwrap();
            if x != 0.0 {
                trip.push((c as u32, g as u32, x));
            }
        }
    }
    let meta: std::collections::HashMap<String, String> =
        read_csv(&dir.join("meta_data.csv"))[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let mut names: Vec<String> = meta.values().cloned().collect();
    tmescope_deconv::profiles::sort_labels(&mut names);
    names.dedup();
    let types = cells.iter().map(|c| names.iter().position(|n| *n == meta[c]).unwrap()).collect();
    (CsrCounts::from_triplets(cells.len(), genes.len(), trip, true).unwrap(), types, names, genes)
}

fn predictions(res: &tmescope_deconv::Deconvolution, k: usize) -> (Vec<f64>, Vec<bool>) {
    let mut pred = vec![0.0; res.spots.len() * k];
    let mut fitted = vec![false; res.spots.len()];
    for (i, s) in res.spots.iter().enumerate() {
        fitted[i] = s.dropped_reason.is_none();
        for &(t, _, p) in &s.proportions {
            pred[i * k + t] = p;
        }
    }
    (pred, fitted)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(t) = arg(&args, "--threads") {
        rayon::ThreadPoolBuilder::new().num_threads(t.parse().unwrap()).build_global().unwrap();
    }
    let n_spots: usize = arg(&args, "--spots").map(|s| s.parse().unwrap()).unwrap_or(1000);
    let speed_only = args.iter().any(|a| a == "--speed-only");
    let speed_spots: usize = arg(&args, "--speed-spots").map(|s| s.parse().unwrap()).unwrap_or(100_000);
    let mean_total: f64 = arg(&args, "--mean-total").map(|s| s.parse().unwrap()).unwrap_or(1000.0);
    let full_only = args.iter().any(|a| a == "--full-only");
    let (counts, types, names, genes) = match arg(&args, "--reference-csv") {
        Some(d) => csv_reference(Path::new(&d)),
        None => {
            let (c, t) = synthetic_reference(10, 300, 60, 3000.0, 11);
            (c, t, (0..10).map(|i| format!("type{i}")).collect(), (0..300).map(|g| format!("G{g}")).collect())
        }
    };
    let k = names.len();
    let (pool, keep) = split_cells(&types, k, 1);
    let labels = Column::Text(keep.iter().map(|&i| Some(names[types[i]].clone())).collect());
    let reference = dataset(counts.select_rows(&keep), &genes, "table", vec![("cell_type".into(), labels)]);
    let mut params = Params { mode: Some(Mode::Full), ..Default::default() };
    params.reference.min_cells_per_type = 5;
    let prepared = prepare_reference(&reference, Path::new("reference"), &params).expect("reference");
    let mut cache = TableCache::new();
    let mut table = String::from("| pattern | method | RMSE | JSD | Pearson | AUPR | dominant acc. | spots |\n|---|---|---|---|---|---|---|---|\n");
    for pattern in Pattern::ALL.into_iter().filter(|_| !speed_only) {
        let opts = SynthOptions { n_spots, ..Default::default() };
        let spots = synthesize(&counts, &types, k, &pool, pattern, &opts);
        let spatial = dataset(spots.counts.clone(), &genes, "simulated-visium", vec![]);
        for method in [Method::Rctd, Method::Nnls] {
            let p = Params { method, ..params.clone() };
            let t = Instant::now();
            let res = deconvolve(&spatial, Path::new("spots"), &prepared, &reference.genes, &p, &mut cache, &|_| {})
                .expect("deconvolve");
            let (pred, fitted) = predictions(&res, k);
            let rows: Vec<usize> = (0..n_spots).filter(|&i| fitted[i]).collect();
            let tr: Vec<f64> = rows.iter().flat_map(|&i| spots.truth[i * k..(i + 1) * k].iter().copied()).collect();
            let pr: Vec<f64> = rows.iter().flat_map(|&i| pred[i * k..(i + 1) * k].iter().copied()).collect();
            let m: Metrics = evaluate(&tr, &pr, k);
            table.push_str(&format!(
                "| {} | {:?} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} | {} |\n",
                pattern.name(),
                method,
                m.rmse,
                m.jsd,
                m.pearson,
                m.aupr,
                m.dominant_accuracy,
                m.n_spots
            ));
            eprintln!("{} {:?}: {:.1} s, sigma {:?}", pattern.name(), method, t.elapsed().as_secs_f64(), res.sigma);
        }
    }
    if !speed_only {
        println!("Accuracy ({k} types, {} reference genes, {n_spots} spots per pattern):\n{table}", genes.len());
    }

    // Speed: 20 types x 300 genes, `speed_spots` spots.
    let (c20, t20) = synthetic_reference(20, 300, 40, 3000.0, 5);
    let g20: Vec<String> = (0..300).map(|g| format!("G{g}")).collect();
    let n20: Vec<String> = (0..20).map(|i| format!("type{i}")).collect();
    let (pool20, keep20) = split_cells(&t20, 20, 2);
    let lab = Column::Text(keep20.iter().map(|&i| Some(n20[t20[i]].clone())).collect());
    let ref20 = dataset(c20.select_rows(&keep20), &g20, "table", vec![("cell_type".into(), lab)]);
    let prep20 = prepare_reference(&ref20, Path::new("ref20"), &params).expect("reference");
    let t = Instant::now();
    let sp = synthesize(
        &c20,
        &t20,
        20,
        &pool20,
        Pattern::Uniform,
        &SynthOptions { n_spots: speed_spots, mean_total, sd_total: 0.25 * mean_total, ..Default::default() },
    );
    let spatial = dataset(sp.counts, &g20, "simulated-visium", vec![]);
    eprintln!("simulated {speed_spots} spots in {:.1} s", t.elapsed().as_secs_f64());
    let mut cold = TableCache::new();
    let t = Instant::now();
    let full =
        deconvolve(&spatial, Path::new("spots"), &prep20, &ref20.genes, &params, &mut cold, &|_| {}).expect("full");
    let t_full = t.elapsed().as_secs_f64();
    println!(
        "Speed ({} threads): full mode, {speed_spots} spots x 20 types x {} reg genes, mean {mean_total} counts, sigma search {:?} ({} tables): {t_full:.1} s",
        rayon::current_num_threads(),
        full.n_reg,
        full.sigma_path.iter().map(|s| s.sigma).collect::<Vec<_>>(),
        cold.computed
    );
    if full_only {
        return;
    }
    let sigma = full.sigma;
    let t = Instant::now();
    let p = Params { sigma, ..params.clone() };
    let _ = deconvolve(&spatial, Path::new("spots"), &prep20, &ref20.genes, &p, &mut cold, &|_| {}).expect("full");
    let t_full_fixed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let p = Params { sigma, mode: Some(Mode::Doublet), ..params.clone() };
    let _ = deconvolve(&spatial, Path::new("spots"), &prep20, &ref20.genes, &p, &mut cold, &|_| {}).expect("doublet");
    let t_dbl = t.elapsed().as_secs_f64();
    println!(
        "full mode at fixed sigma: {t_full_fixed:.1} s; doublet mode at fixed sigma: {t_dbl:.1} s ({:.2}x full)",
        t_dbl / t_full_fixed
    );
    // Doublet mode is meant for beads of one or two cells (Slide-seq): the same comparison on such spots.
    let beads = synthesize(
        &c20,
        &t20,
        20,
        &pool20,
        Pattern::Uniform,
        &SynthOptions {
            n_spots: speed_spots,
            min_cells: 1,
            max_cells: 2,
            mean_total,
            sd_total: 0.25 * mean_total,
            ..Default::default()
        },
    );
    let beads = dataset(beads.counts, &g20, "simulated-beads", vec![]);
    let mut time_mode = |mode| {
        let t = Instant::now();
        let p = Params { sigma, mode: Some(mode), ..params.clone() };
        let _ = deconvolve(&beads, Path::new("beads"), &prep20, &ref20.genes, &p, &mut cold, &|_| {}).expect("beads");
        t.elapsed().as_secs_f64()
    };
    let (b_full, b_dbl) = (time_mode(Mode::Full), time_mode(Mode::Doublet));
    println!(
        "bead-like spots (1-2 cells), fixed sigma: full mode {b_full:.1} s; doublet mode {b_dbl:.1} s ({:.2}x full)",
        b_dbl / b_full
    );
}
