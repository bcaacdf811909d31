//! The RCTD-style Poisson-lognormal model: platform effect, sigma choice and the per-spot modes
//! (Cable et al., "Robust decomposition of cell type mixtures in spatial transcriptomics",
//! Nat Biotechnol 40:517-526, 2022). Implemented from the paper and `DECONVOLUTION.md`.
//!
//! For spot i and gene j, `Y_ij ~ Poisson(N_i exp(eps_ij) sum_k w_ik mu~_kj)` with `eps ~ p_sigma`
//! (see [`crate::likelihood`]). Weights are fitted by [`crate::solver::solve_weights`].
//!
//! - [`fit_bulk`] / [`normalise_profiles`]: pool all spots into a pseudo-bulk, fit type weights by
//!   least squares in log space and rescale the profiles so their mixture matches the bulk
//!   (removes gene-wise platform effects between the reference and the spatial technology).
//! - [`choose_sigma`]: alternate full fits and a grid search over sigma on a seeded sample of spots.
//! - [`fit_doublet`], [`fit_multi`]: the doublet and multi-type modes (single cells: [`crate::labels`]).
//!
//! Each spot costs O(iterations x (G K^2 + K^3)) for G genes and K types; spots run in parallel.

use crate::likelihood::LikelihoodTable;
use crate::solver::{self, Loss, SolverOptions, WeightFit, Workspace};

/// Options of the spot modes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ModeOptions {
    /// Likelihood gap a doublet must beat the best singlet by (20).
    pub doublet_threshold: f64,
    /// Pairs within this of the best pair make a type unconfident (5).
    pub confidence_threshold: f64,
    /// Maximum number of types in multi mode (4).
    pub max_multi_types: usize,
    /// Weight above which a type is a doublet/multi candidate (0.01).
    pub candidate_weight: f64,
    /// Labels mode: types kept by the Poisson screen for the likelihood fits (4; 0 keeps every type).
    pub label_candidates: usize,
}

impl Default for ModeOptions {
    fn default() -> Self {
        ModeOptions {
            doublet_threshold: 20.0,
            confidence_threshold: 5.0,
            max_multi_types: 4,
            candidate_weight: 0.01,
            label_candidates: 4,
        }
    }
}

/// Full-fit options (50 iterations, tolerance 1e-3, step 0.3).
pub const FULL: SolverOptions = SolverOptions { max_iter: 50, tolerance: 1e-3, step: 0.3 };
/// Options when scoring a subset of types (25 iterations).
pub const SCORE: SolverOptions = SolverOptions { max_iter: 25, tolerance: 1e-3, step: 0.3 };
/// Pseudo-bulk fit options (100 iterations, tolerance 1e-4).
pub const BULK_FIT: SolverOptions = SolverOptions { max_iter: 100, tolerance: 1e-4, step: 0.3 };

/// Buffers of one worker thread.
#[derive(Debug, Default)]
pub struct SpotWorkspace {
    /// Solver buffers.
    pub solver: Workspace,
    s: Vec<f64>,
    sub: Vec<f64>,
    lambda: Vec<f64>,
}

/// Fits bulk weights `p` minimising `sum_j (ln (X p)_j - ln b_j)^2` with `X = mu * total_umi`.
/// `mu_bulk` is genes x types (row-major), `bulk` the pseudo-bulk counts of the same genes.
pub fn fit_bulk(mu_bulk: &[f64], n_types: usize, bulk: &[f64], total_umi: f64) -> WeightFit {
    let x: Vec<f64> = mu_bulk.iter().map(|v| v * total_umi).collect();
    solver::solve_weights(&x, n_types, bulk, total_umi, Loss::SquaredLog, &BULK_FIT, &mut Workspace::default())
}

/// Platform-normalised profiles: `mu~_kj = mu_kj (b_j / total_umi) / sum_k mu_kj p^_k` with `p^` the
/// normalised bulk weights. Genes whose mixture is 0 keep their profile.
pub fn normalise_profiles(mu: &[f64], n_types: usize, bulk: &[f64], total_umi: f64, p: &[f64]) -> Vec<f64> {
    let sum_p: f64 = p.iter().sum();
    let mut out = mu.to_vec();
    for (j, row) in out.chunks_mut(n_types).enumerate() {
        let avg: f64 = row.iter().zip(p).map(|(m, w)| m * w / sum_p).sum();
        if avg > 0.0 && avg.is_finite() {
            let f = (bulk[j] / total_umi) / avg;
            row.iter_mut().for_each(|v| *v *= f);
        }
    }
    out
}

