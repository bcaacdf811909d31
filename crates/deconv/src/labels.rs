//! Labels mode: one cell type per cell for single-cell-resolution data (Xenium, MERSCOPE, CosMx).
//!
//! A segmented cell holds one cell type, so the question is which type explains its counts best, and how
//! clearly. Each cell is scored under the same Poisson-lognormal likelihood as the spot modes (Cable et al.,
//! Nat Biotechnol 2022) in three steps:
//! 1. **Screen**: every type's singlet fit under a plain Poisson model has a closed form (the weight is
//!    `sum y / (N sum_g mu[t][g])`), and its negative log-likelihood up to a constant shared by all types is
//!    `Y ln(sum_g mu[t][g]) - sum_g y_g ln mu[t][g]`: O(non-zeros x types) per cell. The
//!    [`ModeOptions::label_candidates`] best types (default 4) go on.
//! 2. **Singlets**: each candidate `t` is fitted as a singlet, `lambda_g = N w mu[t][g]`, under the
//!    likelihood table by a safeguarded Newton iteration in `ln w` from the Poisson weight (full steps
//!    with backtracking on the likelihood, 2-4 passes over the genes; in `ln w` a pass needs no logarithm). Candidates are ranked by that NLL: the
//!    label is the best, the runner-up the second, and the margin (runner-up NLL minus best NLL) is the
//!    label's confidence.
//! 3. **Pair**: the pair (label, runner-up) is fitted by a projected two-dimensional Newton iteration with
//!    backtracking (`w >= 0`), from the pair's Poisson weights (EM over the non-zero genes). When it beats the best singlet by more than the doublet threshold the cell is
//!    classed `doublet_certain` (mixed signal, e.g. segmentation spill-over from a neighbour), else
//!    `singlet`.
//!
//! The fits are run to convergence (Newton decrement below 1e-8, or relative weight change below 1e-7)
//! rather than with RCTD's damped 0.3 steps and iteration caps, so a cell costs about 4 x 4 + 6 likelihood passes instead of doublet mode's
//! hundreds. `label_candidates = 0` skips the screen (every type is fitted).

use crate::likelihood::LikelihoodTable;
use crate::rctd::ModeOptions;
use crate::solver::lambda_floor;

/// Relative change of the weights below which a fit has converged.
const TOLERANCE: f64 = 1e-7;
/// A fit stops when the Newton decrement, the NLL a full Newton step would still gain, is below this.
const DECREMENT: f64 = 1e-8;
/// Newton iterations per fit.
const MAX_ITER: usize = 50;
/// The pair fit is skipped (the cell is a singlet) when the plain Poisson model gains less than this
/// fraction of the doublet threshold from the second type. Overdispersion makes the Poisson-lognormal
/// likelihood gain less than the Poisson one from explaining a few discordant genes, so such a pair
/// cannot clear the threshold (checked against the full pair fit on mixtures in the tests).
const SKIP_PAIR: f64 = 0.5;
/// Step halvings per iteration before the fit is declared stuck (converged at the current point).
const MAX_HALVINGS: usize = 40;

/// The reference profiles prepared once per run for labels mode.
#[derive(Debug, Clone)]
pub struct LabelModel {
    n_types: usize,
    n_genes: usize,
    /// `mu` transposed: types x genes.
    mu_t: Vec<f64>,
    /// `ln mu` genes x types (floored at 1e-300), for the screen.
    ln_mu: Vec<f64>,
    /// `ln mu` types x genes, for the singlet fits.
    ln_mu_t: Vec<f64>,
    /// `ln sum_g mu[t][g]` per type.
    ln_col_sum: Vec<f64>,
    /// `sum_g mu[t][g]` per type.
    col_sum: Vec<f64>,
}

impl LabelModel {
    /// Prepares `mu` (`genes x n_types`, row-major) for labelling.
    pub fn new(mu: &[f64], n_types: usize) -> Self {
        let n_genes = mu.len().checked_div(n_types).unwrap_or(0);
        let mut mu_t = vec![0.0; mu.len()];
        let mut col_sum = vec![0.0; n_types];
        for (g, row) in mu.chunks_exact(n_types.max(1)).enumerate() {
            for (t, &v) in row.iter().enumerate() {
                mu_t[t * n_genes + g] = v;
                col_sum[t] += v;
            }
        }
        LabelModel {
            n_types,
            n_genes,
            ln_mu_t: mu_t.iter().map(|v| v.max(1e-300).ln()).collect(),
            mu_t,
            ln_mu: mu.iter().map(|v| v.max(1e-300).ln()).collect(),
            ln_col_sum: col_sum.iter().map(|v| v.max(1e-300).ln()).collect(),
            col_sum,
        }
    }

