//! Simulated spots with known composition (the "synthspot" protocol of Sang-aram et al., "Spotless,
//! a reproducible pipeline for benchmarking cell type deconvolution in spatial transcriptomics",
//! eLife 12:RP88431, 2024), and the accuracy metrics of that benchmark.
//!
//! Spots are split into regions; each region has cell-type frequencies set by an abundance
//! [`Pattern`]. Per spot the number of cells is uniform in `min_cells..=max_cells`, their types are
//! drawn from the region's frequencies, cells of each type are drawn from a pool of reference cells
//! (held out of the reference used to deconvolve), their counts are summed and, when the total
//! exceeds `mean + sd`, thinned to a total drawn from `N(mean, sd)`. Truth = cells per type / cells.
//! Time O(spots x cells per spot x genes per cell); memory O(output non-zeros).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::seed::GOLDEN_GAMMA;

/// Abundance patterns of the Spotless benchmark used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Every type equally frequent in every region.
    Uniform,
    /// One type makes up ~70% of the cells in every region; the others share the rest.
    Dominant,
    /// One type is rare (~3% of cells) everywhere; the others are equally frequent.
    Rare,
    /// One reference type never occurs in the spots; the others are equally frequent with
    /// region-specific variation.
    MissingType,
}

impl Pattern {
    /// All patterns, in report order.
    pub const ALL: [Pattern; 4] = [Pattern::Uniform, Pattern::Dominant, Pattern::Rare, Pattern::MissingType];

    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            Pattern::Uniform => "uniform",
            Pattern::Dominant => "dominant",
            Pattern::Rare => "rare",
            Pattern::MissingType => "missing-type",
        }
    }
}

/// Options of [`synthesize`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SynthOptions {
    /// Number of spots.
    pub n_spots: usize,
    /// Number of regions.
    pub n_regions: usize,
    /// Fewest cells per spot (2).
    pub min_cells: usize,
    /// Most cells per spot (10).
    pub max_cells: usize,
    /// Mean spot total after downsampling (20,000 for Visium).
    pub mean_total: f64,
    /// Standard deviation of the spot total (5,000 for Visium).
    pub sd_total: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            n_spots: 500,
            n_regions: 5,
            min_cells: 2,
            max_cells: 10,
            mean_total: 20_000.0,
            sd_total: 5_000.0,
            seed: 1,
        }
    }
}

/// Simulated spots.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpots {
    /// Spots x genes counts.
    pub counts: CsrCounts,
    /// Spots x types true proportions (row-major).
    pub truth: Vec<f64>,
    /// Region of each spot.
    pub region: Vec<usize>,
}
/// Wraps simulated counts as a dataset: cells `c0, c1, ...` of sample `s` without coordinates, genes by
/// name, the given platform and extra cell columns (e.g. `cell_type` for a reference).
pub fn dataset(counts: CsrCounts, genes: &[String], platform: &str, extra: Vec<(String, Column)>) -> Dataset {
    let n = counts.n_rows;
    Dataset {
        cells: CellTable {
            cell_id: (0..n).map(|i| format!("c{i}")).collect(),
            sample: vec!["s".into(); n],
            x: vec![f64::NAN; n],
            y: vec![f64::NAN; n],
            z: None,
            extra,
        },
        genes: GeneTable::from_names(genes.to_vec()),
        counts,
        platform: platform.into(),
        coordinate_unit: "none".into(),
        notes: vec![],
    }
}

/// Splits each type's cells in two halves (seeded): cells to build spots from, and the reference.
pub fn split_cells(cell_type: &[usize], n_types: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_5EED);
    let (mut pool, mut reference) = (Vec::new(), Vec::new());
    for t in 0..n_types {
        let mut cells: Vec<usize> = (0..cell_type.len()).filter(|&i| cell_type[i] == t).collect();
        // Fisher-Yates shuffle.
        for i in (1..cells.len()).rev() {
            let j = rng.random_range(0..=i);
            cells.swap(i, j);
        }
        let half = cells.len() / 2;
        pool.extend_from_slice(&cells[..half]);
        reference.extend_from_slice(&cells[half..]);
    }
    pool.sort_unstable();
    reference.sort_unstable();
    (pool, reference)
}

