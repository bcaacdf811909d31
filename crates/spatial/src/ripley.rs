//! Ripley's K and L functions for the cells of one type, with bounded memory.
//!
//! For the `m` cells of the type in a sample of area `A` (the bounding box of all the sample's cells),
//! `K(r) = A / (m (m - 1)) * #{ordered pairs i != j of the type with d(i, j) <= r}` and
//! `L(r) = sqrt(K(r) / pi)`; under complete spatial randomness `L(r) = r`. No edge correction is applied
//! (squidpy's `ripley` does none either), so `L(r)` is biased low near the maximum radius on small sections.
//! Pairs are counted with a k-d tree over the type's cells only: O(m log m + m k) time for k neighbours
//! within the largest radius and O(m + R) memory, where squidpy builds an m x m distance matrix.

use crate::kdtree::cumulative_pair_counts;

/// K and L at each radius.
#[derive(Debug, Clone, PartialEq)]
pub struct Ripley {
    /// Radii, ascending.
    pub radii: Vec<f64>,
    /// Number of ordered pairs within each radius.
    pub pairs: Vec<u64>,
    /// Ripley's K.
    pub k: Vec<f64>,
    /// Ripley's L = sqrt(K / pi).
    pub l: Vec<f64>,
}

/// Ripley's K and L of the points `pts` (cells of one type) in a window of area `area`.
pub fn ripley(pts: &[[f64; 2]], area: f64, radii: &[f64]) -> Ripley {
    let pairs = cumulative_pair_counts(pts, radii, 1, |_, _| 0);
    let m = pts.len() as f64;
    let k: Vec<f64> =
        pairs.iter().map(|&c| if m > 1.0 { area * c as f64 / (m * (m - 1.0)) } else { f64::NAN }).collect();
    let l = k.iter().map(|k| (k / std::f64::consts::PI).sqrt()).collect();
    Ripley { radii: radii.to_vec(), pairs, k, l }
}

/// Area of the bounding box of `x`, `y` (0 for fewer than two distinct positions).
pub fn bounding_box_area(x: &[f64], y: &[f64]) -> f64 {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (&a, &b) in x.iter().zip(y) {
        x0 = x0.min(a);
        x1 = x1.max(a);
        y0 = y0.min(b);
        y1 = y1.max(b);
    }
    if x1 > x0 && y1 > y0 {
        (x1 - x0) * (y1 - y0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs_and_scales() {
        // Three points on a line, 1 apart: ordered pairs within 1: 4; within 2: 6.
        let pts = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]];
        let r = ripley(&pts, 6.0, &[1.0, 2.0]);
        assert_eq!(r.pairs, vec![4, 6]);
        assert!((r.k[0] - 6.0 * 4.0 / 6.0).abs() < 1e-12);
        assert!((r.l[1] - (6.0 / std::f64::consts::PI).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn regular_grid_l_is_near_r() {
        let mut pts = vec![];
        for i in 0..60 {
            for j in 0..60 {
                pts.push([i as f64 + 0.5, j as f64 + 0.5]);
            }
        }
        let r = ripley(&pts, 3600.0, &[3.2]);
        // 36 lattice points lie within 3.2 (pi 3.2^2 = 32.2), edge effects lower that a little.
        assert!(r.l[0] > 2.9 && r.l[0] < 3.5, "{:?}", r.l);
        assert_eq!(bounding_box_area(&[0.0, 2.0], &[1.0, 4.0]), 6.0);
    }
}
