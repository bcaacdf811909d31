//! The `graph` and `stats` stages end to end: read a dataset folder, compute, write Parquet.
//!
//! This is the only module that touches files; the algorithms live in the other modules. Every statistic
//! is computed per sample (labels are shuffled, values standardised and areas measured within a sample).

use crate::autocorr::{Autocorr, AutocorrWeights, FeatureColumn, Statistic};
use crate::build::{
    build_graph, connected_components, is_every_row, radius_edge_estimate, sample_groups, subgraph, GraphKind,
};
use crate::composition::{fractions, label_membership, neighborhood_counts};
use crate::cooccurrence::{co_occurrence, even_radii};
use crate::enrichment::{nhood_enrichment, row_normalise};
use crate::hotspots::{getis_ord_gi_star, z_to_p_q};
use crate::kdtree::PointTree;
use crate::knn_grid::NearestNeighbors;
use crate::ripley::{bounding_box_area, ripley};
use crate::stats::benjamini_hochberg;
use arrow::array::{ArrayRef, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tmescope_core::counts::Log1pScaled;
use tmescope_core::dataset::{
    cell_totals, read_cell_positions, read_cells_with, read_genes, stream_counts, CellTable, Column, CELLS_FILE,
};
use tmescope_core::gene_stats::{cell_scale, gene_moments, median_target, percentile, read_gene_stats};
use tmescope_core::graph::{NeighborGraph, EDGES_FILE};
use tmescope_core::output::OutputDir;
use tmescope_core::parquet_io::{
    arc, batch_with_schema, cycled_strings, repeated_strings, write_batch, ParquetSink, Table,
};
use tmescope_core::provenance::Provenance;
use tmescope_core::schema::spatial as schema;
use tmescope_core::timing::timed;
use tmescope_core::{Error, Result};

/// File names written by the stages.
pub mod files {
    /// Connected components per cell.
    pub const COMPONENTS: &str = "components.parquet";
    /// Neighbourhood composition.
    pub const NEIGHBORHOODS: &str = "neighborhoods.parquet";
    /// Neighbourhood enrichment.
    pub const ENRICHMENT: &str = "nhood_enrichment.parquet";
    /// Interaction matrix.
    pub const INTERACTION: &str = "interaction.parquet";
    /// Co-occurrence.
    pub const COOCCURRENCE: &str = "cooccurrence.parquet";
    /// Moran's I and Geary's C.
    pub const AUTOCORRELATION: &str = "autocorrelation.parquet";
    /// Getis-Ord Gi*.
    pub const HOTSPOTS: &str = "hotspots.parquet";
    /// Ripley's K and L.
    pub const RIPLEY: &str = "ripley.parquet";
}

/// Metadata key listing the cell types (JSON array, in column order) of label-based outputs.
pub const CELL_TYPES_KEY: &str = "tmescope.cell_types";

/// What [`run_graph`] built.
#[derive(Debug, Clone)]
pub struct GraphSummary {
    /// Number of cells.
    pub n_cells: usize,
    /// Number of samples.
    pub n_samples: usize,
    /// Number of stored (directed) edges.
    pub n_edges: usize,
    /// Number of connected components.
    pub n_components: usize,
    /// Cells without any edge.
    pub n_isolated: usize,
    /// Mean out-degree.
    pub mean_degree: f64,
}

/// Builds the graph of `kind` for the dataset folder `dataset` and writes `edges.parquet` and
/// `components.parquet` into `out`. For a radius graph, `check_edges` is first given the estimated number
/// of edges and of cells, and may refuse them (the memory limit; [`build_graph`]).
pub fn run_graph(
    dataset: &Path,
    kind: &GraphKind,
    out: &OutputDir,
    prov: &Provenance,
    check_edges: &dyn Fn(u64, usize) -> Result<()>,
) -> Result<GraphSummary> {
    let (cells, _, unit) = timed("graph: read the cell positions", || read_cell_positions(dataset))?;
    let source = dataset.join(CELLS_FILE);
    if cells.is_empty() {
        return Err(Error::file(&source, "no cells: expected at least one row"));
    }
    let mut desc = kind.description();
    let what = format!("graph: build the {} graph", desc.get("kind").and_then(|k| k.as_str()).unwrap_or("?"));
    let g =
        timed(&what, || build_graph(&cells.x, &cells.y, &cells.sample, &cells.cell_id, kind, &source, check_edges))?;
    desc["coordinate_unit"] = serde_json::json!(unit);
    // The components are found and written while the edges are encoded.
    let (written, components) = timed("graph: write the edges and components", || {
        rayon::join(
            || g.write(&out.path(EDGES_FILE), &cells, &desc, prov),
            || write_components(&g, &cells, &out.path(files::COMPONENTS), prov),
        )
    });
    written?;
    let n_components = components?;
    let n_isolated = (0..g.n).filter(|&i| g.neighbors_of(i).is_empty()).count();
    Ok(GraphSummary {
        n_cells: g.n,
        n_samples: sample_groups(&cells.sample).len(),
        n_edges: g.n_edges(),
        n_components,
        n_isolated,
        mean_degree: g.n_edges() as f64 / g.n.max(1) as f64,
    })
}

/// Writes `components.parquet` for graph `g` over `cells` (the component of each cell and its size);
/// returns the number of components.
fn write_components(g: &NeighborGraph, cells: &CellTable, path: &Path, prov: &Provenance) -> Result<usize> {
    let comp = connected_components(g);
    let n_components = comp.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut size = vec![0u64; n_components];
    comp.iter().for_each(|&c| size[c as usize] += 1);
    let sizes = arc(UInt64Array::from_iter_values(comp.iter().map(|&c| size[c as usize])));
    let batch = batch_with_schema(
        schema::components_schema(),
        vec![
            arc(StringArray::from_iter_values(&cells.cell_id)),
            arc(StringArray::from_iter_values(&cells.sample)),
            arc(UInt32Array::from(comp)),
            sizes,
        ],
    )?;
    write_batch(path, &batch, prov, &[])?;
    Ok(n_components)
}

/// Options of the `stats` stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsOptions {
    /// Label column of `cells.parquet`; `None` = `cell_type` if present.
    pub labels: Option<String>,
    /// Folder holding `proportions.parquet` (deconvolution) used for the neighbourhood composition.
    pub proportions: Option<PathBuf>,
    /// Neighbourhood composition over 1..=hops steps.
    pub hops: usize,
    /// Permutations of the neighbourhood enrichment.
    pub perms: usize,
    /// Seed of every permutation.
    pub seed: u64,
    /// Largest co-occurrence / Ripley radius; `None` = 10 x the median nearest-neighbour distance.
    pub max_radius: Option<f64>,
    /// Number of evenly spaced radii up to the maximum.
    pub radius_steps: usize,
    /// Explicit radii (replace `max_radius` and `radius_steps`).
    pub radius_list: Option<Vec<f64>>,
    /// Genes for Moran/Geary (names or ids).
    pub genes: Vec<String>,
    /// Also the N most variable genes of log1p(normalised counts).
    pub top_variable: Option<usize>,
    /// Numeric `cells.parquet` columns for Moran/Geary.
    pub columns: Vec<String>,
    /// Permutations for Moran/Geary (0 = analytic only, squidpy's default).
    pub autocorr_perms: usize,
    /// Numeric columns (of cells.parquet) for Getis-Ord Gi*.
    pub hotspots: Vec<String>,
    /// Cell types for Ripley's L.
    pub ripley: Vec<String>,
    /// Skip co-occurrence.
    pub no_cooccurrence: bool,
}

