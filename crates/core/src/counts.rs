//! The sparse count matrix: cells (rows) x genes (columns) in compressed sparse row form.
//!
//! Row pointers are `u64` so that a million cells with hundreds of non-zeros each fit; column indices are
//! `u32`. Values are kept as `u32` when the source holds integers (the usual UMI counts) and `f32` otherwise
//! (normalised or Smart-seq2 style values), so that totals written by ingest equal the source exactly.

use crate::{Error, Result};
use rayon::prelude::*;

/// The first of `indices` that is not below `n`, if any. The maximum is found first, in a vectorised
/// pass, and the offending entry is looked for only when there is one.
pub fn first_out_of_range(indices: &[u32], n: usize) -> Option<u32> {
    if indices.iter().copied().max().is_none_or(|m| (m as usize) < n) {
        return None;
    }
    indices.iter().copied().find(|&i| i as usize >= n)
}

/// The row of each of the `entries` of a CSR matrix with row pointers `indptr` (`indptr[i]..indptr[i + 1]`
/// are row `i`'s entries): the first column of its long form, for one slice of it at a time.
pub fn entry_rows(indptr: &[u64], entries: std::ops::Range<usize>) -> Vec<u32> {
    let mut out = Vec::with_capacity(entries.len());
    let mut row = indptr.partition_point(|&p| p as usize <= entries.start).saturating_sub(1);
    while out.len() < entries.len() {
        let end = (indptr[row + 1] as usize).min(entries.end);
        out.extend(std::iter::repeat_n(row as u32, end.saturating_sub(entries.start + out.len())));
        row += 1;
    }
    out
}

/// The values of a [`CsrCounts`] matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum CountValues {
    /// Integer counts (UMIs, transcripts).
    U32(Vec<u32>),
    /// Non-integer values.
    F32(Vec<f32>),
}

impl CountValues {
    /// Number of stored values.
    pub fn len(&self) -> usize {
        match self {
            CountValues::U32(v) => v.len(),
            CountValues::F32(v) => v.len(),
        }
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as `f64`.
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            CountValues::U32(v) => v[i] as f64,
            CountValues::F32(v) => v[i] as f64,
        }
    }

    /// Whether any value is zero.
    pub fn has_zero(&self) -> bool {
        match self {
            CountValues::U32(v) => v.iter().fold(false, |z, &x| z | (x == 0)),
            CountValues::F32(v) => v.iter().fold(false, |z, &x| z | (x == 0.0)),
        }
    }

    /// Appends every value, as `f64`, to `out`.
    pub fn extend_f64(&self, out: &mut Vec<f64>) {
        match self {
            CountValues::U32(v) => out.extend(v.iter().map(|&x| x as f64)),
            CountValues::F32(v) => out.extend(v.iter().map(|&x| x as f64)),
        }
    }

    /// Whether the values are integers.
    pub fn is_integer(&self) -> bool {
        matches!(self, CountValues::U32(_))
    }
}

/// A cells x genes sparse matrix in CSR form.
#[derive(Debug, Clone, PartialEq)]
pub struct CsrCounts {
    /// Number of rows (cells, spots or bins).
    pub n_rows: usize,
    /// Number of columns (genes).
    pub n_cols: usize,
    /// Row pointers, `n_rows + 1` entries; row `i` holds entries `indptr[i]..indptr[i+1]`.
    pub indptr: Vec<u64>,
    /// Column (gene) index of each entry, sorted and unique within a row.
    pub indices: Vec<u32>,
    /// The values, never zero.
    pub values: CountValues,
}

impl CsrCounts {
    /// An empty matrix with `n_rows` rows and `n_cols` columns.
    pub fn zeros(n_rows: usize, n_cols: usize) -> Self {
        CsrCounts { n_rows, n_cols, indptr: vec![0; n_rows + 1], indices: vec![], values: CountValues::U32(vec![]) }
    }

