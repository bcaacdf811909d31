//! Eigenvalues (and, on demand, eigenvectors) of the small dense symmetric matrices of the per-spot
//! solver, where a general library's set-up cost dominates (a 20 x 20 Hessian per Newton iteration).
//!
//! Textbook algorithms (Golub & Van Loan, Matrix Computations, 4th ed., sections 8.3.1 and 8.3.5;
//! Wilkinson & Reinsch, Handbook for Automatic Computation II, "tred2"/"tql2"):
//! 1. Householder reduction to tridiagonal form `A = Q T Q^T`, the reflectors kept;
//! 2. the implicit QL iteration with Wilkinson shifts on `T`, first for the eigenvalues only;
//! 3. only if some eigenvector is needed, `Q` accumulated from the reflectors and the rotations the QL
//!    iteration recorded applied to it (no second pass of the iteration's sequential square roots and
//!    divisions).
//!
//! The positive semi-definite projection of the solver needs the eigenvectors only when an eigenvalue
//! is below the clamp (about half the Hessians), and then only those eigenpairs: the projection is
//! `A + sum_{l_i < eps} (eps - l_i) v_i v_i^T`.

/// Scratch space and result of [`SymEigen::decompose`] for an `n x n` matrix.
#[derive(Debug, Default)]
pub struct SymEigen {
    n: usize,
    /// Householder vectors, row `k` holding `v_k` in columns `k + 1..n`, row-major `n x n`.
    reflectors: Vec<f64>,
    beta: Vec<f64>,
    /// Diagonal and off-diagonal of `T` (`off[i]` couples `i` and `i + 1`).
    diag: Vec<f64>,
    off: Vec<f64>,
    /// Eigenvalues (unsorted) after [`SymEigen::decompose`].
    values: Vec<f64>,
    /// The QL iteration's Givens rotations `(i, s, c)`, in order.
    rotations: Vec<(usize, f64, f64)>,
    scratch: Vec<f64>,
    /// The reduced matrix during [`SymEigen::decompose`]; the eigenvectors as rows of a row-major
    /// `n x n` matrix after [`SymEigen::vectors`].
    vectors: Vec<f64>,
}

/// The QL iteration did not converge (or the input was not finite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoConvergence;

impl SymEigen {
    /// Reduces the symmetric row-major `n x n` matrix `a` (only its lower triangle is read) and computes
    /// its eigenvalues, available from [`SymEigen::values`].
    pub fn decompose(&mut self, a: &[f64], n: usize) -> Result<(), NoConvergence> {
        if a[..n * n].iter().any(|v| !v.is_finite()) {
            return Err(NoConvergence);
        }
        self.n = n;
        self.tridiagonalize(a);
        self.values.clear();
        self.values.extend_from_slice(&self.diag);
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.off);
        self.rotations.clear();
        ql_implicit(&mut self.values, &mut self.scratch, &mut self.rotations)
    }

    /// The eigenvalues of the last [`SymEigen::decompose`], in no particular order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Computes the eigenvectors of the last [`SymEigen::decompose`], then available from
    /// [`SymEigen::eigenvectors`]: `Q^T` with the recorded rotations applied to its rows.
    pub fn vectors(&mut self) {
        let n = self.n;
        self.accumulate_q();
        for &(i, s, c) in &self.rotations {
            let (lo, hi) = self.vectors[i * n..(i + 2) * n].split_at_mut(n);
            for (zi, zi1) in lo.iter_mut().zip(hi.iter_mut()) {
                let (a, b) = (*zi, *zi1);
                *zi1 = s * a + c * b;
                *zi = c * a - s * b;
            }
        }
    }

    /// After [`SymEigen::vectors`]: row `i` of this row-major `n x n` matrix is the unit eigenvector of
    /// `values()[i]`.
    pub fn eigenvectors(&self) -> &[f64] {
        &self.vectors
    }

    /// Householder reduction `T = H_{n-3} ... H_0 A H_0 ... H_{n-3}`, each `H_k = I - beta_k v_k v_k^T`
    /// acting on rows and columns `k + 1..n` (`v_k` kept in row `k` of `self.reflectors`).
    fn tridiagonalize(&mut self, a: &[f64]) {
        let n = self.n;
        // Working copy, mirrored from the lower triangle; overwritten by the reduced matrix.
        let w = &mut self.vectors;
        w.clear();
        w.resize(n * n, 0.0);
        for i in 0..n {
            for j in 0..=i {
                w[i * n + j] = a[i * n + j];
                w[j * n + i] = a[i * n + j];
            }
        }
        let refl = &mut self.reflectors;
        refl.clear();
        refl.resize(n * n, 0.0);
        self.beta.clear();
        self.beta.resize(n, 0.0);
        self.diag.clear();
        self.diag.resize(n, 0.0);
        self.off.clear();
        self.off.resize(n, 0.0);
        self.scratch.clear();
        self.scratch.resize(n, 0.0);
        let p = &mut self.scratch;
        for k in 0..n.saturating_sub(2) {
            // x = column k below the diagonal (= row k right of it).
            let x0 = w[k * n + k + 1];
            let tail: f64 = w[k * n + k + 2..(k + 1) * n].iter().map(|x| x * x).sum();
            if tail == 0.0 {
                // Already tridiagonal in this column: H_k = I.
                self.off[k] = x0;
                continue;
            }
            let norm2 = x0 * x0 + tail;
            let alpha = if x0 >= 0.0 { -norm2.sqrt() } else { norm2.sqrt() };
            // v = x - alpha e_1, beta = 2 / v^T v.
            let v = &mut refl[k * n..(k + 1) * n];
            v[k + 1..].copy_from_slice(&w[k * n + k + 1..(k + 1) * n]);
            v[k + 1] = x0 - alpha;
            let beta = 2.0 / (tail + v[k + 1] * v[k + 1]);
            self.beta[k] = beta;
            self.off[k] = alpha;
            // p = beta A22 v; p -= (beta/2)(v^T p) v; A22 -= v p^T + p v^T (both triangles: the
            // same arithmetic, so the result stays exactly symmetric).
            for i in k + 1..n {
                let row = &w[i * n + k + 1..(i + 1) * n];
                p[i] = beta * row.iter().zip(&v[k + 1..]).map(|(x, y)| x * y).sum::<f64>();
            }
            let vp: f64 = (k + 1..n).map(|i| v[i] * p[i]).sum();
            let half = 0.5 * beta * vp;
            for i in k + 1..n {
                p[i] -= half * v[i];
            }
            for i in k + 1..n {
                let (vi, pi) = (v[i], p[i]);
                let row = &mut w[i * n + k + 1..(i + 1) * n];
                for ((x, vj), pj) in row.iter_mut().zip(&v[k + 1..]).zip(&p[k + 1..]) {
                    *x -= vi * pj + pi * vj;
                }
            }
        }
        for k in 0..n {
            self.diag[k] = w[k * n + k];
        }
        if n >= 2 {
            self.off[n - 2] = w[(n - 1) * n + n - 2];
        }
        if n >= 1 {
            self.off[n - 1] = 0.0;
        }
    }

    /// `Q^T = H_{n-3} ... H_0` into `self.vectors` (its rows are the columns of `Q`), built as
    /// `I H_{n-3} ... H_0` so that every update runs along contiguous rows.
    fn accumulate_q(&mut self) {
        let n = self.n;
        let q = &mut self.vectors;
        q.clear();
        q.resize(n * n, 0.0);
        for i in 0..n {
            q[i * n + i] = 1.0;
        }
        for k in (0..n.saturating_sub(2)).rev() {
            let beta = self.beta[k];
            if beta == 0.0 {
                continue;
            }
            let v = &self.reflectors[k * n + k + 1..(k + 1) * n];
            // Rows above k + 1 are zero in columns k + 1.. at this point.
            for r in k + 1..n {
                let row = &mut q[r * n + k + 1..(r + 1) * n];
                let s = beta * row.iter().zip(v).map(|(x, y)| x * y).sum::<f64>();
                for (x, vj) in row.iter_mut().zip(v) {
                    *x -= s * vj;
                }
            }
        }
    }
}