/// What [`run_stats`] computed, one line each for the summary.
#[derive(Debug, Clone, Default)]
pub struct StatsSummary {
    /// Human-readable lines.
    pub lines: Vec<String>,
    /// Files written.
    pub files: Vec<String>,
}

/// Labels as integer codes with their names (sorted, so the order is stable).
pub struct Labels {
    /// The distinct names, sorted.
    pub names: Vec<String>,
    /// Code of each cell.
    pub codes: Vec<u32>,
}

/// Encodes the label column `column` of `cells` ([`CellTable::label_codes`]); missing labels are an input
/// error naming the row.
pub fn encode_labels(cells: &CellTable, column: &str, source: &Path) -> Result<Labels> {
    let coded =
        cells.label_codes(column, source, "label statistics need labels (--labels COLUMN or --proportions DIR)")?;
    let mut codes = Vec::with_capacity(coded.codes.len());
    for (i, c) in coded.codes.into_iter().enumerate() {
        let Some(c) = c else {
            return Err(Error::input(
                source,
                format!("column `{column}`, row {} (cell `{}`)", i + 1, cells.cell_id[i]),
                "missing label: every cell needs one (fill or filter unlabelled cells first)",
            ));
        };
        codes.push(c);
    }
    Ok(Labels { names: coded.names, codes })
}

/// Reads `proportions.parquet` (`cell_id, sample, cell_type, proportion`) into a dense cells x types
/// matrix aligned with `cells`; cells without rows get zeros.
pub fn read_proportions(dir: &Path, cells: &CellTable) -> Result<(Vec<String>, Vec<f64>)> {
    let path = if dir.is_file() { dir.to_path_buf() } else { dir.join("proportions.parquet") };
    let t = Table::read(&path)?;
    let id = t.utf8("cell_id")?;
    let sample = t.utf8("sample")?;
    let ty = t.utf8("cell_type")?;
    let prop = t.f64("proportion")?;
    let mut names: Vec<String> = ty.clone();
    names.sort();
    names.dedup();
    let tix: HashMap<&str, usize> = names.iter().enumerate().map(|(k, s)| (s.as_str(), k)).collect();
    let row = cells.row_index();
    let nt = names.len();
    let mut m = vec![0.0; cells.len() * nt];
    for k in 0..id.len() {
        let Some(&i) = row.get(&(sample[k].as_str(), id[k].as_str())) else {
            return Err(Error::input(
                &path,
                format!("row {}", k + 1),
                format!("cell `{}` of sample `{}` is not in the dataset's cells.parquet", id[k], sample[k]),
            ));
        };
        let p = prop[k];
        if !p.is_finite() {
            return Err(Error::input(&path, format!("row {}, column `proportion`", k + 1), "expected a finite number"));
        }
        m[i * nt + tix[ty[k].as_str()]] = p;
    }
    Ok((names, m))
}