/// Fills `ws.s` with `n_umi * mu` restricted to the columns `types` (all when `None`).
fn design<'a>(
    mu: &[f64],
    n_types: usize,
    types: Option<&[usize]>,
    n_umi: f64,
    buf: &'a mut Vec<f64>,
) -> (&'a [f64], usize) {
    buf.clear();
    match types {
        None => {
            buf.extend(mu.iter().map(|v| v * n_umi));
            (buf.as_slice(), n_types)
        }
        Some(t) => {
            for row in mu.chunks(n_types) {
                buf.extend(t.iter().map(|&k| row[k] * n_umi));
            }
            (buf.as_slice(), t.len())
        }
    }
}

/// Full-mode fit of one spot: `mu` genes x types, `y` its counts on the same genes.
pub fn fit_full(
    mu: &[f64],
    n_types: usize,
    y: &[f64],
    n_umi: f64,
    table: &LikelihoodTable,
    ws: &mut SpotWorkspace,
) -> WeightFit {
    let (s, k) = design(mu, n_types, None, n_umi, &mut ws.s);
    solver::solve_weights(s, k, y, n_umi, Loss::Likelihood(table), &FULL, &mut ws.solver)
}

/// Negative log-likelihood of the prediction `S w` (floored at 1e-4).
pub fn spot_nll(s: &[f64], k: usize, w: &[f64], y: &[f64], table: &LikelihoodTable, lambda: &mut Vec<f64>) -> f64 {
    lambda.clear();
    lambda.extend(s.chunks(k).map(|row| row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>().max(1e-4)));
    solver::nll(table, y, lambda)
}

/// Fits the spot with only the types `types` (25 iterations) and returns (NLL, weights, converged).
pub fn score_types(
    mu: &[f64],
    n_types: usize,
    types: &[usize],
    y: &[f64],
    n_umi: f64,
    table: &LikelihoodTable,
    opts: &SolverOptions,
    ws: &mut SpotWorkspace,
) -> (f64, Vec<f64>, bool) {
    let (s, k) = design(mu, n_types, Some(types), n_umi, &mut ws.sub);
    let fit = solver::solve_weights(s, k, y, n_umi, Loss::Likelihood(table), opts, &mut ws.solver);
    let nll = spot_nll(s, k, &fit.weights, y, table, &mut ws.lambda);
    (nll, fit.weights, fit.converged)
}

/// Doublet-mode result of one spot.
#[derive(Debug, Clone, PartialEq)]
pub struct DoubletResult {
    /// Full-mode weights (unnormalised).
    pub full_weights: Vec<f64>,
    /// Whether the full fit converged.
    pub conv_all: bool,
    /// `singlet`, `doublet_certain`, `doublet_uncertain` or `reject`.
    pub spot_class: &'static str,
    /// Index of the first type.
    pub first_type: usize,
    /// Index of the second type.
    pub second_type: usize,
    /// NLL of the best pair.
    pub min_score: f64,
    /// NLL of the first type alone.
    pub singlet_score: f64,
    /// Normalised weights of (first, second) from the pair fit.
    pub pair_weights: [f64; 2],
    /// Whether the pair fit converged.
    pub conv_doublet: bool,
}

