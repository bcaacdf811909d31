//! Per-cell spatial metrics: neighbourhood composition, group fractions, distances to the nearest cell of
//! a group (k-d tree, kiddo), the tumour-stroma interface and CD8 T infiltration of the tumour core versus
//! its margin.
//!
//! Neighbourhood composition is the weighted mean of the cell's own composition (one-hot label, or
//! deconvolved proportions) and its graph neighbours' (self weight 1), as in CellCharter's neighbourhood
//! aggregation with one layer. O(edges x types). Nearest-cell distances: O(n log n).

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;

/// Weighted mean of each cell's composition row (`n x t`, row-major) and its neighbours'.
pub fn neighbourhood_composition(graph: &NeighborGraph, comp: &[f64], t: usize) -> Vec<f64> {
    let mut out = vec![0.0; comp.len()];
    out.par_chunks_mut(t.max(1)).enumerate().for_each(|(i, o)| {
        o.copy_from_slice(&comp[i * t..(i + 1) * t]);
        let mut w = 1.0;
        for (&j, &wij) in graph.neighbors_of(i).iter().zip(graph.weights_of(i)) {
            let j = j as usize;
            for (a, b) in o.iter_mut().zip(&comp[j * t..(j + 1) * t]) {
                *a += wij * b;
            }
            w += wij;
        }
        o.iter_mut().for_each(|a| *a /= w);
    });
    out
}

/// Fraction of each group per cell: `frac[g][i] = sum_t member[t][g] * nbhd[i][t]`.
pub fn group_fractions(nbhd: &[f64], t: usize, member: &[Vec<bool>], n_groups: usize) -> Vec<Vec<f64>> {
    let n = nbhd.len().checked_div(t).unwrap_or(0);
    (0..n_groups)
        .map(|g| {
            (0..n).into_par_iter().map(|i| (0..t).filter(|&k| member[k][g]).map(|k| nbhd[i * t + k]).sum()).collect()
        })
        .collect()
}

/// Distance from every cell to the nearest cell with `holds[j]` (0 for such cells themselves); infinite
/// when no cell holds it (no T cell in the sample is farther than any threshold: a rule such as
/// `distance_to_t_cell > 150` holds), NaN where a coordinate is missing.
pub fn distance_to_nearest(x: &[f64], y: &[f64], holds: &[bool]) -> Vec<f64> {
    let pts: Vec<[f64; 2]> =
        (0..x.len()).filter(|&j| holds[j] && x[j].is_finite() && y[j].is_finite()).map(|j| [x[j], y[j]]).collect();
    if pts.is_empty() {
        return x
            .iter()
            .zip(y)
            .map(|(a, b)| if a.is_finite() && b.is_finite() { f64::INFINITY } else { f64::NAN })
            .collect();
    }
    let tree: ImmutableKdTree<f64, 2> = match ImmutableKdTree::new_from_slice(&pts) {
        Ok(t) => t,
        Err(_) => return vec![f64::NAN; x.len()],
    };
    (0..x.len())
        .into_par_iter()
        .map(|i| {
            if !(x[i].is_finite() && y[i].is_finite()) {
                return f64::NAN;
            }
            tree.query(&[x[i], y[i]]).nearest_one::<SquaredEuclidean<f64>>().execute().distance.sqrt()
        })
        .collect()
}

/// Tumour-stroma interface flag: neighbourhood tumour fraction within `[low, high]`.
pub fn interface_flag(frac_tumor: &[f64], low: f64, high: f64) -> Vec<bool> {
    frac_tumor.iter().map(|&f| f >= low && f <= high).collect()
}

/// CD8 T infiltration: mean CD8 neighbourhood fraction over core cells and over interface (margin) cells,
/// among `cells`. NaN when a region is empty.
pub fn cd8_core_margin(
    frac_tumor: &[f64],
    frac_cd8: &[f64],
    interface: &[bool],
    core_min: f64,
    cells: &[usize],
) -> (f64, f64) {
    let (mut cs, mut cn, mut ms, mut mn) = (0.0, 0.0, 0.0, 0.0);
    for &i in cells {
        if interface[i] {
            ms += frac_cd8[i];
            mn += 1.0;
        } else if frac_tumor[i] >= core_min {
            cs += frac_cd8[i];
            cn += 1.0;
        }
    }
    (if cn > 0.0 { cs / cn } else { f64::NAN }, if mn > 0.0 { ms / mn } else { f64::NAN })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_and_distances() {
        let g = NeighborGraph::from_edges(
            3,
            vec![(0, 1, 1.0, 1.0), (1, 0, 1.0, 1.0), (1, 2, 1.0, 1.0), (2, 1, 1.0, 1.0)],
            false,
        );
        // Types: 0 = tumour, 1 = T.
        let comp = vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let nb = neighbourhood_composition(&g, &comp, 2);
        assert!((nb[0] - 1.0).abs() < 1e-12);
        assert!((nb[2] - 2.0 / 3.0).abs() < 1e-12 && (nb[3] - 1.0 / 3.0).abs() < 1e-12);
        let fr = group_fractions(&nb, 2, &[vec![true, false], vec![false, true]], 2);
        assert!((fr[1][2] - 0.5).abs() < 1e-12);
        let d = distance_to_nearest(&[0.0, 3.0, 7.0], &[0.0, 4.0, 4.0], &[false, false, true]);
        assert!((d[0] - (49.0f64 + 16.0).sqrt()).abs() < 1e-9 && d[2] == 0.0);
        assert_eq!(distance_to_nearest(&[0.0], &[0.0], &[false])[0], f64::INFINITY);
        assert!(distance_to_nearest(&[f64::NAN], &[0.0], &[false])[0].is_nan());
        let iface = interface_flag(&[0.9, 0.5, 0.1], 0.2, 0.8);
        assert_eq!(iface, vec![false, true, false]);
        let (core, margin) = cd8_core_margin(&[0.9, 0.5, 0.1], &[0.0, 0.3, 0.5], &iface, 0.5, &[0, 1, 2]);
        assert_eq!((core, margin), (0.0, 0.3));
    }
}
