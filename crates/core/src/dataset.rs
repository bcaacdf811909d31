//! A dataset folder: one sample as ingest writes it (`cells.parquet`, `genes.parquet`, `counts.parquet`).
//!
//! See `docs/formats.md` for the exact schemas. A single-cell reference is the same folder with a
//! `cell_type` column in `cells.parquet`.

use crate::counts::{entry_rows, CountValues, CsrCounts};
use crate::gene_stats::{GeneStats, GENE_STATS_KEY};
use crate::output::OutputDir;
use crate::parquet_io::{arc, ParquetSink, Table, ROW_GROUP_ROWS};
use crate::provenance::Provenance;
use crate::schema::{self, COORDINATE_UNIT_KEY, PLATFORM_KEY};
use crate::{Error, Result};
use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use std::collections::HashMap;

/// A hash map keyed by ids read from the user's files (cell barcodes, gene names): foldhash's fixed-seed
/// hasher, several times faster than std's SipHash on short strings (the duplicate checks of a
/// million-cell section hash every id). Nothing iterates these maps, so their order never reaches output.
pub type IdMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
use std::path::Path;
use std::sync::Arc;

/// File name of the per-cell table.
pub const CELLS_FILE: &str = "cells.parquet";
/// File name of the gene table.
pub const GENES_FILE: &str = "genes.parquet";
/// File name of the sparse counts.
pub const COUNTS_FILE: &str = "counts.parquet";

/// The fixed columns of `cells.parquet`; every other column is an extra one ([`CellTable::extra`]).
pub const FIXED_COLUMNS: [&str; 5] = ["cell_id", "sample", "x", "y", "z"];

/// The most distinct values a label column may hold ([`CellTable::label_codes`]): far more than any cell
/// type annotation or clustering, far fewer than the cells of a section.
pub const MAX_LABELS: usize = 1000;

/// A label column coded by [`CellTable::label_codes`].
#[derive(Debug, Clone, PartialEq)]
pub struct LabelCodes {
    /// The distinct labels, sorted.
    pub names: Vec<String>,
    /// Each row's label as an index into `names`; `None` for a missing, empty or blank label.
    pub codes: Vec<Option<u32>>,
}

/// An extra per-cell column (platform columns and user metadata).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Integers.
    Int(Vec<Option<i64>>),
    /// Floating-point numbers.
    Float(Vec<Option<f64>>),
    /// Text (categoricals are stored as text).
    Text(Vec<Option<String>>),
    /// Booleans.
    Bool(Vec<Option<bool>>),
}

impl Column {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the given rows in the given order.
    pub fn select(&self, rows: &[usize]) -> Column {
        match self {
            Column::Int(v) => Column::Int(rows.iter().map(|&i| v[i]).collect()),
            Column::Float(v) => Column::Float(rows.iter().map(|&i| v[i]).collect()),
            Column::Text(v) => Column::Text(rows.iter().map(|&i| v[i].clone()).collect()),
            Column::Bool(v) => Column::Bool(rows.iter().map(|&i| v[i]).collect()),
        }
    }

    /// A text column holding `value` in every one of `n` rows.
    pub fn constant_text(value: &str, n: usize) -> Column {
        Column::Text(vec![Some(value.to_string()); n])
    }

    /// The values as text (numbers formatted), for labels.
    pub fn as_text(&self) -> Vec<Option<String>> {
        match self {
            Column::Int(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
            Column::Float(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
            Column::Text(v) => v.clone(),
            Column::Bool(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
        }
    }

    /// The values as numbers (text parsed, booleans as 0/1); `None` where not numeric.
    pub fn as_f64(&self) -> Vec<Option<f64>> {
        match self {
            Column::Int(v) => v.iter().map(|x| x.map(|x| x as f64)).collect(),
            Column::Float(v) => v.clone(),
            Column::Text(v) => v.iter().map(|x| x.as_ref().and_then(|s| s.parse().ok())).collect(),
            Column::Bool(v) => v.iter().map(|x| x.map(|b| b as u8 as f64)).collect(),
        }
    }

    fn to_arrow(&self) -> (DataType, ArrayRef) {
        match self {
            Column::Int(v) => (DataType::Int64, arc(Int64Array::from(v.clone()))),
            Column::Float(v) => (DataType::Float64, arc(Float64Array::from(v.clone()))),
            Column::Text(v) => (DataType::Utf8, arc(StringArray::from(v.clone()))),
            Column::Bool(v) => (DataType::Boolean, arc(BooleanArray::from(v.clone()))),
        }
    }

    fn from_table(t: &Table, name: &str) -> Result<Column> {
        let col = t.column(name)?;
        Ok(match col.data_type() {
            DataType::Boolean => {
                let a = col.as_any().downcast_ref::<BooleanArray>().expect("boolean array");
                Column::Bool(a.iter().collect())
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                Column::Float(t.f64(name)?.into_iter().map(|x| (!x.is_nan()).then_some(x)).collect())
            }
            dt if dt.is_integer() => Column::Int(t.i64_opt(name)?),
            _ => Column::Text(t.utf8_opt(name)?),
        })
    }
}

/// Per-cell (or spot, or bin) table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellTable {
    /// Cell, spot or bin identifiers, unique within the sample.
    pub cell_id: Vec<String>,
    /// Sample name of each row.
    pub sample: Vec<String>,
    /// X coordinate (micrometres where the platform gives a scale); NaN when the data has no positions.
    pub x: Vec<f64>,
    /// Y coordinate; NaN when the data has no positions.
    pub y: Vec<f64>,
    /// Optional z coordinate.
    pub z: Option<Vec<f64>>,
    /// Platform columns and metadata, in output order.
    pub extra: Vec<(String, Column)>,
}

impl CellTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.cell_id.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.cell_id.is_empty()
    }

    /// The row of each cell by `(sample, cell id)`: ids are unique only within a sample (Visium barcodes
    /// repeat across samples), so tables of per-cell results are matched on both.
    pub fn row_index(&self) -> std::collections::HashMap<(&str, &str), usize> {
        self.sample.iter().zip(&self.cell_id).enumerate().map(|(i, (s, c))| ((s.as_str(), c.as_str()), i)).collect()
    }