    /// Number of types.
    pub fn n_types(&self) -> usize {
        self.n_types
    }

    /// Poisson screening score of every type (lower is better; differences are log-likelihood ratios).
    pub fn screen(&self, y: &[f64]) -> Vec<f64> {
        let k = self.n_types;
        let total: f64 = y.iter().sum();
        let mut score: Vec<f64> = self.ln_col_sum.iter().map(|l| total * l).collect();
        for (j, &c) in y.iter().enumerate() {
            if c > 0.0 {
                for (s, l) in score.iter_mut().zip(&self.ln_mu[j * k..(j + 1) * k]) {
                    *s -= c * l;
                }
            }
        }
        score
    }

    fn column(&self, t: usize) -> &[f64] {
        &self.mu_t[t * self.n_genes..(t + 1) * self.n_genes]
    }

    /// Singlet fit of type `t`, `lambda_g = N w mu[t][g]`, by Newton's method in `v = ln w` from the
    /// Poisson weight: in `v` every gene's `ln lambda` is `v + ln N + ln mu[t][g]`, so a pass over the
    /// genes needs no logarithm (the table is uniform in `ln lambda`). Stops when the Newton decrement
    /// (the NLL still to gain) is below [`DECREMENT`]. Returns (w, NLL, converged).
    fn singlet(&self, t: usize, y: &[f64], n_umi: f64, table: &LikelihoodTable) -> (f64, f64, bool) {
        let ln_mu = &self.ln_mu_t[t * self.n_genes..(t + 1) * self.n_genes];
        let ln_n = n_umi.ln();
        let u_floor = lambda_floor(n_umi).ln();
        let eval = |v: f64| {
            let (mut f, mut g, mut h) = (0.0, 0.0, 0.0);
            for (&lm, &c) in ln_mu.iter().zip(y) {
                let (q, qu, quu) = table.eval_ln(c as usize, v + ln_n + lm, u_floor);
                f -= q;
                g -= qu;
                h -= quu;
            }
            (f, g, h)
        };
        let total: f64 = y.iter().sum();
        let start = total.max(0.5) / (n_umi * self.col_sum[t].max(f64::MIN_POSITIVE));
        let mut v = start.ln();
        let (mut f, mut g, mut h) = eval(v);
        for _ in 0..MAX_ITER {
            if h > 0.0 && 0.5 * g * g / h < DECREMENT {
                return (v.exp(), f, true);
            }
            // Newton step where the NLL is convex in v, else one e-fold downhill.
            let dv = if h > 0.0 { -g / h } else { -g.signum() };
            let mut alpha = 1.0;
            let mut accepted = None;
            for _ in 0..MAX_HALVINGS {
                let vn = v + alpha * dv;
                let e = eval(vn);
                if e.0 <= f {
                    accepted = Some((vn, e));
                    break;
                }
                alpha *= 0.5;
            }
            let Some((vn, e)) = accepted else {
                return (v.exp(), f, true);
            };
            let step = (vn - v).abs();
            (v, (f, g, h)) = (vn, e);
            if step <= TOLERANCE {
                return (v.exp(), f, true);
            }
        }
        (v.exp(), f, false)
    }

    /// Poisson maximum-likelihood weights of the pair (a, b) by EM over the cell's non-zero genes (a cheap
    /// start for the likelihood fit), and the Poisson log-likelihood the pair gains over type `a` alone.
    fn poisson_pair(&self, a: usize, b: usize, y: &[f64], n_umi: f64, start: [f64; 2]) -> ([f64; 2], f64) {
        let (ma, mb) = (self.column(a), self.column(b));
        let mut w = start;
        for _ in 0..20 {
            let (mut ra, mut rb) = (0.0, 0.0);
            for ((&c, &xa), &xb) in y.iter().zip(ma).zip(mb) {
                if c > 0.0 {
                    let (la, lb) = (w[0] * xa, w[1] * xb);
                    let tot = la + lb;
                    if tot > 0.0 {
                        ra += c * la / tot;
                        rb += c * lb / tot;
                    }
                }
            }
            w = [
                ra / (n_umi * self.col_sum[a]).max(f64::MIN_POSITIVE),
                rb / (n_umi * self.col_sum[b]).max(f64::MIN_POSITIVE),
            ];
        }
        // Gain = sum_g y ln(lambda_pair / lambda_single) - (sum lambda_pair - sum y), the singlet at its
        // Poisson optimum (lambda_single = Y mu_a / sum mu_a, summing to Y).
        let total: f64 = y.iter().sum();
        let single = total / self.col_sum[a].max(f64::MIN_POSITIVE);
        let mut gain = total - n_umi * (w[0] * self.col_sum[a] + w[1] * self.col_sum[b]);
        for ((&c, &xa), &xb) in y.iter().zip(ma).zip(mb) {
            if c > 0.0 && xa > 0.0 {
                gain += c * (n_umi * (w[0] * xa + w[1] * xb) / (single * xa)).ln();
            }
        }
        (w, gain)
    }
}

