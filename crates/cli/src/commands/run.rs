//! `tmescope run`: the whole pipeline for a sample sheet, from one config file.

use crate::context::Context;
use crate::pipeline::{config, plan, runner};
use std::path::PathBuf;

/// Options of `tmescope run`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    tmescope config --print-default > pipeline.toml     # then edit `samples`, `output`, parameters\n  \
    tmescope run --config pipeline.toml\n  \
    tmescope run --config pipeline.toml --dry-run       # what would run, and why\n  \
    tmescope run --config pipeline.toml --samples s1,s2 --force\n\n\
    Each stage runs as `tmescope <stage> ...` (print the command lines with `tmescope config --print-commands`).\n\
    Outputs: OUT/<sample>/{dataset,deconvolution,graph,stats,scores,niches,communication}/,\n\
    OUT/cohort/{compare,report}/, logs in OUT/logs/. Steps whose outputs are up to date (same parameters,\n\
    same input hashes, same tmescope version) are skipped.")]
pub struct Args {
    /// Pipeline config (TOML; see `tmescope config --print-default`).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// Rerun every step, even those whose outputs are up to date.
    #[arg(long)]
    pub force: bool,
    /// Print what would run (and why) without running anything.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Only these samples (comma-separated); the cohort stages (compare, report) are then left out.
    #[arg(long, value_name = "S1,S2", value_delimiter = ',')]
    pub samples: Vec<String>,
}

/// Runs `tmescope run`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let loaded = config::load(&args.config)?;
    let mut plan = plan::build(&loaded)?;
    if plan.threads == 0 && ctx.threads > 0 {
        // `tmescope --threads N run` gives each stage N threads.
        plan.threads = ctx.threads;
    }
    let program = runner::current_program()?;
    let opts = runner::RunOptions {
        force: args.force,
        dry_run: args.dry_run,
        samples: args.samples.clone(),
        quiet: ctx.quiet,
        verbose: ctx.verbose > 0,
    };
    runner::run(&plan, &program, &opts)?;
    Ok(())
}