    /// The extra column `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Column> {
        self.extra.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The extra column `name` coded as labels (cell types, clusters): its distinct values, sorted, and each
    /// row's index into them, `None` for a missing, empty or blank value. An input error naming `source` (this
    /// table's file) when the column is absent (saying `needed_for`, what the stage needs labels for, and
    /// listing the columns there are), is one of the fixed columns (ids, samples, coordinates), or holds more
    /// than [`MAX_LABELS`] distinct values: a measurement or an identifier, not labels, which would make
    /// every per-label-pair statistic quadratic in the number of cells.
    pub fn label_codes(&self, name: &str, source: &Path, needed_for: &str) -> Result<LabelCodes> {
        let field = format!("column `{name}`");
        let col = match self.get(name) {
            Some(col) => col,
            None if FIXED_COLUMNS.contains(&name) => {
                return Err(Error::input(
                    source,
                    field,
                    format!("`{name}` is one of the fixed columns ({}), not a label column", FIXED_COLUMNS.join(", ")),
                ))
            }
            None => {
                let names: Vec<&str> = self.extra.iter().map(|(n, _)| n.as_str()).collect();
                let there = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                return Err(Error::input(source, field, format!("missing: {needed_for} (columns there: {there})")));
            }
        };
        let text = col.as_text();
        let mut names: Vec<&str> = text.iter().flatten().map(String::as_str).filter(|s| !s.trim().is_empty()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() > MAX_LABELS {
            return Err(Error::input(
                source,
                field,
                format!(
                    "{} distinct values: expected labels such as cell types or clusters, at most {MAX_LABELS} \
                     distinct values (is it a measurement or an identifier?)",
                    names.len()
                ),
            ));
        }
        let index: HashMap<&str, u32> = names.iter().enumerate().map(|(k, s)| (*s, k as u32)).collect();
        let codes = text.iter().map(|t| t.as_deref().and_then(|s| index.get(s).copied())).collect();
        Ok(LabelCodes { names: names.into_iter().map(str::to_string).collect(), codes })
    }

    /// Adds or replaces the extra column `name`.
    pub fn set(&mut self, name: &str, column: Column) {
        match self.extra.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = column,
            None => self.extra.push((name.to_string(), column)),
        }
    }

    /// Keeps the given rows in the given order.
    pub fn select(&self, rows: &[usize]) -> CellTable {
        CellTable {
            cell_id: rows.iter().map(|&i| self.cell_id[i].clone()).collect(),
            sample: rows.iter().map(|&i| self.sample[i].clone()).collect(),
            x: rows.iter().map(|&i| self.x[i]).collect(),
            y: rows.iter().map(|&i| self.y[i]).collect(),
            z: self.z.as_ref().map(|z| rows.iter().map(|&i| z[i]).collect()),
            extra: self.extra.iter().map(|(n, c)| (n.clone(), c.select(rows))).collect(),
        }
    }

    /// Whether the table carries positions.
    pub fn has_coordinates(&self) -> bool {
        self.x.iter().zip(&self.y).any(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// Gene (feature) table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneTable {
    /// Stable feature ids (Ensembl ids where the platform gives them, else the name).
    pub gene_id: Vec<String>,
    /// Gene symbols.
    pub gene_name: Vec<String>,
    /// Feature type (`Gene Expression` for genes).
    pub feature_type: Vec<String>,
}

impl GeneTable {
    /// Number of genes.
    pub fn len(&self) -> usize {
        self.gene_id.len()
    }

    /// Whether there are no genes.
    pub fn is_empty(&self) -> bool {
        self.gene_id.is_empty()
    }

    /// Genes from names only (id = name, type Gene Expression).
    pub fn from_names(names: Vec<String>) -> Self {
        let n = names.len();
        GeneTable { gene_id: names.clone(), gene_name: names, feature_type: vec!["Gene Expression".into(); n] }
    }

    /// Keeps the given genes in the given order.
    pub fn select(&self, idx: &[usize]) -> GeneTable {
        GeneTable {
            gene_id: idx.iter().map(|&i| self.gene_id[i].clone()).collect(),
            gene_name: idx.iter().map(|&i| self.gene_name[i].clone()).collect(),
            feature_type: idx.iter().map(|&i| self.feature_type[i].clone()).collect(),
        }
    }
}

/// One sample: cells, genes and counts, plus what platform it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Per-cell table.
    pub cells: CellTable,
    /// Gene table.
    pub genes: GeneTable,
    /// Counts, cells x genes.
    pub counts: CsrCounts,
    /// Platform name (`visium`, `xenium`, ...).
    pub platform: String,
    /// Unit of `x`/`y`: `micrometre`, `pixel` or `none`.
    pub coordinate_unit: String,
    /// Notes for the provenance (what was dropped and why).
    pub notes: Vec<String>,
}

impl Dataset {
    /// Checks the invariants of the data model; `source` names the input in errors.
    pub fn validate(&self, source: &Path) -> Result<()> {
        let n = self.cells.len();
        if n == 0 {
            return Err(Error::file(source, "no cells, spots or bins: expected at least one"));
        }
        if self.genes.is_empty() {
            return Err(Error::file(source, "no genes: expected at least one feature"));
        }
        if self.counts.n_rows != n || self.counts.n_cols != self.genes.len() {
            return Err(Error::file(
                source,
                format!(
                    "count matrix is {} x {} but there are {} cells and {} genes",
                    self.counts.n_rows,
                    self.counts.n_cols,
                    n,
                    self.genes.len()
                ),
            ));
        }
        for (name, len) in [("sample", self.cells.sample.len()), ("x", self.cells.x.len()), ("y", self.cells.y.len())] {
            if len != n {
                return Err(Error::Internal(format!("cell column {name} has {len} rows, expected {n}")));
            }
        }
        let mut seen: IdMap<(&str, &str), usize> = IdMap::with_capacity_and_hasher(n, Default::default());
        for (i, (id, s)) in self.cells.cell_id.iter().zip(&self.cells.sample).enumerate() {
            if let Some(first) = seen.insert((s.as_str(), id.as_str()), i) {
                return Err(Error::input(
                    source,
                    format!("cell id `{id}`"),
                    format!(
                        "duplicate cell/barcode id (rows {} and {}): ids must be unique within a sample",
                        first + 1,
                        i + 1
                    ),
                ));
            }
        }
        if self.coordinate_unit != "none" {
            for i in 0..n {
                let (x, y) = (self.cells.x[i], self.cells.y[i]);
                if !x.is_finite() || !y.is_finite() {
                    return Err(Error::input(
                        source,
                        format!("coordinates of `{}`", self.cells.cell_id[i]),
                        format!("expected finite x and y, found ({x}, {y})"),
                    ));
                }
            }
        }
        for (name, col) in &self.cells.extra {
            if col.len() != n {
                return Err(Error::Internal(format!("cell column {name} has {} rows, expected {n}", col.len())));
            }
        }
        if let CountValues::F32(v) = &self.counts.values {
            if let Some(bad) = v.iter().find(|x| !x.is_finite() || **x < 0.0) {
                return Err(Error::file(source, format!("counts must be finite and non-negative, found {bad}")));
            }
        }
        Ok(())
    }

