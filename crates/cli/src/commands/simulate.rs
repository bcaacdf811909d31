//! `tmescope simulate`: tumour sections with a known microenvironment (ground truth included).

use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::provenance::Provenance;
use tmescope_sim::config::{Platform, SimConfig};

/// Options of `tmescope simulate`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope simulate -o sim/
  tmescope simulate -o sim/ --platform xenium --cells 100000 --samples 1 --seed 7
  tmescope simulate -o cohort/ --platform visium --samples 8 --conditions pre,post --reference-cells 5000
  tmescope simulate -o big/ --platform xenium --cells 1000000 --samples 1 --genes 4700 --reference-cells 0

Writes DIR/<section>_xenium/, DIR/<section>_visium/ (dataset folders, as ingest writes them),
DIR/reference/, truth_cells.parquet, truth_spots.parquet, truth.json and samples.csv.
See docs/simulator.md for the model and every parameter.")]
pub struct Args {
    /// Output folder (replaced if it exists).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Platforms to simulate: visium (55 um spots), xenium (single cells) or both (same section).
    #[arg(long, default_value = "both", value_name = "PLATFORM")]
    pub platform: String,
    /// Cells per section.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub cells: usize,
    /// Number of sections; section i is patient i / n_conditions + 1 under condition i % n_conditions.
    #[arg(long, default_value_t = 2, value_name = "K")]
    pub samples: usize,
    /// Random seed (same seed, same files, whatever the thread count).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Number of background genes added to the named genes of the shipped programs and markers.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub genes: usize,
    /// Cells in the labelled single-cell reference (0: none).
    #[arg(long, default_value_t = 3_000, value_name = "N")]
    pub reference_cells: usize,
    /// Conditions, comma-separated; the first is the untreated baseline, the last gets the full therapy effect.
    #[arg(long, default_value = "pre,post", value_name = "LIST")]
    pub conditions: String,
    /// Section width in micrometres (default: from --cell-area, square section).
    #[arg(long, value_name = "UM")]
    pub width: Option<f64>,
    /// Mean tissue area per cell in square micrometres (sets the section size when --width is not given).
    #[arg(long, default_value_t = 250.0, value_name = "UM2")]
    pub cell_area: f64,
    /// Fraction of cells in tumour nests (baseline condition).
    #[arg(long, default_value_t = 0.40, value_name = "F")]
    pub tumor_fraction: f64,
    /// Fraction of cells in the myeloid-suppressive zone (baseline condition).
    #[arg(long, default_value_t = 0.06, value_name = "F")]
    pub myeloid_fraction: f64,
    /// Vessels per square millimetre of stroma (baseline condition).
    #[arg(long, default_value_t = 40.0, value_name = "D")]
    pub vessel_density: f64,
    /// Mean counts per cell before the cell-type size factor (single-cell platform and spots).
    #[arg(long, default_value_t = 550.0, value_name = "N")]
    pub depth: f64,
    /// Mean counts per reference cell.
    #[arg(long, default_value_t = 1_000.0, value_name = "N")]
    pub reference_depth: f64,
    /// Negative-binomial dispersion (variance = mu + dispersion * mu^2; 0 = Poisson).
    #[arg(long, default_value_t = 0.2, value_name = "PHI")]
    pub dispersion: f64,
}

impl Args {
    /// The simulation parameters these options ask for.
    pub fn config(&self) -> tmescope_core::Result<SimConfig> {
        let platform = Platform::parse(&self.platform)?;
        Ok(SimConfig {
            seed: self.seed,
            n_cells: self.cells,
            n_samples: self.samples,
            platform,
            conditions: self.conditions.split(',').map(|c| c.trim().to_string()).collect(),
            n_background_genes: self.genes,
            reference_cells: self.reference_cells,
            width: self.width,
            cell_area: self.cell_area,
            tumor_fraction: self.tumor_fraction,
            myeloid_fraction: self.myeloid_fraction,
            vessel_density: self.vessel_density,
            depth: self.depth,
            reference_depth: self.reference_depth,
            dispersion: self.dispersion,
            ..SimConfig::default()
        })
    }
}

/// The command line as recorded in the provenance: without the output folder and the thread count, which
/// do not change the simulated data, so that two runs into different folders give byte-identical files.
pub fn reproducible_command_line() -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in std::env::args() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if matches!(a.as_str(), "-o" | "--output" | "--threads") {
            skip_next = true;
            continue;
        }
        if a.starts_with("--output=")
            || a.starts_with("--threads=")
            || (a.starts_with("-o") && a.len() > 2 && !a.starts_with("--"))
        {
            continue;
        }
        out.push(a);
    }
    out
}

/// Runs the simulator for `cfg` into `output`, reporting progress through `ctx`.
pub fn simulate_into(
    cfg: &SimConfig,
    output: &std::path::Path,
    stage: &str,
    ctx: &Context,
) -> anyhow::Result<tmescope_sim::SimulationSummary> {
    let parameters = serde_json::to_value(cfg)?;
    let mut provenance = Provenance::new(stage, parameters).with_seed(cfg.seed);
    provenance.command_line = reproducible_command_line();
    let spinner = ctx.spinner("simulating");
    let verbose = ctx.verbose > 0 && !ctx.quiet;
    let summary = tmescope_sim::simulate_cohort(cfg, output, &provenance, &mut |step: &str| {
        spinner.set_message(step.to_string());
        if verbose {
            eprintln!("{step}");
        }
    })?;
    spinner.finish_and_clear();
    Ok(summary)
}

/// Runs `tmescope simulate`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let cfg = args.config()?;
    cfg.validate()?;
    let start = std::time::Instant::now();
    let s = simulate_into(&cfg, &args.output, "simulate", ctx)?;
    let secs = start.elapsed().as_secs_f64();
    ctx.say(format!(
        "simulated {} section(s) x {} cells, {} genes, seed {} in {secs:.1} s -> {}",
        s.sections.len(),
        cfg.n_cells,
        s.n_genes,
        cfg.seed,
        s.output.display()
    ));
    for sec in &s.sections {
        let mut parts = Vec::new();
        if let Some(x) = &sec.xenium {
            parts.push(format!("{x}/ ({} cells, {:.0} non-zeros/cell)", sec.n_cells, sec.mean_nonzeros_per_cell));
        }
        if let Some(v) = &sec.visium {
            parts.push(format!("{v}/ ({} spots, {:.1} cells/spot)", sec.n_spots, sec.mean_cells_per_spot));
        }
        ctx.say(format!(
            "  {} (patient {}, {}): tumour {:.1}%, hypoxic {:.1}%, {}",
            sec.plan.name,
            sec.plan.patient,
            sec.plan.condition,
            100.0 * sec.cell_type_fractions.get("tumor_epithelial").copied().unwrap_or(0.0),
            100.0 * sec.hypoxic_fraction,
            parts.join(", ")
        ));
    }
    if let Some((dir, n)) = &s.reference {
        ctx.say(format!("  {dir}/ (labelled reference, {n} cells)"));
    }
    ctx.say(format!(
        "  truth: {}",
        s.written.iter().filter(|w| w.contains('.')).cloned().collect::<Vec<_>>().join(", ")
    ));
    Ok(())
}
