//! The per-spot weight solver: iteratively reweighted Newton steps with non-negativity.
//!
//! Minimises a separable loss `f(w) = -sum_j l_j((S w)_j)` over `w >= 0` where `S` is genes x types
//! (the spot's total count times the type profiles). Each iteration (Cable et al. 2022, supplement):
//! 1. `lambda = |S max(w, 0)|`, floored at `max(1e-4, 1e-7 N)`;
//! 2. gradient `g = -sum_j l'_j S_j` and Hessian `H = -sum_j l''_j S_j S_j^T`;
//! 3. `H` projected on the positive semi-definite cone (eigenvalues clamped at 1e-3), `H` and `g`
//!    divided by the spectral norm of `H`, `1e-7 I` added;
//! 4. the box QP `min 1/2 d^T H d + g^T d` subject to `w + d >= 0` solved exactly by a primal
//!    active-set method ([`box_qp`]);
//! 5. `w <- max(w, 0) + 0.3 d`; stop when `sum |dw| < tolerance` or after `max_iter` iterations.
//!
//! Two losses are supported: the Poisson-lognormal likelihood through a [`LikelihoodTable`] (per-spot
//! fits) and the squared log error `(ln lambda - ln b)^2` (the pseudo-bulk platform-effect fit).
//! Cost per iteration O(G K^2 + K^3) for G genes and K types. The design is held transposed (types x
//! genes) so the gradient is vectorised dot products over genes and the Hessian's lower triangle is
//! built four entries at a time ([`lower_products`]); the eigenvalues come from a dedicated small
//! symmetric solver ([`crate::eigen`]) and eigenvectors are formed only when an eigenvalue needs clamping
//! (about half the Hessians); the QP starts from the previous step's active bounds. A [`Workspace`] holds
//! every buffer, so the loop does not allocate.

use crate::eigen::SymEigen;
use crate::likelihood::LikelihoodTable;

/// The loss minimised by [`solve_weights`].
#[derive(Debug, Clone, Copy)]
pub enum Loss<'a> {
    /// `-sum_j Q(y_j, lambda_j)`, counts clipped to the table.
    Likelihood(&'a LikelihoodTable),
    /// `sum_j (ln lambda_j - ln y_j)^2` (pseudo-bulk fit).
    SquaredLog,
}

/// Options of the iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolverOptions {
    /// Maximum number of Newton iterations (50 for spots, 25 when scoring type subsets, 100 in bulk).
    pub max_iter: usize,
    /// Stop when `sum |w_new - w_old|` falls below this (1e-3 for spots, 1e-4 in bulk).
    pub tolerance: f64,
    /// Damping of each step (0.3).
    pub step: f64,
}

impl Default for SolverOptions {
    fn default() -> Self {
        SolverOptions { max_iter: 50, tolerance: 1e-3, step: 0.3 }
    }
}

/// Result of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightFit {
    /// Non-negative weights, one per column of `S` (not normalised).
    pub weights: Vec<f64>,
    /// Whether the change fell below the tolerance before `max_iter`.
    pub converged: bool,
    /// Iterations used.
    pub iterations: usize,
}

/// Reusable buffers for [`solve_weights`].
#[derive(Debug, Default)]
pub struct Workspace {
    /// `S` transposed (types x genes), so that sums over genes run over contiguous memory.
    st: Vec<f64>,
    /// `-Q''_j S_ja` (types x genes).
    weighted: Vec<f64>,
    /// Weights before the step.
    old: Vec<f64>,
    lambda: Vec<f64>,
    d1: Vec<f64>,
    d2: Vec<f64>,
    grad: Vec<f64>,
    hess: Vec<f64>,
    lower: Vec<f64>,
    step: Vec<f64>,
    qp: QpScratch,
    eig: SymEigen,
}