    /// Writes the dataset folder `dir` atomically, with `provenance` in each file's metadata.
    pub fn write(&self, dir: &Path, provenance: &Provenance) -> Result<()> {
        let out = OutputDir::create(dir)?;
        self.write_into(&out, provenance)?;
        out.commit()?;
        Ok(())
    }

    /// Writes the three files into an [`OutputDir`] being built (for stages that add more files).
    pub fn write_into(&self, out: &OutputDir, provenance: &Provenance) -> Result<()> {
        let mut prov = provenance.clone();
        prov.notes.extend(self.notes.iter().cloned());
        let extra_kv = vec![
            (PLATFORM_KEY.to_string(), self.platform.clone()),
            (COORDINATE_UNIT_KEY.to_string(), self.coordinate_unit.clone()),
        ];
        self.write_cells(&out.path(CELLS_FILE), &prov, &extra_kv)?;
        // The per-gene statistics are computed on one thread while the counts are encoded.
        let (written, stats) = rayon::join(
            || self.write_counts(&out.path(COUNTS_FILE), &prov, &extra_kv),
            || GeneStats::of_counts(&self.counts),
        );
        written?;
        self.write_genes(&out.path(GENES_FILE), &stats, &prov, &extra_kv)
    }

    fn write_cells(&self, path: &Path, prov: &Provenance, kv: &[(String, String)]) -> Result<()> {
        let c = &self.cells;
        let opt = |v: &[f64]| Float64Array::from(v.iter().map(|x| x.is_finite().then_some(*x)).collect::<Vec<_>>());
        let mut fields = schema::cells_fields();
        let mut cols: Vec<ArrayRef> = vec![
            arc(StringArray::from_iter_values(&c.cell_id)),
            arc(StringArray::from_iter_values(&c.sample)),
            arc(opt(&c.x)),
            arc(opt(&c.y)),
            arc(Float64Array::from(self.counts.row_totals())),
            arc(UInt32Array::from(self.counts.row_nnz())),
        ];
        if let Some(z) = &c.z {
            fields.push(Field::new("z", DataType::Float64, true));
            cols.push(arc(opt(z)));
        }
        for (name, col) in &c.extra {
            let (dt, arr) = col.to_arrow();
            fields.push(Field::new(name, dt, true));
            cols.push(arr);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
            .map_err(|e| Error::Internal(format!("cells table: {e}")))?;
        crate::parquet_io::write_batch(path, &batch, prov, kv)
    }

    fn write_genes(&self, path: &Path, stats: &GeneStats, prov: &Provenance, kv: &[(String, String)]) -> Result<()> {
        let g = &self.genes;
        let batch = RecordBatch::try_new(
            schema::genes_schema(),
            vec![
                arc(UInt32Array::from_iter_values(0..g.len() as u32)),
                arc(StringArray::from_iter_values(&g.gene_id)),
                arc(StringArray::from_iter_values(&g.gene_name)),
                arc(StringArray::from_iter_values(&g.feature_type)),
                arc(UInt32Array::from(stats.n_cells.clone())),
                arc(Float64Array::from(stats.total_counts.clone())),
                arc(Float64Array::from(stats.mean_log1p_cp10k.clone())),
                arc(Float64Array::from(stats.var_log1p_cp10k.clone())),
                arc(Float64Array::from(stats.mean_log1p_median.clone())),
                arc(Float64Array::from(stats.var_log1p_median.clone())),
            ],
        )
        .map_err(|e| Error::Internal(format!("genes table: {e}")))?;
        let mut kv = kv.to_vec();
        kv.push((GENE_STATS_KEY.to_string(), stats.describe()));
        crate::parquet_io::write_batch(path, &batch, prov, &kv)
    }

    fn write_counts(&self, path: &Path, prov: &Provenance, kv: &[(String, String)]) -> Result<()> {
        let m = &self.counts;
        let integer = m.values.is_integer();
        let schema = schema::counts_schema(integer);
        let mut sink = ParquetSink::create(path, schema.clone(), prov, kv)?;
        let nnz = m.nnz();
        sink.write_row_groups(nnz.div_ceil(ROW_GROUP_ROWS), |g| {
            let entries = g * ROW_GROUP_ROWS..((g + 1) * ROW_GROUP_ROWS).min(nnz);
            let vals: ArrayRef = match &m.values {
                CountValues::U32(v) => arc(UInt32Array::from(v[entries.clone()].to_vec())),
                CountValues::F32(v) => arc(Float32Array::from(v[entries.clone()].to_vec())),
            };
            let cells = arc(UInt32Array::from(entry_rows(&m.indptr, entries.clone())));
            RecordBatch::try_new(schema.clone(), vec![cells, arc(UInt32Array::from(m.indices[entries].to_vec())), vals])
                .map_err(|e| Error::Internal(format!("counts table: {e}")))
        })?;
        sink.finish()
    }

    /// Reads a dataset folder.
    pub fn read(dir: &Path) -> Result<Dataset> {
        let (cells, platform, coordinate_unit) = read_cells(dir)?;
        let genes = read_genes(dir)?;
        let counts = read_counts(dir, cells.len(), genes.len())?;
        Ok(Dataset { cells, genes, counts, platform, coordinate_unit, notes: vec![] })
    }
}

/// The path of file `name` (e.g. [`CELLS_FILE`]) of the dataset folder `dir`; an input error saying a
/// dataset folder was expected when it is missing.
pub fn dataset_file(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    require_file(dir, name)
}

fn require_file(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let p = dir.join(name);
    if !p.is_file() {
        return Err(Error::file(
            &p,
            format!("missing: expected a tmescope dataset folder (from `tmescope ingest`) holding {CELLS_FILE}, {GENES_FILE} and {COUNTS_FILE}"),
        ));
    }
    Ok(p)
}

/// Reads `cells.parquet` of a dataset folder, returning the table, platform and coordinate unit.
pub fn read_cells(dir: &Path) -> Result<(CellTable, String, String)> {
    cell_table(Table::read(&require_file(dir, CELLS_FILE)?)?)
}

/// Reads only the ids, samples and positions of `cells.parquet` (`cell_id`, `sample`, `x`, `y`, and `z`
/// when present), without decoding the other columns: `extra` is empty. For stages that need no other
/// column (graph, score).
pub fn read_cell_positions(dir: &Path) -> Result<(CellTable, String, String)> {
    read_cells_with(dir, &[])
}

/// Reads the ids, samples and positions of `cells.parquet`, as [`read_cell_positions`] does, and of its
/// other columns only those named in `columns` that it has (into `extra`), without decoding the rest.
pub fn read_cells_with(dir: &Path, columns: &[&str]) -> Result<(CellTable, String, String)> {
    let mut names = vec!["cell_id", "sample", "x", "y", "z"];
    names.extend(columns);
    cell_table(Table::read_columns(&require_file(dir, CELLS_FILE)?, &names)?)
}

fn cell_table(t: Table) -> Result<(CellTable, String, String)> {
    let fixed = ["cell_id", "sample", "x", "y", "total_counts", "n_genes", "z"];
    // A string per cell in each of the two columns: converted on two threads.
    let (cell_id, sample) = rayon::join(|| t.utf8("cell_id"), || t.utf8("sample"));
    let mut cells = CellTable {
        cell_id: cell_id?,
        sample: sample?,
        x: t.f64("x")?,
        y: t.f64("y")?,
        z: if t.has("z") { Some(t.f64("z")?) } else { None },
        extra: vec![],
    };
    for name in t.column_names() {
        if !fixed.contains(&name.as_str()) {
            cells.extra.push((name.clone(), Column::from_table(&t, &name)?));
        }
    }
    let platform = t.metadata.get(PLATFORM_KEY).cloned().unwrap_or_else(|| "unknown".into());
    let unit = t.metadata.get(COORDINATE_UNIT_KEY).cloned().unwrap_or_else(|| "micrometre".into());
    Ok((cells, platform, unit))
}

/// Reads `genes.parquet` of a dataset folder.
pub fn read_genes(dir: &Path) -> Result<GeneTable> {
    let t = Table::read(&require_file(dir, GENES_FILE)?)?;
    let idx = t.u32("gene_index")?;
    if idx.iter().enumerate().any(|(i, &g)| g as usize != i) {
        return Err(Error::input(&t.path, "column `gene_index`", "expected 0, 1, 2, ... in order"));
    }
    Ok(GeneTable {
        gene_id: t.utf8("gene_id")?,
        gene_name: t.utf8("gene_name")?,
        feature_type: t.utf8("feature_type")?,
    })
}

/// One batch of `counts.parquet` entries (parallel columns), as streamed by [`stream_counts`].
#[derive(Debug, Clone)]
pub struct CountBatch {
    /// Cell (row) index of each entry (the decoded column, not copied).
    pub cells: ScalarBuffer<u32>,
    /// Gene (column) index of each entry (the decoded column, not copied).
    pub genes: ScalarBuffer<u32>,
    /// The values (`u32` when the file holds integers).
    pub values: CountValues,
}

/// An input error when an index of `column` of `counts.parquet` is not below `n`, the row count of `table`.
fn check_indices(path: &Path, column: &str, indices: &[u32], n: usize, table: &str) -> Result<()> {
    match crate::counts::first_out_of_range(indices, n) {
        Some(i) => Err(Error::input(path, format!("column `{column}`"), format!("index {i} but {table} has {n} rows"))),
        None => Ok(()),
    }
}

/// Streams `counts.parquet` of a dataset folder batch by batch (memory bounded by one row group), checking
/// every index against the table sizes, and calls `f` on each batch.
pub fn stream_counts(
    dir: &Path,
    n_cells: usize,
    n_genes: usize,
    mut f: impl FnMut(&CountBatch) -> Result<()>,
) -> Result<()> {
    let path = require_file(dir, COUNTS_FILE)?;
    Table::stream(&path, &COUNT_COLUMNS, |t| f(&count_batch(t, &path, n_cells, n_genes)?))
}

/// The columns of `counts.parquet` read by [`stream_counts`].
const COUNT_COLUMNS: [&str; 3] = ["cell_index", "gene_index", "count"];

/// One batch of `counts.parquet` (read from `path`) with its indices checked against the table sizes.
fn count_batch(t: &Table, path: &Path, n_cells: usize, n_genes: usize) -> Result<CountBatch> {
    let cells = t.u32_buffer("cell_index")?;
    let genes = t.u32_buffer("gene_index")?;
    check_indices(path, "cell_index", &cells, n_cells, CELLS_FILE)?;
    check_indices(path, "gene_index", &genes, n_genes, GENES_FILE)?;
    let values = if t.column("count")?.data_type().is_integer() {
        CountValues::U32(t.u32("count")?)
    } else {
        CountValues::F32(t.f64("count")?.into_iter().map(|x| x as f32).collect())
    };
    Ok(CountBatch { cells, genes, values })
}

/// Every cell's total count: the `total_counts` column of `cells.parquet` (written by ingest as the row
/// sums of `counts.parquet`; reading it skips a pass over the counts) when it holds one finite,
/// non-negative value per cell, else summed from `counts.parquet` by [`count_totals`].
pub fn cell_totals(dir: &Path, n_cells: usize) -> Result<Vec<f64>> {
    let path = require_file(dir, CELLS_FILE)?;
    let mut totals = Vec::with_capacity(n_cells);
    let read = Table::stream(&path, &["total_counts"], |t| {
        totals.extend(t.f64("total_counts")?);
        Ok(())
    });
    if read.is_ok() && totals.len() == n_cells && totals.iter().all(|v| v.is_finite() && *v >= 0.0) {
        return Ok(totals);
    }
    count_totals(dir, n_cells)
}

/// Every cell's total count, from a pass over the cell and count columns of `counts.parquet` only.
pub fn count_totals(dir: &Path, n_cells: usize) -> Result<Vec<f64>> {
    let path = require_file(dir, COUNTS_FILE)?;
    let mut totals = vec![0.0; n_cells];
    Table::stream(&path, &["cell_index", "count"], |t| {
        let cells = t.u32("cell_index")?;
        check_indices(&path, "cell_index", &cells, n_cells, CELLS_FILE)?;
        for (&r, v) in cells.iter().zip(t.f64("count")?) {
            totals[r as usize] += v;
        }
        Ok(())
    })?;
    Ok(totals)
}

/// Complete rows of `counts.parquet` (their non-zero entries), as handed out by [`stream_count_blocks`].
#[derive(Debug, Clone, Copy)]
pub struct RowBlock<'a> {
    /// Cell index of each row, increasing.
    pub rows: &'a [u32],
    /// Row `k`'s entries are `offsets[k]..offsets[k + 1]` of `genes` and `values`.
    pub offsets: &'a [usize],
    /// Gene index of each entry, increasing within a row.
    pub genes: &'a [u32],
    /// Value of each entry.
    pub values: &'a [f64],
}

impl RowBlock<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the block has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row `k`: `(cell, genes, values)`.
    pub fn row(&self, k: usize) -> (usize, &[u32], &[f64]) {
        let (a, b) = (self.offsets[k], self.offsets[k + 1]);
        (self.rows[k] as usize, &self.genes[a..b], &self.values[a..b])
    }
}

