//! Visium-like spots: a hexagonal grid of round spots that sum the counts of the cells inside.
//!
//! Spot centres lie on rows `spacing * sqrt(3) / 2` apart, `spacing` apart within a row, odd rows shifted
//! by half a spacing (the Visium layout: 55 um spots, 100 um centre to centre). A cell belongs to the
//! spot whose centre is nearest if that centre is within the spot radius (k-d tree query, O(log S));
//! other cells are not measured. Only spots holding at least one cell are kept (`in_tissue`). A spot's
//! counts are the sum of its cells' counts: O(non-zeros of the member cells).

use crate::geometry::PointIndex;
use rayon::prelude::*;
use tmescope_core::counts::{CountValues, CsrCounts};

/// A hexagonal grid of spots covering a section.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotGrid {
    /// Spot centres.
    pub centre: Vec<[f64; 2]>,
    /// Visium `array_row`.
    pub array_row: Vec<i64>,
    /// Visium `array_col` (even on even rows, odd on odd rows).
    pub array_col: Vec<i64>,
}

impl SpotGrid {
    /// The grid covering `[0, width] x [0, height]` with centre-to-centre distance `spacing`.
    pub fn new(width: f64, height: f64, spacing: f64) -> Self {
        let row_h = spacing * 3f64.sqrt() / 2.0;
        let mut g = SpotGrid { centre: vec![], array_row: vec![], array_col: vec![] };
        let mut row = 0i64;
        loop {
            let y = spacing / 2.0 + row as f64 * row_h;
            if y > height {
                break;
            }
            let shift = if row % 2 == 1 { spacing / 2.0 } else { 0.0 };
            let mut col = 0i64;
            loop {
                let x = spacing / 2.0 + shift + col as f64 * spacing;
                if x > width {
                    break;
                }
                g.centre.push([x, y]);
                g.array_row.push(row);
                g.array_col.push(2 * col + row % 2);
                col += 1;
            }
            row += 1;
        }
        g
    }

    /// Number of spots.
    pub fn len(&self) -> usize {
        self.centre.len()
    }

    /// Whether the grid has no spot.
    pub fn is_empty(&self) -> bool {
        self.centre.is_empty()
    }

    /// The spot holding each cell (within `radius` of its centre), or `None`.
    pub fn assign(&self, x: &[f64], y: &[f64], radius: f64) -> Vec<Option<u32>> {
        let index = PointIndex::new(&self.centre);
        (0..x.len())
            .into_par_iter()
            .map(|i| index.nearest([x[i], y[i]]).and_then(|(s, d)| (d <= radius).then_some(s as u32)))
            .collect()
    }
}

/// Member cells of each spot, in cell order (CSR: `offsets` has `n_spots + 1` entries).
#[derive(Debug, Clone, PartialEq)]
pub struct SpotMembers {
    /// Row pointers into `cells`.
    pub offsets: Vec<usize>,
    /// Cell indices.
    pub cells: Vec<u32>,
}

impl SpotMembers {
    /// Groups cells by spot (counting sort: O(cells + spots)).
    pub fn new(membership: &[Option<u32>], n_spots: usize) -> Self {
        let mut offsets = vec![0usize; n_spots + 1];
        for s in membership.iter().flatten() {
            offsets[*s as usize + 1] += 1;
        }
        for i in 0..n_spots {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut cells = vec![0u32; offsets[n_spots]];
        for (i, s) in membership.iter().enumerate() {
            if let Some(s) = s {
                cells[next[*s as usize]] = i as u32;
                next[*s as usize] += 1;
            }
        }
        SpotMembers { offsets, cells }
    }

    /// The cells of spot `s`.
    pub fn of(&self, s: usize) -> &[u32] {
        &self.cells[self.offsets[s]..self.offsets[s + 1]]
    }
}

/// Sums the counts of each listed spot's member cells; row `k` of the result is `spots[k]`.
pub fn aggregate(counts: &CsrCounts, members: &SpotMembers, spots: &[usize]) -> CsrCounts {
    let g = counts.n_cols;
    let rows: Vec<(Vec<u32>, Vec<u32>)> = spots
        .par_iter()
        .map(|&s| {
            let mut dense = vec![0u32; g];
            for &c in members.of(s) {
                for (j, v) in counts.row_iter(c as usize) {
                    dense[j as usize] += v as u32;
                }
            }
            let idx: Vec<u32> = (0..g as u32).filter(|&j| dense[j as usize] > 0).collect();
            let val: Vec<u32> = idx.iter().map(|&j| dense[j as usize]).collect();
            (idx, val)
        })
        .collect();
    let mut indptr = Vec::with_capacity(spots.len() + 1);
    indptr.push(0u64);
    let mut indices = Vec::new();
    let mut values = Vec::new();
    for (idx, val) in rows {
        indices.extend_from_slice(&idx);
        values.extend_from_slice(&val);
        indptr.push(indices.len() as u64);
    }
    CsrCounts { n_rows: spots.len(), n_cols: g, indptr, indices, values: CountValues::U32(values) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_grid_geometry() {
        let g = SpotGrid::new(400.0, 300.0, 100.0);
        assert_eq!(g.centre[0], [50.0, 50.0]);
        let r1 = g.array_row.iter().position(|&r| r == 1).unwrap();
        assert!((g.centre[r1][0] - 100.0).abs() < 1e-9);
        assert!((g.centre[r1][1] - (50.0 + 86.602_540_378)).abs() < 1e-6);
        assert_eq!(g.array_col[r1], 1);
        // Nearest neighbours are exactly one spacing apart.
        let d = ((g.centre[r1][0] - g.centre[0][0]).powi(2) + (g.centre[r1][1] - g.centre[0][1]).powi(2)).sqrt();
        assert!((d - 100.0).abs() < 1e-9);
    }

    #[test]
    fn cells_inside_spots_are_summed() {
        let g = SpotGrid::new(200.0, 100.0, 100.0);
        // Cell 0 at a spot centre, cell 1 27 um away (inside), cell 2 between spots (outside).
        let x = [50.0, 77.0, 100.0];
        let y = [50.0, 50.0, 50.0];
        let m = g.assign(&x, &y, 27.5);
        assert_eq!(m, vec![Some(0), Some(0), None]);
        let counts =
            CsrCounts::from_triplets(3, 2, vec![(0, 0, 2.0), (1, 0, 3.0), (1, 1, 1.0), (2, 1, 9.0)], true).unwrap();
        let members = SpotMembers::new(&m, g.len());
        assert_eq!(members.of(0), &[0, 1]);
        let s = aggregate(&counts, &members, &[0]);
        assert_eq!(s.row_iter(0).collect::<Vec<_>>(), vec![(0, 5.0), (1, 1.0)]);
    }
}
