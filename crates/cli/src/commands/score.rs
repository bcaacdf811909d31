//! `tmescope score`: gene-program scores per cell/spot, smoothed over the neighbour graph, with
//! Getis-Ord Gi* hotspots and the resistance score.

use super::{expected, numbers};
use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::provenance::Provenance;
use tmescope_niche::score::ScoreMethod;
use tmescope_niche::stage::{run_score, ScoreParams};

/// Per-cell score method.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Method {
    /// scanpy `score_genes`: mean(signature) - mean(expression-matched control genes).
    Scanpy,
    /// Rank-based (UCell-like) Mann-Whitney score in [0, 1], robust to depth and platform.
    Rank,
}

/// Options of `tmescope score`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  tmescope score sample1 --graph sample1_graph -o sample1_scores\n  tmescope score sample1 --graph g -o s --method rank --programs my_sets.gmt\n  tmescope score sample1 -o s --programs sets.tsv --replace-programs --min-genes 5"
)]
pub struct Args {
    /// Dataset folder (from `tmescope ingest` or `simulate`).
    pub dataset: PathBuf,
    /// Neighbour graph folder (from `tmescope graph`) or its edges.parquet; without it, scores are not
    /// smoothed and no hotspots are computed.
    #[arg(long, value_name = "DIR")]
    pub graph: Option<PathBuf>,
    /// Output folder (programs.parquet, program_genes.parquet).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Score method.
    #[arg(long, value_enum, default_value = "scanpy")]
    pub method: Method,
    /// Extra gene sets (GMT, or two-column TSV `set<TAB>gene`); a set named like a default replaces it.
    #[arg(long, value_name = "FILE")]
    pub programs: Option<PathBuf>,
    /// Score only the sets of --programs, not the shipped defaults.
    #[arg(long)]
    pub replace_programs: bool,
    /// Drop (with a warning) programs with fewer genes present than this.
    #[arg(long, default_value_t = 3)]
    pub min_genes: usize,
    /// Control genes drawn per expression bin (scanpy ctrl_size).
    #[arg(long, default_value_t = 50)]
    pub ctrl_size: usize,
    /// Number of expression bins (scanpy n_bins).
    #[arg(long, default_value_t = 25)]
    pub n_bins: usize,
    /// Counts per cell after normalisation (scanpy normalize_total target_sum), before log1p.
    #[arg(long, default_value_t = 1e4, value_parser = numbers::positive)]
    pub target_sum: f64,
    /// Rank cap of the rank score (UCell maxRank).
    #[arg(long, default_value_t = 1500)]
    pub max_rank: usize,
    /// Seed of the control-gene draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rules file with the resistance weights (default: shipped rules; see `tmescope niches --print-rules`).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

/// Runs `tmescope score`.
pub fn run(a: &Args, ctx: &Context) -> anyhow::Result<()> {
    let params = ScoreParams {
        method: match a.method {
            Method::Scanpy => ScoreMethod::Scanpy,
            Method::Rank => ScoreMethod::Rank,
        },
        programs: a.programs.clone(),
        replace_programs: a.replace_programs,
        min_genes: a.min_genes,
        ctrl_size: a.ctrl_size,
        n_bins: a.n_bins,
        target_sum: a.target_sum,
        max_rank: a.max_rank,
        seed: a.seed,
        rules: a.rules.clone(),
    };
    if a.n_bins < 2 || a.ctrl_size == 0 || a.max_rank == 0 || a.min_genes == 0 {
        return Err(tmescope_core::Error::Usage(
            "--n-bins must be >= 2, --ctrl-size, --max-rank and --min-genes > 0".into(),
        )
        .into());
    }
    let mut prov = Provenance::new("score", serde_json::to_value(&params)?)
        .with_inputs(&a.dataset, expected::DATASET)?
        .with_seed(a.seed);
    if let Some(g) = &a.graph {
        prov = prov.with_inputs(g, expected::GRAPH)?;
    }
    if let Some(p) = &a.programs {
        prov = prov.with_inputs(p, expected::PROGRAMS)?;
    }
    let sp = ctx.spinner("scoring");
    let s = run_score(&a.dataset, a.graph.as_deref(), &a.output, &params, prov)?;
    sp.finish_and_clear();
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    ctx.say(format!("scored {} programs on {} cells -> {}", s.programs.len(), s.n_cells, a.output.display()));
    for (name, found, total, ctrl) in &s.programs {
        ctx.say(format!("  {name}: {found}/{total} genes found, {ctrl} control genes"));
    }
    if let Some(h) = s.resistance_hot {
        ctx.say(format!("resistance hotspots (Gi* z > 0, q < 0.05): {h} cells"));
    }
    Ok(())
}
