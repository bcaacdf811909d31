//! Local hotspots: the Getis-Ord Gi* statistic (Getis & Ord 1992; Ord & Getis 1995) per cell.
//!
//! Gi* includes the cell itself (self-weight 1) with the graph's edge weights to its neighbours, and is
//! used in its standardised form, defined for any sign of `y`:
//! `Z_i = (sum_j w_ij y_j - ybar W_i) / (s sqrt((n sum_j w_ij^2 - W_i^2) / (n - 1)))`, with `W_i = sum_j w_ij`,
//! `ybar` the mean and `s` the population standard deviation of `y` over the `n` cells of the sample.
//! A large positive `Z_i` marks a cluster of high values (hotspot), a large negative one a cluster of low
//! values (coldspot). Where the denominator is 0 (constant `y`, or a cell linked to every other cell) the
//! z-score is undefined: [`gi_star_z`] returns NaN (what `score` writes), [`getis_ord_gi_star`] 0 (what
//! `stats --hotspots` writes). Two-sided p-values from the normal distribution, Benjamini-Hochberg across
//! cells. Both stages call this module. [`GiStar`] computes the graph's parts once for many value vectors
//! (`score`: one per program), and with each z-score the smoothed value `score` also writes (the weighted
//! mean of the cell, weight 1, and its neighbours, a self-loop included), from the same pass over the
//! edges.
//!
//! Cost: O(n + E).

use crate::stats::{benjamini_hochberg, normal_two_sided_p};
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;

/// Gi* z-score of every cell of `graph` for the values `values` (one per node, finite); 0 where the
/// denominator is 0 (the `stats` output).
pub fn getis_ord_gi_star(graph: &NeighborGraph, values: &[f64]) -> Vec<f64> {
    gi_star_z(graph, values).into_iter().map(|z| if z.is_nan() { 0.0 } else { z }).collect()
}

/// [`getis_ord_gi_star`] with NaN where the denominator is 0 (constant values, fewer than two cells), so
/// that "undefined" stays distinguishable from "no cluster" (program scores in `score`).
pub fn gi_star_z(graph: &NeighborGraph, values: &[f64]) -> Vec<f64> {
    GiStar::new(graph).z_and_smoothed(values).0
}

/// Gi* of many value vectors on one graph: the parts that depend on the graph only (each cell's `W_i` and
/// `sqrt((n sum_j w_ij^2 - W_i^2) / (n - 1))`) are computed once.
#[derive(Debug, Clone)]
pub struct GiStar<'g> {
    graph: &'g NeighborGraph,
    /// `W_i`, self-weight included.
    wsum: Vec<f64>,
    /// `sqrt((n sum_j w_ij^2 - W_i^2) / (n - 1))`, self-weight included (0 where negative).
    spread: Vec<f64>,
    /// `1 + sum_j w_ij` over every edge of the cell, a self-loop included: the smoothing's denominator.
    smooth_weight: Vec<f64>,
}

impl<'g> GiStar<'g> {
    /// The graph's parts of Gi* and of the smoothing.
    pub fn new(graph: &'g NeighborGraph) -> Self {
        let n = graph.n as f64;
        let per_cell: Vec<(f64, f64, f64)> = (0..graph.n)
            .into_par_iter()
            .map(|i| {
                // The self-weight of Gi*.
                let (mut wsum, mut w2, mut all) = (1.0, 1.0, 1.0);
                for (&j, &w) in graph.neighbors_of(i).iter().zip(graph.weights_of(i)) {
                    if j as usize != i {
                        wsum += w;
                        w2 += w * w;
                    }
                    all += w;
                }
                (wsum, ((n * w2 - wsum * wsum) / (n - 1.0)).max(0.0).sqrt(), all)
            })
            .collect();
        let mut g = GiStar { graph, wsum: vec![], spread: vec![], smooth_weight: vec![] };
        for (w, s, a) in per_cell {
            g.wsum.push(w);
            g.spread.push(s);
            g.smooth_weight.push(a);
        }
        g
    }

