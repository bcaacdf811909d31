//! NanoString (Bruker) CosMx SMI flat files.
//!
//! Two ways in, tried in this order for a folder (file names may carry a run prefix and be gzipped):
//!
//! 1. `*_exprMat_file.csv` (`fov, cell_ID, <one column per target>`) + `*_metadata_file.csv` (`fov, cell_ID,
//!    Area, ..., CenterX_global_px, CenterY_global_px, ...`), joined on the cell key (`fov`, `cell_ID`).
//! 2. `*_tx_file.csv` (`fov, cell_ID, x_global_px, y_global_px, x_local_px, y_local_px, z, target, ...`),
//!    one row per transcript, counted per cell; the cell centroid is the mean global position of its
//!    transcripts (controls included).
//!
//! A cell is `fov` + `cell_ID`; its id is `c_<fov>_<cell_ID>` (the AtoMx `cell` column without the slide
//! number, unique within a sample). `cell_ID` 0 collects transcripts outside any cell and is dropped.
//! Targets named `NegPrb*` (negative probes, `Negative*` in some exports) are summed into `negprobe_counts`
//! and `SystemControl*` (and `FalseCode*`) into `systemcontrol_counts`; they never become genes.
//!
//! Coordinates: CosMx gives global positions in pixels. They are converted to micrometres with
//! 0.12028 um per pixel (the CosMx SMI imaging resolution, used by AtoMx and Giotto) unless the metadata
//! gives micrometre columns (`CenterX_global_mm`/`CenterY_global_mm`, converted from millimetres) — the
//! scale used is written into the notes. `fov` and `cell_ID` are kept as columns.
//!
//! Parsing is O(file size), in parallel over lines; aggregating transcripts is O(n log n).
//!
//! Reference: NanoString, "CosMx SMI data analysis: flat file exports" (AtoMx user manual).

use crate::text_util::{extra_column_name, files_ending, infer_column, parse_wide, qc_column, FieldRole, TextTable};
use crate::ReadOptions;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::{Error, Result};

/// Micrometres per pixel of CosMx SMI global coordinates.
pub const UM_PER_PX: f64 = 0.12028;

/// Names of the QC columns, in the order of the control groups.
pub const QC_COLUMNS: [&str; 2] = ["negprobe_counts", "systemcontrol_counts"];

/// The control group of a CosMx target, if it is a control.
pub fn control_group(target: &str) -> Option<usize> {
    if target.starts_with("NegPrb") || target.starts_with("Negative") {
        Some(0)
    } else if target.starts_with("SystemControl") || target.starts_with("FalseCode") {
        Some(1)
    } else {
        None
    }
}

/// The files of a CosMx export.
#[derive(Debug, Clone)]
pub enum CosmxFiles {
    /// Expression matrix and cell metadata.
    Matrix {
        /// `*_exprMat_file.csv[.gz]`.
        expr: PathBuf,
        /// `*_metadata_file.csv[.gz]`.
        meta: PathBuf,
    },
    /// The transcript file.
    Transcripts(PathBuf),
}

/// Finds the CosMx files in a folder, or beside a given file.
pub fn locate(path: &Path) -> Result<CosmxFiles> {
    let (dir, given) =
        if path.is_file() { (path.parent().unwrap_or(Path::new(".")), Some(path)) } else { (path, None) };
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    if let Some(p) = given {
        if name_of(p).contains("tx_file") {
            return Ok(CosmxFiles::Transcripts(p.to_path_buf()));
        }
    }
    let expr = given
        .filter(|p| name_of(p).contains("exprMat_file"))
        .map(Path::to_path_buf)
        .or_else(|| files_ending(dir, &["exprMat_file.csv", "exprMat_file.csv.gz"]).into_iter().next());
    if let Some(expr) = expr {
        let prefix = name_of(&expr).split("exprMat_file").next().unwrap_or("").to_string();
        let metas = files_ending(dir, &["metadata_file.csv", "metadata_file.csv.gz"]);
        let meta =
            metas.iter().find(|p| name_of(p).starts_with(&prefix)).or(metas.first()).cloned().ok_or_else(|| {
                Error::file(dir, format!("CosMx folder has {} but no *_metadata_file.csv", name_of(&expr)))
            })?;
        return Ok(CosmxFiles::Matrix { expr, meta });
    }
    if let Some(tx) = files_ending(dir, &["tx_file.csv", "tx_file.csv.gz"]).into_iter().next() {
        return Ok(CosmxFiles::Transcripts(tx));
    }
    Err(Error::file(path, "not a CosMx export: expected *_exprMat_file.csv + *_metadata_file.csv, or *_tx_file.csv"))
}

