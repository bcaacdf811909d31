//! The Poisson-lognormal likelihood tables of the RCTD model (Cable et al., "Robust decomposition of
//! cell type mixtures in spatial transcriptomics", Nat Biotechnol 40:517-526, 2022).
//!
//! A count `k` observed with expected value `x` and multiplicative log-noise `eps ~ p_sigma` has
//! likelihood `integral Pois(k; x e^eps) p_sigma(eps) d eps`. Its logarithm `Q_sigma[k](x)` is tabulated
//! by quadrature on `eps in [-20, 20]` (step 0.004, 10,001 points) for `k = 0..=K` (K = 1000, larger
//! counts are clipped) at 333 `x` knots from 1e-4 to 1600, uniform in `u = ln x` (step 0.05).
//!
//! # Interpolation
//! Each knot holds `Q` and its exact first and second derivatives in `u`, which follow from the next
//! two rows: with `P_k = exp Q_k` and `r_k = P_{k+1} / P_k`, `x dP_k/dx = k P_k - (k + 1) P_{k+1}`, so
//! `dQ/du = k - (k + 1) r_k` and `d2Q/du2 = (k + 1) r_k ((k + 2) r_{k+1} - (k + 1) r_k - 1)`.
//! Between knots `Q(k, e^u)` is the quintic Hermite polynomial matching value, slope and curvature at
//! both ends (C2, local, error O(h^6)): over the whole grid and counts up to 200, within 4e-8 of the
//! direct quadrature at sigma 0.84 (1.4e-5 at sigma 0.1, the sharpest rows), including small `x`,
//! where `Q(k >= 1)` behaves like `k ln x` (smooth in `u`, singular in `x`). A
//! cubic spline in `x` on a grid quadratic in the index (the layout we used first) is off by up to 1
//! there, which moved the fitted weights by up to 0.46 against the original RCTD.
//!
//! # Noise density
//! With `z = eps / sigma`: `C phi(z)` for `|z| < 3` and `C a / (|z| - 7/3)^2` beyond, where
//! `a = (4/9) e^{-9/2} / sqrt(2 pi)` makes the density continuous at `|z| = 3` and `C` normalises it
//! over the whole line (a Gaussian with heavy tails, so that outlier genes cost a bounded amount).
//!
//! # Cost
//! A full table is 10,001 x 1,003 x 333 ~ 3.3e9 terms. Row `k + 1` follows from row `k` by one
//! multiplication per quadrature point (`Pois(k+1; l) = Pois(k; l) l / (k + 1)`), so only one `exp`
//! per point is taken every [`BLOCK`] (32) rows (rescaled to avoid under/overflow: over 32 rows a term
//! grows at most by 3000^31 / 31! ~ e^170) and the rest is a vectorised multiply and sum over the
//! 10,001 points. Rows are computed only up to the largest count
//! needed (plus the two the derivatives use), points whose expected count exceeds 3,000 are skipped
//! (their terms are below e^-900), and so are, within each block of rows, the points whose terms stay
//! below e^-60 of the largest (for counts above the first block that is most of the 10,001 points),
//! and within a block the window shrinks from the left row by row; knots are computed in parallel. A
//! knot's values do not depend on the number of rows built there, so tables are built knot by knot
//! for what is needed ([`LikelihoodTable::compute_rows`], [`LikelihoodTable::extend`]): the sigma
//! search scores at only the knots and counts it evaluates. Time
//! O(n_points x n_knots x (k_max + 3)); memory O(9 n_knots (k_max + 1)) per table (knot values and the
//! interval coefficients). An evaluation is one `ln` and a degree-5 polynomial.

use rayon::prelude::*;

/// Largest tabulated count; larger counts are clipped to it.
pub const K_MAX: usize = 1000;
/// Number of `x` knots (uniform in `ln x`).
pub const N_KNOTS: usize = 333;
/// Smallest knot (and smallest expected count used).
pub const X_MIN: f64 = 1e-4;
/// Largest knot (larger expected counts are clamped to it).
pub const X_MAX: f64 = 1600.0;
/// Quadrature half-width on the log-noise axis.
const Y_LIMIT: f64 = 20.0;
/// Quadrature step.
const Y_STEP: f64 = 0.004;
/// Rows computed by recurrence after each rescaled `exp` evaluation.
pub const BLOCK: usize = 32;
/// Quadrature points whose expected count exceeds this contribute nothing measurable for k <= 1000.
const LAMBDA_CUT: f64 = 3000.0;
/// Terms below `e^-NEGLIGIBLE` times the largest one over a whole block of rows are skipped.
const NEGLIGIBLE: f64 = 60.0;

