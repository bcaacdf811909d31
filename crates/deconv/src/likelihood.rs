//! The Poisson-lognormal likelihood tables of the RCTD model (Cable et al., Nat Biotechnol 2022).
//!
//! A count `k` observed with expected value `x` and multiplicative log-noise `eps ~ p_sigma` has
//! likelihood `integral Pois(k; x e^eps) p_sigma(eps) d eps`. Its logarithm `Q_sigma[k](x)` is tabulated
//! by quadrature on `eps in [-20, 20]` (step 0.004, 10,001 points) for `k = 0..=K` (K = 1000, larger
//! counts are clipped) on 439 `x` knots from 1e-4 to 1600, quadratic in the index, and interpolated in
//! `x` by a natural cubic spline per row, which also gives the first and second derivatives the
//! Newton solver needs.
//!
//! # Noise density
//! With `z = eps / sigma`: `C phi(z)` for `|z| < 3` and `C a / (|z| - 7/3)^2` beyond, where
//! `a = (4/9) e^{-9/2} / sqrt(2 pi)` makes the density continuous at `|z| = 3` and `C` normalises it
//! over the whole line (a Gaussian with heavy tails, so that outlier genes cost a bounded amount).
//!
//! # Cost
//! A full table is 10,001 x 1,001 x 439 ~ 4.4e9 terms. Row `k + 1` follows from row `k` by one
//! multiplication per quadrature point (`Pois(k+1; l) = Pois(k; l) l / (k + 1)`), so only one `exp`
//! per point is taken every [`BLOCK`] rows (rescaled to avoid under/overflow) and the rest is a
//! vectorisable multiply-add over the 10,001 points. Rows are computed only up to the largest count
//! needed, points whose expected count exceeds 3,000 are skipped (their terms are below e^-900), and
//! knots are computed in parallel. Time O(n_points x n_knots x (k_max + 1)); memory
//! O(n_knots x (k_max + 1)) per table.

use rayon::prelude::*;

/// Largest tabulated count; larger counts are clipped to it.
pub const K_MAX: usize = 1000;
/// Number of `x` knots.
pub const N_KNOTS: usize = 439;
/// Smallest knot (and smallest expected count used).
pub const X_MIN: f64 = 1e-4;
/// Largest knot.
pub const X_MAX: f64 = 1600.0;
/// Quadrature half-width on the log-noise axis.
const Y_LIMIT: f64 = 20.0;
/// Quadrature step.
const Y_STEP: f64 = 0.004;
/// Rows computed by recurrence after each rescaled `exp` evaluation.
pub const BLOCK: usize = 16;
/// Quadrature points whose expected count exceeds this contribute nothing measurable for k <= 1000.
const LAMBDA_CUT: f64 = 3000.0;

