//! The whole deconvolution of one spatial dataset against one labelled reference.
//!
//! Steps: spot filter (`N >= min_umi`), gene matching and the reg/bulk gene lists, second spot filter
//! (`>= min_bulk_counts` counts on bulk genes), pseudo-bulk platform-effect normalisation, sigma
//! choice (RCTD method), then the per-spot fits of the chosen method and mode in parallel. Every
//! dropped spot keeps a row with the reason. Results do not depend on the number of threads: each
//! spot is fitted independently and every sum over spots is reduced in a fixed order.

use crate::labels;
use crate::likelihood::{LikelihoodTable, TableCache, K_MAX};
use crate::profiles::{self, GeneListThresholds, ReferenceOptions, ReferenceProfiles};
use crate::rctd::{self, ModeOptions, SpotWorkspace};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use tmescope_core::dataset::{Dataset, CELLS_FILE};
use tmescope_core::{Error, Result};

/// Platforms whose units are single cells (labels mode by default).
pub const SINGLE_CELL_PLATFORMS: &[&str] = &["xenium", "merscope", "cosmx", "simulated-xenium"];

/// The fitting method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Poisson-lognormal model (RCTD-style).
    Rctd,
    /// Lawson-Hanson non-negative least squares.
    Nnls,
    /// Poisson maximum likelihood by multiplicative EM.
    PoissonEm,
}

/// What is reported per spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Weights of every type.
    Full,
    /// At most two types per spot, with a class.
    Doublet,
    /// Up to `max_multi_types` types per spot.
    Multi,
    /// One label per cell with runner-up and likelihood margin (single-cell-resolution data).
    Labels,
}

/// How genes of the two datasets are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneKey {
    /// `gene_id` (Ensembl ids where present).
    Id,
    /// `gene_name` (symbols).
    Name,
}

/// Every parameter of a run (recorded in the provenance).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Params {
    /// Fitting method.
    pub method: Method,
    /// Mode; `None` picks `labels` for single-cell platforms and `full` otherwise.
    pub mode: Option<Mode>,
    /// Seed of every random choice (reference subsampling, sigma spots).
    pub seed: u64,
    /// Fixed sigma (skips the search).
    pub sigma: Option<f64>,
    /// Maximum rounds of the sigma search (8).
    pub max_sigma_rounds: usize,
    /// Spots (and reference cells) with fewer counts are dropped (100).
    pub min_umi: f64,
    /// Spots with fewer counts on the bulk genes are dropped (10).
    pub min_bulk_counts: f64,
    /// Genes need at least this many counts in the kept spots (3).
    pub min_obs: f64,
    /// Reference options.
    pub reference: ReferenceOptions,
    /// Label column of the reference `cells.parquet` (`cell_type`).
    pub label_column: String,
    /// Column of the reference `cells.parquet` holding per-cell totals to use instead of the count
    /// sums (RCTD's `nUMI`); `None` uses the sums.
    pub reference_umi_column: Option<String>,
    /// Gene matching key.
    pub gene_key: GeneKey,
    /// Reg gene-list thresholds.
    pub reg: GeneListThresholds,
    /// Bulk gene-list thresholds.
    pub bulk: GeneListThresholds,
    /// Genes enter the pseudo-bulk fit with at least this pooled count (10).
    pub bulk_fit_min_count: f64,
    /// Spots used for the sigma search need more counts than this (300).
    pub sigma_min_umi: f64,
    /// At most this many spots for the sigma search (1,000).
    pub sigma_spots: usize,
    /// Mode thresholds.
    pub modes: ModeOptions,
    /// Normalise profiles for the platform effect (also for nnls / poisson-em).
    pub platform_normalise: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            method: Method::Rctd,
            mode: None,
            seed: 1,
            sigma: None,
            max_sigma_rounds: 8,
            min_umi: 100.0,
            min_bulk_counts: 10.0,
            min_obs: 3.0,
            reference: ReferenceOptions::default(),
            label_column: "cell_type".into(),
            reference_umi_column: None,
            gene_key: GeneKey::Name,
            reg: profiles::REG,
            bulk: profiles::BULK,
            bulk_fit_min_count: 10.0,
            sigma_min_umi: 300.0,
            sigma_spots: 1000,
            modes: ModeOptions::default(),
            platform_normalise: true,
        }
    }
}

