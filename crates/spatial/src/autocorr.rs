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
//! Cost: O(E) per feature and permutation, features evaluated 8 at a time; memory O(n + E) per thread.

use crate::locality::LocalGraph;
use crate::stats::one_sided_p;
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;
use tmescope_core::permute::{shuffle, PermutationRng};

/// Rows per parallel work item of the S1 sum; fixed so that the reduction order does not depend on the
/// thread count.
const CHUNK: usize = 16_384;

/// Features per block of [`AutocorrWeights::moran_geary_many`]: 8 values = one 64-byte cache line per cell.
pub const BLOCK: usize = 8;

/// The values of one feature at the cells of a graph.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureColumn {
    /// One value per cell.
    Dense(Vec<f64>),
    /// The non-zero values only (every other cell is 0): `values[k]` at cell `cells[k]`, cells strictly
    /// increasing, of `n` cells. A gene's log-normalised counts at a million cells are mostly zeros:
    /// stored so they take a third of the memory, written without a page fault per cell.
    Sparse {
        /// Number of cells.
        n: usize,
        /// Cells with a value, strictly increasing.
        cells: Vec<u32>,
        /// Their values.
        values: Vec<f64>,
    },
}

impl FeatureColumn {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            FeatureColumn::Dense(x) => x.len(),
            FeatureColumn::Sparse { n, .. } => *n,
        }
    }

    /// Whether there are no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One value per cell.
    pub fn to_dense(&self) -> Vec<f64> {
        match self {
            FeatureColumn::Dense(x) => x.clone(),
            FeatureColumn::Sparse { n, cells, values } => {
                let mut x = vec![0.0; *n];
                for (&c, &v) in cells.iter().zip(values) {
                    x[c as usize] = v;
                }
                x
            }
        }
    }

    /// The values at the cells `rows` (strictly increasing), renumbered `0..rows.len()`.
    pub fn select(&self, rows: &[u32]) -> FeatureColumn {
        match self {
            FeatureColumn::Dense(x) => FeatureColumn::Dense(rows.iter().map(|&r| x[r as usize]).collect()),
            FeatureColumn::Sparse { cells, values, .. } => {
                let (mut sel_cells, mut sel_values) = (Vec::new(), Vec::new());
                let mut k = 0;
                for (pos, &r) in rows.iter().enumerate() {
                    while k < cells.len() && cells[k] < r {
                        k += 1;
                    }
                    if k < cells.len() && cells[k] == r {
                        sel_cells.push(pos as u32);
                        sel_values.push(values[k]);
                    }
                }
                FeatureColumn::Sparse { n: rows.len(), cells: sel_cells, values: sel_values }
            }
        }
    }

    fn view(&self) -> Column<'_> {
        match self {
            FeatureColumn::Dense(x) => Column::Dense(x),
            FeatureColumn::Sparse { cells, values, .. } => Column::Sparse { cells, values },
        }
    }
}

/// A borrowed [`FeatureColumn`], read in cell order by the kernel.
#[derive(Clone, Copy)]
enum Column<'a> {
    Dense(&'a [f64]),
    Sparse { cells: &'a [u32], values: &'a [f64] },
}

impl Column<'_> {
    /// The sum of the values in cell order (the zeros of a sparse column add nothing, not even rounding).
    fn sum(&self) -> f64 {
        match self {
            Column::Dense(x) => x.iter().sum(),
            Column::Sparse { values, .. } => values.iter().sum(),
        }
    }

    /// The value at cell `i`, for `i` visited in increasing order; `next` is this column's cursor.
    #[inline]
    fn at(&self, i: usize, next: &mut usize) -> f64 {
        match self {
            Column::Dense(x) => x[i],
            Column::Sparse { cells, values } => match cells.get(*next) {
                Some(&c) if c as usize == i => {
                    *next += 1;
                    values[*next - 1]
                }
                _ => 0.0,
            },
        }
    }
}

