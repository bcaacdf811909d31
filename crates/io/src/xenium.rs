//! 10x Genomics Xenium output folders.
//!
//! Two ways in, tried in this order for a folder:
//!
//! 1. **Cell-feature matrix**: `cell_feature_matrix.h5` (read by [`crate::tenx_h5`]) or the
//!    `cell_feature_matrix/` MTX folder (read by [`crate::mtx`]), joined on the cell id with the per-cell
//!    table `cells.parquet` or `cells.csv.gz` (`cell_id`, `x_centroid`, `y_centroid` in micrometres,
//!    `transcript_counts`, `cell_area`, `nucleus_area`, ...). Every matrix cell must appear in the cell
//!    table; cells of the table without a matrix column are dropped (noted).
//! 2. **Transcripts**: `transcripts.parquet` (`transcript_id, cell_id, overlaps_nucleus, feature_name,
//!    x_location, y_location, z_location, qv`), aggregated per cell: only transcripts with
//!    `qv >= min_qv` (default 20, as Xenium Onboard Analysis counts them) and an assigned cell
//!    (`cell_id` not `UNASSIGNED`, `-1`, empty or null) are counted. With a `cells.*` table beside it the
//!    table gives the cells, their order and their centroids; given the transcripts file alone, cells are
//!    listed in order of first appearance and the centroid is the mean position of the cell's transcripts
//!    (all qualities), `z` the mean `z_location`.
//!
//! Control probes and codewords are never genes. Features named `NegControlProbe_*`, `Intergenic*`
//! (and feature type `Genomic Control`) are summed per cell into `control_probe_counts`,
//! `NegControlCodeword_*` into `control_codeword_counts`, and `UnassignedCodeword_*`, `BLANK_*`,
//! `DeprecatedCodeword_*` into `unassigned_codeword_counts`. Any other feature whose type is not
//! `Gene Expression` is dropped unless `all_feature_types` is set.
//!
//! Both integer (XOA 1.0-1.2) and string (`aaabbbcc-1`, XOA >= 1.3) cell ids are accepted and stored as
//! text. The transcripts file is streamed one record batch at a time (it can hold 100M+ rows): memory is
//! 8 bytes per counted transcript plus the per-cell tables; the aggregation is a parallel sort of packed
//! `(cell, gene)` keys, O(n log n) in the number of transcripts.
//!
//! Reference: 10x Genomics, "Xenium Onboard Analysis output files" (cells, transcripts and
//! cell_feature_matrix specifications).

use crate::text_util::{extra_column_name, find_file, infer_column, TextTable};
use crate::ReadOptions;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tmescope_core::counts::{CountValues, CsrCounts};
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable, IdMap};
use tmescope_core::parquet_io::Table;
use tmescope_core::{Error, Result};

/// Names of the per-cell QC columns, in the order of [`ControlKind`].
pub const QC_COLUMNS: [&str; 3] = ["control_probe_counts", "control_codeword_counts", "unassigned_codeword_counts"];

/// What kind of control a Xenium feature is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// Negative control probes and intergenic/genomic control probes.
    Probe = 0,
    /// Negative control codewords.
    Codeword = 1,
    /// Unassigned, blank and deprecated codewords.
    Unassigned = 2,
}

/// Classifies a Xenium feature by its name (and type, when known).
pub fn control_kind(name: &str, feature_type: Option<&str>) -> Option<ControlKind> {
    if name.starts_with("NegControlProbe_") || name.starts_with("Intergenic") {
        return Some(ControlKind::Probe);
    }
    if name.starts_with("NegControlCodeword_") {
        return Some(ControlKind::Codeword);
    }
    if name.starts_with("UnassignedCodeword_") || name.starts_with("BLANK_") || name.starts_with("DeprecatedCodeword_")
    {
        return Some(ControlKind::Unassigned);
    }
    match feature_type.map(|t| t.to_ascii_lowercase()) {
        Some(t)
            if t.contains("negative control probe") || t.contains("genomic control") || t.contains("intergenic") =>
        {
            Some(ControlKind::Probe)
        }
        Some(t) if t.contains("negative control codeword") => Some(ControlKind::Codeword),
        Some(t) if t.contains("unassigned") || t.contains("blank") || t.contains("deprecated") => {
            Some(ControlKind::Unassigned)
        }
        _ => None,
    }
}

