//! Global spatial autocorrelation: Moran's I and Geary's C with analytic variance and optional permutations.
//!
//! Weights are the graph's edge weights row-normalised (rows sum to 1; squidpy's `transformation=True`),
//! `z = x - mean(x)`, `S0 = sum w`, `S1 = 1/2 sum_ij (w_ij + w_ji)^2`, `S2 = sum_i (w_i. + w_.i)^2`
//! (Cliff & Ord 1981, as pysal/esda and squidpy 1.8):
//!
//! - Moran's I `= n / S0 * sum_i z_i sum_j w_ij z_j / sum_i z_i^2`, `E[I] = -1/(n-1)`,
//!   `Var(I) = (n^2 S1 - n S2 + 3 S0^2) / ((n-1)(n+1) S0^2) - 1/(n-1)^2`;
//! - Geary's C `= (n-1) sum_ij w_ij (x_i - x_j)^2 / (2 S0 sum_i z_i^2)`, `E[C] = 1`,
//!   `Var(C) = ((2 S1 + S2)(n-1) - 4 S0^2) / (2 (n+1) S0^2)`.
//!
//! The p-value is one-sided in the direction of the z-score (squidpy's `pval_norm`). With permutations the
//! values are shuffled among cells (seeded per feature) and `p_perm = (min(#{sim >= obs}, n_perm - #) + 1) /
//! (n_perm + 1)` as squidpy's `pval_sim`. A constant feature has no variance: its statistics are NaN.
//!
//! Cost: O(E) per feature and permutation; memory O(n + E).

use crate::enrichment::{item_rng, shuffle};
use crate::stats::one_sided_p;
use tmescope_core::graph::NeighborGraph;

/// Row-normalised weights and their moments, computed once per graph.
#[derive(Debug, Clone)]
pub struct AutocorrWeights {
    /// The graph with row-normalised weights.
    pub graph: NeighborGraph,
    /// Sum of weights.
    pub s0: f64,
    /// `1/2 sum_ij (w_ij + w_ji)^2`.
    pub s1: f64,
    /// `sum_i (w_i. + w_.i)^2`.
    pub s2: f64,
}

/// Which statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// Moran's I.
    Moran,
    /// Geary's C.
    Geary,
}

impl Statistic {
    /// The name written to the output (`moran` or `geary`).
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Moran => "moran",
            Statistic::Geary => "geary",
        }
    }
}

/// One statistic of one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Autocorr {
    /// Which statistic.
    pub statistic: Statistic,
    /// Its value.
    pub value: f64,
    /// Expectation under no autocorrelation.
    pub expected: f64,
    /// Analytic variance under normality.
    pub variance: f64,
    /// `(value - expected) / sqrt(variance)`.
    pub z: f64,
    /// One-sided normal p-value in the direction of z.
    pub p: f64,
    /// Permutation p-value, when permutations were run.
    pub p_perm: Option<f64>,
}

impl AutocorrWeights {
    /// Row-normalises the weights of `g` and computes S0, S1, S2.
    pub fn new(g: &NeighborGraph) -> Self {
        let mut graph = g.clone();
        for i in 0..graph.n {
            let (s, e) = (graph.indptr[i] as usize, graph.indptr[i + 1] as usize);
            let sum: f64 = graph.weights[s..e].iter().map(|w| w.abs()).sum();
            if sum > 0.0 {
                graph.weights[s..e].iter_mut().for_each(|w| *w /= sum);
            }
        }
        let n = graph.n;
        let s0: f64 = graph.weights.iter().sum();
        let mut row = vec![0.0; n];
        let mut col = vec![0.0; n];
        let mut s1 = 0.0;
        for i in 0..n {
            let (nb, ws) = (graph.neighbors_of(i), graph.weights_of(i));
            for (&j, &w) in nb.iter().zip(ws) {
                row[i] += w;
                col[j as usize] += w;
                let back = reverse_weight(&graph, j as usize, i as u32);
                s1 += (w + back).powi(2);
                if back == 0.0 {
                    // The ordered pair (j, i) has no edge of its own: it contributes (0 + w)^2.
                    s1 += w * w;
                }
            }
        }
        s1 /= 2.0;
        let s2 = row.iter().zip(&col).map(|(r, c)| (r + c).powi(2)).sum();
        AutocorrWeights { graph, s0, s1, s2 }
    }

    /// Moran's I of `x` (NaN when x is constant).
    pub fn moran_i(&self, x: &[f64]) -> f64 {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let mut num = 0.0;
        let mut ss = 0.0;
        for i in 0..self.graph.n {
            let zi = x[i] - mean;
            ss += zi * zi;
            let mut lag = 0.0;
            for (&j, &w) in self.graph.neighbors_of(i).iter().zip(self.graph.weights_of(i)) {
                lag += w * (x[j as usize] - mean);
            }
            num += zi * lag;
        }
        if ss == 0.0 {
            return f64::NAN;
        }
        n / self.s0 * num / ss
    }