/// Solves for the weights of one spot. `s` is genes x types row-major (`n_types` columns), `y` the
/// counts (or pseudo-bulk values) of the same genes, `n_umi` the spot's total (for the floor on
/// `lambda`).
pub fn solve_weights(
    s: &[f64],
    n_types: usize,
    y: &[f64],
    n_umi: f64,
    loss: Loss<'_>,
    opts: &SolverOptions,
    ws: &mut Workspace,
) -> WeightFit {
    let k = n_types;
    let g_n = y.len();
    ws.st.clear();
    ws.st.resize(k * g_n, 0.0);
    for (j, row) in s.chunks_exact(k).take(g_n).enumerate() {
        for (a, &v) in row.iter().enumerate() {
            ws.st[a * g_n + j] = v;
        }
    }
    let mut w = vec![1.0 / k as f64; k];
    let mut converged = false;
    let mut iterations = 0;
    while iterations < opts.max_iter {
        let change = newton_step(k, y, n_umi, loss, opts.step, iterations > 0, &mut w, ws);
        iterations += 1;
        if change <= opts.tolerance {
            converged = true;
            break;
        }
    }
    WeightFit { weights: w, converged, iterations }
}

/// The floor on predicted counts for a spot with `n_umi` counts.
#[inline]
pub fn lambda_floor(n_umi: f64) -> f64 {
    (1e-7 * n_umi).max(1e-4)
}

/// `sum_j a_j b_j` with four partial sums added in a fixed order (vectorisable, deterministic).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let split = a.len().min(b.len()) / 4 * 4;
    for (x, y) in a[..split].chunks_exact(4).zip(b[..split].chunks_exact(4)) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    finish_dot(acc, &a[split..], &b[split..])
}

/// The end of [`dot`] and of each of [`lower_products`]' entries: the four lane sums `acc` combined in a
/// fixed order, plus the products of the leftover elements `a` and `b`, so both give the same bits.
#[inline]
fn finish_dot(acc: [f64; 4], a: &[f64], b: &[f64]) -> f64 {
    let rest = a.iter().zip(b).fold(0.0, |r, (x, y)| r + x * y);
    ((acc[0] + acc[2]) + (acc[1] + acc[3])) + rest
}

/// The lower triangle of `X Y^T` for `k x g` row-major `x` and `y`: `out[a * k + b] = x_a . y_b` for
/// `b <= a` (the upper triangle is left as is). Four entries of a row at a time, so each element of `x_a`
/// is loaded once per four products; every entry is bit for bit the [`dot`] of its two rows.
///
/// Plain Rust on purpose: faer's matrix product (hand-written AVX-512 kernels, run-time dispatched) left
/// the upper halves of the vector registers dirty, and on Intel server cores every later SSE instruction
/// then paid a transition penalty (the sigma search ran 7x slower, likelihood-table building 10x).
fn lower_products(x: &[f64], y: &[f64], k: usize, g: usize, out: &mut [f64]) {
    const COLS: usize = 4;
    const LANES: usize = 4;
    let split = g / LANES * LANES;
    for a in 0..k {
        let xa = &x[a * g..(a + 1) * g];
        let mut b = 0;
        while b + COLS <= a + 1 {
            let ys: [&[f64]; COLS] = std::array::from_fn(|c| &y[(b + c) * g..(b + c + 1) * g]);
            let mut acc = [[0.0f64; LANES]; COLS];
            for j in (0..split).step_by(LANES) {
                let xj = &xa[j..j + LANES];
                for (acc_c, yc) in acc.iter_mut().zip(&ys) {
                    let yj = &yc[j..j + LANES];
                    for l in 0..LANES {
                        acc_c[l] += xj[l] * yj[l];
                    }
                }
            }
            for (c, (&acc_c, yc)) in acc.iter().zip(&ys).enumerate() {
                out[a * k + b + c] = finish_dot(acc_c, &xa[split..], &yc[split..]);
            }
            b += COLS;
        }
        for b in b..=a {
            out[a * k + b] = dot(xa, &y[b * g..(b + 1) * g]);
        }
    }
}