/// Region x type frequencies for a pattern (rows sum to 1). The special type is type 0 after a
/// seeded choice, returned second.
pub fn region_frequencies(pattern: Pattern, n_types: usize, n_regions: usize, seed: u64) -> (Vec<Vec<f64>>, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xF00D);
    let special = rng.random_range(0..n_types);
    let mut out = Vec::with_capacity(n_regions);
    for _ in 0..n_regions {
        let mut f: Vec<f64> = match pattern {
            Pattern::Uniform => vec![1.0; n_types],
            Pattern::Dominant => {
                let rest = 0.3 / (n_types - 1) as f64;
                (0..n_types).map(|t| if t == special { 0.7 } else { rest }).collect()
            }
            Pattern::Rare => {
                let rest = 0.97 / (n_types - 1) as f64;
                (0..n_types).map(|t| if t == special { 0.03 } else { rest }).collect()
            }
            Pattern::MissingType => {
                (0..n_types).map(|t| if t == special { 0.0 } else { 0.5 + rng.random::<f64>() }).collect()
            }
        };
        let s: f64 = f.iter().sum();
        f.iter_mut().for_each(|v| *v /= s);
        out.push(f);
    }
    (out, special)
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A binomial draw: exact (Bernoulli sum) below 30 trials, normal approximation above.
fn binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    if n < 30 {
        (0..n).filter(|_| rng.random::<f64>() < p).count() as u64
    } else {
        let m = n as f64 * p;
        let sd = (m * (1.0 - p)).sqrt();
        (m + sd * standard_normal(rng)).round().clamp(0.0, n as f64) as u64
    }
}

/// Builds spots from `counts` (cells x genes) of the `pool` cells with types `cell_type`.
pub fn synthesize(
    counts: &CsrCounts,
    cell_type: &[usize],
    n_types: usize,
    pool: &[usize],
    pattern: Pattern,
    opts: &SynthOptions,
) -> SyntheticSpots {
    let (freqs, _) = region_frequencies(pattern, n_types, opts.n_regions, opts.seed);
    let by_type: Vec<Vec<usize>> =
        (0..n_types).map(|t| pool.iter().copied().filter(|&i| cell_type[i] == t).collect()).collect();
    let mut trip = Vec::new();
    let mut truth = vec![0.0; opts.n_spots * n_types];
    let mut region = Vec::with_capacity(opts.n_spots);
    let mut acc = vec![0.0f64; counts.n_cols];
    for s in 0..opts.n_spots {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed.wrapping_mul(GOLDEN_GAMMA) ^ (s as u64 + 1));
        let r = s * opts.n_regions / opts.n_spots.max(1);
        region.push(r);
        let n_cells = rng.random_range(opts.min_cells..=opts.max_cells);
        acc.iter_mut().for_each(|v| *v = 0.0);
        let mut used = 0;
        for _ in 0..n_cells {
            let u: f64 = rng.random();
            let mut c = 0.0;
            let mut t = n_types - 1;
            for (k, f) in freqs[r].iter().enumerate() {
                c += f;
                if u < c {
                    t = k;
                    break;
                }
            }
            if by_type[t].is_empty() {
                continue;
            }
            let cell = by_type[t][rng.random_range(0..by_type[t].len())];
            for (g, v) in counts.row_iter(cell) {
                acc[g as usize] += v.round();
            }
            truth[s * n_types + t] += 1.0;
            used += 1;
        }
        if used > 0 {
            truth[s * n_types..(s + 1) * n_types].iter_mut().for_each(|v| *v /= used as f64);
        }
        let total: f64 = acc.iter().sum();
        let scale = if total > opts.mean_total + opts.sd_total {
            let target = (opts.mean_total + opts.sd_total * standard_normal(&mut rng)).max(1.0);
            (target / total).min(1.0)
        } else {
            1.0
        };
        for (g, &v) in acc.iter().enumerate() {
            if v > 0.0 {
                let x = if scale < 1.0 { binomial(&mut rng, v as u64, scale) as f64 } else { v };
                if x > 0.0 {
                    trip.push((s as u32, g as u32, x));
                }
            }
        }
    }
    let counts = CsrCounts::from_triplets(opts.n_spots, counts.n_cols, trip, true)
        .unwrap_or_else(|_| CsrCounts::zeros(opts.n_spots, counts.n_cols));
    SyntheticSpots { counts, truth, region }
}

