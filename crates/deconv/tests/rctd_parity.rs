//! Parity with the original RCTD (spacexr 2.2.1) on the Slide-seq cerebellum vignette.
//!
//! Reads `../shared/validation/rctd_slideseq` (GPL-3 data and outputs, never copied into this
//! repository) when present; skips with a message otherwise (CI does not have it). Checks the bead
//! filter, the gene lists, the bulk fit, the sigma path and likelihoods, the full-mode weights, the
//! doublet classes, types, scores and pair weights, and the multi-mode type sets.

mod common;
use common::validation_pack::{named_rows, read_csv, validation_datasets};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tmescope_core::dataset::Dataset;
use tmescope_deconv::likelihood::TableCache;
use tmescope_deconv::pipeline::PreparedReference;
use tmescope_deconv::{deconvolve, prepare_reference, Deconvolution, Mode, Params};

fn validation_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/validation/rctd_slideseq");
    d.is_dir().then_some(d)
}

/// The inputs and the full-mode run (with the sigma search), computed once for all tests.
struct Run {
    dir: PathBuf,
    spatial: Dataset,
    reference: Dataset,
    prepared: PreparedReference,
    params: Params,
    full: Deconvolution,
    /// Likelihood tables of the full run, reused by the doublet and multi runs.
    cache: Mutex<TableCache>,
}

fn run() -> Option<&'static Run> {
    static RUN: OnceLock<Option<Run>> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = validation_dir()?;
        let t0 = std::time::Instant::now();
        let (spatial, reference) = validation_datasets(&dir);
        let params = Params { reference_umi_column: Some("nUMI".into()), mode: Some(Mode::Full), ..Default::default() };
        let prepared = prepare_reference(&reference, Path::new("reference"), &params).expect("reference");
        let mut cache = TableCache::new();
        let full =
            deconvolve(&spatial, Path::new("spatial"), &prepared, &reference.genes, &params, &mut cache, &|_| {})
                .expect("full");
        println!(
            "full mode with sigma search: {:.2} s ({} likelihood tables; test build)",
            t0.elapsed().as_secs_f64(),
            cache.computed
        );
        Some(Run { dir, spatial, reference, prepared, params, full, cache: Mutex::new(cache) })
    })
    .as_ref()
}

fn skipped() {
    println!("SKIPPED: ../shared/validation/rctd_slideseq is absent (GPL-3 validation pack, not in the repository)");
}