/// Whether `path` looks like a Xenium output folder (or its `transcripts.parquet`).
pub fn is_xenium(path: &Path) -> bool {
    if path.is_file() {
        return path.file_name().is_some_and(|n| n == "transcripts.parquet");
    }
    let cells = find_file(path, &["cells.parquet", "cells.csv.gz", "cells.csv"]).is_some();
    let matrix = path.join("cell_feature_matrix.h5").is_file() || path.join("cell_feature_matrix").is_dir();
    (cells && matrix) || path.join("transcripts.parquet").is_file() || path.join("experiment.xenium").is_file()
}

/// Reads a Xenium output folder, or a `transcripts.parquet` file on its own.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    if path.is_file() {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if name.ends_with(".parquet") && name.contains("transcripts") {
            return read_transcripts(path, None, opts);
        }
        if name.starts_with("cells.") {
            if let Some(dir) = path.parent() {
                return read(dir, opts);
            }
        }
        return Err(Error::file(path, "not a Xenium input: expected an output folder or transcripts.parquet"));
    }
    let cells_file = find_file(path, &["cells.parquet", "cells.csv.gz", "cells.csv"]);
    let h5 = path.join("cell_feature_matrix.h5");
    let mtx_dir = path.join("cell_feature_matrix");
    let transcripts = path.join("transcripts.parquet");
    if h5.is_file() || mtx_dir.is_dir() {
        let cells_file = cells_file.ok_or_else(|| {
            Error::file(path, "Xenium folder has a cell_feature_matrix but no cells.parquet or cells.csv.gz")
        })?;
        let mut all = opts.clone();
        all.all_feature_types = true;
        let (matrix, from) = if h5.is_file() {
            (crate::tenx_h5::read(&h5, &all)?, h5)
        } else {
            (crate::mtx::read(&mtx_dir, &all)?, mtx_dir)
        };
        return from_matrix(matrix, &from, &cells_file, opts);
    }
    if transcripts.is_file() {
        return read_transcripts(&transcripts, cells_file.as_deref(), opts);
    }
    Err(Error::file(
        path,
        "not a Xenium output folder: expected cells.parquet/cells.csv.gz with cell_feature_matrix.h5 or cell_feature_matrix/, or transcripts.parquet",
    ))
}

/// The per-cell table of a Xenium folder.
struct CellsFile {
    path: PathBuf,
    ids: Vec<String>,
    x: Vec<f64>,
    y: Vec<f64>,
    extra: Vec<(String, Column)>,
}

/// Reads `cells.parquet` or `cells.csv[.gz]`.
fn read_cells_file(path: &Path) -> Result<CellsFile> {
    let is_parquet = path.extension().is_some_and(|e| e == "parquet");
    let mut cols: Vec<(String, Column)> = Vec::new();
    if is_parquet {
        let t = Table::read(path)?;
        for name in t.column_names() {
            cols.push((name.clone(), arrow_column(&t, &name)?));
        }
    } else {
        let t = TextTable::read(path, true)?;
        let n_fields = t.header.len();
        let values = t.all_columns(n_fields)?;
        for (name, v) in t.header.iter().zip(values) {
            // R's write.csv adds an unnamed row-name column: not data.
            if name.is_empty() {
                continue;
            }
            let col =
                if name == "cell_id" { Column::Text(v.into_iter().map(Some).collect()) } else { infer_column(&v) };
            cols.push((name.clone(), col));
        }
    }
    let take = |cols: &mut Vec<(String, Column)>, name: &str| -> Option<Column> {
        cols.iter().position(|(n, _)| n == name).map(|i| cols.remove(i).1)
    };
    let id_col = take(&mut cols, "cell_id")
        .ok_or_else(|| Error::input(path, "column `cell_id`", "required column is missing"))?;
    let ids: Vec<String> = id_col.as_text().into_iter().map(|s| s.unwrap_or_default()).collect();
    if let Some(i) = ids.iter().position(|s| s.is_empty()) {
        return Err(Error::input(path, format!("row {}, column `cell_id`", i + 1), "empty cell id"));
    }
    crate::text_util::check_unique(path, &ids, |i| format!("row {}", i + 1))?;
    let coord = |cols: &mut Vec<(String, Column)>, name: &str| -> Result<Vec<f64>> {
        let c = take(cols, name)
            .ok_or_else(|| Error::input(path, format!("column `{name}`"), "required column is missing"))?;
        let v = c.as_f64();
        if let Some(i) = v.iter().position(|x| !x.is_some_and(f64::is_finite)) {
            return Err(Error::input(
                path,
                format!("row {} (cell `{}`), column `{name}`", i + 1, ids[i]),
                "expected a finite coordinate, found an empty or non-numeric value",
            ));
        }
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    };
    let x = coord(&mut cols, "x_centroid")?;
    let y = coord(&mut cols, "y_centroid")?;
    let extra = cols.into_iter().map(|(n, c)| (extra_column_name(&n), c)).collect();
    Ok(CellsFile { path: path.to_path_buf(), ids, x, y, extra })
}

