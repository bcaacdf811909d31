//! Per-cell gene-program scores (their graph smoothing and Getis-Ord Gi* hotspots, NaN where undefined,
//! come from `tmescope_spatial::hotspots::GiStar`, in one pass over the edges).
//!
//! - The gene means of the control bins are those of `tmescope_core::gene_stats` (stored in
//!   `genes.parquet`, or one pass over the counts): counts scaled to `target_sum` per cell, then
//!   `ln(1 + x)`, as scanpy's `normalize_total` + `log1p`, without a dense or normalised copy. O(nnz).
//! - [`control_genes`]: scanpy's `score_genes` control selection (Satija et al., Nat Biotechnol 2015;
//!   scanpy, Wolf et al., Genome Biol 2018): genes ranked by mean (ties take the minimum rank), bin id
//!   `rank // round(n_genes / (n_bins - 1))` (round half to even, as numpy), up to `ctrl_size` genes drawn
//!   without replacement from each bin holding a signature gene, signature genes removed afterwards.
//! - [`ProgramScorer`]: `mean(signature) - mean(control)` per cell (scanpy) or the rank-based score
//!   (Andreatta & Carmona, CSBJ 2021): per cell, genes ranked by decreasing expression (ties averaged),
//!   ranks above `max_rank` set to `max_rank + 1`, and `1 - U / (n * max_rank)` with the Mann-Whitney
//!   `U = sum(ranks) - n (n + 1) / 2`, clamped to [0, 1]. O(nnz log(nnz per cell)).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tmescope_core::counts::Log1pScaled;
pub use tmescope_core::gene_stats::cell_scale;
use tmescope_core::seed::{mix64, GOLDEN_GAMMA};

/// Per-cell scale factors `target_sum / total` (0 for empty cells, which stay 0 as in scanpy).
pub fn normalisation_scale(totals: &[f64], target_sum: f64) -> Vec<f64> {
    totals.iter().map(|&t| cell_scale(t, target_sum)).collect()
}

/// The normalised, log1p value of a count.
#[inline]
pub fn lognorm(count: f64, scale: f64) -> f64 {
    (count * scale).ln_1p()
}

/// scanpy's expression bins: `floor(min_rank / round(n / (n_bins - 1)))` for each gene.
pub fn expression_bins(means: &[f64], n_bins: usize) -> Vec<u64> {
    let n = means.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| means[a].total_cmp(&means[b]));
    let mut rank = vec![0usize; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && means[order[j + 1]] == means[order[i]] {
            j += 1;
        }
        for &g in &order[i..=j] {
            rank[g] = i + 1; // method="min", 1-based
        }
        i = j + 1;
    }
    let n_items = (n as f64 / (n_bins.max(2) - 1) as f64).round_ties_even() as u64;
    rank.iter().map(|&r| (r as u64).checked_div(n_items).unwrap_or(0)).collect()
}

/// Mixes a seed with an item index (SplitMix64's finaliser), so each item has its own random stream.
pub fn item_seed(seed: u64, item: u64) -> u64 {
    mix64(seed ^ item.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA))
}

/// scanpy's control genes for `signature` given the gene `bins`; `rng_item` selects the random stream.
/// Returns sorted gene indices.
pub fn control_genes(bins: &[u64], signature: &[usize], ctrl_size: usize, seed: u64, rng_item: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(item_seed(seed, rng_item));
    let mut cuts: Vec<u64> = signature.iter().map(|&g| bins[g]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut control: Vec<usize> = Vec::new();
    for cut in cuts {
        let members: Vec<usize> = (0..bins.len()).filter(|&g| bins[g] == cut).collect();
        let drawn: Vec<usize> = if ctrl_size < members.len() {
            let mut idx = rand::seq::index::sample(&mut rng, members.len(), ctrl_size).into_vec();
            idx.sort_unstable();
            idx.into_iter().map(|k| members[k]).collect()
        } else {
            members
        };
        control.extend(drawn.into_iter().filter(|g| !signature.contains(g)));
    }
    control.sort_unstable();
    control.dedup();
    control
}

/// Which per-cell score to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMethod {
    /// scanpy `score_genes`: mean(signature) - mean(control).
    Scanpy,
    /// Rank-based, UCell-like Mann-Whitney score in [0, 1].
    Rank,
}

/// A program ready to score: signature genes and (for scanpy) control genes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramGenes {
    /// Signature gene columns.
    pub signature: Vec<usize>,
    /// Control gene columns (empty for the rank score).
    pub control: Vec<usize>,
}

