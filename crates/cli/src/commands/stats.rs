//! `tmescope stats`: spatial statistics on a dataset folder and its neighbour graph.

use super::expected;
use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::output::OutputDir;
use tmescope_core::provenance::Provenance;
use tmescope_spatial::pipeline::{run_stats, StatsOptions};

/// Options of `tmescope stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope stats sample1/ --graph sample1_graph/ -o sample1_stats/
  tmescope stats sample1/ --graph g/ --labels leiden --perms 1000 --seed 0 -o s/
  tmescope stats visium1/ --graph g/ --proportions deconv/ --hops 2 -o s/
  tmescope stats sample1/ --graph g/ --max-radius 200 --radii 20 -o s/
  tmescope stats sample1/ --graph g/ --genes CD8A,EPCAM,COL1A1 --top-variable 100 --autocorr-perms 100 -o s/
  tmescope stats sample1/ --graph g/ --hotspots total_counts --ripley Tumor -o s/

Writes into DIR: neighborhoods.parquet, nhood_enrichment.parquet, interaction.parquet, cooccurrence.parquet
(with labels), autocorrelation.parquet (with --genes/--top-variable/--columns), hotspots.parquet (with
--hotspots), ripley.parquet (with --ripley). Every statistic is computed per sample.
See docs/spatial.md for the formulas, defaults and differences from squidpy.")]
pub struct Args {
    /// Dataset folder (cells.parquet, genes.parquet, counts.parquet).
    #[arg(value_name = "DATASET")]
    pub dataset: PathBuf,
    /// Graph folder written by `tmescope graph` (or its edges.parquet).
    #[arg(long, value_name = "DIR")]
    pub graph: PathBuf,
    /// Output folder (replaced if it exists).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Label column of cells.parquet (default: cell_type, when present).
    #[arg(long, value_name = "COLUMN", conflicts_with = "proportions")]
    pub labels: Option<String>,
    /// Deconvolution folder (proportions.parquet): neighbourhood composition from proportions; the
    /// dominant type of each spot serves as its label for enrichment and co-occurrence.
    #[arg(long, value_name = "DIR")]
    pub proportions: Option<PathBuf>,
    /// Neighbourhood composition over 1..N graph steps.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub hops: usize,
    /// Label permutations for the neighbourhood enrichment (0 skips it).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub perms: usize,
    /// Seed of the permutations (results do not depend on the thread count).
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Largest co-occurrence and Ripley radius in the coordinate unit (default: 10 x the median
    /// nearest-neighbour distance).
    #[arg(long, value_name = "R")]
    pub max_radius: Option<f64>,
    /// Number of evenly spaced radii up to --max-radius.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub radii: usize,
    /// Explicit radii, comma-separated (replaces --max-radius and --radii).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub radius_list: Option<Vec<f64>>,
    /// Skip the co-occurrence.
    #[arg(long)]
    pub no_cooccurrence: bool,
    /// Genes for Moran's I and Geary's C (names or ids, comma-separated), on log1p(normalised counts).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub genes: Vec<String>,
    /// Also the N genes of highest variance of log1p(normalised counts).
    #[arg(long, value_name = "N")]
    pub top_variable: Option<usize>,
    /// Numeric cells.parquet columns for Moran's I and Geary's C (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Permutations for Moran/Geary p-values (0: analytic only, squidpy's default).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub autocorr_perms: usize,
    /// Numeric cells.parquet columns for Getis-Ord Gi* hotspots (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub hotspots: Vec<String>,
    /// Cell types for Ripley's L (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub ripley: Vec<String>,
}

/// Runs `tmescope stats`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let opts = StatsOptions {
        labels: args.labels.clone(),
        proportions: args.proportions.clone(),
        hops: args.hops.max(1),
        perms: args.perms,
        seed: args.seed,
        max_radius: args.max_radius,
        radius_steps: args.radii,
        radius_list: args.radius_list.clone(),
        genes: args.genes.clone(),
        top_variable: args.top_variable,
        columns: args.columns.clone(),
        autocorr_perms: args.autocorr_perms,
        hotspots: args.hotspots.clone(),
        ripley: args.ripley.clone(),
        no_cooccurrence: args.no_cooccurrence,
    };
    let mut prov = Provenance::new("stats", serde_json::to_value(&opts)?)
        .with_seed(args.seed)
        .with_inputs(&args.dataset, expected::DATASET)?;
    prov = prov.with_inputs(&args.graph, expected::GRAPH)?;
    if let Some(p) = &args.proportions {
        prov = prov.with_inputs(p, expected::PROPORTIONS)?;
    }
    let out = OutputDir::create(&args.output)?;
    let bar = ctx.progress(args.perms as u64, "statistics");
    let progress = |_step: &str, done: u64, total: u64| {
        bar.set_length(total.max(1));
        bar.set_position(done);
    };
    let s = run_stats(&args.dataset, &args.graph, &opts, &out, &prov, &progress)?;
    bar.finish_and_clear();
    let path = out.commit()?;
    for line in &s.lines {
        ctx.say(line);
    }
    ctx.say(format!("wrote {} ({})", path.display(), s.files.join(", ")));
    Ok(())
}