/// One damped Newton step on `ws.st` (the spot's design, types x genes); returns `sum |w_new - w_old|`.
/// `warm`: start the QP from the previous step's active bounds.
fn newton_step(
    k: usize,
    y: &[f64],
    n_umi: f64,
    loss: Loss<'_>,
    alpha: f64,
    warm: bool,
    w: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    let g_n = y.len();
    ws.lambda.clear();
    ws.lambda.resize(g_n, 0.0);
    ws.d1.resize(g_n, 0.0);
    ws.d2.resize(g_n, 0.0);
    ws.grad.clear();
    ws.grad.resize(k, 0.0);
    ws.hess.clear();
    ws.hess.resize(k * k, 0.0);
    let floor = lambda_floor(n_umi);
    ws.old.clear();
    ws.old.extend_from_slice(w);
    for v in w.iter_mut() {
        *v = v.max(0.0);
    }
    // lambda = |S w|, accumulated type by type (in type order, as a row-wise sum would).
    for a in 0..k {
        let wa = w[a];
        for (l, sv) in ws.lambda.iter_mut().zip(&ws.st[a * g_n..(a + 1) * g_n]) {
            *l += sv * wa;
        }
    }
    for l in ws.lambda.iter_mut() {
        *l = l.abs().max(floor);
    }
    match loss {
        Loss::Likelihood(table) => {
            for j in 0..g_n {
                let q = table.eval(y[j] as usize, ws.lambda[j]);
                ws.d1[j] = q.d1;
                ws.d2[j] = q.d2;
            }
        }
        Loss::SquaredLog => {
            for j in 0..g_n {
                let l = ws.lambda[j];
                let r = l.ln() - y[j].ln();
                ws.d1[j] = -2.0 * r / l;
                ws.d2[j] = -2.0 * (1.0 - r) / (l * l);
            }
        }
    }
    // g_a = -sum_j Q'_j S_ja; H = St diag(-Q'') St^T, its lower triangle mirrored so that H is exactly
    // symmetric.
    ws.weighted.resize(k * g_n, 0.0);
    for a in 0..k {
        let col_a = &ws.st[a * g_n..(a + 1) * g_n];
        ws.grad[a] = -dot(&ws.d1, col_a);
        for ((t, d2), sv) in ws.weighted[a * g_n..(a + 1) * g_n].iter_mut().zip(&ws.d2).zip(col_a) {
            *t = -d2 * sv;
        }
    }
    lower_products(&ws.weighted, &ws.st, k, g_n, &mut ws.hess);
    for a in 0..k {
        for b in 0..a {
            ws.hess[b * k + a] = ws.hess[a * k + b];
        }
    }
    let norm = project_psd(&mut ws.hess, k, 1e-3, &mut ws.eig);
    for v in ws.hess.iter_mut() {
        *v /= norm;
    }
    for a in 0..k {
        ws.grad[a] /= norm;
        ws.hess[a * k + a] += 1e-7;
    }
    ws.lower.clear();
    ws.lower.extend(w.iter().map(|v| -v));
    ws.step.clear();
    ws.step.resize(k, 0.0);
    box_qp(&ws.hess, &ws.grad, &ws.lower, &mut ws.step, warm, &mut ws.qp);
    let mut change = 0.0;
    for a in 0..k {
        w[a] += alpha * ws.step[a];
        change += (w[a] - ws.old[a]).abs();
    }
    change
}

