//! Per-gene summaries of the counts, written into `genes.parquet` with every dataset and read back by the
//! stages that need them (the control-gene bins of `score`, the most variable genes of `stats`), so that
//! those stages skip one pass over `counts.parquet`.
//!
//! Besides the number of cells with a count and the total count of each gene, the file holds the mean and
//! the (population) variance over all cells of `ln(1 + count * target / total)`, scanpy's
//! `normalize_total` + `log1p` (Wolf et al., Genome Biol 2018), for two targets: 10,000 (`cp10k`, the
//! `score` default) and the median non-zero cell total (`median`, scanpy's `target_sum=None`, used by
//! `stats`). Both are accumulated cell by cell in row order: at ingest by [`GeneStats::of_counts`], and by
//! [`LogMoments`] when a stage finds the stored values missing or not matching the counts; each sum gets
//! the same additions in the same order on both paths, so they give the same bits (tested).

use crate::counts::{CountValues, CsrCounts, Log1pScaled};
use crate::parquet_io::{file_num_rows, Table};
use crate::{Error, Result};
use std::path::Path;

/// The `score` default normalisation target (counts per 10,000).
pub const CP10K: f64 = 1e4;

/// Metadata key of `genes.parquet` holding what the stored statistics were computed from (JSON:
/// `n_cells`, `nnz`, `median_total`).
pub const GENE_STATS_KEY: &str = "tmescope.gene_stats";

/// Column names of the statistics in `genes.parquet`, in file order.
pub const GENE_STATS_COLUMNS: [&str; 6] =
    ["n_cells", "total_counts", "mean_log1p_cp10k", "var_log1p_cp10k", "mean_log1p_median", "var_log1p_median"];

/// One cell's scale factor `target / total` (0 for an empty cell, which stays 0 as in scanpy).
#[inline]
pub fn cell_scale(total: f64, target: f64) -> f64 {
    if total > 0.0 {
        target / total
    } else {
        0.0
    }
}

/// The `p`-th percentile (0..=100) of `v` with linear interpolation (numpy's default); `v` is reordered
/// here (a selection in linear time, not a sort: the Delaunay pruning takes it over millions of edges).
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = (p / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (_, &mut at_lo, above) = v.select_nth_unstable_by(lo, f64::total_cmp);
    // The next order statistic is the smallest of the values placed after the `lo`-th.
    let at_hi = if hi == lo { at_lo } else { above.iter().copied().min_by(f64::total_cmp).unwrap_or(at_lo) };
    at_lo + (at_hi - at_lo) * (pos - lo as f64)
}

/// scanpy's `normalize_total(target_sum=None)` target: the median of the non-zero cell totals (1 when
/// every cell is empty).
pub fn median_target(totals: &[f64]) -> f64 {
    let mut nz: Vec<f64> = totals.iter().copied().filter(|&t| t > 0.0).collect();
    if nz.is_empty() {
        1.0
    } else {
        percentile(&mut nz, 50.0)
    }
}

/// Per-gene sums of `ln(1 + count * target / total)` and of its square, accumulated cell by cell (so the
/// counts can be streamed; rows are added in cell order, so the sums do not depend on the thread count).
#[derive(Debug, Clone)]
pub struct LogMoments {
    target: f64,
    sum: Vec<f64>,
    sum2: Vec<f64>,
    log: Log1pScaled,
}

impl LogMoments {
    /// Zero sums for `n_genes` genes and the normalisation `target`.
    pub fn new(n_genes: usize, target: f64) -> Self {
        LogMoments { target, sum: vec![0.0; n_genes], sum2: vec![0.0; n_genes], log: Log1pScaled::new(1.0) }
    }

    /// Adds one cell: its non-zero `genes`, their `values` and the cell's `total` count.
    #[inline]
    pub fn add_row(&mut self, genes: &[u32], values: impl IntoIterator<Item = f64>, total: f64) {
        self.log.reset(cell_scale(total, self.target));
        for (&g, v) in genes.iter().zip(values) {
            let x = self.log.get(v);
            self.sum[g as usize] += x;
            self.sum2[g as usize] += x * x;
        }
    }

    /// The means over `n_cells` cells (cells never added count as zeros).
    pub fn means(&self, n_cells: usize) -> Vec<f64> {
        let m = n_cells.max(1) as f64;
        self.sum.iter().map(|s| s / m).collect()
    }

