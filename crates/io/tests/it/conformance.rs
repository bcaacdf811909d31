//! The conformance test body every platform's fixture goes through: totals and non-zeros equal the
//! source exactly, ids unique, coordinates finite (when the platform has positions), schema as documented
//! (checked by writing and reading the dataset back).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::Dataset;
use tmescope_core::provenance::Provenance;

/// A file or folder under `test_data/`.
pub fn test_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test_data").join(rel)
}

/// What the source file holds, computed independently of the reader under test.
pub struct Expected {
    /// Number of cells/spots/bins kept.
    pub n_cells: usize,
    /// Number of genes kept.
    pub n_genes: usize,
    /// Sum of all kept counts.
    pub total: f64,
    /// Number of non-zero entries kept.
    pub nnz: usize,
    /// Whether the platform has positions.
    pub has_coordinates: bool,
}

impl Expected {
    /// The counts of a fixture's `expected.json` (`n_cells`, `n_genes`, `total`, `nnz`).
    pub fn from_json(exp: &serde_json::Value, has_coordinates: bool) -> Self {
        Expected {
            n_cells: exp["n_cells"].as_u64().expect("n_cells") as usize,
            n_genes: exp["n_genes"].as_u64().expect("n_genes") as usize,
            total: exp["total"].as_f64().expect("total"),
            nnz: exp["nnz"].as_u64().expect("nnz") as usize,
            has_coordinates,
        }
    }
}

/// Checks `ds` against `expected` and the data model, and that it survives a write/read round trip.
pub fn check(ds: &Dataset, expected: &Expected) {
    ds.validate(Path::new("fixture")).expect("dataset satisfies the data model");
    assert_eq!(ds.cells.len(), expected.n_cells, "number of cells");
    assert_eq!(ds.genes.len(), expected.n_genes, "number of genes");
    assert_eq!(ds.counts.nnz(), expected.nnz, "non-zeros");
    let total = ds.counts.total();
    assert!(
        (total - expected.total).abs() <= 1e-6 * expected.total.abs().max(1.0),
        "total {total} vs {}",
        expected.total
    );
    let ids: HashSet<_> = ds.cells.cell_id.iter().collect();
    assert_eq!(ids.len(), ds.cells.len(), "cell ids unique");
    if expected.has_coordinates {
        assert!(ds.cells.x.iter().chain(&ds.cells.y).all(|v| v.is_finite()), "coordinates finite");
        assert_ne!(ds.coordinate_unit, "none");
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("ds");
    ds.write(&dir, &Provenance::new("test", serde_json::json!({}))).expect("dataset writes");
    let back = Dataset::read(&dir).expect("dataset reads back");
    assert_eq!(back.counts, ds.counts, "counts survive the round trip");
    assert_eq!(back.genes, ds.genes, "genes survive the round trip");
    assert_eq!(back.cells.cell_id, ds.cells.cell_id);
}
