//! The gene panel, per-type expression profiles, layout-driven state programs and count sampling.
//!
//! Model. The panel is every gene of the shipped programs, markers and ligand-receptor pairs
//! (`tmescope_core::programs::all_default_genes`), a few extra type markers (e.g. CD4), then
//! `n_background_genes` background genes `SIMBG0001...`. The profile of type `t` gives each gene a
//! relative level: marker genes of the type `25 * LN(0, 0.3)`, the type's program genes
//! `6 * LN(0, 0.3)`, other named genes `0.15 * LN(0, 0.5)`, background genes a level `LN(0, 1)` shared
//! by all types times a type-specific `LN(0, 0.35)`; each profile is normalised to sum 1.
//!
//! A cell's relative expression is its type's profile with the state programs applied (hypoxia and
//! glycolysis `x (1 + hypoxia_gain * level)`, exhaustion `x exhaustion_gain`, TGF-beta/ECM `x tgfb_gain`,
//! MHC-I `x mhc_low_factor`, checkpoint ligands `x checkpoint_gain`), renormalised to sum 1. Its library
//! size is `depth * size_factor(type) * LN(-sd^2/2, sd)` (mean `depth * size_factor`), and each gene's count
//! is negative binomial with mean `library * relative_expression` and dispersion `dispersion`
//! (variance `mu + dispersion * mu^2`), the gamma-Poisson model of single-cell counts (Grün et al., Nat
//! Methods 2014; Svensson, Nat Biotechnol 2020). Small means are drawn by inversion from one uniform;
//! means above 40 by an explicit gamma-Poisson draw.
//!
//! Cost: O(cells x genes) time, O(non-zeros) memory; cells are simulated in parallel chunks with a
//! generator seeded per cell, so the counts do not depend on the thread count.

use crate::config::SimConfig;
use crate::layout::{FLAG_CHECKPOINT_HIGH, FLAG_EXHAUSTED, FLAG_MHC_LOW, FLAG_TGFB_CAF};
use crate::rng::{rng_for, SplitMix64, STREAM_PROFILE};
use crate::types::{extra_panel_genes, CellType, COMMON_PROGRAMS};
use rand::Rng;
use rand_distr::{Distribution, Gamma, Poisson, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use tmescope_core::counts::{CountValues, CsrCounts};
use tmescope_core::programs::{default_markers, default_programs};

/// Relative level of a type's marker genes.
pub const MARKER_LEVEL: f64 = 25.0;
/// Relative level of a type's program genes.
pub const PROGRAM_LEVEL: f64 = 6.0;
/// Relative level of other named genes.
pub const OTHER_NAMED_LEVEL: f64 = 0.15;

/// Checkpoint ligands raised on tumour and myeloid cells next to T cells.
pub const CHECKPOINT_LIGANDS: &[&str] =
    &["CD274", "PDCD1LG2", "CD276", "LGALS9", "PVR", "NECTIN2", "CD47", "IDO1", "VSIR"];

/// The gene panel: named genes first (sorted), then background genes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Panel {
    /// Gene symbols.
    pub genes: Vec<String>,
    /// Number of named (non-background) genes at the start of `genes`.
    pub n_named: usize,
}

impl Panel {
    /// The panel with `n_background` background genes.
    pub fn new(n_background: usize) -> Self {
        let mut named = tmescope_core::programs::all_default_genes();
        named.extend(extra_panel_genes().into_iter().map(String::from));
        named.sort();
        named.dedup();
        let n_named = named.len();
        let digits = n_background.to_string().len().max(4);
        named.extend((1..=n_background).map(|i| format!("SIMBG{i:0digits$}")));
        Panel { genes: named, n_named }
    }

    /// Index of each gene symbol.
    pub fn index(&self) -> HashMap<&str, u32> {
        self.genes.iter().enumerate().map(|(i, g)| (g.as_str(), i as u32)).collect()
    }
}

/// Genes of each state program (panel indices, sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateGenes {
    /// Hypoxia (Buffa) and glycolysis/lactate genes.
    pub hypoxia: Vec<u32>,
    /// T-cell exhaustion genes.
    pub exhaustion: Vec<u32>,
    /// TGF-beta fibroblast response and ECM stiffness genes.
    pub tgfb: Vec<u32>,
    /// MHC-I antigen-presentation genes.
    pub mhc1: Vec<u32>,
    /// Checkpoint ligands.
    pub checkpoint: Vec<u32>,
}

/// The expression model shared by every section and the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profiles {
    /// The panel.
    pub panel: Panel,
    /// Relative expression of each type (in `CellType::ALL` order), summing to 1.
    pub profile: Vec<Vec<f64>>,
    /// Marker genes (marker level) of each type.
    pub markers: Vec<Vec<String>>,
    /// State program genes.
    pub states: StateGenes,
}

