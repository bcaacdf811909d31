//! Baselines: non-negative least squares and the Poisson maximum-likelihood EM.
//!
//! - [`nnls`]: `min_{b >= 0} ||A b - y||^2` by the active-set algorithm of Lawson & Hanson (Solving
//!   Least Squares Problems, 1974, ch. 23), run on the normal equations (`A^T A`, `A^T y`), which is
//!   exact for the small number of columns (cell types) used here. O(K^3) per outer iteration.
//! - [`poisson_em`]: the multiplicative EM update for `y ~ Poisson(A b)`,
//!   `b <- b * (A^T (y / (A b))) / (A^T 1)`, which keeps `b >= 0` and never decreases the
//!   likelihood. O(G K) per iteration.
//!
//! Both are the floor a Poisson-lognormal model has to beat (Sang-aram et al., eLife 2024).

use crate::solver::cholesky_solve;

/// Solves `min_{b >= 0} ||A b - y||^2` given `ata = A^T A` (k x k, row-major) and `aty = A^T y`.
pub fn nnls(ata: &[f64], aty: &[f64], k: usize) -> Vec<f64> {
    let mut x = vec![0.0; k];
    let mut passive = vec![false; k];
    let tol = 1e-12 * aty.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let gradient = |x: &[f64], j: usize| aty[j] - (0..k).map(|i| ata[j * k + i] * x[i]).sum::<f64>();
    let mut sub = Vec::new();
    let mut z = Vec::new();
    for _outer in 0..(3 * k + 10) {
        // Most positive gradient component among the active (zero) variables.
        let mut best = None;
        let mut best_w = tol;
        for j in 0..k {
            if !passive[j] {
                let w = gradient(&x, j);
                if w > best_w {
                    best_w = w;
                    best = Some(j);
                }
            }
        }
        let Some(j) = best else { break };
        passive[j] = true;
        for _inner in 0..(3 * k + 10) {
            let idx: Vec<usize> = (0..k).filter(|&i| passive[i]).collect();
            let p = idx.len();
            sub.clear();
            for &a in &idx {
                for &b in &idx {
                    sub.push(ata[a * k + b]);
                }
            }
            z.clear();
            z.extend(idx.iter().map(|&a| aty[a]));
            if !cholesky_solve(&mut sub, p, &mut z) {
                // Singular sub-problem (collinear profiles): drop the variable just added.
                passive[j] = false;
                return x;
            }
            if z.iter().all(|&v| v > 0.0) {
                for (f, &a) in idx.iter().enumerate() {
                    x[a] = z[f];
                }
                break;
            }
            // Move towards z until a passive variable hits zero; make it active.
            let mut alpha = f64::INFINITY;
            for (f, &a) in idx.iter().enumerate() {
                if z[f] <= 0.0 {
                    let t = x[a] / (x[a] - z[f]);
                    alpha = alpha.min(t);
                }
            }
            for (f, &a) in idx.iter().enumerate() {
                x[a] += alpha * (z[f] - x[a]);
                if x[a] <= 1e-15 {
                    x[a] = 0.0;
                    passive[a] = false;
                }
            }
        }
    }
    x
}

/// Poisson EM: `a` is genes x types (row-major), `y` the counts. Runs until the relative change of
/// every weight is below `tol` or `max_iter` iterations. Starts from equal weights summing to
/// `sum(y) / sum(A)` per type.
pub fn poisson_em(a: &[f64], k: usize, y: &[f64], max_iter: usize, tol: f64) -> Vec<f64> {
    let g = y.len();
    let col_sum: Vec<f64> = (0..k).map(|t| (0..g).map(|j| a[j * k + t]).sum()).collect();
    let total: f64 = y.iter().sum();
    let mut b: Vec<f64> = col_sum.iter().map(|&c| if c > 0.0 { total / (c * k as f64) } else { 0.0 }).collect();
    let mut num = vec![0.0; k];
    for _ in 0..max_iter {
        num.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..g {
            if y[j] == 0.0 {
                continue;
            }
            let row = &a[j * k..(j + 1) * k];
            let pred: f64 = row.iter().zip(&b).map(|(r, w)| r * w).sum();
            if pred <= 0.0 {
                continue;
            }
            let r = y[j] / pred;
            for t in 0..k {
                num[t] += row[t] * r;
            }
        }
        let mut change = 0.0f64;
        for t in 0..k {
            if col_sum[t] > 0.0 {
                let nb = b[t] * num[t] / col_sum[t];
                change = change.max((nb - b[t]).abs() / nb.abs().max(1e-12));
                b[t] = nb;
            }
        }
        if change < tol {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal_equations(a: &[f64], k: usize, y: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let g = y.len();
        let mut ata = vec![0.0; k * k];
        let mut aty = vec![0.0; k];
        for j in 0..g {
            for p in 0..k {
                aty[p] += a[j * k + p] * y[j];
                for q in 0..k {
                    ata[p * k + q] += a[j * k + p] * a[j * k + q];
                }
            }
        }
        (ata, aty)
    }

    #[test]
    fn nnls_exact_and_clipped() {
        let a = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let (ata, aty) = normal_equations(&a, 2, &[2.0, 3.0, 5.0]);
        let x = nnls(&ata, &aty, 2);
        assert!((x[0] - 2.0).abs() < 1e-12 && (x[1] - 3.0).abs() < 1e-12, "{x:?}");
        // y favours a negative second coefficient: NNLS clips it to 0.
        let (ata, aty) = normal_equations(&a, 2, &[4.0, -2.0, 2.0]);
        let x = nnls(&ata, &aty, 2);
        assert_eq!(x[1], 0.0);
        assert!((x[0] - 3.0).abs() < 1e-12, "{x:?}");
    }

    #[test]
    fn poisson_em_recovers_weights() {
        let a = [0.5, 0.1, 0.3, 0.1, 0.2, 0.8];
        let b = [100.0, 40.0];
        let y: Vec<f64> = (0..3).map(|j| a[j * 2] * b[0] + a[j * 2 + 1] * b[1]).collect();
        let est = poisson_em(&a, 2, &y, 10_000, 1e-12);
        assert!((est[0] - 100.0).abs() < 1e-4 && (est[1] - 40.0).abs() < 1e-4, "{est:?}");
    }
}