fn numeric_column(cells: &CellTable, name: &str, source: &Path) -> Result<Vec<f64>> {
    let col = match name {
        "x" => return Ok(cells.x.clone()),
        "y" => return Ok(cells.y.clone()),
        _ => cells.get(name).ok_or_else(|| {
            Error::input(
                source,
                format!("column `{name}`"),
                "no such column in cells.parquet (expected a numeric column)",
            )
        })?,
    };
    if matches!(col, Column::Text(_)) {
        return Err(Error::input(source, format!("column `{name}`"), "expected a numeric column, found text"));
    }
    let v = col.as_f64();
    if let Some(i) = v.iter().position(|x| !x.map(f64::is_finite).unwrap_or(false)) {
        return Err(Error::input(
            source,
            format!("column `{name}`, row {} (cell `{}`)", i + 1, cells.cell_id[i]),
            "expected a finite number in every row (fill or filter missing values first)",
        ));
    }
    Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// Median distance to the nearest other cell (NaN for fewer than two cells).
pub fn median_nn_distance(pts: &[[f64; 2]]) -> f64 {
    if pts.len() < 2 {
        return f64::NAN;
    }
    let index = NearestNeighbors::new(pts, 1);
    let mut d: Vec<f64> = (0..pts.len())
        .into_par_iter()
        .map_init(Vec::new, |best, i| {
            index.knn_of(i, 1, best);
            best[0].0.sqrt()
        })
        .collect();
    percentile(&mut d, 50.0)
}

/// Per-cell factors of scanpy's `normalize_total` with `target_sum=None`: `target` (the median non-zero
/// total, [`median_target`]) over the cell's total (0 for empty cells).
pub fn median_scale(totals: &[f64], target: f64) -> Vec<f64> {
    totals.iter().map(|&t| cell_scale(t, target)).collect()
}

/// `ln(1 + v * scale[cell])` over a stream of entries grouped by cell, with each cell's small counts
/// looked up ([`Log1pScaled`]).
struct LogCell {
    cell: u32,
    cache: Log1pScaled,
}

impl Default for LogCell {
    fn default() -> Self {
        LogCell { cell: u32::MAX, cache: Log1pScaled::new(f64::NAN) }
    }
}

impl LogCell {
    #[inline]
    fn log1p(&mut self, cell: u32, v: f64, scale: &[f64]) -> f64 {
        if self.cell != cell {
            self.cell = cell;
            self.cache.reset(scale[cell as usize]);
        }
        self.cache.get(v)
    }
}

/// log1p of the counts of the dataset folder `dataset` times `scale` (see [`median_scale`]) for the genes
/// `genes`, from one streamed pass over `counts.parquet`: one column per gene, sparse (its non-zero
/// values) unless more than two thirds of the cells have a count or the file lists a gene's cells out of
/// order (then dense, a repeated entry keeping its last value).
pub fn log_normalised_columns(
    dataset: &Path,
    scale: &[f64],
    n_genes: usize,
    genes: &[usize],
) -> Result<Vec<FeatureColumn>> {
    let n = scale.len();
    let mut col_of = vec![usize::MAX; n_genes];
    for (k, &g) in genes.iter().enumerate() {
        col_of[g] = k;
    }
    // Each column is reserved at its gene's number of cells when genes.parquet holds it (the statistics
    // `ingest` writes), so that it is not regrown (copied, and its pages faulted in again) as it fills.
    let sizes = read_gene_stats(dataset, n)?.map(|s| s.n_cells).filter(|c| c.len() == n_genes);
    let reserve = |g: usize| sizes.as_ref().map_or(0, |c| (c[g] as usize).min(n));
    let mut cols: Vec<(Vec<u32>, Vec<f64>, bool)> =
        genes.iter().map(|&g| (Vec::with_capacity(reserve(g)), Vec::with_capacity(reserve(g)), true)).collect();
    let mut cell = LogCell::default();
    stream_counts(dataset, n, n_genes, |b| {
        for (k, (&i, &g)) in b.cells.iter().zip(&b.genes).enumerate() {
            let c = col_of[g as usize];
            if c != usize::MAX {
                let (cells, values, increasing) = &mut cols[c];
                *increasing &= cells.last().is_none_or(|&last| last < i);
                cells.push(i);
                values.push(cell.log1p(i, b.values.get(k), scale));
            }
        }
        Ok(())
    })?;
    Ok(cols
        .into_iter()
        .map(|(cells, values, increasing)| {
            let dense = !increasing || cells.len() * 3 > n * 2;
            let col = FeatureColumn::Sparse { n, cells, values };
            if dense {
                FeatureColumn::Dense(col.to_dense())
            } else {
                col
            }
        })
        .collect())
}

/// Indices of the `n` genes with the largest variance of log1p(counts x `target` / cell total) (ties:
/// lower index) over the dataset's `n_cells` cells, `target` being the median non-zero total: the
/// variances stored in `genes.parquet`, or one streamed pass over `counts.parquet` ([`gene_moments`]).
pub fn top_variable_genes(dataset: &Path, n_cells: usize, target: f64, n_genes: usize, n: usize) -> Result<Vec<usize>> {
    let (_, var) = gene_moments(dataset, n_cells, n_genes, target)?;
    let mut idx: Vec<usize> = (0..n_genes).collect();
    idx.sort_by(|&a, &b| var[b].total_cmp(&var[a]).then(a.cmp(&b)));
    idx.truncate(n);
    idx.sort();
    Ok(idx)
}

fn strings<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> ArrayRef {
    arc(StringArray::from_iter_values(v))
}

/// Cells per batch of `neighborhoods.parquet` (a multiple of 1024 rows for any number of types).
const NEIGHBORHOOD_CHUNK: usize = 1 << 16;

fn kv_types(names: &[String]) -> Vec<(String, String)> {
    vec![(CELL_TYPES_KEY.to_string(), serde_json::to_string(names).unwrap_or_default())]
}

/// The values Moran's I and Geary's C are computed for: the numeric columns of `cells.parquet` given with
/// `--columns`, then the log-normalised counts of the genes given with `--genes` and of the most variable
/// genes (`--top-variable`), from one streamed pass over `counts.parquet`.
fn autocorrelation_features(
    dataset: &Path,
    cells: &CellTable,
    source: &Path,
    opts: &StatsOptions,
) -> Result<Vec<(String, FeatureColumn)>> {
    let mut features: Vec<(String, FeatureColumn)> = Vec::new();
    for c in &opts.columns {
        features.push((c.clone(), FeatureColumn::Dense(numeric_column(cells, c, source)?)));
    }
    if !opts.genes.is_empty() || opts.top_variable.is_some() {
        let genes = read_genes(dataset)?;
        let mut idx: Vec<usize> = Vec::new();
        for name in &opts.genes {
            let k =
                genes.gene_name.iter().position(|g| g == name).or_else(|| genes.gene_id.iter().position(|g| g == name));
            match k {
                Some(k) => idx.push(k),
                None => {
                    return Err(Error::input(
                        dataset.join(tmescope_core::dataset::GENES_FILE),
                        format!("gene `{name}`"),
                        "not found among gene_name or gene_id (from --genes)",
                    ))
                }
            }
        }
        // Counts are streamed (totals from cells.parquet, the median target), keeping only the genes used.
        let totals = cell_totals(dataset, cells.len())?;
        let target = median_target(&totals);
        let scale = median_scale(&totals, target);
        if let Some(nv) = opts.top_variable {
            for g in top_variable_genes(dataset, cells.len(), target, genes.len(), nv)? {
                if !idx.contains(&g) {
                    idx.push(g);
                }
            }
        }
        let cols = log_normalised_columns(dataset, &scale, genes.len(), &idx)?;
        for (k, col) in idx.iter().zip(cols) {
            features.push((genes.gene_name[*k].clone(), col));
        }
    }
    Ok(features)
}

/// Runs the statistics on the dataset folder `dataset` with the graph in `graph_dir`, writing into `out`.
/// `progress(step, done, total)` reports long loops.
pub fn run_stats(
    dataset: &Path,
    graph_dir: &Path,
    opts: &StatsOptions,
    out: &OutputDir,
    prov: &Provenance,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<StatsSummary> {
    // Of the other columns of cells.parquet, only the labels and those given as values are decoded.
    let label_col = opts.labels.clone().unwrap_or_else(|| "cell_type".to_string());
    let used: Vec<&str> = std::iter::once(label_col.as_str())
        .chain(opts.columns.iter().chain(&opts.hotspots).map(String::as_str))
        .collect();
    let (cells, _, _) = timed("stats: read the cells", || read_cells_with(dataset, &used))?;
    let source = dataset.join(CELLS_FILE);
    let edges_path = if graph_dir.is_file() { graph_dir.to_path_buf() } else { graph_dir.join(EDGES_FILE) };
    // The autocorrelation features (a pass over the counts) are read while the graph is.
    let (graph, features) = timed("stats: read the graph and the autocorrelation features", || {
        rayon::join(
            || NeighborGraph::read(&edges_path, &cells),
            || autocorrelation_features(dataset, &cells, &source, opts),
        )
    });
    let (graph, desc) = graph?;
    let features = features?;
    let mut summary = StatsSummary::default();
    summary.lines.push(format!(
        "graph: {} ({} edges over {} cells)",
        desc.get("kind").and_then(|v| v.as_str()).unwrap_or("?"),
        graph.n_edges(),
        graph.n
    ));
    let groups = sample_groups(&cells.sample);
    let subgraphs: Vec<std::borrow::Cow<NeighborGraph>> =
        groups.iter().map(|(_, rows)| subgraph(&graph, rows)).collect();
    let n_cross = graph.n_edges() - subgraphs.iter().map(|g| g.n_edges()).sum::<usize>();
    if n_cross > 0 {
        return Err(Error::file(
            &edges_path,
            format!("{n_cross} edges join different samples: rebuild it with `tmescope graph`"),
        ));
    }

    // Labels: explicit column, default `cell_type` when present, or the dominant deconvolved type.
    let mut proportions = None;
    if let Some(dir) = &opts.proportions {
        proportions = Some(read_proportions(dir, &cells)?);
    }
    let labels: Option<Labels> = match &proportions {
        // An explicit column that is absent is an error unless there are proportions to fall back on.
        _ if cells.get(&label_col).is_some() => Some(encode_labels(&cells, &label_col, &source)?),
        None if opts.labels.is_some() => Some(encode_labels(&cells, &label_col, &source)?),
        Some((names, m)) => {
            let t = names.len();
            let codes = (0..cells.len())
                .map(|i| {
                    let row = &m[i * t..(i + 1) * t];
                    (0..t).fold(0usize, |best, k| if row[k] > row[best] { k } else { best }) as u32
                })
                .collect();
            summary.lines.push("labels: dominant deconvolved cell type of each spot".into());
            Some(Labels { names: names.clone(), codes })
        }
        None => None,
    };

    if let Some(lab) = &labels {
        let t = lab.names.len();
        // The neighbourhood composition is written on one thread while the enrichment permutations run on
        // the others: the Parquet encoding of the long table is serial, the permutations are not, so the
        // two together take about as long as the permutations alone.
        let total_perms = (opts.perms * groups.len()) as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        let (written, enrichments) = rayon::join(
            || {
                timed("stats: write the neighbourhood compositions", || {
                    write_neighborhoods(&graph, &cells, lab, proportions.as_ref(), opts.hops, out, prov)
                })
            },
            || {
                timed("stats: neighbourhood enrichment", || {
                    groups
                        .iter()
                        .zip(&subgraphs)
                        .map(|((_, rows), sg)| {
                            let codes: Vec<u32> = rows.iter().map(|&r| lab.codes[r as usize]).collect();
                            let tick = || {
                                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                                progress("enrichment", d, total_perms);
                            };
                            nhood_enrichment(sg, &codes, t, opts.perms, opts.seed, &tick)
                        })
                        .collect::<Vec<_>>()
                })
            },
        );
        written?;
        summary.files.push(files::NEIGHBORHOODS.into());

        // Enrichment and interaction, per sample.
        let mut e_rows: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        let (mut obs, mut exp, mut sd, mut z, mut p, mut pm, mut zero, mut zs) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut frac_i = vec![];
        let mut n_zero = 0;
        for ((name, _), e) in groups.iter().zip(enrichments) {
            let rn = row_normalise(&e.observed, t);
            for a in 0..t {
                for b in 0..t {
                    let k = a * t + b;
                    e_rows.0.push(name.clone());
                    e_rows.1.push(lab.names[a].clone());
                    e_rows.2.push(lab.names[b].clone());
                    obs.push(e.observed[k]);
                    exp.push(e.expected[k]);
                    sd.push(e.perm_sd[k]);
                    z.push(e.z[k]);
                    p.push(e.p[k]);
                    pm.push(e.perm_mean[k]);
                    zero.push(e.sd_zero[k]);
                    n_zero += e.sd_zero[k] as usize;
                    zs.push(e.z_symmetric[k]);
                    frac_i.push(rn[k]);
                }
            }
        }
        let kv = {
            let mut kv = kv_types(&lab.names);
            kv.push(("tmescope.permutations".into(), opts.perms.to_string()));
            kv.push(("tmescope.seed".into(), opts.seed.to_string()));
            kv
        };
        let batch = batch_with_schema(
            schema::interaction_schema(),
            vec![
                strings(e_rows.0.clone()),
                strings(e_rows.1.clone()),
                strings(e_rows.2.clone()),
                arc(UInt64Array::from(obs.clone())),
                arc(Float64Array::from(frac_i)),
            ],
        )?;
        write_batch(&out.path(files::INTERACTION), &batch, prov, &kv)?;
        summary.files.push(files::INTERACTION.into());
        if opts.perms > 0 {
            let batch = batch_with_schema(
                schema::nhood_enrichment_schema(),
                vec![
                    strings(e_rows.0),
                    strings(e_rows.1),
                    strings(e_rows.2),
                    arc(UInt64Array::from(obs)),
                    arc(Float64Array::from(exp)),
                    arc(Float64Array::from(sd)),
                    arc(Float64Array::from(z)),
                    arc(Float64Array::from(p)),
                    arc(Float64Array::from(pm)),
                    arc(BooleanArray::from(zero)),
                    arc(Float64Array::from(zs)),
                ],
            )?;
            write_batch(&out.path(files::ENRICHMENT), &batch, prov, &kv)?;
            summary.files.push(files::ENRICHMENT.into());
            summary.lines.push(format!(
                "enrichment: {t} cell types, {} permutations (seed {}){}",
                opts.perms,
                opts.seed,
                if n_zero > 0 { format!(", {n_zero} pairs with a constant null (z = 0)") } else { String::new() }
            ));
        }

        // Co-occurrence, per sample.
        if !opts.no_cooccurrence {
            let (mut s_, mut a_, mut b_, mut r_, mut ratio_, mut pairs_) =
                (vec![], vec![], vec![], vec![], vec![], vec![]);
            let mut used_radii = vec![];
            for (name, rows) in &groups {
                let pts: Vec<[f64; 2]> = rows.iter().map(|&r| [cells.x[r as usize], cells.y[r as usize]]).collect();
                let codes: Vec<u32> = rows.iter().map(|&r| lab.codes[r as usize]).collect();
                let radii = radii_for(opts, &pts)?;
                progress("co-occurrence", 0, 1);
                let co =
                    timed(&format!("stats: co-occurrence of sample {name}"), || co_occurrence(&pts, &codes, t, &radii));
                for (ri, &rad) in radii.iter().enumerate() {
                    for c in 0..t {
                        for i in 0..t {
                            s_.push(name.clone());
                            a_.push(lab.names[c].clone());
                            b_.push(lab.names[i].clone());
                            r_.push(rad);
                            ratio_.push(co.ratio[co.index(ri, c, i)]);
                            pairs_.push(co.pairs[co.index(ri, c, i)]);
                        }
                    }
                }
                used_radii = radii;
            }
            let batch = batch_with_schema(
                schema::cooccurrence_schema(),
                vec![
                    strings(s_),
                    strings(a_),
                    strings(b_),
                    arc(Float64Array::from(r_)),
                    arc(Float64Array::from(ratio_)),
                    arc(UInt64Array::from(pairs_)),
                ],
            )?;
            write_batch(&out.path(files::COOCCURRENCE), &batch, prov, &kv_types(&lab.names))?;
            summary.files.push(files::COOCCURRENCE.into());
            summary.lines.push(format!(
                "co-occurrence: {} radii up to {:.4}",
                used_radii.len(),
                used_radii.last().copied().unwrap_or(f64::NAN)
            ));
        }

        // Ripley's L for the requested types.
        if !opts.ripley.is_empty() {
            let (mut s_, mut t_, mut r_, mut k_, mut l_, mut p_, mut n_, mut a_) =
                (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            for ty in &opts.ripley {
                let Some(code) = lab.names.iter().position(|x| x == ty) else {
                    return Err(Error::input(
                        &source,
                        format!("column `{label_col}`"),
                        format!("no cell of type `{ty}` for --ripley (types: {})", lab.names.join(", ")),
                    ));
                };
                for (name, rows) in &groups {
                    let xs: Vec<f64> = rows.iter().map(|&r| cells.x[r as usize]).collect();
                    let ys: Vec<f64> = rows.iter().map(|&r| cells.y[r as usize]).collect();
                    let area = bounding_box_area(&xs, &ys);
                    let all: Vec<[f64; 2]> = xs.iter().zip(&ys).map(|(&a, &b)| [a, b]).collect();
                    let radii = radii_for(opts, &all)?;
                    let pts: Vec<[f64; 2]> = rows
                        .iter()
                        .filter(|&&r| lab.codes[r as usize] as usize == code)
                        .map(|&r| [cells.x[r as usize], cells.y[r as usize]])
                        .collect();
                    let rp =
                        timed(&format!("stats: Ripley's L of {ty} in sample {name}"), || ripley(&pts, area, &radii));
                    for k in 0..radii.len() {
                        s_.push(name.clone());
                        t_.push(ty.clone());
                        r_.push(radii[k]);
                        k_.push(rp.k[k].is_finite().then_some(rp.k[k]));
                        l_.push(rp.l[k].is_finite().then_some(rp.l[k]));
                        p_.push(rp.pairs[k]);
                        n_.push(pts.len() as u64);
                        a_.push(area);
                    }
                }
            }
            let batch = batch_with_schema(
                schema::ripley_schema(),
                vec![
                    strings(s_),
                    strings(t_),
                    arc(Float64Array::from(r_)),
                    arc(Float64Array::from(k_)),
                    arc(Float64Array::from(l_)),
                    arc(UInt64Array::from(p_)),
                    arc(UInt64Array::from(n_)),
                    arc(Float64Array::from(a_)),
                ],
            )?;
            write_batch(&out.path(files::RIPLEY), &batch, prov, &[])?;
            summary.files.push(files::RIPLEY.into());
            summary.lines.push(format!("ripley: {}", opts.ripley.join(", ")));
        }
    } else {
        if !opts.ripley.is_empty() {
            return Err(Error::input(
                &source,
                "column `cell_type`",
                "--ripley needs cell labels (--labels or --proportions)",
            ));
        }
        summary.lines.push(format!("no `{label_col}` column: label statistics skipped (give --labels COLUMN)"));
    }

    // Moran's I and Geary's C for genes and numeric columns.
    if !features.is_empty() {
        let (mut s_, mut f_, mut st_, mut v_, mut e_, mut var_, mut z_, mut p_, mut q_, mut pp_, mut qp_) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for ((name, rows), sg) in groups.iter().zip(&subgraphs) {
            let w = AutocorrWeights::new(sg);
            // A sample holding every cell in order (one-sample datasets) uses the columns as they are.
            let whole = is_every_row(rows, cells.len());
            let xs: Vec<FeatureColumn>;
            let refs: Vec<&FeatureColumn> = if whole {
                features.iter().map(|(_, x)| x).collect()
            } else {
                xs = features.iter().map(|(_, x)| x.select(rows)).collect();
                xs.iter().collect()
            };
            let both = timed(&format!("stats: Moran's I and Geary's C in sample {name}"), || {
                w.test_many(&refs, opts.autocorr_perms, opts.seed, 0)
            });
            for (si, stat) in [Statistic::Moran, Statistic::Geary].into_iter().enumerate() {
                let res: Vec<&Autocorr> = both.iter().map(|b| &b[si]).collect();
                let p: Vec<f64> = res.iter().map(|r| r.p).collect();
                let q = benjamini_hochberg(&p);
                let pp: Vec<f64> = res.iter().map(|r| r.p_perm.unwrap_or(f64::NAN)).collect();
                let qp = benjamini_hochberg(&pp);
                for (k, r) in res.iter().enumerate() {
                    s_.push(name.clone());
                    f_.push(features[k].0.clone());
                    st_.push(stat.name().to_string());
                    let fin = |v: f64| v.is_finite().then_some(v);
                    v_.push(fin(r.value));
                    e_.push(r.expected);
                    var_.push(r.variance);
                    z_.push(fin(r.z));
                    p_.push(fin(r.p));
                    q_.push(fin(q[k]));
                    pp_.push(r.p_perm);
                    qp_.push(fin(qp[k]));
                }
            }
        }
        let batch = batch_with_schema(
            schema::autocorrelation_schema(),
            vec![
                strings(s_),
                strings(f_),
                strings(st_),
                arc(Float64Array::from(v_)),
                arc(Float64Array::from(e_)),
                arc(Float64Array::from(var_)),
                arc(Float64Array::from(z_)),
                arc(Float64Array::from(p_)),
                arc(Float64Array::from(q_)),
                arc(Float64Array::from(pp_)),
                arc(Float64Array::from(qp_)),
            ],
        )?;
        write_batch(&out.path(files::AUTOCORRELATION), &batch, prov, &[])?;
        summary.files.push(files::AUTOCORRELATION.into());
        summary.lines.push(format!("autocorrelation: Moran's I and Geary's C for {} features", features.len()));
    }

    // Getis-Ord Gi* hotspots.
    if !opts.hotspots.is_empty() {
        let (mut c_, mut s_, mut f_, mut v_, mut z_, mut p_, mut q_) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let mut n_hot = 0;
        for col in &opts.hotspots {
            let x = numeric_column(&cells, col, &source)?;
            for ((_, rows), sg) in groups.iter().zip(&subgraphs) {
                let xs: Vec<f64> = rows.iter().map(|&r| x[r as usize]).collect();
                let z = getis_ord_gi_star(sg, &xs);
                let (p, q) = z_to_p_q(&z);
                for (k, &r) in rows.iter().enumerate() {
                    c_.push(cells.cell_id[r as usize].clone());
                    s_.push(cells.sample[r as usize].clone());
                    f_.push(col.clone());
                    v_.push(xs[k]);
                    z_.push(z[k]);
                    p_.push(p[k]);
                    q_.push(q[k]);
                    n_hot += (q[k] < 0.05 && z[k] > 0.0) as usize;
                }
            }
        }
        let batch = batch_with_schema(
            schema::hotspots_schema(),
            vec![
                strings(c_),
                strings(s_),
                strings(f_),
                arc(Float64Array::from(v_)),
                arc(Float64Array::from(z_)),
                arc(Float64Array::from(p_)),
                arc(Float64Array::from(q_)),
            ],
        )?;
        write_batch(&out.path(files::HOTSPOTS), &batch, prov, &[])?;
        summary.files.push(files::HOTSPOTS.into());
        summary.lines.push(format!("hotspots: {} ({n_hot} hot cells at q < 0.05)", opts.hotspots.join(", ")));
    }
    if summary.files.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to compute: {} has no `{label_col}` column; give --labels COLUMN, --proportions DIR, --genes, \
             --top-variable, --columns or --hotspots",
            source.display()
        )));
    }
    Ok(summary)
}