/// Replaces the symmetric `k x k` matrix `h` by its projection `V max(L, eps) V^T` and returns its
/// spectral norm (the largest clamped eigenvalue). The eigenvalues come first, without eigenvectors;
/// only when some are below `eps` (about half the Hessians) are the eigenvectors computed, and `h`
/// becomes `h + sum_{l_i < eps} (eps - l_i) v_i v_i^T` (the same matrix, built from the clamped pairs only).
pub fn project_psd(h: &mut [f64], k: usize, eps: f64, eig: &mut SymEigen) -> f64 {
    if k == 1 {
        h[0] = h[0].max(eps);
        return h[0];
    }
    if k == 2 {
        return project_psd_2(h, eps);
    }
    let identity = |h: &mut [f64]| {
        // Non-finite input: fall back to a scaled identity so the step is a gradient step.
        h.iter_mut().for_each(|v| *v = 0.0);
        for a in 0..k {
            h[a * k + a] = 1.0;
        }
        1.0
    };
    if eig.decompose(h, k).is_err() {
        return identity(h);
    }
    let norm = eig.values().iter().fold(eps, |m, &v| m.max(v));
    if eig.values().iter().all(|&v| v >= eps) {
        // Already positive definite beyond eps: the projection is the matrix.
        return norm;
    }
    eig.vectors();
    let v = eig.eigenvectors();
    for (e, &l) in eig.values().iter().enumerate() {
        if l >= eps {
            continue;
        }
        let ve = &v[e * k..(e + 1) * k];
        for i in 0..k {
            let ci = (eps - l) * ve[i];
            for (x, vj) in h[i * k..i * k + i + 1].iter_mut().zip(ve) {
                *x += ci * vj;
            }
        }
    }
    for i in 0..k {
        for j in 0..i {
            h[j * k + i] = h[i * k + j];
        }
    }
    norm
}

/// [`project_psd`] of a symmetric 2 x 2 matrix in closed form (the doublet pair fits): eigenvalues
/// `(a + c)/2 +/- hypot((a - c)/2, b)`, eigenvector of the larger `(l1 - c, b)` or `(b, l1 - a)`
/// (whichever is better conditioned), the other orthogonal to it.
fn project_psd_2(h: &mut [f64], eps: f64) -> f64 {
    let (a, b, c) = (h[0], 0.5 * (h[1] + h[2]), h[3]);
    if !(a.is_finite() && b.is_finite() && c.is_finite()) {
        h.copy_from_slice(&[1.0, 0.0, 0.0, 1.0]);
        return 1.0;
    }
    let mean = 0.5 * (a + c);
    let r = (0.5 * (a - c)).hypot(b);
    let (l1, l2) = (mean + r, mean - r);
    let norm = l1.max(eps);
    if l2 >= eps {
        return norm;
    }
    let (p, q) = if l1 - c >= l1 - a { (l1 - c, b) } else { (b, l1 - a) };
    let len = p.hypot(q);
    let (x, y) = if len > 0.0 { (p / len, q / len) } else { (1.0, 0.0) };
    let (v1, v2) = (l1.max(eps), l2.max(eps));
    // v1 (x, y)(x, y)^T + v2 (-y, x)(-y, x)^T.
    h[0] = v1 * x * x + v2 * y * y;
    h[1] = (v1 - v2) * x * y;
    h[2] = h[1];
    h[3] = v1 * y * y + v2 * x * x;
    norm
}

/// Scratch space of [`box_qp`].
#[derive(Debug, Default)]
pub struct QpScratch {
    at_bound: Vec<bool>,
    free: Vec<usize>,
    sub: Vec<f64>,
    rhs: Vec<f64>,
    x: Vec<f64>,
}