/// Accuracy of predicted proportions against the truth (means over spots).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Metrics {
    /// Root mean squared error per spot, averaged.
    pub rmse: f64,
    /// Jensen-Shannon divergence (base 2) per spot, averaged.
    pub jsd: f64,
    /// Pearson correlation per spot, averaged over spots where it is defined.
    pub pearson: f64,
    /// Area under the precision-recall curve of "type present" ranked by predicted proportion.
    pub aupr: f64,
    /// Fraction of spots whose largest predicted proportion is a largest true one.
    pub dominant_accuracy: f64,
    /// Spots evaluated.
    pub n_spots: usize,
}

/// Computes [`Metrics`] over spots (rows of `truth` and `pred`, `k` columns each).
pub fn evaluate(truth: &[f64], pred: &[f64], k: usize) -> Metrics {
    let n = truth.len() / k;
    let (mut rmse, mut jsd, mut pear, mut n_pear, mut dom) = (0.0, 0.0, 0.0, 0usize, 0usize);
    let mut ranked: Vec<(f64, bool)> = Vec::with_capacity(truth.len());
    for s in 0..n {
        let p = &truth[s * k..(s + 1) * k];
        let q = &pred[s * k..(s + 1) * k];
        rmse += (p.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / k as f64).sqrt();
        let kl = |a: &[f64], m: &[f64]| {
            a.iter().zip(m).filter(|(x, _)| **x > 0.0).map(|(x, y)| x * (x / y).log2()).sum::<f64>()
        };
        let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| 0.5 * (a + b)).collect();
        jsd += 0.5 * kl(p, &m) + 0.5 * kl(q, &m);
        let (mp, mq) = (p.iter().sum::<f64>() / k as f64, q.iter().sum::<f64>() / k as f64);
        let cov: f64 = p.iter().zip(q).map(|(a, b)| (a - mp) * (b - mq)).sum();
        let (vp, vq): (f64, f64) = (p.iter().map(|a| (a - mp).powi(2)).sum(), q.iter().map(|b| (b - mq).powi(2)).sum());
        if vp > 0.0 && vq > 0.0 {
            pear += cov / (vp * vq).sqrt();
            n_pear += 1;
        }
        let arg = |v: &[f64]| (0..k).fold(0, |b, i| if v[i] > v[b] { i } else { b });
        let tmax = p.iter().cloned().fold(f64::MIN, f64::max);
        if p[arg(q)] >= tmax - 1e-12 {
            dom += 1;
        }
        ranked.extend(q.iter().zip(p).map(|(&score, &t)| (score, t > 0.0)));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = ranked.iter().filter(|r| r.1).count();
    let mut aupr = 0.0;
    let mut tp = 0;
    for (i, r) in ranked.iter().enumerate() {
        if r.1 {
            tp += 1;
            aupr += tp as f64 / (i + 1) as f64;
        }
    }
    if positives > 0 {
        aupr /= positives as f64;
    }
    let nf = n.max(1) as f64;
    Metrics {
        rmse: rmse / nf,
        jsd: jsd / nf,
        pearson: if n_pear > 0 { pear / n_pear as f64 } else { f64::NAN },
        aupr,
        dominant_accuracy: dom as f64 / nf,
        n_spots: n,
    }
}