    /// Geary's C of `x` (NaN when x is constant).
    pub fn geary_c(&self, x: &[f64]) -> f64 {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let ss: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
        let mut num = 0.0;
        for i in 0..self.graph.n {
            for (&j, &w) in self.graph.neighbors_of(i).iter().zip(self.graph.weights_of(i)) {
                num += w * (x[i] - x[j as usize]).powi(2);
            }
        }
        if ss == 0.0 {
            return f64::NAN;
        }
        (n - 1.0) * num / (2.0 * self.s0 * ss)
    }

    /// Expectation and analytic variance of the statistic.
    pub fn moments(&self, statistic: Statistic) -> (f64, f64) {
        let n = self.graph.n as f64;
        let s02 = self.s0 * self.s0;
        match statistic {
            Statistic::Moran => {
                let v = (n * n * self.s1 - n * self.s2 + 3.0 * s02) / ((n - 1.0) * (n + 1.0) * s02)
                    - (1.0 / (n - 1.0)).powi(2);
                (-1.0 / (n - 1.0), v)
            }
            Statistic::Geary => (1.0, ((2.0 * self.s1 + self.s2) * (n - 1.0) - 4.0 * s02) / (2.0 * (n + 1.0) * s02)),
        }
    }

    /// The statistic of `x` with its expectation, variance, z, p and (with `n_perms > 0`) a permutation
    /// p-value from value shuffles seeded by `(seed, feature_index)`.
    pub fn test(&self, statistic: Statistic, x: &[f64], n_perms: usize, seed: u64, feature_index: u64) -> Autocorr {
        let f = |v: &[f64]| match statistic {
            Statistic::Moran => self.moran_i(v),
            Statistic::Geary => self.geary_c(v),
        };
        let value = f(x);
        let (expected, variance) = self.moments(statistic);
        let z = (value - expected) / variance.sqrt();
        let p_perm = (n_perms > 0 && value.is_finite()).then(|| {
            let mut rng = item_rng(seed, feature_index);
            let mut buf = x.to_vec();
            let mut larger = 0usize;
            for _ in 0..n_perms {
                shuffle(&mut buf, &mut rng);
                if f(&buf) >= value {
                    larger += 1;
                }
            }
            let k = larger.min(n_perms - larger);
            (k + 1) as f64 / (n_perms + 1) as f64
        });
        Autocorr { statistic, value, expected, variance, z, p: one_sided_p(z), p_perm }
    }
}

/// The weight of edge `j -> i`, 0 when absent (rows are sorted, so a binary search finds it).
fn reverse_weight(g: &NeighborGraph, j: usize, i: u32) -> f64 {
    let nb = g.neighbors_of(j);
    match nb.binary_search(&i) {
        Ok(k) => g.weights_of(j)[k],
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(n: usize) -> NeighborGraph {
        let mut e = vec![];
        for i in 0..n as u32 - 1 {
            e.push((i, i + 1, 1.0, 1.0));
            e.push((i + 1, i, 1.0, 1.0));
        }
        NeighborGraph::from_edges(n, e, false)
    }

    #[test]
    fn moments_of_a_path() {
        // Path 0-1-2 row-normalised: w01 = 1, w10 = w12 = 0.5, w21 = 1.
        let w = AutocorrWeights::new(&path(3));
        assert!((w.s0 - 3.0).abs() < 1e-12);
        // S1 = 1/2 * 2 * ((1.5)^2 + (1.5)^2) = 4.5; S2 = (1+0.5)^2 + (1+2)^2 + (1+0.5)^2 = 13.5.
        assert!((w.s1 - 4.5).abs() < 1e-12, "{}", w.s1);
        assert!((w.s2 - 13.5).abs() < 1e-12, "{}", w.s2);
    }

    #[test]
    fn moran_and_geary_by_hand() {
        let w = AutocorrWeights::new(&path(4));
        let x = [1.0, 2.0, 3.0, 4.0];
        // z = -1.5 -0.5 0.5 1.5; lag = -0.5, -0.5, 0.5, 0.5; sum z*lag = 0.75+0.25+0.25+0.75 = 2; ss = 5.
        // I = 4 / 4 * 2 / 5 = 0.4
        assert!((w.moran_i(&x) - 0.4).abs() < 1e-12);
        // Geary numerator: 1*1 + 0.5*1 + 0.5*1 + 0.5*1 + 0.5*1 + 1*1 = 4; C = 3 * 4 / (2 * 4 * 5) = 0.3
        assert!((w.geary_c(&x) - 0.3).abs() < 1e-12);
        let t = w.test(Statistic::Moran, &x, 99, 1, 0);
        assert!(t.z > 0.0 && t.p < 0.5 && t.p_perm.is_some());
        assert!(w.moran_i(&[1.0; 4]).is_nan());
    }

    #[test]
    fn directed_s1_counts_one_way_edges() {
        let g = NeighborGraph::from_edges(3, vec![(0, 1, 1.0, 1.0), (1, 2, 1.0, 1.0), (2, 0, 1.0, 1.0)], true);
        let w = AutocorrWeights::new(&g);
        // Every ordered pair of a 3-cycle has exactly one of w_ij, w_ji = 1: S1 = 1/2 * 6 = 3.
        assert!((w.s1 - 3.0).abs() < 1e-12);
    }
}
