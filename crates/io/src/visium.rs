//! 10x Visium spot outputs (Space Ranger 1.x and >= 2) and Visium HD binned outputs.
//!
//! **Visium** ([`read`]): a Space Ranger `outs/` folder (or its parent) with
//! - the matrix `filtered_feature_bc_matrix.h5` or the `filtered_feature_bc_matrix/` MTX folder (with
//!   [`ReadOptions::keep_off_tissue`], `raw_feature_bc_matrix[.h5]` is preferred when present, since the
//!   filtered matrix holds in-tissue spots only);
//! - spot positions `spatial/tissue_positions_list.csv` (Space Ranger 1.x, no header) or
//!   `spatial/tissue_positions.csv` (>= 2.0, header `barcode,in_tissue,array_row,array_col,
//!   pxl_row_in_fullres,pxl_col_in_fullres`), or `spatial/tissue_positions.parquet`;
//! - `spatial/scalefactors_json.json`, whose `spot_diameter_fullres` is the 55 um spot diameter in
//!   full-resolution pixels, so one pixel is `55 / spot_diameter_fullres` micrometres.
//!
//! `x` is the full-resolution pixel column and `y` the pixel row, both converted to micrometres (the same
//! orientation as squidpy's `obsm["spatial"]`, scaled). `in_tissue`, `array_row`, `array_col`,
//! `pxl_row_in_fullres` and `pxl_col_in_fullres` are kept as cell columns. Spots with `in_tissue = 0` are
//! dropped unless [`ReadOptions::keep_off_tissue`] (a note says how many). A matrix barcode without a
//! position is an error naming the positions file and the barcode; positions whose barcode is not in
//! the matrix are ignored (off-tissue spots are never in a filtered matrix; in-tissue ones are only
//! absent from a subsetted matrix, which a note reports).
//!
//! **Visium HD** ([`read_hd`]): `binned_outputs/square_XXXum/` with `filtered_feature_bc_matrix.h5` (or
//! the MTX folder), `spatial/tissue_positions.parquet` (every bin listed) and
//! `spatial/scalefactors_json.json`. The scale is `microns_per_pixel` when present, else the bin size
//! divided by `spot_diameter_fullres` (the bin width in pixels), else the bin size divided by the
//! median pixel distance between neighbouring bins of a row.
//!
//! Joining positions to barcodes is a hash lookup: O(spots + nnz) overall.

use crate::hdf5_util::H5;
use crate::ReadOptions;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{Column, Dataset};
use tmescope_core::parquet_io::Table;
use tmescope_core::{Error, Result};

/// Diameter of a Visium spot in micrometres.
pub const SPOT_DIAMETER_UM: f64 = 55.0;

/// Spot or bin positions from a `tissue_positions` file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Positions {
    /// The file they were read from (for error messages).
    pub file: PathBuf,
    /// Barcodes.
    pub barcode: Vec<String>,
    /// 1 for spots over tissue.
    pub in_tissue: Vec<i64>,
    /// Array row.
    pub array_row: Vec<i64>,
    /// Array column.
    pub array_col: Vec<i64>,
    /// Full-resolution pixel row.
    pub pxl_row: Vec<f64>,
    /// Full-resolution pixel column.
    pub pxl_col: Vec<f64>,
}

/// Reads a Visium (Space Ranger 1.x or >= 2) output folder.
pub fn read(dir: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let outs = find_outs(dir)?;
    let spatial = outs.join("spatial");
    let positions = read_positions_in(&spatial)?;
    let scale_file = spatial.join("scalefactors_json.json");
    let scale = read_scalefactors(&scale_file)?;
    let diameter = positive(&scale_file, &scale, "spot_diameter_fullres")?.ok_or_else(|| {
        Error::input(&scale_file, "field `spot_diameter_fullres`", "missing: needed to convert pixels to micrometres")
    })?;
    let um_per_px = SPOT_DIAMETER_UM / diameter;
    let mut ds = read_matrix(&outs, opts)?;
    ds.notes.push(format!(
        "coordinates in micrometres: 1 full-resolution pixel = {um_per_px:.6} um (55 um spot diameter / spot_diameter_fullres {diameter})"
    ));
    attach_positions(ds, &positions, um_per_px, opts, "visium")
}