/// Writes `neighborhoods.parquet`: every cell's neighbourhood composition (counts and fractions over
/// `hops` graph steps), from the deconvolved proportions when given, else from the labels. Long form,
/// written in chunks of cells so memory and string offsets stay bounded at any size.
fn write_neighborhoods(
    graph: &NeighborGraph,
    cells: &CellTable,
    lab: &Labels,
    proportions: Option<&(Vec<String>, Vec<f64>)>,
    hops: usize,
    out: &OutputDir,
    prov: &Provenance,
) -> Result<()> {
    let (comp_names, membership): (&[String], std::borrow::Cow<[f64]>) = match proportions {
        Some((names, m)) => (names, m.as_slice().into()),
        None => (&lab.names, label_membership(&lab.codes, lab.names.len()).into()),
    };
    let nt = comp_names.len();
    let counts = neighborhood_counts(graph, &membership, nt, hops);
    let frac = fractions(&counts, nt);
    let n = cells.len();
    let mut sink = ParquetSink::create(
        &out.path(files::NEIGHBORHOODS),
        schema::neighborhoods_schema(),
        prov,
        &kv_types(comp_names),
    )?;
    for a in (0..n).step_by(NEIGHBORHOOD_CHUNK) {
        let b = (a + NEIGHBORHOOD_CHUNK).min(n);
        sink.write(&batch_with_schema(
            schema::neighborhoods_schema(),
            vec![
                repeated_strings(&cells.cell_id[a..b], nt),
                repeated_strings(&cells.sample[a..b], nt),
                cycled_strings(comp_names, b - a),
                arc(Float64Array::from(counts[a * nt..b * nt].to_vec())),
                arc(Float64Array::from(frac[a * nt..b * nt].to_vec())),
            ],
        )?)?;
    }
    sink.finish()
}

