//! Neighbourhood composition: for every cell, how much of each cell type surrounds it.
//!
//! A membership matrix `M` (cells x types, row-major) says what each cell contributes: one-hot rows for
//! labels, deconvolved proportions for spots. The neighbourhood of cell `i` over `hops` steps is the set
//! of cells reachable from `i` in 1..=`hops` steps along the graph's edges, `i` itself excluded (each cell
//! counted once even when reachable along several paths). `counts[i, t] = sum_{j in N(i)} M[j, t]` and
//! `fraction[i, t] = counts[i, t] / sum_t counts[i, t]` (0 for a cell without neighbours).
//!
//! Cost: O(E * T) for one hop; O(sum_i |N_hops(i)| * T) for more, with one visited set per thread.

use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;

/// One-hot membership (`n x n_types`, row-major) of integer labels `< n_types`.
pub fn label_membership(labels: &[u32], n_types: usize) -> Vec<f64> {
    let mut m = vec![0.0; labels.len() * n_types];
    for (i, &l) in labels.iter().enumerate() {
        m[i * n_types + l as usize] = 1.0;
    }
    m
}

/// Neighbourhood counts (`n x n_types`, row-major): the membership summed over each cell's neighbours
/// within `hops` steps (see the module docs). `hops` = 0 is treated as 1.
pub fn neighborhood_counts(g: &NeighborGraph, membership: &[f64], n_types: usize, hops: usize) -> Vec<f64> {
    let t = n_types;
    let mut out = vec![0.0; g.n * t];
    if hops <= 1 {
        out.par_chunks_mut(t.max(1)).enumerate().for_each(|(i, row)| {
            if i >= g.n {
                return;
            }
            for &j in g.neighbors_of(i) {
                if j as usize == i {
                    continue;
                }
                let m = &membership[j as usize * t..(j as usize + 1) * t];
                row.iter_mut().zip(m).for_each(|(r, v)| *r += v);
            }
        });
        return out;
    }
    out.par_chunks_mut(t.max(1)).enumerate().for_each_init(
        || (vec![u32::MAX; g.n], Vec::<u32>::new(), Vec::<u32>::new()),
        |(mark, frontier, next), (i, row)| {
            if i >= g.n {
                return;
            }
            // `mark[j] == i` means j was already reached from i; marks never need resetting.
            let stamp = i as u32;
            mark[i] = stamp;
            frontier.clear();
            frontier.push(i as u32);
            for _ in 0..hops {
                next.clear();
                for &u in frontier.iter() {
                    for &v in g.neighbors_of(u as usize) {
                        if mark[v as usize] != stamp {
                            mark[v as usize] = stamp;
                            next.push(v);
                            let m = &membership[v as usize * t..(v as usize + 1) * t];
                            row.iter_mut().zip(m).for_each(|(r, x)| *r += x);
                        }
                    }
                }
                std::mem::swap(frontier, next);
            }
        },
    );
    out
}

/// Fractions from counts (`n x n_types`, row-major): each row divided by its sum; all-zero rows stay 0.
pub fn fractions(counts: &[f64], n_types: usize) -> Vec<f64> {
    let mut out = counts.to_vec();
    for row in out.chunks_mut(n_types.max(1)) {
        let s: f64 = row.iter().sum();
        if s > 0.0 {
            row.iter_mut().for_each(|x| *x /= s);
        }
    }
    out
}

/// The dense `n_cells x n_types` fraction matrix (row-major) of the labelled neighbourhood within `hops`
/// steps: what the niche stage clusters.
pub fn neighborhood_fractions(g: &NeighborGraph, labels: &[u32], n_types: usize, hops: usize) -> Vec<f64> {
    fractions(&neighborhood_counts(g, &label_membership(labels, n_types), n_types, hops), n_types)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path4() -> NeighborGraph {
        let mut e = vec![];
        for i in 0..3u32 {
            e.push((i, i + 1, 1.0, 1.0));
            e.push((i + 1, i, 1.0, 1.0));
        }
        NeighborGraph::from_edges(4, e, false)
    }

    #[test]
    fn one_hop_counts_and_fractions() {
        let g = path4();
        let c = neighborhood_counts(&g, &label_membership(&[0, 1, 1, 0], 2), 2, 1);
        assert_eq!(c, vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]);
        let f = neighborhood_fractions(&g, &[0, 1, 1, 0], 2, 1);
        assert_eq!(&f[2..4], &[0.5, 0.5]);
    }

    #[test]
    fn two_hops_count_each_cell_once() {
        let g = path4();
        let c = neighborhood_counts(&g, &label_membership(&[0, 1, 1, 0], 2), 2, 2);
        // Cell 0 reaches 1 and 2 (both type 1); cell 1 reaches 0, 2, 3.
        assert_eq!(&c[0..2], &[0.0, 2.0]);
        assert_eq!(&c[2..4], &[2.0, 1.0]);
    }

    #[test]
    fn proportions_are_summed() {
        let g = path4();
        let m = vec![0.5, 0.5, 1.0, 0.0, 0.0, 1.0, 0.2, 0.8];
        let c = neighborhood_counts(&g, &m, 2, 1);
        assert_eq!(&c[0..2], &[1.0, 0.0]);
        assert_eq!(&c[2..4], &[0.5, 1.5]);
    }

    #[test]
    fn isolated_cell_has_zero_fractions() {
        let g = NeighborGraph::from_edges(2, vec![], false);
        assert_eq!(neighborhood_fractions(&g, &[0, 1], 2, 1), vec![0.0; 4]);
    }
}