/// One step of the sigma search.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SigmaStep {
    /// Sigma used for the fits of this round.
    pub sigma: f64,
    /// NLL of the fitted spots at that sigma.
    pub nll: f64,
    /// Sigma chosen at the end of the round.
    pub next_sigma: f64,
}

/// Per-spot output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpotResult {
    /// Total counts of the spot (all genes).
    pub n_counts: f64,
    /// Reg genes with a non-zero count.
    pub n_genes_used: u32,
    /// Negative log-likelihood of the reported fit (rctd only).
    pub nll: Option<f64>,
    /// Whether the reported fit converged.
    pub converged: Option<bool>,
    /// Class (doublet / labels: singlet, doublet_certain, doublet_uncertain, reject; multi: singlet,
    /// multi_2..multi_4).
    pub spot_class: Option<String>,
    /// Best type.
    pub first_type: Option<usize>,
    /// Second type.
    pub second_type: Option<usize>,
    /// Likelihood margin (doublet: singlet minus pair NLL; labels: runner-up minus best singlet NLL).
    pub margin: Option<f64>,
    /// Sum of the raw full-mode weights (per-spot scale).
    pub weight_sum: Option<f64>,
    /// Why the spot was not fitted.
    pub dropped_reason: Option<String>,
    /// `(type, raw weight, proportion)` rows reported in `proportions.parquet`.
    pub proportions: Vec<(usize, f64, f64)>,
}

/// Everything a run produces.
#[derive(Debug, Clone)]
pub struct Deconvolution {
    /// Cell types (columns).
    pub cell_types: Vec<String>,
    /// One entry per spatial spot, in input order.
    pub spots: Vec<SpotResult>,
    /// Mode used.
    pub mode: Mode,
    /// Bulk genes: (gene id, gene name, is reg).
    pub genes: Vec<(String, String, bool)>,
    /// Reference profiles on the bulk genes, genes x types.
    pub reference_profiles: Vec<f64>,
    /// Platform-normalised profiles on the bulk genes, genes x types.
    pub normalised_profiles: Vec<f64>,
    /// Number of reg genes.
    pub n_reg: usize,
    /// Reg genes found per type.
    pub reg_per_type: Vec<usize>,
    /// Bulk genes found per type.
    pub bulk_per_type: Vec<usize>,
    /// Bulk (platform-effect) weights, one per type.
    pub bulk_weights: Vec<f64>,
    /// Sigma used (rctd).
    pub sigma: Option<f64>,
    /// Rounds of the sigma search.
    pub sigma_path: Vec<SigmaStep>,
    /// Notes for the provenance (drops, fallbacks).
    pub notes: Vec<String>,
    /// Spots fitted.
    pub n_fitted: usize,
}

/// The reference side, prepared once.
#[derive(Debug, Clone)]
pub struct PreparedReference {
    /// Profiles over all reference genes.
    pub profiles: ReferenceProfiles,
}

/// Builds the reference profiles from a reference dataset.
pub fn prepare_reference(reference: &Dataset, source: &Path, params: &Params) -> Result<PreparedReference> {
    // The column is checked first: present, not a fixed column, and labels rather than a measurement (at
    // most MAX_LABELS distinct values; each type becomes a profile every spot is fitted against).
    let codes = reference.cells.label_codes(
        &params.label_column,
        &source.join(CELLS_FILE),
        "a reference needs cell-type labels (ingest with a label column, or pass --label-column)",
    )?;
    let labels: Vec<Option<String>> = codes.codes.iter().map(|c| c.map(|c| codes.names[c as usize].clone())).collect();
    let totals = match &params.reference_umi_column {
        None => reference.counts.row_totals(),
        Some(col) => match reference.cells.get(col) {
            Some(c) => {
                let v = c.as_f64();
                if let Some(i) = v.iter().position(Option::is_none) {
                    return Err(Error::input(
                        source.join(CELLS_FILE),
                        format!("column `{col}`, row {} (cell `{}`)", i + 1, reference.cells.cell_id[i]),
                        "expected a number (the per-cell total given by --reference-umi-column), found none or text",
                    ));
                }
                v.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()
            }
            None => {
                return Err(Error::input(
                    source.join(CELLS_FILE),
                    format!("column `{col}`"),
                    "missing (given as the per-cell total column)",
                ))
            }
        },
    };
    let profiles = profiles::build_profiles(&reference.counts, &labels, &totals, &params.reference, source)?;
    Ok(PreparedReference { profiles })
}

