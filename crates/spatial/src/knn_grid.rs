//! Exact k-nearest-neighbour queries on a uniform grid of buckets, for the kNN graph of a tissue section.
//!
//! Cells of a section fill the tissue at a roughly even density, so a grid whose buckets hold a few
//! points each finds a point's `k` nearest neighbours in the 3 x 3 buckets around it most of the time:
//! the search visits square rings of buckets outwards and stops once the `k`-th best squared distance is
//! below the squared distance from the query to the nearest side of the searched block that still has
//! buckets beyond it. No point outside the block can then be as close, so the result is exact.
//!
//! The result is defined the same way as [`crate::kdtree::PointTree::knn_of`]: the `k` points other than
//! the query that are smallest by (squared distance, index). It is a function of the points alone, so the
//! tree and the grid give the same neighbours, distances and order (tested on random points with many
//! ties). The grid has no per-query allocation and no tree walk: about a third of the k-d tree's time per
//! query at a million cells (`docs/spatial.md`, Performance). [`PointGrid::new`]
//! declines point sets the grid would serve badly (all points on one spot, or buckets that would hold
//! hundreds of points in a very uneven section), and [`NearestNeighbors`] falls back to the tree.

use crate::kdtree::PointTree;
use rayon::prelude::*;

/// Points bucketed by a uniform grid, bucket by bucket (coordinates copied in bucket order).
pub struct PointGrid {
    x0: f64,
    y0: f64,
    inv: f64,
    side: f64,
    nx: usize,
    ny: usize,
    /// `start[b]..start[b + 1]` are the slots of bucket `b` (`b = cy * nx + cx`).
    start: Vec<u32>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    ids: Vec<u32>,
    /// Slot of each input point.
    slot_of: Vec<u32>,
}

/// The most points one bucket may hold before [`PointGrid::new`] declines the point set.
const MAX_BUCKET: usize = 256;

impl PointGrid {
    /// Buckets `points` (finite coordinates) for `k`-nearest-neighbour queries, about `k / 2` points per
    /// bucket on average (at least one). Returns `None` when the grid would not help: fewer than two
    /// points, no extent in either direction, more than 2^32 - 1 points, or a bucket holding more than
    /// 256 points (a very uneven density).
    pub fn new(points: &[[f64; 2]], k: usize) -> Option<Self> {
        let n = points.len();
        if n < 2 || n >= u32::MAX as usize {
            return None;
        }
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for p in points {
            x0 = x0.min(p[0]);
            x1 = x1.max(p[0]);
            y0 = y0.min(p[1]);
            y1 = y1.max(p[1]);
        }
        let (w, h) = (x1 - x0, y1 - y0);
        if !(w.is_finite() && h.is_finite()) || (w <= 0.0 && h <= 0.0) {
            return None;
        }
        let per_bucket = (k as f64 * 0.5).max(1.0);
        // The side for the mean density over the bounding box, but never shorter than that of points spread
        // along its longer side only (points on a line, or a thin strip).
        let side = (w * h * per_bucket / n as f64).sqrt().max(w.max(h) * per_bucket / n as f64);
        let inv = 1.0 / side;
        if !(side > 0.0 && inv.is_finite()) {
            return None;
        }
        // At most about 2n buckets: clamp each side count (the bucket side stays as computed, so a clamped
        // grid only loses the points beyond it into its last bucket, still searched correctly).
        let max_side = (2 * n).max(1) as f64;
        let nx = ((w * inv).floor() + 1.0).min(max_side) as usize;
        let ny = ((h * inv).floor() + 1.0).min(max_side) as usize;
        if nx.checked_mul(ny).is_none_or(|b| b > 4 * n + 4) {
            return None;
        }
        let mut grid = PointGrid {
            x0,
            y0,
            inv,
            side,
            nx,
            ny,
            start: vec![0; nx * ny + 1],
            xs: vec![0.0; n],
            ys: vec![0.0; n],
            ids: vec![0; n],
            slot_of: vec![0; n],
        };
        // The bucket of each point, kept in `slot_of` until the slots are known.
        for (i, p) in points.iter().enumerate() {
            let b = grid.bucket(p);
            grid.slot_of[i] = b as u32;
            grid.start[b + 1] += 1;
        }
        if grid.start.iter().any(|&c| c as usize > MAX_BUCKET) {
            return None;
        }
        for b in 0..nx * ny {
            grid.start[b + 1] += grid.start[b];
        }
        let mut fill = grid.start.clone();
        for (i, p) in points.iter().enumerate() {
            let b = grid.slot_of[i] as usize;
            let slot = fill[b] as usize;
            fill[b] += 1;
            grid.slot_of[i] = slot as u32;
            grid.xs[slot] = p[0];
            grid.ys[slot] = p[1];
            grid.ids[slot] = i as u32;
        }
        Some(grid)
    }