fn set_genes<'a>(sets: &'a [tmescope_core::programs::GeneSet], names: &[&str]) -> Vec<&'a str> {
    sets.iter().filter(|s| names.contains(&s.name.as_str())).flat_map(|s| s.genes.iter().map(String::as_str)).collect()
}

impl Profiles {
    /// Builds the panel and profiles for `cfg` (depends only on the seed and the number of background genes).
    pub fn new(cfg: &SimConfig) -> Self {
        let panel = Panel::new(cfg.n_background_genes);
        let index = panel.index();
        let markers_gmt = default_markers();
        let programs_gmt = default_programs();
        let idx = |genes: &[&str]| -> Vec<u32> {
            let mut v: Vec<u32> = genes.iter().filter_map(|g| index.get(g).copied()).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let g = panel.genes.len();
        let mut rng = rng_for(cfg.seed, &[STREAM_PROFILE]);
        let mut ln = |sd: f64| -> f64 {
            let z: f64 = StandardNormal.sample(&mut rng);
            (sd * z).exp()
        };
        let background_base: Vec<f64> = (0..g).map(|_| ln(1.0)).collect();
        let mut profile = Vec::with_capacity(CellType::ALL.len());
        let mut marker_names = Vec::with_capacity(CellType::ALL.len());
        for t in CellType::ALL {
            let (msets, mextra) = t.marker_sets();
            let (psets, pextra) = t.program_sets();
            let mut marker_genes = set_genes(&markers_gmt, msets);
            marker_genes.extend_from_slice(mextra);
            let mut program_genes = set_genes(&programs_gmt, psets);
            program_genes.extend_from_slice(pextra);
            program_genes.extend(set_genes(&programs_gmt, COMMON_PROGRAMS));
            let marker_idx = idx(&marker_genes);
            let program_idx = idx(&program_genes);
            let mut p: Vec<f64> = (0..g)
                .map(|j| if j >= panel.n_named { background_base[j] * ln(0.35) } else { OTHER_NAMED_LEVEL * ln(0.5) })
                .collect();
            for &j in &program_idx {
                p[j as usize] = PROGRAM_LEVEL * ln(0.3);
            }
            for &j in &marker_idx {
                p[j as usize] = MARKER_LEVEL * ln(0.3);
            }
            let total: f64 = p.iter().sum();
            p.iter_mut().for_each(|v| *v /= total);
            profile.push(p);
            marker_names.push(marker_idx.iter().map(|&j| panel.genes[j as usize].clone()).collect());
        }
        let states = StateGenes {
            hypoxia: idx(&set_genes(&programs_gmt, &["hypoxia_buffa", "glycolysis_lactate"])),
            exhaustion: idx(&set_genes(&programs_gmt, &["t_cell_exhaustion"])),
            tgfb: idx(&set_genes(&programs_gmt, &["tgfb_fibroblast_ftbrs", "ecm_stiffness"])),
            mhc1: idx(&set_genes(&programs_gmt, &["mhc1_antigen_presentation"])),
            checkpoint: idx(CHECKPOINT_LIGANDS),
        };
        Profiles { panel, profile, markers: marker_names, states }
    }

    /// Relative expression of a cell of type `t` with hypoxia `level` and state `flags`, into `out`
    /// (summing to 1).
    pub fn cell_expression(&self, cfg: &SimConfig, t: CellType, level: f64, flags: u8, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.profile[t.index()]);
        let mut scale = |genes: &[u32], f: f64| {
            for &j in genes {
                out[j as usize] *= f;
            }
        };
        if level > 0.0 {
            scale(&self.states.hypoxia, 1.0 + cfg.hypoxia_gain * level);
        }
        if flags & FLAG_EXHAUSTED != 0 {
            scale(&self.states.exhaustion, cfg.exhaustion_gain);
        }
        if flags & FLAG_TGFB_CAF != 0 {
            scale(&self.states.tgfb, cfg.tgfb_gain);
        }
        if flags & FLAG_MHC_LOW != 0 {
            scale(&self.states.mhc1, cfg.mhc_low_factor);
        }
        if flags & FLAG_CHECKPOINT_HIGH != 0 {
            scale(&self.states.checkpoint, cfg.checkpoint_gain);
        }
        let total: f64 = out.iter().sum();
        if total > 0.0 {
            out.iter_mut().for_each(|v| *v /= total);
        }
    }
}

/// What the count sampler needs to know about one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellDraw {
    /// Cell type.
    pub cell_type: CellType,
    /// Hypoxia level in `[0, 1]`.
    pub hypoxia: f64,
    /// State flags (`layout::FLAG_*`).
    pub flags: u8,
}