    /// The population variances over `n_cells` cells, `E[x^2] - E[x]^2`.
    pub fn variances(&self, n_cells: usize) -> Vec<f64> {
        let m = n_cells.max(1) as f64;
        self.sum.iter().zip(&self.sum2).map(|(s, s2)| s2 / m - (s / m).powi(2)).collect()
    }
}

/// The statistics of every gene, as stored in `genes.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneStats {
    /// Cells with a non-zero count of the gene.
    pub n_cells: Vec<u32>,
    /// Sum of the gene's counts.
    pub total_counts: Vec<f64>,
    /// Mean of `ln(1 + count * 10^4 / total)` over all cells.
    pub mean_log1p_cp10k: Vec<f64>,
    /// Variance of the same.
    pub var_log1p_cp10k: Vec<f64>,
    /// Mean of `ln(1 + count * median / total)` over all cells.
    pub mean_log1p_median: Vec<f64>,
    /// Variance of the same.
    pub var_log1p_median: Vec<f64>,
    /// The median non-zero cell total used as `median`.
    pub median_total: f64,
    /// Number of cells the statistics were computed over.
    pub cells: usize,
    /// Number of stored entries of the count matrix they were computed from.
    pub nnz: usize,
}

impl GeneStats {
    /// Computes the statistics of a count matrix (cells x genes), one pass in row order.
    pub fn of_counts(m: &CsrCounts) -> Self {
        let totals = m.row_totals();
        let median_total = median_target(&totals);
        match &m.values {
            CountValues::U32(v) => Self::accumulate(m, &totals, median_total, |k| f64::from(v[k])),
            CountValues::F32(v) => Self::accumulate(m, &totals, median_total, |k| f64::from(v[k])),
        }
    }

    /// The pass of [`GeneStats::of_counts`], with the value type resolved once. Each gene's six sums (both
    /// normalisations, their squares, the total, the cells) sit side by side, so an entry touches one
    /// cache line rather than six arrays; each sum gets the same additions in the same order as
    /// [`LogMoments`] adds them, so the bits are those of the streamed path.
    fn accumulate(m: &CsrCounts, totals: &[f64], median_total: f64, value: impl Fn(usize) -> f64) -> Self {
        let mut acc = vec![[0.0f64; 6]; m.n_cols];
        let (mut cp10k, mut median) = (Log1pScaled::new(1.0), Log1pScaled::new(1.0));
        for (i, &total) in totals.iter().enumerate() {
            cp10k.reset(cell_scale(total, CP10K));
            median.reset(cell_scale(total, median_total));
            let (a, b) = (m.indptr[i] as usize, m.indptr[i + 1] as usize);
            for (&g, k) in m.indices[a..b].iter().zip(a..b) {
                let v = value(k);
                let (x, y) = (cp10k.get(v), median.get(v));
                let s = &mut acc[g as usize];
                s[0] += x;
                s[1] += x * x;
                s[2] += y;
                s[3] += y * y;
                s[4] += v;
                s[5] += f64::from(u8::from(v > 0.0));
            }
        }
        let col = |j: usize| acc.iter().map(|s| s[j]).collect::<Vec<f64>>();
        let moments =
            |target: f64, j: usize| LogMoments { target, sum: col(j), sum2: col(j + 1), log: Log1pScaled::new(1.0) };
        let (cp, md) = (moments(CP10K, 0), moments(median_total, 2));
        GeneStats {
            n_cells: acc.iter().map(|s| s[5] as u32).collect(),
            total_counts: col(4),
            mean_log1p_cp10k: cp.means(m.n_rows),
            var_log1p_cp10k: cp.variances(m.n_rows),
            mean_log1p_median: md.means(m.n_rows),
            var_log1p_median: md.variances(m.n_rows),
            median_total,
            cells: m.n_rows,
            nnz: m.nnz(),
        }
    }

    /// The metadata value stored under [`GENE_STATS_KEY`].
    pub fn describe(&self) -> String {
        serde_json::json!({"n_cells": self.cells, "nnz": self.nnz, "median_total": self.median_total}).to_string()
    }

    /// The mean and variance for the normalisation `target`, if stored for it (exactly 10^4 or the median).
    pub fn moments_for(&self, target: f64) -> Option<(&[f64], &[f64])> {
        if target == CP10K {
            Some((&self.mean_log1p_cp10k, &self.var_log1p_cp10k))
        } else if target == self.median_total {
            Some((&self.mean_log1p_median, &self.var_log1p_median))
        } else {
            None
        }
    }
}