/// Streams the counts in blocks of complete rows (one block per batch of the file; a row split between
/// batches is handed out whole with the next block), in increasing cell order, for every cell with
/// entries, holding at most three batches at a time (one decoded, one assembled, one handed out); zero
/// values are dropped. The file must be sorted by `cell_index` then `gene_index` without duplicates, as
/// the format requires (an input error otherwise). The rows are assembled in the reader thread, while `f`
/// works on the block before.
pub fn stream_count_blocks(
    dir: &Path,
    n_cells: usize,
    n_genes: usize,
    mut f: impl FnMut(RowBlock<'_>) -> Result<()>,
) -> Result<()> {
    let path = require_file(dir, COUNTS_FILE)?;
    let mut rows = RowAssembler::default();
    let mut hand_out = |b: OwnedRows| if b.rows.is_empty() { Ok(()) } else { f(b.view()) };
    let assemble = |t: Table| rows.push(&count_batch(&t, &path, n_cells, n_genes)?, &path);
    Table::stream_prepared(&path, &COUNT_COLUMNS, assemble, &mut hand_out)?;
    rows.finish().map_or(Ok(()), hand_out)
}

/// Complete rows, owned (see [`RowBlock`]).
#[derive(Debug, Default)]
struct OwnedRows {
    rows: Vec<u32>,
    offsets: Vec<usize>,
    genes: Vec<u32>,
    values: Vec<f64>,
}

impl OwnedRows {
    fn view(&self) -> RowBlock<'_> {
        RowBlock { rows: &self.rows, offsets: &self.offsets, genes: &self.genes, values: &self.values }
    }
}