/// The most pairs of cells within the largest radius that co-occurrence or Ripley's K may count in one
/// sample (about a minute of work on two cores): more means the radius is far beyond a neighbourhood,
/// usually given in another unit than the coordinates, and would run for hours.
pub const MAX_RADIUS_PAIRS: u64 = 50_000_000_000;

/// The radii of co-occurrence and Ripley's K for the points `pts` of one sample: the explicit list, or
/// `radius_steps` even steps up to `max_radius` (default: 10 x the median nearest-neighbour distance). A
/// usage error when the largest would count more than [`MAX_RADIUS_PAIRS`] pairs
/// ([`radius_edge_estimate`]).
fn radii_for(opts: &StatsOptions, pts: &[[f64; 2]]) -> Result<Vec<f64>> {
    let radii = candidate_radii(opts, pts)?;
    check_radius_pairs(pts, radii.last().copied().unwrap_or(0.0), MAX_RADIUS_PAIRS)?;
    Ok(radii)
}

/// A usage error when more than `budget` pairs of `pts` lie within `largest` (estimated).
fn check_radius_pairs(pts: &[[f64; 2]], largest: f64, budget: u64) -> Result<()> {
    let pairs = radius_edge_estimate(&PointTree::new(pts.to_vec()), largest);
    if pairs > budget {
        return Err(Error::Usage(format!(
            "a largest radius of {largest} would count about {pairs} pairs of cells ({:.0} per cell), more than \
             {budget}: lower --max-radius or --radius-list (they are in the unit of the coordinates: see \
             `tmescope inspect`), or skip co-occurrence with --no-cooccurrence",
            pairs as f64 / pts.len().max(1) as f64
        )));
    }
    Ok(())
}