/// Scores every program for one cell at a time (so the counts can be streamed).
#[derive(Debug, Clone)]
pub struct ProgramScorer<'a> {
    programs: &'a [ProgramGenes],
    method: ScoreMethod,
    max_rank: usize,
    n_genes: usize,
    /// scanpy: coefficient of each gene in each program, +1/n_sig for signature, -1/n_ctrl for control;
    /// gene `g`'s `(program, coefficient)` pairs are `coef[coef_start[g]..coef_start[g + 1]]`.
    coef: Vec<(usize, f64)>,
    coef_start: Vec<usize>,
}

impl<'a> ProgramScorer<'a> {
    /// Prepares `programs` (gene columns among `n_genes`) for `method`; `max_rank` caps the rank score.
    pub fn new(programs: &'a [ProgramGenes], method: ScoreMethod, max_rank: usize, n_genes: usize) -> Self {
        let mut per_gene: Vec<Vec<(usize, f64)>> = Vec::new();
        if method == ScoreMethod::Scanpy {
            per_gene = vec![Vec::new(); n_genes];
            for (p, prog) in programs.iter().enumerate() {
                for &g in &prog.signature {
                    per_gene[g].push((p, 1.0 / prog.signature.len() as f64));
                }
                for &g in &prog.control {
                    per_gene[g].push((p, -1.0 / prog.control.len() as f64));
                }
            }
        }
        // Flattened (one contiguous array, no pointer per gene) for the per-entry lookup of `score_row`.
        let mut coef_start = Vec::with_capacity(per_gene.len() + 1);
        coef_start.push(0);
        for c in &per_gene {
            coef_start.push(coef_start[coef_start.len() - 1] + c.len());
        }
        let coef = per_gene.concat();
        ProgramScorer { programs, method, max_rank, n_genes, coef, coef_start }
    }

    /// Writes the score of every program into `out` for one cell with non-zero `genes` (sorted), their
    /// `values` and scale factor `scale`.
    pub fn score_row(&self, genes: &[u32], values: &[f64], scale: f64, out: &mut [f64]) {
        out.fill(0.0);
        match self.method {
            ScoreMethod::Scanpy => {
                // Same bits as `lognorm`, with the cell's small counts computed once.
                let mut log = Log1pScaled::new(scale);
                for (&g, &v) in genes.iter().zip(values) {
                    let c = &self.coef[self.coef_start[g as usize]..self.coef_start[g as usize + 1]];
                    if !c.is_empty() {
                        let x = log.get(v);
                        for &(p, w) in c {
                            out[p] += w * x;
                        }
                    }
                }
            }
            ScoreMethod::Rank => {
                let cap = self.max_rank as f64;
                let mut sorted = values.to_vec();
                sorted.sort_by(|a, b| b.total_cmp(a));
                let nnz = sorted.len() as f64;
                let zero_rank = (nnz + 1.0 + self.n_genes as f64) / 2.0;
                for (p, prog) in self.programs.iter().enumerate() {
                    let m = prog.signature.len() as f64;
                    let mut sum = 0.0;
                    for &g in &prog.signature {
                        let r = match genes.binary_search(&(g as u32)) {
                            Ok(k) if values[k] > 0.0 => {
                                let v = values[k];
                                let above = sorted.partition_point(|x| *x > v) as f64;
                                let ties = sorted.partition_point(|x| *x >= v) as f64 - above;
                                above + (ties + 1.0) / 2.0
                            }
                            _ => zero_rank,
                        };
                        sum += if r > cap { cap + 1.0 } else { r };
                    }
                    let u = sum - m * (m + 1.0) / 2.0;
                    out[p] = (1.0 - u / (m * cap)).clamp(0.0, 1.0);
                }
            }
        }
    }
}

/// Z-scores a vector (population sd); constant vectors become zeros.
pub fn zscore(x: &[f64]) -> Vec<f64> {
    let n = x.len().max(1) as f64;
    let m = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt();
    x.iter().map(|v| if sd > 0.0 { (v - m) / sd } else { 0.0 }).collect()
}