/// Converts an Arrow column of a Parquet table into a cell-table column.
pub(crate) fn arrow_column(t: &Table, name: &str) -> Result<Column> {
    let col = t.column(name)?;
    Ok(match col.data_type() {
        DataType::Boolean => Column::Bool(col.as_boolean().iter().collect()),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            Column::Float(t.f64(name)?.into_iter().map(|x| (!x.is_nan()).then_some(x)).collect())
        }
        dt if dt.is_integer() => Column::Int(t.i64_opt(name)?),
        _ => Column::Text(t.utf8_opt(name)?),
    })
}

/// Splits a matrix's features into genes and control QC sums; returns the gene-only dataset pieces.
fn split_controls(ds: Dataset, opts: &ReadOptions) -> (GeneTable, CsrCounts, Vec<Option<Vec<f64>>>, Vec<String>) {
    let mut kind = Vec::with_capacity(ds.genes.len());
    let mut keep = Vec::new();
    let mut dropped = 0usize;
    for i in 0..ds.genes.len() {
        let k = control_kind(&ds.genes.gene_name[i], Some(&ds.genes.feature_type[i]))
            .or_else(|| control_kind(&ds.genes.gene_id[i], None));
        kind.push(k);
        if k.is_none() {
            if ds.genes.feature_type[i] == "Gene Expression" || opts.all_feature_types {
                keep.push(i);
            } else {
                dropped += 1;
            }
        }
    }
    let present: Vec<bool> = (0..3).map(|g| kind.iter().any(|k| k.map(|k| k as usize) == Some(g))).collect();
    // Each cell's sums of the three kinds of controls (cells in parallel).
    let per_cell: Vec<[f64; 3]> = (0..ds.counts.n_rows)
        .into_par_iter()
        .map(|r| {
            let mut s = [0.0f64; 3];
            for (c, v) in ds.counts.row_iter(r) {
                if let Some(k) = kind[c as usize] {
                    s[k as usize] += v;
                }
            }
            s
        })
        .collect();
    let sums: Vec<Vec<f64>> = (0..3).map(|k| per_cell.iter().map(|s| s[k]).collect()).collect();
    let mut notes = Vec::new();
    let n_controls = kind.iter().filter(|k| k.is_some()).count();
    if n_controls > 0 {
        notes.push(format!(
            "{n_controls} control probe/codeword features moved out of the genes into per-cell QC columns"
        ));
    }
    if dropped > 0 {
        notes.push(format!("dropped {dropped} features that are not `Gene Expression` nor known controls"));
    }
    let mut new_index = vec![None; ds.genes.len()];
    for (n, &i) in keep.iter().enumerate() {
        new_index[i] = Some(n as u32);
    }
    let counts = if keep.len() == ds.genes.len() { ds.counts } else { ds.counts.select_cols(&new_index, keep.len()) };
    let qc = sums.into_iter().zip(present).map(|(s, p)| p.then_some(s)).collect();
    (ds.genes.select(&keep), counts, qc, notes)
}