fn candidate_radii(opts: &StatsOptions, pts: &[[f64; 2]]) -> Result<Vec<f64>> {
    if let Some(list) = &opts.radius_list {
        let mut r = list.clone();
        if r.iter().any(|x| !(x.is_finite() && *x > 0.0)) || r.is_empty() {
            return Err(Error::Usage("--radius-list must hold positive numbers".into()));
        }
        r.sort_by(f64::total_cmp);
        r.dedup();
        return Ok(r);
    }
    if opts.radius_steps == 0 {
        return Err(Error::Usage("--radii must be at least 1".into()));
    }
    let max = match opts.max_radius {
        Some(m) if m.is_finite() && m > 0.0 => m,
        Some(m) => return Err(Error::Usage(format!("--max-radius must be positive, got {m}"))),
        None => {
            let d = 10.0 * median_nn_distance(pts);
            if d.is_finite() && d > 0.0 {
                d
            } else {
                1.0
            }
        }
    };
    Ok(even_radii(max, opts.radius_steps))
}

/// The neighbourhood fractions of `neighborhoods.parquet` as a dense matrix: `(cell ids, samples, cell
/// types, n_cells x n_types fractions row-major)`, rows in file order.
pub fn read_neighborhoods(path: &Path) -> Result<(Vec<String>, Vec<String>, Vec<String>, Vec<f64>)> {
    let t = Table::read(path)?;
    let id = t.utf8("cell_id")?;
    let sample = t.utf8("sample")?;
    let ty = t.utf8("cell_type")?;
    let frac = t.f64("fraction")?;
    let types: Vec<String> = match t.metadata.get(CELL_TYPES_KEY).and_then(|s| serde_json::from_str(s).ok()) {
        Some(v) => v,
        None => {
            let mut v = ty.clone();
            v.sort();
            v.dedup();
            v
        }
    };
    let nt = types.len();
    if nt == 0 || id.len() % nt != 0 {
        return Err(Error::file(path, format!("expected {nt} rows (one per cell type) for every cell")));
    }
    let n = id.len() / nt;
    let mut cells = Vec::with_capacity(n);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        for k in 0..nt {
            if ty[i * nt + k] != types[k] || id[i * nt + k] != id[i * nt] {
                return Err(Error::input(
                    path,
                    format!("row {}", i * nt + k + 1),
                    "rows are not grouped by cell in cell-type order",
                ));
            }
        }
        cells.push(id[i * nt].clone());
        samples.push(sample[i * nt].clone());
    }
    Ok((cells, samples, types, frac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_radius_counting_too_many_pairs_is_refused() {
        let pts: Vec<[f64; 2]> = (0..100).map(|i| [(i % 10) as f64, (i / 10) as f64]).collect();
        // Every ordered pair of the 100 points lies within 1e9.
        let e = check_radius_pairs(&pts, 1e9, 9_899).unwrap_err().to_string();
        for part in ["about 9900 pairs", "99 per cell", "lower --max-radius", "--no-cooccurrence"] {
            assert!(e.contains(part), "{part} not in {e}");
        }
        assert!(check_radius_pairs(&pts, 1e9, 9_900).is_ok());
        assert!(check_radius_pairs(&pts, 1.0, 1_000).is_ok(), "360 pairs within 1");
        assert!(check_radius_pairs(&pts, 1.0, 359).is_err());
    }
}