/// Runs another mode on the same inputs at the sigma chosen by the full run.
fn run_mode(r: &Run, mode: Mode) -> Deconvolution {
    let t = std::time::Instant::now();
    let params = Params { mode: Some(mode), ..r.params.clone() };
    let mut cache = r.cache.lock().unwrap_or_else(|e| e.into_inner());
    let out =
        deconvolve(&r.spatial, Path::new("spatial"), &r.prepared, &r.reference.genes, &params, &mut cache, &|_| {})
            .expect("mode run");
    println!("{mode:?} mode: {:.2} s (sigma search repeated, tables cached; test build)", t.elapsed().as_secs_f64());
    out
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn parity_with_rctd_filters_gene_lists_bulk_fit_and_sigma() {
    let Some(r) = run() else { return skipped() };
    let (spatial, full, dir) = (&r.spatial, &r.full, &r.dir);
    // Bead filter.
    let (_, wref) = named_rows(&dir.join("rctd_output/weights_full_normalized.csv"));
    let kept: Vec<&String> = spatial
        .cells
        .cell_id
        .iter()
        .zip(&full.spots)
        .filter(|(_, s)| s.dropped_reason.is_none())
        .map(|(c, _)| c)
        .collect();
    println!("beads kept: {} (RCTD {})", kept.len(), wref.len());
    assert_eq!(kept.len(), 71);
    assert!(kept.iter().all(|c| wref.contains_key(*c)));
    // Gene lists.
    let n_bulk = full.genes.len();
    println!("reg genes {} (RCTD 313), bulk genes {} (RCTD 340)", full.n_reg, n_bulk);
    println!("reg per type {:?}\nbulk per type {:?}", full.reg_per_type, full.bulk_per_type);
    assert_eq!((full.n_reg, n_bulk), (313, 340));
    // Bulk fit.
    let (_, fb) = named_rows(&dir.join("rctd_output/fitbulk_proportions.csv"));
    let mut max_bulk = 0.0f64;
    for (t, name) in full.cell_types.iter().enumerate() {
        let r: f64 = fb[name][0].parse().unwrap();
        max_bulk = max_bulk.max((r - full.bulk_weights[t]).abs());
    }
    println!("bulk weights max |diff| {max_bulk:.2e}");
    assert!(max_bulk < 1e-6);
    // Sigma path and likelihoods.
    for s in &full.sigma_path {
        println!("sigma {:.2}: nll {:.3} -> next {:.2}", s.sigma, s.nll, s.next_sigma);
    }
    let path: Vec<(f64, f64)> = full.sigma_path.iter().map(|s| (s.sigma, s.next_sigma)).collect();
    assert_eq!(path, vec![(1.0, 0.84), (0.84, 0.84)]);
    assert_eq!(full.sigma, Some(0.84));
    let (r1, r2) = (rel(full.sigma_path[0].nll, 1970.41846750024), rel(full.sigma_path[1].nll, 1964.498838749));
    println!("likelihood relative differences: {r1:.2e}, {r2:.2e}");
    assert!(r1 < 1e-3 && r2 < 1e-3);
}

#[test]
fn parity_with_rctd_full_weights() {
    let Some(r) = run() else { return skipped() };
    let (spatial, full, dir) = (&r.spatial, &r.full, &r.dir);
    let (wh, wref) = named_rows(&dir.join("rctd_output/weights_full_normalized.csv"));
    let (_, raw_ref) = named_rows(&dir.join("rctd_output/weights_full.csv"));
    let col: HashMap<&str, usize> = wh[1..].iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let (mut max_diff, mut max_raw_diff) = (0.0f64, 0.0f64);
    let mut dominant_agree = 0;
    for (i, s) in full.spots.iter().enumerate() {
        let Some(r) = wref.get(&spatial.cells.cell_id[i]) else { continue };
        let raw = &raw_ref[&spatial.cells.cell_id[i]];
        let theirs: Vec<f64> = full.cell_types.iter().map(|t| r[col[t.as_str()]].parse().unwrap()).collect();
        for &(t, w, p) in &s.proportions {
            max_diff = max_diff.max((p - theirs[t]).abs());
            let their_raw: f64 = raw[col[full.cell_types[t].as_str()]].parse().unwrap();
            max_raw_diff = max_raw_diff.max((w - their_raw).abs());
        }
        let ours_best = s.first_type.unwrap();
        let their_best = (0..theirs.len()).fold(0, |b, t| if theirs[t] > theirs[b] { t } else { b });
        dominant_agree += (ours_best == their_best) as usize;
    }
    println!(
        "full mode: max |normalised weight diff| {max_diff:.2e}, max |raw weight diff| {max_raw_diff:.2e}, \
         dominant type agrees on {dominant_agree}/71"
    );
    assert!(max_diff < 0.02);
    assert_eq!(dominant_agree, 71);
}

#[test]
fn parity_with_rctd_doublet_classes() {
    let Some(r) = run() else { return skipped() };
    let dbl = run_mode(r, Mode::Doublet);
    let (spatial, dir) = (&r.spatial, &r.dir);
    let (dh, dref) = named_rows(&dir.join("rctd_output/doublet_results.csv"));
    let (_, pref) = named_rows(&dir.join("rctd_output/doublet_pair_weights.csv"));
    let ci = |n: &str| dh[1..].iter().position(|h| h == n).unwrap();
    let (c_class, c_first, c_second, c_min, c_single) =
        (ci("spot_class"), ci("first_type"), ci("second_type"), ci("min_score"), ci("singlet_score"));
    let mut same_class = 0;
    let mut same_types = 0;
    let mut max_score_rel = 0.0f64;
    let mut max_pair_diff = 0.0f64;
    let mut mismatches = Vec::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, s) in dbl.spots.iter().enumerate() {
        let Some(r) = dref.get(&spatial.cells.cell_id[i]) else { continue };
        let class = s.spot_class.clone().unwrap();
        *counts.entry(class.clone()).or_default() += 1;
        if class == r[c_class] {
            same_class += 1;
        } else {
            mismatches.push(format!("{}: ours {class} theirs {}", spatial.cells.cell_id[i], r[c_class]));
        }
        let (f, sc) = (&dbl.cell_types[s.first_type.unwrap()], &dbl.cell_types[s.second_type.unwrap()]);
        same_types += (*f == r[c_first] && *sc == r[c_second]) as usize;
        let min_score: f64 = r[c_min].parse().unwrap();
        let singlet: f64 = r[c_single].parse().unwrap();
        // In the singlet class `nll` is the singlet score, otherwise the best pair score.
        let ours_singlet = if class == "singlet" { s.nll.unwrap() } else { s.nll.unwrap() + s.margin.unwrap() };
        let ours_min = ours_singlet - s.margin.unwrap();
        max_score_rel = max_score_rel.max(rel(ours_min, min_score));
        if r[c_class] != "reject" {
            max_score_rel = max_score_rel.max(rel(ours_singlet, singlet));
        }
        // Pair weights (first, second) of the doublet classes.
        if class != "singlet" && class == r[c_class] {
            let theirs: Vec<f64> = pref[&spatial.cells.cell_id[i]].iter().map(|v| v.parse().unwrap()).collect();
            for (p, t) in s.proportions.iter().zip(&theirs) {
                max_pair_diff = max_pair_diff.max((p.2 - t).abs());
            }
        }
    }
    println!(
        "doublet classes: {counts:?} (RCTD 43 singlet / 11 doublet_certain / 10 doublet_uncertain / 7 reject); \
         identical {same_class}/71, same (first, second) {same_types}/71, max rel score diff {max_score_rel:.2e}, \
         max pair weight diff {max_pair_diff:.2e}"
    );
    for m in &mismatches {
        println!("  {m}");
    }
    assert_eq!(same_class, 71);
    assert_eq!(same_types, 71);
    assert!(max_score_rel < 1e-3);
    assert!(max_pair_diff < 0.02);
}

