//! `tmescope communicate`: ligand-receptor communication between neighbouring cell types, per niche.

use super::{expected, numbers};
use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::provenance::Provenance;
use tmescope_niche::stage::{run_communicate, CommunicateParams};

/// Options of `tmescope communicate`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  tmescope communicate s1 --graph s1_graph --niches s1_niches -o s1_comm\n  tmescope communicate spots --graph spots_graph --niches spots_niches --proportions spots_deconv -o spots_comm\n  tmescope communicate s1 --graph g -o c --pairs cellphonedb_interactions.csv --perms 200\n  tmescope communicate s1 --graph g -o c --pairs omnipath.tsv --replace-pairs"
)]
pub struct Args {
    /// Dataset folder (needs a cell-type label column, or --proportions for spots).
    pub dataset: PathBuf,
    /// Neighbour graph folder or edges.parquet.
    #[arg(long, value_name = "DIR")]
    pub graph: PathBuf,
    /// `niches` output folder (scores per niche; default: one niche for the whole sample).
    #[arg(long, value_name = "DIR")]
    pub niches: Option<PathBuf>,
    /// `deconvolve` output folder (or its proportions.parquet): score spots by their deconvolved cell-type
    /// proportions instead of a label column (the ligand weighted by the sender's proportion of the sender
    /// type, the receptor by the receiver's proportion of the receiver type; docs/niches.md).
    #[arg(long, value_name = "DIR")]
    pub proportions: Option<PathBuf>,
    /// Output folder (communication.parquet).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Extra pairs: CSV/TSV with `ligand`/`receptor`, CellPhoneDB `partner_a`/`partner_b` or `gene_a`/`gene_b`,
    /// or OmniPath `source_genesymbol`/`target_genesymbol` columns. Complexes: subunits joined by `_` or `+`.
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<PathBuf>,
    /// Use only the pairs of --pairs, not the shipped TME pairs.
    #[arg(long)]
    pub replace_pairs: bool,
    /// Label permutations for the p-values (0: no p-values).
    #[arg(long, default_value_t = 1000)]
    pub perms: usize,
    /// Minimum fraction of senders expressing the ligand and of receivers expressing the receptor.
    #[arg(long, default_value_t = 0.1, value_parser = numbers::fraction)]
    pub threshold: f64,
    /// Cell-type label column of cells.parquet (ignored with --proportions).
    #[arg(long, default_value = "cell_type")]
    pub labels: String,
    /// Seed of the permutations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `tmescope communicate`.
pub fn run(a: &Args, ctx: &Context) -> anyhow::Result<()> {
    let params = CommunicateParams {
        labels: a.labels.clone(),
        pairs: a.pairs.clone(),
        replace_pairs: a.replace_pairs,
        threshold: a.threshold,
        perms: a.perms,
        seed: a.seed,
        ..CommunicateParams::default()
    };
    let mut prov = Provenance::new("communicate", serde_json::to_value(&params)?)
        .with_inputs(&a.dataset, expected::DATASET)?
        .with_inputs(&a.graph, expected::GRAPH)?
        .with_seed(a.seed);
    for (p, what) in
        [(&a.niches, expected::NICHES), (&a.proportions, expected::PROPORTIONS), (&a.pairs, expected::PAIRS)]
    {
        if let Some(p) = p {
            prov = prov.with_inputs(p, what)?;
        }
    }
    let sp = ctx.spinner("communication");
    let s =
        run_communicate(&a.dataset, &a.graph, a.niches.as_deref(), a.proportions.as_deref(), &a.output, &params, prov)?;
    sp.finish_and_clear();
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    ctx.say(format!(
        "{} of {} pairs scored; {} rows, {} with q < 0.05 -> {}",
        s.pairs_used,
        s.pairs_total,
        s.rows,
        s.significant,
        a.output.display()
    ));
    Ok(())
}
