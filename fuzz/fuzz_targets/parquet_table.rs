//! The Parquet table layer every stage reads its inputs with (`tmescope_core::parquet_io::Table`) and the
//! dataset-folder readers on top of it: the input becomes `cells.parquet`, `genes.parquet` or
//! `counts.parquet` of a dataset folder whose other two files are valid.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Dataset, GeneTable};
use tmescope_core::parquet_io::Table;
use tmescope_core::provenance::Provenance;

/// A valid two-cell, two-gene dataset folder written once.
fn valid() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary folder");
        let ds = Dataset {
            cells: CellTable {
                cell_id: vec!["a".into(), "b".into()],
                sample: vec!["s".into(), "s".into()],
                x: vec![0.0, 1.0],
                y: vec![0.0, 1.0],
                z: None,
                extra: vec![],
            },
            genes: GeneTable::from_names(vec!["G1".into(), "G2".into()]),
            counts: CsrCounts::from_triplets(2, 2, vec![(0, 0, 1.0), (1, 1, 2.0)], true).expect("counts"),
            platform: "table".into(),
            coordinate_unit: "micrometre".into(),
            notes: vec![],
        };
        ds.write(&dir.path().join("ds"), &Provenance::new("fuzz", serde_json::json!({}))).expect("dataset");
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    common::tolerate_guarded_panics(&["/parquet-", "/arrow-"]);
    let Some((&pick, body)) = data.split_first() else { return };
    let name = ["cells.parquet", "genes.parquet", "counts.parquet"][usize::from(pick % 3)];
    let dir = tempfile::tempdir().expect("temporary folder");
    for f in ["cells.parquet", "genes.parquet", "counts.parquet"] {
        std::fs::copy(valid().join("ds").join(f), dir.path().join(f)).expect("copy");
    }
    std::fs::write(dir.path().join(name), body).expect("write fuzz input");
    if let Ok(t) = Table::read(&dir.path().join(name)) {
        for c in t.column_names() {
            let _ = (t.f64(&c), t.u32(&c), t.u64(&c), t.utf8(&c), t.utf8_opt(&c), t.i64_opt(&c));
        }
    }
    if let Ok(ds) = Dataset::read(dir.path()) {
        let _ = ds.validate(dir.path());
    }
});