/// Reads the statistics stored in `genes.parquet` of the dataset folder `dir`, if they are there and were
/// computed from the dataset's `n_cells` cells and the entries now in `counts.parquet`; `None` otherwise
/// (a dataset written before they existed, or files put together by hand), when callers compute them.
pub fn read_gene_stats(dir: &Path, n_cells: usize) -> Result<Option<GeneStats>> {
    let genes_path = dir.join(crate::dataset::GENES_FILE);
    let t = Table::read(&genes_path)?;
    if !GENE_STATS_COLUMNS.iter().all(|c| t.has(c)) {
        return Ok(None);
    }
    let Some(meta) = t.metadata.get(GENE_STATS_KEY).and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    else {
        return Ok(None);
    };
    let (Some(cells), Some(nnz), Some(median_total)) =
        (meta["n_cells"].as_u64(), meta["nnz"].as_u64(), meta["median_total"].as_f64())
    else {
        return Ok(None);
    };
    let counts_rows = file_num_rows(&dir.join(crate::dataset::COUNTS_FILE))?;
    if cells as usize != n_cells || nnz as usize != counts_rows {
        return Ok(None);
    }
    let stats = GeneStats {
        n_cells: t.u32("n_cells")?,
        total_counts: t.f64("total_counts")?,
        mean_log1p_cp10k: t.f64("mean_log1p_cp10k")?,
        var_log1p_cp10k: t.f64("var_log1p_cp10k")?,
        mean_log1p_median: t.f64("mean_log1p_median")?,
        var_log1p_median: t.f64("var_log1p_median")?,
        median_total,
        cells: n_cells,
        nnz: counts_rows,
    };
    let finite = [&stats.mean_log1p_cp10k, &stats.var_log1p_cp10k, &stats.mean_log1p_median, &stats.var_log1p_median]
        .iter()
        .all(|c| c.iter().all(|v| v.is_finite()));
    if !finite {
        return Err(Error::input(
            &genes_path,
            "columns `mean_log1p_*`/`var_log1p_*`",
            "expected finite statistics (as ingest writes them)",
        ));
    }
    Ok(Some(stats))
}

/// Per-gene mean and variance of `ln(1 + count * target / total)` over the dataset's `n_cells` cells: the
/// values stored in `genes.parquet` when they exist for `target` and match the counts, else one streamed
/// pass over `counts.parquet` (the same sums either way).
pub fn gene_moments(dir: &Path, n_cells: usize, n_genes: usize, target: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    if let Some(s) = read_gene_stats(dir, n_cells)? {
        if let Some((mean, var)) = s.moments_for(target) {
            if mean.len() == n_genes {
                return Ok((mean.to_vec(), var.to_vec()));
            }
        }
    }
    streamed_gene_moments(dir, n_cells, n_genes, target)
}

