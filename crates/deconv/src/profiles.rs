//! Reference profiles and the two gene lists of the RCTD model (Cable et al., Nat Biotechnol 2022).
//!
//! Profiles: cells with fewer than `min_umi` counts are dropped, each type is capped at
//! `max_cells_per_type` cells (seeded sample), types with fewer than `min_cells_per_type` cells are
//! dropped (and reported); `mu[k][g]` is the mean over the type's cells of `count / cell_total`.
//! O(nnz) time, O(types x genes) memory.
//!
//! Gene lists: mitochondrial genes (`MT-`/`mt-`) are dropped; genes present in both data sets with
//! at least `min_obs` counts in the spatial data are kept; a gene is selected for type `k` when
//! `ln(mu_k + 1e-9) - ln(mean over other types + 1e-9) > fc` and `mu_k > expr`; the list is the
//! union over types. "reg" (fc 0.75, expr 2e-4) is used for per-spot fits, "bulk" (fc 0.5,
//! expr 1.25e-4) for the platform-effect fit.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tmescope_core::counts::CsrCounts;
use tmescope_core::seed::GOLDEN_GAMMA;
use tmescope_core::{Error, Result};

/// Options of [`build_profiles`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReferenceOptions {
    /// Cells with fewer counts are dropped (100).
    pub min_umi: f64,
    /// Types with more cells are subsampled to this many (10,000; seeded).
    pub max_cells_per_type: usize,
    /// Types with fewer cells (after the UMI filter) are dropped and reported (25).
    pub min_cells_per_type: usize,
    /// Seed of the subsampling.
    pub seed: u64,
}

impl Default for ReferenceOptions {
    fn default() -> Self {
        ReferenceOptions { min_umi: 100.0, max_cells_per_type: 10_000, min_cells_per_type: 25, seed: 1 }
    }
}

/// Cell-type profiles of a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceProfiles {
    /// Cell types kept, in output order.
    pub cell_types: Vec<String>,
    /// Cells used per type.
    pub n_cells: Vec<usize>,
    /// `mu[k * n_genes + g]`: mean fraction of a type-`k` cell's counts on gene `g`.
    pub mu: Vec<f64>,
    /// Number of genes (columns of the reference).
    pub n_genes: usize,
    /// Types dropped for having too few cells: name and number of cells.
    pub dropped_types: Vec<(String, usize)>,
    /// Cells dropped: below `min_umi`, without a label.
    pub dropped_cells_low_umi: usize,
    /// Cells without a label.
    pub dropped_cells_unlabelled: usize,
}

/// Orders labels numerically when they are all integers, else as text.
pub fn sort_labels(labels: &mut [String]) {
    if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
        labels.sort_by_key(|l| l.parse::<i64>().unwrap_or(0));
    } else {
        labels.sort();
    }
}