/// Spacing of the knots in `u = ln x`.
#[inline]
pub fn knot_step() -> f64 {
    (X_MAX.ln() - X_MIN.ln()) / (N_KNOTS - 1) as f64
}

/// The `i`-th knot of the `x` grid (geometric: uniform in `ln x`).
#[inline]
pub fn knot(i: usize) -> f64 {
    if i + 1 == N_KNOTS {
        X_MAX
    } else {
        (X_MIN.ln() + i as f64 * knot_step()).exp()
    }
}

/// The sigma grid of the original: 0.10..0.70 step 0.01, then 0.72..2.00 step 0.02, as integer
/// hundredths.
pub fn sigma_grid() -> Vec<u32> {
    (10..=70).chain((36..=100).map(|i| i * 2)).collect()
}

/// Log of the noise density `p_sigma(eps)` (normalised over the real line).
pub fn log_noise_density(eps: f64, sigma: f64) -> f64 {
    let a = (4.0 / 9.0) * (-4.5f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
    // Mass of the unnormalised density in z: P(|Z| < 3) + two tails of a / (|z| - 7/3)^2 from 3,
    // each integrating to a / (3 - 7/3) = 1.5 a.
    let gauss_mass = erf(3.0 / std::f64::consts::SQRT_2);
    let log_c = -(gauss_mass + 3.0 * a).ln();
    let z = (eps / sigma).abs();
    let f = if z < 3.0 {
        -0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln()
    } else {
        a.ln() - 2.0 * (z - 7.0 / 3.0).ln()
    };
    log_c + f - sigma.ln()
}

/// The error function (Abramowitz-Stegun 7.1.26 is too coarse; this uses the series / continued
/// fraction pair, accurate to ~1e-15 for the arguments used here).
fn erf(x: f64) -> f64 {
    if x.abs() < 3.0 {
        // Maclaurin series: erf x = 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)).
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        loop {
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
            n += 1.0;
            term *= -x * x / n;
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // Continued fraction for erfc.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        1.0 - (-x * x).exp() / std::f64::consts::PI.sqrt() / (x + f)
    }
}

/// `ln Gamma(k + 1)` for k = 0..=n, by summing logs (exact to rounding for integers).
pub fn ln_factorials(n: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n + 1);
    let mut acc = 0.0;
    v.push(0.0);
    for k in 1..=n {
        acc += (k as f64).ln();
        v.push(acc);
    }
    v
}

/// One likelihood table: at every knot, the value and the first two derivatives in `u = ln x` of
/// `Q(k, e^u)`, for rows `0..n_rows`.
#[derive(Debug, Clone)]
pub struct LikelihoodTable {
    /// Sigma in hundredths (84 = 0.84).
    pub sigma_index: u32,
    /// Number of count rows held (counts `0..n_rows`); larger counts are clipped to `n_rows - 1`
    /// (callers build tables up to the largest count they evaluate, so this clips only at [`K_MAX`]).
    pub n_rows: usize,
    /// `[Q, dQ/du, d2Q/du2]` at `(k, knot i)`, interleaved: `v[3 * (k * N_KNOTS + i) + d]`.
    pub v: Vec<f64>,
    /// Quintic coefficients `c0..c5` in `s` of each interval `(k, l)`: `coef[6 * (k * (N_KNOTS - 1) + l) + p]`,
    /// derived from `v` by [`hermite`] once instead of at every evaluation.
    coef: Vec<f64>,
}

/// The quintic `c0 + c1 s + ... + c5 s^5` on `s in [0, 1]` matching the value, slope and curvature held
/// (per unit of `u`, `h` the knot step) at the two knots `a` and `b`.
#[inline]
fn hermite(a: &[f64], b: &[f64], h: f64) -> [f64; 6] {
    let (p0, v0, a0, p1, v1, a1) = (a[0], a[1] * h, a[2] * h * h, b[0], b[1] * h, b[2] * h * h);
    let (c0, c1, c2) = (p0, v0, 0.5 * a0);
    let big_a = p1 - c0 - c1 - c2;
    let big_b = v1 - c1 - 2.0 * c2;
    let big_c = a1 - 2.0 * c2;
    let c3 = 10.0 * big_a - 4.0 * big_b + 0.5 * big_c;
    let c4 = -15.0 * big_a + 7.0 * big_b - big_c;
    let c5 = 6.0 * big_a - 3.0 * big_b + 0.5 * big_c;
    [c0, c1, c2, c3, c4, c5]
}

/// Value, first and second derivative of `Q(k, x)` at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QValue {
    /// `Q(k, x)`, the log-likelihood.
    pub d0: f64,
    /// `dQ/dx`.
    pub d1: f64,
    /// `d2Q/dx2`.
    pub d2: f64,
}