    /// The Gi* z-score of every cell (NaN where the denominator is 0) and, from the same pass over the
    /// edges, the smoothed values: each cell's weighted mean with its neighbours (self weight 1).
    pub fn z_and_smoothed(&self, values: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let g = self.graph;
        let n = g.n as f64;
        let mean = values.iter().sum::<f64>() / n;
        let s = (values.iter().map(|v| v * v).sum::<f64>() / n - mean * mean).max(0.0).sqrt();
        (0..g.n)
            .into_par_iter()
            .map(|i| {
                let (mut wy, mut all) = (values[i], values[i]);
                for (&j, &w) in g.neighbors_of(i).iter().zip(g.weights_of(i)) {
                    let term = w * values[j as usize];
                    if j as usize != i {
                        wy += term;
                    }
                    all += term;
                }
                let den = s * self.spread[i];
                let z = if den > 0.0 && den.is_finite() { (wy - mean * self.wsum[i]) / den } else { f64::NAN };
                (z, all / self.smooth_weight[i])
            })
            .unzip()
    }
}

/// Two-sided normal p-values of z-scores and their Benjamini-Hochberg q-values.
pub fn z_to_p_q(z: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let p: Vec<f64> = z.par_iter().map(|&z| normal_two_sided_p(z)).collect();
    let q = benjamini_hochberg(&p);
    (p, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_graphs::path;

    #[test]
    fn hotspot_at_the_high_values() {
        let y = [0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.0];
        let z = getis_ord_gi_star(&path(10), &y);
        let best = (0..10).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
        assert_eq!(best, 5);
        assert!(z[5] > 2.0 && z[0] < 0.0);
    }

    #[test]
    fn by_hand_value() {
        // Path of 3, y = 0, 0, 3: cell 2 with self-weight: W = 2, sum w y = 3, sum w^2 = 2.
        // ybar = 1, s = sqrt(9/3 - 1) = sqrt(2); Z = (3 - 2) / (sqrt(2) * sqrt((3*2 - 4) / 2)) = 1/sqrt(2).
        let z = getis_ord_gi_star(&path(3), &[0.0, 0.0, 3.0]);
        assert!((z[2] - 1.0 / 2f64.sqrt()).abs() < 1e-12, "{z:?}");
    }

    #[test]
    fn smoothing_counts_a_self_loop_and_gi_star_does_not() {
        // Path 0-1-2 with weights 1 and a self-loop of weight 2 on cell 2; y = 0, 0, 3.
        let mut e = vec![(0, 1, 1.0, 1.0), (1, 0, 1.0, 1.0), (1, 2, 1.0, 1.0), (2, 1, 1.0, 1.0)];
        let (z_path, sm_path) = GiStar::new(&path(3)).z_and_smoothed(&[0.0, 0.0, 3.0]);
        e.push((2, 2, 0.0, 2.0));
        let looped = NeighborGraph::from_edges(3, e, false);
        let (z, sm) = GiStar::new(&looped).z_and_smoothed(&[0.0, 0.0, 3.0]);
        // Gi* ignores the self-loop (its self-weight is 1): the path's z-scores (NaN for cell 1, whose
        // denominator is 0).
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&z), bits(&z_path));
        assert!((z[2] - 1.0 / 2f64.sqrt()).abs() < 1e-12, "{z:?}");
        // Smoothing: cell 2 = (3 + 1 * 0 + 2 * 3) / (1 + 1 + 2) = 9 / 4; on the path (3 + 0) / 2.
        assert_eq!(sm, vec![0.0, 1.0, 2.25]);
        assert_eq!(sm_path, vec![0.0, 1.0, 1.5]);
    }

    #[test]
    fn constant_values_give_zero() {
        assert_eq!(getis_ord_gi_star(&path(4), &[2.0; 4]), vec![0.0; 4]);
        assert!(gi_star_z(&path(4), &[2.0; 4]).iter().all(|z| z.is_nan()));
        assert!(gi_star_z(&path(1), &[2.0]).iter().all(|z| z.is_nan()));
        let (p, q) = z_to_p_q(&[0.0, 3.0]);
        assert!((p[0] - 1.0).abs() < 1e-7 && q[1] < 0.01);
    }
}