/// Turns the batches of `counts.parquet` into complete rows, keeping the last row open until the next
/// batch shows where it ends.
#[derive(Debug)]
struct RowAssembler {
    /// The rows seen and not yet handed out; the last one is open while `offsets.len() == rows.len()`.
    open: OwnedRows,
    /// The last entry seen (cell, gene), zero or not.
    last: Option<(u32, u32)>,
    /// Where the rows of the current batch start.
    starts: Vec<usize>,
}

impl Default for RowAssembler {
    fn default() -> Self {
        RowAssembler { open: OwnedRows { offsets: vec![0], ..OwnedRows::default() }, last: None, starts: vec![] }
    }
}

impl RowAssembler {
    /// Adds a batch; returns the rows it completes (none when the batch does not end the open row).
    fn push(&mut self, b: &CountBatch, counts_path: &Path) -> Result<OwnedRows> {
        // One tight pass checks the order and finds the row starts; the error is built after it.
        let starts = &mut self.starts;
        starts.clear();
        // Before the first entry the previous cell is -1: a new row that nothing precedes.
        let (mut pr, mut pg) = self.last.map_or((-1, 0), |(r, g)| (r as i64, g));
        let mut bad = false;
        for (k, (&r, &g)) in b.cells.iter().zip(b.genes.iter()).enumerate() {
            let r = r as i64;
            if r != pr {
                starts.push(k);
            }
            bad |= r < pr || (r == pr && g <= pg);
            (pr, pg) = (r, g);
        }
        if bad {
            return Err(order_error(counts_path, self.last, &b.cells, &b.genes));
        }
        if let (Some(&r), Some(&g)) = (b.cells.last(), b.genes.last()) {
            self.last = Some((r, g));
        }
        // Zero values are dropped: each row start moves to the number of entries kept before it.
        let o = &mut self.open;
        let base = o.genes.len();
        let mut open_row = |at: usize, r: u32| {
            if !o.rows.is_empty() {
                o.offsets.push(at);
            }
            o.rows.push(r);
        };
        if b.values.has_zero() {
            let mut next = starts.iter().peekable();
            for (k, &g) in b.genes.iter().enumerate() {
                if next.next_if(|&&s| s == k).is_some() {
                    open_row(o.genes.len(), b.cells[k]);
                }
                let v = b.values.get(k);
                if v != 0.0 {
                    o.genes.push(g);
                    o.values.push(v);
                }
            }
        } else {
            for &k in starts.iter() {
                open_row(base + k, b.cells[k]);
            }
            o.genes.extend_from_slice(&b.genes);
            b.values.extend_f64(&mut o.values);
        }
        // Hand out the closed rows; keep the open one.
        let closed = o.offsets.len() - 1;
        if closed == 0 {
            return Ok(OwnedRows::default());
        }
        let end = o.offsets[closed];
        let open = OwnedRows {
            rows: o.rows.split_off(closed),
            offsets: vec![0],
            genes: o.genes.split_off(end),
            values: o.values.split_off(end),
        };
        Ok(std::mem::replace(o, open))
    }