impl LikelihoodTable {
    /// A table from its knot values (`v` as in the field), deriving the interval coefficients.
    pub fn from_values(sigma_index: u32, n_rows: usize, v: Vec<f64>) -> Self {
        let h = knot_step();
        let mut coef = vec![0.0; 6 * n_rows * (N_KNOTS - 1)];
        for (k, out) in coef.chunks_exact_mut(6 * (N_KNOTS - 1)).enumerate() {
            let row = &v[3 * k * N_KNOTS..3 * (k + 1) * N_KNOTS];
            for (l, c) in out.chunks_exact_mut(6).enumerate() {
                c.copy_from_slice(&hermite(&row[3 * l..3 * l + 3], &row[3 * l + 3..3 * l + 6], h));
            }
        }
        LikelihoodTable { sigma_index, n_rows, v, coef }
    }

    /// Computes the table for `sigma_index / 100` for counts `0..=k_needed` (clipped at [`K_MAX`]).
    pub fn compute(sigma_index: u32, k_needed: usize) -> Self {
        let n_rows = k_needed.min(K_MAX) + 1;
        Self::compute_rows(sigma_index, &[n_rows; N_KNOTS])
    }

    /// Computes, at each knot `i`, only the rows `0..rows_per_knot[i]` (clipped at `K_MAX + 1`); the
    /// entries not computed are NaN. A table for a known set of evaluations (the sigma search scores
    /// fixed predictions): see [`knot_rows_needed`]. Each computed entry is bit for bit the one
    /// [`Self::compute`] gives (a knot's values do not depend on how many rows are computed there).
    pub fn compute_rows(sigma_index: u32, rows_per_knot: &[usize]) -> Self {
        Self::extend(sigma_index, None, rows_per_knot).0
    }

    /// Extends `base` (a table for the same sigma with `have[i]` rows computed at knot `i`) so that
    /// every knot holds at least `need[i]` rows: the knots already holding enough are copied, the others
    /// are computed (all their rows, the recurrence starts at 0). Returns the table and the rows now
    /// held at each knot.
    pub fn extend(sigma_index: u32, base: Option<(&LikelihoodTable, &[usize])>, need: &[usize]) -> (Self, Vec<usize>) {
        let sigma = sigma_index as f64 / 100.0;
        let have = |i: usize| base.and_then(|(_, h)| h.get(i).copied()).unwrap_or(0);
        let want = |i: usize| need.get(i).copied().unwrap_or(0).min(K_MAX + 1);
        let rows: Vec<usize> = (0..N_KNOTS).map(|i| have(i).max(want(i))).collect();
        let n_rows = rows.iter().copied().max().unwrap_or(0).max(1);
        let n_points = ((2.0 * Y_LIMIT / Y_STEP).round() as usize) + 1;
        let ys: Vec<f64> = (0..n_points).map(|i| -Y_LIMIT + i as f64 * Y_STEP).collect();
        let exp_y: Vec<f64> = ys.iter().map(|y| y.exp()).collect();
        // The quadrature weight (step) folded into the log density.
        let log_w: Vec<f64> = ys.iter().map(|&y| log_noise_density(y, sigma) + Y_STEP.ln()).collect();
        // Two rows beyond the last give the exact derivatives of the last (see `derivatives`).
        let lnfact = ln_factorials(n_rows + 2);
        // Column (knot) by column, in parallel: each knot fills its entries of every row.
        let columns: Vec<Vec<f64>> = (0..N_KNOTS)
            .into_par_iter()
            .map(|i| {
                if want(i) <= have(i) {
                    Vec::new()
                } else {
                    column(knot(i), rows[i] + 2, &ys, &exp_y, &log_w, &lnfact)
                }
            })
            .collect();
        // Rows are the outer index, so the base's entries are a prefix of the extended table's.
        let mut v = vec![f64::NAN; 3 * n_rows * N_KNOTS];
        if let Some((t, _)) = base {
            let n = t.v.len().min(v.len());
            v[..n].copy_from_slice(&t.v[..n]);
        }
        for (i, col) in columns.iter().enumerate() {
            for k in 0..col.len().saturating_sub(2) {
                let (du, duu) = derivatives(k, col[k], col[k + 1], col[k + 2]);
                let at = 3 * (k * N_KNOTS + i);
                v[at] = col[k];
                v[at + 1] = du;
                v[at + 2] = duu;
            }
        }
        (LikelihoodTable::from_values(sigma_index, n_rows, v), rows)
    }

    /// Largest count this table can evaluate without clipping beyond [`K_MAX`].
    pub fn max_count(&self) -> usize {
        self.n_rows - 1
    }