/// The `i`-th knot of the `x` grid (quadratic in the index).
#[inline]
pub fn knot(i: usize) -> f64 {
    let t = i as f64 / (N_KNOTS - 1) as f64;
    X_MIN + (X_MAX - X_MIN) * t * t
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

/// One likelihood table: values and spline second derivatives for rows `0..n_rows`.
#[derive(Debug, Clone)]
pub struct LikelihoodTable {
    /// Sigma in hundredths (84 = 0.84).
    pub sigma_index: u32,
    /// Number of count rows held (counts `0..n_rows`); larger counts are clipped to `n_rows - 1` only
    /// when `n_rows - 1 == K_MAX`, else they are an internal error caught by [`LikelihoodTable::rows_for`].
    pub n_rows: usize,
    /// `Q[k * N_KNOTS + i]`.
    pub q: Vec<f64>,
    /// Natural-spline second derivatives, same layout.
    pub m: Vec<f64>,
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
    /// Computes the table for `sigma_index / 100` for counts `0..=k_needed` (clipped at [`K_MAX`]).
    pub fn compute(sigma_index: u32, k_needed: usize) -> Self {
        let sigma = sigma_index as f64 / 100.0;
        let n_rows = k_needed.min(K_MAX) + 1;
        let n_points = ((2.0 * Y_LIMIT / Y_STEP).round() as usize) + 1;
        let ys: Vec<f64> = (0..n_points).map(|i| -Y_LIMIT + i as f64 * Y_STEP).collect();
        let exp_y: Vec<f64> = ys.iter().map(|y| y.exp()).collect();
        // The quadrature weight (step) folded into the log density.
        let log_w: Vec<f64> = ys.iter().map(|&y| log_noise_density(y, sigma) + Y_STEP.ln()).collect();
        let lnfact = ln_factorials(n_rows);
        // Column (knot) by column, in parallel: each knot fills its entries of every row.
        let columns: Vec<Vec<f64>> =
            (0..N_KNOTS).into_par_iter().map(|i| column(knot(i), n_rows, &ys, &exp_y, &log_w, &lnfact)).collect();
        let mut q = vec![0.0; n_rows * N_KNOTS];
        for (i, col) in columns.iter().enumerate() {
            for k in 0..n_rows {
                q[k * N_KNOTS + i] = col[k];
            }
        }
        let knots: Vec<f64> = (0..N_KNOTS).map(knot).collect();
        let mut m = vec![0.0; n_rows * N_KNOTS];
        m.par_chunks_mut(N_KNOTS)
            .zip(q.par_chunks(N_KNOTS))
            .for_each(|(mrow, qrow)| natural_spline_second_derivatives(&knots, qrow, mrow));
        LikelihoodTable { sigma_index, n_rows, q, m }
    }

    /// Largest count this table can evaluate without clipping beyond [`K_MAX`].
    pub fn max_count(&self) -> usize {
        self.n_rows - 1
    }

    /// `Q(k, x)` with derivatives: `k` clipped to the table (callers compute tables up to the largest
    /// count they use, so clipping happens only at [`K_MAX`]), `x` clamped to `[X_MIN, X_MAX - X_MIN]`.
    #[inline]
    pub fn eval(&self, k: usize, x: f64) -> QValue {
        let k = k.min(self.n_rows - 1);
        let x = x.clamp(X_MIN, X_MAX - X_MIN);
        // Index arithmetic on the quadratic grid: t = sqrt((x - X_MIN) / (X_MAX - X_MIN)) * (n - 1).
        let t = ((x - X_MIN) / (X_MAX - X_MIN)).sqrt() * (N_KNOTS - 1) as f64;
        let mut l = (t as usize).min(N_KNOTS - 2);
        // Rounding in the square root can put x just outside [knot(l), knot(l+1)]: fix by one step.
        if x < knot(l) && l > 0 {
            l -= 1;
        } else if x > knot(l + 1) && l + 2 < N_KNOTS {
            l += 1;
        }
        let (x0, x1) = (knot(l), knot(l + 1));
        let h = x1 - x0;
        let row = k * N_KNOTS;
        let (f0, f1) = (self.q[row + l], self.q[row + l + 1]);
        let (m0, m1) = (self.m[row + l], self.m[row + l + 1]);
        let a = x - x0;
        let b = x1 - x;
        let c1 = f1 / h - m1 * h / 6.0;
        let c0 = f0 / h - m0 * h / 6.0;
        let d0 = m1 * a * a * a / (6.0 * h) + m0 * b * b * b / (6.0 * h) + c1 * a + c0 * b;
        let d1 = m1 * a * a / (2.0 * h) - m0 * b * b / (2.0 * h) + c1 - c0;
        let d2 = m1 * a / h + m0 * b / h;
        QValue { d0, d1, d2 }
    }
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
        for j in 0..n_use {
            let v = kf * (ln_x + ys[j]) - lambda[j] - lnfact[k0] + log_w[j];
            logt[j] = v;
            if v > max {
                max = v;
            }
        }
        for j in 0..n_use {
            t[j] = (logt[j] - max).exp();
        }
        let k_end = (k0 + BLOCK).min(n_rows);
        for k in k0..k_end {
            let s: f64 = t.iter().sum();
            out[k] = max + s.ln();
            if k + 1 < k_end {
                let inv = 1.0 / (k + 1) as f64;
                for (tj, lj) in t.iter_mut().zip(&lambda) {
                    *tj *= lj * inv;
                }
            }
        }
        k0 = k_end;
    }
    out
}

