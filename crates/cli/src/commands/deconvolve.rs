//! `tmescope deconvolve`: cell-type proportions per spot (or labels per cell) against a reference.

use super::{expected, numbers};
use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::dataset::Dataset;
use tmescope_core::output::OutputDir;
use tmescope_core::provenance::Provenance;
use tmescope_core::timing::timed;
use tmescope_core::Error;
use tmescope_deconv::likelihood::TableCache;
use tmescope_deconv::{GeneKey, Method, Mode, Params};

/// Options of `tmescope deconvolve`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope deconvolve --spatial visium1/ --reference atlas/ -o visium1_deconv/
  tmescope deconvolve --spatial visium1/ --reference atlas/ -o d/ --mode doublet --threads 8
  tmescope deconvolve --spatial xenium1/ --reference atlas/ -o labels/          (labels mode on single-cell data)
  tmescope deconvolve --spatial v/ --reference atlas/ -o d/ --method nnls
  tmescope deconvolve --spatial v/ --reference atlas/ -o d/ --sigma 0.84 --likelihood-cache ~/.cache/tmescope-q.bin
  tmescope deconvolve --spatial v/ --reference ref_ensembl/ -o d/ --gene-key id

Writes DIR/proportions.parquet (cell_id, sample, cell_type, weight, proportion), DIR/deconvolution_qc.parquet
(one row per spot: counts, likelihood, class, first/second type, margin, dropped_reason) and
DIR/profiles.parquet (reference and platform-normalised profiles of the reg/bulk genes). The reference is a
dataset folder whose cells.parquet has a `cell_type` column. See docs/deconvolution.md.")]
pub struct Args {
    /// Spatial dataset folder (from `tmescope ingest` or `simulate`).
    #[arg(long, value_name = "DIR")]
    pub spatial: PathBuf,
    /// Labelled single-cell reference dataset folder (cells.parquet with a label column).
    #[arg(long, value_name = "DIR")]
    pub reference: PathBuf,
    /// Output folder (replaced if it exists).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Method: rctd (Poisson-lognormal, RCTD-style), nnls (Lawson-Hanson), poisson-em (Poisson MLE).
    #[arg(long, default_value = "rctd", value_name = "METHOD")]
    pub method: String,
    /// Mode (rctd): full (all types), doublet (1-2 types + class), multi (up to 4 types), labels (one type
    /// per cell with runner-up and margin). Default: labels on xenium/merscope/cosmx data, full otherwise.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Seed of the random choices (reference subsampling, spots used to choose sigma).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Fix the noise parameter sigma instead of searching for it (e.g. 0.84).
    #[arg(long, value_name = "X")]
    pub sigma: Option<f64>,
    /// Maximum rounds of the sigma search.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub max_sigma_rounds: usize,
    /// Spots and reference cells with fewer total counts are dropped.
    #[arg(long, default_value_t = 100.0, value_name = "N", value_parser = numbers::non_negative)]
    pub min_umi: f64,
    /// Spots with fewer counts on the bulk genes are dropped.
    #[arg(long, default_value_t = 10.0, value_name = "N", value_parser = numbers::non_negative)]
    pub min_bulk_counts: f64,
    /// Genes need at least this many counts over the kept spots.
    #[arg(long, default_value_t = 3.0, value_name = "N", value_parser = numbers::non_negative)]
    pub min_obs: f64,
    /// Reference types with fewer cells are dropped (and reported).
    #[arg(long, default_value_t = 25, value_name = "N")]
    pub min_cells_per_type: usize,
    /// Reference types with more cells are subsampled (seeded).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_cells_per_type: usize,
    /// Label column of the reference cells.parquet.
    #[arg(long, default_value = "cell_type", value_name = "COLUMN")]
    pub label_column: String,
    /// Column of the reference cells.parquet with per-cell totals to use instead of the count sums
    /// (RCTD's nUMI).
    #[arg(long, value_name = "COLUMN")]
    pub reference_umi_column: Option<String>,
    /// Match genes by `name` (symbols) or `id` (Ensembl ids).
    #[arg(long, default_value = "name", value_name = "KEY")]
    pub gene_key: String,
    /// Load / store likelihood tables in this file (created if missing) to skip recomputing them.
    #[arg(long, value_name = "FILE")]
    pub likelihood_cache: Option<PathBuf>,
    /// Do not normalise profiles for the platform effect.
    #[arg(long)]
    pub no_platform_normalisation: bool,
    /// Labels mode: how many types a Poisson screen keeps for the likelihood fits of each cell (0: all).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub label_candidates: usize,
}

