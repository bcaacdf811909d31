//! Vizgen MERSCOPE output: `cell_by_gene.csv` + `cell_metadata.csv`.
//!
//! `cell_by_gene.csv` has one row per cell: the cell id in the first column (named `cell`, `EntityID`, or
//! unnamed), then one column per gene. Columns named `Blank-*` are blank codewords (controls): they are
//! summed per cell into the QC column `blank_counts` and never become genes.
//!
//! `cell_metadata.csv` comes in two layouts, both accepted: the VPT layout
//! (`EntityID,fov,volume,center_x,center_y,min_x,min_y,max_x,max_y,...`) and the older one whose first
//! column is unnamed (or `X`, `cell` when written by R). The first column is the cell id; `center_x`,
//! `center_y` (micrometres, the MERSCOPE mosaic coordinate system) become `x`, `y`; every other column
//! (`fov`, `volume`, `min_x`, ..., `transcript_count`) is kept with its own name. The two files are joined
//! on the cell id: every cell of `cell_by_gene.csv` must have metadata (an error names how many do not).
//! File names may carry a prefix (`<region>_cell_by_gene.csv`) and be gzipped.
//!
//! Parsing is O(file size), in parallel over lines.
//!
//! Reference: Vizgen, "MERSCOPE output data" and the vizgen-postprocessing (VPT) documentation.

use crate::text_util::{extra_column_name, files_ending, infer_column, parse_wide, qc_column, FieldRole, TextTable};
use crate::ReadOptions;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{CellTable, Dataset, GeneTable};
use tmescope_core::{Error, Result};

/// Finds `(cell_by_gene, cell_metadata)` in a MERSCOPE folder (or beside a given `cell_by_gene` file).
pub fn locate(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = if path.is_file() { path.parent().unwrap_or(Path::new(".")) } else { path };
    let by_gene = if path.is_file() {
        Some(path.to_path_buf())
    } else {
        files_ending(dir, &["cell_by_gene.csv", "cell_by_gene.csv.gz"]).into_iter().next()
    };
    let by_gene = by_gene.ok_or_else(|| Error::file(path, "not a MERSCOPE folder: no cell_by_gene.csv"))?;
    let name = by_gene.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    // Prefer the metadata file with the same prefix as the count file.
    let prefix = name.split("cell_by_gene").next().unwrap_or("").to_string();
    let candidates = files_ending(dir, &["cell_metadata.csv", "cell_metadata.csv.gz"]);
    let meta = candidates
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
        .or(candidates.first())
        .cloned()
        .ok_or_else(|| Error::file(dir, format!("MERSCOPE folder has {name} but no cell_metadata.csv beside it")))?;
    Ok((by_gene, meta))
}

/// Whether `path` looks like a MERSCOPE folder.
pub fn is_merscope(path: &Path) -> bool {
    path.is_dir() && locate(path).is_ok()
}

/// Reads a MERSCOPE folder (or its `cell_by_gene.csv` with `cell_metadata.csv` beside it).
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let (by_gene_path, meta_path) = locate(path)?;
    let mut t = TextTable::read(&by_gene_path, true)?;
    t.fix_row_name_header();
    if t.header.len() < 2 {
        return Err(Error::file(&by_gene_path, "expected a cell id column followed by gene columns"));
    }
    let mut roles = vec![FieldRole::Skip];
    let mut gene_names = Vec::new();
    let mut n_blank = 0usize;
    for h in &t.header[1..] {
        if h.starts_with("Blank-") || h.starts_with("blank-") {
            roles.push(FieldRole::Control(0));
            n_blank += 1;
        } else {
            roles.push(FieldRole::Gene(gene_names.len() as u32));
            gene_names.push(h.clone());
        }
    }
    let ids = t.column_values(0, roles.len())?;
    crate::text_util::check_unique(&by_gene_path, &ids, |i| format!("line {}", t.line_no(i)))?;
    let (rows, qc) = parse_wide(&t, &roles, 1)?;
    let counts = crate::text_util::csr_from_rows(rows, gene_names.len());

    // Metadata, joined on the id.
    let mut m = TextTable::read(&meta_path, true)?;
    m.fix_row_name_header();
    let cx = m.require("center_x")?;
    let cy = m.require("center_y")?;
    let cols = m.all_columns(m.header.len())?;
    let meta_ids = &cols[0];
    let index: HashMap<&str, usize> = meta_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut rows_of = Vec::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in &ids {
        match index.get(id.as_str()) {
            Some(&i) => rows_of.push(i),
            None => missing.push(id.as_str()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::input(
            &meta_path,
            format!("column `{}`", m.header[0]),
            format!(
                "{} of the {} cells of {} have no metadata row (e.g. `{}`); the metadata lists {} cells",
                missing.len(),
                ids.len(),
                by_gene_path.display(),
                missing[0],
                meta_ids.len()
            ),
        ));
    }
    let coord = |c: usize| -> Result<Vec<f64>> {
        rows_of
            .iter()
            .map(|&i| {
                cols[c][i].parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    Error::input(
                        &meta_path,
                        format!("line {}, column `{}`", m.line_no(i), m.header[c]),
                        format!("expected a finite coordinate, found `{}`", cols[c][i]),
                    )
                })
            })
            .collect()
    };
    let x = coord(cx)?;
    let y = coord(cy)?;
    let n = ids.len();
    let mut extra = Vec::new();
    for (c, name) in m.header.iter().enumerate() {
        if c == 0 || c == cx || c == cy || name.is_empty() {
            continue;
        }
        let picked: Vec<String> = rows_of.iter().map(|&i| cols[c][i].clone()).collect();
        extra.push((extra_column_name(name), infer_column(&picked)));
    }
    let mut notes = Vec::new();
    if n_blank > 0 {
        extra.push(("blank_counts".into(), qc_column(&qc[0])));
        notes.push(format!("{n_blank} Blank-* codeword columns summed into the QC column blank_counts, not genes"));
    }
    if meta_ids.len() > n {
        notes.push(format!("{} cells of {} have no counts and were dropped", meta_ids.len() - n, meta_path.display()));
    }
    let cells = CellTable { cell_id: ids, sample: vec![opts.sample.clone(); n], x, y, z: None, extra };
    Ok(Dataset {
        cells,
        genes: GeneTable::from_names(gene_names),
        counts,
        platform: "merscope".into(),
        coordinate_unit: "micrometre".into(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_become_qc_and_join_reorders() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("cell_by_gene.csv"), "cell,A,Blank-1,B\nc1,1,2,0\nc2,0,1,3\n").unwrap();
        std::fs::write(tmp.path().join("cell_metadata.csv"), ",fov,center_x,center_y\nc2,1,5.0,6.0\nc1,1,1.5,2.5\n")
            .unwrap();
        let ds = read(tmp.path(), &ReadOptions::default()).unwrap();
        assert_eq!(ds.genes.gene_name, vec!["A", "B"]);
        assert_eq!(ds.cells.x, vec![1.5, 5.0]);
        assert_eq!(ds.counts.total(), 4.0);
        assert_eq!(ds.cells.get("blank_counts"), Some(&tmescope_core::dataset::Column::Int(vec![Some(2), Some(1)])));
    }
}