/// Reads a Visium HD `binned_outputs/square_XXXum/` folder (bin size from [`ReadOptions::bin_size_um`]).
pub fn read_hd(dir: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let bin_dir = find_bin_dir(dir, opts.bin_size_um)?;
    let spatial = bin_dir.join("spatial");
    let positions = read_positions_in(&spatial)?;
    let scale_file = spatial.join("scalefactors_json.json");
    let scale = read_scalefactors(&scale_file)?;
    let bin = opts.bin_size_um as f64;
    let (um_per_px, how) = if let Some(mpp) = positive(&scale_file, &scale, "microns_per_pixel")? {
        (mpp, "microns_per_pixel".to_string())
    } else if let Some(d) = positive(&scale_file, &scale, "spot_diameter_fullres")? {
        (bin / d, format!("bin size {bin} um / spot_diameter_fullres {d} px"))
    } else {
        let spacing = bin_spacing_px(&positions).ok_or_else(|| {
            Error::input(
                &scale_file,
                "field `microns_per_pixel`",
                "missing, and the bin spacing cannot be estimated from the positions: cannot convert pixels to micrometres",
            )
        })?;
        (bin / spacing, format!("bin size {bin} um / median bin spacing {spacing:.4} px"))
    };
    let mut ds = read_matrix(&bin_dir, opts)?;
    ds.notes.push(format!("Visium HD bins of {bin} um from {}", bin_dir.display()));
    ds.notes.push(format!("coordinates in micrometres: 1 full-resolution pixel = {um_per_px:.6} um ({how})"));
    attach_positions(ds, &positions, um_per_px, opts, "visium-hd")
}

/// The Space Ranger `outs/` folder: `dir` itself or `dir/outs`.
fn find_outs(dir: &Path) -> Result<PathBuf> {
    for cand in [dir.to_path_buf(), dir.join("outs")] {
        if cand.join("spatial").is_dir() {
            return Ok(cand);
        }
    }
    Err(Error::file(
        dir,
        "not a Visium output folder: expected `spatial/` (tissue positions and scalefactors_json.json) in it or in its `outs/`",
    ))
}

/// The `square_XXXum` folder for bin size `bin_um`, from the folder itself, `binned_outputs/`, `outs/`
/// or the run folder.
fn find_bin_dir(dir: &Path, bin_um: u32) -> Result<PathBuf> {
    let name = format!("square_{bin_um:03}um");
    let cands = [
        dir.to_path_buf(),
        dir.join(&name),
        dir.join("binned_outputs").join(&name),
        dir.join("outs").join("binned_outputs").join(&name),
    ];
    let is_bin = |p: &Path| {
        p.join("spatial").is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("square_"))
    };
    if let Some(found) = cands.iter().find(|p| is_bin(p.as_path())) {
        if found.file_name().is_some_and(|n| n.to_string_lossy() != name) {
            return Err(Error::Usage(format!(
                "{} holds another bin size than the {bin_um} um asked for; give its parent `binned_outputs/` or choose the matching bin size",
                found.display()
            )));
        }
        return Ok(found.clone());
    }
    let mut have = Vec::new();
    for base in [dir.to_path_buf(), dir.join("binned_outputs"), dir.join("outs").join("binned_outputs")] {
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with("square_") {
                    have.push(n);
                }
            }
        }
    }
    have.sort();
    let have = if have.is_empty() { "none found".to_string() } else { have.join(", ") };
    Err(Error::file(dir, format!("no Visium HD `binned_outputs/{name}/` folder (bin sizes available: {have})")))
}