/// Doublet mode (Cable et al. 2022): full fit, candidates = types with weight > 0.01, pair scores of
/// every candidate pair, singlet scores of the types the class needs, classes by likelihood gaps.
///
/// The reported pair weights come from a fit of the chosen pair with the full-fit iteration cap (50);
/// when the 25-iteration scoring fit of that pair converged, it is that fit (the solver is
/// deterministic and the first 25 iterations are the same), so it is not repeated.
#[allow(clippy::too_many_arguments)]
pub fn fit_doublet(
    mu: &[f64],
    n_types: usize,
    y: &[f64],
    n_umi: f64,
    table: &LikelihoodTable,
    opts: &ModeOptions,
    ws: &mut SpotWorkspace,
) -> DoubletResult {
    let full = fit_full(mu, n_types, y, n_umi, table, ws);
    let mut cand = candidate_types(&full.weights, opts);
    if cand.len() == 1 {
        cand.push(if cand[0] == 0 { 1 } else { 0 });
    }
    let nc = cand.len();
    let mut scores = vec![0.0; nc * nc];
    let (mut min_score, mut best) = (f64::INFINITY, (0, 1));
    // Weights of the best pair's scoring fit, when it converged.
    let mut best_fit: Option<Vec<f64>> = None;
    for a in 0..nc {
        for b in a + 1..nc {
            let (s, w, converged) = score_types(mu, n_types, &[cand[a], cand[b]], y, n_umi, table, &SCORE, ws);
            scores[a * nc + b] = s;
            scores[b * nc + a] = s;
            if s < min_score {
                min_score = s;
                best = (a, b);
                best_fit = converged.then_some(w);
            }
        }
    }
    // A type is confident when every pair scoring within the threshold of the best contains it.
    let confident = |t: usize| {
        (0..nc).all(|a| {
            (a + 1..nc).all(|b| scores[a * nc + b] >= min_score + opts.confidence_threshold || a == t || b == t)
        })
    };
    let mut singlet = vec![f64::NAN; nc];
    let mut singlet_of = |i: usize, ws: &mut SpotWorkspace| {
        if singlet[i].is_nan() {
            singlet[i] = score_types(mu, n_types, &[cand[i]], y, n_umi, table, &SCORE, ws).0;
        }
        singlet[i]
    };
    let (mut first, mut second) = best;
    let (c1, c2) = (confident(first), confident(second));
    let (mut class, singlet_score) = match (c1, c2) {
        (false, false) => ("reject", min_score + 2.0 * opts.doublet_threshold),
        (true, false) => ("doublet_uncertain", singlet_of(first, ws)),
        (false, true) => {
            std::mem::swap(&mut first, &mut second);
            ("doublet_uncertain", singlet_of(first, ws))
        }
        (true, true) => {
            let (s1, s2) = (singlet_of(first, ws), singlet_of(second, ws));
            if s2 < s1 {
                std::mem::swap(&mut first, &mut second);
            }
            ("doublet_certain", s1.min(s2))
        }
    };
    if singlet_score - min_score < opts.doublet_threshold {
        class = "singlet";
    }
    let (pw, conv_doublet) = match best_fit {
        // The scoring fit of (cand[best.0], cand[best.1]) converged: the 50-iteration fit is the same.
        Some(w) if (first, second) == best => (w, true),
        Some(w) if (second, first) == best => (vec![w[1], w[0]], true),
        _ => {
            let (_, pw, conv) = score_types(mu, n_types, &[cand[first], cand[second]], y, n_umi, table, &FULL, ws);
            (pw, conv)
        }
    };
    let sum: f64 = pw.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    DoubletResult {
        full_weights: full.weights,
        conv_all: full.converged,
        spot_class: class,
        first_type: cand[first],
        second_type: cand[second],
        min_score,
        singlet_score,
        pair_weights: [pw[0] / sum, pw[1] / sum],
        conv_doublet,
    }
}

/// Multi-mode result of one spot.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiResult {
    /// Full-mode weights (unnormalised).
    pub full_weights: Vec<f64>,
    /// Whether the full fit converged.
    pub conv_all: bool,
    /// Types chosen, in the order added.
    pub types: Vec<usize>,
    /// Normalised weights of the chosen types.
    pub sub_weights: Vec<f64>,
    /// Whether each chosen type is confident (no swap with another candidate scores within the
    /// confidence threshold).
    pub confident: Vec<bool>,
    /// NLL of the chosen set.
    pub score: f64,
}

/// The candidate types of doublet and multi mode: those with full-fit weight above
/// `opts.candidate_weight`, or the first three types when none is.
fn candidate_types(weights: &[f64], opts: &ModeOptions) -> Vec<usize> {
    let cand: Vec<usize> = (0..weights.len()).filter(|&k| weights[k] > opts.candidate_weight).collect();
    if cand.is_empty() {
        (0..weights.len().min(3)).collect()
    } else {
        cand
    }
}

/// Multi mode: greedily add candidate types while the NLL improves by more than the doublet
/// threshold, up to `max_multi_types`.
pub fn fit_multi(
    mu: &[f64],
    n_types: usize,
    y: &[f64],
    n_umi: f64,
    table: &LikelihoodTable,
    opts: &ModeOptions,
    ws: &mut SpotWorkspace,
) -> MultiResult {
    let full = fit_full(mu, n_types, y, n_umi, table, ws);
    let cand = candidate_types(&full.weights, opts);
    let mut chosen: Vec<usize> = Vec::new();
    let mut current = f64::INFINITY;
    let mut trial = Vec::with_capacity(opts.max_multi_types);
    while chosen.len() < opts.max_multi_types.min(cand.len()) {
        let mut best = (f64::INFINITY, usize::MAX);
        for &c in cand.iter().filter(|c| !chosen.contains(c)) {
            trial.clear();
            trial.extend_from_slice(&chosen);
            trial.push(c);
            let (s, _, _) = score_types(mu, n_types, &trial, y, n_umi, table, &SCORE, ws);
            if s < best.0 {
                best = (s, c);
            }
        }
        if best.1 == usize::MAX || (current.is_finite() && current - best.0 < opts.doublet_threshold) {
            break;
        }
        chosen.push(best.1);
        current = best.0;
    }
    let mut confident = Vec::with_capacity(chosen.len());
    for i in 0..chosen.len() {
        let mut conf = true;
        for &c in cand.iter().filter(|c| !chosen.contains(c)) {
            trial.clear();
            trial.extend_from_slice(&chosen);
            trial[i] = c;
            let (s, _, _) = score_types(mu, n_types, &trial, y, n_umi, table, &SCORE, ws);
            if s < current + opts.confidence_threshold {
                conf = false;
                break;
            }
        }
        confident.push(conf);
    }
    let (_, w, _) = score_types(mu, n_types, &chosen, y, n_umi, table, &FULL, ws);
    let sum: f64 = w.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    MultiResult {
        full_weights: full.weights,
        conv_all: full.converged,
        types: chosen,
        sub_weights: w.iter().map(|v| v / sum).collect(),
        confident,
        score: current,
    }
}

