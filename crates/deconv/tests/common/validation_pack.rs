//! Readers of the RCTD validation pack (`../shared/validation/rctd_slideseq`, GPL data read at run time,
//! never copied), shared by the parity test (`tests/rctd_parity.rs`) and the example
//! (`examples/rctd_validation.rs`, which includes this file by path).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};

/// A minimal CSV reader for the R-written files (no embedded commas): rows of unquoted fields.
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect())
        .collect()
}

/// A genes x cells CSV as a dataset (cells x genes).
pub fn matrix_dataset(path: &Path, platform: &str) -> Dataset {
    let rows = read_csv(path);
    let cells: Vec<String> = rows[0][1..].to_vec();
    let genes: Vec<String> = rows[1..].iter().map(|r| r[0].clone()).collect();
    let mut trip = Vec::new();
    for (g, r) in rows[1..].iter().enumerate() {
        for (c, v) in r[1..].iter().enumerate() {
            let x: f64 = v.parse().expect("number");
            if x != 0.0 {
                trip.push((c as u32, g as u32, x));
            }
        }
    }
    let n = cells.len();
    Dataset {
        cells: CellTable {
            cell_id: cells,
            sample: vec!["vignette".into(); n],
            x: vec![f64::NAN; n],
            y: vec![f64::NAN; n],
            z: None,
            extra: vec![],
        },
        genes: GeneTable::from_names(genes.clone()),
        counts: CsrCounts::from_triplets(n, genes.len(), trip, true).expect("counts"),
        platform: platform.into(),
        coordinate_unit: "none".into(),
        notes: vec![],
    }
}

/// A CSV as its header and its rows keyed by the first field.
pub fn named_rows(path: &Path) -> (Vec<String>, HashMap<String, Vec<String>>) {
    let rows = read_csv(path);
    (rows[0].clone(), rows[1..].iter().map(|r| (r[0].clone(), r[1..].to_vec())).collect())
}

/// The validation pack's spatial beads and its reference (with `cell_type` and `nUMI` from the metadata).
pub fn validation_datasets(v: &Path) -> (Dataset, Dataset) {
    let spatial = matrix_dataset(&v.join("spatial/MappedDGEForR.csv"), "slide-seq");
    let mut reference = matrix_dataset(&v.join("reference/dge.csv"), "table");
    let (_, meta) = named_rows(&v.join("reference/meta_data.csv"));
    let ids = reference.cells.cell_id.clone();
    reference.cells.set("cell_type", Column::Text(ids.iter().map(|c| meta.get(c).map(|r| r[0].clone())).collect()));
    reference
        .cells
        .set("nUMI", Column::Float(ids.iter().map(|c| meta.get(c).and_then(|r| r[1].parse().ok())).collect()));
    (spatial, reference)
}
