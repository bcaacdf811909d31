//! The stage drivers: read the inputs of `score`, `niches`, `communicate` and `compare`, call the
//! algorithms and write the documented Parquet files (`docs/formats.md`) atomically with provenance.

use crate::cluster::{self, Points};
use crate::communication::{self, CommParams, Composition, PairExpression, ResolvedPair};
use crate::compare::{self, CellRows, TestKind};
use crate::metrics;
use crate::programs::{load_programs, resolve_programs, symbol_index};
use crate::resistance;
use crate::score::{self, ProgramGenes, ScoreMethod};
use crate::states::{group_membership, CompiledRules};
use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tmescope_core::dataset::{
    read_cell_positions, read_cells, read_counts_of, read_genes, stream_count_blocks, CellTable, Column, LabelCodes,
    CELLS_FILE,
};
use tmescope_core::gene_stats::gene_moments;
use tmescope_core::graph::{NeighborGraph, EDGES_FILE};
use tmescope_core::output::OutputDir;
use tmescope_core::parquet_io::{arc, batch_with_schema, ParquetSink, Table};
use tmescope_core::provenance::Provenance;
use tmescope_core::schema::niche as schema;
use tmescope_core::text::read_text_file;
use tmescope_core::timing::timed;
use tmescope_core::{Error, Result};
use tmescope_spatial::hotspots::{z_to_p_q, GiStar};

/// File names written by the stages.
pub const PROGRAMS_FILE: &str = "programs.parquet";
/// Genes used by each program.
pub const PROGRAM_GENES_FILE: &str = "program_genes.parquet";
/// Per-cell niches, states and metrics.
pub const NICHES_FILE: &str = "niches.parquet";
/// Per niche / resistance niche / sample summaries.
pub const NICHE_SUMMARY_FILE: &str = "niche_summary.parquet";
/// Ligand-receptor communication.
pub const COMMUNICATION_FILE: &str = "communication.parquet";
/// Per-sample abundance of niches and states.
pub const ABUNDANCE_FILE: &str = "abundance.parquet";
/// Differential abundance.
pub const DIFFERENTIAL_FILE: &str = "differential.parquet";
/// Name of the resistance score among the programs.
pub const RESISTANCE: &str = "resistance";

/// `DIR/edges.parquet` when `p` is a folder, else `p`.
pub fn edges_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join(EDGES_FILE)
    } else {
        p.to_path_buf()
    }
}

fn in_dir(p: &Path, file: &str) -> PathBuf {
    if p.is_dir() {
        p.join(file)
    } else {
        p.to_path_buf()
    }
}

/// [`in_dir`], failing with a message naming the stage whose output was expected when the file is missing
/// (e.g. `--scores` pointed at a graph folder).
fn require_in(p: &Path, file: &str, stage: &str) -> Result<PathBuf> {
    let path = in_dir(p, file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::file(
            &path,
            format!("missing: expected the output folder of `tmescope {stage}` (holding {file}) or the file itself"),
        ))
    }
}

fn read_graph(path: &Path, cells: &CellTable) -> Result<NeighborGraph> {
    Ok(NeighborGraph::read(&edges_path(path), cells)?.0)
}

/// The graph with every edge in both directions (contacts are mutual).
pub fn symmetrised(g: &NeighborGraph) -> NeighborGraph {
    if !g.directed {
        return g.clone();
    }
    let mut e = Vec::with_capacity(2 * g.n_edges());
    for i in 0..g.n {
        let a = g.indptr[i] as usize;
        for k in a..g.indptr[i + 1] as usize {
            e.push((i as u32, g.neighbors[k], g.distances[k], g.weights[k]));
            e.push((g.neighbors[k], i as u32, g.distances[k], g.weights[k]));
        }
    }
    NeighborGraph::from_edges(g.n, e, false)
}

/// A nullable column of `v`: the non-finite values are nulls (no validity bitmap when there are none).
fn f64_opt(v: &[f64]) -> ArrayRef {
    let valid = NullBuffer::new(BooleanBuffer::collect_bool(v.len(), |i| v[i].is_finite()));
    arc(Float64Array::new(v.to_vec().into(), (valid.null_count() > 0).then_some(valid)))
}

fn write(path: &Path, fields: Vec<Field>, cols: Vec<ArrayRef>, prov: &Provenance) -> Result<()> {
    let batch = batch_with_schema(Arc::new(Schema::new(fields)), cols)?;
    tmescope_core::parquet_io::write_batch(path, &batch, prov, &[])
}

// ---------------------------------------------------------------------------------------------
// score

/// Options of the `score` stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreParams {
    /// Score method.
    pub method: ScoreMethod,
    /// User gene sets.
    pub programs: Option<PathBuf>,
    /// Replace the defaults by the user sets.
    pub replace_programs: bool,
    /// Minimum genes present per program.
    pub min_genes: usize,
    /// scanpy ctrl_size.
    pub ctrl_size: usize,
    /// scanpy n_bins.
    pub n_bins: usize,
    /// Normalisation target per cell.
    pub target_sum: f64,
    /// Rank cap of the rank score.
    pub max_rank: usize,
    /// Seed of the control draws.
    pub seed: u64,
    /// Rules file (resistance weights).
    pub rules: Option<PathBuf>,
}

impl Default for ScoreParams {
    fn default() -> Self {
        ScoreParams {
            method: ScoreMethod::Scanpy,
            programs: None,
            replace_programs: false,
            min_genes: 3,
            ctrl_size: 50,
            n_bins: 25,
            target_sum: 1e4,
            max_rank: 1500,
            seed: 0,
            rules: None,
        }
    }
}

/// What `score` did.
#[derive(Debug, Clone, Default)]
pub struct ScoreSummary {
    /// Cells scored.
    pub n_cells: usize,
    /// `(program, genes found, genes in the set, control genes)`.
    pub programs: Vec<(String, usize, usize, usize)>,
    /// Warnings (dropped programs, ...).
    pub warnings: Vec<String>,
    /// Cells in significant resistance hotspots (z > 0, q < 0.05), when a graph was given.
    pub resistance_hot: Option<usize>,
}