/// Solves `min 1/2 d^T H d + g^T d` subject to `d >= lower` (with `lower <= 0`, so `d = 0` is feasible)
/// for a symmetric positive definite `H`, by the primal active-set method (Nocedal & Wright,
/// Numerical Optimization, Algorithm 16.3). The result is written to `d`.
///
/// With `warm`, the method starts from the bounds active at the end of the previous call on `sc` (the
/// previous Newton step's, which rarely change between steps) instead of from no active bound; the
/// minimiser is unique, so only the work done differs.
pub fn box_qp(h: &[f64], g: &[f64], lower: &[f64], d: &mut [f64], warm: bool, sc: &mut QpScratch) {
    let k = g.len();
    if !warm || sc.at_bound.len() != k {
        sc.at_bound.clear();
        sc.at_bound.resize(k, false);
    }
    // A feasible start: the working set's variables at their bounds, the others at 0 (lower <= 0).
    for i in 0..k {
        d[i] = if sc.at_bound[i] { lower[i] } else { 0.0 };
    }
    for _ in 0..(20 * k + 20) {
        // Minimise over the free variables with the bound ones fixed at their bounds.
        sc.free.clear();
        sc.free.extend((0..k).filter(|&i| !sc.at_bound[i]));
        let nf = sc.free.len();
        sc.sub.clear();
        sc.rhs.clear();
        for &i in &sc.free {
            for &j in &sc.free {
                sc.sub.push(h[i * k + j]);
            }
            let mut r = -g[i];
            for j in 0..k {
                if sc.at_bound[j] {
                    r -= h[i * k + j] * lower[j];
                }
            }
            sc.rhs.push(r);
        }
        sc.x.clear();
        sc.x.extend_from_slice(&sc.rhs);
        if nf > 0 && !cholesky_solve(&mut sc.sub, nf, &mut sc.x) {
            return;
        }
        // Step from d towards x, stopping at the first bound crossed.
        let mut alpha = 1.0;
        let mut blocking = None;
        for (f, &i) in sc.free.iter().enumerate() {
            if sc.x[f] < lower[i] && d[i] > sc.x[f] {
                let a = (d[i] - lower[i]) / (d[i] - sc.x[f]);
                if a < alpha {
                    alpha = a;
                    blocking = Some(i);
                }
            }
        }
        for (f, &i) in sc.free.iter().enumerate() {
            d[i] += alpha * (sc.x[f] - d[i]);
        }
        for i in 0..k {
            if sc.at_bound[i] {
                d[i] = lower[i];
            }
        }
        if let Some(i) = blocking {
            sc.at_bound[i] = true;
            d[i] = lower[i];
            continue;
        }
        // At the minimiser over the free set: release the bound variable with the most negative
        // multiplier (the gradient component pushing it inside), if any.
        let mut worst = None;
        let mut worst_mu = -1e-14;
        for i in 0..k {
            if sc.at_bound[i] {
                let mu: f64 = g[i] + (0..k).map(|j| h[i * k + j] * d[j]).sum::<f64>();
                if mu < worst_mu {
                    worst_mu = mu;
                    worst = Some(i);
                }
            }
        }
        match worst {
            Some(i) => sc.at_bound[i] = false,
            None => return,
        }
    }
}

/// Solves `A x = b` in place for a symmetric positive definite `n x n` `A` (overwritten by its
/// Cholesky factor). Returns false when `A` is not positive definite.
pub fn cholesky_solve(a: &mut [f64], n: usize, b: &mut [f64]) -> bool {
    for j in 0..n {
        let mut s = a[j * n + j];
        for p in 0..j {
            s -= a[j * n + p] * a[j * n + p];
        }
        if s <= 0.0 || !s.is_finite() {
            return false;
        }
        let l = s.sqrt();
        a[j * n + j] = l;
        for i in j + 1..n {
            let mut t = a[i * n + j];
            for p in 0..j {
                t -= a[i * n + p] * a[j * n + p];
            }
            a[i * n + j] = t / l;
        }
    }
    for i in 0..n {
        let mut t = b[i];
        for p in 0..i {
            t -= a[i * n + p] * b[p];
        }
        b[i] = t / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut t = b[i];
        for p in i + 1..n {
            t -= a[p * n + i] * b[p];
        }
        b[i] = t / a[i * n + i];
    }
    true
}