/// Labels-mode result of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelResult {
    /// `(type, singlet NLL, singlet weight)` for every candidate type that passed the screen, best (lowest
    /// NLL) first; ties by type index.
    pub ranking: Vec<(usize, f64, f64)>,
    /// NLL of the pair (best, runner-up), never above the best singlet's; the best singlet NLL when there is
    /// one type or the pair fit was skipped (see [`SKIP_PAIR`]).
    pub pair_nll: f64,
    /// Normalised weights of (best, runner-up) in the pair fit.
    pub pair_weights: [f64; 2],
    /// `singlet` or `doublet_certain`.
    pub class: &'static str,
    /// Whether the best singlet fit and the pair fit converged.
    pub converged: bool,
}

/// Value, gradient and Hessian (`[h_aa, h_ab, h_bb]`) of the NLL of `lambda_g = N (w_a mu_a + w_b mu_b)`.
struct Eval {
    f: f64,
    g: [f64; 2],
    h: [f64; 3],
}

fn evaluate_pair(a: &[f64], b: &[f64], w: [f64; 2], y: &[f64], n: f64, table: &LikelihoodTable) -> Eval {
    let floor = lambda_floor(n);
    let mut e = Eval { f: 0.0, g: [0.0; 2], h: [0.0; 3] };
    for ((&ma, &mb), &c) in a.iter().zip(b).zip(y) {
        let (sa, sb) = (n * ma, n * mb);
        let q = table.eval(c as usize, (w[0] * sa + w[1] * sb).max(floor));
        e.f -= q.d0;
        e.g[0] -= q.d1 * sa;
        e.g[1] -= q.d1 * sb;
        e.h[0] -= q.d2 * sa * sa;
        e.h[1] -= q.d2 * sa * sb;
        e.h[2] -= q.d2 * sb * sb;
    }
    e
}

/// Projected Newton iteration with backtracking for the pair weights `w >= 0`. Returns the weights, the
/// NLL there and whether it converged.
fn fit_pair(
    a: &[f64],
    b: &[f64],
    start: [f64; 2],
    y: &[f64],
    n: f64,
    table: &LikelihoodTable,
) -> ([f64; 2], f64, bool) {
    let mut w = start;
    let mut e = evaluate_pair(a, b, w, y, n, table);
    for _ in 0..MAX_ITER {
        // Variables held at the bound: zero with a gradient pushing outwards.
        let free = [w[0] > 0.0 || e.g[0] < 0.0, w[1] > 0.0 || e.g[1] < 0.0];
        let mut d = [0.0; 2];
        let det = e.h[0] * e.h[2] - e.h[1] * e.h[1];
        if free[0] && free[1] && e.h[0] > 0.0 && det > 0.0 {
            d[0] = -(e.h[2] * e.g[0] - e.h[1] * e.g[1]) / det;
            d[1] = -(e.h[0] * e.g[1] - e.h[1] * e.g[0]) / det;
            if 0.5 * -(d[0] * e.g[0] + d[1] * e.g[1]) < DECREMENT {
                return (w, e.f, true);
            }
        } else {
            // Diagonal Newton on the free variables (a gradient step scaled by the weight where the
            // curvature is not positive).
            for (i, &h) in [e.h[0], e.h[2]].iter().enumerate() {
                if free[i] {
                    d[i] = if h > 0.0 { -e.g[i] / h } else { -e.g[i].signum() * 0.5 * w[i].max(1e-12) };
                }
            }
        }
        let mut alpha = 1.0;
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            let wn = [(w[0] + alpha * d[0]).max(0.0), (w[1] + alpha * d[1]).max(0.0)];
            let en = evaluate_pair(a, b, wn, y, n, table);
            if en.f <= e.f {
                accepted = Some((wn, en));
                break;
            }
            alpha *= 0.5;
        }
        let Some((wn, en)) = accepted else {
            return (w, e.f, true);
        };
        let change = (wn[0] - w[0]).abs() + (wn[1] - w[1]).abs();
        let scale = (wn[0] + wn[1]).max(f64::MIN_POSITIVE);
        w = wn;
        e = en;
        if change <= TOLERANCE * scale {
            return (w, e.f, true);
        }
    }
    (w, e.f, false)
}

