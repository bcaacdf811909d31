//! Nearest-neighbour look-ups over 2-D points (a thin wrapper over kiddo's immutable k-d tree).
//!
//! Building is O(n log n); a nearest query is O(log n) on average. An empty point set answers `None`.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use std::num::NonZero;

/// A static set of 2-D points answering nearest-neighbour queries.
pub struct PointIndex {
    tree: Option<ImmutableKdTree<f64, 2>>,
    len: usize,
}

impl PointIndex {
    /// Indexes `points` (item `i` is `points[i]`).
    pub fn new(points: &[[f64; 2]]) -> Self {
        let tree = if points.is_empty() { None } else { ImmutableKdTree::new_from_slice(points).ok() };
        PointIndex { tree, len: points.len() }
    }

    /// Number of indexed points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no point is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nearest point to `p`: its index and Euclidean distance.
    pub fn nearest(&self, p: [f64; 2]) -> Option<(usize, f64)> {
        let tree = self.tree.as_ref()?;
        let r = tree.query(&p).nearest_one::<SquaredEuclidean<f64>>().execute();
        Some((r.item as usize, r.distance.sqrt()))
    }

    /// The `n` nearest points to `p`, nearest first: index and Euclidean distance.
    pub fn nearest_n(&self, p: [f64; 2], n: usize) -> Vec<(usize, f64)> {
        let (Some(tree), Some(n)) = (self.tree.as_ref(), NonZero::new(n.min(self.len))) else {
            return vec![];
        };
        tree.query(&p)
            .nearest_n::<SquaredEuclidean<f64>>(n)
            .execute()
            .into_iter()
            .map(|r| (r.item as usize, r.distance.sqrt()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_points() {
        let idx = PointIndex::new(&[[0.0, 0.0], [10.0, 0.0], [0.0, 3.0]]);
        assert_eq!(idx.nearest([9.0, 0.0]), Some((1, 1.0)));
        let n = idx.nearest_n([0.0, 1.0], 2);
        assert_eq!(n.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 2]);
        assert!((n[1].1 - 2.0).abs() < 1e-12);
        assert_eq!(PointIndex::new(&[]).nearest([0.0, 0.0]), None);
    }
}