/// Negative log-likelihood `-sum_j Q(y_j, max(lambda_j, 1e-4))` of a prediction.
pub fn nll(table: &LikelihoodTable, y: &[f64], lambda: &[f64]) -> f64 {
    -y.iter().zip(lambda).map(|(&c, &l)| table.eval(c as usize, l).d0).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_qp_matches_hand_solution() {
        // min 1/2 (d0^2 + d1^2) + (-1) d0 + 2 d1, d >= (-0.5, -0.5): unconstrained (1, -2) -> (1, -0.5).
        let h = [1.0, 0.0, 0.0, 1.0];
        let mut d = [0.0; 2];
        box_qp(&h, &[-1.0, 2.0], &[-0.5, -0.5], &mut d, false, &mut QpScratch::default());
        assert!((d[0] - 1.0).abs() < 1e-12 && (d[1] + 0.5).abs() < 1e-12, "{d:?}");
        // Coupled case: KKT must hold.
        let h = [2.0, 1.0, 1.0, 2.0];
        let g = [1.0, -3.0];
        let lower = [-0.2, -1.0];
        box_qp(&h, &g, &lower, &mut d, false, &mut QpScratch::default());
        let r0 = h[0] * d[0] + h[1] * d[1] + g[0];
        let r1 = h[2] * d[0] + h[3] * d[1] + g[1];
        assert!((d[0] + 0.2).abs() < 1e-12 && r0 >= 0.0, "{d:?} {r0}");
        assert!(r1.abs() < 1e-12, "{r1}");
    }

    #[test]
    fn box_qp_warm_start_finds_the_same_minimiser() {
        // A coupled 4-variable problem solved cold, then warm from a wrong working set.
        let h = [4.0, 1.0, 0.5, 0.0, 1.0, 3.0, 0.2, 0.1, 0.5, 0.2, 2.0, 0.3, 0.0, 0.1, 0.3, 1.0];
        let g = [2.0, -1.0, 3.0, -0.5];
        let lower = [-0.1, -0.2, -0.3, -0.05];
        let mut cold = [0.0; 4];
        let mut sc = QpScratch::default();
        box_qp(&h, &g, &lower, &mut cold, false, &mut sc);
        // Variables 0 and 2 are pushed to their bounds, 1 and 3 are interior.
        assert!((cold[0] + 0.1).abs() < 1e-12 && (cold[2] + 0.3).abs() < 1e-12, "{cold:?}");
        sc.at_bound = vec![false, true, false, true];
        let mut warm = [0.0; 4];
        box_qp(&h, &g, &lower, &mut warm, true, &mut sc);
        for i in 0..4 {
            assert!((warm[i] - cold[i]).abs() < 1e-12, "{warm:?} vs {cold:?}");
        }
    }

    #[test]
    fn psd_projection_clamps_negative_eigenvalues() {
        let mut h = vec![1.0, 2.0, 2.0, 1.0]; // eigenvalues 3 and -1
        let norm = project_psd(&mut h, 2, 1e-3, &mut SymEigen::default());
        assert!((norm - 3.0).abs() < 1e-12);
        // (3 + 0.001)/2 on the diagonal, (3 - 0.001)/2 off it.
        assert!((h[0] - 1.5005).abs() < 1e-12 && (h[1] - 1.4995).abs() < 1e-12, "{h:?}");
    }

    #[test]
    fn psd_projection_of_2x2_matches_the_general_one() {
        // The closed form against a 3 x 3 embedding with a decoupled large third eigenvalue (general path).
        for m in [[1.0, 2.0, 2.0, 1.0], [4.0, 0.5, 0.5, -3.0], [-1.0, 0.0, 0.0, 2.0], [2.0, 0.3, 0.3, 5.0]] {
            let mut h2 = m.to_vec();
            let n2 = project_psd(&mut h2, 2, 1e-3, &mut SymEigen::default());
            let mut h3 = vec![m[0], m[1], 0.0, m[2], m[3], 0.0, 0.0, 0.0, 100.0];
            let _ = project_psd(&mut h3, 3, 1e-3, &mut SymEigen::default());
            // The norm is the largest eigenvalue: the trace minus the smaller one.
            let l2 = 0.5 * (m[0] + m[3]) - (0.5 * (m[0] - m[3])).hypot(m[1]);
            assert!((n2 - (m[0] + m[3] - l2)).abs() < 1e-12, "{n2}");
            for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                assert!((h2[i * 2 + j] - h3[i * 3 + j]).abs() < 1e-12, "{m:?}: {h2:?} vs {h3:?}");
            }
        }
    }

    #[test]
    fn lower_products_equal_the_dot_products() {
        let mut st = 11u64;
        let mut rnd = || {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((st >> 11) as f64) / (1u64 << 53) as f64 - 0.5
        };
        for k in 1..=9 {
            for g in [0, 1, 3, 4, 7, 13, 64] {
                let x: Vec<f64> = (0..k * g).map(|_| rnd()).collect();
                let y: Vec<f64> = (0..k * g).map(|_| rnd()).collect();
                let mut out = vec![f64::NAN; k * k];
                lower_products(&x, &y, k, g, &mut out);
                for a in 0..k {
                    for b in 0..k {
                        let got = out[a * k + b];
                        if b <= a {
                            let want = dot(&x[a * g..(a + 1) * g], &y[b * g..(b + 1) * g]);
                            assert_eq!(got.to_bits(), want.to_bits(), "k {k} g {g} ({a}, {b})");
                        } else {
                            assert!(got.is_nan(), "upper triangle written at ({a}, {b})");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn psd_projection_equals_the_full_eigen_reconstruction() {
        // A 20 x 20 Hessian-like matrix S^T D S with some negative curvature, against V max(L, eps) V^T
        // built from faer's eigen-decomposition.
        let (k, g) = (20, 60);
        let mut st = 7u64;
        let mut rnd = || {
            st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((st >> 11) as f64) / (1u64 << 53) as f64
        };
        let s: Vec<f64> = (0..g * k).map(|_| rnd()).collect();
        let dd: Vec<f64> = (0..g).map(|_| rnd() - 0.3).collect();
        let h: Vec<f64> =
            (0..k * k).map(|ab| (0..g).map(|j| dd[j] * s[j * k + ab / k] * s[j * k + ab % k]).sum()).collect();
        let evd = faer::Mat::<f64>::from_fn(k, k, |i, j| h[i * k + j]).self_adjoint_eigen(faer::Side::Lower).unwrap();
        let vals: Vec<f64> = (0..k).map(|e| evd.S().column_vector()[e].max(1e-3)).collect();
        assert!(vals.contains(&1e-3), "the test matrix needs clamping");
        let mut p = h.clone();
        let norm = project_psd(&mut p, k, 1e-3, &mut SymEigen::default());
        assert!((norm - vals[k - 1]).abs() < 1e-10 * norm);
        for i in 0..k {
            for j in 0..k {
                let want: f64 = (0..k).map(|e| evd.U()[(i, e)] * vals[e] * evd.U()[(j, e)]).sum();
                assert!((p[i * k + j] - want).abs() < 1e-10 * norm, "({i}, {j}): {} vs {want}", p[i * k + j]);
            }
        }
    }

    #[test]
    fn squared_log_fit_recovers_mixture() {
        // Three genes, two types; b = X (0.3, 0.7) exactly.
        let x = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5];
        let b = [0.3, 0.7, 0.5];
        let opts = SolverOptions { max_iter: 200, tolerance: 1e-10, step: 0.3 };
        let fit = solve_weights(&x, 2, &b, 1.0, Loss::SquaredLog, &opts, &mut Workspace::default());
        assert!((fit.weights[0] - 0.3).abs() < 1e-6 && (fit.weights[1] - 0.7).abs() < 1e-6, "{:?}", fit.weights);
        assert!(fit.converged);
    }
}