/// Runs `score`: writes `programs.parquet` and `program_genes.parquet` into `out`.
pub fn run_score(
    dataset: &Path,
    graph: Option<&Path>,
    out: &Path,
    p: &ScoreParams,
    prov: Provenance,
) -> Result<ScoreSummary> {
    let (cells, genes) = timed("score: read the cells and genes", || -> Result<_> {
        Ok((read_cell_positions(dataset)?.0, read_genes(dataset)?))
    })?;
    let n = cells.len();
    let rules = CompiledRules::load(p.rules.as_deref())?;
    let sets = load_programs(p.programs.as_deref(), p.replace_programs)?;
    let (progs, mut warnings) = resolve_programs(&sets, &genes.gene_name, p.min_genes);
    if progs.is_empty() {
        return Err(Error::Usage(format!(
            "no gene program has at least {} of its genes in {}: {}",
            p.min_genes,
            dataset.display(),
            warnings.join("; ")
        )));
    }
    // The counts are streamed cell by cell once, for the scores (the gene means of scanpy's control bins
    // are stored in genes.parquet, or take one more pass): memory stays proportional to cells x programs.
    let bins = match p.method {
        ScoreMethod::Scanpy => {
            let moments = timed("score: gene means (a pass over the counts)", || {
                gene_moments(dataset, n, genes.len(), p.target_sum)
            })?;
            score::expression_bins(&moments.0, p.n_bins)
        }
        ScoreMethod::Rank => vec![],
    };
    let genes_used: Vec<ProgramGenes> = progs
        .iter()
        .enumerate()
        .map(|(k, pr)| ProgramGenes {
            signature: pr.genes.clone(),
            control: match p.method {
                ScoreMethod::Scanpy => score::control_genes(&bins, &pr.genes, p.ctrl_size, p.seed, k as u64),
                ScoreMethod::Rank => vec![],
            },
        })
        .collect();
    for (pr, g) in progs.iter().zip(&genes_used) {
        if p.method == ScoreMethod::Scanpy && g.control.is_empty() {
            warnings.push(format!(
                "program `{}`: no control genes in its expression bins; score is the signature mean",
                pr.name
            ));
        }
    }
    let mut names: Vec<String> = progs.iter().map(|p| p.name.clone()).collect();
    let scorer = score::ProgramScorer::new(&genes_used, p.method, p.max_rank, genes.len());
    let np = genes_used.len();
    // Cells without counts keep the score of an empty row.
    let mut empty = vec![0.0; np];
    scorer.score_row(&[], &[], 0.0, &mut empty);
    let mut raw: Vec<Vec<f64>> = empty.iter().map(|&e| vec![e; n]).collect();
    let mut any_count = false;
    // Each block of complete rows is scored in parallel (rows are independent), then stored in order; the
    // graph, used only after the scores, is read meanwhile.
    let (graph, scored) = rayon::join(
        || timed("score: read the graph", || graph.map(|g| read_graph(g, &cells)).transpose()),
        || {
            timed("score: score the programs (a pass over the counts)", || {
                stream_count_blocks(dataset, n, genes.len(), |b| {
                    let mut block = vec![0.0; b.len() * np];
                    block.par_chunks_mut(np.max(1)).enumerate().for_each(|(k, out)| {
                        let (_, g, v) = b.row(k);
                        scorer.score_row(g, v, score::cell_scale(v.iter().sum(), p.target_sum), out);
                    });
                    for (k, scores) in block.chunks_exact(np.max(1)).enumerate() {
                        let (i, _, v) = b.row(k);
                        any_count |= v.iter().sum::<f64>() > 0.0;
                        for (col, x) in raw.iter_mut().zip(scores) {
                            col[i] = *x;
                        }
                    }
                    Ok(())
                })
            })
        },
    );
    let graph = graph?;
    scored?;
    if !any_count {
        return Err(Error::file(
            dataset.join(tmescope_core::dataset::COUNTS_FILE),
            "every count is zero: expected at least one non-zero count to score gene programs",
        ));
    }
    let weighted: Vec<(&[f64], f64)> = rules
        .rules
        .resistance
        .weights
        .iter()
        .filter_map(|(name, &w)| names.iter().position(|x| x == name).map(|k| (raw[k].as_slice(), w)))
        .collect();
    if weighted.is_empty() {
        warnings.push("no resistance program present: the resistance score is not computed".into());
    } else {
        let r = score::resistance_score(&weighted, n);
        raw.push(r);
        names.push(RESISTANCE.into());
    }
    let dir = OutputDir::create(out)?;
    let path = dir.path(PROGRAMS_FILE);
    let fields = schema::programs_fields();
    let mut sink = ParquetSink::create(&path, Arc::new(Schema::new(fields.clone())), &prov, &[])?;
    let ids = arc(StringArray::from_iter_values(&cells.cell_id));
    let samples = arc(StringArray::from_iter_values(&cells.sample));
    // One program's rows: its scores, smoothed scores and hotspots (and, for the resistance score, the
    // number of cells in significant hotspots).
    let gi_star = graph.as_ref().map(GiStar::new);
    let program_rows = |name: &str, s: Vec<f64>| -> Result<(RecordBatch, Option<usize>)> {
        let (sm, z, q, hot) = match &gi_star {
            Some(g) => {
                let (z, sm) = g.z_and_smoothed(&s);
                let (_, q) = z_to_p_q(&z);
                let hot = (name == RESISTANCE).then(|| (0..n).filter(|&i| z[i] > 0.0 && q[i] < 0.05).count());
                (sm, z, q, hot)
            }
            None => (s.to_vec(), vec![f64::NAN; n], vec![f64::NAN; n], None),
        };
        let batch = batch_with_schema(
            Arc::new(Schema::new(fields.clone())),
            vec![
                ids.clone(),
                samples.clone(),
                arc(StringArray::from_iter_values(std::iter::repeat_n(name, n))),
                arc(Float64Array::from(s)),
                arc(Float64Array::from(sm)),
                f64_opt(&z),
                f64_opt(&q),
            ],
        )?;
        Ok((batch, hot))
    };
    // Each program's rows are computed while the previous program's are encoded.
    let what = if gi_star.is_some() { "score: smooth, find hotspots and write" } else { "score: write" };
    let resistance_hot = timed(what, || -> Result<_> {
        let mut resistance_hot = None;
        let mut pending: Option<RecordBatch> = None;
        for (name, s) in names.iter().zip(raw) {
            let (rows, written) =
                rayon::join(|| program_rows(name, s), || pending.take().map_or(Ok(()), |b| sink.write(&b)));
            written?;
            let (batch, hot) = rows?;
            resistance_hot = resistance_hot.or(hot);
            pending = Some(batch);
        }
        if let Some(b) = pending {
            sink.write(&b)?;
        }
        sink.finish()?;
        Ok(resistance_hot)
    })?;
    let (mut pn, mut gn, mut role) = (vec![], vec![], vec![]);
    for (pr, g) in progs.iter().zip(&genes_used) {
        for (list, r) in [(&g.signature, "signature"), (&g.control, "control")] {
            for &k in list {
                pn.push(pr.name.clone());
                gn.push(genes.gene_name[k].clone());
                role.push(r);
            }
        }
        for m in &pr.missing {
            pn.push(pr.name.clone());
            gn.push(m.clone());
            role.push("missing");
        }
    }
    write(
        &dir.path(PROGRAM_GENES_FILE),
        schema::program_genes_fields(),
        vec![arc(StringArray::from(pn)), arc(StringArray::from(gn)), arc(StringArray::from(role))],
        &prov,
    )?;
    dir.commit()?;
    Ok(ScoreSummary {
        n_cells: n,
        programs: progs
            .iter()
            .zip(&genes_used)
            .map(|(pr, g)| (pr.name.clone(), pr.genes.len(), pr.genes.len() + pr.missing.len(), g.control.len()))
            .collect(),
        warnings,
        resistance_hot,
    })
}

// ---------------------------------------------------------------------------------------------
// niches

/// Clustering method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NicheMethod {
    /// k-means++.
    Kmeans,
    /// Diagonal Gaussian mixture.
    Gmm,
}

/// One sample's inputs to `niches`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NicheInput {
    /// Dataset folder.
    pub dataset: PathBuf,
    /// Graph folder or `edges.parquet`.
    pub graph: PathBuf,
    /// `score` output folder or `programs.parquet`.
    pub scores: Option<PathBuf>,
    /// `deconvolve` output folder or `proportions.parquet`.
    pub proportions: Option<PathBuf>,
}

/// Options of `niches`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NicheParams {
    /// Label column of cells.parquet.
    pub labels: String,
    /// Number of niches; `None` = automatic.
    pub k: Option<usize>,
    /// Smallest k tried by the automatic choice.
    pub k_min: usize,
    /// Largest k tried.
    pub k_max: usize,
    /// Seeds per k for the automatic choice.
    pub auto_seeds: usize,
    /// Cells used for the automatic choice (subsample).
    pub auto_sample: usize,
    /// Method.
    pub method: NicheMethod,
    /// One model for all samples.
    pub joint: bool,
    /// k-means restarts.
    pub restarts: usize,
    /// Maximum cells the model is fitted on (the rest are assigned).
    pub fit_sample: usize,
    /// Layers of neighbourhood aggregation in the clustering features (1: the cell and its neighbours).
    pub hops: usize,
    /// Add program scores to the clustering features.
    pub with_scores: bool,
    /// Weight of the program-score block.
    pub score_weight: f64,
    /// Scale each composition column to unit variance (pooled) before clustering.
    pub standardize: bool,
    /// Add the distances to the nearest tumour and endothelial cell to the clustering features.
    pub with_distances: bool,
    /// Weight of the distance block.
    pub distance_weight: f64,
    /// Strength `beta` of the spatial smoothing of the niche labels (hidden Markov random field; 0: none).
    pub smooth: f64,
    /// Graph steps of the smoothing neighbourhood; `None`: [`SMOOTH_REACH`] over the median edge length.
    pub smooth_hops: Option<usize>,
    /// Maximum rounds of smoothing.
    pub smooth_rounds: usize,
    /// Rules file.
    pub rules: Option<PathBuf>,
    /// FDR level of resistance hotspots.
    pub alpha: f64,
    /// Minimum size of a resistance niche.
    pub min_size: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for NicheParams {
    fn default() -> Self {
        NicheParams {
            labels: "cell_type".into(),
            k: None,
            k_min: 2,
            k_max: 10,
            auto_seeds: 5,
            auto_sample: 20_000,
            method: NicheMethod::Kmeans,
            joint: false,
            restarts: 20,
            fit_sample: 100_000,
            hops: 6,
            with_scores: true,
            score_weight: 0.5,
            standardize: true,
            with_distances: true,
            distance_weight: 0.6,
            smooth: 2.5,
            smooth_hops: None,
            smooth_rounds: 10,
            rules: None,
            alpha: 0.05,
            min_size: 10,
            seed: 0,
        }
    }
}

/// Default reach of the label smoothing (micrometres): its graph steps are this over the median edge length
/// (4 steps on single cells about 17 um apart, 1 on Visium spots 100 um apart).
pub const SMOOTH_REACH: f64 = 70.0;
/// Most graph steps chosen for the default smoothing reach (the listed neighbourhoods grow as its square).
const MAX_SMOOTH_HOPS: usize = 8;

/// Graph steps of the default smoothing neighbourhood: [`SMOOTH_REACH`] over the median length of the
/// edges with a finite positive length, rounded, within `1..=MAX_SMOOTH_HOPS` (1 without such edges).
pub fn smoothing_hops(g: &NeighborGraph) -> usize {
    let mut d: Vec<f64> = g.distances.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    if d.is_empty() {
        return 1;
    }
    let mid = d.len() / 2;
    let (_, median, _) = d.select_nth_unstable_by(mid, f64::total_cmp);
    ((SMOOTH_REACH / *median).round() as usize).clamp(1, MAX_SMOOTH_HOPS)
}

/// Distances above this (micrometres) are capped in the clustering features.
const DISTANCE_CAP: f64 = 1000.0;
/// Length scale (micrometres) of the log compression `ln(1 + d / scale)` of distance features.
const DISTANCE_SCALE: f64 = 50.0;

/// Scales the columns `cols` of the row-major feature blocks (`d` columns each) to mean 0 and standard
/// deviation `total / sqrt(cols.len())` pooled over every block, so the scaled columns have total variance
/// `total^2` whatever their number; constant columns become 0.
fn standardize_columns(blocks: &mut [Vec<f64>], d: usize, cols: std::ops::Range<usize>, total: f64) {
    let n: usize = blocks.iter().map(|b| b.len() / d).sum();
    let m = cols.len();
    if n == 0 || m == 0 {
        return;
    }
    let (mut sum, mut sq) = (vec![0.0; m], vec![0.0; m]);
    for b in blocks.iter() {
        for row in b.chunks_exact(d) {
            for (c, v) in row[cols.clone()].iter().enumerate() {
                sum[c] += v;
                sq[c] += v * v;
            }
        }
    }
    let scale = total / (m as f64).sqrt();
    let stats: Vec<(f64, f64)> = (0..m)
        .map(|c| {
            let mean = sum[c] / n as f64;
            let sd = (sq[c] / n as f64 - mean * mean).max(0.0).sqrt();
            (mean, if sd > 1e-12 { scale / sd } else { 0.0 })
        })
        .collect();
    for b in blocks.iter_mut() {
        for row in b.chunks_exact_mut(d) {
            for (v, &(mean, f)) in row[cols.clone()].iter_mut().zip(&stats) {
                *v = (*v - mean) * f;
            }
        }
    }
}