/// Joins a cell-feature matrix with the cell table.
fn from_matrix(matrix: Dataset, matrix_path: &Path, cells_path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let cells = read_cells_file(cells_path)?;
    let barcodes = matrix.cells.cell_id.clone();
    let (genes, counts, qc, mut notes) = split_controls(matrix, opts);
    let index: IdMap<&str, usize> = cells.ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut rows = Vec::with_capacity(barcodes.len());
    let mut missing = Vec::new();
    for b in &barcodes {
        match index.get(b.as_str()) {
            Some(&i) => rows.push(i),
            None => missing.push(b.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::input(
            cells_path,
            "column `cell_id`",
            format!(
                "{} of the {} cells of {} are not in this table (e.g. `{}`); the table has {} cells",
                missing.len(),
                barcodes.len(),
                matrix_path.display(),
                missing[0],
                cells.ids.len()
            ),
        ));
    }
    if rows.len() < cells.ids.len() {
        notes.push(format!(
            "{} cells of {} have no column in the cell-feature matrix and were dropped",
            cells.ids.len() - rows.len(),
            cells.path.display()
        ));
    }
    let mut table = CellTable {
        cell_id: barcodes,
        sample: vec![opts.sample.clone(); rows.len()],
        x: rows.iter().map(|&i| cells.x[i]).collect(),
        y: rows.iter().map(|&i| cells.y[i]).collect(),
        z: None,
        extra: cells.extra.iter().map(|(n, c)| (n.clone(), c.select(&rows))).collect(),
    };
    for (name, sums) in QC_COLUMNS.iter().zip(qc) {
        if let Some(s) = sums {
            table.set(name, crate::text_util::qc_column(&s));
        }
    }
    Ok(Dataset { cells: table, genes, counts, platform: "xenium".into(), coordinate_unit: "micrometre".into(), notes })
}

/// Cell ids as they are stored in a transcripts batch.
enum CellIds<'a> {
    Int(&'a arrow::array::PrimitiveArray<Int64Type>),
    Text(&'a arrow::array::StringArray),
}

/// Streams `transcripts.parquet` and aggregates counts per cell.
fn read_transcripts(path: &Path, cells_file: Option<&Path>, opts: &ReadOptions) -> Result<Dataset> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;
    let schema = builder.schema().clone();
    let want = ["cell_id", "feature_name", "qv", "x_location", "y_location", "z_location"];
    let mut roots = Vec::new();
    for name in want {
        match schema.index_of(name) {
            Ok(i) => roots.push(i),
            Err(_) if name == "z_location" => {}
            Err(_) => {
                return Err(Error::input(
                    path,
                    format!("column `{name}`"),
                    "required column of transcripts.parquet is missing",
                ))
            }
        }
    }
    let has_z = schema.index_of("z_location").is_ok();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(1 << 16)
        .build()
        .map_err(|e| Error::file(path, format!("not a readable Parquet file ({e})")))?;

    // Cells given by a cells table keep its order; otherwise cells are numbered by first appearance.
    let given = cells_file.map(read_cells_file).transpose()?;
    let mut cell_index: HashMap<String, u32> = HashMap::new();
    let mut int_index: HashMap<i64, u32> = HashMap::new();
    let mut cell_ids: Vec<String> = Vec::new();
    if let Some(c) = &given {
        for (i, id) in c.ids.iter().enumerate() {
            cell_index.insert(id.clone(), i as u32);
            if let Ok(v) = id.parse::<i64>() {
                int_index.insert(v, i as u32);
            }
        }
        cell_ids = c.ids.clone();
    }
    let mut feature_index: HashMap<String, u32> = HashMap::new();
    let mut feature_names: Vec<String> = Vec::new();
    let mut feature_kind: Vec<Option<ControlKind>> = Vec::new();
    let mut keys: Vec<u64> = Vec::new();
    let mut qc: Vec<[u32; 3]> = Vec::new();
    let mut pos: Vec<[f64; 4]> = Vec::new(); // sum x, sum y, sum z, n
    let (mut n_rows, mut n_low_qv, mut n_unassigned) = (0u64, 0u64, 0u64);
    let mut n_unknown_cell = 0u64;
    let mut unknown_example = None;

    for batch in reader {
        let batch = batch.map_err(|e| Error::file(path, format!("corrupt Parquet data ({e})")))?;
        let col = |name: &str| batch.column_by_name(name).cloned();
        let cast = |name: &str, dt: &DataType| -> Result<arrow::array::ArrayRef> {
            let c = col(name).ok_or_else(|| Error::input(path, format!("column `{name}`"), "missing"))?;
            arrow::compute::cast(&c, dt).map_err(|e| {
                Error::input(path, format!("column `{name}`"), format!("expected {dt}, found {} ({e})", c.data_type()))
            })
        };
        let id_raw = col("cell_id").ok_or_else(|| Error::input(path, "column `cell_id`", "missing"))?;
        let id_arr = if id_raw.data_type().is_integer() {
            cast("cell_id", &DataType::Int64)?
        } else {
            cast("cell_id", &DataType::Utf8)?
        };
        let ids = if id_raw.data_type().is_integer() {
            CellIds::Int(id_arr.as_primitive::<Int64Type>())
        } else {
            CellIds::Text(id_arr.as_string::<i32>())
        };
        let feat_arr = cast("feature_name", &DataType::Utf8)?;
        let feats = feat_arr.as_string::<i32>();
        let qv_arr = cast("qv", &DataType::Float64)?;
        let qvs = qv_arr.as_primitive::<Float64Type>();
        let x_arr = cast("x_location", &DataType::Float64)?;
        let xs = x_arr.as_primitive::<Float64Type>();
        let y_arr = cast("y_location", &DataType::Float64)?;
        let ys = y_arr.as_primitive::<Float64Type>();
        let z_arr = if has_z { Some(cast("z_location", &DataType::Float64)?) } else { None };
        let zs = z_arr.as_ref().map(|a| a.as_primitive::<Float64Type>());
        for r in 0..batch.num_rows() {
            n_rows += 1;
            // Resolve the cell; unassigned transcripts are skipped.
            let cell = match &ids {
                CellIds::Int(a) => {
                    if a.is_null(r) || a.value(r) < 0 {
                        n_unassigned += 1;
                        continue;
                    }
                    let v = a.value(r);
                    match int_index.get(&v) {
                        Some(&c) => Some(c),
                        None if given.is_none() => {
                            let c = cell_ids.len() as u32;
                            cell_ids.push(v.to_string());
                            int_index.insert(v, c);
                            Some(c)
                        }
                        None => {
                            unknown_example.get_or_insert_with(|| v.to_string());
                            None
                        }
                    }
                }
                CellIds::Text(a) => {
                    let s = if a.is_null(r) { "" } else { a.value(r) };
                    if s.is_empty() || s == "UNASSIGNED" || s == "-1" {
                        n_unassigned += 1;
                        continue;
                    }
                    match cell_index.get(s) {
                        Some(&c) => Some(c),
                        None if given.is_none() => {
                            let c = cell_ids.len() as u32;
                            cell_ids.push(s.to_string());
                            cell_index.insert(s.to_string(), c);
                            Some(c)
                        }
                        None => {
                            unknown_example.get_or_insert_with(|| s.to_string());
                            None
                        }
                    }
                }
            };
            let Some(cell) = cell else {
                n_unknown_cell += 1;
                continue;
            };
            let c = cell as usize;
            if c >= pos.len() {
                pos.resize(c + 1, [0.0; 4]);
                qc.resize(c + 1, [0; 3]);
            }
            if !xs.is_null(r) && !ys.is_null(r) {
                let p = &mut pos[c];
                p[0] += xs.value(r);
                p[1] += ys.value(r);
                p[2] += zs.map(|z| if z.is_null(r) { 0.0 } else { z.value(r) }).unwrap_or(0.0);
                p[3] += 1.0;
            }
            let q = if qvs.is_null(r) { f64::NAN } else { qvs.value(r) };
            if q.is_nan() || q < opts.min_qv {
                n_low_qv += 1;
                continue;
            }
            if feats.is_null(r) {
                return Err(Error::input(path, format!("row {n_rows}, column `feature_name`"), "empty feature name"));
            }
            let name = feats.value(r);
            let g = match feature_index.get(name) {
                Some(&g) => g,
                None => {
                    let g = feature_names.len() as u32;
                    feature_index.insert(name.to_string(), g);
                    feature_names.push(name.to_string());
                    feature_kind.push(control_kind(name, None));
                    g
                }
            };
            match feature_kind[g as usize] {
                Some(k) => qc[c][k as usize] += 1,
                None => keys.push(((cell as u64) << 32) | g as u64),
            }
        }
    }
    if n_unknown_cell > 0 {
        return Err(Error::input(
            path,
            "column `cell_id`",
            format!(
                "{n_unknown_cell} transcripts belong to cells that are not in {} (e.g. `{}`)",
                cells_file.map(|p| p.display().to_string()).unwrap_or_default(),
                unknown_example.unwrap_or_default()
            ),
        ));
    }
    let n_cells = cell_ids.len();
    if n_cells == 0 {
        return Err(Error::file(
            path,
            format!("no transcript is assigned to a cell ({n_rows} rows, {n_unassigned} unassigned)"),
        ));
    }
    pos.resize(n_cells, [0.0; 4]);
    qc.resize(n_cells, [0; 3]);

    // Genes in name order, so that the output does not depend on the order of the file.
    let mut gene_order: Vec<u32> =
        (0..feature_names.len() as u32).filter(|&g| feature_kind[g as usize].is_none()).collect();
    gene_order.sort_by(|&a, &b| feature_names[a as usize].cmp(&feature_names[b as usize]));
    let mut remap = vec![u32::MAX; feature_names.len()];
    for (n, &g) in gene_order.iter().enumerate() {
        remap[g as usize] = n as u32;
    }
    keys.par_iter_mut().for_each(|k| *k = (*k & !0xffff_ffff) | remap[(*k & 0xffff_ffff) as usize] as u64);
    keys.par_sort_unstable();
    let counts = counts_from_sorted_keys(&keys, n_cells, gene_order.len());
    drop(keys);
    let names: Vec<String> = gene_order.iter().map(|&g| feature_names[g as usize].clone()).collect();
    let genes = GeneTable::from_names(names);

    let mut notes = vec![format!(
        "aggregated {n_rows} transcripts: {n_unassigned} not assigned to a cell and {n_low_qv} with qv < {} were not counted",
        opts.min_qv
    )];
    let n_controls = feature_kind.iter().filter(|k| k.is_some()).count();
    if n_controls > 0 {
        notes.push(format!("{n_controls} control probe/codeword features counted into per-cell QC columns, not genes"));
    }
    let mut table = match given {
        Some(c) => CellTable {
            cell_id: c.ids,
            sample: vec![opts.sample.clone(); n_cells],
            x: c.x,
            y: c.y,
            z: None,
            extra: c.extra,
        },
        None => {
            if let Some(i) = pos.iter().position(|p| p[3] == 0.0) {
                return Err(Error::input(
                    path,
                    format!("cell `{}`", cell_ids[i]),
                    "no transcript of this cell has a position (x_location/y_location are null)",
                ));
            }
            CellTable {
                sample: vec![opts.sample.clone(); n_cells],
                x: pos.iter().map(|p| p[0] / p[3]).collect(),
                y: pos.iter().map(|p| p[1] / p[3]).collect(),
                z: has_z.then(|| pos.iter().map(|p| p[2] / p[3]).collect()),
                cell_id: cell_ids,
                extra: vec![],
            }
        }
    };
    for (k, name) in QC_COLUMNS.iter().enumerate() {
        table.set(name, Column::Int(qc.iter().map(|q| Some(q[k] as i64)).collect()));
    }
    Ok(Dataset { cells: table, genes, counts, platform: "xenium".into(), coordinate_unit: "micrometre".into(), notes })
}

/// Run-length encodes sorted `(cell << 32) | gene` keys into CSR counts.
fn counts_from_sorted_keys(keys: &[u64], n_cells: usize, n_genes: usize) -> CsrCounts {
    let mut indptr = vec![0u64; n_cells + 1];
    let mut indices = Vec::new();
    let mut values: Vec<u32> = Vec::new();
    let mut k = 0usize;
    while k < keys.len() {
        let key = keys[k];
        let mut e = k + 1;
        while e < keys.len() && keys[e] == key {
            e += 1;
        }
        let cell = (key >> 32) as usize;
        indptr[cell + 1] += 1;
        indices.push((key & 0xffff_ffff) as u32);
        values.push((e - k) as u32);
        k = e;
    }
    for i in 0..n_cells {
        indptr[i + 1] += indptr[i];
    }
    CsrCounts { n_rows: n_cells, n_cols: n_genes, indptr, indices, values: CountValues::U32(values) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_classified() {
        assert_eq!(control_kind("NegControlProbe_00042", None), Some(ControlKind::Probe));
        assert_eq!(control_kind("NegControlCodeword_0500", None), Some(ControlKind::Codeword));
        assert_eq!(control_kind("BLANK_0006", None), Some(ControlKind::Unassigned));
        assert_eq!(control_kind("UnassignedCodeword_0001", None), Some(ControlKind::Unassigned));
        assert_eq!(control_kind("IntergenicRegion_1", None), Some(ControlKind::Probe));
        assert_eq!(control_kind("EPCAM", Some("Gene Expression")), None);
        assert_eq!(control_kind("x", Some("Negative Control Codeword")), Some(ControlKind::Codeword));
    }

    #[test]
    fn keys_become_counts() {
        let m = counts_from_sorted_keys(&[1, 1, 3, (2u64 << 32) | 1], 3, 4);
        assert_eq!(m.indptr, vec![0, 2, 2, 3]);
        assert_eq!(m.indices, vec![1, 3, 1]);
        assert_eq!(m.values, CountValues::U32(vec![2, 1, 1]));
    }
}