/// A negative-binomial count sampler with fixed dispersion (variance `mu + dispersion * mu^2`; 0 is
/// Poisson). The shape `r = 1 / dispersion` and whether it is a whole number are worked out once, since
/// one sampler serves hundreds of millions of draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegativeBinomial {
    dispersion: f64,
    r: f64,
    inv_r: f64,
    whole_r: Option<u32>,
}

impl NegativeBinomial {
    /// A sampler with the given dispersion.
    pub fn new(dispersion: f64) -> Self {
        let r = if dispersion > 0.0 { 1.0 / dispersion } else { f64::INFINITY };
        let whole = r.round();
        let whole_r = ((r - whole).abs() < 1e-9 && (1.0..=64.0).contains(&whole)).then_some(whole as u32);
        NegativeBinomial { dispersion, r, inv_r: dispersion.max(0.0), whole_r }
    }

    /// One draw with mean `mu`. Means up to 40 are drawn by inversion from one uniform, walking the
    /// cumulative distribution from 0 with the ratio recurrence of the pmf; larger means by an explicit
    /// gamma-Poisson draw.
    #[inline]
    pub fn sample<R: Rng>(&self, mu: f64, rng: &mut R) -> u32 {
        if mu.is_nan() || mu <= 0.0 {
            return 0;
        }
        if mu > 40.0 {
            let lambda =
                if self.dispersion > 0.0 { Gamma::new(self.r, mu / self.r).map_or(mu, |g| g.sample(rng)) } else { mu };
            return Poisson::new(lambda.max(1e-12)).map_or(0.0, |p| p.sample(rng)).min(u32::MAX as f64) as u32;
        }
        let u: f64 = rng.random();
        // P(0) = (1 + mu / r)^-r. Most genes of a cell draw 0, so this is most of the cost: for a whole r
        // (the default dispersion 0.2 gives r = 5) it is a few multiplications instead of a log and an exp.
        let mut p = if self.dispersion <= 0.0 {
            (-mu).exp()
        } else if let Some(w) = self.whole_r {
            // u <= t^-w  <=>  u * t^w <= 1: no division on the common path.
            let t = 1.0 + mu * self.inv_r;
            let mut tw = 1.0;
            for _ in 0..w {
                tw *= t;
            }
            if u * tw <= 1.0 {
                return 0;
            }
            1.0 / tw
        } else {
            (-self.r * (mu / self.r).ln_1p()).exp()
        };
        if u <= p {
            return 0;
        }
        let q = if self.dispersion > 0.0 { mu / (self.r + mu) } else { 0.0 };
        let mut cdf = p;
        let mut k = 0u32;
        while u > cdf && k < 10_000 {
            p *= if self.dispersion > 0.0 { (k as f64 + self.r) / (k as f64 + 1.0) * q } else { mu / (k as f64 + 1.0) };
            k += 1;
            cdf += p;
            if p < 1e-300 && cdf < u {
                break;
            }
        }
        k
    }
}

/// One negative-binomial draw with mean `mu` and dispersion `dispersion` (0: Poisson).
pub fn sample_negative_binomial<R: Rng>(mu: f64, dispersion: f64, rng: &mut R) -> u32 {
    NegativeBinomial::new(dispersion).sample(mu, rng)
}

/// Cells per parallel work unit.
const CHUNK: usize = 2048;

