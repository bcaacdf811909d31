//! `tmescope compare`: niche and state abundance between conditions across samples.

use super::expected;
use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::provenance::Provenance;
use tmescope_niche::compare::TestKind;
use tmescope_niche::stage::{run_compare, CompareParams};

/// Test family.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Test {
    /// Paired t-test (with --pair-by) or Welch t-test, on logit fractions.
    T,
    /// Wilcoxon signed-rank (paired) or Mann-Whitney U, on logit fractions.
    Wilcoxon,
}

/// Options of `tmescope compare`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  tmescope compare pre1_niches post1_niches pre2_niches post2_niches --by condition --pair-by patient -o diff\n  tmescope compare cohort_niches --by timepoint --reference baseline -o diff\n  tmescope compare n1 n2 n3 n4 --by condition --metadata samples.csv --test wilcoxon -o diff"
)]
pub struct Args {
    /// `niches` output folders (or niches.parquet files); a joint run's folder holds several samples.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Condition column (in cells.parquet metadata copied to niches.parquet, or in --metadata).
    #[arg(long, default_value = "condition")]
    pub by: String,
    /// Pair samples by this column (e.g. patient) for paired tests.
    #[arg(long)]
    pub pair_by: Option<String>,
    /// Reference level of --by (default: the alphabetically first level).
    #[arg(long)]
    pub reference: Option<String>,
    /// Test family.
    #[arg(long, value_enum, default_value = "t")]
    pub test: Test,
    /// Sample sheet (CSV/TSV with a `sample` column) giving --by / --pair-by values per sample.
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    /// Output folder (differential.parquet, abundance.parquet).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

/// Runs `tmescope compare`.
pub fn run(a: &Args, ctx: &Context) -> anyhow::Result<()> {
    let params = CompareParams {
        by: a.by.clone(),
        pair_by: a.pair_by.clone(),
        reference: a.reference.clone(),
        test: match a.test {
            Test::T => TestKind::T,
            Test::Wilcoxon => TestKind::Wilcoxon,
        },
        metadata: a.metadata.clone(),
    };
    let mut prov = Provenance::new("compare", serde_json::to_value(&params)?);
    for d in &a.dirs {
        prov = prov.with_inputs(d, expected::NICHES)?;
    }
    let s = run_compare(&a.dirs, &a.output, &params, prov)?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    ctx.say(format!(
        "{} samples, reference `{}`: {} comparisons, {} with q < 0.05",
        s.n_samples,
        s.reference,
        s.rows,
        s.significant.len()
    ));
    for (kind, cat, level, diff, q) in &s.significant {
        ctx.say(format!("  {kind} {cat}: {level} {:+.3} (q = {q:.2e})", diff));
    }
    ctx.say(format!("wrote {}", a.output.display()));
    Ok(())
}