/// What `niches` did, per sample.
#[derive(Debug, Clone, Default)]
pub struct NicheSummary {
    /// `(sample, cells, niches with cells, resistance niches)`.
    pub samples: Vec<(String, usize, usize, usize)>,
    /// Chosen k per fit, with the stability curve when automatic.
    pub k: Vec<(usize, Vec<(usize, f64)>)>,
    /// Graph steps of the label smoothing per fit (empty without smoothing).
    pub smooth_hops: Vec<usize>,
    /// Cell types (columns of the composition).
    pub cell_types: Vec<String>,
    /// Cells per state over all samples.
    pub states: BTreeMap<String, usize>,
    /// Warnings.
    pub warnings: Vec<String>,
}

struct SampleData {
    cells: CellTable,
    graph: NeighborGraph,
    /// `n x t` composition rows.
    comp: Vec<f64>,
    /// Program name -> smoothed score z-scored.
    programs: Vec<(String, Vec<f64>)>,
    /// Resistance (smoothed score, z, q).
    resistance: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
}

/// Reads deconvolved proportions (`proportions.parquet` in `dir`, long form) as `(row of cells, cell type,
/// proportion)`, positive finite proportions only; an error when no cell id matches `dataset`.
///
/// When the deconvolution ran in `labels` mode (single-cell data: one type per cell), the composition of a
/// cell is its label, one-hot: `first_type` of `deconvolution_qc.parquet` (the full-mode weights it also
/// writes are a by-product, and treating them as a mixture would blur cells that are not mixtures).
pub fn read_proportions(cells: &CellTable, dir: &Path, dataset: &Path) -> Result<Vec<(usize, String, f64)>> {
    let path = require_in(dir, "proportions.parquet", "deconvolve")?;
    let t = Table::read(&path)?;
    let labels_mode = t.metadata.get("tmescope.deconvolution.mode").is_some_and(|m| m == "labels");
    let (path, ids, samples, types, prop) = if labels_mode {
        let qc_path = path.with_file_name("deconvolution_qc.parquet");
        let qc = Table::read(&qc_path)?;
        let first = qc.utf8_opt("first_type")?;
        let (mut ids, mut samples, mut types) = (vec![], vec![], vec![]);
        for ((id, s), t) in qc.utf8("cell_id")?.into_iter().zip(qc.utf8("sample")?).zip(first) {
            if let Some(t) = t {
                ids.push(id);
                samples.push(s);
                types.push(t);
            }
        }
        let ones = vec![1.0; ids.len()];
        (qc_path, ids, samples, types, ones)
    } else {
        (path, t.utf8("cell_id")?, t.utf8("sample")?, t.utf8("cell_type")?, t.f64("proportion")?)
    };
    let idx = cells.row_index();
    let mut matched = 0usize;
    let mut out = Vec::new();
    for k in 0..ids.len() {
        if let Some(&i) = idx.get(&(samples[k].as_str(), ids[k].as_str())) {
            matched += 1;
            if prop[k].is_finite() && prop[k] > 0.0 {
                out.push((i, types[k].clone(), prop[k]));
            }
        }
    }
    if matched == 0 {
        return Err(Error::input(
            &path,
            "column `cell_id`",
            format!("no cell id matches {}: was it made from another dataset?", dataset.display()),
        ));
    }
    Ok(out)
}

/// Reads the composition of each cell: labels (one-hot) or proportions (long form).
fn read_composition(cells: &CellTable, input: &NicheInput, labels: &str) -> Result<Vec<(usize, String, f64)>> {
    if let Some(pp) = &input.proportions {
        return read_proportions(cells, pp, &input.dataset);
    }
    let coded = cells.label_codes(
        labels,
        &input.dataset.join(CELLS_FILE),
        "give cell-type labels with --labels COLUMN or deconvolved proportions with --proportions DIR",
    )?;
    Ok(coded
        .codes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, coded.names[c as usize].clone(), 1.0)))
        .collect())
}