/// A synthetic labelled reference: `n_types` types with gamma-distributed profiles over `n_genes`
/// genes (a few markers per type), `cells_per_type` cells each with totals around `mean_total` and
/// per-cell gene-level overdispersion. Returns counts (cells x genes) and the type of each cell.
pub fn synthetic_reference(
    n_types: usize,
    n_genes: usize,
    cells_per_type: usize,
    mean_total: f64,
    seed: u64,
) -> (CsrCounts, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Profiles: a shared baseline times a type-specific log-normal factor; markers boosted.
    let base: Vec<f64> = (0..n_genes).map(|_| (standard_normal(&mut rng) * 1.0).exp()).collect();
    let mut mu = vec![0.0; n_types * n_genes];
    for t in 0..n_types {
        for g in 0..n_genes {
            let marker = if g % n_types == t { 3.0 } else { 0.0 };
            mu[t * n_genes + g] = base[g] * (standard_normal(&mut rng) * 0.8 + marker * rng.random::<f64>()).exp();
        }
        let s: f64 = mu[t * n_genes..(t + 1) * n_genes].iter().sum();
        mu[t * n_genes..(t + 1) * n_genes].iter_mut().for_each(|v| *v /= s);
    }
    let mut trip = Vec::new();
    let mut types = Vec::new();
    for t in 0..n_types {
        for _ in 0..cells_per_type {
            let c = types.len() as u32;
            let total = mean_total * (0.3 * standard_normal(&mut rng)).exp();
            for g in 0..n_genes {
                // Per-cell biological noise (log-normal, sd 0.5) then Poisson sampling.
                let lam = total * mu[t * n_genes + g] * (0.5 * standard_normal(&mut rng)).exp();
                let x = poisson(&mut rng, lam);
                if x > 0 {
                    trip.push((c, g as u32, x as f64));
                }
            }
            types.push(t);
        }
    }
    let n = types.len();
    (CsrCounts::from_triplets(n, n_genes, trip, true).unwrap_or_else(|_| CsrCounts::zeros(n, n_genes)), types)
}

fn poisson(rng: &mut ChaCha8Rng, lam: f64) -> u64 {
    if lam < 30.0 {
        // Knuth's multiplication method.
        let l = (-lam).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= rng.random::<f64>();
            if p <= l {
                return k;
            }
            k += 1;
        }
    } else {
        (lam + lam.sqrt() * standard_normal(rng)).round().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_of_perfect_and_wrong_predictions() {
        let truth = [0.5, 0.5, 0.0, 1.0, 0.0, 0.0];
        let m = evaluate(&truth, &truth, 3);
        assert!(m.rmse.abs() < 1e-12 && m.jsd.abs() < 1e-12 && (m.aupr - 1.0).abs() < 1e-12);
        assert_eq!(m.dominant_accuracy, 1.0);
        let wrong = [0.0, 0.0, 1.0, 0.0, 1.0, 0.0];
        let m = evaluate(&truth, &wrong, 3);
        assert!(m.rmse > 0.5 && (m.jsd - 1.0).abs() < 1e-12 && m.dominant_accuracy == 0.0);
    }

    #[test]
    fn spots_follow_the_pattern_and_downsample() {
        let (counts, types) = synthetic_reference(4, 60, 20, 2000.0, 3);
        let (pool, reference) = split_cells(&types, 4, 1);
        assert_eq!(pool.len() + reference.len(), types.len());
        assert!(pool.iter().all(|p| reference.binary_search(p).is_err()));
        let opts = SynthOptions { n_spots: 50, mean_total: 3000.0, sd_total: 500.0, ..Default::default() };
        let s = synthesize(&counts, &types, 4, &pool, Pattern::MissingType, &opts);
        let (_, missing) = region_frequencies(Pattern::MissingType, 4, 5, 1);
        assert!((0..50).all(|i| s.truth[i * 4 + missing] == 0.0));
        assert!((0..50).all(|i| (s.truth[i * 4..i * 4 + 4].iter().sum::<f64>() - 1.0).abs() < 1e-12));
        assert!(s.counts.row_totals().iter().all(|&t| t <= 3500.0 + 5.0 * 500.0));
    }
}