/// Whether `path` looks like a CosMx export.
pub fn is_cosmx(path: &Path) -> bool {
    locate(path).is_ok()
}

/// Reads a CosMx export folder or file.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    match locate(path)? {
        CosmxFiles::Matrix { expr, meta } => read_matrix(&expr, &meta, opts),
        CosmxFiles::Transcripts(tx) => read_transcripts(&tx, opts),
    }
}

/// The cell id of a CosMx cell key.
pub fn cell_id(fov: &str, cell: &str) -> String {
    format!("c_{fov}_{cell}")
}

fn read_matrix(expr: &Path, meta: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let t = TextTable::read(expr, true)?;
    let fov_c = t.require("fov")?;
    let cell_c = t.require("cell_ID")?;
    let mut roles = Vec::with_capacity(t.header.len());
    let mut gene_names = Vec::new();
    let mut n_controls = [0usize; 2];
    for (i, h) in t.header.iter().enumerate() {
        if i == fov_c || i == cell_c || h.is_empty() || h == "cell" {
            roles.push(FieldRole::Skip);
        } else if let Some(g) = control_group(h) {
            roles.push(FieldRole::Control(g));
            n_controls[g] += 1;
        } else {
            roles.push(FieldRole::Gene(gene_names.len() as u32));
            gene_names.push(h.clone());
        }
    }
    let fovs = t.column_values(fov_c, roles.len())?;
    let cells = t.column_values(cell_c, roles.len())?;
    let (rows, qc) = parse_wide(&t, &roles, 2)?;
    // Drop background (cell_ID 0).
    let keep: Vec<usize> =
        (0..rows.len()).filter(|&i| cells[i].parse::<i64>().map(|v| v != 0).unwrap_or(true)).collect();
    let n_background = rows.len() - keep.len();
    let ids: Vec<String> = keep.iter().map(|&i| cell_id(&fovs[i], &cells[i])).collect();
    crate::text_util::check_unique(expr, &ids, |k| format!("line {} (fov, cell_ID)", t.line_no(keep[k])))?;
    let mut rows = rows;
    let kept_rows = keep.iter().map(|&i| std::mem::take(&mut rows[i])).collect();
    let counts = crate::text_util::csr_from_rows(kept_rows, gene_names.len());

    // Metadata joined on (fov, cell_ID).
    let m = TextTable::read(meta, true)?;
    let mfov = m.require("fov")?;
    let mcell = m.require("cell_ID")?;
    let cols = m.all_columns(m.header.len())?;
    let index: HashMap<String, usize> = (0..m.len()).map(|i| (cell_id(&cols[mfov][i], &cols[mcell][i]), i)).collect();
    let mut rows_of = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in &ids {
        match index.get(id) {
            Some(&i) => rows_of.push(i),
            None => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::input(
            meta,
            "columns `fov`, `cell_ID`",
            format!(
                "{} of the {} cells of {} have no metadata row (e.g. `{}`); the metadata lists {} cells",
                missing.len(),
                ids.len(),
                expr.display(),
                missing[0],
                m.len()
            ),
        ));
    }
    let (xc, yc, scale, unit_note) =
        if let (Some(a), Some(b)) = (m.column_index("CenterX_global_mm"), m.column_index("CenterY_global_mm")) {
            (a, b, 1000.0, "CenterX_global_mm/CenterY_global_mm converted from millimetres to micrometres".to_string())
        } else {
            let a = m.require("CenterX_global_px")?;
            let b = m.require("CenterY_global_px")?;
            (
                a,
                b,
                UM_PER_PX,
                format!(
                "CenterX_global_px/CenterY_global_px converted to micrometres at {UM_PER_PX} um per pixel (CosMx SMI)"
            ),
            )
        };
    let coord = |c: usize| -> Result<Vec<f64>> {
        rows_of
            .iter()
            .map(|&i| {
                cols[c][i].parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * scale).ok_or_else(|| {
                    Error::input(
                        meta,
                        format!("line {}, column `{}`", m.line_no(i), m.header[c]),
                        format!("expected a finite coordinate, found `{}`", cols[c][i]),
                    )
                })
            })
            .collect()
    };
    let x = coord(xc)?;
    let y = coord(yc)?;
    let mut extra = Vec::new();
    for (c, name) in m.header.iter().enumerate() {
        if c == xc || c == yc || name.is_empty() || name == "cell" {
            continue;
        }
        let picked: Vec<String> = rows_of.iter().map(|&i| cols[c][i].clone()).collect();
        extra.push((extra_column_name(name), infer_column(&picked)));
    }
    for (g, name) in QC_COLUMNS.iter().enumerate() {
        let sums: Vec<f64> = keep.iter().map(|&i| qc[g][i]).collect();
        extra.push((name.to_string(), qc_column(&sums)));
    }
    let mut notes = vec![unit_note];
    if n_background > 0 {
        notes.push(format!("dropped {n_background} background rows (cell_ID 0)"));
    }
    if n_controls.iter().sum::<usize>() > 0 {
        notes.push(format!(
            "{} negative-probe and {} system-control columns summed into negprobe_counts/systemcontrol_counts, not genes",
            n_controls[0], n_controls[1]
        ));
    }
    let n = ids.len();
    Ok(Dataset {
        cells: CellTable { cell_id: ids, sample: vec![opts.sample.clone(); n], x, y, z: None, extra },
        genes: GeneTable::from_names(gene_names),
        counts,
        platform: "cosmx".into(),
        coordinate_unit: "micrometre".into(),
        notes,
    })
}