    /// `Q(k, x)` with derivatives in `x`: `k` clipped to the table (callers compute tables up to the
    /// largest count they use, so clipping happens only at [`K_MAX`]), `x` clamped to
    /// `[X_MIN, X_MAX]`. Quintic Hermite interpolation in `u = ln x` between the two knots around `x`
    /// from the values and exact first and second derivatives held at the knots.
    #[inline]
    pub fn eval(&self, k: usize, x: f64) -> QValue {
        let x = x.clamp(X_MIN, X_MAX);
        let inv_h = 1.0 / knot_step();
        let (l, s) = interval(x);
        let (f, fs, fss) = self.quintic(k, l, s);
        // Back to x: dQ/dx = Q_u / x, d2Q/dx2 = (Q_uu - Q_u) / x^2 (one division: this runs once per
        // gene and Newton iteration).
        let (fu, fuu) = (fs * inv_h, fss * (inv_h * inv_h));
        let inv_x = 1.0 / x;
        QValue { d0: f, d1: fu * inv_x, d2: (fuu - fu) * (inv_x * inv_x) }
    }

    /// `Q(k, e^u)` with its first and second derivatives in `u = ln x` (no logarithm or division: the
    /// table is uniform in `u`). `u` at or below `u_floor` (at least `ln X_MIN`) or above `ln X_MAX` is
    /// clamped there, where the clamped function is flat: both derivatives are then 0.
    #[inline]
    pub fn eval_ln(&self, k: usize, u: f64, u_floor: f64) -> (f64, f64, f64) {
        let (lo, hi) = (u_floor.max(X_MIN.ln()), X_MAX.ln());
        let inv_h = 1.0 / knot_step();
        let uc = u.clamp(lo, hi);
        let (l, s) = interval_ln(uc);
        let (f, fs, fss) = self.quintic(k, l, s);
        if uc == u {
            (f, fs * inv_h, fss * (inv_h * inv_h))
        } else {
            (f, 0.0, 0.0)
        }
    }

    /// The interval polynomial of row `k` (clipped to the table) in interval `l` at `s in [0, 1]`: value
    /// and first and second derivatives in `s`.
    #[inline(always)]
    fn quintic(&self, k: usize, l: usize, s: f64) -> (f64, f64, f64) {
        let k = k.min(self.n_rows - 1);
        // f(s) = c0 + c1 s + ... + c5 s^5 matching value, slope and curvature at s = 0 and s = 1.
        let at = 6 * (k * (N_KNOTS - 1) + l);
        let c = &self.coef[at..at + 6];
        let (c0, c1, c2, c3, c4, c5) = (c[0], c[1], c[2], c[3], c[4], c[5]);
        let f = c0 + s * (c1 + s * (c2 + s * (c3 + s * (c4 + s * c5))));
        let fs = c1 + s * (2.0 * c2 + s * (3.0 * c3 + s * (4.0 * c4 + s * 5.0 * c5)));
        let fss = 2.0 * c2 + s * (6.0 * c3 + s * (12.0 * c4 + s * 20.0 * c5));
        (f, fs, fss)
    }
}

/// The knot interval `[knot(l), knot(l + 1)]` holding `x` (already clamped to `[X_MIN, X_MAX]`) and
/// the position `s in [0, 1]` within it.
#[inline]
fn interval(x: f64) -> (usize, f64) {
    interval_ln(x.ln())
}

/// [`interval`] of `x = e^u`, `u` already clamped to `[ln X_MIN, ln X_MAX]`.
#[inline]
fn interval_ln(u: f64) -> (usize, f64) {
    let t = (u - X_MIN.ln()) * (1.0 / knot_step());
    let l = (t.max(0.0) as usize).min(N_KNOTS - 2);
    (l, t - l as f64)
}

/// Rows needed at each knot to evaluate `Q(k, e^u)` at the given `(k, u)` points (as
/// [`LikelihoodTable::eval_ln`] clips and clamps them; [`LikelihoodTable::eval`] of `x` evaluates at
/// `u = ln x`): `k + 1` at both knots around `u`, 0 where no point falls.
pub fn knot_rows_needed(points: impl IntoIterator<Item = (usize, f64)>) -> Vec<usize> {
    let mut rows = vec![0usize; N_KNOTS];
    for (k, u) in points {
        let (l, _) = interval_ln(u.clamp(X_MIN.ln(), X_MAX.ln()));
        let r = k.min(K_MAX) + 1;
        rows[l] = rows[l].max(r);
        rows[l + 1] = rows[l + 1].max(r);
    }
    rows
}