/// Runs the deconvolution. `progress` is called with the number of spots finished.
pub fn deconvolve(
    spatial: &Dataset,
    spatial_path: &Path,
    reference: &PreparedReference,
    reference_genes: &tmescope_core::dataset::GeneTable,
    params: &Params,
    cache: &mut TableCache,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Deconvolution> {
    let prof = &reference.profiles;
    let k = prof.cell_types.len();
    let mut notes = Vec::new();
    if !prof.dropped_types.is_empty() {
        notes.push(format!(
            "reference types dropped (fewer than {} cells with >= {} counts): {}",
            params.reference.min_cells_per_type,
            params.reference.min_umi,
            prof.dropped_types.iter().map(|(t, c)| format!("{t} ({c} cells)")).collect::<Vec<_>>().join(", ")
        ));
    }
    if prof.dropped_cells_unlabelled > 0 {
        notes.push(format!("{} reference cells without a label were ignored", prof.dropped_cells_unlabelled));
    }
    if prof.dropped_cells_low_umi > 0 {
        notes.push(format!(
            "{} reference cells with fewer than {} counts were ignored",
            prof.dropped_cells_low_umi, params.reference.min_umi
        ));
    }
    let mode = params.mode.unwrap_or(if SINGLE_CELL_PLATFORMS.contains(&spatial.platform.as_str()) {
        Mode::Labels
    } else {
        Mode::Full
    });
    let n_spots = spatial.cells.len();
    let totals = spatial.counts.row_totals();
    let mut spots: Vec<SpotResult> = totals.iter().map(|&n| SpotResult { n_counts: n, ..Default::default() }).collect();
    for (s, &n) in spots.iter_mut().zip(&totals) {
        if n <= 0.0 {
            s.dropped_reason = Some("zero counts".into());
        } else if n < params.min_umi {
            s.dropped_reason = Some(format!("{n} counts < min_umi {}", params.min_umi));
        }
    }
    let pass1: Vec<usize> = (0..n_spots).filter(|&i| spots[i].dropped_reason.is_none()).collect();
    if pass1.is_empty() {
        return Err(Error::file(
            spatial_path,
            format!("no spot has at least {} counts (min_umi): nothing to deconvolve", params.min_umi),
        ));
    }

    // Gene matching: reference genes (in reference order) found in the spatial data.
    let key = |g: &tmescope_core::dataset::GeneTable, i: usize| match params.gene_key {
        GeneKey::Id => g.gene_id[i].clone(),
        GeneKey::Name => g.gene_name[i].clone(),
    };
    // A key held by several genes on either side (10x gene names repeat for a few genes) cannot say which
    // gene is which: those genes are left out, with a note.
    let keys = |g: &tmescope_core::dataset::GeneTable| {
        let mut m: HashMap<String, (usize, usize)> = HashMap::new(); // key -> (first gene, genes with it)
        for i in 0..g.len() {
            m.entry(key(g, i)).or_insert((i, 0)).1 += 1;
        }
        m
    };
    let (spatial_keys, reference_keys) = (keys(&spatial.genes), keys(reference_genes));
    let mut ambiguous: Vec<&str> = reference_keys
        .iter()
        .filter_map(|(name, &(_, nr))| {
            spatial_keys.get(name).filter(|&&(_, ns)| nr > 1 || ns > 1).map(|_| name.as_str())
        })
        .collect();
    ambiguous.sort_unstable();
    let mut gene_pairs: Vec<(usize, usize)> = Vec::new(); // (reference gene, spatial gene)
    let mut n_mt = 0;
    for r in 0..reference_genes.len() {
        if profiles::is_mitochondrial(&reference_genes.gene_name[r]) {
            n_mt += 1;
            continue;
        }
        let name = key(reference_genes, r);
        if let (Some(&(s, 1)), Some(&(_, 1))) = (spatial_keys.get(&name), reference_keys.get(&name)) {
            gene_pairs.push((r, s));
        }
    }
    if !ambiguous.is_empty() {
        let shown: Vec<&str> = ambiguous.iter().take(10).copied().collect();
        notes.push(format!(
            "{} gene {}s held by more than one gene in the reference or the spatial data were ignored in the \
             matching (ambiguous): {}{}{}",
            ambiguous.len(),
            if params.gene_key == GeneKey::Id { "id" } else { "name" },
            shown.join(", "),
            if ambiguous.len() > shown.len() { ", ..." } else { "" },
            if params.gene_key == GeneKey::Name { "; --gene-key id matches by the unique gene ids" } else { "" }
        ));
    }
    let smaller = reference_genes.len().min(spatial.genes.len());
    if (gene_pairs.len() as f64) < 0.1 * smaller as f64 || gene_pairs.is_empty() {
        let other = match params.gene_key {
            GeneKey::Id => "name",
            GeneKey::Name => "id",
        };
        return Err(Error::input(
            spatial_path.join("genes.parquet"),
            format!("gene_{}", if params.gene_key == GeneKey::Id { "id" } else { "name" }),
            format!(
                "only {} of {} reference genes and {} spatial genes match (need at least 10% of the smaller set, {}); \
                 if one side uses Ensembl ids and the other symbols, try --gene-key {other}",
                gene_pairs.len(),
                reference_genes.len(),
                spatial.genes.len(),
                (0.1 * smaller as f64).ceil()
            ),
        ));
    }
    // Spatial gene totals over the spots passing the UMI filter.
    let mut gene_tot = vec![0.0; spatial.genes.len()];
    for &i in &pass1 {
        for (g, v) in spatial.counts.row_iter(i) {
            gene_tot[g as usize] += v;
        }
    }
    let candidates: Vec<usize> =
        gene_pairs.iter().filter(|&&(_, s)| gene_tot[s] >= params.min_obs).map(|&(r, _)| r).collect();
    let (reg, reg_per_type) = profiles::de_genes(&prof.mu, k, prof.n_genes, &candidates, params.reg);
    let (bulk, bulk_per_type) = profiles::de_genes(&prof.mu, k, prof.n_genes, &candidates, params.bulk);
    for (name, list) in [("reg", &reg), ("bulk", &bulk)] {
        if list.len() < 10 {
            return Err(Error::input(
                spatial_path,
                "genes",
                format!(
                    "only {} {name} genes are differentially expressed between reference types among the {} shared genes \
                     with >= {} counts (need 10); check the reference labels and the gene overlap",
                    list.len(),
                    candidates.len(),
                    params.min_obs
                ),
            ));
        }
    }
    notes.push(format!(
        "{} shared genes ({} mitochondrial skipped), {} with >= {} counts; {} reg and {} bulk genes",
        gene_pairs.len(),
        n_mt,
        candidates.len(),
        params.min_obs,
        reg.len(),
        bulk.len()
    ));
    let ref_to_spatial: HashMap<usize, usize> = gene_pairs.iter().copied().collect();
    // Union (reg genes are normally a subset of bulk genes; keep any that are not).
    let mut union: Vec<usize> = bulk.clone();
    for &g in &reg {
        if !union.contains(&g) {
            union.push(g);
        }
    }
    let is_reg: Vec<bool> = union.iter().map(|g| reg.binary_search(g).is_ok()).collect();
    let is_bulk: Vec<bool> = union.iter().map(|g| bulk.binary_search(g).is_ok()).collect();
    // Position of each spatial gene in `union`.
    let mut spatial_pos: Vec<Option<u32>> = vec![None; spatial.genes.len()];
    for (p, g) in union.iter().enumerate() {
        spatial_pos[ref_to_spatial[g]] = Some(p as u32);
    }
    // Second spot filter: counts on the bulk genes.
    for &i in &pass1 {
        let on_bulk: f64 = spatial
            .counts
            .row_iter(i)
            .filter(|(g, _)| spatial_pos[*g as usize].is_some_and(|p| is_bulk[p as usize]))
            .map(|(_, v)| v)
            .sum();
        if on_bulk < params.min_bulk_counts {
            spots[i].dropped_reason =
                Some(format!("{on_bulk} counts on the {} bulk genes < {}", bulk.len(), params.min_bulk_counts));
        }
    }
    let fitted: Vec<usize> = pass1.iter().copied().filter(|&i| spots[i].dropped_reason.is_none()).collect();
    if fitted.is_empty() {
        return Err(Error::file(
            spatial_path,
            format!("no spot has at least {} counts on the bulk genes", params.min_bulk_counts),
        ));
    }
    let n_union = union.len();
    // Reference profiles on the union genes, genes x types.
    let mu_union: Vec<f64> = union.iter().flat_map(|&g| (0..k).map(move |t| prof.mu[t * prof.n_genes + g])).collect();
    // Pseudo-bulk over the fitted spots.
    let mut pseudo = vec![0.0; n_union];
    for &i in &fitted {
        for (g, v) in spatial.counts.row_iter(i) {
            if let Some(p) = spatial_pos[g as usize] {
                pseudo[p as usize] += v;
            }
        }
    }
    let total_umi: f64 = fitted.iter().map(|&i| totals[i]).sum();
    let fit_genes: Vec<usize> =
        (0..n_union).filter(|&p| is_bulk[p] && pseudo[p] >= params.bulk_fit_min_count.max(f64::MIN_POSITIVE)).collect();
    let mu_fit: Vec<f64> = fit_genes.iter().flat_map(|&p| mu_union[p * k..(p + 1) * k].iter().copied()).collect();
    let b_fit: Vec<f64> = fit_genes.iter().map(|&p| pseudo[p]).collect();
    let bulk_fit = rctd::fit_bulk(&mu_fit, k, &b_fit, total_umi);
    let mu_norm = if params.platform_normalise {
        rctd::normalise_profiles(&mu_union, k, &pseudo, total_umi, &bulk_fit.weights)
    } else {
        mu_union.clone()
    };
    // Reg-gene design (genes x types) and positions.
    let reg_pos: Vec<usize> = (0..n_union).filter(|&p| is_reg[p]).collect();
    let mu_reg: Vec<f64> = reg_pos.iter().flat_map(|&p| mu_norm[p * k..(p + 1) * k].iter().copied()).collect();
    let g_reg = reg_pos.len();
    // Position of each spatial gene among the reg genes.
    let mut spatial_reg: Vec<Option<u32>> = vec![None; spatial.genes.len()];
    for (r, &p) in reg_pos.iter().enumerate() {
        spatial_reg[ref_to_spatial[&union[p]]] = Some(r as u32);
    }
    let reg_counts = |i: usize| -> Vec<f64> {
        let mut y = vec![0.0; g_reg];
        for (g, v) in spatial.counts.row_iter(i) {
            if let Some(r) = spatial_reg[g as usize] {
                y[r as usize] = v;
            }
        }
        y
    };
    // Genes used per spot, and the largest reg-gene count (the rows the likelihood table needs).
    let mut max_reg_count = 0.0f64;
    let mut n_clipped = 0;
    for &i in &fitted {
        let y = reg_counts(i);
        spots[i].n_genes_used = y.iter().filter(|&&v| v > 0.0).count() as u32;
        let largest = y.iter().fold(0.0f64, |m, &v| m.max(v));
        n_clipped += usize::from(largest > K_MAX as f64);
        max_reg_count = max_reg_count.max(largest);
    }
    if params.method == Method::Rctd && n_clipped > 0 {
        notes.push(format!(
            "{n_clipped} of {} spots have a gene count above {K_MAX} (largest {max_reg_count}), where the \
             likelihood table stops (as RCTD's does): such counts are clipped to {K_MAX}, which flattens those \
             spots' proportions; are the counts raw UMIs (not scaled or normalised)?",
            fitted.len()
        ));
    }

    let mut sigma_path = Vec::new();
    let mut sigma_used = None;
    match params.method {
        Method::Nnls | Method::PoissonEm => {
            let mut mtm = vec![0.0; k * k];
            for row in mu_reg.chunks(k) {
                for a in 0..k {
                    for b in 0..k {
                        mtm[a * k + b] += row[a] * row[b];
                    }
                }
            }
            let results: Vec<(usize, Vec<f64>)> = fitted
                .par_iter()
                .map(|&i| {
                    let y = reg_counts(i);
                    let n = totals[i];
                    let w = if params.method == Method::Nnls {
                        let ata: Vec<f64> = mtm.iter().map(|v| v * n * n).collect();
                        let aty: Vec<f64> = (0..k)
                            .map(|t| n * mu_reg.chunks(k).zip(&y).map(|(r, yy)| r[t] * yy).sum::<f64>())
                            .collect();
                        crate::nnls::nnls(&ata, &aty, k)
                    } else {
                        let a: Vec<f64> = mu_reg.iter().map(|v| v * n).collect();
                        crate::nnls::poisson_em(&a, k, &y, 2000, 1e-6)
                    };
                    progress(1);
                    (i, w)
                })
                .collect();
            for (i, w) in results {
                set_full(&mut spots[i], &w);
            }
        }
        Method::Rctd => {
            // Sigma: fixed, or searched on a seeded sample of well-covered spots.
            let sigma_index = match params.sigma {
                Some(s) => {
                    if !(0.01..=10.0).contains(&s) {
                        return Err(Error::Usage(format!("--sigma {s} is outside 0.01..10")));
                    }
                    (s * 100.0).round() as u32
                }
                None => {
                    let mut pool: Vec<usize> =
                        fitted.iter().copied().filter(|&i| totals[i] > params.sigma_min_umi).collect();
                    if pool.is_empty() {
                        notes.push(format!(
                            "no spot has more than {} counts: sigma chosen on the {} best-covered spots",
                            params.sigma_min_umi,
                            fitted.len().min(params.sigma_spots)
                        ));
                        let mut by_n = fitted.clone();
                        by_n.sort_by(|&a, &b| totals[b].total_cmp(&totals[a]).then(a.cmp(&b)));
                        by_n.truncate(params.sigma_spots);
                        by_n.sort_unstable();
                        pool = by_n;
                    } else if pool.len() > params.sigma_spots {
                        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
                        let mut pick: Vec<usize> =
                            sample(&mut rng, pool.len(), params.sigma_spots).into_iter().map(|j| pool[j]).collect();
                        pick.sort_unstable();
                        pool = pick;
                    }
                    let ys: Vec<Vec<f64>> = pool.iter().map(|&i| reg_counts(i)).collect();
                    let k_needed = ys.iter().flatten().fold(0.0f64, |m, &v| m.max(v)) as usize;
                    let counts_flat: Vec<f64> = ys.iter().flatten().copied().collect();
                    let mut sigma = 100u32;
                    for _round in 0..params.max_sigma_rounds.max(1) {
                        let table = cache.get(sigma, k_needed);
                        let preds: Vec<Vec<f64>> = pool
                            .par_iter()
                            .zip(&ys)
                            .map_init(SpotWorkspace::default, |ws, (&i, y)| {
                                let n = totals[i];
                                let fit = rctd::fit_full(&mu_reg, k, y, n, &table, ws);
                                mu_reg
                                    .chunks(k)
                                    .map(|r| n * r.iter().zip(&fit.weights).map(|(a, b)| a * b).sum::<f64>())
                                    .collect()
                            })
                            .collect();
                        let preds_flat: Vec<f64> = preds.into_iter().flatten().collect();
                        let nll: f64 = -preds_flat
                            .iter()
                            .zip(&counts_flat)
                            .map(|(&l, &c)| table.eval(c as usize, l.max(1e-4)).d0)
                            .sum::<f64>();
                        let (next, _) =
                            rctd::best_sigma(sigma, &preds_flat, &counts_flat, |s, rows| cache.for_scoring(s, rows));
                        sigma_path.push(SigmaStep {
                            sigma: sigma as f64 / 100.0,
                            nll,
                            next_sigma: next as f64 / 100.0,
                        });
                        if next == sigma {
                            break;
                        }
                        sigma = next;
                    }
                    sigma
                }
            };
            sigma_used = Some(sigma_index as f64 / 100.0);
            let table = cache.get(sigma_index, max_reg_count as usize);
            let label_model = (mode == Mode::Labels).then(|| labels::LabelModel::new(&mu_reg, k));
            let results: Vec<(usize, SpotResult)> = fitted
                .par_iter()
                .map_init(SpotWorkspace::default, |ws, &i| {
                    let y = reg_counts(i);
                    let spot = spots[i].clone();
                    let r = match &label_model {
                        Some(model) => {
                            set_labels(spot, &labels::fit_labels(model, &y, totals[i], &table, &params.modes))
                        }
                        None => fit_spot(&mu_reg, k, &y, totals[i], &table, mode, &params.modes, ws, spot),
                    };
                    progress(1);
                    (i, r)
                })
                .collect();
            for (i, r) in results {
                spots[i] = r;
            }
        }
    }
    let genes = union
        .iter()
        .enumerate()
        .map(|(p, &g)| (reference_genes.gene_id[g].clone(), reference_genes.gene_name[g].clone(), is_reg[p]))
        .collect();
    let _ = g_reg;
    Ok(Deconvolution {
        cell_types: prof.cell_types.clone(),
        spots,
        mode,
        genes,
        reference_profiles: mu_union,
        normalised_profiles: mu_norm,
        n_reg: reg.len(),
        reg_per_type,
        bulk_per_type,
        bulk_weights: bulk_fit.weights,
        sigma: sigma_used,
        sigma_path,
        notes,
        n_fitted: fitted.len(),
    })
}

fn set_full(spot: &mut SpotResult, w: &[f64]) {
    let sum: f64 = w.iter().sum();
    spot.weight_sum = Some(sum);
    spot.proportions = w.iter().enumerate().map(|(t, &v)| (t, v, if sum > 0.0 { v / sum } else { 0.0 })).collect();
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| w[b].total_cmp(&w[a]).then(a.cmp(&b)));
    spot.first_type = order.first().copied();
    spot.second_type = order.get(1).copied();
}