    /// Builds a matrix from `(row, col, value)` triplets. Duplicated coordinates are summed, zeros dropped.
    /// With `integer`, values must be non-negative whole numbers below 2^32 and are stored as `u32`.
    pub fn from_triplets(
        n_rows: usize,
        n_cols: usize,
        mut triplets: Vec<(u32, u32, f64)>,
        integer: bool,
    ) -> Result<Self> {
        triplets.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0u64; n_rows + 1];
        let mut indices = Vec::with_capacity(triplets.len());
        let mut vals: Vec<f64> = Vec::with_capacity(triplets.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in triplets {
            if r as usize >= n_rows || c as usize >= n_cols {
                return Err(Error::Internal(format!("triplet ({r}, {c}) outside a {n_rows} x {n_cols} matrix")));
            }
            if last == Some((r, c)) {
                *vals.last_mut().expect("a previous value") += v;
                continue;
            }
            last = Some((r, c));
            indptr[r as usize + 1] += 1;
            indices.push(c);
            vals.push(v);
        }
        for i in 0..n_rows {
            indptr[i + 1] += indptr[i];
        }
        let mut m = CsrCounts { n_rows, n_cols, indptr, indices, values: CountValues::F32(vec![]) };
        m.values = if integer {
            CountValues::U32(vals.iter().map(|&v| v as u32).collect())
        } else {
            CountValues::F32(vals.iter().map(|&v| v as f32).collect())
        };
        m.drop_zeros();
        Ok(m)
    }

    /// Builds a CSR matrix from a compressed sparse *column* layout (the 10x HDF5 layout: one column per
    /// barcode, so the CSC of genes x barcodes is the CSR of barcodes x genes; pass `transpose = false`
    /// for that). With `transpose = true`, the input's major axis is genes and the result is transposed.
    pub fn from_compressed(
        n_major: usize,
        n_minor: usize,
        indptr: Vec<u64>,
        indices: Vec<u32>,
        values: CountValues,
        transpose: bool,
    ) -> Self {
        let m = CsrCounts { n_rows: n_major, n_cols: n_minor, indptr, indices, values };
        if transpose {
            m.transpose()
        } else {
            m
        }
    }