/// Fits one cell's counts `y` (reg genes) with `n_umi` total counts against `model` under `table` (see
/// the module docs).
pub fn fit_labels(
    model: &LabelModel,
    y: &[f64],
    n_umi: f64,
    table: &LikelihoodTable,
    opts: &ModeOptions,
) -> LabelResult {
    let k = model.n_types;
    let screen = model.screen(y);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| screen[a].total_cmp(&screen[b]).then(a.cmp(&b)));
    if opts.label_candidates > 0 {
        order.truncate(opts.label_candidates);
    }
    let mut converged = vec![false; k];
    let mut ranking: Vec<(usize, f64, f64)> = order
        .iter()
        .map(|&t| {
            let (w, nll, conv) = model.singlet(t, y, n_umi, table);
            converged[t] = conv;
            (t, nll, w)
        })
        .collect();
    ranking.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let best = ranking[0];
    let singlet = |ranking| LabelResult {
        ranking,
        pair_nll: best.1,
        pair_weights: [1.0, 0.0],
        class: "singlet",
        converged: converged[best.0],
    };
    let Some(&second) = ranking.get(1) else {
        return singlet(ranking);
    };
    let (start, poisson_gain) = model.poisson_pair(best.0, second.0, y, n_umi, [0.5 * best.2, 0.5 * second.2]);
    if poisson_gain < SKIP_PAIR * opts.doublet_threshold {
        // The pair only decides the class; see [`SKIP_PAIR`].
        return singlet(ranking);
    }
    let start = start.map(|v| v.max(1e-6 * (best.2 + second.2)));
    let (pw, pair_nll, conv_pair) = fit_pair(model.column(best.0), model.column(second.0), start, y, n_umi, table);
    let (pair_nll, pw) = if pair_nll < best.1 { (pair_nll, pw) } else { (best.1, [best.2, 0.0]) };
    let sum = (pw[0] + pw[1]).max(f64::MIN_POSITIVE);
    let class = if best.1 - pair_nll > opts.doublet_threshold { "doublet_certain" } else { "singlet" };
    LabelResult {
        ranking,
        pair_nll,
        pair_weights: [pw[0] / sum, pw[1] / sum],
        class,
        converged: converged[best.0] && conv_pair,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rctd::{score_types, SpotWorkspace, FULL};

    /// Three types with disjoint marker genes (every third gene) over `g` genes, the label model, and a
    /// table at sigma 0.6 up to count `k_max`.
    fn fixture(g: usize, k_max: usize) -> (Vec<f64>, LabelModel, LikelihoodTable) {
        let mut mu = vec![0.001; g * 3];
        for j in 0..g {
            mu[j * 3 + j % 3] = 0.06;
        }
        let model = LabelModel::new(&mu, 3);
        (mu, model, LikelihoodTable::compute(60, k_max))
    }

    #[test]
    fn pure_cell_gets_its_type_and_a_mixed_cell_is_flagged() {
        let g = 30;
        let (_, model, table) = fixture(g, 60);
        let opts = ModeOptions::default();
        // Pure type 1 with ~500 counts.
        let y: Vec<f64> = (0..g).map(|j| if j % 3 == 1 { 48.0 } else { 1.0 }).collect();
        let r = fit_labels(&model, &y, y.iter().sum(), &table, &opts);
        assert_eq!(r.ranking[0].0, 1);
        assert_eq!(r.ranking.len(), 3);
        assert!(r.ranking[1].1 - r.ranking[0].1 > 100.0, "{:?}", r.ranking);
        assert_eq!(r.class, "singlet");
        // Half type 0, half type 2: either label, the other runner-up, and a clear doublet.
        let y: Vec<f64> = (0..g).map(|j| if j % 3 == 1 { 1.0 } else { 24.0 }).collect();
        let r = fit_labels(&model, &y, y.iter().sum(), &table, &opts);
        let mut top = [r.ranking[0].0, r.ranking[1].0];
        top.sort();
        assert_eq!(top, [0, 2]);
        assert_eq!(r.class, "doublet_certain");
        assert!((r.pair_weights[0] - 0.5).abs() < 0.1, "{:?}", r.pair_weights);
    }

    #[test]
    fn newton_fits_reach_the_damped_solvers_optimum() {
        // The converged one- and two-weight fits must be at least as good as (and close to) the damped
        // RCTD solver's on the same counts.
        let g = 30;
        let (mu, model, table) = fixture(g, 60);
        let mut ws = SpotWorkspace::default();
        let y: Vec<f64> = (0..g).map(|j| [3.0, 20.0, 9.0][j % 3] + (j % 4) as f64).collect();
        let n: f64 = y.iter().sum::<f64>() * 1.3;
        for t in 0..3 {
            let (w, nll, conv) = model.singlet(t, &y, n, &table);
            let (ref_nll, ref_w, _) = score_types(&mu, 3, &[t], &y, n, &table, &FULL, &mut ws);
            assert!(conv);
            assert!(nll <= ref_nll + 1e-9, "type {t}: {nll} vs {ref_nll}");
            assert!((w - ref_w[0]).abs() < 1e-2 * ref_w[0], "type {t}: {w} vs {ref_w:?}");
        }
        let (w, nll, conv) = fit_pair(model.column(1), model.column(2), [0.2, 0.2], &y, n, &table);
        let (ref_nll, ref_w, _) = score_types(&mu, 3, &[1, 2], &y, n, &table, &FULL, &mut ws);
        assert!(conv);
        assert!(nll <= ref_nll + 1e-9, "{nll} vs {ref_nll}");
        assert!((w[0] - ref_w[0]).abs() + (w[1] - ref_w[1]).abs() < 1e-2 * (ref_w[0] + ref_w[1]), "{w:?} {ref_w:?}");
    }

    #[test]
    fn skipping_the_pair_fit_never_changes_the_class() {
        // Mixtures of types 0 and 2 from pure to half and half, at three depths: the class with the Poisson
        // shortcut equals the class from always fitting the pair (a threshold of -inf disables the skip).
        let g = 30;
        let (mu, model, table) = fixture(g, 200);
        let opts = ModeOptions::default();
        let mut seen = [0usize; 2];
        for depth in [100.0, 300.0, 900.0] {
            for step in 0..=10 {
                let f = step as f64 * 0.05;
                let y: Vec<f64> =
                    (0..g).map(|j| (depth * ((1.0 - f) * mu[j * 3] + f * mu[j * 3 + 2])).round()).collect();
                let n = y.iter().sum::<f64>();
                let fast = fit_labels(&model, &y, n, &table, &opts);
                let (_, gain) = model.poisson_pair(fast.ranking[0].0, fast.ranking[1].0, &y, n, [0.5, 0.5]);
                let best = fast.ranking[0];
                let second = fast.ranking[1];
                let (_, pair_nll, _) = fit_pair(
                    model.column(best.0),
                    model.column(second.0),
                    [0.5 * best.2, 0.5 * second.2],
                    &y,
                    n,
                    &table,
                );
                let full = if best.1 - pair_nll > opts.doublet_threshold { "doublet_certain" } else { "singlet" };
                assert_eq!(fast.class, full, "depth {depth}, fraction {f}, Poisson gain {gain}");
                // The premise of the shortcut: the Poisson model gains at least as much as the likelihood.
                assert!(
                    gain >= best.1 - pair_nll - 1e-6,
                    "depth {depth}, fraction {f}: {gain} < {}",
                    best.1 - pair_nll
                );
                seen[usize::from(full == "doublet_certain")] += 1;
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }

    #[test]
    fn the_screen_keeps_the_best_type() {
        let g = 30;
        let (_, model, table) = fixture(g, 60);
        let opts = ModeOptions { label_candidates: 1, ..ModeOptions::default() };
        let y: Vec<f64> = (0..g).map(|j| if j % 3 == 2 { 30.0 } else { 2.0 }).collect();
        let r = fit_labels(&model, &y, y.iter().sum(), &table, &opts);
        assert_eq!(r.ranking.len(), 1);
        assert_eq!(r.ranking[0].0, 2);
        let s = model.screen(&y);
        assert!(s[2] < s[0] && s[2] < s[1], "{s:?}");
    }
}