/// [`gene_moments`] from one streamed pass over `counts.parquet`, ignoring any stored values.
pub fn streamed_gene_moments(dir: &Path, n_cells: usize, n_genes: usize, target: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut acc = LogMoments::new(n_genes, target);
    crate::dataset::stream_count_rows(dir, n_cells, n_genes, |_, g, v| {
        acc.add_row(g, v.iter().copied(), v.iter().sum());
        Ok(())
    })?;
    Ok((acc.means(n_cells), acc.variances(n_cells)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> CsrCounts {
        CsrCounts::from_triplets(3, 3, vec![(0, 0, 1.0), (0, 2, 3.0), (1, 1, 2.0), (1, 2, 70.0)], true).unwrap()
    }

    #[test]
    fn stats_match_hand_computation() {
        let s = GeneStats::of_counts(&m());
        assert_eq!(s.n_cells, vec![1, 1, 2]);
        assert_eq!(s.total_counts, vec![1.0, 2.0, 73.0]);
        // Totals 4 and 72 (cell 2 is empty): median 38.
        assert_eq!(s.median_total, 38.0);
        let x = |v: f64, t: f64, target: f64| (v * target / t).ln_1p();
        let g2 = [x(3.0, 4.0, CP10K), x(70.0, 72.0, CP10K), 0.0];
        let mean = g2.iter().sum::<f64>() / 3.0;
        assert!((s.mean_log1p_cp10k[2] - mean).abs() < 1e-12);
        let var = g2.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
        assert!((s.var_log1p_cp10k[2] - var).abs() < 1e-12);
        assert!((s.mean_log1p_median[0] - x(1.0, 4.0, 38.0) / 3.0).abs() < 1e-12);
        assert_eq!(s.moments_for(38.0).unwrap().0, s.mean_log1p_median.as_slice());
        assert!(s.moments_for(1e6).is_none());
    }

    fn write_dataset(dir: &Path, counts: CsrCounts) {
        use crate::dataset::{CellTable, Dataset, GeneTable};
        let n = counts.n_rows;
        let d = Dataset {
            cells: CellTable {
                cell_id: (0..n).map(|i| format!("c{i}")).collect(),
                sample: vec!["s".into(); n],
                x: (0..n).map(|i| i as f64).collect(),
                y: vec![0.0; n],
                z: None,
                extra: vec![],
            },
            genes: GeneTable::from_names((0..counts.n_cols).map(|g| format!("G{g}")).collect()),
            counts,
            platform: "table".into(),
            coordinate_unit: "micrometre".into(),
            notes: vec![],
        };
        d.write(dir, &crate::provenance::Provenance::new("test", serde_json::json!({}))).unwrap();
    }

    #[test]
    fn stored_statistics_equal_the_streamed_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        // Uneven counts, one empty cell (13) and counts above the 64-entry log1p cache.
        let mut t = vec![];
        for i in 0..40u32 {
            for g in 0..6u32 {
                if (i * 7 + g * 3) % 5 != 0 && i != 13 {
                    t.push((i, g, ((i * 31 + g * 17) % 97) as f64 + 1.0));
                }
            }
        }
        write_dataset(&dir, CsrCounts::from_triplets(40, 6, t, true).unwrap());
        let s = read_gene_stats(&dir, 40).unwrap().expect("stored by the dataset writer");
        for target in [CP10K, s.median_total] {
            let (mean, var) = streamed_gene_moments(&dir, 40, 6, target).unwrap();
            let (m2, v2) = s.moments_for(target).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&mean), bits(m2), "target {target}");
            assert_eq!(bits(&var), bits(v2), "target {target}");
            assert_eq!(gene_moments(&dir, 40, 6, target).unwrap(), (mean, var));
        }
        // Another target is computed from the counts.
        assert_eq!(gene_moments(&dir, 40, 6, 1e6).unwrap(), streamed_gene_moments(&dir, 40, 6, 1e6).unwrap());
    }

    #[test]
    fn statistics_of_other_counts_are_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write_dataset(&a, CsrCounts::from_triplets(2, 2, vec![(0, 0, 1.0), (1, 1, 2.0)], true).unwrap());
        write_dataset(&b, CsrCounts::from_triplets(2, 2, vec![(0, 0, 1.0), (1, 1, 2.0), (1, 0, 9.0)], true).unwrap());
        assert!(read_gene_stats(&a, 2).unwrap().is_some());
        assert!(read_gene_stats(&a, 3).unwrap().is_none(), "another number of cells");
        // b's genes.parquet next to a's counts: 3 entries recorded, 2 in the file.
        std::fs::copy(b.join(crate::dataset::GENES_FILE), a.join(crate::dataset::GENES_FILE)).unwrap();
        assert!(read_gene_stats(&a, 2).unwrap().is_none());
        let (mean, _) = gene_moments(&a, 2, 2, CP10K).unwrap();
        assert_eq!(mean[0], (1e4f64).ln_1p() / 2.0, "from a's own counts");
    }

    #[test]
    fn median_target_ignores_empty_cells() {
        assert_eq!(median_target(&[0.0, 4.0, 72.0, 10.0]), 10.0);
        assert_eq!(median_target(&[0.0, 0.0]), 1.0);
        assert_eq!(percentile(&mut [4.0, 1.0, 2.0, 3.0], 50.0), 2.5);
        assert_eq!(percentile(&mut [1.0, 2.0], 100.0), 2.0);
        // The selection gives the sorted array's interpolation, for every percentile.
        let v: Vec<f64> = (0..101).map(|i| ((i * 37) % 101) as f64 * 0.5).collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for p in [0.0f64, 1.0, 12.5, 50.0, 99.0, 99.9, 100.0] {
            let pos = p / 100.0 * 100.0;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let want = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
            assert_eq!(percentile(&mut v.clone(), p), want, "p = {p}");
        }
    }
}