/// Fills `spot` from a labels-mode result: one type per cell (the pair weights of a mixed-signal cell stay
/// in the QC class).
fn set_labels(mut spot: SpotResult, r: &labels::LabelResult) -> SpotResult {
    let best = r.ranking[0];
    spot.weight_sum = Some(best.2);
    spot.spot_class = Some(r.class.to_string());
    spot.converged = Some(r.converged);
    spot.nll = Some(best.1);
    spot.first_type = Some(best.0);
    spot.second_type = r.ranking.get(1).map(|x| x.0);
    spot.margin = r.ranking.get(1).map(|x| x.1 - best.1);
    spot.proportions = vec![(best.0, best.2, 1.0)];
    spot
}

/// Fits one spot in the given mode, filling `spot` (labels mode prepares its model per call: the
/// pipeline prepares it once).
#[allow(clippy::too_many_arguments)]
pub fn fit_spot(
    mu_reg: &[f64],
    k: usize,
    y: &[f64],
    n: f64,
    table: &LikelihoodTable,
    mode: Mode,
    opts: &ModeOptions,
    ws: &mut SpotWorkspace,
    mut spot: SpotResult,
) -> SpotResult {
    match mode {
        Mode::Full => {
            let fit = rctd::fit_full(mu_reg, k, y, n, table, ws);
            let s: Vec<f64> = mu_reg.iter().map(|v| v * n).collect();
            let mut lambda = Vec::new();
            spot.nll = Some(rctd::spot_nll(&s, k, &fit.weights, y, table, &mut lambda));
            spot.converged = Some(fit.converged);
            set_full(&mut spot, &fit.weights);
        }
        Mode::Doublet => {
            let r = rctd::fit_doublet(mu_reg, k, y, n, table, opts, ws);
            spot.weight_sum = Some(r.full_weights.iter().sum());
            spot.spot_class = Some(r.spot_class.to_string());
            spot.converged = Some(r.conv_all && r.conv_doublet);
            spot.nll = Some(if r.spot_class == "singlet" { r.singlet_score } else { r.min_score });
            spot.first_type = Some(r.first_type);
            spot.second_type = Some(r.second_type);
            spot.margin = Some(r.singlet_score - r.min_score);
            spot.proportions = if r.spot_class == "singlet" {
                vec![(r.first_type, 1.0, 1.0)]
            } else {
                vec![
                    (r.first_type, r.pair_weights[0], r.pair_weights[0]),
                    (r.second_type, r.pair_weights[1], r.pair_weights[1]),
                ]
            };
        }
        Mode::Labels => {
            let model = labels::LabelModel::new(mu_reg, k);
            spot = set_labels(spot, &labels::fit_labels(&model, y, n, table, opts));
        }
        Mode::Multi => {
            let r = rctd::fit_multi(mu_reg, k, y, n, table, opts, ws);
            spot.weight_sum = Some(r.full_weights.iter().sum());
            spot.converged = Some(r.conv_all);
            spot.nll = Some(r.score);
            spot.spot_class =
                Some(if r.types.len() == 1 { "singlet".to_string() } else { format!("multi_{}", r.types.len()) });
            spot.first_type = r.types.first().copied();
            spot.second_type = r.types.get(1).copied();
            spot.proportions = r.types.iter().zip(&r.sub_weights).map(|(&t, &w)| (t, w, w)).collect();
        }
    }
    spot
}