    /// The input indices of the points of each bucket, bucket by bucket (points at one position share a
    /// bucket).
    pub fn buckets(&self) -> impl IndexedParallelIterator<Item = &[u32]> + '_ {
        (0..self.nx * self.ny).into_par_iter().map(|b| &self.ids[self.start[b] as usize..self.start[b + 1] as usize])
    }

    /// Column and row of the bucket holding `p` (clamped into the grid).
    #[inline]
    fn cell(&self, p: &[f64; 2]) -> (usize, usize) {
        let cx = (((p[0] - self.x0) * self.inv).floor().max(0.0) as usize).min(self.nx - 1);
        let cy = (((p[1] - self.y0) * self.inv).floor().max(0.0) as usize).min(self.ny - 1);
        (cx, cy)
    }

    #[inline]
    fn bucket(&self, p: &[f64; 2]) -> usize {
        let (cx, cy) = self.cell(p);
        cy * self.nx + cx
    }

    /// The `k` nearest neighbours of input point `i` (itself excluded), as `(squared distance, index)`
    /// sorted by distance then index, written into `best` (cleared first). Fewer than `k` only when the
    /// grid holds fewer than `k + 1` points.
    pub fn knn_of(&self, i: usize, k: usize, best: &mut Vec<(f64, u32)>) {
        best.clear();
        if k == 0 {
            return;
        }
        let slot = self.slot_of[i] as usize;
        let q = [self.xs[slot], self.ys[slot]];
        let (cx, cy) = self.cell(&q);
        let me = i as u32;
        // Rounding in the bucket arithmetic may put a point a few ulps across a bucket side; the stopping
        // distance is shrunk by a margin far above that, so the search only ever goes a ring further.
        let margin = 1e-9 * (self.side + self.x0.abs().max(self.y0.abs()) + q[0].abs().max(q[1].abs()));
        let mut r = 0usize;
        loop {
            let (lo_x, hi_x) = (cx.saturating_sub(r), (cx + r).min(self.nx - 1));
            let (lo_y, hi_y) = (cy.saturating_sub(r), (cy + r).min(self.ny - 1));
            if r == 0 {
                self.scan(cy * self.nx + cx, q, me, k, best);
            } else {
                // The ring: rows cy - r and cy + r in full, then columns cx - r and cx + r between them.
                for yy in [cy.checked_sub(r), Some(cy + r).filter(|&y| y < self.ny)].into_iter().flatten() {
                    for xx in lo_x..=hi_x {
                        self.scan(yy * self.nx + xx, q, me, k, best);
                    }
                }
                let (in_lo, in_hi) = (cy.saturating_sub(r - 1), (cy + r - 1).min(self.ny - 1));
                for xx in [cx.checked_sub(r), Some(cx + r).filter(|&x| x < self.nx)].into_iter().flatten() {
                    for yy in in_lo..=in_hi {
                        self.scan(yy * self.nx + xx, q, me, k, best);
                    }
                }
            }
            // Sides with buckets beyond them bound what is not yet seen.
            let mut bound = f64::INFINITY;
            if lo_x > 0 {
                bound = bound.min(q[0] - (self.x0 + lo_x as f64 * self.side));
            }
            if hi_x + 1 < self.nx {
                bound = bound.min(self.x0 + (hi_x + 1) as f64 * self.side - q[0]);
            }
            if lo_y > 0 {
                bound = bound.min(q[1] - (self.y0 + lo_y as f64 * self.side));
            }
            if hi_y + 1 < self.ny {
                bound = bound.min(self.y0 + (hi_y + 1) as f64 * self.side - q[1]);
            }
            if bound == f64::INFINITY {
                return;
            }
            let bound = bound - margin;
            if best.len() == k && bound > 0.0 && best[k - 1].0 < bound * bound {
                return;
            }
            r += 1;
        }
    }

    /// Offers every point of bucket `b` except `me` to the sorted list `best` of at most `k` entries.
    #[inline]
    fn scan(&self, b: usize, q: [f64; 2], me: u32, k: usize, best: &mut Vec<(f64, u32)>) {
        let (s, e) = (self.start[b] as usize, self.start[b + 1] as usize);
        // The entry a candidate must beat (by distance, then index) once the list is full.
        let mut worst = if best.len() == k { best[k - 1] } else { (f64::INFINITY, u32::MAX) };
        for slot in s..e {
            let (dx, dy) = (q[0] - self.xs[slot], q[1] - self.ys[slot]);
            let d2 = dx * dx + dy * dy;
            if d2 > worst.0 {
                continue;
            }
            let j = self.ids[slot];
            if j == me || (d2 == worst.0 && j > worst.1) {
                continue;
            }
            if best.len() == k {
                best.pop();
            }
            let mut at = best.len();
            while at > 0 && (best[at - 1].0 > d2 || (best[at - 1].0 == d2 && best[at - 1].1 > j)) {
                at -= 1;
            }
            best.insert(at, (d2, j));
            if best.len() == k {
                worst = best[k - 1];
            }
        }
    }
}