/// Exact `dQ/du` and `d2Q/du2` (`u = ln x`) of row `k` from the values of rows `k`, `k + 1`, `k + 2`
/// at the same `x`. With `P_k(x) = sum_y Pois(k; x e^y) p(y) dy` and `x d/dx Pois(k; x e^y) =
/// k Pois(k; .) - (k + 1) Pois(k + 1; .)`, `r_k = P_{k+1} / P_k` gives `dQ/du = k - (k + 1) r_k` and
/// `d2Q/du2 = (k + 1) r_k ((k + 2) r_{k+1} - (k + 1) r_k - 1)`.
fn derivatives(k: usize, q0: f64, q1: f64, q2: f64) -> (f64, f64) {
    let kf = k as f64;
    let r0 = (q1 - q0).exp();
    let r1 = (q2 - q1).exp();
    let du = kf - (kf + 1.0) * r0;
    let duu = (kf + 1.0) * r0 * ((kf + 2.0) * r1 - (kf + 1.0) * r0 - 1.0);
    (du, duu)
}

/// Entries `Q[0..n_rows]` at one knot `x`.
fn column(x: f64, n_rows: usize, ys: &[f64], exp_y: &[f64], log_w: &[f64], lnfact: &[f64]) -> Vec<f64> {
    // Keep only points with expected count <= LAMBDA_CUT (y <= ln(cut / x)).
    let y_hi = (LAMBDA_CUT / x).ln();
    let n_use = ys.partition_point(|&y| y <= y_hi);
    let ln_x = x.ln();
    let lambda: Vec<f64> = exp_y[..n_use].iter().map(|e| x * e).collect();
    let mut logt = vec![0.0; n_use];
    let mut t = vec![0.0; n_use];
    let mut out = vec![0.0; n_rows];
    let mut k0 = 0;
    while k0 < n_rows {
        // log of Pois(k0; x e^y) p(y) dy, rescaled by its maximum.
        let kf = k0 as f64;
        let mut max = f64::NEG_INFINITY;
        let mut j_max = 0;
        for j in 0..n_use {
            let v = kf * (ln_x + ys[j]) - lambda[j] - lnfact[k0] + log_w[j];
            logt[j] = v;
            if v > max {
                max = v;
                j_max = j;
            }
        }
        let k_end = (k0 + BLOCK).min(n_rows);
        // Only the window of points that can matter within this block: during the block a term's ratio to
        // the largest one changes by lambda_j / lambda_max per row, so terms left of the largest only
        // shrink, and terms right of it grow at most by (lambda_j / lambda_max)^(rows - 1). Terms below
        // e^-NEGLIGIBLE of the largest throughout are left out (together < 1e-22 of the sum).
        // (Allowing for a whole block's growth even in a shorter last block keeps a knot's values
        // independent of the number of rows computed.)
        let steps = (BLOCK - 1) as f64;
        let j_lo = (0..j_max).find(|&j| logt[j] > max - NEGLIGIBLE).unwrap_or(j_max);
        let j_hi =
            (j_max..n_use).rev().find(|&j| logt[j] + steps * (ys[j] - ys[j_max]) > max - NEGLIGIBLE).unwrap_or(j_max);
        for (tj, lj) in t[j_lo..=j_hi].iter_mut().zip(&logt[j_lo..=j_hi]) {
            *tj = (lj - max).exp();
        }
        let mut lo = j_lo;
        for k in k0..k_end {
            // Sum row k and, unless it is the block's last, step every term to row k + 1.
            let factor = if k + 1 < k_end { Some(1.0 / (k + 1) as f64) } else { None };
            let (s, row_max) = sum_and_step(&mut t[lo..=j_hi], &lambda[lo..=j_hi], factor);
            out[k] = max + s.ln();
            // Within the block the window also shrinks from the left: for j < j' the ratio t_j / t_j'
            // only decreases from row to row (lambda_j < lambda_j'), so a term below e^-NEGLIGIBLE of
            // row k's largest term (which lies to its right) stays below it for every later row. The
            // scan stops at the first term that is not negligible, which is at or left of the largest.
            // `t` already holds row k + 1 (t_j(k) lambda_j / (k + 1)), hence the factor in the test.
            if let Some(f) = factor {
                let thr = row_max * (-NEGLIGIBLE).exp() * f;
                while lo < j_hi && t[lo] < thr * lambda[lo] {
                    lo += 1;
                }
            }
        }
        k0 = k_end;
    }
    out
}