/// One round of the sigma search: returns the sigma (hundredths) among the +/- 8 grid neighbours of
/// `current` minimising `min_c NLL(c * prediction)` for `c in {0.8, ..., 1.2}`, and the score of each.
/// `predictions` and `counts` are the flattened (spot, gene) pairs; `tables_for(sigmas, knot_rows)`
/// supplies the tables of `sigmas` able to evaluate the points whose rows per knot are `knot_rows`
/// (see [`crate::likelihood::knot_rows_needed`]).
pub fn best_sigma<F>(current: u32, predictions: &[f64], counts: &[f64], tables_for: F) -> (u32, Vec<(u32, f64)>)
where
    F: FnOnce(&[u32], &[usize]) -> Vec<std::sync::Arc<LikelihoodTable>>,
{
    use rayon::prelude::*;
    const FACTORS: [f64; 5] = [0.8, 0.9, 1.0, 1.1, 1.2];
    let grid = crate::likelihood::sigma_grid();
    let pos = grid.iter().position(|&s| s == current).unwrap_or_else(|| {
        grid.iter().enumerate().min_by_key(|(_, s)| (**s as i64 - current as i64).abs()).map(|(i, _)| i).unwrap_or(0)
    });
    let lo = pos.saturating_sub(8);
    let hi = (pos + 8).min(grid.len() - 1);
    let sigmas = &grid[lo..=hi];
    // Every point is evaluated at u = ln(prediction) + ln(factor): one logarithm per point, not one per
    // point, factor and sigma.
    let ln_factors = FACTORS.map(f64::ln);
    let us: Vec<f64> = predictions.iter().map(|&l| l.max(1e-4).ln()).collect();
    let u_floor = crate::likelihood::X_MIN.ln();
    let knot_rows = crate::likelihood::knot_rows_needed(
        us.iter().zip(counts).flat_map(|(&u, &k)| ln_factors.iter().map(move |&lc| (k as usize, u + lc))),
    );
    let tables = tables_for(sigmas, &knot_rows);
    let mut scores = Vec::new();
    for (&sigma, table) in sigmas.iter().zip(&tables) {
        let best = ln_factors
            .iter()
            .map(|&lc| {
                // Fixed-size chunks reduced in order: the sum does not depend on the thread count.
                let parts: Vec<f64> = us
                    .par_chunks(4096)
                    .zip(counts.par_chunks(4096))
                    .map(|(u, y)| {
                        -u.iter().zip(y).map(|(&u, &k)| table.eval_ln(k as usize, u + lc, u_floor).0).sum::<f64>()
                    })
                    .collect();
                parts.iter().sum::<f64>()
            })
            .fold(f64::INFINITY, f64::min);
        scores.push((sigma, best));
    }
    let mut best = scores[0];
    for &s in &scores[1..] {
        if s.1 < best.1 {
            best = s;
        }
    }
    (best.0, scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_bulk() {
        // Two genes, two types; after normalisation the p-mixture equals the bulk fractions.
        let mu = [0.1, 0.3, 0.2, 0.05];
        let p = [1.0, 3.0];
        let bulk = [50.0, 20.0];
        let out = normalise_profiles(&mu, 2, &bulk, 1000.0, &p);
        for j in 0..2 {
            let mix = (out[j * 2] * 0.25 + out[j * 2 + 1] * 0.75) * 1000.0;
            assert!((mix - bulk[j]).abs() < 1e-9);
        }
    }

    #[test]
    fn doublet_mode_finds_a_clear_pure_spot() {
        // Three types with disjoint marker genes; the spot is pure type 1 with 500 counts.
        let g = 30;
        let mut mu = vec![0.001; g * 3];
        for j in 0..g {
            mu[j * 3 + j % 3] = 0.06;
        }
        let y: Vec<f64> = (0..g).map(|j| if j % 3 == 1 { 48.0 } else { 1.0 }).collect();
        let n: f64 = y.iter().sum();
        let table = LikelihoodTable::compute(60, 60);
        let r = fit_doublet(&mu, 3, &y, n, &table, &ModeOptions::default(), &mut SpotWorkspace::default());
        assert_eq!(r.first_type, 1);
        assert_eq!(r.spot_class, "singlet");
        let m = fit_multi(&mu, 3, &y, n, &table, &ModeOptions::default(), &mut SpotWorkspace::default());
        assert_eq!(m.types, vec![1]);
    }
}