/// The count matrix of a Visium output folder, from the h5 file or the MTX folder.
fn read_matrix(dir: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let mut names = vec!["filtered_feature_bc_matrix"];
    if opts.keep_off_tissue {
        names.insert(0, "raw_feature_bc_matrix");
    }
    for name in names {
        let h5 = dir.join(format!("{name}.h5"));
        if h5.is_file() {
            let file = H5::open(&h5)?;
            let mut ds = crate::tenx_h5::read_from(&file, opts)?;
            ds.notes.push(format!("counts from {}", h5.display()));
            return Ok(ds);
        }
        let mtx = dir.join(name);
        if mtx.is_dir() {
            let mut ds = crate::mtx::read(&mtx, opts)?;
            ds.notes.push(format!("counts from {}", mtx.display()));
            return Ok(ds);
        }
    }
    Err(Error::file(
        dir,
        "no count matrix: expected filtered_feature_bc_matrix.h5 or the filtered_feature_bc_matrix/ folder",
    ))
}

fn read_scalefactors(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::file(path, "expected a JSON object of scale factors")),
        Err(e) => Err(Error::file(path, format!("not valid JSON ({e})"))),
    }
}

/// A positive number field of the scale factors; `None` when absent or null.
fn positive(path: &Path, m: &serde_json::Map<String, serde_json::Value>, key: &str) -> Result<Option<f64>> {
    match m.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
            _ => Err(Error::input(path, format!("field `{key}`"), format!("expected a positive number, found {v}"))),
        },
    }
}

/// Reads the positions file found in a `spatial/` folder.
fn read_positions_in(spatial: &Path) -> Result<Positions> {
    for name in ["tissue_positions.parquet", "tissue_positions.csv", "tissue_positions_list.csv"] {
        let p = spatial.join(name);
        if p.is_file() {
            return if name.ends_with(".parquet") { read_positions_parquet(&p) } else { read_positions_csv(&p) };
        }
    }
    Err(Error::file(
        spatial,
        "no spot positions: expected tissue_positions.csv (Space Ranger >= 2), tissue_positions_list.csv (1.x) or tissue_positions.parquet",
    ))
}

const POSITION_COLUMNS: [&str; 6] =
    ["barcode", "in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"];

/// Reads `tissue_positions.csv` (with header) or `tissue_positions_list.csv` (without).
pub fn read_positions_csv(path: &Path) -> Result<Positions> {
    let text = crate::text_util::read_text(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).peekable();
    let mut order: [usize; 6] = [0, 1, 2, 3, 4, 5];
    if let Some((_, first)) = lines.peek() {
        let fields: Vec<String> =
            crate::text_util::split_fields(first, b',').iter().map(|s| s.trim().to_string()).collect();
        if fields.first().is_some_and(|f| f == "barcode") {
            for (k, want) in POSITION_COLUMNS.iter().enumerate() {
                order[k] = fields.iter().position(|f| f == want).ok_or_else(|| {
                    Error::input(
                        path,
                        "line 1",
                        format!("missing column `{want}` (expected {})", POSITION_COLUMNS.join(",")),
                    )
                })?;
            }
            lines.next();
        }
    }
    let mut pos = Positions { file: path.to_path_buf(), ..Default::default() };
    for (i, line) in lines {
        let f = crate::text_util::split_fields(line, b',');
        let at = |k: usize| -> Result<&str> {
            f.get(order[k]).map(|s| s.trim()).ok_or_else(|| {
                Error::input(
                    path,
                    format!("line {}", i + 1),
                    format!("expected 6 fields ({}), found {}", POSITION_COLUMNS.join(","), f.len()),
                )
            })
        };
        let int = |k: usize| -> Result<i64> {
            let s = at(k)?;
            s.parse::<i64>()
                .or_else(|_| s.parse::<f64>().ok().filter(|x| x.fract() == 0.0).map(|x| x as i64).ok_or(()))
                .map_err(|_| {
                    Error::input(
                        path,
                        format!("line {}, column `{}`", i + 1, POSITION_COLUMNS[k]),
                        format!("expected an integer, found `{s}`"),
                    )
                })
        };
        let num = |k: usize| -> Result<f64> {
            let s = at(k)?;
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(Error::input(
                    path,
                    format!("line {}, column `{}`", i + 1, POSITION_COLUMNS[k]),
                    format!("expected a finite pixel coordinate, found `{s}`"),
                )),
            }
        };
        pos.barcode.push(at(0)?.to_string());
        pos.in_tissue.push(int(1)?);
        pos.array_row.push(int(2)?);
        pos.array_col.push(int(3)?);
        pos.pxl_row.push(num(4)?);
        pos.pxl_col.push(num(5)?);
    }
    if pos.barcode.is_empty() {
        return Err(Error::file(path, "no spot positions in the file"));
    }
    Ok(pos)
}