/// Exact k-nearest-neighbour search over a point set: the grid where it serves the points, else the k-d
/// tree. Both give the same result ([`PointGrid`]).
pub enum NearestNeighbors {
    /// Bucketed points.
    Grid(PointGrid),
    /// A k-d tree, for point sets the grid declines.
    Tree(PointTree),
}

impl NearestNeighbors {
    /// Indexes `points` (finite coordinates) for queries of `k` neighbours.
    pub fn new(points: &[[f64; 2]], k: usize) -> Self {
        match PointGrid::new(points, k) {
            Some(g) => NearestNeighbors::Grid(g),
            None => NearestNeighbors::Tree(PointTree::new(points.to_vec())),
        }
    }

    /// The `k` nearest neighbours of point `i` (itself excluded) as `(squared distance, index)`, sorted by
    /// distance then index, into `best` (cleared first).
    pub fn knn_of(&self, i: usize, k: usize, best: &mut Vec<(f64, u32)>) {
        match self {
            NearestNeighbors::Grid(g) => g.knn_of(i, k, best),
            NearestNeighbors::Tree(t) => *best = t.knn_of(i, k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn same_as_tree(points: Vec<[f64; 2]>, k: usize) {
        let grid = PointGrid::new(&points, k).expect("a grid");
        let tree = PointTree::new(points.clone());
        let mut best = Vec::new();
        for i in 0..points.len() {
            grid.knn_of(i, k, &mut best);
            assert_eq!(best, tree.knn_of(i, k), "point {i} of {}, k = {k}", points.len());
        }
    }

    #[test]
    fn the_grid_finds_what_the_tree_finds() {
        let mut seed = 7;
        // Uniform, real-valued.
        let pts: Vec<[f64; 2]> = (0..3000).map(|_| [lcg(&mut seed) * 1000.0, lcg(&mut seed) * 500.0]).collect();
        for k in [1, 6, 15] {
            same_as_tree(pts.clone(), k);
        }
        // Integer positions with many exact ties and duplicates (a Visium-like lattice, spots stacked).
        let pts: Vec<[f64; 2]> =
            (0..2000).map(|_| [(lcg(&mut seed) * 30.0).floor(), (lcg(&mut seed) * 20.0).floor()]).collect();
        for k in [1, 4, 6, 10] {
            same_as_tree(pts.clone(), k);
        }
        // Uneven: a dense clump and sparse points far away; a section with a large hole.
        let mut pts: Vec<[f64; 2]> = (0..200).map(|_| [lcg(&mut seed) * 10.0, lcg(&mut seed) * 10.0]).collect();
        pts.extend((0..40).map(|_| [5000.0 + lcg(&mut seed) * 3000.0, lcg(&mut seed) * 8000.0]));
        same_as_tree(pts, 6);
        let pts: Vec<[f64; 2]> = (0..4000)
            .map(|_| [lcg(&mut seed) * 100.0, lcg(&mut seed) * 100.0])
            .filter(|p| (p[0] - 50.0).hypot(p[1] - 50.0) > 40.0)
            .collect();
        same_as_tree(pts, 6);
        // Points on one line, and more neighbours asked than there are points.
        same_as_tree((0..50).map(|i| [i as f64 * 0.5, 3.0]).collect(), 6);
        same_as_tree((0..5).map(|i| [i as f64, (i * i) as f64]).collect(), 10);
    }

    #[test]
    fn the_grid_declines_what_it_would_serve_badly() {
        assert!(PointGrid::new(&[[1.0, 1.0]], 6).is_none());
        assert!(PointGrid::new(&[[1.0, 1.0]; 10], 6).is_none(), "no extent");
        let mut pts = vec![[0.0, 0.0]; 600];
        pts.push([1e6, 1e6]);
        assert!(PointGrid::new(&pts, 6).is_none(), "600 points in one bucket");
    }
}