/// The implicit QL iteration with Wilkinson shifts on the tridiagonal `(d, e)` (`e[i]` couples `i` and
/// `i + 1`, `e[n-1]` unused): `d` becomes the eigenvalues; each rotation `(i, s, c)` (acting on `i` and
/// `i + 1`) is pushed on `rotations`, so that applying them in order to the rows of `Q^T` gives the
/// eigenvectors.
fn ql_implicit(d: &mut [f64], e: &mut [f64], rotations: &mut Vec<(usize, f64, f64)>) -> Result<(), NoConvergence> {
    let n = d.len();
    if n == 0 {
        return Ok(());
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        let mut iter = 0;
        loop {
            // Smallest m >= l with a negligible e[m].
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 60 {
                return Err(NoConvergence);
            }
            // Wilkinson shift from the leading 2 x 2 block.
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            // sqrt(x^2 + y^2) instead of hypot (several times slower in libm): the solver's matrices
            // are far from overflow, and a non-finite value ends in NoConvergence, never a wrong result.
            let mut r = (g * g + 1.0).sqrt();
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut underflow = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = (f * f + g * g).sqrt();
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                rotations.push((i, s, c));
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::{Mat, Side};

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut st = seed;
        let mut rnd = || {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((st >> 11) as f64) / (1u64 << 53) as f64 - 0.5
        };
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = rnd();
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        a
    }

    #[test]
    fn eigenpairs_match_faer_and_reconstruct_the_matrix() {
        for (n, seed) in [(1, 1), (2, 2), (3, 3), (5, 4), (20, 5), (20, 6), (33, 7)] {
            let mut a = random_symmetric(n, seed);
            if seed == 6 {
                // A repeated eigenvalue block and an exactly diagonal row.
                for j in 0..n {
                    a[3 * n + j] = if j == 3 { 0.25 } else { 0.0 };
                    a[j * n + 3] = a[3 * n + j];
                }
            }
            let mut eig = SymEigen::default();
            eig.decompose(&a, n).unwrap();
            let mut vals = eig.values().to_vec();
            let m = Mat::<f64>::from_fn(n, n, |i, j| a[i * n + j]);
            let evd = m.self_adjoint_eigen(Side::Lower).unwrap();
            let s = evd.S().column_vector();
            vals.sort_by(f64::total_cmp);
            for i in 0..n {
                assert!((vals[i] - s[i]).abs() < 1e-12, "n {n}: {} vs {}", vals[i], s[i]);
            }
            eig.vectors();
            let v = eig.eigenvectors().to_vec();
            let l = eig.values();
            for i in 0..n {
                for j in 0..n {
                    let rec: f64 = (0..n).map(|e| v[e * n + i] * l[e] * v[e * n + j]).sum();
                    assert!((rec - a[i * n + j]).abs() < 1e-12, "A = V L V^T at ({i}, {j})");
                    let dot: f64 = (0..n).map(|r| v[i * n + r] * v[j * n + r]).sum();
                    assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12, "V orthogonal");
                }
            }
        }
    }

    #[test]
    fn non_finite_input_is_refused() {
        let mut eig = SymEigen::default();
        assert_eq!(eig.decompose(&[1.0, f64::NAN, f64::NAN, 1.0], 2), Err(NoConvergence));
    }
}
