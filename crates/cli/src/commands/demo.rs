//! `tmescope demo`: simulate a small cohort and run every stage on it.
//!
//! The demo is a list of steps, each one function taking the shared [`DemoState`] and recording what it
//! produced; [`run`] calls them in order and ends by printing only what was actually produced. A new
//! stage is wired in by writing one `step_<stage>` function and adding it to [`run`].

use crate::context::Context;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tmescope_core::dataset::Dataset;
use tmescope_sim::config::{Platform, SimConfig};
use tmescope_sim::SimulationSummary;

/// Options of `tmescope demo`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope demo
  tmescope demo -o /tmp/demo --seed 3
  tmescope demo -o /tmp/quick --cells 1500 --sigma 0.8

Simulates 2 patients x pre/post therapy (Xenium-like cells and Visium-like spots of the same sections)
plus a labelled reference into DIR/data/, then runs each available stage into DIR/<stage>/.")]
pub struct Args {
    /// Output folder.
    #[arg(short, long, default_value = "tmescope-demo", value_name = "DIR")]
    pub output: PathBuf,
    /// Random seed of the simulated cohort.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Cells per simulated section.
    #[arg(long, default_value_t = 8_000, value_name = "N")]
    pub cells: usize,
    /// Only simulate and check the cohort; do not run the pipeline stages on it.
    #[arg(long)]
    pub no_pipeline: bool,
    /// Fixed RCTD noise parameter for deconvolution (default: chosen from the data; fixing it skips the
    /// search, e.g. for a quick look).
    #[arg(long, value_name = "SIGMA")]
    pub sigma: Option<f64>,
}

/// One thing the demo produced, for the final summary.
#[derive(Debug, Clone)]
pub struct Product {
    /// The stage that produced it.
    pub stage: String,
    /// What it is.
    pub what: String,
    /// Where it is.
    pub path: PathBuf,
}

/// What the steps share: the output folder, the simulated cohort and what has been produced so far.
#[derive(Debug)]
pub struct DemoState {
    /// The demo's output folder.
    pub root: PathBuf,
    /// The simulated cohort's folder (`root/data`).
    pub data: PathBuf,
    /// What the simulator wrote.
    pub simulation: SimulationSummary,
    /// Everything produced, in order.
    pub products: Vec<Product>,
    /// Stage names and wall time in seconds.
    pub timings: Vec<(String, f64)>,
    /// Fixed deconvolution sigma (`--sigma`), if any.
    pub sigma: Option<f64>,
}

impl DemoState {
    /// Xenium-like dataset folders, one per section.
    pub fn xenium_datasets(&self) -> Vec<PathBuf> {
        self.simulation.sections.iter().filter_map(|s| s.xenium.as_ref()).map(|d| self.data.join(d)).collect()
    }

    /// Visium-like dataset folders, one per section.
    pub fn visium_datasets(&self) -> Vec<PathBuf> {
        self.simulation.sections.iter().filter_map(|s| s.visium.as_ref()).map(|d| self.data.join(d)).collect()
    }

    /// The labelled reference folder, if simulated.
    pub fn reference(&self) -> Option<PathBuf> {
        self.simulation.reference.as_ref().map(|(d, _)| self.data.join(d))
    }

    fn produced(&mut self, stage: &str, what: String, path: &Path) {
        self.products.push(Product { stage: stage.into(), what, path: path.to_path_buf() });
    }
}

/// The demo cohort: 2 patients x pre/post, both platforms, a 1,400-cell reference.
pub fn demo_config(args: &Args) -> SimConfig {
    SimConfig {
        seed: args.seed,
        n_cells: args.cells,
        n_samples: 4,
        platform: Platform::Both,
        conditions: vec!["pre".into(), "post".into()],
        reference_cells: 1_400,
        ..SimConfig::default()
    }
}

/// Step 1: simulate the cohort into `root/data`.
pub fn step_simulate(args: &Args, ctx: &Context) -> anyhow::Result<DemoState> {
    let cfg = demo_config(args);
    cfg.validate()?;
    let data = args.output.join("data");
    let start = Instant::now();
    let simulation = super::simulate::simulate_into(&cfg, &data, "demo-simulate", ctx)?;
    let mut state = DemoState {
        root: args.output.clone(),
        data: data.clone(),
        simulation,
        products: vec![],
        timings: vec![("simulate".into(), start.elapsed().as_secs_f64())],
        sigma: args.sigma,
    };
    let sections = state.simulation.sections.clone();
    for s in &sections {
        if let Some(x) = &s.xenium {
            let what = format!(
                "Xenium-like section {} ({} cells, {} {})",
                s.plan.name, s.n_cells, s.plan.patient, s.plan.condition
            );
            state.produced("simulate", what, &data.join(x));
        }
        if let Some(v) = &s.visium {
            let what = format!(
                "Visium-like section {} ({} spots, {} {})",
                s.plan.name, s.n_spots, s.plan.patient, s.plan.condition
            );
            state.produced("simulate", what, &data.join(v));
        }
    }
    if let Some((dir, n)) = state.simulation.reference.clone() {
        state.produced("simulate", format!("labelled single-cell reference ({n} cells)"), &data.join(dir));
    }
    for f in [
        tmescope_sim::cohort::TRUTH_CELLS_FILE,
        tmescope_sim::cohort::TRUTH_SPOTS_FILE,
        tmescope_sim::cohort::TRUTH_JSON_FILE,
        tmescope_sim::cohort::SAMPLES_FILE,
    ] {
        if data.join(f).is_file() {
            state.produced("simulate", format!("truth / sample sheet {f}"), &data.join(f));
        }
    }
    Ok(state)
}

