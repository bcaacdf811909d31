//! Generic count tables: CSV, TSV or Parquet (gzipped text too), with coordinates and cell metadata.
//!
//! The counts table has one row per cell and one column per gene, or with `genes_in_rows` one row per
//! gene and one column per cell (the layout R and Smart-seq2 pipelines write, e.g. RCTD's
//! `MappedDGEForR.csv` or an inferCNV matrix). The id column is `id_column` (default: the first column);
//! R's `write.table` header without a name for the row-name column is accepted.
//!
//! Coordinates come from the same table (cells x genes only) or from a separate `coords` file joined on
//! the cell id. The x/y columns are `x_column`/`y_column`, else the first present of `x`/`y`,
//! `x_centroid`/`y_centroid`, `center_x`/`center_y`, `xcoord`/`ycoord`, `imagecol`/`imagerow`,
//! `x_location`/`y_location`, `spatial_x`/`spatial_y`, `pxl_col_in_fullres`/`pxl_row_in_fullres` (case
//! ignored). Vendor micrometre columns (`x_centroid`, `center_x`, `x_location`) are recorded as
//! micrometres; anything else as `pixel` (as given: a table carries no scale). Without any coordinates
//! the unit is `none`.
//!
//! Cell metadata comes from an `obs` file joined on the cell id: its id column is `id_column` when the
//! file has it, else its first column. A file without a header (its first field is a cell id, like
//! inferCNV's annotations) is read with columns `column_1`, `column_2`, ... . `label_column` (looked up
//! in the obs file, then the coordinates file, then the counts table) is stored as `cell_type`.
//! Every cell of the counts must be found in the coordinates and obs files; an error gives the counts.
//!
//! Count text is parsed by tmescope's own line parser (in parallel over lines; it reports the line and
//! column of a non-numeric count and copes with R's header layout); Parquet counts, coordinates and
//! metadata are read with polars, which infers column types. Time and memory are O(file size).

use crate::text_util::{self, extra_column_name, parse_wide, FieldRole, SparseRow, TextTable};
use crate::ReadOptions;
use polars::prelude as pl;
use polars::prelude::SerReader;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::{Error, Result};

/// Coordinate column names tried, in order, when none is given: `(x, y, micrometres?)`.
pub const COORDINATE_NAMES: [(&str, &str, bool); 8] = [
    ("x", "y", false),
    ("x_centroid", "y_centroid", true),
    ("center_x", "center_y", true),
    ("xcoord", "ycoord", false),
    ("imagecol", "imagerow", false),
    ("x_location", "y_location", true),
    ("spatial_x", "spatial_y", false),
    ("pxl_col_in_fullres", "pxl_row_in_fullres", false),
];

/// A table read with polars: column names and typed columns.
struct Frame {
    names: Vec<String>,
    columns: Vec<Column>,
}

impl Frame {
    fn index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .or_else(|| self.names.iter().position(|n| n.eq_ignore_ascii_case(name)))
    }

    fn ids(&self, col: usize) -> Vec<String> {
        self.columns[col].as_text().into_iter().map(|s| s.unwrap_or_default()).collect()
    }

    fn len(&self) -> usize {
        self.columns.first().map(|c| c.len()).unwrap_or(0)
    }
}

fn is_parquet(path: &Path) -> bool {
    let n = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    n.ends_with(".parquet") || n.ends_with(".pq")
}

/// Reads a CSV/TSV (gzipped or not) or Parquet file with polars.
fn read_frame(path: &Path, has_header: bool) -> Result<Frame> {
    let perr = |e: pl::PolarsError| Error::file(path, format!("cannot read table ({e})"));
    let df = if is_parquet(path) {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        pl::ParquetReader::new(f).finish().map_err(perr)?
    } else {
        let bytes = text_util::read_bytes(path)?;
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let delim = text_util::detect_delimiter(path, &String::from_utf8_lossy(first));
        pl::CsvReadOptions::default()
            .with_has_header(has_header)
            .with_infer_schema_length(Some(100_000))
            .map_parse_options(|p| p.with_separator(delim))
            .into_reader_with_file_handle(std::io::Cursor::new(bytes))
            .finish()
            .map_err(perr)?
    };
    let mut names = Vec::new();
    let mut columns = Vec::new();
    for c in df.columns() {
        names.push(c.name().to_string());
        columns.push(series_column(c.as_materialized_series()).map_err(perr)?);
    }
    Ok(Frame { names, columns })
}