fn read_transcripts(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let t = TextTable::read(path, true)?;
    let n_fields = t.header.len();
    let fov_c = t.require("fov")?;
    let cell_c = t.require("cell_ID")?;
    let x_c = t.require("x_global_px")?;
    let y_c = t.require("y_global_px")?;
    let target_c = t.require("target")?;
    // Parse lines in parallel into (fov, cell, x, y, target) and keep them in file order.
    type Tx = (i64, i64, f64, f64, String);
    let parsed: Vec<Tx> = (0..t.len())
        .into_par_iter()
        .map(|i| {
            let f = t.fields(i);
            if f.len() != n_fields {
                return Err(t.error_at(i, format!("expected {n_fields} fields like the header, found {}", f.len())));
            }
            let int = |c: usize| {
                f[c].trim().parse::<i64>().map_err(|_| {
                    Error::input(
                        path,
                        format!("line {}, column `{}`", t.line_no(i), t.header[c]),
                        format!("expected an integer, found `{}`", f[c].trim()),
                    )
                })
            };
            let num = |c: usize| {
                f[c].trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    Error::input(
                        path,
                        format!("line {}, column `{}`", t.line_no(i), t.header[c]),
                        format!("expected a finite number, found `{}`", f[c].trim()),
                    )
                })
            };
            Ok((int(fov_c)?, int(cell_c)?, num(x_c)?, num(y_c)?, f[target_c].trim().to_string()))
        })
        .collect::<Result<_>>()?;
    let mut cell_index: HashMap<(i64, i64), u32> = HashMap::new();
    let mut keys: Vec<(i64, i64)> = Vec::new();
    let mut target_index: HashMap<&str, u32> = HashMap::new();
    let mut targets: Vec<&str> = Vec::new();
    let mut pos: Vec<[f64; 3]> = Vec::new();
    let mut qc: Vec<[u32; 2]> = Vec::new();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut n_background = 0usize;
    for (fov, cell, x, y, target) in &parsed {
        if *cell == 0 {
            n_background += 1;
            continue;
        }
        let c = *cell_index.entry((*fov, *cell)).or_insert_with(|| {
            keys.push((*fov, *cell));
            pos.push([0.0; 3]);
            qc.push([0; 2]);
            (keys.len() - 1) as u32
        }) as usize;
        pos[c][0] += x;
        pos[c][1] += y;
        pos[c][2] += 1.0;
        if let Some(g) = control_group(target) {
            qc[c][g] += 1;
            continue;
        }
        let g = *target_index.entry(target.as_str()).or_insert_with(|| {
            targets.push(target.as_str());
            (targets.len() - 1) as u32
        });
        pairs.push((c as u32, g));
    }
    if keys.is_empty() {
        return Err(Error::file(
            path,
            format!("no transcript is assigned to a cell ({} rows, all cell_ID 0)", parsed.len()),
        ));
    }
    // Cells sorted by (fov, cell_ID) and genes by name, so the output does not depend on the file order.
    let mut cell_order: Vec<usize> = (0..keys.len()).collect();
    cell_order.sort_by_key(|&c| keys[c]);
    let mut cell_rank = vec![0u32; keys.len()];
    for (r, &c) in cell_order.iter().enumerate() {
        cell_rank[c] = r as u32;
    }
    let mut gene_order: Vec<usize> = (0..targets.len()).collect();
    gene_order.sort_by_key(|&g| targets[g]);
    let mut gene_rank = vec![0u32; targets.len()];
    for (r, &g) in gene_order.iter().enumerate() {
        gene_rank[g] = r as u32;
    }
    let rows: Vec<u32> = pairs.iter().map(|p| cell_rank[p.0 as usize]).collect();
    let cols: Vec<u32> = pairs.iter().map(|p| gene_rank[p.1 as usize]).collect();
    let ones = vec![1.0; pairs.len()];
    let counts = crate::text_util::csr_from_coo(keys.len(), targets.len(), vec![(rows, cols, ones)]);
    let ids: Vec<String> =
        cell_order.iter().map(|&c| cell_id(&keys[c].0.to_string(), &keys[c].1.to_string())).collect();
    let n = ids.len();
    let extra = vec![
        ("fov".to_string(), Column::Int(cell_order.iter().map(|&c| Some(keys[c].0)).collect())),
        ("cell_ID".to_string(), Column::Int(cell_order.iter().map(|&c| Some(keys[c].1)).collect())),
        ("n_transcripts".to_string(), Column::Int(cell_order.iter().map(|&c| Some(pos[c][2] as i64)).collect())),
        (QC_COLUMNS[0].to_string(), Column::Int(cell_order.iter().map(|&c| Some(qc[c][0] as i64)).collect())),
        (QC_COLUMNS[1].to_string(), Column::Int(cell_order.iter().map(|&c| Some(qc[c][1] as i64)).collect())),
    ];
    let mut notes = vec![
        format!("aggregated {} transcripts of {path_name}; {n_background} outside cells (cell_ID 0) not counted", parsed.len(), path_name = path.display()),
        format!("cell centroids are the mean transcript position, converted to micrometres at {UM_PER_PX} um per pixel (CosMx SMI)"),
    ];
    let n_ctrl: u64 = qc.iter().map(|q| (q[0] + q[1]) as u64).sum();
    if n_ctrl > 0 {
        notes.push(format!("{n_ctrl} control transcripts (NegPrb*/SystemControl*) counted into QC columns, not genes"));
    }
    Ok(Dataset {
        cells: CellTable {
            cell_id: ids,
            sample: vec![opts.sample.clone(); n],
            x: cell_order.iter().map(|&c| pos[c][0] / pos[c][2] * UM_PER_PX).collect(),
            y: cell_order.iter().map(|&c| pos[c][1] / pos[c][2] * UM_PER_PX).collect(),
            z: None,
            extra,
        },
        genes: GeneTable::from_names(gene_order.iter().map(|&g| targets[g].to_string()).collect()),
        counts,
        platform: "cosmx".into(),
        coordinate_unit: "micrometre".into(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_are_counted_per_cell() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("r_tx_file.csv"),
            "fov,cell_ID,x_global_px,y_global_px,target\n1,2,10,20,A\n1,2,30,40,A\n1,0,0,0,A\n1,1,5,5,NegPrb3\n1,1,5,5,B\n",
        )
        .unwrap();
        let ds = read(tmp.path(), &ReadOptions::default()).unwrap();
        assert_eq!(ds.cells.cell_id, vec!["c_1_1", "c_1_2"]);
        assert_eq!(ds.genes.gene_name, vec!["A", "B"]);
        assert_eq!(ds.counts.row_totals(), vec![1.0, 2.0]);
        assert!((ds.cells.x[1] - 20.0 * UM_PER_PX).abs() < 1e-9);
        assert_eq!(ds.cells.get("negprobe_counts"), Some(&Column::Int(vec![Some(1), Some(0)])));
    }
}