/// Reads `programs.parquet`: smoothed scores per program (rows aligned with `cells`).
fn read_scores(
    cells: &CellTable,
    path: &Path,
) -> Result<(Vec<(String, Vec<f64>)>, Option<(Vec<f64>, Vec<f64>, Vec<f64>)>)> {
    let path = require_in(path, PROGRAMS_FILE, "score")?;
    let t = Table::read(&path)?;
    let text = |name: &str| -> Result<StringArray> {
        let a = arrow::compute::cast(t.column(name)?, &DataType::Utf8)
            .map_err(|e| Error::input(&path, format!("column `{name}`"), format!("expected text ({e})")))?;
        Ok(a.as_any().downcast_ref::<StringArray>().cloned().unwrap_or_else(|| StringArray::from(Vec::<&str>::new())))
    };
    let ids = text("cell_id")?;
    let samples = text("sample")?;
    let prog = text("program")?;
    let sm = t.f64("smoothed_score")?;
    let z = t.f64("hotspot_z")?;
    let q = t.f64("hotspot_q")?;
    let n = cells.len();
    let mut idx: Option<HashMap<(&str, &str), usize>> = None;
    let mut order: Vec<String> = Vec::new();
    let mut map: HashMap<String, (Vec<f64>, Vec<f64>, Vec<f64>)> = HashMap::new();
    let mut current: Option<(String, (Vec<f64>, Vec<f64>, Vec<f64>))> = None;
    for k in 0..ids.len() {
        let (id, sample) = (ids.value(k), samples.value(k));
        // Rows are written program by program in cell order: try the row's own position first.
        let i = if n > 0 && cells.cell_id[k % n] == id && cells.sample[k % n] == sample {
            k % n
        } else {
            let map_ids = idx.get_or_insert_with(|| cells.row_index());
            match map_ids.get(&(sample, id)) {
                Some(&i) => i,
                None => {
                    return Err(Error::input(
                        &path,
                        format!("row {}", k + 1),
                        format!("cell `{id}` of sample `{sample}` is not in the dataset"),
                    ))
                }
            }
        };
        let pname = prog.value(k);
        if current.as_ref().is_none_or(|c| c.0 != pname) {
            if let Some((name, v)) = current.take() {
                map.insert(name, v);
            }
            let v = map.remove(pname).unwrap_or_else(|| {
                order.push(pname.to_string());
                (vec![f64::NAN; n], vec![f64::NAN; n], vec![f64::NAN; n])
            });
            current = Some((pname.to_string(), v));
        }
        if let Some((_, e)) = current.as_mut() {
            e.0[i] = sm[k];
            e.1[i] = z[k];
            e.2[i] = q[k];
        }
    }
    if let Some((name, v)) = current.take() {
        map.insert(name, v);
    }
    let mut programs = Vec::new();
    let mut res = None;
    for name in order {
        let (s, z, q) = map.remove(&name).unwrap_or_default();
        if name == RESISTANCE {
            res = Some((s, z, q));
        } else {
            let filled: Vec<f64> = s.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect();
            programs.push((name, score::zscore(&filled)));
        }
    }
    Ok((programs, res))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Runs `niches` over one or more samples; writes `niches.parquet` and `niche_summary.parquet`.
pub fn run_niches(inputs: &[NicheInput], out: &Path, p: &NicheParams, prov: Provenance) -> Result<NicheSummary> {
    if inputs.is_empty() {
        return Err(Error::Usage("give at least one dataset".into()));
    }
    let rules = CompiledRules::load(p.rules.as_deref())?;
    let r = &rules.rules;
    let mut summary = NicheSummary::default();
    // Read everything; unify the cell types across samples so joint niches share features.
    let mut raw = Vec::new();
    let mut types: Vec<String> = Vec::new();
    timed("niches: read the datasets, graphs, compositions and scores", || -> Result<()> {
        for input in inputs {
            let (cells, _, _) = read_cells(&input.dataset)?;
            let graph = read_graph(&input.graph, &cells)?;
            let comp = read_composition(&cells, input, &p.labels)?;
            for (_, t, _) in &comp {
                if !types.contains(t) {
                    types.push(t.clone());
                }
            }
            let (programs, resistance) = match &input.scores {
                Some(s) => read_scores(&cells, s)?,
                None => (vec![], None),
            };
            raw.push((cells, graph, comp, programs, resistance));
        }
        Ok(())
    })?;
    types.sort();
    if types.is_empty() {
        return Err(Error::Usage(
            "no cell-type labels or proportions found: cannot compute neighbourhood composition".into(),
        ));
    }
    let t = types.len();
    let tindex: HashMap<&String, usize> = types.iter().enumerate().map(|(k, s)| (s, k)).collect();
    let mut data: Vec<SampleData> = Vec::new();
    for (cells, graph, comp, programs, resistance) in raw {
        let mut rows = vec![0.0; cells.len() * t];
        for (i, ty, w) in comp {
            rows[i * t + tindex[&ty]] += w;
        }
        data.push(SampleData { cells, graph, comp: rows, programs, resistance });
    }
    let samples_per_input: Vec<String> =
        data.iter().map(|d| d.cells.sample.first().cloned().unwrap_or_default()).collect();
    {
        let mut seen = std::collections::HashSet::new();
        for s in &samples_per_input {
            if !seen.insert(s) {
                return Err(Error::Usage(format!(
                    "sample `{s}` is given twice: each dataset must be a different sample"
                )));
            }
        }
    }
    // Program names common to all samples (joint features need the same columns).
    let common_programs: Vec<String> = match data.first() {
        Some(d0) => d0
            .programs
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| data.iter().all(|d| d.programs.iter().any(|(m, _)| m == n)))
            .collect(),
        None => vec![],
    };
    if p.with_scores && common_programs.is_empty() && inputs.iter().any(|i| i.scores.is_some()) {
        summary
            .warnings
            .push("no program is scored in every sample (--scores): clustering without program scores".into());
    }
    // Features: neighbourhood composition (+ program z-scores).
    let groups = &r.groups;
    let member = group_membership(&types, groups);
    let gidx = |name: &str| groups.iter().position(|g| g.name == name);
    let mut nbhd_all = Vec::new();
    let mut feats_all = Vec::new();
    let np = if p.with_scores { common_programs.len() } else { 0 };
    let nd = if p.with_distances { 2 } else { 0 };
    let hops = p.hops.max(1);
    let tc = t * hops;
    let d = tc + np + nd;
    let block = if np > 0 { p.score_weight / (np as f64).sqrt() } else { 0.0 };
    // Each layer is scaled by 1 / sqrt(hops) so the composition block keeps the weight of one layer.
    let layer_weight = 1.0 / (hops as f64).sqrt();
    for sd in &data {
        let nb = metrics::neighbourhood_composition(&sd.graph, &sd.comp, t);
        let n = sd.cells.len();
        let mut f = vec![0.0; n * d];
        let mut layer = nb.clone();
        for h in 0..hops {
            if h > 0 {
                layer = metrics::neighbourhood_composition(&sd.graph, &layer, t);
            }
            for i in 0..n {
                for (o, v) in f[i * d + h * t..i * d + (h + 1) * t].iter_mut().zip(&layer[i * t..(i + 1) * t]) {
                    *o = layer_weight * v;
                }
            }
        }
        // Program scores, averaged over the same widest neighbourhood as the last composition layer.
        if np > 0 {
            let mut sc = vec![0.0; n * np];
            for (k, name) in common_programs.iter().take(np).enumerate() {
                let col = &sd.programs.iter().find(|(m, _)| m == name).expect("common program").1;
                for i in 0..n {
                    sc[i * np + k] = col[i];
                }
            }
            for _ in 1..hops {
                sc = metrics::neighbourhood_composition(&sd.graph, &sc, np);
            }
            for i in 0..n {
                for k in 0..np {
                    f[i * d + tc + k] = block * sc[i * np + k];
                }
            }
        }
        nbhd_all.push(nb);
        feats_all.push(f);
    }
    // Per-cell metrics and features for the rules.
    struct CellFeatures {
        frac: Vec<Vec<f64>>,
        dist_endo: Vec<f64>,
        dist_tumor: Vec<f64>,
        dist_t: Vec<f64>,
        interface: Vec<bool>,
        core: Vec<bool>,
    }
    let mut cf_all = Vec::new();
    for (sd, nb) in data.iter().zip(&nbhd_all) {
        let n = sd.cells.len();
        let frac = metrics::group_fractions(nb, t, &member, groups.len());
        let holds = |g: Option<usize>| -> Vec<bool> {
            match g {
                None => vec![false; n],
                Some(g) => (0..n)
                    .map(|i| {
                        (0..t).filter(|&k| member[k][g]).map(|k| sd.comp[i * t + k]).sum::<f64>() >= r.metrics.presence
                    })
                    .collect(),
            }
        };
        let dist = |g: Option<usize>| metrics::distance_to_nearest(&sd.cells.x, &sd.cells.y, &holds(g));
        let zeros = vec![0.0; n];
        let ft = gidx("tumor").map(|g| &frac[g]).unwrap_or(&zeros);
        let interface = metrics::interface_flag(ft, r.metrics.interface_low, r.metrics.interface_high);
        let core = (0..n).map(|i| !interface[i] && ft[i] >= r.metrics.core_min).collect();
        cf_all.push(CellFeatures {
            dist_endo: dist(gidx("endothelial")),
            dist_tumor: dist(gidx("tumor")),
            dist_t: dist(gidx("t_cell")),
            frac,
            interface,
            core,
        });
    }
    if nd > 0 {
        // Distances to the nearest tumour cell and endothelial cell (the axes of margins, stromal bands and
        // hypoxic cores), log-compressed and capped at 1 mm; no such cell in a sample counts as the cap.
        for (f, cf) in feats_all.iter_mut().zip(&cf_all) {
            for (i, row) in f.chunks_exact_mut(d).enumerate() {
                for (k, dist) in [&cf.dist_tumor, &cf.dist_endo].into_iter().enumerate() {
                    let x = if dist[i].is_finite() { dist[i].min(DISTANCE_CAP) } else { DISTANCE_CAP };
                    row[tc + np + k] = (x / DISTANCE_SCALE).ln_1p();
                }
            }
        }
        standardize_columns(&mut feats_all, d, tc + np..d, p.distance_weight);
    }
    if p.standardize {
        standardize_columns(&mut feats_all, d, 0..tc, 1.0);
    }
    // Cluster: jointly (one model) or per sample.
    // `what` names the cells clustered in errors (a sample, or all of them).
    let fit = |x: &[f64], seed: u64, what: &str| -> Result<(Vec<u32>, usize, Vec<(usize, f64)>)> {
        let pts = Points { x, d };
        let n = pts.n();
        let (k, curve) = match p.k {
            Some(k) if k > n.min(p.fit_sample) => {
                return Err(Error::Usage(format!(
                    "--niches {k} is more than the {} cells {what}{}: lower --niches",
                    n.min(p.fit_sample),
                    if p.fit_sample < n { " fitted (--fit-sample)" } else { "" }
                )))
            }
            Some(k) => (k, vec![]),
            None => {
                let sub = cluster::subsample(n, p.auto_sample, seed ^ 0xa);
                // The stability of k compares it with k + 1 clusters: at most one fewer than the cells.
                let k_max = p.k_max.min(sub.len().min(p.fit_sample).saturating_sub(1));
                if k_max < p.k_min {
                    return Err(Error::Usage(format!(
                        "{} cells {what} are too few to choose among --k-min {} to --k-max {} niches: give \
                         --niches K (at most {})",
                        sub.len(),
                        p.k_min,
                        p.k_max,
                        n.min(p.fit_sample)
                    )));
                }
                let xs: Vec<f64> = sub.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect();
                let c = cluster::choose_k(Points { x: &xs, d }, p.k_min, k_max, p.auto_seeds, seed);
                (c.k, c.stability)
            }
        };
        let sub = cluster::subsample(n, p.fit_sample, seed ^ 0xf);
        let xs: Vec<f64> = sub.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect();
        let sp = Points { x: &xs, d };
        let labels = match p.method {
            NicheMethod::Kmeans => {
                let km = cluster::kmeans(sp, k, seed, p.restarts, 100);
                cluster::assign(pts, &km.centroids)
            }
            NicheMethod::Gmm => cluster::gmm(sp, k, seed, p.restarts, 200).predict(pts),
        };
        Ok((labels, k, curve))
    };
    // Spatial smoothing of the labels of `samples` (features `x`, their rows in order) on their graphs.
    let smooth = |x: &[f64], labels: Vec<u32>, k: usize, samples: &[SampleData], hops_used: &mut Vec<usize>| {
        if p.smooth <= 0.0 {
            return labels;
        }
        let graphs: Vec<NeighborGraph> = samples.iter().map(|sd| symmetrised(&sd.graph)).collect();
        let stacked = NeighborGraph::stacked(&graphs);
        let hops = p.smooth_hops.unwrap_or_else(|| smoothing_hops(&stacked));
        hops_used.push(hops);
        let smoothing = cluster::Smoothing { beta: p.smooth, hops, rounds: p.smooth_rounds };
        cluster::smooth_labels(Points { x, d }, &labels, k, &stacked, &smoothing)
    };
    let mut niche_labels: Vec<Vec<u32>> = Vec::new();
    let mut n_niches: Vec<usize> = Vec::new();
    if p.joint || data.len() == 1 {
        // One sample: its features as they are (at 1M cells they are ~0.6 GB).
        let pooled: std::borrow::Cow<[f64]> = match feats_all.as_slice() {
            [one] => one.as_slice().into(),
            many => many.concat().into(),
        };
        let what =
            if data.len() == 1 { format!("of sample `{}`", samples_per_input[0]) } else { "of all samples".into() };
        let (labels, k, curve) = timed(&format!("niches: cluster the cells {what}"), || fit(&pooled, p.seed, &what))?;
        let labels = smooth(&pooled, labels, k, &data, &mut summary.smooth_hops);
        summary.k.push((k, curve));
        let mut start = 0;
        for sd in &data {
            niche_labels.push(labels[start..start + sd.cells.len()].to_vec());
            n_niches.push(k);
            start += sd.cells.len();
        }
    } else {
        for (s, f) in feats_all.iter().enumerate() {
            let what = format!("of sample `{}`", samples_per_input[s]);
            let (labels, k, curve) = timed(&format!("niches: cluster the cells {what}"), || {
                fit(f, score::item_seed(p.seed, s as u64), &what)
            })?;
            let labels = smooth(f, labels, k, std::slice::from_ref(&data[s]), &mut summary.smooth_hops);
            summary.k.push((k, curve));
            niche_labels.push(labels);
            n_niches.push(k);
        }
    }
    let feature_of = |s: usize, i: usize, name: &str| -> Option<f64> {
        let cf = &cf_all[s];
        let sd = &data[s];
        if let Some(g) = name.strip_prefix("frac.") {
            return gidx(g).map(|g| cf.frac[g][i]);
        }
        if let Some(pn) = name.strip_prefix("program.") {
            return sd.programs.iter().find(|(m, _)| m == pn).map(|(_, v)| v[i]);
        }
        match name {
            "resistance" => sd.resistance.as_ref().map(|r| r.0[i]),
            "distance_to_endothelium" => Some(cf.dist_endo[i]),
            "distance_to_tumor" => Some(cf.dist_tumor[i]),
            "distance_to_t_cell" => Some(cf.dist_t[i]),
            "interface" => Some(f64::from(u8::from(cf.interface[i]))),
            _ => None,
        }
    };
    let rule_features = rules.features();
    // Niche-level features: means (medians for distances) over the niche's cells, pooled over samples
    // when joint so a niche has one state everywhere.
    let niche_state = |cells_of: &[(usize, usize)]| -> String {
        let mut vals: HashMap<String, Option<f64>> = HashMap::new();
        for f in &rule_features {
            let v: Vec<f64> = cells_of.iter().filter_map(|&(s, i)| feature_of(s, i, f)).collect();
            let x = if v.is_empty() {
                None
            } else if f.starts_with("distance_") {
                Some(median(v))
            } else {
                let fin: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
                (!fin.is_empty()).then(|| fin.iter().sum::<f64>() / fin.len() as f64)
            };
            vals.insert(f.clone(), x);
        }
        rules.classify(&|name| vals.get(name).copied().flatten()).to_string()
    };
    let mut states_of: Vec<HashMap<u32, String>> = vec![HashMap::new(); data.len()];
    if p.joint || data.len() == 1 {
        let k = n_niches[0];
        for c in 0..k as u32 {
            let members: Vec<(usize, usize)> = niche_labels
                .iter()
                .enumerate()
                .flat_map(|(s, l)| l.iter().enumerate().filter(|(_, &x)| x == c).map(move |(i, _)| (s, i)))
                .collect();
            let st = niche_state(&members);
            for m in states_of.iter_mut() {
                m.insert(c, st.clone());
            }
        }
    } else {
        for (s, l) in niche_labels.iter().enumerate() {
            for c in 0..n_niches[s] as u32 {
                let members: Vec<(usize, usize)> =
                    l.iter().enumerate().filter(|(_, &x)| x == c).map(|(i, _)| (s, i)).collect();
                let st = niche_state(&members);
                states_of[s].insert(c, st);
            }
        }
    }
    // Outputs.
    let dir = OutputDir::create(out)?;
    let meta_cols: Vec<&str> = ["condition", "timepoint", "patient", "treatment", "response", "group"]
        .into_iter()
        .filter(|m| data.iter().any(|d| d.cells.get(m).is_some()))
        .collect();
    let mut fields = schema::niches_fields();
    for m in &meta_cols {
        fields.push(Field::new(*m, DataType::Utf8, true));
    }
    for g in groups {
        fields.push(Field::new(format!("frac_{}", g.name), DataType::Float64, false));
    }
    let mut sink = ParquetSink::create(&dir.path(NICHES_FILE), Arc::new(Schema::new(fields.clone())), &prov, &[])?;
    // Summary rows.
    let mut sm = SummaryRows::default();
    let program_names: Vec<String> = common_programs.clone();
    for (s, sd) in data.iter().enumerate() {
        let n = sd.cells.len();
        let cf = &cf_all[s];
        let labels = &niche_labels[s];
        let cell_state: Vec<String> =
            (0..n).map(|i| rules.classify(&|name| feature_of(s, i, name)).to_string()).collect();
        let state: Vec<String> = labels.iter().map(|l| states_of[s].get(l).cloned().unwrap_or_default()).collect();
        for st in &state {
            *summary.states.entry(st.clone()).or_insert(0) += 1;
        }
        let (res_score, res_niche) = match &sd.resistance {
            Some((sc, z, q)) => {
                let z: Vec<f64> = z.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).collect();
                let q: Vec<f64> = q.iter().map(|v| if v.is_finite() { *v } else { 1.0 }).collect();
                (sc.clone(), resistance::resistance_niches(&sd.graph, &z, &q, p.alpha, p.min_size))
            }
            None => (vec![f64::NAN; n], vec![None; n]),
        };
        let n_res = res_niche.iter().flatten().max().map_or(0, |m| *m as usize + 1);
        let mut cols: Vec<ArrayRef> = vec![
            arc(StringArray::from_iter_values(&sd.cells.cell_id)),
            arc(StringArray::from_iter_values(&sd.cells.sample)),
            arc(UInt32Array::from(labels.clone())),
            arc(StringArray::from_iter_values(&state)),
            arc(StringArray::from_iter_values(&cell_state)),
            f64_opt(&res_score),
            arc(UInt32Array::from(res_niche.clone())),
            f64_opt(&cf.dist_endo),
            f64_opt(&cf.dist_tumor),
            f64_opt(&cf.dist_t),
            arc(BooleanArray::from(cf.interface.clone())),
            arc(BooleanArray::from(cf.core.clone())),
        ];
        for m in &meta_cols {
            let v = sd.cells.get(m).map(Column::as_text).unwrap_or_else(|| vec![None; n]);
            cols.push(arc(StringArray::from(v)));
        }
        for fr in &cf.frac {
            cols.push(arc(Float64Array::from(fr.clone())));
        }
        sink.write(&batch_with_schema(Arc::new(Schema::new(fields.clone())), cols)?)?;
        // Summaries.
        let sample = samples_per_input[s].clone();
        let cd8 = gidx("cd8_t").map(|g| cf.frac[g].clone()).unwrap_or_else(|| vec![0.0; n]);
        let ft = gidx("tumor").map(|g| cf.frac[g].clone()).unwrap_or_else(|| vec![0.0; n]);
        let tfrac = gidx("t_cell").map(|g| cf.frac[g].clone()).unwrap_or_else(|| vec![0.0; n]);
        let mut add = |kind: &str, id: Option<u32>, members: &[usize], st: Option<String>, mech: bool| {
            let m = members.len();
            if m == 0 {
                return;
            }
            let mean = |f: &dyn Fn(usize) -> f64| members.iter().map(|&i| f(i)).sum::<f64>() / m as f64;
            let comp: Vec<f64> = (0..t).map(|k| mean(&|i| sd.comp[i * t + k])).collect();
            let pm: Vec<(String, f64)> = program_names
                .iter()
                .map(|name| {
                    let v = &sd.programs.iter().find(|(x, _)| x == name).expect("common program").1;
                    (name.clone(), mean(&|i| v[i]))
                })
                .collect();
            let t_near = mean(&|i| tfrac[i]);
            let mechs = resistance::summarise(&pm, t_near, &r.axes, &r.evasion);
            let (core, margin) = metrics::cd8_core_margin(&ft, &cd8, &cf.interface, r.metrics.core_min, members);
            let st = st.or_else(|| {
                (kind == "sample").then(|| {
                    if core >= r.metrics.cd8_present {
                        "immune-inflamed"
                    } else if margin >= r.metrics.cd8_present {
                        "immune-excluded"
                    } else {
                        "immune-desert"
                    }
                    .to_string()
                })
            });
            let hypothesis = if mech && !mechs.axis.is_empty() {
                format!(
                    "research hypothesis, not a recommendation: {} reprogramming (dominant programs: {})",
                    mechs.axis,
                    if mechs.dominant_programs.is_empty() { "none".into() } else { mechs.dominant_programs.join(", ") }
                )
            } else {
                String::new()
            };
            sm.push(SummaryRow {
                sample: sample.clone(),
                kind: kind.into(),
                id,
                n_cells: m as u64,
                fraction: m as f64 / n as f64,
                state: st,
                dominant: mechs.dominant_programs.join(","),
                evasion: mechs.evasion_flags.join(","),
                axis: if mech { mechs.axis.clone() } else { String::new() },
                cd8_core: core,
                cd8_margin: margin,
                hypothesis,
                comp,
                programs: pm.into_iter().map(|x| x.1).collect(),
            });
        };
        let all: Vec<usize> = (0..n).collect();
        add("sample", None, &all, None, false);
        let mut by_niche: Vec<Vec<usize>> = vec![Vec::new(); n_niches[s]];
        let mut by_res: Vec<Vec<usize>> = vec![Vec::new(); n_res];
        for i in 0..n {
            if let Some(v) = by_niche.get_mut(labels[i] as usize) {
                v.push(i);
            }
            if let Some(v) = res_niche[i].and_then(|c| by_res.get_mut(c as usize)) {
                v.push(i);
            }
        }
        for (c, members) in by_niche.iter().enumerate() {
            add("niche", Some(c as u32), members, states_of[s].get(&(c as u32)).cloned(), false);
        }
        for (c, members) in by_res.iter().enumerate() {
            add("resistance_niche", Some(c as u32), members, None, true);
        }
        // Niches with cells here (k-means may leave a niche empty, e.g. on identical cells).
        let present = by_niche.iter().filter(|m| !m.is_empty()).count();
        summary.samples.push((sample, n, present, n_res));
    }
    sink.finish()?;
    sm.write(&dir.path(NICHE_SUMMARY_FILE), &types, &program_names, &prov)?;
    dir.commit()?;
    summary.cell_types = types;
    Ok(summary)
}