/// Converts a polars series into a cell-table column.
fn series_column(s: &pl::Series) -> pl::PolarsResult<Column> {
    use pl::DataType as D;
    Ok(match s.dtype() {
        D::Boolean => Column::Bool(s.bool()?.iter().collect()),
        d if d.is_integer() => Column::Int(s.cast(&D::Int64)?.i64()?.iter().collect()),
        d if d.is_float() => {
            Column::Float(s.cast(&D::Float64)?.f64()?.iter().map(|v| v.filter(|x| !x.is_nan())).collect())
        }
        _ => Column::Text(s.cast(&D::String)?.str()?.iter().map(|v| v.map(str::to_string)).collect()),
    })
}

/// Picks the x/y columns among `names`: the given ones (must exist) or the first known pair.
fn find_coordinates(
    path: &Path,
    names: &[String],
    opts: &ReadOptions,
    required: bool,
) -> Result<Option<(usize, usize, bool)>> {
    let find =
        |n: &str| names.iter().position(|h| h == n).or_else(|| names.iter().position(|h| h.eq_ignore_ascii_case(n)));
    match (&opts.x_column, &opts.y_column) {
        (Some(x), Some(y)) => {
            let xi = find(x).ok_or_else(|| {
                Error::input(path, format!("column `{x}`"), "x column given by --x-column is missing")
            })?;
            let yi = find(y).ok_or_else(|| {
                Error::input(path, format!("column `{y}`"), "y column given by --y-column is missing")
            })?;
            return Ok(Some((xi, yi, false)));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Usage("give both --x-column and --y-column, or neither".into()));
        }
        _ => {}
    }
    for (x, y, um) in COORDINATE_NAMES {
        if let (Some(xi), Some(yi)) = (find(x), find(y)) {
            return Ok(Some((xi, yi, um)));
        }
    }
    if required {
        return Err(Error::file(
            path,
            format!(
                "no coordinate columns found (looked for {}); name them with --x-column/--y-column",
                COORDINATE_NAMES.iter().map(|(x, y, _)| format!("{x}/{y}")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(None)
}

/// Rows of `table_ids` for each of `ids`, or an input error giving how many are missing.
fn join_rows(path: &Path, what: &str, ids: &[String], table_ids: &[String]) -> Result<Vec<usize>> {
    // A duplicated id would silently give a cell the values of whichever row came last.
    text_util::check_unique(path, table_ids, |i| format!("row {}", i + 1))?;
    let index: HashMap<&str, usize> = table_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut rows = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match index.get(id.as_str()) {
            Some(&i) => rows.push(i),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::file(
            path,
            format!(
                "{} of the {} cells of the counts have no {what} row (e.g. `{}`); this file lists {} ids (first: `{}`) — do the ids match?",
                missing.len(),
                ids.len(),
                missing[0],
                table_ids.len(),
                table_ids.first().map(String::as_str).unwrap_or("")
            ),
        ));
    }
    Ok(rows)
}

/// What the counts file gave.
struct CountsPart {
    ids: Vec<String>,
    genes: Vec<String>,
    counts: tmescope_core::counts::CsrCounts,
    /// Non-count columns of a cells x genes table (coordinates, labels), by name.
    extra: Vec<(String, Column)>,
}

/// Reads a generic count table (see the module docs) into a dataset.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let part = if is_parquet(path) { read_counts_parquet(path, opts)? } else { read_counts_text(path, opts)? };
    let CountsPart { ids, genes, counts, extra } = part;
    text_util::check_unique(path, &ids, |i| format!("cell {}", i + 1))?;
    if let Some(i) = genes.iter().position(|g| g.is_empty()) {
        return Err(Error::input(path, format!("gene {}", i + 1), "empty gene name"));
    }
    text_util::check_unique_named(path, &genes, |i| format!("gene {}", i + 1), "gene names")?;
    let n = ids.len();
    let mut notes = Vec::new();
    let mut cells = CellTable {
        cell_id: ids,
        sample: vec![opts.sample.clone(); n],
        x: vec![f64::NAN; n],
        y: vec![f64::NAN; n],
        z: None,
        extra: vec![],
    };
    let mut unit = "none".to_string();
    let mut label_pool: Vec<(String, Column)> = Vec::new();

    // Coordinates: a separate file, or columns of the counts table.
    if let Some(coords) = &opts.coords {
        let f = read_frame(coords, true)?;
        let id_col = opts.id_column.as_deref().and_then(|c| f.index(c)).unwrap_or(0);
        let rows = join_rows(coords, "coordinate", &cells.cell_id, &f.ids(id_col))?;
        let (xi, yi, um) = find_coordinates(coords, &f.names, opts, true)?.unwrap_or((0, 0, false));
        set_coordinates(&mut cells, coords, &f.names, &f.columns, &rows, xi, yi)?;
        unit = if um { "micrometre" } else { "pixel" }.into();
        for (c, name) in f.names.iter().enumerate() {
            if c != id_col && c != xi && c != yi && !name.is_empty() {
                label_pool.push((name.clone(), f.columns[c].select(&rows)));
            }
        }
    } else {
        let names: Vec<String> = extra.iter().map(|(n, _)| n.clone()).collect();
        if let Some((xi, yi, um)) = find_coordinates(path, &names, opts, opts.x_column.is_some())? {
            let cols: Vec<Column> = extra.iter().map(|(_, c)| c.clone()).collect();
            let rows: Vec<usize> = (0..n).collect();
            set_coordinates(&mut cells, path, &names, &cols, &rows, xi, yi)?;
            unit = if um { "micrometre" } else { "pixel" }.into();
        }
    }
    let coord_names: Vec<String> = ["x", "y"].iter().map(|s| s.to_string()).collect();
    for (name, col) in extra {
        let is_coord = cells.has_coordinates()
            && (opts.x_column.as_deref() == Some(name.as_str())
                || opts.y_column.as_deref() == Some(name.as_str())
                || COORDINATE_NAMES
                    .iter()
                    .any(|(x, y, _)| name.eq_ignore_ascii_case(x) || name.eq_ignore_ascii_case(y))
                || coord_names.contains(&name));
        if !is_coord {
            label_pool.push((name, col));
        }
    }

    // Cell metadata.
    if let Some(obs) = &opts.obs {
        let mut f = read_frame(obs, true)?;
        let known: std::collections::HashSet<&str> = cells.cell_id.iter().map(String::as_str).collect();
        if f.names.first().is_some_and(|n| known.contains(n.as_str())) {
            // No header: the first line is data.
            f = read_frame(obs, false)?;
            notes.push(format!("{} has no header: its columns are named column_1, column_2, ...", obs.display()));
        }
        let id_col = opts.id_column.as_deref().and_then(|c| f.index(c)).unwrap_or(0);
        let rows = join_rows(obs, "metadata", &cells.cell_id, &f.ids(id_col))?;
        let mut obs_cols = Vec::new();
        for (c, name) in f.names.iter().enumerate() {
            if c != id_col && !name.is_empty() {
                let col = f.columns[c].select(&rows);
                // Text read from a CSV/TSV file is typed as a counts table's metadata columns are, so `NA`
                // or `NaN` is a missing value (not a label) and a number column with `NA` stays numeric.
                let col = match col {
                    Column::Text(v) if !is_parquet(obs) => {
                        text_util::infer_column(&v.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>())
                    }
                    col => col,
                };
                obs_cols.push((name.clone(), col));
            }
        }
        obs_cols.extend(label_pool);
        label_pool = obs_cols;
    }
    if let Some(label) = &opts.label_column {
        let col = label_pool
            .iter()
            .find(|(n, _)| n == label)
            .or_else(|| label_pool.iter().find(|(n, _)| n.eq_ignore_ascii_case(label)))
            .map(|(_, c)| c.clone())
            .ok_or_else(|| {
                let names: Vec<String> = label_pool.iter().map(|(n, _)| n.clone()).collect();
                Error::Usage(format!(
                    "label column `{label}` not found in the metadata (columns: {})",
                    text_util::preview(&names, 20)
                ))
            })?;
        let labels = col.as_text();
        if let Some(i) = labels.iter().position(|l| l.as_deref().is_none_or(|s| s.is_empty())) {
            return Err(Error::input(
                opts.obs.as_deref().unwrap_or(path),
                format!("column `{label}`"),
                format!("cell `{}` has no label: a reference needs a label for every cell", cells.cell_id[i]),
            ));
        }
        cells.set("cell_type", Column::Text(labels));
        label_pool.retain(|(n, _)| n != label);
    }
    for (name, col) in label_pool {
        if name.is_empty() || cells.get(&name).is_some() {
            continue;
        }
        cells.set(&extra_column_name(&name), col);
    }
    Ok(Dataset {
        cells,
        genes: GeneTable::from_names(genes),
        counts,
        platform: "table".into(),
        coordinate_unit: unit,
        notes,
    })
}

/// Sets `x`/`y` of `cells` from columns `xi`/`yi` (rows picked by `rows`), requiring finite values.
fn set_coordinates(
    cells: &mut CellTable,
    path: &Path,
    names: &[String],
    columns: &[Column],
    rows: &[usize],
    xi: usize,
    yi: usize,
) -> Result<()> {
    for (target, c) in [(0, xi), (1, yi)] {
        let v = columns[c].as_f64();
        let mut out = Vec::with_capacity(rows.len());
        for (k, &r) in rows.iter().enumerate() {
            match v[r] {
                Some(x) if x.is_finite() => out.push(x),
                _ => {
                    return Err(Error::input(
                        path,
                        format!("column `{}`, cell `{}`", names[c], cells.cell_id[k]),
                        "expected a finite coordinate, found an empty, NaN, infinite or non-numeric value",
                    ))
                }
            }
        }
        if target == 0 {
            cells.x = out;
        } else {
            cells.y = out;
        }
    }
    Ok(())
}

/// Whether a header name is a non-count column of a cells x genes table.
fn is_metadata_name(name: &str, opts: &ReadOptions) -> bool {
    opts.x_column.as_deref() == Some(name)
        || opts.y_column.as_deref() == Some(name)
        || opts.label_column.as_deref() == Some(name)
        || COORDINATE_NAMES.iter().any(|(x, y, _)| name.eq_ignore_ascii_case(x) || name.eq_ignore_ascii_case(y))
}

fn read_counts_text(path: &Path, opts: &ReadOptions) -> Result<CountsPart> {
    let mut t = TextTable::read(path, true)?;
    t.fix_row_name_header();
    let id_col = match &opts.id_column {
        Some(c) if !opts.genes_in_rows => t.require(c)?,
        _ => 0,
    };
    if t.is_empty() {
        return Err(Error::file(path, "empty matrix: the table has a header but no rows"));
    }
    if opts.genes_in_rows {
        // Rows are genes, columns (after the first) are cells.
        let mut roles = vec![FieldRole::Skip];
        let cells: Vec<String> = t.header[1..].to_vec();
        if cells.is_empty() {
            return Err(Error::file(path, "empty matrix: no cell columns after the gene column"));
        }
        roles.extend((0..cells.len() as u32).map(FieldRole::Gene));
        let genes = t.column_values(0, roles.len())?;
        let (rows, _) = parse_wide(&t, &roles, 0)?;
        let by_gene = text_util::csr_from_rows(rows, cells.len());
        return Ok(CountsPart { ids: cells, genes, counts: by_gene.transpose(), extra: vec![] });
    }
    let mut roles = Vec::with_capacity(t.header.len());
    let mut genes = Vec::new();
    let mut meta_cols = Vec::new();
    for (i, h) in t.header.iter().enumerate() {
        if i == id_col {
            roles.push(FieldRole::Skip);
        } else if is_metadata_name(h, opts) {
            roles.push(FieldRole::Skip);
            meta_cols.push(i);
        } else {
            roles.push(FieldRole::Gene(genes.len() as u32));
            genes.push(h.clone());
        }
    }
    if genes.is_empty() {
        return Err(Error::file(path, "empty matrix: no gene columns besides the id column"));
    }
    let ids = t.column_values(id_col, roles.len())?;
    let (rows, _) = parse_wide(&t, &roles, 0)?;
    let mut extra = Vec::new();
    for c in meta_cols {
        extra.push((t.header[c].clone(), text_util::infer_column(&t.column_values(c, roles.len())?)));
    }
    Ok(CountsPart { ids, genes: genes.clone(), counts: text_util::csr_from_rows(rows, genes.len()), extra })
}

fn read_counts_parquet(path: &Path, opts: &ReadOptions) -> Result<CountsPart> {
    let f = read_frame(path, true)?;
    if f.names.is_empty() || f.len() == 0 {
        return Err(Error::file(path, "empty matrix: no rows"));
    }
    let id_col = match &opts.id_column {
        Some(c) if !opts.genes_in_rows => {
            f.index(c).ok_or_else(|| Error::input(path, format!("column `{c}`"), "id column is missing"))?
        }
        _ => 0,
    };
    let row_ids = f.ids(id_col);
    let mut value_cols = Vec::new();
    let mut extra = Vec::new();
    for (c, name) in f.names.iter().enumerate() {
        if c == id_col {
            continue;
        }
        if !opts.genes_in_rows && is_metadata_name(name, opts) {
            extra.push((name.clone(), f.columns[c].clone()));
        } else {
            value_cols.push(c);
        }
    }
    if value_cols.is_empty() {
        return Err(Error::file(path, "empty matrix: no count columns besides the id column"));
    }
    // Row-major sparse rows over the table's rows (cells, or genes when genes are rows).
    let mut rows: Vec<SparseRow> = vec![SparseRow::default(); f.len()];
    for (k, &c) in value_cols.iter().enumerate() {
        let col = &f.columns[c];
        if let Column::Text(v) = col {
            let r =
                v.iter().position(|s| s.as_deref().is_none_or(|s| text_util::parse_count(s).is_none())).unwrap_or(0);
            return Err(Error::input(
                path,
                format!("row {}, column `{}`", r + 1, f.names[c]),
                format!("expected a non-negative number, found `{}`", v[r].clone().unwrap_or_default()),
            ));
        }
        for (r, v) in col.as_f64().into_iter().enumerate() {
            match v {
                Some(v) if v.is_finite() && v >= 0.0 => {
                    if v != 0.0 {
                        rows[r].cols.push(k as u32);
                        rows[r].vals.push(v);
                    }
                }
                other => {
                    return Err(Error::input(
                        path,
                        format!("row {}, column `{}`", r + 1, f.names[c]),
                        format!(
                            "expected a non-negative number, found {}",
                            other.map_or_else(|| "null".to_string(), |v| v.to_string())
                        ),
                    ))
                }
            }
        }
    }
    let names: Vec<String> = value_cols.iter().map(|&c| f.names[c].clone()).collect();
    let m = text_util::csr_from_rows(rows, names.len());
    Ok(if opts.genes_in_rows {
        CountsPart { ids: names, genes: row_ids, counts: m.transpose(), extra: vec![] }
    } else {
        CountsPart { ids: row_ids, genes: names, counts: m, extra }
    })
}

/// One row of an ingest sample sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    /// Sample name (also the dataset folder name).
    pub sample: String,
    /// Input path, resolved against the sheet's folder when relative.
    pub path: PathBuf,
    /// Format name (the reader's default format when the column is absent or empty).
    pub format: String,
    /// Every other column, as `(name, value)`, in sheet order.
    pub metadata: Vec<(String, String)>,
}

/// Reads a sample sheet (of `tmescope ingest --samples` and `tmescope run`): CSV or TSV with columns
/// `sample`, `path`, optional `format` (`default_format` when absent or empty), plus any metadata columns
/// (`condition`, `timepoint`, `patient`, ...). Sample names must be non-empty, usable as folder names,
/// and unique (also ignoring case, since some file systems do); relative paths are relative to the
/// sheet's folder.
pub fn read_sample_sheet(path: &Path, default_format: &str) -> Result<Vec<SampleRow>> {
    let t = TextTable::read(path, true)?;
    let sc = t.require("sample")?;
    let pc = t.require("path")?;
    let fc = t.column_index("format");
    let cols = t.all_columns(t.header.len())?;
    if t.is_empty() {
        return Err(Error::file(path, "the sample sheet lists no samples"));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(t.len());
    for i in 0..t.len() {
        let loc = format!("line {}", t.line_no(i));
        let sample = cols[sc][i].clone();
        if sample.is_empty() || sample.starts_with('.') || sample.contains(['/', '\\']) {
            return Err(Error::input(
                path,
                format!("{loc}, column `sample`"),
                format!("`{sample}` is not usable as a folder name"),
            ));
        }
        if let Some(prev) = seen.insert(sample.to_lowercase(), i) {
            return Err(Error::input(
                path,
                format!("{loc}, column `sample`"),
                format!(
                    "sample `{sample}` conflicts with `{}` on line {}: sample names must be unique (ignoring case)",
                    cols[sc][prev],
                    t.line_no(prev)
                ),
            ));
        }
        let raw = cols[pc][i].clone();
        if raw.is_empty() {
            return Err(Error::input(path, format!("{loc}, column `path`"), "empty path"));
        }
        let p = PathBuf::from(&raw);
        let p = if p.is_relative() { base.join(p) } else { p };
        let format = fc.map(|c| cols[c][i].clone()).filter(|f| !f.is_empty()).unwrap_or_else(|| default_format.into());
        let metadata = t
            .header
            .iter()
            .enumerate()
            .filter(|(c, h)| *c != sc && *c != pc && Some(*c) != fc && !h.is_empty())
            .map(|(c, h)| (h.clone(), cols[c][i].clone()))
            .collect();
        out.push(SampleRow { sample, path: p, format, metadata });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn duplicate_ids_in_the_obs_file_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.csv");
        std::fs::write(&p, "cell,x,y,A\nc1,1,2,3\nc2,3,4,5\n").unwrap();
        let obs = tmp.path().join("obs.csv");
        std::fs::write(&obs, "cell,type\nc1,T\nc1,B\nc2,T\n").unwrap();
        let e = read(&p, &ReadOptions { obs: Some(obs), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("obs.csv (row 2)") && e.contains("duplicate `c1`"), "{e}");
    }
    use super::*;

    #[test]
    fn cells_by_genes_with_coordinates_and_labels() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.csv");
        std::fs::write(&p, "cell,x,y,A,B\nc1,1,2,0,3\nc2,3,4,5,0\n").unwrap();
        let obs = tmp.path().join("obs.tsv");
        std::fs::write(&obs, "cell\ttype\nc2\tT\nc1\tB\n").unwrap();
        let opts = ReadOptions { obs: Some(obs), label_column: Some("type".into()), ..Default::default() };
        let ds = read(&p, &opts).unwrap();
        assert_eq!(ds.genes.gene_name, vec!["A", "B"]);
        assert_eq!(ds.cells.x, vec![1.0, 3.0]);
        assert_eq!(ds.coordinate_unit, "pixel");
        assert_eq!(ds.cells.get("cell_type"), Some(&Column::Text(vec![Some("B".into()), Some("T".into())])));
        assert_eq!(ds.counts.total(), 8.0);
    }

    #[test]
    fn obs_missing_tokens_read_as_in_the_counts_table() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.csv");
        std::fs::write(&p, "cell,x,y,A\nc1,1,2,3\nc2,3,4,5\n").unwrap();
        let obs = tmp.path().join("obs.csv");
        std::fs::write(&obs, "cell,type,score\nc1,NaN,NA\nc2,T,1.5\n").unwrap();
        let ds = read(&p, &ReadOptions { obs: Some(obs), ..Default::default() }).unwrap();
        let expected = Column::Text(vec![None, Some("T".into())]);
        assert_eq!(ds.cells.get("type"), Some(&expected));
        let in_counts = text_util::infer_column(&["NaN".to_string(), "T".to_string()]);
        assert_eq!(in_counts, expected, "a counts table's metadata column reads the same");
        assert_eq!(ds.cells.get("score"), Some(&Column::Float(vec![None, Some(1.5)])), "`NA` keeps it numeric");
    }

    #[test]
    fn sample_sheet_rejects_conflicting_names() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("s.csv");
        std::fs::write(&p, "sample,path,condition\nA,a.csv,x\nb,/b.csv,y\n").unwrap();
        let rows = read_sample_sheet(&p, "auto").unwrap();
        assert_eq!(rows[0].path, tmp.path().join("a.csv"));
        assert_eq!(rows[1].metadata, vec![("condition".to_string(), "y".to_string())]);
        assert_eq!(rows[1].format, "auto");
        std::fs::write(&p, "sample,path\nA,a.csv\na,b.csv\n").unwrap();
        assert!(read_sample_sheet(&p, "auto").unwrap_err().to_string().contains("conflicts"));
        // TSV, quoted fields, a format column left empty.
        let t = tmp.path().join("s.tsv");
        std::fs::write(&t, "sample\tpath\tformat\n\"s1\"\t\"/abs/s 1\"\t\n").unwrap();
        let rows = read_sample_sheet(&t, "xenium").unwrap();
        assert_eq!((rows[0].sample.as_str(), rows[0].format.as_str()), ("s1", "xenium"));
        assert_eq!(rows[0].path, PathBuf::from("/abs/s 1"));
        std::fs::write(&t, "name\tpath\na\tb\n").unwrap();
        let e = read_sample_sheet(&t, "auto").unwrap_err().to_string();
        assert!(e.contains("s.tsv") && e.contains("`sample`"), "{e}");
        std::fs::write(&t, "sample\tpath\na\t\n").unwrap();
        assert!(read_sample_sheet(&t, "auto").unwrap_err().to_string().contains("empty path"));
    }

    #[test]
    fn genes_in_rows_is_transposed() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("m.tsv");
        std::fs::write(&p, "c1\tc2\tc3\nG1\t0\t1.5\t0\nG2\t2\t0\t0\n").unwrap();
        let ds = read(&p, &ReadOptions { genes_in_rows: true, ..Default::default() }).unwrap();
        assert_eq!(ds.cells.cell_id, vec!["c1", "c2", "c3"]);
        assert_eq!(ds.counts.row_totals(), vec![2.0, 1.5, 0.0]);
        assert_eq!(ds.coordinate_unit, "none");
    }

    #[test]
    fn non_numeric_count_names_line_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("c.csv");
        std::fs::write(&p, "cell,A,B\nc1,1,2\nc2,x,0\n").unwrap();
        let e = read(&p, &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("c.csv") && e.contains("line 3") && e.contains("`A`"), "{e}");
    }
}