impl Args {
    fn params(&self) -> tmescope_core::Result<Params> {
        let method = match self.method.as_str() {
            "rctd" => Method::Rctd,
            "nnls" => Method::Nnls,
            "poisson-em" => Method::PoissonEm,
            m => return Err(Error::Usage(format!("unknown --method `{m}`: expected rctd, nnls or poisson-em"))),
        };
        let mode = match self.mode.as_deref() {
            None => None,
            Some("full") => Some(Mode::Full),
            Some("doublet") => Some(Mode::Doublet),
            Some("multi") => Some(Mode::Multi),
            Some("labels") => Some(Mode::Labels),
            Some(m) => {
                return Err(Error::Usage(format!("unknown --mode `{m}`: expected full, doublet, multi or labels")))
            }
        };
        if method != Method::Rctd && matches!(mode, Some(Mode::Doublet | Mode::Multi | Mode::Labels)) {
            return Err(Error::Usage(format!("--mode {} needs --method rctd", self.mode.as_deref().unwrap_or(""))));
        }
        let gene_key = match self.gene_key.as_str() {
            "name" => GeneKey::Name,
            "id" => GeneKey::Id,
            k => return Err(Error::Usage(format!("unknown --gene-key `{k}`: expected name or id"))),
        };
        if self.max_sigma_rounds == 0 {
            return Err(Error::Usage("--max-sigma-rounds must be at least 1".into()));
        }
        if self.max_cells_per_type == 0 {
            return Err(Error::Usage("--max-cells-per-type must be at least 1".into()));
        }
        let mut p = Params {
            method,
            mode: if method == Method::Rctd { mode } else { Some(Mode::Full) },
            seed: self.seed,
            sigma: self.sigma,
            max_sigma_rounds: self.max_sigma_rounds,
            min_umi: self.min_umi,
            min_bulk_counts: self.min_bulk_counts,
            min_obs: self.min_obs,
            label_column: self.label_column.clone(),
            reference_umi_column: self.reference_umi_column.clone(),
            gene_key,
            platform_normalise: !self.no_platform_normalisation,
            ..Default::default()
        };
        p.reference.min_umi = self.min_umi;
        p.reference.min_cells_per_type = self.min_cells_per_type;
        p.reference.max_cells_per_type = self.max_cells_per_type;
        p.reference.seed = self.seed;
        p.modes.label_candidates = self.label_candidates;
        Ok(p)
    }
}