/// Builds profiles from reference counts (cells x genes), labels and per-cell totals. `source` names
/// the reference in errors.
pub fn build_profiles(
    counts: &CsrCounts,
    labels: &[Option<String>],
    totals: &[f64],
    opts: &ReferenceOptions,
    source: &std::path::Path,
) -> Result<ReferenceProfiles> {
    let n = counts.n_rows;
    if labels.len() != n || totals.len() != n {
        return Err(Error::Internal("labels/totals length differs from the reference cells".into()));
    }
    if let Some(k) = (0..counts.nnz()).find(|&k| !counts.values.get(k).is_finite() || counts.values.get(k) < 0.0) {
        return Err(Error::input(
            source,
            "counts.parquet, column `count`",
            format!("expected finite non-negative counts, found {} (entry {k})", counts.values.get(k)),
        ));
    }
    if let Some(i) = totals.iter().position(|t| !t.is_finite()) {
        return Err(Error::input(
            source,
            format!("cell {} total", i + 1),
            format!("expected a finite total, found {}", totals[i]),
        ));
    }
    let unlabelled = labels.iter().filter(|l| l.as_deref().is_none_or(|s| s.trim().is_empty())).count();
    if unlabelled == n {
        return Err(Error::input(
            source,
            "cells.parquet, column `cell_type`",
            "every cell lacks a label: expected cell-type names",
        ));
    }
    let mut by_type: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut low_umi = 0;
    for i in 0..n {
        let Some(l) = labels[i].as_deref().filter(|s| !s.trim().is_empty()) else { continue };
        if totals[i] < opts.min_umi || totals[i] <= 0.0 {
            low_umi += 1;
            continue;
        }
        by_type.entry(l).or_default().push(i);
    }
    let mut names: Vec<String> = labels.iter().flatten().filter(|s| !s.trim().is_empty()).cloned().collect();
    sort_labels(&mut names);
    names.dedup();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (t, name) in names.iter().enumerate() {
        let cells = by_type.get(name.as_str()).cloned().unwrap_or_default();
        if cells.len() < opts.min_cells_per_type.max(1) {
            dropped.push((name.clone(), cells.len()));
            continue;
        }
        let cells = if cells.len() > opts.max_cells_per_type {
            let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ (t as u64).wrapping_mul(GOLDEN_GAMMA));
            let mut pick: Vec<usize> =
                sample(&mut rng, cells.len(), opts.max_cells_per_type).into_iter().map(|j| cells[j]).collect();
            pick.sort_unstable();
            pick
        } else {
            cells
        };
        kept.push((name.clone(), cells));
    }
    if kept.len() < 2 {
        return Err(Error::input(
            source,
            "cells.parquet, column `cell_type`",
            format!(
                "{} cell type(s) have at least {} cells with >= {} counts; at least 2 are needed (types dropped: {})",
                kept.len(),
                opts.min_cells_per_type,
                opts.min_umi,
                dropped.iter().map(|(t, c)| format!("{t} ({c} cells)")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let g_n = counts.n_cols;
    let mut mu = vec![0.0; kept.len() * g_n];
    for (k, (_, cells)) in kept.iter().enumerate() {
        let row = &mut mu[k * g_n..(k + 1) * g_n];
        for &i in cells {
            let inv = 1.0 / totals[i];
            for (g, v) in counts.row_iter(i) {
                row[g as usize] += v * inv;
            }
        }
        let m = cells.len() as f64;
        row.iter_mut().for_each(|v| *v /= m);
    }
    Ok(ReferenceProfiles {
        cell_types: kept.iter().map(|(n, _)| n.clone()).collect(),
        n_cells: kept.iter().map(|(_, c)| c.len()).collect(),
        mu,
        n_genes: g_n,
        dropped_types: dropped,
        dropped_cells_low_umi: low_umi,
        dropped_cells_unlabelled: unlabelled,
    })
}

/// Thresholds of one gene list.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GeneListThresholds {
    /// Minimum log fold change against the mean of the other types.
    pub fc: f64,
    /// Minimum mean expression fraction in the type.
    pub expr: f64,
}

/// Default "reg" thresholds (fc 0.75, expr 2e-4).
pub const REG: GeneListThresholds = GeneListThresholds { fc: 0.75, expr: 2e-4 };
/// Default "bulk" thresholds (fc 0.5, expr 1.25e-4).
pub const BULK: GeneListThresholds = GeneListThresholds { fc: 0.5, expr: 1.25e-4 };

/// Whether a gene symbol is mitochondrial (`MT-` / `mt-` prefix, any case).
pub fn is_mitochondrial(name: &str) -> bool {
    name.len() >= 3 && name[..3].eq_ignore_ascii_case("mt-")
}

/// Genes (reference column indices, in reference order) selected for any type by `th`, among the
/// `candidates`. `mu` is types x `n_genes`.
pub fn de_genes(
    mu: &[f64],
    n_types: usize,
    n_genes: usize,
    candidates: &[usize],
    th: GeneListThresholds,
) -> (Vec<usize>, Vec<usize>) {
    let eps = 1e-9;
    let mut selected = vec![false; n_genes];
    let mut per_type = vec![0; n_types];
    for &g in candidates {
        let total: f64 = (0..n_types).map(|k| mu[k * n_genes + g]).sum();
        for k in 0..n_types {
            let own = mu[k * n_genes + g];
            let other = (total - own) / (n_types - 1) as f64;
            if (own + eps).ln() - (other + eps).ln() > th.fc && own > th.expr {
                selected[g] = true;
                per_type[k] += 1;
            }
        }
    }
    (candidates.iter().copied().filter(|&g| selected[g]).collect(), per_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn labels(v: &[&str]) -> Vec<Option<String>> {
        v.iter().map(|s| (!s.is_empty()).then(|| s.to_string())).collect()
    }

    #[test]
    fn profiles_are_mean_fractions_and_small_types_dropped() {
        // Cells: A (2 cells), B (2 cells), C (1 cell).
        let m = CsrCounts::from_triplets(
            5,
            2,
            vec![(0, 0, 100.0), (1, 0, 50.0), (1, 1, 50.0), (2, 1, 200.0), (3, 1, 300.0), (4, 0, 400.0)],
            true,
        )
        .unwrap();
        let t = m.row_totals();
        let opts = ReferenceOptions { min_cells_per_type: 2, ..Default::default() };
        let p = build_profiles(&m, &labels(&["A", "A", "B", "B", "C"]), &t, &opts, Path::new("ref")).unwrap();
        assert_eq!(p.cell_types, vec!["A", "B"]);
        assert_eq!(p.dropped_types, vec![("C".to_string(), 1)]);
        assert!((p.mu[0] - 0.75).abs() < 1e-12 && (p.mu[1] - 0.25).abs() < 1e-12);
        assert!((p.mu[3] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn missing_labels_and_nan_totals_are_errors() {
        let m = CsrCounts::from_triplets(2, 1, vec![(0, 0, 200.0), (1, 0, 200.0)], true).unwrap();
        let e =
            build_profiles(&m, &labels(&["", ""]), &[200.0, 200.0], &Default::default(), Path::new("ref")).unwrap_err();
        assert!(e.to_string().contains("label"), "{e}");
        let e = build_profiles(&m, &labels(&["A", "B"]), &[f64::NAN, 200.0], &Default::default(), Path::new("ref"))
            .unwrap_err();
        assert!(e.to_string().contains("finite"), "{e}");
    }

    #[test]
    fn de_genes_use_fold_change_and_expression() {
        // Two types, three genes: gene 0 specific to type 0, gene 1 flat, gene 2 specific but tiny.
        let mu = [0.01, 0.005, 1e-5, 0.001, 0.005, 0.0];
        let (sel, per) = de_genes(&mu, 2, 3, &[0, 1, 2], REG);
        assert_eq!(sel, vec![0]);
        assert_eq!(per, vec![1, 0]);
        assert!(is_mitochondrial("mt-Co1") && is_mitochondrial("MT-ND1") && !is_mitochondrial("Mtor"));
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let mut v = vec!["10".to_string(), "2".into(), "1".into()];
        sort_labels(&mut v);
        assert_eq!(v, vec!["1", "2", "10"]);
    }
}