/// The resistance score: `sum_p w_p z_p / sum_p |w_p|` over the programs present (z-scored over cells).
pub fn resistance_score(scores: &[(&[f64], f64)], n: usize) -> Vec<f64> {
    let total: f64 = scores.iter().map(|(_, w)| w.abs()).sum();
    let mut out = vec![0.0; n];
    if total == 0.0 {
        return out;
    }
    for (s, w) in scores {
        for (o, z) in out.iter_mut().zip(zscore(s)) {
            *o += w * z / total;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmescope_core::counts::CsrCounts;
    use tmescope_core::graph::NeighborGraph;

    fn score_programs(
        c: &CsrCounts,
        s: &[f64],
        progs: &[ProgramGenes],
        method: ScoreMethod,
        cap: usize,
    ) -> Vec<Vec<f64>> {
        let scorer = ProgramScorer::new(progs, method, cap, c.n_cols);
        let mut out = vec![vec![0.0; c.n_rows]; progs.len()];
        let mut row = vec![0.0; progs.len()];
        for i in 0..c.n_rows {
            let (g, v) = c.row(i);
            let v: Vec<f64> = (0..g.len()).map(|k| v.get(k)).collect();
            scorer.score_row(g, &v, s[i], &mut row);
            for (p, x) in row.iter().enumerate() {
                out[p][i] = *x;
            }
        }
        out
    }

    fn m() -> CsrCounts {
        // 3 cells x 4 genes.
        CsrCounts::from_triplets(3, 4, vec![(0, 0, 5.0), (0, 1, 5.0), (1, 2, 10.0), (2, 0, 1.0), (2, 3, 3.0)], true)
            .unwrap()
    }

    #[test]
    fn bins_follow_scanpy_rule() {
        // 6 genes, 3 bins: n_items = round(6 / 2) = 3; min ranks 1,1,3,4,5,6 -> bins 0,0,1,1,1,2.
        let b = expression_bins(&[0.0, 0.0, 1.0, 2.0, 3.0, 4.0], 3);
        assert_eq!(b, vec![0, 0, 1, 1, 1, 2]);
    }

    #[test]
    fn controls_exclude_signature_and_are_seeded() {
        let bins = vec![0, 0, 0, 0, 1, 1, 1, 1];
        let c1 = control_genes(&bins, &[0, 4], 2, 7, 0);
        let c2 = control_genes(&bins, &[0, 4], 2, 7, 0);
        assert_eq!(c1, c2);
        assert!(!c1.contains(&0) && !c1.contains(&4));
        assert!(c1.len() <= 4 && !c1.is_empty());
        assert_eq!(control_genes(&bins, &[0], 10, 1, 0), vec![1, 2, 3]);
    }

    #[test]
    fn scanpy_score_is_signature_minus_control() {
        let c = m();
        let s = normalisation_scale(&c.row_totals(), 1e4);
        let prog = ProgramGenes { signature: vec![0, 1], control: vec![2] };
        let sc = score_programs(&c, &s, &[prog], ScoreMethod::Scanpy, 1500);
        let want = ((5000.0f64).ln_1p() * 2.0) / 2.0 - 0.0;
        assert!((sc[0][0] - want).abs() < 1e-12);
        assert!((sc[0][1] + (1e4f64).ln_1p()).abs() < 1e-12);
    }

    #[test]
    fn rank_score_is_high_for_top_genes() {
        let c = CsrCounts::from_triplets(2, 4, vec![(0, 0, 9.0), (0, 1, 8.0), (1, 2, 9.0), (1, 3, 8.0)], true).unwrap();
        let s = normalisation_scale(&c.row_totals(), 1e4);
        let prog = ProgramGenes { signature: vec![0, 1], control: vec![] };
        let sc = score_programs(&c, &s, &[prog], ScoreMethod::Rank, 3);
        // Cell 0: ranks 1 and 2 -> U = 0 -> 1. Cell 1: zero block ranks (3+4)/2 = 3.5 > 3 -> 4 each.
        assert!((sc[0][0] - 1.0).abs() < 1e-12);
        assert!((sc[0][1] - (1.0 - (8.0 - 3.0) / 6.0)).abs() < 1e-12);
    }

    #[test]
    fn gi_star_flags_the_hot_cluster() {
        // A path 0-1-2-3-4-5 with high values at one end.
        let mut e = vec![];
        for i in 0..5u32 {
            e.push((i, i + 1, 1.0, 1.0));
            e.push((i + 1, i, 1.0, 1.0));
        }
        let g = NeighborGraph::from_edges(6, e, false);
        let gi = tmescope_spatial::hotspots::GiStar::new(&g);
        let (z, _) = gi.z_and_smoothed(&[5.0, 5.0, 4.0, 0.0, 0.0, 0.0]);
        assert!(z[0] > 1.0 && z[5] < -1.0, "{z:?}");
        let (_, sm) = gi.z_and_smoothed(&[3.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!((sm[0] - 1.5).abs() < 1e-12 && (sm[1] - 1.0).abs() < 1e-12);
    }
}