/// Returns `(sum(t), max(t))`, then sets `t_j *= lambda_j * factor` when a factor is given. Eight
/// partial sums (added in a fixed order) keep the loop vectorisable instead of one serial chain of
/// additions.
#[inline]
fn sum_and_step(t: &mut [f64], lambda: &[f64], factor: Option<f64>) -> (f64, f64) {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let mut top = [0.0f64; LANES];
    let split = t.len() - t.len() % LANES;
    let (t_main, t_rest) = t.split_at_mut(split);
    let (l_main, l_rest) = lambda.split_at(split);
    match factor {
        Some(f) => {
            for (tb, lb) in t_main.chunks_exact_mut(LANES).zip(l_main.chunks_exact(LANES)) {
                for i in 0..LANES {
                    acc[i] += tb[i];
                    top[i] = if tb[i] > top[i] { tb[i] } else { top[i] };
                    tb[i] *= lb[i] * f;
                }
            }
            for (tj, lj) in t_rest.iter_mut().zip(l_rest) {
                acc[0] += *tj;
                top[0] = if *tj > top[0] { *tj } else { top[0] };
                *tj *= lj * f;
            }
        }
        None => {
            for tb in t_main.chunks_exact(LANES) {
                for i in 0..LANES {
                    acc[i] += tb[i];
                }
            }
            for tj in t_rest.iter() {
                acc[0] += *tj;
            }
        }
    }
    let max = top.iter().fold(0.0f64, |m, &v| if v > m { v } else { m });
    (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])), max)
}

/// Direct (slow) evaluation of `Q_sigma(k, x)` by log-sum-exp over the quadrature, for tests.
pub fn q_direct(sigma: f64, k: usize, x: f64) -> f64 {
    let n_points = ((2.0 * Y_LIMIT / Y_STEP).round() as usize) + 1;
    let lnfact = ln_factorials(k);
    let terms: Vec<f64> = (0..n_points)
        .map(|i| {
            let y = -Y_LIMIT + i as f64 * Y_STEP;
            let l = x * y.exp();
            k as f64 * (x.ln() + y) - l - lnfact[k] + log_noise_density(y, sigma) + Y_STEP.ln()
        })
        .collect();
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
}

/// A set of tables for the sigma values visited in a run, computed on demand.
///
/// The sigma search scores fixed predictions at up to 17 sigma values per round, but fits only at one:
/// for the scoring, an in-memory cache ([`TableCache::new`]) computes only the knots and counts the
/// scoring evaluates ([`LikelihoodTable::compute_rows`]), kept apart from the complete tables. A cache
/// loaded from a file ([`TableCache::load`]) computes complete tables throughout, so that every sigma
/// visited is saved for the next run.
#[derive(Debug, Default)]
pub struct TableCache {
    /// Table per sigma, with the rows computed at each knot (all `n_rows` for a complete table).
    tables: std::collections::BTreeMap<u32, (std::sync::Arc<LikelihoodTable>, Vec<usize>)>,
    /// Compute complete tables for scoring too (set when loaded from a file).
    persist: bool,
    /// Number of tables computed or extended (not loaded) in this run.
    pub computed: usize,
}

