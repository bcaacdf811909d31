//! Accuracy on simulated spots (Spotless patterns): the Poisson-lognormal model beats NNLS on RMSE for
//! every pattern; results do not depend on the number of threads.

use std::path::Path;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{Column, Dataset};
use tmescope_deconv::likelihood::TableCache;
use tmescope_deconv::synth::{dataset, evaluate, split_cells, synthesize, synthetic_reference, Pattern, SynthOptions};
use tmescope_deconv::{deconvolve, prepare_reference, Method, Mode, Params};

struct Case {
    counts: CsrCounts,
    types: Vec<usize>,
    pool: Vec<usize>,
    genes: Vec<String>,
    reference: Dataset,
}

fn case() -> Case {
    let k = 5;
    let (counts, types) = synthetic_reference(k, 120, 60, 2000.0, 21);
    let (pool, keep) = split_cells(&types, k, 3);
    let genes: Vec<String> = (0..120).map(|g| format!("G{g}")).collect();
    let labels = Column::Text(keep.iter().map(|&i| Some(format!("t{}", types[i]))).collect());
    let reference = dataset(counts.select_rows(&keep), &genes, "simulated-visium", vec![("cell_type".into(), labels)]);
    Case { counts, types, pool, genes, reference }
}

fn params() -> Params {
    let mut p = Params { mode: Some(Mode::Full), sigma: Some(0.6), ..Default::default() };
    p.reference.min_cells_per_type = 10;
    p
}

#[test]
fn rctd_beats_nnls_on_every_pattern() {
    let c = case();
    let p = params();
    let prepared = prepare_reference(&c.reference, Path::new("ref"), &p).unwrap();
    let mut cache = TableCache::new();
    for pattern in Pattern::ALL {
        let opts = SynthOptions { n_spots: 120, mean_total: 600.0, sd_total: 150.0, seed: 5, ..Default::default() };
        let spots = synthesize(&c.counts, &c.types, 5, &c.pool, pattern, &opts);
        let spatial = dataset(spots.counts.clone(), &c.genes, "simulated-visium", vec![]);
        let mut rmse = Vec::new();
        for method in [Method::Rctd, Method::Nnls] {
            let res = deconvolve(
                &spatial,
                Path::new("spots"),
                &prepared,
                &c.reference.genes,
                &Params { method, ..p.clone() },
                &mut cache,
                &|_| {},
            )
            .unwrap();
            let mut truth = Vec::new();
            let mut pred = Vec::new();
            for (i, s) in res.spots.iter().enumerate() {
                if s.dropped_reason.is_some() {
                    continue;
                }
                let mut row = vec![0.0; 5];
                for &(t, _, q) in &s.proportions {
                    // Reference types are named t0..t4 in the same order as the simulation.
                    let idx: usize = res.cell_types[t][1..].parse().unwrap();
                    row[idx] = q;
                }
                pred.extend(row);
                truth.extend_from_slice(&spots.truth[i * 5..(i + 1) * 5]);
            }
            let m = evaluate(&truth, &pred, 5);
            println!("{} {method:?}: {m:?}", pattern.name());
            rmse.push(m.rmse);
        }
        assert!(rmse[0] < rmse[1], "{}: rctd RMSE {} not below nnls {}", pattern.name(), rmse[0], rmse[1]);
    }
}

#[test]
fn results_identical_for_one_and_two_threads() {
    let c = case();
    let p = Params { sigma: None, max_sigma_rounds: 2, mode: Some(Mode::Doublet), ..params() };
    let opts = SynthOptions { n_spots: 40, mean_total: 400.0, sd_total: 100.0, ..Default::default() };
    let spots = synthesize(&c.counts, &c.types, 5, &c.pool, Pattern::Dominant, &opts);
    let spatial = dataset(spots.counts, &c.genes, "simulated-visium", vec![]);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let prepared = prepare_reference(&c.reference, Path::new("ref"), &p).unwrap();
            let res = deconvolve(
                &spatial,
                Path::new("spots"),
                &prepared,
                &c.reference.genes,
                &p,
                &mut TableCache::new(),
                &|_| {},
            )
            .unwrap();
            (res.spots, res.sigma_path, res.sigma)
        })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one, two);
}