#[test]
fn parity_with_rctd_multi_types() {
    let Some(r) = run() else { return skipped() };
    let multi = run_mode(r, Mode::Multi);
    let rows = read_csv(&r.dir.join("rctd_output/multi_sub_weights.csv"));
    // barcode -> [(cell type, sub weight)] in RCTD's order.
    let mut theirs: HashMap<&str, Vec<(&str, f64)>> = HashMap::new();
    for row in &rows[1..] {
        theirs.entry(row[0].as_str()).or_default().push((row[1].as_str(), row[2].parse().unwrap()));
    }
    let (mut same_types, mut max_diff) = (0, 0.0f64);
    let mut sizes = [0usize; 5];
    for (i, s) in multi.spots.iter().enumerate() {
        let Some(t) = theirs.get(r.spatial.cells.cell_id[i].as_str()) else { continue };
        sizes[s.proportions.len().min(4)] += 1;
        let ours: Vec<(&str, f64)> = s.proportions.iter().map(|p| (multi.cell_types[p.0].as_str(), p.2)).collect();
        if ours.len() == t.len() && ours.iter().zip(t).all(|(a, b)| a.0 == b.0) {
            same_types += 1;
            for (a, b) in ours.iter().zip(t) {
                max_diff = max_diff.max((a.1 - b.1).abs());
            }
        }
    }
    println!(
        "multi mode: beads with 1/2/3 types {:?} (RCTD 51/19/1); same types {same_types}/71, max sub-weight diff \
         {max_diff:.2e}",
        &sizes[1..4]
    );
    assert_eq!(same_types, 71);
    assert!(max_diff < 0.02);
}
