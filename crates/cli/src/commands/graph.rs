//! `tmescope graph`: build the spatial neighbour graph of a dataset folder.

use super::expected;
use crate::context::Context;
use crate::memory::BYTES_PER_EDGE;
use std::path::PathBuf;
use tmescope_core::output::OutputDir;
use tmescope_core::provenance::Provenance;
use tmescope_spatial::build::GraphKind;
use tmescope_spatial::pipeline::run_graph;

/// Options of `tmescope graph`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope graph sample1/ -o sample1_graph/
  tmescope graph sample1/ -o g/ --kind knn --k 10 --symmetric
  tmescope graph sample1/ -o g/ --kind radius --radius 30
  tmescope graph sample1/ -o g/ --kind delaunay --prune-percentile 99
  tmescope graph visium1/ -o g/ --kind grid --rings 2

Writes DIR/edges.parquet (sample, src, dst, distance, weight; kind and parameters in its metadata) and
DIR/components.parquet (connected component of every cell). Edges never join two samples.
See docs/spatial.md for each graph and how it compares with squidpy.")]
pub struct Args {
    /// Dataset folder (cells.parquet with x, y and sample).
    #[arg(value_name = "DATASET")]
    pub dataset: PathBuf,
    /// Output folder (replaced if it exists).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Graph kind: knn (k nearest neighbours), radius (all within --radius), delaunay (triangulation,
    /// long edges pruned), grid (Visium lattice: kNN with d < 1.3 x median, --rings).
    #[arg(long, default_value = "knn", value_name = "KIND")]
    pub kind: String,
    /// Neighbours per cell for knn (squidpy's default 6) and grid (6 on the Visium hex lattice).
    #[arg(long, default_value_t = 6, value_name = "K")]
    pub k: usize,
    /// Union of both directions for knn (default: directed i -> j for j among i's k nearest, like squidpy).
    #[arg(long)]
    pub symmetric: bool,
    /// Distance for --kind radius (inclusive), in the coordinate unit.
    #[arg(long, value_name = "R")]
    pub radius: Option<f64>,
    /// Delaunay: remove edges longer than this percentile of the edge lengths (100 keeps all; CellCharter uses 99).
    #[arg(long, default_value_t = 99.0, value_name = "P")]
    pub prune_percentile: f64,
    /// Grid: number of rings (1 = direct neighbours; 2 adds the neighbours' neighbours, ...).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rings: usize,
}

impl Args {
    fn kind(&self) -> tmescope_core::Result<GraphKind> {
        use tmescope_core::Error;
        Ok(match self.kind.as_str() {
            "knn" => GraphKind::Knn { k: self.k, symmetric: self.symmetric },
            "radius" => GraphKind::Radius {
                radius: self.radius.ok_or_else(|| Error::Usage("--kind radius needs --radius R".into()))?,
            },
            "delaunay" => GraphKind::Delaunay { prune_percentile: self.prune_percentile },
            "grid" => GraphKind::Grid { k: self.k, rings: self.rings },
            other => {
                return Err(Error::Usage(format!("unknown --kind `{other}`: expected knn, radius, delaunay or grid")))
            }
        })
    }
}

/// Runs `tmescope graph`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let kind = args.kind()?;
    let params = serde_json::json!({
        "dataset": args.dataset.display().to_string(),
        "graph": kind.description(),
    });
    let cells = tmescope_core::dataset::dataset_file(&args.dataset, tmescope_core::dataset::CELLS_FILE)?;
    let prov = Provenance::new("graph", params).with_inputs(&cells, expected::DATASET)?;
    let out = OutputDir::create(&args.output)?;
    let spin = ctx.spinner("building graph");
    // A radius graph's size depends on the radius, not on the data alone: its estimate is checked too.
    let check_edges = |edges: u64, n_cells: usize| {
        ctx.max_memory.check(
            &cells,
            edges.saturating_mul(BYTES_PER_EDGE),
            &format!(
                "a radius graph of about {edges} edges, {:.0} neighbours per cell within --radius {}",
                edges as f64 / n_cells.max(1) as f64,
                args.radius.unwrap_or(f64::NAN)
            ),
            "lower --radius (it is in the unit of the coordinates: see `tmescope inspect`) or use --kind knn",
        )
    };
    let s = run_graph(&args.dataset, &kind, &out, &prov, &check_edges)?;
    spin.finish_and_clear();
    let path = out.commit()?;
    ctx.say(format!(
        "graph {}: {} cells in {} sample(s), {} edges (mean degree {:.2}), {} component(s), {} isolated cell(s)",
        args.kind, s.n_cells, s.n_samples, s.n_edges, s.mean_degree, s.n_components, s.n_isolated
    ));
    ctx.say(format!("wrote {}", path.display()));
    Ok(())
}