/// Row-normalised weights and their moments, computed once per graph.
#[derive(Debug, Clone)]
pub struct AutocorrWeights {
    /// The graph with row-normalised weights, renumbered for locality (see [`crate::locality`]).
    pub local: LocalGraph,
    /// Sum of weights.
    pub s0: f64,
    /// `1/2 sum_ij (w_ij + w_ji)^2`.
    pub s1: f64,
    /// `sum_i (w_i. + w_.i)^2`.
    pub s2: f64,
    /// `w_i. + w_.i` of each cell, in the renumbered order: with it Geary's sum is
    /// `sum_i z_i^2 (w_i. + w_.i) - 2 sum_ij w_ij z_i z_j`, so the edge loop accumulates only the lag.
    strength: Vec<f64>,
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
    /// Row-normalises the weights of `g` and computes S0, S1, S2, on the graph renumbered for locality
    /// (the sums do not depend on the numbering; there the reverse-edge lookups of S1 stay in cache).
    pub fn new(g: &NeighborGraph) -> Self {
        let mut local = LocalGraph::new(g);
        let graph = &mut local.graph;
        for i in 0..graph.n {
            let (s, e) = (graph.indptr[i] as usize, graph.indptr[i + 1] as usize);
            let sum: f64 = graph.weights[s..e].iter().map(|w| w.abs()).sum();
            if sum > 0.0 {
                graph.weights[s..e].iter_mut().for_each(|w| *w /= sum);
            }
        }
        let graph = &local.graph;
        let n = graph.n;
        let s0: f64 = graph.weights.iter().sum();
        // S1 by rows in parallel, reduced in row-chunk order (the same sum for any thread count).
        let s1_chunks: Vec<f64> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut s1 = 0.0;
                for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    for (&j, &w) in graph.neighbors_of(i).iter().zip(graph.weights_of(i)) {
                        let back = reverse_weight(graph, j as usize, i as u32);
                        s1 += (w + back).powi(2);
                        if back == 0.0 {
                            // The ordered pair (j, i) has no edge of its own: it contributes (0 + w)^2.
                            s1 += w * w;
                        }
                    }
                }
                s1
            })
            .collect();
        let s1 = s1_chunks.iter().sum::<f64>() / 2.0;
        let mut row = vec![0.0; n];
        let mut col = vec![0.0; n];
        for i in 0..n {
            for (&j, &w) in graph.neighbors_of(i).iter().zip(graph.weights_of(i)) {
                row[i] += w;
                col[j as usize] += w;
            }
        }
        let strength: Vec<f64> = row.iter().zip(&col).map(|(r, c)| r + c).collect();
        let s2 = strength.iter().map(|s| s * s).sum();
        AutocorrWeights { local, s0, s1, s2, strength }
    }

    /// Moran's I and Geary's C (NaN when x is constant).
    pub fn moran_geary(&self, x: &[f64]) -> (f64, f64) {
        self.block_kernel::<1>(&[Column::Dense(x)], &mut Vec::new())[0]
    }

    /// Moran's I and Geary's C of many features (each of length `n`). Features are evaluated in blocks of
    /// [`BLOCK`] held cell-major, so each neighbour visit reads one cache line for the whole block instead
    /// of one per feature (the graph walk, not the arithmetic, is the cost at a million cells); blocks run
    /// in parallel, one run of consecutive blocks per thread, each run reusing one buffer for its blocks'
    /// values (at a million cells a fresh buffer per block is 64 MB of new pages for the kernel to map).
    /// The sums run in the same order whatever the block, so results do not depend on it.
    pub fn moran_geary_many(&self, features: &[&FeatureColumn]) -> Vec<(f64, f64)> {
        let features: Vec<Column> = features.iter().map(|f| f.view()).collect();
        let blocks = features.len().div_ceil(BLOCK);
        let per_run = blocks.div_ceil(rayon::current_num_threads()).max(1) * BLOCK;
        let runs: Vec<Vec<(f64, f64)>> = features
            .par_chunks(per_run)
            .map(|run| {
                let mut z = Vec::new();
                run.chunks(BLOCK).flat_map(|block| self.block_statistics(block, &mut z)).collect()
            })
            .collect();
        runs.concat()
    }

    fn block_statistics(&self, block: &[Column], z: &mut Vec<f64>) -> Vec<(f64, f64)> {
        match block.len() {
            1 => self.block_kernel::<1>(block, z),
            _ => self.block_kernel::<BLOCK>(block, z),
        }
    }

    /// The statistics of up to `W` features (a fixed width, so the inner loops are unrolled and
    /// vectorised; missing features are zero columns whose results are not returned), with `z` as the
    /// buffer of the centred values (resized to `W` values per cell; its contents do not matter).
    fn block_kernel<const W: usize>(&self, block: &[Column], z: &mut Vec<f64>) -> Vec<(f64, f64)> {
        let n = self.local.graph.n;
        let nf = n as f64;
        // The means, then the centred values and their sums of squares (in cell order), cell-major in the
        // renumbered order: read in cell order and written a whole cell (one cache line) at a time, since a
        // gather in the renumbered order would miss the cache at nearly every read.
        let mut means = [0.0; W];
        for (f, x) in block.iter().enumerate() {
            means[f] = x.sum() / nf;
        }
        let mut ss = [0.0; W];
        let mut next = [0usize; W];
        z.resize(n * W, 0.0);
        for (old, &new) in self.local.new_of.iter().enumerate() {
            let zi = &mut z[new as usize * W..(new as usize + 1) * W];
            for (f, x) in block.iter().enumerate() {
                let d = x.at(old, &mut next[f]) - means[f];
                zi[f] = d;
                ss[f] += d * d;
            }
            zi[block.len()..].fill(0.0);
        }
        let z = &z[..n * W];
        // Moran: sum_i z_i sum_j w_ij z_j; Geary: sum_ij w_ij (z_i - z_j)^2, expanded as
        // sum_i z_i^2 (w_i. + w_.i) - 2 sum_ij w_ij z_i z_j (the edges are walked once, for the lag only).
        let (mut moran, mut squares) = ([0.0; W], [0.0; W]);
        for ((i, zi), &strength) in z.chunks_exact(W).enumerate().zip(&self.strength) {
            let mut lag = [0.0; W];
            for (&j, &w) in self.local.graph.neighbors_of(i).iter().zip(self.local.graph.weights_of(i)) {
                let zj = &z[j as usize * W..(j as usize + 1) * W];
                for f in 0..W {
                    lag[f] += w * zj[f];
                }
            }
            for f in 0..W {
                moran[f] += zi[f] * lag[f];
                squares[f] += zi[f] * zi[f] * strength;
            }
        }
        // A sum of non-negative terms, which rounding can leave just below zero (NaN stays NaN).
        let geary: [f64; W] = std::array::from_fn(|f| {
            let g = squares[f] - 2.0 * moran[f];
            if g < 0.0 {
                0.0
            } else {
                g
            }
        });
        (0..block.len())
            .map(|f| {
                if ss[f] == 0.0 {
                    (f64::NAN, f64::NAN)
                } else {
                    (nf / self.s0 * moran[f] / ss[f], (nf - 1.0) * geary[f] / (2.0 * self.s0 * ss[f]))
                }
            })
            .collect()
    }

    /// Expectation and analytic variance of the statistic.
    pub fn moments(&self, statistic: Statistic) -> (f64, f64) {
        let n = self.local.graph.n as f64;
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

    /// Both statistics of many features with expectation, variance, z, p and (with `n_perms > 0`) a
    /// permutation p-value from value shuffles seeded by `(seed, first_index + feature)`; one
    /// `[Moran, Geary]` pair per feature.
    pub fn test_many(
        &self,
        features: &[&FeatureColumn],
        n_perms: usize,
        seed: u64,
        first_index: u64,
    ) -> Vec<[Autocorr; 2]> {
        let values = self.moran_geary_many(features);
        let stats = [Statistic::Moran, Statistic::Geary];
        let moments = stats.map(|s| self.moments(s));
        features
            .par_iter()
            .zip(values)
            .enumerate()
            .map_init(Vec::new, |z, (fi, (x, (i_obs, c_obs)))| {
                let obs = [i_obs, c_obs];
                let mut larger = [0usize; 2];
                if n_perms > 0 && i_obs.is_finite() {
                    let mut rng = PermutationRng::new(seed, first_index + fi as u64);
                    let mut buf = x.to_dense();
                    for _ in 0..n_perms {
                        shuffle(&mut buf, &mut rng);
                        let (i_sim, c_sim) = self.block_kernel::<1>(&[Column::Dense(&buf)], z)[0];
                        larger[0] += usize::from(i_sim >= i_obs);
                        larger[1] += usize::from(c_sim >= c_obs);
                    }
                }
                [0, 1].map(|k| {
                    let (expected, variance) = moments[k];
                    let z = (obs[k] - expected) / variance.sqrt();
                    let p_perm = (n_perms > 0 && obs[k].is_finite()).then(|| {
                        let m = larger[k].min(n_perms - larger[k]);
                        (m + 1) as f64 / (n_perms + 1) as f64
                    });
                    Autocorr { statistic: stats[k], value: obs[k], expected, variance, z, p: one_sided_p(z), p_perm }
                })
            })
            .collect()
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

    use crate::test_graphs::path;

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
        let (i, c) = w.moran_geary(&x);
        assert!((i - 0.4).abs() < 1e-12);
        // Geary numerator: 1*1 + 0.5*1 + 0.5*1 + 0.5*1 + 0.5*1 + 1*1 = 4; C = 3 * 4 / (2 * 4 * 5) = 0.3
        assert!((c - 0.3).abs() < 1e-12);
        let [t, g] = &w.test_many(&[&FeatureColumn::Dense(x.to_vec())], 99, 1, 0)[0];
        assert!(t.z > 0.0 && t.p < 0.5 && t.p_perm.is_some());
        assert_eq!((t.statistic, g.statistic), (Statistic::Moran, Statistic::Geary));
        assert!(w.moran_geary(&[1.0; 4]).0.is_nan());
    }

    #[test]
    fn blocks_give_the_same_numbers_as_single_features() {
        // 11 features (a full block and a partial one) on a ring of 50 cells.
        let g = path(50);
        let w = AutocorrWeights::new(&g);
        let feats: Vec<Vec<f64>> =
            (0..11).map(|f| (0..50).map(|i| ((i * (f + 3)) % 17) as f64 + 0.1 * f as f64).collect()).collect();
        let cols: Vec<FeatureColumn> = feats.iter().map(|v| FeatureColumn::Dense(v.clone())).collect();
        let many = w.moran_geary_many(&cols.iter().collect::<Vec<_>>());
        for (f, x) in feats.iter().enumerate() {
            assert_eq!(many[f], w.moran_geary(x), "feature {f}");
        }
    }

    /// A feature with 0 at most cells, held dense and sparse (in the same block as dense ones).
    fn sparse_pair(n: usize, f: usize) -> (FeatureColumn, FeatureColumn) {
        let x: Vec<f64> =
            (0..n).map(|i| if (i * (f + 5)) % 7 < 2 { (i % 13) as f64 * 0.37 + 0.5 } else { 0.0 }).collect();
        let cells: Vec<u32> = (0..n as u32).filter(|&i| x[i as usize] != 0.0).collect();
        let values = cells.iter().map(|&i| x[i as usize]).collect();
        (FeatureColumn::Dense(x), FeatureColumn::Sparse { n, cells, values })
    }

    #[test]
    fn sparse_features_give_the_same_bits_as_dense_ones() {
        let w = AutocorrWeights::new(&path(60));
        let (dense, sparse): (Vec<_>, Vec<_>) = (0..10).map(|f| sparse_pair(60, f)).unzip();
        // Mixed blocks: sparse columns beside dense ones.
        let mixed: Vec<&FeatureColumn> =
            dense.iter().zip(&sparse).enumerate().map(|(f, (d, s))| if f % 2 == 0 { s } else { d }).collect();
        let from_dense = w.moran_geary_many(&dense.iter().collect::<Vec<_>>());
        assert_eq!(w.moran_geary_many(&sparse.iter().collect::<Vec<_>>()), from_dense);
        assert_eq!(w.moran_geary_many(&mixed), from_dense);
        assert!(from_dense.iter().all(|(i, c)| i.is_finite() && c.is_finite()));
        // Permutations shuffle the dense values: the same p-values either way.
        let a = w.test_many(&[&dense[3]], 49, 7, 0);
        assert_eq!(w.test_many(&[&sparse[3]], 49, 7, 0), a);
        assert_eq!(sparse[3].to_dense(), dense[3].to_dense());
        // An all-zero sparse column is constant: NaN, as a dense one.
        let zero = FeatureColumn::Sparse { n: 60, cells: vec![], values: vec![] };
        assert!(w.moran_geary_many(&[&zero])[0].0.is_nan());
    }

    #[test]
    fn select_keeps_the_rows_in_order() {
        let (dense, sparse) = sparse_pair(40, 2);
        let rows: Vec<u32> = (0..40).filter(|i| i % 3 != 1).collect();
        let (d, s) = (dense.select(&rows), sparse.select(&rows));
        assert_eq!(d.len(), rows.len());
        assert_eq!(s.to_dense(), d.to_dense());
        let FeatureColumn::Sparse { cells, .. } = &s else { panic!("sparse stays sparse") };
        assert!(cells.windows(2).all(|p| p[0] < p[1]) && !cells.is_empty());
    }

    #[test]
    fn geary_expansion_equals_the_double_sum_on_a_directed_graph() {
        // Uneven out-degrees and one-way edges, so row and column sums of the weights differ.
        let n = 30usize;
        let edges: Vec<(u32, u32, f64, f64)> = (0..n)
            .flat_map(|i| (1..=1 + i % 4).map(move |d| (i as u32, ((i * 7 + d * 3) % n) as u32, 1.0, 1.0 + d as f64)))
            .filter(|&(i, j, _, _)| i != j)
            .collect();
        let g = NeighborGraph::from_edges(n, edges, true);
        let w = AutocorrWeights::new(&g);
        let x: Vec<f64> = (0..n).map(|i| ((i * i) % 11) as f64 * 0.5).collect();
        let mean = x.iter().sum::<f64>() / n as f64;
        let ss: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
        let mut sum = 0.0;
        for i in 0..n {
            let total: f64 = g.weights_of(i).iter().sum();
            for (&j, &wij) in g.neighbors_of(i).iter().zip(g.weights_of(i)) {
                sum += wij / total * (x[i] - x[j as usize]).powi(2);
            }
        }
        let expected = (n as f64 - 1.0) * sum / (2.0 * w.s0 * ss);
        let (_, c) = w.moran_geary(&x);
        assert!((c - expected).abs() < 1e-12, "{c} vs {expected}");
    }

    #[test]
    fn directed_s1_counts_one_way_edges() {
        let g = NeighborGraph::from_edges(3, vec![(0, 1, 1.0, 1.0), (1, 2, 1.0, 1.0), (2, 0, 1.0, 1.0)], true);
        let w = AutocorrWeights::new(&g);
        // Every ordered pair of a 3-cycle has exactly one of w_ij, w_ji = 1: S1 = 1/2 * 6 = 3.
        assert!((w.s1 - 3.0).abs() < 1e-12);
    }
}