struct SummaryRow {
    sample: String,
    kind: String,
    id: Option<u32>,
    n_cells: u64,
    fraction: f64,
    state: Option<String>,
    dominant: String,
    evasion: String,
    axis: String,
    cd8_core: f64,
    cd8_margin: f64,
    hypothesis: String,
    comp: Vec<f64>,
    programs: Vec<f64>,
}

#[derive(Default)]
struct SummaryRows(Vec<SummaryRow>);

impl SummaryRows {
    fn push(&mut self, r: SummaryRow) {
        self.0.push(r);
    }

    fn write(&self, path: &Path, types: &[String], programs: &[String], prov: &Provenance) -> Result<()> {
        let r = &self.0;
        let mut fields = schema::niche_summary_fields();
        let mut cols: Vec<ArrayRef> = vec![
            arc(StringArray::from_iter_values(r.iter().map(|x| x.sample.as_str()))),
            arc(StringArray::from_iter_values(r.iter().map(|x| x.kind.as_str()))),
            arc(UInt32Array::from(r.iter().map(|x| x.id).collect::<Vec<_>>())),
            arc(UInt64Array::from(r.iter().map(|x| x.n_cells).collect::<Vec<_>>())),
            arc(Float64Array::from(r.iter().map(|x| x.fraction).collect::<Vec<_>>())),
            arc(StringArray::from(r.iter().map(|x| x.state.clone()).collect::<Vec<_>>())),
            arc(StringArray::from_iter_values(r.iter().map(|x| x.dominant.as_str()))),
            arc(StringArray::from_iter_values(r.iter().map(|x| x.evasion.as_str()))),
            arc(StringArray::from_iter_values(r.iter().map(|x| x.axis.as_str()))),
            f64_opt(&r.iter().map(|x| x.cd8_core).collect::<Vec<_>>()),
            f64_opt(&r.iter().map(|x| x.cd8_margin).collect::<Vec<_>>()),
            arc(StringArray::from_iter_values(r.iter().map(|x| x.hypothesis.as_str()))),
        ];
        for (k, ty) in types.iter().enumerate() {
            fields.push(Field::new(format!("frac_{ty}"), DataType::Float64, false));
            cols.push(arc(Float64Array::from(r.iter().map(|x| x.comp[k]).collect::<Vec<_>>())));
        }
        for (k, pn) in programs.iter().enumerate() {
            fields.push(Field::new(format!("score_{pn}"), DataType::Float64, false));
            cols.push(arc(Float64Array::from(r.iter().map(|x| x.programs[k]).collect::<Vec<_>>())));
        }
        write(path, fields, cols, prov)
    }
}