/// Second derivatives of the natural cubic spline through `(x, f)` (zero at both ends), by the
/// tridiagonal (Thomas) algorithm.
pub fn natural_spline_second_derivatives(x: &[f64], f: &[f64], m: &mut [f64]) {
    let n = x.len();
    m.iter_mut().for_each(|v| *v = 0.0);
    if n < 3 {
        return;
    }
    // Unknowns m[1..n-1]: h_{i-1} m_{i-1} + 2 (h_{i-1} + h_i) m_i + h_i m_{i+1} = 6 (s_i - s_{i-1}).
    let mut c_prime = vec![0.0; n];
    let mut d_prime = vec![0.0; n];
    for i in 1..n - 1 {
        let h0 = x[i] - x[i - 1];
        let h1 = x[i + 1] - x[i];
        let rhs = 6.0 * ((f[i + 1] - f[i]) / h1 - (f[i] - f[i - 1]) / h0);
        let diag = 2.0 * (h0 + h1);
        let lower = if i > 1 { h0 } else { 0.0 };
        let denom = diag - lower * c_prime[i - 1];
        c_prime[i] = if i < n - 2 { h1 / denom } else { 0.0 };
        d_prime[i] = (rhs - lower * d_prime[i - 1]) / denom;
    }
    m[n - 2] = d_prime[n - 2];
    for i in (1..n - 2).rev() {
        m[i] = d_prime[i] - c_prime[i] * m[i + 1];
    }
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
#[derive(Debug, Default)]
pub struct TableCache {
    tables: std::collections::BTreeMap<u32, std::sync::Arc<LikelihoodTable>>,
    /// Number of tables computed (not loaded) in this run.
    pub computed: usize,
}

impl TableCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table for `sigma_index` covering counts up to `k_needed` (clipped at [`K_MAX`]).
    pub fn get(&mut self, sigma_index: u32, k_needed: usize) -> std::sync::Arc<LikelihoodTable> {
        let need = k_needed.min(K_MAX);
        if let Some(t) = self.tables.get(&sigma_index) {
            if t.max_count() >= need {
                return t.clone();
            }
        }
        let t = std::sync::Arc::new(LikelihoodTable::compute(sigma_index, need));
        self.computed += 1;
        self.tables.insert(sigma_index, t.clone());
        t
    }

    /// Loads tables from a cache file written by [`TableCache::save`]; a missing file is an empty cache.
    pub fn load(path: &std::path::Path) -> tmescope_core::Result<Self> {
        let mut cache = TableCache::new();
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
            let len = n_rows * N_KNOTS;
            let mut read_vec = |len: usize| -> Option<Vec<f64>> {
                let s = take(len * 8)?;
                Some(s.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
            };
            let q = read_vec(len).ok_or_else(bad)?;
            let m = read_vec(len).ok_or_else(bad)?;
            cache.tables.insert(sigma_index, std::sync::Arc::new(LikelihoodTable { sigma_index, n_rows, q, m }));
        }
        Ok(cache)
    }

    /// Writes every table held to `path` (atomically).
    pub fn save(&self, path: &std::path::Path) -> tmescope_core::Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(CACHE_MAGIC);
        out.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for t in self.tables.values() {
            out.extend_from_slice(&t.sigma_index.to_le_bytes());
            out.extend_from_slice(&(t.n_rows as u32).to_le_bytes());
            for v in t.q.iter().chain(&t.m) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        tmescope_core::output::atomic_write(path, |tmp| {
            std::fs::write(tmp, &out).map_err(|e| tmescope_core::Error::io(tmp, e))
        })
    }
}

/// Identifies a cache file and its layout (grid, quadrature) version.
const CACHE_MAGIC: &[u8; 8] = b"TMSQTB01";

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
        for &(k, i) in &[(0usize, 0usize), (0, 200), (1, 5), (3, 100), (17, 50), (40, 438), (60, 300)] {
            let direct = q_direct(0.84, k, knot(i));
            let tab = t.q[k * N_KNOTS + i];
            assert!((direct - tab).abs() < 1e-9 * direct.abs().max(1.0), "k {k} knot {i}: {direct} vs {tab}");
        }
    }

    #[test]
    fn spline_reproduces_knots_and_derivatives() {
        let t = LikelihoodTable::compute(50, 10);
        let v = t.eval(3, knot(120));
        assert!((v.d0 - t.q[3 * N_KNOTS + 120]).abs() < 1e-10);
        // Derivative by finite differences between knots.
        let x = 7.3;
        let e = 1e-5;
        let fd = (t.eval(3, x + e).d0 - t.eval(3, x - e).d0) / (2.0 * e);
        assert!((fd - t.eval(3, x).d1).abs() < 1e-6, "{fd} vs {}", t.eval(3, x).d1);
        let fd2 = (t.eval(3, x + e).d1 - t.eval(3, x - e).d1) / (2.0 * e);
        assert!((fd2 - t.eval(3, x).d2).abs() < 1e-5);
        // Between knots the spline stays close to the direct quadrature.
        assert!((t.eval(3, x).d0 - q_direct(0.5, 3, x)).abs() < 1e-4);
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
        assert_eq!(t.q, u.q);
        std::fs::write(&p, b"junk").unwrap();
        assert!(TableCache::load(&p).is_err());
    }
}