/// Runs `tmescope deconvolve`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let params = args.params()?;
    let spin = ctx.spinner("reading data");
    let spatial = timed("deconvolve: read the spatial dataset", || Dataset::read(&args.spatial))?;
    let reference = timed("deconvolve: read the reference", || Dataset::read(&args.reference))?;
    spin.finish_and_clear();
    let prepared = timed("deconvolve: prepare the reference profiles", || {
        tmescope_deconv::prepare_reference(&reference, &args.reference, &params)
    })?;
    let mut cache = match &args.likelihood_cache {
        Some(p) => TableCache::load(p)?,
        None => TableCache::new(),
    };
    let pb = ctx.progress(spatial.cells.len() as u64, "deconvolving");
    let result = timed("deconvolve: fit the spots", || {
        tmescope_deconv::deconvolve(&spatial, &args.spatial, &prepared, &reference.genes, &params, &mut cache, &|n| {
            pb.inc(n)
        })
    })?;
    pb.finish_and_clear();
    if let Some(p) = &args.likelihood_cache {
        if cache.computed > 0 {
            cache.save(p)?;
        }
    }
    let mut parameters = serde_json::to_value(&params)?;
    if let Some(obj) = parameters.as_object_mut() {
        obj.insert("mode_used".into(), serde_json::to_value(result.mode)?);
        obj.insert("sigma_chosen".into(), serde_json::json!(result.sigma));
        obj.insert("sigma_path".into(), serde_json::to_value(&result.sigma_path)?);
        obj.insert("bulk_weights".into(), serde_json::json!(result.bulk_weights));
        obj.insert("cell_types".into(), serde_json::json!(result.cell_types));
    }
    let mut prov = Provenance::new("deconvolve", parameters).with_seed(params.seed);
    for dir in [&args.spatial, &args.reference] {
        for f in [
            tmescope_core::dataset::CELLS_FILE,
            tmescope_core::dataset::GENES_FILE,
            tmescope_core::dataset::COUNTS_FILE,
        ] {
            prov = prov.with_inputs(&dir.join(f), expected::READ)?;
        }
    }
    prov.notes.extend(result.notes.iter().cloned());
    let dropped: Vec<String> = result
        .spots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.dropped_reason.as_ref().map(|r| format!("{}: {r}", spatial.cells.cell_id[i])))
        .collect();
    if !dropped.is_empty() {
        prov.notes.push(format!("{} spots not fitted (reasons in deconvolution_qc.parquet)", dropped.len()));
    }
    let out = OutputDir::create(&args.output)?;
    timed("deconvolve: write", || tmescope_deconv::output::write(&out, &result, &spatial.cells, &prov))?;
    let path = out.commit()?;

    let mode = format!("{:?}", result.mode).to_lowercase();
    ctx.say(format!(
        "deconvolve ({}, {mode}): {} cell types, {} spots fitted, {} dropped, {} reg / {} bulk genes",
        args.method,
        result.cell_types.len(),
        result.n_fitted,
        dropped.len(),
        result.n_reg,
        result.genes.len()
    ));
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for s in result.spots.iter().filter_map(|s| s.dropped_reason.as_ref()) {
        let key = if s.contains("min_umi") {
            "below min_umi"
        } else if s.contains("bulk genes") {
            "too few counts on bulk genes"
        } else {
            s.as_str()
        };
        *reasons.entry(key.to_string()).or_default() += 1;
    }
    if !reasons.is_empty() {
        ctx.say(format!("dropped: {}", reasons.iter().map(|(r, n)| format!("{n} {r}")).collect::<Vec<_>>().join(", ")));
    }
    if let Some(s) = result.sigma {
        let path: Vec<String> = result
            .sigma_path
            .iter()
            .map(|p| format!("{:.2}", p.sigma))
            .chain(std::iter::once(format!("{s:.2}")))
            .collect();
        ctx.say(format!(
            "sigma {s:.2} (path {})",
            if result.sigma_path.is_empty() { "fixed".to_string() } else { path.join(" -> ") }
        ));
    }
    let mut classes: std::collections::BTreeMap<&str, usize> = Default::default();
    for c in result.spots.iter().filter_map(|s| s.spot_class.as_deref()) {
        *classes.entry(c).or_default() += 1;
    }
    if !classes.is_empty() {
        ctx.say(format!("classes: {}", classes.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ")));
    }
    for n in &result.notes {
        if n.contains("dropped") || n.contains("ignored") || n.contains("no spot") || n.contains("clipped") {
            ctx.say(format!("note: {n}"));
        }
    }
    ctx.say(format!("wrote {}", path.display()));
    Ok(())
}