    /// The transpose (CSR of the columns), in O(nnz).
    pub fn transpose(&self) -> Self {
        let nnz = self.nnz();
        let mut counts = vec![0u64; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.n_cols {
            counts[i + 1] += counts[i];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; nnz];
        let mut order = vec![0usize; nnz];
        for r in 0..self.n_rows {
            for k in self.indptr[r] as usize..self.indptr[r + 1] as usize {
                let c = self.indices[k] as usize;
                let dst = next[c] as usize;
                next[c] += 1;
                indices[dst] = r as u32;
                order[dst] = k;
            }
        }
        let values = match &self.values {
            CountValues::U32(v) => CountValues::U32(order.iter().map(|&k| v[k]).collect()),
            CountValues::F32(v) => CountValues::F32(order.iter().map(|&k| v[k]).collect()),
        };
        CsrCounts { n_rows: self.n_cols, n_cols: self.n_rows, indptr, indices, values }
    }

    /// Number of stored non-zero entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The column indices and values of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> (&[u32], RowValues<'_>) {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        let vals = match &self.values {
            CountValues::U32(v) => RowValues::U32(&v[a..b]),
            CountValues::F32(v) => RowValues::F32(&v[a..b]),
        };
        (&self.indices[a..b], vals)
    }

    /// Iterates over `(gene, value)` of row `i`.
    pub fn row_iter(&self, i: usize) -> impl Iterator<Item = (u32, f64)> + '_ {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        (a..b).map(move |k| (self.indices[k], self.values.get(k)))
    }

    /// Sum of each row (total counts per cell).
    pub fn row_totals(&self) -> Vec<f64> {
        (0..self.n_rows).into_par_iter().map(|i| self.row_iter(i).map(|(_, v)| v).sum()).collect()
    }

    /// Number of non-zero genes per row.
    pub fn row_nnz(&self) -> Vec<u32> {
        self.indptr.windows(2).map(|w| (w[1] - w[0]) as u32).collect()
    }

    /// Sum of each column (total counts per gene).
    pub fn col_totals(&self) -> Vec<f64> {
        let mut t = vec![0.0; self.n_cols];
        for (k, &c) in self.indices.iter().enumerate() {
            t[c as usize] += self.values.get(k);
        }
        t
    }

    /// Sum of all values.
    pub fn total(&self) -> f64 {
        match &self.values {
            CountValues::U32(v) => v.iter().map(|&x| x as u64).sum::<u64>() as f64,
            CountValues::F32(v) => v.iter().map(|&x| x as f64).sum(),
        }
    }

    /// Keeps only the given rows, in the given order.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0u64);
        let mut indices = Vec::new();
        let mut keep = Vec::new();
        for &r in rows {
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            indices.extend_from_slice(&self.indices[a..b]);
            keep.extend(a..b);
            indptr.push(indices.len() as u64);
        }
        CsrCounts { n_rows: rows.len(), n_cols: self.n_cols, indptr, indices, values: self.pick(&keep) }
    }

    /// Keeps only the given columns; `new_index[c]` is the new index of column `c` or `None` to drop it.
    pub fn select_cols(&self, new_index: &[Option<u32>], n_new: usize) -> Self {
        let mut indptr = Vec::with_capacity(self.n_rows + 1);
        indptr.push(0u64);
        let mut indices = Vec::new();
        let mut keep = Vec::new();
        for r in 0..self.n_rows {
            let start = indices.len();
            for k in self.indptr[r] as usize..self.indptr[r + 1] as usize {
                if let Some(n) = new_index[self.indices[k] as usize] {
                    indices.push(n);
                    keep.push(k);
                }
            }
            // Columns may be re-ordered by the mapping: restore sorted order within the row.
            if indices[start..].windows(2).any(|w| w[0] > w[1]) {
                let mut pairs: Vec<(u32, usize)> =
                    indices[start..].iter().copied().zip(keep[start..].iter().copied()).collect();
                pairs.sort_unstable();
                for (j, (c, k)) in pairs.into_iter().enumerate() {
                    indices[start + j] = c;
                    keep[start + j] = k;
                }
            }
            indptr.push(indices.len() as u64);
        }
        CsrCounts { n_rows: self.n_rows, n_cols: n_new, indptr, indices, values: self.pick(&keep) }
    }

    fn pick(&self, keep: &[usize]) -> CountValues {
        match &self.values {
            CountValues::U32(v) => CountValues::U32(keep.iter().map(|&k| v[k]).collect()),
            CountValues::F32(v) => CountValues::F32(keep.iter().map(|&k| v[k]).collect()),
        }
    }

    /// Removes explicitly stored zeros.
    pub fn drop_zeros(&mut self) {
        if !self.values.has_zero() {
            return;
        }
        let nonzero: Vec<bool> = (0..self.nnz()).map(|k| self.values.get(k) != 0.0).collect();
        let mut indptr = Vec::with_capacity(self.n_rows + 1);
        indptr.push(0u64);
        let mut indices = Vec::new();
        let mut keep = Vec::new();
        for r in 0..self.n_rows {
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            for k in (a..b).filter(|&k| nonzero[k]) {
                indices.push(self.indices[k]);
                keep.push(k);
            }
            indptr.push(indices.len() as u64);
        }
        self.values = self.pick(&keep);
        self.indptr = indptr;
        self.indices = indices;
    }

    /// Sorts column indices within each row and sums duplicates; checks the structure is consistent.
    pub fn canonicalize(&mut self) -> Result<()> {
        if self.indptr.len() != self.n_rows + 1 || *self.indptr.last().unwrap_or(&0) as usize != self.nnz() {
            return Err(Error::Internal("inconsistent CSR row pointers".into()));
        }
        let sorted = (0..self.n_rows).into_par_iter().all(|r| {
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            self.indices[a..b].windows(2).all(|w| w[0] < w[1])
        });
        if !sorted {
            let mut trip = Vec::with_capacity(self.nnz());
            for r in 0..self.n_rows {
                for (c, v) in self.row_iter(r) {
                    trip.push((r as u32, c, v));
                }
            }
            *self = CsrCounts::from_triplets(self.n_rows, self.n_cols, trip, self.values.is_integer())?;
        }
        self.drop_zeros();
        Ok(())
    }
}

/// The values of one row, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum RowValues<'a> {
    /// Integer counts.
    U32(&'a [u32]),
    /// Non-integer values.
    F32(&'a [f32]),
}

impl RowValues<'_> {
    /// Value `k` of the row as `f64`.
    #[inline]
    pub fn get(&self, k: usize) -> f64 {
        match self {
            RowValues::U32(v) => v[k] as f64,
            RowValues::F32(v) => v[k] as f64,
        }
    }
}