    /// The last row, when there is one.
    fn finish(mut self) -> Option<OwnedRows> {
        let o = &mut self.open;
        if o.rows.is_empty() {
            return None;
        }
        o.offsets.push(o.genes.len());
        Some(self.open)
    }
}

/// The input error for the first entry of a batch (`cells`, `genes`) out of order, given the entry before
/// the batch.
fn order_error(path: &Path, last: Option<(u32, u32)>, cells: &[u32], genes: &[u32]) -> Error {
    let mut prev = last;
    for (&r, &g) in cells.iter().zip(genes) {
        if let Some((pr, pg)) = prev {
            if r < pr {
                return Error::input(
                    path,
                    "column `cell_index`",
                    format!("expected rows sorted by cell_index (as ingest writes them); found {r} after {pr}"),
                );
            }
            if r == pr && g <= pg {
                return Error::input(
                    path,
                    "column `gene_index`",
                    format!(
                        "expected each cell's genes sorted and unique (as ingest writes them); found gene {g} after \
                         {pg} in cell {r}"
                    ),
                );
            }
        }
        prev = Some((r, g));
    }
    Error::Internal("counts out of order, but no entry out of order found".into())
}

/// Streams the counts cell by cell: `f(cell, genes, values)` with the cell's non-zero entries for every
/// cell with entries, in increasing cell order (see [`stream_count_blocks`]).
pub fn stream_count_rows(
    dir: &Path,
    n_cells: usize,
    n_genes: usize,
    mut f: impl FnMut(usize, &[u32], &[f64]) -> Result<()>,
) -> Result<()> {
    stream_count_blocks(dir, n_cells, n_genes, |b| {
        for k in 0..b.len() {
            let (i, g, v) = b.row(k);
            f(i, g, v)?;
        }
        Ok(())
    })
}

/// Reads `counts.parquet` of a dataset folder into CSR form, checking indices against the table sizes.
pub fn read_counts(dir: &Path, n_cells: usize, n_genes: usize) -> Result<CsrCounts> {
    read_counts_of(dir, n_cells, n_genes, None).map(|(m, _)| m)
}