/// Reads `tissue_positions.parquet` (Visium HD, Space Ranger >= 3).
pub fn read_positions_parquet(path: &Path) -> Result<Positions> {
    let t = Table::read(path)?;
    let ints = |name: &str| -> Result<Vec<i64>> {
        t.i64_opt(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                v.ok_or_else(|| Error::input(path, format!("row {}, column `{name}`", i + 1), "missing value"))
            })
            .collect()
    };
    let coords = |name: &str| -> Result<Vec<f64>> {
        let v = t.f64(name)?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::input(
                path,
                format!("row {}, column `{name}`", i + 1),
                format!("expected a finite pixel coordinate, found {}", v[i]),
            ));
        }
        Ok(v)
    };
    let pos = Positions {
        file: path.to_path_buf(),
        barcode: t.utf8("barcode")?,
        in_tissue: ints("in_tissue")?,
        array_row: ints("array_row")?,
        array_col: ints("array_col")?,
        pxl_row: coords("pxl_row_in_fullres")?,
        pxl_col: coords("pxl_col_in_fullres")?,
    };
    if pos.barcode.is_empty() {
        return Err(Error::file(path, "no bin positions in the file"));
    }
    Ok(pos)
}

/// Median pixel distance between bins adjacent in an array row (per unit of `array_col`).
pub fn bin_spacing_px(pos: &Positions) -> Option<f64> {
    let mut rows: HashMap<i64, Vec<usize>> = HashMap::new();
    for i in 0..pos.barcode.len() {
        rows.entry(pos.array_row[i]).or_default().push(i);
    }
    let mut d = Vec::new();
    for idx in rows.values_mut() {
        idx.sort_unstable_by_key(|&i| pos.array_col[i]);
        for w in idx.windows(2) {
            let steps = (pos.array_col[w[1]] - pos.array_col[w[0]]) as f64;
            if steps > 0.0 {
                let dist = (pos.pxl_row[w[1]] - pos.pxl_row[w[0]]).hypot(pos.pxl_col[w[1]] - pos.pxl_col[w[0]]);
                d.push(dist / steps);
            }
        }
    }
    if d.is_empty() {
        return None;
    }
    d.sort_unstable_by(f64::total_cmp);
    let m = d[d.len() / 2];
    (m > 0.0).then_some(m)
}

