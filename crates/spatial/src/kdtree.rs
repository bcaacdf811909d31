//! A thin wrapper over kiddo's immutable k-d tree for 2-D points: k nearest neighbours with
//! deterministic tie-breaking and visiting every point within a radius; and the pair counts within a set
//! of radii built on it ([`cumulative_pair_counts`], for co-occurrence and Ripley's K).
//!
//! Building is O(n log n); a kNN query is O(log n + k) on average and a radius query is
//! O(log n + m) for m points found. The wrapper exists so the rest of the crate never depends on kiddo's
//! generic query-builder types.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;
use std::num::NonZeroUsize;

/// A k-d tree over 2-D points; items are the positions in the slice it was built from.
pub struct PointTree {
    tree: ImmutableKdTree<f64, 2>,
    points: Vec<[f64; 2]>,
}

impl PointTree {
    /// Builds the tree. Coordinates must be finite (callers validate them first).
    pub fn new(points: Vec<[f64; 2]>) -> Self {
        // Construction only fails when more than u32::MAX points are given; callers index cells by u32.
        let tree = ImmutableKdTree::<f64, 2>::new_from_slice(&points).expect("fewer than 2^32 points");
        PointTree { tree, points }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the tree holds no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points, in input order.
    pub fn points(&self) -> &[[f64; 2]] {
        &self.points
    }

    /// The `k` nearest neighbours of point `i` (itself excluded) as `(squared distance, index)`, sorted by
    /// distance then index. Ties at the k-th distance are broken by the lower index, so the result does
    /// not depend on the tree layout. Returns fewer than `k` only when the tree holds fewer than `k + 1`
    /// points.
    pub fn knn_of(&self, i: usize, k: usize) -> Vec<(f64, u32)> {
        let n = self.points.len();
        let k = k.min(n.saturating_sub(1));
        if k == 0 {
            return vec![];
        }
        let q = self.points[i];
        // One more than needed beyond self, to see whether the k-th distance is tied with the next one.
        let want = NonZeroUsize::new((k + 2).min(n)).expect("k + 2 > 0");
        let res = self.tree.query(&q).nearest_n::<SquaredEuclidean<f64>>(want).execute();
        let mut cand: Vec<(f64, u32)> =
            res.iter().filter(|r| r.item as usize != i).map(|r| (r.distance, r.item)).collect();
        cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // When the next candidate is as far as the k-th neighbour, more points may lie at that same
        // distance and the tree chose among them arbitrarily: collect them all and order by index.
        let complete = res.len() == n;
        if !complete && cand.len() > k && cand[k].0 <= cand[k - 1].0 {
            let kth = cand[k - 1].0;
            cand.clear();
            self.within_visit(i, kth, |j, d2| {
                if j as usize != i {
                    cand.push((d2, j));
                }
            });
            cand.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        cand.truncate(k);
        cand
    }

    /// Calls `visit(index, squared distance)` for every point within squared distance `r2` of point `i`
    /// (inclusive, the point itself included), in no particular order.
    #[inline]
    pub fn within_visit<F: FnMut(u32, f64)>(&self, i: usize, r2: f64, visit: F) {
        let q = self.points[i];
        self.within_point_visit(&q, r2, visit);
    }

    /// Calls `visit(index, squared distance)` for every point within squared distance `r2` of `q`
    /// (inclusive), in no particular order.
    #[inline]
    pub fn within_point_visit<F: FnMut(u32, f64)>(&self, q: &[f64; 2], r2: f64, mut visit: F) {
        self.tree.query(q).within::<SquaredEuclidean<f64>>(r2).unsorted().visit(|r| visit(r.item, r.distance));
    }
}

/// For ascending `radii`, the number of ordered pairs `(x, y)` of distinct points of `pts` with
/// `|x - y| <= radius`, split into `n_slots` counters by `slot(x, y)`: entry `r * n_slots + s` counts the
/// pairs within `radii[r]` in slot `s` (cumulative over the radii). Exact integer counts, so the result
/// does not depend on the thread count.
pub fn cumulative_pair_counts(
    pts: &[[f64; 2]],
    radii: &[f64],
    n_slots: usize,
    slot: impl Fn(usize, usize) -> usize + Sync,
) -> Vec<u64> {
    let nr = radii.len();
    let r2: Vec<f64> = radii.iter().map(|r| r * r).collect();
    let max_r2 = r2.last().copied().unwrap_or(0.0);
    let tree = PointTree::new(pts.to_vec());
    // Per radius bin (the smallest radius reaching the pair), then made cumulative.
    let mut pairs = (0..pts.len())
        .into_par_iter()
        .fold(
            || vec![0u64; nr * n_slots],
            |mut acc, x| {
                tree.within_visit(x, max_r2, |y, d2| {
                    if y as usize != x {
                        let r = r2.partition_point(|&b| b < d2);
                        if r < nr {
                            acc[r * n_slots + slot(x, y as usize)] += 1;
                        }
                    }
                });
                acc
            },
        )
        .reduce(
            || vec![0u64; nr * n_slots],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    for k in n_slots..nr * n_slots {
        pairs[k] += pairs[k - n_slots];
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_breaks_ties_by_index() {
        // A centre with four neighbours at distance 1 and one farther point.
        let pts = vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 3.0]];
        let t = PointTree::new(pts);
        let nn = t.knn_of(0, 2);
        assert_eq!(nn.iter().map(|x| x.1).collect::<Vec<_>>(), vec![1, 2]);
        let nn = t.knn_of(0, 5);
        assert_eq!(nn.iter().map(|x| x.1).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(nn[4].0, 18.0);
    }

    #[test]
    fn knn_with_duplicates_excludes_only_self() {
        let pts = vec![[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 0.0]];
        let t = PointTree::new(pts);
        assert_eq!(t.knn_of(1, 2), vec![(0.0, 0), (0.0, 2)]);
        assert_eq!(t.knn_of(3, 1), vec![(25.0, 0)]);
    }

    #[test]
    fn within_is_inclusive() {
        let t = PointTree::new(vec![[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]);
        let mut found = vec![];
        t.within_visit(0, 25.0, |j, _| found.push(j));
        found.sort();
        assert_eq!(found, vec![0, 1]);
    }
}