impl TableCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table for `sigma_index` covering counts up to `k_needed` (clipped at [`K_MAX`]) at every knot.
    pub fn get(&mut self, sigma_index: u32, k_needed: usize) -> std::sync::Arc<LikelihoodTable> {
        let need = [k_needed.min(K_MAX) + 1; N_KNOTS];
        self.ensure(&[sigma_index], &need).remove(0)
    }

    /// Tables for `sigmas` that can evaluate the points whose rows per knot are `knot_rows` (from
    /// [`knot_rows_needed`]), in the order of `sigmas`. Tables missing are computed in parallel across
    /// sigma values (and knots): partial ones for an in-memory cache, complete ones for a cache loaded
    /// from a file.
    pub fn for_scoring(&mut self, sigmas: &[u32], knot_rows: &[usize]) -> Vec<std::sync::Arc<LikelihoodTable>> {
        if self.persist {
            let all = knot_rows.iter().copied().max().unwrap_or(1).clamp(1, K_MAX + 1);
            self.ensure(sigmas, &[all; N_KNOTS])
        } else {
            self.ensure(sigmas, knot_rows)
        }
    }

    /// Tables for `sigmas` holding at least `need[i]` rows at each knot `i`, computing or extending
    /// those that do not, in parallel.
    fn ensure(&mut self, sigmas: &[u32], need: &[usize]) -> Vec<std::sync::Arc<LikelihoodTable>> {
        let want = |i: usize| need.get(i).copied().unwrap_or(0).min(K_MAX + 1);
        let short = |have: &[usize]| (0..N_KNOTS).any(|i| have.get(i).copied().unwrap_or(0) < want(i));
        let mut missing: Vec<u32> =
            sigmas.iter().copied().filter(|s| self.tables.get(s).is_none_or(|(_, have)| short(have))).collect();
        missing.sort_unstable();
        missing.dedup();
        let made: Vec<(LikelihoodTable, Vec<usize>)> = missing
            .par_iter()
            .map(|s| {
                let base = self.tables.get(s).map(|(t, have)| (t.as_ref(), have.as_slice()));
                LikelihoodTable::extend(*s, base, need)
            })
            .collect();
        for (t, rows) in made {
            self.computed += 1;
            self.tables.insert(t.sigma_index, (std::sync::Arc::new(t), rows));
        }
        sigmas.iter().filter_map(|s| self.tables.get(s).map(|(t, _)| t.clone())).collect()
    }

    /// Loads tables from a cache file written by [`TableCache::save`]; a missing file is an empty cache.
    pub fn load(path: &std::path::Path) -> tmescope_core::Result<Self> {
        let mut cache = TableCache { persist: true, ..TableCache::new() };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(tmescope_core::Error::io(path, e)),
        };
        let bad = || tmescope_core::Error::file(path, "not a tmescope likelihood cache (delete it to rebuild)");
        let mut pos = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = bytes.get(pos..pos + n)?;
            pos += n;
            Some(s)
        };
        if take(8) != Some(CACHE_MAGIC.as_slice()) {
            return Err(bad());
        }
        let u32_of = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let n_tables = u32_of(take(4).ok_or_else(bad)?) as usize;
        for _ in 0..n_tables {
            let sigma_index = u32_of(take(4).ok_or_else(bad)?);
            let n_rows = u32_of(take(4).ok_or_else(bad)?) as usize;
            if n_rows == 0 || n_rows > K_MAX + 1 {
                return Err(bad());
            }
            let len = 3 * n_rows * N_KNOTS;
            let raw = take(len * 8).ok_or_else(bad)?;
            let v: Vec<f64> = raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
            let table = LikelihoodTable::from_values(sigma_index, n_rows, v);
            cache.tables.insert(sigma_index, (std::sync::Arc::new(table), vec![n_rows; N_KNOTS]));
        }
        Ok(cache)
    }

    /// Writes every complete table held to `path` (atomically).
    pub fn save(&self, path: &std::path::Path) -> tmescope_core::Result<()> {
        let complete: Vec<&LikelihoodTable> = self
            .tables
            .values()
            .filter(|(t, rows)| rows.iter().all(|&r| r == t.n_rows))
            .map(|(t, _)| t.as_ref())
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&(complete.len() as u32).to_le_bytes());
        for t in complete {
            out.extend_from_slice(&t.sigma_index.to_le_bytes());
            out.extend_from_slice(&(t.n_rows as u32).to_le_bytes());
            for v in &t.v {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        tmescope_core::output::atomic_write(path, |tmp| {
            std::fs::write(tmp, &out).map_err(|e| tmescope_core::Error::io(tmp, e))
        })
    }
}