/// Joins positions to the matrix barcodes, converts to micrometres and drops off-tissue spots.
fn attach_positions(
    mut ds: Dataset,
    pos: &Positions,
    um_per_px: f64,
    opts: &ReadOptions,
    platform: &str,
) -> Result<Dataset> {
    let mut row_of: HashMap<&str, usize> = HashMap::with_capacity(pos.barcode.len());
    for (i, b) in pos.barcode.iter().enumerate() {
        if row_of.insert(b.as_str(), i).is_some() {
            return Err(Error::input(&pos.file, format!("barcode `{b}`"), "listed twice: barcodes must be unique"));
        }
    }
    let n = ds.cells.len();
    let mut rows = Vec::with_capacity(n);
    for b in &ds.cells.cell_id {
        match row_of.get(b.as_str()) {
            Some(&r) => rows.push(r),
            None => return Err(Error::input(
                &pos.file,
                format!("barcode `{b}`"),
                "is in the count matrix but has no position in this file (matrix and positions from different runs?)",
            )),
        }
    }
    let mut in_matrix = vec![false; pos.barcode.len()];
    for &r in &rows {
        in_matrix[r] = true;
    }
    let unmatched_in_tissue = (0..pos.barcode.len()).filter(|&r| !in_matrix[r] && pos.in_tissue[r] != 0).count();
    if unmatched_in_tissue > 0 {
        ds.notes.push(format!(
            "{unmatched_in_tissue} in-tissue positions in {} have no barcode in the matrix (a subsetted matrix?): ignored",
            pos.file.display()
        ));
    }
    let c = &mut ds.cells;
    c.x = rows.iter().map(|&r| pos.pxl_col[r] * um_per_px).collect();
    c.y = rows.iter().map(|&r| pos.pxl_row[r] * um_per_px).collect();
    let int_col = |v: &[i64]| Column::Int(rows.iter().map(|&r| Some(v[r])).collect());
    let float_col = |v: &[f64]| Column::Float(rows.iter().map(|&r| Some(v[r])).collect());
    c.set("in_tissue", int_col(&pos.in_tissue));
    c.set("array_row", int_col(&pos.array_row));
    c.set("array_col", int_col(&pos.array_col));
    c.set("pxl_row_in_fullres", float_col(&pos.pxl_row));
    c.set("pxl_col_in_fullres", float_col(&pos.pxl_col));
    ds.platform = platform.into();
    ds.coordinate_unit = "micrometre".into();
    if !opts.keep_off_tissue {
        let keep: Vec<usize> = (0..n).filter(|&i| pos.in_tissue[rows[i]] != 0).collect();
        if keep.len() < n {
            ds.notes.push(format!(
                "dropped {} off-tissue spots (in_tissue = 0); keep them with the keep-off-tissue option",
                n - keep.len()
            ));
            ds.cells = ds.cells.select(&keep);
            ds.counts = ds.counts.select_rows(&keep);
        }
    }
    ds.validate(&pos.file)?;
    Ok(ds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_is_the_median_neighbour_distance_per_array_step() {
        let pos = Positions {
            barcode: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            in_tissue: vec![1; 4],
            array_row: vec![0, 0, 0, 1],
            array_col: vec![0, 1, 3, 0],
            pxl_row: vec![0.0, 0.0, 0.0, 10.0],
            pxl_col: vec![0.0, 10.0, 30.0, 0.0],
            ..Default::default()
        };
        assert_eq!(bin_spacing_px(&pos), Some(10.0));
    }

    #[test]
    fn headerless_and_header_csv_give_the_same_positions() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("tissue_positions_list.csv");
        std::fs::write(&a, "AAA-1,1,0,2,100,200\nCCC-1,0,1,3,110,210\n").unwrap();
        let b = tmp.path().join("tissue_positions.csv");
        std::fs::write(
            &b,
            "barcode,in_tissue,array_row,array_col,pxl_row_in_fullres,pxl_col_in_fullres\r\nAAA-1,1,0,2,100,200\r\nCCC-1,0,1,3,110,210\r\n",
        )
        .unwrap();
        let pa = read_positions_csv(&a).unwrap();
        let pb = read_positions_csv(&b).unwrap();
        assert_eq!(pa.barcode, pb.barcode);
        assert_eq!(pa.pxl_col, vec![200.0, 210.0]);
        assert_eq!(pb.in_tissue, vec![1, 0]);
    }

    #[test]
    fn nan_or_empty_coordinates_are_rejected_with_the_line() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("tissue_positions_list.csv");
        std::fs::write(&a, "AAA-1,1,0,2,100,200\nCCC-1,1,1,3,NaN,210\n").unwrap();
        let e = read_positions_csv(&a).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("pxl_row_in_fullres"), "{e}");
        std::fs::write(&a, "AAA-1,1,0,2,,200\n").unwrap();
        assert!(read_positions_csv(&a).unwrap_err().to_string().contains("line 1"));
    }
}
