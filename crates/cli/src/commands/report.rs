//! `tmescope report`: the self-contained HTML niche report.

use super::numbers;
use crate::context::Context;
use std::path::PathBuf;

/// Options of `tmescope report`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    tmescope report run/P1 -o report\n  \
    tmescope report run/P1-pre run/P1-post run/compare -o cohort-report\n  \
    tmescope report run -o report --programs hypoxia_buffa,m2_tam --max-points 100000\n\n\
    A RUN_DIR is a sample folder with stage subfolders (dataset/, deconvolution/, graph/, stats/, scores/,\n\
    niches/, communication/), a compare/ folder with differential.parquet, or a folder holding sample\n\
    folders side by side (a cohort). See docs/report.md.")]
pub struct Args {
    /// Run folders: sample folders, a compare/ folder, or a cohort folder holding sample folders.
    #[arg(value_name = "RUN_DIR", required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Output folder (written atomically; replaced if it exists). Contains index.html and figures/.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Most cells drawn per tissue map; larger samples are downsampled for drawing only (seeded, stratified
    /// by niche). Statistics always use every cell.
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub max_points: usize,
    /// Seed of the drawing downsample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Programs to map, comma-separated (default: resistance programs present in the data, up to four).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub programs: Vec<String>,
    /// Ligand-receptor pairs shown per niche in the communication dot plot.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top_pairs: usize,
    /// q-value below which a change or interaction counts as significant.
    #[arg(long, value_name = "Q", default_value_t = 0.05, value_parser = numbers::fdr_level)]
    pub alpha: f64,
    /// Title of the report.
    #[arg(long, default_value = "tmescope niche report")]
    pub title: String,
}

/// Runs `tmescope report`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(tmescope_core::Error::Usage(format!("--alpha must be between 0 and 1, got {}", args.alpha)).into());
    }
    let opts = tmescope_report::ReportOptions {
        max_points: args.max_points,
        seed: args.seed,
        key_programs: args.programs.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
        top_pairs: args.top_pairs.max(1),
        alpha: args.alpha,
        title: args.title.clone(),
    };
    let spinner = ctx.spinner("rendering the report");
    let start = std::time::Instant::now();
    let outcome = tmescope_report::render_report(&args.run_dirs, &args.output, &opts);
    spinner.finish_and_clear();
    let outcome = outcome?;
    for line in &outcome.summary {
        ctx.say(line);
    }
    ctx.say(format!(
        "report: {} ({} sample{}, {} figures as PNG + SVG, {:.1} s)",
        outcome.index.display(),
        outcome.n_samples,
        if outcome.n_samples == 1 { "" } else { "s" },
        outcome.n_figures,
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}