/// Identifies a cache file and its layout (grid, quadrature) version.
const CACHE_MAGIC: &[u8; 8] = b"TMSQTB02";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_density_integrates_to_one_and_is_continuous() {
        let s = 0.8;
        let h = 0.0005;
        let total: f64 = (-400_000..=400_000).map(|i| log_noise_density(i as f64 * h, s).exp() * h).sum();
        // The heavy tails beyond |eps| = 200 hold about 3a * s / 200 ~ 2e-5 of the mass.
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        let below = log_noise_density(3.0 * s - 1e-9, s);
        let above = log_noise_density(3.0 * s + 1e-9, s);
        assert!((below - above).abs() < 1e-6);
    }

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(3.0 / std::f64::consts::SQRT_2) - 0.997_300_203_936_739_8).abs() < 1e-14);
        assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-14);
        assert!((erf(4.0) - 0.999_999_984_582_742_1).abs() < 1e-14);
    }

    #[test]
    fn recurrence_table_matches_direct_quadrature() {
        let t = LikelihoodTable::compute(84, 60);
        for &(k, i) in &[(0usize, 0usize), (0, 200), (1, 5), (3, 100), (17, 50), (40, 332), (60, 300)] {
            let direct = q_direct(0.84, k, knot(i));
            let tab = t.v[3 * (k * N_KNOTS + i)];
            assert!((direct - tab).abs() < 1e-9 * direct.abs().max(1.0), "k {k} knot {i}: {direct} vs {tab}");
        }
    }

    #[test]
    fn interpolation_matches_direct_quadrature_between_knots() {
        for sigma_index in [10u32, 84, 200] {
            let sigma = sigma_index as f64 / 100.0;
            let t = LikelihoodTable::compute(sigma_index, 40);
            // Between knots, from 1e-4 (where Q(k >= 1) behaves like k ln x) to the top of the grid.
            for &x in &[1.3e-4, 2.7e-3, 0.0186, 0.157, 0.83, 3.1, 17.7, 123.4, 1499.0] {
                for &k in &[0usize, 1, 2, 5, 17, 40] {
                    let v = t.eval(k, x);
                    let q = q_direct(sigma, k, x);
                    assert!((v.d0 - q).abs() < 1e-7 * q.abs().max(1.0), "sigma {sigma} k {k} x {x}: {} vs {q}", v.d0);
                    // Derivatives against central differences of the direct quadrature.
                    let e = 1e-4 * x;
                    let (qp, qm) = (q_direct(sigma, k, x + e), q_direct(sigma, k, x - e));
                    let d1 = (qp - qm) / (2.0 * e);
                    let d2 = (qp - 2.0 * q + qm) / (e * e);
                    assert!(
                        (v.d1 - d1).abs() < 1e-5 * d1.abs().max(1.0 / x),
                        "d1 sigma {sigma} k {k} x {x}: {} vs {d1}",
                        v.d1
                    );
                    assert!(
                        (v.d2 - d2).abs() < 1e-3 * d2.abs().max(1.0 / (x * x)),
                        "d2 sigma {sigma} k {k} x {x}: {} vs {d2}",
                        v.d2
                    );
                }
            }
        }
    }

    #[test]
    fn derivatives_at_knots_are_those_of_the_poisson_limit() {
        // Without noise, Q = k ln x - x - ln k!: dQ/du = k - x, d2Q/du2 = -x. Rows k, k+1, k+2 of the
        // noiseless table are Pois(k), Pois(k+1), Pois(k+2) at x.
        let x: f64 = 2.5;
        let lf = ln_factorials(6);
        let q = |k: usize| k as f64 * x.ln() - x - lf[k];
        let (du, duu) = derivatives(3, q(3), q(4), q(5));
        assert!((du - (3.0 - x)).abs() < 1e-12 && (duu + x).abs() < 1e-12, "{du} {duu}");
    }

    #[test]
    fn partial_tables_hold_the_complete_tables_entries() {
        let full = LikelihoodTable::compute(84, 40);
        // Points at small x with small counts, at large x with large ones.
        let points = [(0usize, 1.01e-4f64), (3, 0.05), (40, 30.0), (2000, 1e6)];
        let need = knot_rows_needed(points.map(|(k, x)| (k, x.ln())));
        assert_eq!(need.iter().filter(|&&r| r > 0).count(), 8);
        assert_eq!((need[0], need[1], need[N_KNOTS - 2], need[N_KNOTS - 1]), (1, 1, K_MAX + 1, K_MAX + 1));
        let need: Vec<usize> = need.iter().map(|&r| r.min(41)).collect();
        let part = LikelihoodTable::compute_rows(84, &need);
        assert_eq!(part.n_rows, 41);
        for i in 0..N_KNOTS {
            for k in 0..41 {
                for d in 0..3 {
                    let at = 3 * (k * N_KNOTS + i) + d;
                    if k < need[i] {
                        assert_eq!(part.v[at].to_bits(), full.v[at].to_bits(), "knot {i} row {k}");
                    } else {
                        assert!(part.v[at].is_nan());
                    }
                }
            }
        }
        // Extending to every knot gives the complete table, bit for bit.
        let (ext, rows) = LikelihoodTable::extend(84, Some((&part, &need)), &[41; N_KNOTS]);
        assert!(rows.iter().all(|&r| r == 41));
        assert!(ext.v.iter().zip(&full.v).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn scoring_cache_extends_partial_tables() {
        let mut c = TableCache::new();
        let need = knot_rows_needed([(2usize, 0.5f64.ln()), (5, 3.0f64.ln())]);
        let t = c.for_scoring(&[84, 86], &need);
        assert_eq!((t.len(), c.computed), (2, 2));
        assert!(t[0].eval(2, 0.5).d0.is_finite() && t[1].eval(5, 3.0).d0.is_finite());
        // Covered: nothing computed. A complete table extends the partial one.
        let _ = c.for_scoring(&[86], &need);
        assert_eq!(c.computed, 2);
        let full = c.get(84, 5);
        assert_eq!(c.computed, 3);
        assert_eq!(full.eval(4, 1e-3).d0.to_bits(), LikelihoodTable::compute(84, 5).eval(4, 1e-3).d0.to_bits());
        // Only complete tables are saved.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.bin");
        c.save(&p).unwrap();
        let back = TableCache::load(&p).unwrap();
        assert_eq!(back.tables.keys().copied().collect::<Vec<_>>(), vec![84]);
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.bin");
        let mut c = TableCache::new();
        let t = c.get(100, 5);
        c.save(&p).unwrap();
        let mut back = TableCache::load(&p).unwrap();
        let u = back.get(100, 5);
        assert_eq!(back.computed, 0);
        assert_eq!(t.v, u.v);
        std::fs::write(&p, b"junk").unwrap();
        assert!(TableCache::load(&p).is_err());
    }
}