/// Step 2: read every simulated dataset back and check it against the data model.
pub fn step_check_datasets(state: &mut DemoState, ctx: &Context) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut folders = state.xenium_datasets();
    folders.extend(state.visium_datasets());
    folders.extend(state.reference());
    for dir in &folders {
        let ds = Dataset::read(dir)?;
        ds.validate(dir)?;
        if ctx.verbose > 0 {
            ctx.say(format!(
                "  checked {}: {} rows x {} genes, {} non-zeros, platform {}",
                dir.display(),
                ds.cells.len(),
                ds.genes.len(),
                ds.counts.nnz(),
                ds.platform
            ));
        }
    }
    state.timings.push((format!("check {} datasets", folders.len()), start.elapsed().as_secs_f64()));
    Ok(())
}

/// The pipeline configuration the demo runs: every stage on the Visium-like sections, deconvolved against
/// the simulated reference (communication scores the spots by their deconvolved proportions).
/// `deconvolve.sigma` fixes RCTD's noise parameter when given (skips the sigma search).
pub fn demo_pipeline_toml(sigma: Option<f64>) -> String {
    let stages = crate::pipeline::plan::Stage::ALL.iter().map(|s| format!("\"{}\"", s.name())).collect::<Vec<_>>();
    let sigma = sigma.map(|s| format!("sigma = {s}\n")).unwrap_or_default();
    format!(
        "# Written by `tmescope demo`; rerun with `tmescope run --config pipeline.toml`.\n\
         samples = \"data/samples_visium.csv\"\noutput = \"results\"\nstages = [{}]\n\n\
         [deconvolve]\nreference = \"data/reference\"\n{sigma}\n[communicate]\nperms = 200\n",
        stages.join(", ")
    )
}

/// Step 3: run every pipeline stage on the Visium-like sections, through the same runner as
/// `tmescope run` (each stage a child process of this binary, with its own provenance).
pub fn step_pipeline(state: &mut DemoState, ctx: &Context) -> anyhow::Result<()> {
    use crate::pipeline::{config, plan, runner};
    let start = Instant::now();
    let config_path = state.root.join("pipeline.toml");
    std::fs::write(&config_path, demo_pipeline_toml(state.sigma))
        .map_err(|e| tmescope_core::Error::io(&config_path, e))?;
    let loaded = config::load(&config_path)?;
    let mut the_plan = plan::build(&loaded)?;
    the_plan.threads = ctx.threads;
    let program = runner::current_program()?;
    let opts = runner::RunOptions { quiet: ctx.quiet, verbose: ctx.verbose > 0, ..Default::default() };
    let outcomes = runner::run(&the_plan, &program, &opts)?;
    for (step, outcome) in the_plan.steps.iter().zip(&outcomes) {
        if matches!(outcome, runner::Outcome::Done(_) | runner::Outcome::UpToDate) && step.output.exists() {
            state.produced(step.stage.name(), step.label(), &step.output);
        }
    }
    state.timings.push(("pipeline".into(), start.elapsed().as_secs_f64()));
    let report = the_plan.output.join("cohort").join("report").join("index.html");
    if report.is_file() {
        state.produced("report", "the niche report (open in a browser)".into(), &report);
    }
    Ok(())
}

/// Final step: print what was produced and where.
pub fn step_summary(state: &DemoState, ctx: &Context) {
    let total: f64 = state.timings.iter().map(|t| t.1).sum();
    ctx.say(format!("tmescope demo finished in {total:.1} s; outputs under {}", state.root.display()));
    for (stage, secs) in &state.timings {
        ctx.say(format!("  step {stage}: {secs:.1} s"));
    }
    let mut last_stage: &str = "";
    for p in &state.products {
        if p.stage != last_stage {
            ctx.say(format!("{}:", p.stage));
            last_stage = p.stage.as_str();
        }
        ctx.say(format!("  {}  {}", p.path.display(), p.what));
    }
    ctx.say(format!(
        "Ground truth (cell types, regions, states, planted therapy effect): {}",
        state.data.join(tmescope_sim::cohort::TRUTH_JSON_FILE).display()
    ));
}

/// Runs `tmescope demo`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let mut state = step_simulate(args, ctx)?;
    step_check_datasets(&mut state, ctx)?;
    if !args.no_pipeline {
        step_pipeline(&mut state, ctx)?;
    }
    step_summary(&state, ctx);
    Ok(())
}