/// Simulates the counts of `cells` (rows in the given order) with mean library size `depth`. Cell `i`
/// draws from a SplitMix64 generator seeded by `(seed, stream, i)`. Rows where `needed` is false stay empty.
pub fn simulate_counts(
    cfg: &SimConfig,
    profiles: &Profiles,
    cells: &[CellDraw],
    depth: f64,
    stream: [u64; 2],
    needed: Option<&[bool]>,
) -> CsrCounts {
    let n = cells.len();
    let g = profiles.panel.genes.len();
    let sd = cfg.library_sd;
    let nb = NegativeBinomial::new(cfg.dispersion);
    let chunks: Vec<(Vec<u32>, Vec<u32>, Vec<u32>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (start, end) = (c * CHUNK, ((c + 1) * CHUNK).min(n));
            let mut row_nnz = Vec::with_capacity(end - start);
            let mut indices = Vec::new();
            let mut values = Vec::new();
            let mut expr = Vec::with_capacity(g);
            for (i, cell) in cells.iter().enumerate().take(end).skip(start) {
                if needed.is_some_and(|m| !m[i]) {
                    row_nnz.push(0);
                    continue;
                }
                let mut rng = SplitMix64::for_item(cfg.seed, &[stream[0], stream[1], i as u64]);
                let z: f64 = StandardNormal.sample(&mut rng);
                let library = depth * cell.cell_type.size_factor() * (sd * z - sd * sd / 2.0).exp();
                profiles.cell_expression(cfg, cell.cell_type, cell.hypoxia, cell.flags, &mut expr);
                let before = indices.len();
                for (j, &e) in expr.iter().enumerate() {
                    let k = nb.sample(library * e, &mut rng);
                    if k > 0 {
                        indices.push(j as u32);
                        values.push(k);
                    }
                }
                row_nnz.push((indices.len() - before) as u32);
            }
            (row_nnz, indices, values)
        })
        .collect();
    let nnz: usize = chunks.iter().map(|c| c.1.len()).sum();
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0u64);
    let mut indices = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    for (row_nnz, idx, val) in chunks {
        for k in row_nnz {
            let last = *indptr.last().unwrap_or(&0);
            indptr.push(last + k as u64);
        }
        indices.extend_from_slice(&idx);
        values.extend_from_slice(&val);
    }
    CsrCounts { n_rows: n, n_cols: g, indptr, indices, values: CountValues::U32(values) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn panel_holds_every_default_gene() {
        let p = Panel::new(300);
        for gene in tmescope_core::programs::all_default_genes() {
            assert!(p.genes.contains(&gene), "{gene}");
        }
        assert_eq!(p.genes.len(), p.n_named + 300);
        assert_eq!(p.genes[p.n_named], "SIMBG0001");
        let mut uniq = p.genes.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), p.genes.len());
    }

    #[test]
    fn negative_binomial_moments() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for &(mu, phi) in &[(0.3, 0.2), (3.0, 0.2), (12.0, 0.0), (80.0, 0.2)] {
            let draws: Vec<f64> = (0..40_000).map(|_| sample_negative_binomial(mu, phi, &mut rng) as f64).collect();
            let m = draws.iter().sum::<f64>() / draws.len() as f64;
            let v = draws.iter().map(|x| (x - m).powi(2)).sum::<f64>() / draws.len() as f64;
            let want_v = mu + phi * mu * mu;
            assert!((m - mu).abs() < 0.05 * mu + 0.02, "mean {m} vs {mu}");
            assert!((v - want_v).abs() < 0.1 * want_v + 0.02, "variance {v} vs {want_v}");
        }
        assert_eq!(sample_negative_binomial(0.0, 0.2, &mut rng), 0);
    }

    #[test]
    fn markers_are_high_in_their_type_and_states_shift_programs() {
        let cfg = SimConfig::default();
        let p = Profiles::new(&cfg);
        let idx = p.panel.index();
        let epcam = idx["EPCAM"] as usize;
        let tumor = CellType::TumorEpithelial.index();
        for t in CellType::ALL {
            if t != CellType::TumorEpithelial {
                assert!(p.profile[tumor][epcam] > 20.0 * p.profile[t.index()][epcam]);
            }
        }
        let mut base = Vec::new();
        let mut hyp = Vec::new();
        p.cell_expression(&cfg, CellType::TumorEpithelial, 0.0, 0, &mut base);
        p.cell_expression(&cfg, CellType::TumorEpithelial, 1.0, FLAG_MHC_LOW, &mut hyp);
        let ca9 = idx["CA9"] as usize;
        let b2m = idx["B2M"] as usize;
        assert!(hyp[ca9] > 3.0 * base[ca9]);
        assert!(hyp[b2m] < 0.3 * base[b2m]);
        assert!((hyp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn counts_are_deterministic_and_near_target_depth() {
        let cfg = SimConfig::default();
        let p = Profiles::new(&cfg);
        let cells: Vec<CellDraw> =
            (0..600).map(|i| CellDraw { cell_type: CellType::ALL[i % 14], hypoxia: 0.0, flags: 0 }).collect();
        let a = simulate_counts(&cfg, &p, &cells, cfg.depth, [9, 0], None);
        let b = simulate_counts(&cfg, &p, &cells, cfg.depth, [9, 0], None);
        assert_eq!(a, b);
        let mean_size: f64 = cells.iter().map(|c| c.cell_type.size_factor()).sum::<f64>() / 600.0;
        let mean_total = a.total() / 600.0;
        assert!((mean_total / (cfg.depth * mean_size) - 1.0).abs() < 0.1, "{mean_total}");
        let needed: Vec<bool> = (0..600).map(|i| i % 2 == 0).collect();
        let c = simulate_counts(&cfg, &p, &cells, cfg.depth, [9, 0], Some(&needed));
        assert_eq!(c.row_iter(1).count(), 0);
        assert_eq!(c.row_iter(2).collect::<Vec<_>>(), a.row_iter(2).collect::<Vec<_>>());
    }
}