/// Prints the shipped rules.
pub fn default_rules_text() -> &'static str {
    crate::states::DEFAULT_RULES_TOML
}

// ---------------------------------------------------------------------------------------------
// communicate

/// Options of `communicate`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommunicateParams {
    /// Label column.
    pub labels: String,
    /// User pairs file (CSV/TSV).
    pub pairs: Option<PathBuf>,
    /// Use only the user pairs.
    pub replace_pairs: bool,
    /// Expressing fraction threshold.
    pub threshold: f64,
    /// Permutations.
    pub perms: usize,
    /// Normalisation target.
    pub target_sum: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for CommunicateParams {
    fn default() -> Self {
        CommunicateParams {
            labels: "cell_type".into(),
            pairs: None,
            replace_pairs: false,
            threshold: 0.1,
            perms: 1000,
            target_sum: 1e4,
            seed: 0,
        }
    }
}

/// What `communicate` did.
#[derive(Debug, Clone, Default)]
pub struct CommunicateSummary {
    /// Pairs scored / given.
    pub pairs_used: usize,
    /// Pairs given.
    pub pairs_total: usize,
    /// Rows written.
    pub rows: usize,
    /// Rows with q < 0.05.
    pub significant: usize,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// The fields of one CSV/TSV line, unquoted and trimmed.
fn split_line(line: &str, sep: char) -> Vec<String> {
    tmescope_core::text::split_fields(line, sep as u8).into_iter().map(|f| f.trim().to_string()).collect()
}

/// Reads a user pair table: CellPhoneDB-style (`partner_a`/`partner_b`, `gene_a`/`gene_b`, or
/// `ligand`/`receptor`) or OmniPath-style (`source_genesymbol`/`target_genesymbol`), CSV or TSV.
pub fn read_pairs(path: &Path) -> Result<Vec<(String, String)>> {
    let text = read_text_file(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(Error::file(path, "empty pair table: expected a header and one pair per line"));
    };
    let sep = if header.contains('\t') { '\t' } else { ',' };
    let cols: Vec<String> = split_line(header, sep).into_iter().map(|c| c.to_ascii_lowercase()).collect();
    let find = |names: &[&str]| names.iter().find_map(|n| cols.iter().position(|c| c == n));
    let candidates = [
        (&["ligand"][..], &["receptor"][..]),
        (&["source_genesymbol"][..], &["target_genesymbol"][..]),
        (&["gene_a"][..], &["gene_b"][..]),
        (&["partner_a"][..], &["partner_b"][..]),
    ];
    let Some((a, b)) = candidates.iter().find_map(|(x, y)| Some((find(x)?, find(y)?))) else {
        return Err(Error::input(
            path,
            "header",
            format!(
                "expected columns `ligand`/`receptor`, `source_genesymbol`/`target_genesymbol` (OmniPath), or `gene_a`/`gene_b` or `partner_a`/`partner_b` (CellPhoneDB); found {}",
                cols.join(", ")
            ),
        ));
    };
    let mut out = Vec::new();
    for (ln, line) in lines {
        let f = split_line(line, sep);
        match (f.get(a), f.get(b)) {
            (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => out.push((x.clone(), y.clone())),
            _ => return Err(Error::input(path, format!("line {}", ln + 1), "expected a ligand and a receptor")),
        }
    }
    if out.is_empty() {
        return Err(Error::file(path, "no pairs: expected one pair per line after the header"));
    }
    Ok(out)
}

/// Resolves a partner name to gene columns: the gene itself, or its subunits split at `_`, `+` or `:`.
fn resolve_partner(name: &str, idx: &HashMap<String, usize>) -> Option<Vec<usize>> {
    if let Some(&g) = idx.get(&name.to_ascii_uppercase()) {
        return Some(vec![g]);
    }
    let parts: Vec<&str> = name.split(['_', '+', ':']).filter(|s| !s.is_empty()).collect();
    if parts.len() < 2 {
        return None;
    }
    parts.iter().map(|p| idx.get(&p.to_ascii_uppercase()).copied()).collect()
}

/// Runs `communicate` for one sample: with `proportions` (a `deconvolve` output folder or its
/// `proportions.parquet`) the compositions are the deconvolved proportions of each spot, else the one-hot
/// `labels` column of cells.parquet (see [`communication`]).
pub fn run_communicate(
    dataset: &Path,
    graph: &Path,
    niches: Option<&Path>,
    proportions: Option<&Path>,
    out: &Path,
    p: &CommunicateParams,
    prov: Provenance,
) -> Result<CommunicateSummary> {
    let (cells, _, _) = read_cells(dataset)?;
    let genes = read_genes(dataset)?;
    let n = cells.len();
    let g = symmetrised(&read_graph(graph, &cells)?);
    let mut warnings = Vec::new();
    if g.n_edges() == 0 {
        warnings.push(format!(
            "the graph {} has no edges (no cell has a neighbour): no contact, so no interaction is scored; \
             was it built with a radius smaller than the distance between cells?",
            graph.display()
        ));
    }
    let (types, comp) = match proportions {
        Some(pp) => {
            let entries = read_proportions(&cells, pp, dataset)?;
            let mut types: Vec<String> = entries.iter().map(|e| e.1.clone()).collect();
            types.sort();
            types.dedup();
            let coded: Vec<(usize, u32, f64)> =
                entries.iter().map(|(i, t, w)| (*i, types.binary_search(t).unwrap_or(0) as u32, *w)).collect();
            let comp = Composition::from_entries(n, types.len(), &coded);
            let without = (0..n).filter(|&i| comp.indptr[i] == comp.indptr[i + 1]).count();
            if without > 0 {
                warnings.push(format!(
                    "{without} of {n} spots have no deconvolved proportions (dropped by deconvolution): they send and receive nothing"
                ));
            }
            (types, comp)
        }
        None => {
            let LabelCodes { names: mut types, codes } = cells.label_codes(
                &p.labels,
                &dataset.join(CELLS_FILE),
                "communication needs cell-type labels (--labels COLUMN) or, for spots, deconvolved proportions \
                 (--proportions DIR)",
            )?;
            // Cells without a label form one more type (the existing one if a label is called that).
            const UNLABELLED: &str = "unlabelled";
            let missing = match codes.iter().any(Option::is_none) {
                false => 0,
                true => types.iter().position(|t| t == UNLABELLED).unwrap_or_else(|| {
                    types.push(UNLABELLED.to_string());
                    types.len() - 1
                }) as u32,
            };
            let labels: Vec<u32> = codes.iter().map(|c| c.unwrap_or(missing)).collect();
            let comp = Composition::from_labels(&labels, types.len());
            (types, comp)
        }
    };
    // Niches.
    let (niche, n_niches) = match niches {
        Some(np) => {
            let path = require_in(np, NICHES_FILE, "niches")?;
            let t = Table::read(&path)?;
            let ids = t.utf8("cell_id")?;
            let smp = t.utf8("sample")?;
            let nic = t.u32("niche")?;
            let idx = cells.row_index();
            let mut v = vec![u32::MAX; n];
            for k in 0..ids.len() {
                if let Some(&i) = idx.get(&(smp[k].as_str(), ids[k].as_str())) {
                    v[i] = nic[k];
                }
            }
            if let Some(i) = v.iter().position(|&x| x == u32::MAX) {
                return Err(Error::input(
                    &path,
                    format!("cell `{}`", cells.cell_id[i]),
                    "has no niche: was it made from another dataset or sample?",
                ));
            }
            let k = v.iter().max().map_or(1, |m| *m as usize + 1);
            (v, k)
        }
        None => (vec![0; n], 1),
    };
    // Pairs.
    let mut pair_names: Vec<(String, String)> = if p.replace_pairs {
        vec![]
    } else {
        tmescope_core::programs::default_lr_pairs().into_iter().map(|x| (x.ligand, x.receptor)).collect()
    };
    if p.replace_pairs && p.pairs.is_none() {
        return Err(Error::Usage("--replace-pairs needs --pairs FILE".into()));
    }
    if let Some(pp) = &p.pairs {
        for pr in read_pairs(pp)? {
            if !pair_names.contains(&pr) {
                pair_names.push(pr);
            }
        }
    }
    let idx = symbol_index(&genes.gene_name);
    let mut local: Vec<usize> = Vec::new();
    let mut to_local = |gs: Vec<usize>| -> Vec<usize> {
        gs.into_iter()
            .map(|g| match local.iter().position(|&x| x == g) {
                Some(k) => k,
                None => {
                    local.push(g);
                    local.len() - 1
                }
            })
            .collect()
    };
    let mut pairs = Vec::new();
    let mut skipped = Vec::new();
    for (l, r) in &pair_names {
        match (resolve_partner(l, &idx), resolve_partner(r, &idx)) {
            (Some(a), Some(b)) => pairs.push(ResolvedPair {
                ligand: l.clone(),
                receptor: r.clone(),
                ligand_genes: to_local(a),
                receptor_genes: to_local(b),
            }),
            _ => skipped.push(format!("{l}-{r}")),
        }
    }
    if !skipped.is_empty() {
        warnings.push(format!(
            "{} of {} pairs skipped (genes not in the dataset): {}",
            skipped.len(),
            pair_names.len(),
            skipped.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if pairs.is_empty() {
        return Err(Error::Usage(format!("no ligand-receptor pair has all its genes in {}", dataset.display())));
    }
    // Only the pair genes are kept from the streamed counts (with every cell's total for the scale).
    let mut keep = vec![false; genes.len()];
    for &gi in &local {
        keep[gi] = true;
    }
    let (counts, totals) =
        timed("communicate: read the pair genes' counts", || read_counts_of(dataset, n, genes.len(), Some(&keep)))?;
    let scale = score::normalisation_scale(&totals, p.target_sum);
    let mut lmap = vec![u32::MAX; genes.len()];
    for (k, &gi) in local.iter().enumerate() {
        lmap[gi] = k as u32;
    }
    let mut x = PairExpression { indptr: vec![0], genes: vec![], values: vec![], n_genes: local.len() };
    for i in 0..n {
        for (gi, v) in counts.row_iter(i) {
            let l = lmap[gi as usize];
            if l != u32::MAX && v > 0.0 {
                x.genes.push(l);
                x.values.push(score::lognorm(v, scale[i]));
            }
        }
        x.indptr.push(x.genes.len());
    }
    drop(counts);
    let rows = timed("communicate: score the pairs and their permutations", || {
        communication::communicate(
            &g,
            &comp,
            &niche,
            n_niches,
            &x,
            &pairs,
            CommParams { threshold: p.threshold, perms: p.perms, seed: p.seed },
        )
    });
    let dir = OutputDir::create(out)?;
    let sample = cells.sample.first().cloned().unwrap_or_default();
    let cols: Vec<ArrayRef> = vec![
        arc(StringArray::from_iter_values(rows.iter().map(|_| sample.as_str()))),
        arc(UInt32Array::from(rows.iter().map(|r| r.niche).collect::<Vec<_>>())),
        arc(StringArray::from_iter_values(rows.iter().map(|r| types[r.sender as usize].as_str()))),
        arc(StringArray::from_iter_values(rows.iter().map(|r| types[r.receiver as usize].as_str()))),
        arc(StringArray::from_iter_values(rows.iter().map(|r| pairs[r.pair].ligand.as_str()))),
        arc(StringArray::from_iter_values(rows.iter().map(|r| pairs[r.pair].receptor.as_str()))),
        arc(Float64Array::from(rows.iter().map(|r| r.score).collect::<Vec<_>>())),
        f64_opt(&rows.iter().map(|r| r.p).collect::<Vec<_>>()),
        f64_opt(&rows.iter().map(|r| r.q).collect::<Vec<_>>()),
        arc(Float64Array::from(rows.iter().map(|r| r.ligand_mean).collect::<Vec<_>>())),
        arc(Float64Array::from(rows.iter().map(|r| r.receptor_mean).collect::<Vec<_>>())),
        arc(UInt64Array::from(rows.iter().map(|r| r.n_senders).collect::<Vec<_>>())),
        arc(UInt64Array::from(rows.iter().map(|r| r.n_receivers).collect::<Vec<_>>())),
    ];
    write(&dir.path(COMMUNICATION_FILE), schema::communication_fields(), cols, &prov)?;
    dir.commit()?;
    Ok(CommunicateSummary {
        pairs_used: pairs.len(),
        pairs_total: pair_names.len(),
        rows: rows.len(),
        significant: rows.iter().filter(|r| r.q < 0.05).count(),
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// compare

/// Options of `compare`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompareParams {
    /// Condition column.
    pub by: String,
    /// Pairing column.
    pub pair_by: Option<String>,
    /// Reference level.
    pub reference: Option<String>,
    /// Test family.
    pub test: TestKind,
    /// Optional sample sheet (CSV/TSV with a `sample` column).
    pub metadata: Option<PathBuf>,
}

/// What `compare` did.
#[derive(Debug, Clone, Default)]
pub struct CompareSummary {
    /// Samples.
    pub n_samples: usize,
    /// Reference level used.
    pub reference: String,
    /// Rows with q < 0.05: `(kind, category, level, difference, q)`.
    pub significant: Vec<(String, String, String, f64, f64)>,
    /// Rows written.
    pub rows: usize,
    /// Warnings.
    pub warnings: Vec<String>,
}

fn read_sheet(path: &Path) -> Result<HashMap<String, HashMap<String, String>>> {
    let text = read_text_file(path)?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let header = lines.next().ok_or_else(|| Error::file(path, "empty sample sheet"))?;
    let sep = if header.contains('\t') { '\t' } else { ',' };
    let cols = split_line(header, sep);
    let si = cols
        .iter()
        .position(|c| c == "sample")
        .ok_or_else(|| Error::input(path, "header", "expected a `sample` column"))?;
    let mut out = HashMap::new();
    for (k, line) in lines.enumerate() {
        let f = split_line(line, sep);
        let Some(s) = f.get(si) else { continue };
        // A sample listed twice would silently take its last row's condition.
        if out.insert(s.clone(), cols.iter().cloned().zip(f.iter().cloned()).collect()).is_some() {
            return Err(Error::input(
                path,
                format!("data row {}", k + 1),
                format!("sample `{s}` is listed twice: expected one row per sample"),
            ));
        }
    }
    Ok(out)
}

/// Runs `compare` over niche output folders (or `niches.parquet` files).
pub fn run_compare(dirs: &[PathBuf], out: &Path, p: &CompareParams, prov: Provenance) -> Result<CompareSummary> {
    let sheet = match &p.metadata {
        Some(m) => Some(read_sheet(m)?),
        None => None,
    };
    let mut rows = CellRows::default();
    let (mut niche, mut state, mut cell_state, mut res) = (vec![], vec![], vec![], vec![]);
    let mut cond: BTreeMap<String, String> = BTreeMap::new();
    let mut pat: BTreeMap<String, String> = BTreeMap::new();
    // Niche ids mean the same thing only within one fit: a joint `niches` run, or a run of one sample.
    let mut fits = 0;
    for d in dirs {
        let path = require_in(d, NICHES_FILE, "niches")?;
        let t = Table::read(&path)?;
        let samples = t.utf8("sample")?;
        let joint = t.provenance().and_then(|p| p.parameters["params"]["joint"].as_bool()).unwrap_or(false);
        let n_samples = samples.iter().collect::<BTreeSet<_>>().len();
        fits += if joint { 1 } else { n_samples };
        let nic = t.u32("niche")?;
        let st = t.utf8("state")?;
        let cst = t.utf8("cell_state")?;
        let rn = t.i64_opt("resistance_niche")?;
        let meta = |name: &str| -> Result<Option<Vec<Option<String>>>> {
            if t.has(name) {
                Ok(Some(t.utf8_opt(name)?))
            } else {
                Ok(None)
            }
        };
        let by = meta(&p.by)?;
        let pb = match &p.pair_by {
            Some(c) => meta(c)?,
            None => None,
        };
        for k in 0..samples.len() {
            let s = &samples[k];
            // An empty or blank value is a missing one (it would otherwise become a level named ``).
            let given = |v: Option<&String>| v.filter(|v| !v.trim().is_empty()).cloned();
            let from_sheet = |c: &str| given(sheet.as_ref().and_then(|sh| sh.get(s)).and_then(|r| r.get(c)));
            let c = from_sheet(&p.by).or_else(|| given(by.as_ref().and_then(|v| v[k].as_ref())));
            let Some(c) = c else {
                let advice = match &p.metadata {
                    Some(m) => format!(" nor in --metadata {} (add a row for it with a `{}` value)", m.display(), p.by),
                    None => ": add it to cells.parquet (ingest --meta) or give --metadata SHEET".into(),
                };
                return Err(Error::input(
                    &path,
                    format!("column `{}`", p.by),
                    format!("sample `{s}` has no `{}` value here{advice}", p.by),
                ));
            };
            if let Some(prev) = cond.insert(s.clone(), c.clone()) {
                if prev != c {
                    return Err(Error::input(
                        &path,
                        format!("column `{}`", p.by),
                        format!("sample `{s}` has two values, `{prev}` and `{c}`"),
                    ));
                }
            }
            if let Some(col) = &p.pair_by {
                if let Some(v) = from_sheet(col).or_else(|| given(pb.as_ref().and_then(|v| v[k].as_ref()))) {
                    pat.insert(s.clone(), v);
                }
            }
            rows.sample.push(s.clone());
            niche.push(format!("niche_{}", nic[k]));
            state.push(st[k].clone());
            cell_state.push(cst[k].clone());
            res.push(if rn[k].is_some() { "in_resistance_niche" } else { "outside" }.to_string());
        }
    }
    rows.categories = vec![
        ("niche".into(), niche),
        ("state".into(), state),
        ("cell_state".into(), cell_state),
        ("resistance".into(), res),
    ];
    let ab = compare::abundance(&rows)?;
    let mut notes = Vec::new();
    let tested = if fits > 1 {
        notes.push(format!(
            "the niche ids come from {fits} separate fits (per-sample `niches` runs), so niche 0 of one sample is not \
             niche 0 of another: niches are not tested (their abundance is written), states and resistance are; \
             run `tmescope niches --joint` on all samples to compare niches"
        ));
        ab.iter().filter(|(k, _)| k.1 != "niche").map(|(k, v)| (k.clone(), *v)).collect()
    } else {
        ab.clone()
    };
    let (diff, warnings) =
        compare::compare(&tested, &cond, p.pair_by.as_ref().map(|_| &pat), p.reference.as_deref(), p.test)?;
    let warnings: Vec<String> = notes.into_iter().chain(warnings).collect();
    let dir = OutputDir::create(out)?;
    let keys: Vec<_> = ab.iter().collect();
    write(
        &dir.path(ABUNDANCE_FILE),
        schema::abundance_fields(),
        vec![
            arc(StringArray::from_iter_values(keys.iter().map(|(k, _)| k.0.as_str()))),
            arc(StringArray::from_iter_values(keys.iter().map(|(k, _)| k.1.as_str()))),
            arc(StringArray::from_iter_values(keys.iter().map(|(k, _)| k.2.as_str()))),
            arc(Float64Array::from(keys.iter().map(|(_, v)| v.0).collect::<Vec<_>>())),
            arc(Float64Array::from(keys.iter().map(|(_, v)| v.1).collect::<Vec<_>>())),
            arc(Float64Array::from(
                keys.iter().map(|(_, v)| if v.1 > 0.0 { v.0 / v.1 } else { 0.0 }).collect::<Vec<_>>(),
            )),
            arc(StringArray::from_iter_values(
                keys.iter().map(|(k, _)| cond.get(&k.0).map(String::as_str).unwrap_or("")),
            )),
            arc(StringArray::from(keys.iter().map(|(k, _)| pat.get(&k.0).cloned()).collect::<Vec<_>>())),
        ],
        &prov,
    )?;
    write(
        &dir.path(DIFFERENTIAL_FILE),
        schema::differential_fields(),
        vec![
            arc(StringArray::from_iter_values(diff.iter().map(|r| r.kind.as_str()))),
            arc(StringArray::from_iter_values(diff.iter().map(|r| r.category.as_str()))),
            arc(StringArray::from_iter_values(diff.iter().map(|_| p.by.as_str()))),
            arc(StringArray::from_iter_values(diff.iter().map(|r| r.level.as_str()))),
            arc(StringArray::from_iter_values(diff.iter().map(|r| r.reference.as_str()))),
            arc(UInt32Array::from(diff.iter().map(|r| r.n_level).collect::<Vec<_>>())),
            arc(UInt32Array::from(diff.iter().map(|r| r.n_reference).collect::<Vec<_>>())),
            arc(Float64Array::from(diff.iter().map(|r| r.mean_level).collect::<Vec<_>>())),
            arc(Float64Array::from(diff.iter().map(|r| r.mean_reference).collect::<Vec<_>>())),
            arc(Float64Array::from(diff.iter().map(|r| r.difference).collect::<Vec<_>>())),
            arc(Float64Array::from(diff.iter().map(|r| r.log2_fc).collect::<Vec<_>>())),
            arc(StringArray::from_iter_values(diff.iter().map(|r| r.test.as_str()))),
            arc(UInt32Array::from(diff.iter().map(|r| r.n_pairs).collect::<Vec<_>>())),
            f64_opt(&diff.iter().map(|r| r.statistic).collect::<Vec<_>>()),
            f64_opt(&diff.iter().map(|r| r.p).collect::<Vec<_>>()),
            f64_opt(&diff.iter().map(|r| r.q).collect::<Vec<_>>()),
        ],
        &prov,
    )?;
    dir.commit()?;
    Ok(CompareSummary {
        n_samples: cond.len(),
        reference: diff.first().map(|r| r.reference.clone()).unwrap_or_default(),
        significant: diff
            .iter()
            .filter(|r| r.q < 0.05)
            .map(|r| (r.kind.clone(), r.category.clone(), r.level.clone(), r.difference, r.q))
            .collect(),
        rows: diff.len(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmescope_core::parquet_io::write_batch;

    fn strings(v: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    /// Labels-mode deconvolution of single cells: the composition is the label, not the full weights. Rows
    /// are matched by sample and cell id (cell `a` of s1 and cell `a` of s2 are different cells).
    #[test]
    fn labels_mode_proportions_are_one_hot_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let cells = CellTable {
            cell_id: vec!["a".into(), "b".into(), "a".into()],
            sample: vec!["s1".into(), "s1".into(), "s2".into()],
            x: vec![0.0; 3],
            y: vec![0.0; 3],
            z: None,
            extra: vec![],
        };
        let prov = Provenance::new("deconvolve", serde_json::json!({}));
        let props = arrow::record_batch::RecordBatch::try_from_iter([
            ("cell_id", strings(&["a", "a", "b", "b", "a"])),
            ("sample", strings(&["s1", "s1", "s1", "s1", "s2"])),
            ("cell_type", strings(&["T", "B", "T", "B", "T"])),
            ("proportion", Arc::new(Float64Array::from(vec![0.6, 0.4, 0.3, 0.7, 1.0])) as _),
        ])
        .unwrap();
        let qc = arrow::record_batch::RecordBatch::try_from_iter([
            ("cell_id", strings(&["a", "b", "a"])),
            ("sample", strings(&["s1", "s1", "s2"])),
            ("first_type", Arc::new(StringArray::from(vec![Some("T"), Some("B"), None])) as _),
        ])
        .unwrap();
        let dir = tmp.path();
        write_batch(&dir.join("deconvolution_qc.parquet"), &qc, &prov, &[]).unwrap();
        // Spots (full mode): the proportions as written.
        write_batch(&dir.join("proportions.parquet"), &props, &prov, &[]).unwrap();
        let got = read_proportions(&cells, dir, dir).unwrap();
        let rows: Vec<(usize, f64)> = got.iter().map(|(i, _, p)| (*i, *p)).collect();
        assert_eq!(rows, vec![(0, 0.6), (0, 0.4), (1, 0.3), (1, 0.7), (2, 1.0)]);
        // Single cells (labels mode): one-hot first_type; the dropped cell (no first_type) has none.
        let kv = [("tmescope.deconvolution.mode".to_string(), "labels".to_string())];
        write_batch(&dir.join("proportions.parquet"), &props, &prov, &kv).unwrap();
        let got = read_proportions(&cells, dir, dir).unwrap();
        assert_eq!(got, vec![(0, "T".to_string(), 1.0), (1, "B".to_string(), 1.0)]);
    }

    #[test]
    fn metadata_sheet_listing_a_sample_twice_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("meta.csv");
        std::fs::write(&p, "sample,condition\ns1,pre\ns1,post\n").unwrap();
        let e = read_sheet(&p).unwrap_err().to_string();
        assert!(e.contains("meta.csv (data row 2)") && e.contains("sample `s1` is listed twice"), "{e}");
    }

    #[test]
    fn standardised_columns_have_the_pooled_scale_and_leave_the_rest() {
        // Two blocks of rows with 3 columns; columns 0..2 scaled to total variance 4 (sd 2 / sqrt(2) each).
        let mut blocks = vec![vec![1.0, 5.0, 9.0, 3.0, 5.0, 9.0], vec![5.0, 5.0, 9.0, 7.0, 5.0, 9.0]];
        standardize_columns(&mut blocks, 3, 0..2, 2.0);
        let col0: Vec<f64> = blocks.iter().flat_map(|b| b.chunks(3).map(|r| r[0])).collect();
        let mean = col0.iter().sum::<f64>() / 4.0;
        let sd = (col0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
        assert!(mean.abs() < 1e-12 && (sd - 2.0 / 2f64.sqrt()).abs() < 1e-12, "{col0:?}");
        assert!(blocks.iter().all(|b| b.chunks(3).all(|r| r[1] == 0.0 && r[2] == 9.0)), "constant -> 0, col 2 kept");
    }

    #[test]
    fn smoothing_reach_follows_the_median_edge_length() {
        let path = |d: f64| NeighborGraph::from_edges(3, vec![(0, 1, d, 1.0), (1, 2, d, 1.0)], true);
        assert_eq!(smoothing_hops(&path(17.5)), 4);
        assert_eq!(smoothing_hops(&path(100.0)), 1);
        assert_eq!(smoothing_hops(&path(2.0)), 8, "at most 8 steps");
        assert_eq!(smoothing_hops(&path(f64::NAN)), 1, "no usable length: the neighbours");
        assert_eq!(smoothing_hops(&path(0.0)), 1);
    }

    #[test]
    fn missing_stage_output_names_the_stage() {
        let tmp = tempfile::tempdir().unwrap();
        let e = require_in(tmp.path(), PROGRAMS_FILE, "score").unwrap_err().to_string();
        assert!(e.contains("programs.parquet") && e.contains("`tmescope score`"), "{e}");
    }
}