/// Reads the entries of the genes marked in `keep` (all genes when `None`) into CSR form (gene indices
/// unchanged), streaming the file so that only the kept entries are held, and returns them with every
/// cell's total over all genes (for normalisation).
pub fn read_counts_of(
    dir: &Path,
    n_cells: usize,
    n_genes: usize,
    keep: Option<&[bool]>,
) -> Result<(CsrCounts, Vec<f64>)> {
    let mut totals = vec![0.0; n_cells];
    let mut counts_per_row = vec![0u64; n_cells + 1];
    let mut indices: Vec<u32> = Vec::new();
    let mut ints: Vec<u32> = Vec::new();
    let mut floats: Vec<f32> = Vec::new();
    let mut integer = true;
    // Row of each kept entry, held only once the file turns out not to be sorted by cell.
    let mut rows: Option<Vec<u32>> = None;
    let mut last_row = 0u32;
    stream_counts(dir, n_cells, n_genes, |b| {
        integer = b.values.is_integer();
        for (k, (&r, &g)) in b.cells.iter().zip(&b.genes).enumerate() {
            let v = b.values.get(k);
            totals[r as usize] += v;
            if !keep.is_none_or(|m| m[g as usize]) {
                continue;
            }
            if rows.is_none() && r < last_row {
                // Unsorted: the rows so far were sorted, so they follow from the per-row counts.
                let mut prefix = Vec::with_capacity(indices.len());
                for (row, &c) in counts_per_row[1..].iter().enumerate() {
                    prefix.extend(std::iter::repeat_n(row as u32, c as usize));
                }
                rows = Some(prefix);
            }
            last_row = r;
            counts_per_row[r as usize + 1] += 1;
            if let Some(rows) = rows.as_mut() {
                rows.push(r);
            }
            indices.push(g);
            match &b.values {
                CountValues::U32(x) => ints.push(x[k]),
                CountValues::F32(x) => floats.push(x[k]),
            }
        }
        Ok(())
    })?;
    let values = if integer { CountValues::U32(ints) } else { CountValues::F32(floats) };
    let m = match rows {
        None => {
            let mut indptr = counts_per_row;
            for i in 0..n_cells {
                indptr[i + 1] += indptr[i];
            }
            let mut m = CsrCounts { n_rows: n_cells, n_cols: n_genes, indptr, indices, values };
            m.canonicalize()?;
            m
        }
        Some(rows) => {
            let trip = rows.iter().zip(&indices).enumerate().map(|(k, (&r, &c))| (r, c, values.get(k))).collect();
            CsrCounts::from_triplets(n_cells, n_genes, trip, integer)?
        }
    };
    Ok((m, totals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            cells: CellTable {
                cell_id: vec!["a".into(), "b".into()],
                sample: vec!["s".into(), "s".into()],
                x: vec![0.0, 1.0],
                y: vec![2.0, 3.0],
                z: None,
                extra: vec![("cell_type".into(), Column::Text(vec![Some("T".into()), None]))],
            },
            genes: GeneTable::from_names(vec!["G1".into(), "G2".into(), "G3".into()]),
            counts: CsrCounts::from_triplets(2, 3, vec![(0, 0, 1.0), (1, 2, 5.0)], true).unwrap(),
            platform: "table".into(),
            coordinate_unit: "micrometre".into(),
            notes: vec![],
        }
    }

    #[test]
    fn label_codes_sort_skip_blanks_and_refuse_non_labels() {
        let mut cells = tiny().cells;
        let text = |v: &[Option<&str>]| Column::Text(v.iter().map(|s| s.map(str::to_string)).collect());
        cells.cell_id = (0..5).map(|i| format!("c{i}")).collect();
        cells.sample = vec!["s".into(); 5];
        cells.set("cell_type", text(&[Some("T"), None, Some("B"), Some(" "), Some("T")]));
        cells.set("cluster", Column::Int(vec![Some(2), Some(10), Some(2), None, Some(1)]));
        let src = Path::new("cells.parquet");
        let coded = cells.label_codes("cell_type", src, "x").unwrap();
        assert_eq!(coded.names, ["B", "T"]);
        assert_eq!(coded.codes, [Some(1), None, Some(0), None, Some(1)]);
        let coded = cells.label_codes("cluster", src, "x").unwrap();
        assert_eq!(coded.names, ["1", "10", "2"]);
        assert_eq!(coded.codes, [Some(2), Some(1), Some(2), None, Some(0)]);
        let e = cells.label_codes("leiden", src, "niches need labels").unwrap_err().to_string();
        for part in
            ["cells.parquet", "column `leiden`", "missing: niches need labels", "columns there: cell_type, cluster"]
        {
            assert!(e.contains(part), "{part} not in {e}");
        }
        let e = cells.label_codes("x", src, "").unwrap_err().to_string();
        assert!(e.contains("column `x`") && e.contains("fixed columns"), "{e}");
        // One distinct value per cell (a measurement) is refused past MAX_LABELS.
        let n = MAX_LABELS + 1;
        cells.cell_id = (0..n).map(|i| format!("c{i}")).collect();
        cells.sample = vec!["s".into(); n];
        cells.extra = vec![("area".into(), Column::Float((0..n).map(|i| Some(i as f64 / 7.0)).collect()))];
        let e = cells.label_codes("area", src, "").unwrap_err();
        assert!(e.is_user_error() && e.to_string().contains("1001 distinct values"), "{e}");
        cells.extra[0].1 = Column::Float((0..n).map(|i| Some((i % MAX_LABELS) as f64)).collect());
        assert_eq!(cells.label_codes("area", src, "").unwrap().names.len(), MAX_LABELS);
    }

    #[test]
    fn missing_dataset_files_are_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let e = dataset_file(tmp.path(), CELLS_FILE).unwrap_err().to_string();
        assert!(e.contains("cells.parquet") && e.contains("dataset folder"), "{e}");
    }

    #[test]
    fn positions_skip_the_other_columns() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let d = tiny();
        d.write(&dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
        let (c, platform, unit) = read_cell_positions(&dir).unwrap();
        assert_eq!((c.cell_id, c.sample, c.x, c.y, c.z), (d.cells.cell_id, d.cells.sample, d.cells.x, d.cells.y, None));
        assert!(c.extra.is_empty(), "cell_type is not read");
        assert_eq!((platform.as_str(), unit.as_str()), ("table", "micrometre"));
        // A cells.parquet without `y` is an error naming the column.
        let t = Table::read(&dir.join(CELLS_FILE)).unwrap();
        let keep: Vec<usize> =
            (0..t.batch.num_columns()).filter(|&k| t.batch.schema().field(k).name() != "y").collect();
        let b = t.batch.project(&keep).unwrap();
        crate::parquet_io::write_batch(&dir.join(CELLS_FILE), &b, &Provenance::new("t", serde_json::json!({})), &[])
            .unwrap();
        let e = read_cell_positions(&dir).unwrap_err().to_string();
        assert!(e.contains("cells.parquet") && e.contains("`y`"), "{e}");
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tiny();
        d.validate(Path::new("x")).unwrap();
        let dir = tmp.path().join("ds");
        d.write(&dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
        let back = Dataset::read(&dir).unwrap();
        assert_eq!(back.cells, d.cells);
        assert_eq!(back.genes, d.genes);
        assert_eq!(back.counts, d.counts);
        assert_eq!(back.platform, "table");
        // The integer columns of counts.parquet are delta-encoded; a float `count` column and the other
        // files keep the defaults.
        let encodings = |path: &Path| -> Vec<String> {
            crate::parquet_io::first_row_group_columns(path)
                .iter()
                .map(|c| {
                    let delta = c.encodings().any(|e| e == parquet::basic::Encoding::DELTA_BINARY_PACKED);
                    format!("{}:{}", c.column_path().string(), if delta { "delta" } else { "other" })
                })
                .collect()
        };
        assert_eq!(encodings(&dir.join(COUNTS_FILE)), ["cell_index:delta", "gene_index:delta", "count:delta"]);
        assert!(encodings(&dir.join(GENES_FILE)).iter().all(|e| e.ends_with(":other")));
        let mut float = tiny();
        float.counts = CsrCounts::from_triplets(2, 3, vec![(0, 0, 1.5), (1, 2, 5.0)], false).unwrap();
        let dir = tmp.path().join("float");
        float.write(&dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
        assert_eq!(encodings(&dir.join(COUNTS_FILE)), ["cell_index:delta", "gene_index:delta", "count:other"]);
        assert_eq!(Dataset::read(&dir).unwrap().counts, float.counts);
    }

    #[test]
    fn totals_come_from_cells_or_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        tiny().write(&dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
        assert_eq!(cell_totals(&dir, 2).unwrap(), vec![1.0, 5.0]);
        assert_eq!(count_totals(&dir, 2).unwrap(), vec![1.0, 5.0]);
        // Without a usable `total_counts` column (here: one row short) the counts are summed.
        let mut d = tiny();
        d.cells.cell_id.push("c".into());
        d.cells.sample.push("s".into());
        d.cells.x.push(4.0);
        d.cells.y.push(5.0);
        if let Column::Text(v) = &mut d.cells.extra[0].1 {
            v.push(None);
        }
        d.counts = CsrCounts::from_triplets(3, 3, vec![(0, 0, 1.0), (1, 2, 5.0), (2, 1, 2.0)], true).unwrap();
        let dir3 = tmp.path().join("ds3");
        d.write(&dir3, &Provenance::new("test", serde_json::json!({}))).unwrap();
        std::fs::copy(dir.join(CELLS_FILE), dir3.join(CELLS_FILE)).unwrap();
        assert_eq!(cell_totals(&dir3, 3).unwrap(), vec![1.0, 5.0, 2.0]);
    }

    #[test]
    fn row_blocks_hand_out_whole_rows_across_batches() {
        // 1,100 cells x 1,000 genes: the file's first batch (1,048,576 entries) ends inside cell 1,048.
        let (nc, ng) = (1100usize, 1000usize);
        let trip: Vec<(u32, u32, f64)> =
            (0..nc).flat_map(|c| (0..ng).map(move |g| (c as u32, g as u32, ((c * 7 + g) % 5) as f64))).collect();
        let mut d = tiny();
        d.cells.cell_id = (0..nc).map(|i| format!("c{i}")).collect();
        d.cells.sample = vec!["s".into(); nc];
        d.cells.x = (0..nc).map(|i| i as f64).collect();
        d.cells.y = vec![0.0; nc];
        d.cells.extra.clear();
        d.genes = GeneTable::from_names((0..ng).map(|g| format!("G{g}")).collect());
        d.counts = CsrCounts::from_triplets(nc, ng, trip, true).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        d.write(&dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
        let (mut blocks, mut seen) = (0, vec![]);
        stream_count_blocks(&dir, nc, ng, |b| {
            blocks += 1;
            for k in 0..b.len() {
                let (i, g, v) = b.row(k);
                let want: Vec<u32> = (0..ng as u32).filter(|&g| (i * 7 + g as usize) % 5 != 0).collect();
                assert_eq!(g, want.as_slice(), "cell {i}");
                assert!(v.iter().zip(g).all(|(&v, &g)| v == ((i * 7 + g as usize) % 5) as f64));
                seen.push(i);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (0..nc).collect::<Vec<_>>());
        assert_eq!(blocks, 2);
    }

    /// Writes `counts.parquet` of `dir` from raw entries (in the given order, zeros kept), two batches of
    /// the file when there are more than [`ROW_GROUP_ROWS`] entries.
    fn write_raw_counts(dir: &Path, entries: &[(u32, u32, u32)]) {
        let col = |f: fn(&(u32, u32, u32)) -> u32| arc(UInt32Array::from(entries.iter().map(f).collect::<Vec<_>>()));
        let batch =
            RecordBatch::try_new(schema::counts_schema(true), vec![col(|e| e.0), col(|e| e.1), col(|e| e.2)]).unwrap();
        let prov = Provenance::new("test", serde_json::json!({}));
        crate::parquet_io::write_batch(&dir.join(COUNTS_FILE), &batch, &prov, &[]).unwrap();
    }

    #[test]
    fn row_blocks_drop_zeros_and_refuse_unsorted_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ds");
        let mut d = tiny();
        d.cells.cell_id = vec!["a".into(), "b".into(), "c".into()];
        d.cells.sample = vec!["s".into(); 3];
        (d.cells.x, d.cells.y) = (vec![0.0; 3], vec![0.0; 3]);
        d.cells.extra.clear();
        d.counts = CsrCounts::from_triplets(3, 3, vec![], true).unwrap();
        d.write(&dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
        type Row = (usize, Vec<u32>, Vec<f64>);
        let rows = |dir: &Path| -> Result<Vec<Row>> {
            let mut out = vec![];
            stream_count_rows(dir, 3, 3, |i, g, v| {
                out.push((i, g.to_vec(), v.to_vec()));
                Ok(())
            })?;
            Ok(out)
        };
        // Cell 1's entries are all zero: it is handed out empty; the zeros of cell 2 are dropped.
        write_raw_counts(&dir, &[(0, 1, 4), (1, 0, 0), (2, 0, 0), (2, 1, 3), (2, 2, 0)]);
        let got = rows(&dir).unwrap();
        assert_eq!(got, vec![(0, vec![1], vec![4.0]), (1, vec![], vec![]), (2, vec![1], vec![3.0])]);
        // A gene repeated after a zero entry, and cells out of order, are input errors naming the column.
        write_raw_counts(&dir, &[(0, 1, 0), (0, 1, 2)]);
        let e = rows(&dir).unwrap_err().to_string();
        assert!(e.contains("gene_index") && e.contains("found gene 1 after 1 in cell 0"), "{e}");
        write_raw_counts(&dir, &[(1, 0, 1), (0, 2, 1)]);
        let e = rows(&dir).unwrap_err().to_string();
        assert!(e.contains("cell_index") && e.contains("found 0 after 1"), "{e}");
        // Indices beyond the tables.
        write_raw_counts(&dir, &[(0, 0, 1), (5, 1, 1)]);
        let e = rows(&dir).unwrap_err().to_string();
        assert!(e.contains("cell_index") && e.contains("index 5 but cells.parquet has 3 rows"), "{e}");
        write_raw_counts(&dir, &[(0, 3, 1)]);
        let e = rows(&dir).unwrap_err().to_string();
        assert!(e.contains("gene_index") && e.contains("index 3 but genes.parquet has 3 rows"), "{e}");
        // Across the boundary between two batches of the file: a row goes on in the next batch, and a
        // gene repeated there is found.
        let m = (ROW_GROUP_ROWS / 2) as u32;
        let mut big: Vec<(u32, u32, u32)> = (0..m).flat_map(|c| [(c, 0, 1), (c, 1, 1)]).collect();
        big.push((m - 1, 2, 5));
        write_raw_counts(&dir, &big);
        let (mut n_rows, mut last) = (0, (0, vec![], vec![]));
        stream_count_rows(&dir, m as usize, 3, |i, g, v| {
            n_rows += 1;
            last = (i, g.to_vec(), v.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!((n_rows, last), (m, (m as usize - 1, vec![0, 1, 2], vec![1.0, 1.0, 5.0])));
        big.last_mut().unwrap().1 = 1;
        write_raw_counts(&dir, &big);
        let e = stream_count_rows(&dir, m as usize, 3, |_, _, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains(&format!("found gene 1 after 1 in cell {}", m - 1)), "{e}");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let mut d = tiny();
        d.cells.cell_id[1] = "a".into();
        let e = d.validate(Path::new("in.csv")).unwrap_err().to_string();
        assert!(e.contains("in.csv") && e.contains("duplicate"), "{e}");
    }

    #[test]
    fn nan_coordinates_are_rejected() {
        let mut d = tiny();
        d.cells.x[0] = f64::NAN;
        assert!(d.validate(Path::new("in.csv")).unwrap_err().to_string().contains("finite"));
    }
}