/// `ln(1 + v * scale)` for the values of one cell (one `scale`), with whole counts below 64 computed once
/// and looked up: a cell's counts are mostly 1, 2, 3, so a pass over millions of entries takes a handful
/// of logarithms per cell instead of one per entry. Results are the same bits as computing each directly.
#[derive(Debug, Clone)]
pub struct Log1pScaled {
    scale: f64,
    /// Bit `k` set: `table[k]` holds `ln(1 + k * scale)` (a new scale clears the mask, not the table).
    filled: u64,
    table: [f64; 64],
}

impl Log1pScaled {
    /// A cache for one cell's scale factor.
    pub fn new(scale: f64) -> Self {
        Log1pScaled { scale, filled: 0, table: [0.0; 64] }
    }

    /// Starts over for another cell's scale factor, in place (no table to clear).
    #[inline]
    pub fn reset(&mut self, scale: f64) {
        self.scale = scale;
        self.filled = 0;
    }

    /// `ln(1 + v * scale)`.
    #[inline]
    pub fn get(&mut self, v: f64) -> f64 {
        let k = v as usize;
        if k < 64 && k as f64 == v {
            if self.filled & (1 << k) == 0 {
                self.table[k] = (v * self.scale).ln_1p();
                self.filled |= 1 << k;
            }
            self.table[k]
        } else {
            (v * self.scale).ln_1p()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_out_of_range_finds_the_first_offender() {
        assert_eq!(first_out_of_range(&[], 0), None);
        assert_eq!(first_out_of_range(&[0, 2, 1], 3), None);
        assert_eq!(first_out_of_range(&[0, 7, 3, 9], 3), Some(7));
    }

    #[test]
    fn entry_rows_of_any_slice() {
        // Rows 0 and 3 are empty.
        let indptr = [0, 0, 2, 3, 3, 6];
        assert_eq!(entry_rows(&indptr, 0..6), vec![1, 1, 2, 4, 4, 4]);
        assert_eq!(entry_rows(&indptr, 1..4), vec![1, 2, 4]);
        assert_eq!(entry_rows(&indptr, 3..3), Vec::<u32>::new());
        assert_eq!(entry_rows(&[0], 0..0), Vec::<u32>::new());
    }

    #[test]
    fn cached_log1p_is_exact() {
        let mut c = Log1pScaled::new(37.5);
        for v in [1.0, 2.0, 1.0, 63.0, 64.0, 2.5, 0.0, 1000.0] {
            assert_eq!(c.get(v).to_bits(), (v * 37.5f64).ln_1p().to_bits(), "{v}");
        }
        // A reset forgets the previous scale's values.
        c.reset(0.25);
        for v in [1.0, 2.0, 63.0, 0.0] {
            assert_eq!(c.get(v).to_bits(), (v * 0.25f64).ln_1p().to_bits(), "{v}");
        }
    }

    #[test]
    fn triplets_sum_duplicates_and_drop_zeros() {
        let m = CsrCounts::from_triplets(2, 2, vec![(1, 1, 1.0), (1, 1, 2.0), (0, 0, 0.0)], true).unwrap();
        assert_eq!(m.nnz(), 1);
        assert_eq!(m.row_totals(), vec![0.0, 3.0]);
    }

    #[test]
    fn transpose_twice_is_identity() {
        let m = CsrCounts::from_triplets(3, 4, vec![(0, 3, 1.0), (2, 0, 4.0), (2, 3, 2.0), (1, 1, 7.0)], true).unwrap();
        let t = m.transpose();
        assert_eq!(t.n_rows, 4);
        assert_eq!(t.col_totals(), m.row_totals());
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn select_cols_reorders_and_sorts() {
        let m = CsrCounts::from_triplets(1, 3, vec![(0, 0, 1.0), (0, 2, 3.0)], true).unwrap();
        let s = m.select_cols(&[Some(1), None, Some(0)], 2);
        assert_eq!(s.indices, vec![0, 1]);
        assert_eq!(s.values, CountValues::U32(vec![3, 1]));
    }
}
