//! Tests of the text-based readers (MTX, Xenium, MERSCOPE, CosMx, tables).
//!
//! Expected numbers are independent of the readers: literals computed once with Python (numpy/csv/h5py
//! on the same files; the snippet is named in each comment) or values summed from the source text here.

use crate::conformance::{check, test_data, Expected};
use std::io::Write;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::Column;
use tmescope_io::detect::{self, Format};
use tmescope_io::{cosmx, merscope, mtx, table, xenium, ReadOptions};

fn opts() -> ReadOptions {
    ReadOptions { sample: "s1".into(), ..Default::default() }
}

fn err_text(r: tmescope_core::Result<tmescope_core::dataset::Dataset>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            assert!(e.is_user_error(), "{e}");
            e.to_string()
        }
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------- MTX

#[test]
fn mtx_cellranger2() {
    // Python: 343 genes x 12 barcodes, 12 entries summing to 12 (matrix.mtx body).
    let ds = mtx::read(&test_data("tenx/1.2.0/filtered_gene_bc_matrices/hg19_chr21"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 12, n_genes: 343, total: 12.0, nnz: 12, has_coordinates: false });
    assert_eq!(ds.platform, "10x-mtx");
    assert_eq!(ds.coordinate_unit, "none");
    assert_eq!(ds.cells.sample[0], "s1");
}

#[test]
fn mtx_cellranger3_gzipped() {
    // Python: features.tsv.gz has 507 Gene Expression features (no other type); matrix.mtx.gz 23866 entries
    // summing to 41549 over 1107 barcodes (header line `507 1107 23866`).
    let ds = mtx::read(&test_data("tenx/3.0.0/filtered_feature_bc_matrix"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 1107, n_genes: 507, total: 41549.0, nnz: 23866, has_coordinates: false });
    assert!(ds.genes.gene_id[0].starts_with("ENSG"));
}

#[test]
fn mtx_integer_ids() {
    // Python: `real` matrix of 6 features x 5 barcodes, 3 entries summing to 8; ids are integers.
    let ds = mtx::read(&test_data("tables/tenx_int_ids"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 5, n_genes: 6, total: 8.0, nnz: 3, has_coordinates: false });
    assert!(ds.counts.values.is_integer(), "whole numbers in a `real` matrix are stored as integers");
    assert_eq!(ds.genes.gene_id[0], "574405");
}

fn gzip_bytes(text: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text).unwrap();
    enc.finish().unwrap()
}

#[test]
fn mtx_truncated_gz_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = test_data("tenx/3.0.0/filtered_feature_bc_matrix");
    for f in ["barcodes.tsv.gz", "features.tsv.gz"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let full = std::fs::read(src.join("matrix.mtx.gz")).unwrap();
    std::fs::write(tmp.path().join("matrix.mtx.gz"), &full[..full.len() / 2]).unwrap();
    let e = err_text(mtx::read(tmp.path(), &opts()));
    assert!(e.contains("matrix.mtx.gz") && e.contains("truncated"), "{e}");
}

#[test]
fn mtx_duplicate_barcodes_and_empty_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("matrix.mtx"), "%%MatrixMarket matrix coordinate integer general\n1 2 1\n1 1 3\n").unwrap();
    std::fs::write(d.join("genes.tsv"), "g1\tG1\n").unwrap();
    std::fs::write(d.join("barcodes.tsv"), "AAAC-1\nAAAC-1\n").unwrap();
    let e = err_text(mtx::read(d, &opts()));
    assert!(e.contains("barcodes.tsv") && e.contains("duplicate") && e.contains("line 2"), "{e}");
    std::fs::write(d.join("barcodes.tsv"), "AAAC-1\nAAAG-1\n").unwrap();
    std::fs::write(d.join("matrix.mtx"), "%%MatrixMarket matrix coordinate integer general\n1 2 0\n").unwrap();
    let e = err_text(mtx::read(d, &opts()));
    assert!(e.contains("matrix.mtx") && e.contains("empty"), "{e}");
}

// ---------------------------------------------------------------- Xenium

#[test]
fn xenium_cell_feature_matrix_mtx_with_cells_parquet() {
    let dir = test_data("xenium/synthetic");
    let exp = json(&dir.join("expected.json"));
    let ds = xenium::read(&dir, &opts()).unwrap();
    check(&ds, &Expected::from_json(&exp, true));
    assert_eq!(ds.platform, "xenium");
    assert_eq!(ds.coordinate_unit, "micrometre");
    for name in xenium::QC_COLUMNS {
        let want: Vec<Option<i64>> = exp[name].as_array().unwrap().iter().map(|v| v.as_i64()).collect();
        assert_eq!(ds.cells.get(name), Some(&Column::Int(want)), "{name}");
    }
    assert!(ds.cells.get("cell_area").is_some() && ds.cells.get("source_total_counts").is_some());
    assert!(ds.genes.gene_name.iter().all(|g| !g.starts_with("NegControl") && !g.starts_with("BLANK")));
}

#[test]
fn xenium_small_r_written_h5_and_cells_csv_gz() {
    // Python (h5py): matrix/shape [4, 6] (float64), 15 stored values summing to 21, 3 of them explicit zeros
    // (dropped: the data model stores non-zeros only), barcodes `1`..`6`, all Gene Expression; cells.csv.gz
    // has 6 cells with an unnamed R row-name column.
    let dir = test_data("xenium/xenium_small");
    let ds = xenium::read(&dir, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 6, n_genes: 4, total: 21.0, nnz: 12, has_coordinates: true });
    assert_eq!(ds.cells.cell_id, vec!["1", "2", "3", "4", "5", "6"]);
    assert!((ds.cells.x[0] - 1898.81491699219).abs() < 1e-9);
    assert!(ds.cells.get("nucleus_area").is_some() && ds.cells.get("").is_none());
    assert_eq!(
        ds.cells.get("transcript_counts"),
        Some(&Column::Int(vec![Some(384), Some(146), Some(81), Some(314), Some(639), Some(270)]))
    );
}

#[test]
fn xenium_transcripts_match_the_matrix() {
    let dir = test_data("xenium/synthetic");
    let exp = json(&dir.join("expected.json"));
    // Transcripts alone: cells from first appearance, centroids from transcript positions.
    let alone = xenium::read(&dir.join("transcripts.parquet"), &opts()).unwrap();
    check(&alone, &Expected::from_json(&exp, true));
    assert!(alone.cells.z.is_some());
    // The same counts as the cell-feature matrix, cell by cell and gene by gene.
    let matrix = xenium::read(&dir, &opts()).unwrap();
    let pos: std::collections::HashMap<&str, usize> =
        alone.cells.cell_id.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    for (i, id) in matrix.cells.cell_id.iter().enumerate() {
        let a: Vec<(u32, f64)> = matrix.counts.row_iter(i).collect();
        let b: Vec<(u32, f64)> = match pos.get(id.as_str()) {
            Some(&j) => alone.counts.row_iter(j).collect(),
            None => vec![],
        };
        assert_eq!(a, b, "cell {id}");
    }
    for name in xenium::QC_COLUMNS {
        let want: Vec<Option<i64>> = exp[name].as_array().unwrap().iter().map(|v| v.as_i64()).collect();
        let got = match alone.cells.get(name) {
            Some(Column::Int(v)) => matrix
                .cells
                .cell_id
                .iter()
                .map(|id| pos.get(id.as_str()).map_or(Some(0), |&j| v[j]))
                .collect::<Vec<_>>(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn xenium_integer_cell_ids_and_binary_feature_names() {
    let dir = test_data("xenium/synthetic_int_ids");
    let exp = json(&dir.join("expected.json"));
    let ds = xenium::read(&dir, &opts()).unwrap();
    check(&ds, &Expected::from_json(&exp, true));
    let ids: Vec<String> =
        exp["first_cell_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(&ds.cells.cell_id[..3], &ids[..]);
    for (k, x) in exp["first_cell_x"].as_array().unwrap().iter().enumerate() {
        assert!((ds.cells.x[k] - x.as_f64().unwrap()).abs() < 1e-3, "centroid {k}");
    }
}

#[test]
fn xenium_min_qv_is_applied() {
    let dir = test_data("xenium/synthetic/transcripts.parquet");
    let strict = xenium::read(&dir, &ReadOptions { min_qv: 30.0, ..opts() }).unwrap();
    let default = xenium::read(&dir, &opts()).unwrap();
    let all = xenium::read(&dir, &ReadOptions { min_qv: 0.0, ..opts() }).unwrap();
    assert!(strict.counts.total() < default.counts.total() && default.counts.total() < all.counts.total());
}

#[test]
fn xenium_matrix_ids_must_match_the_cells_table() {
    let tmp = tempfile::tempdir().unwrap();
    let src = test_data("xenium/synthetic");
    let out = tmp.path().join("outs");
    std::fs::create_dir_all(out.join("cell_feature_matrix")).unwrap();
    for f in ["matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"] {
        std::fs::copy(src.join("cell_feature_matrix").join(f), out.join("cell_feature_matrix").join(f)).unwrap();
    }
    std::fs::write(out.join("cells.csv"), "cell_id,x_centroid,y_centroid\nother-1,1,2\n").unwrap();
    let e = err_text(xenium::read(&out, &opts()));
    assert!(e.contains("cells.csv") && e.contains("12 of the 12 cells"), "{e}");
}

#[test]
fn xenium_missing_transcript_column() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("transcripts.parquet");
    // A Parquet file without the qv column.
    use arrow::array::{ArrayRef, Float32Array, StringArray};
    let batch = arrow::array::RecordBatch::try_from_iter(vec![
        ("cell_id", std::sync::Arc::new(StringArray::from(vec!["a-1"])) as ArrayRef),
        ("feature_name", std::sync::Arc::new(StringArray::from(vec!["EPCAM"])) as ArrayRef),
        ("x_location", std::sync::Arc::new(Float32Array::from(vec![1.0])) as ArrayRef),
        ("y_location", std::sync::Arc::new(Float32Array::from(vec![1.0])) as ArrayRef),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let e = err_text(xenium::read(&p, &opts()));
    assert!(e.contains("transcripts.parquet") && e.contains("`qv`"), "{e}");
}

#[test]
fn xenium_truncated_cells_gz() {
    let tmp = tempfile::tempdir().unwrap();
    let src = test_data("xenium/synthetic");
    let out = tmp.path().join("outs");
    std::fs::create_dir_all(out.join("cell_feature_matrix")).unwrap();
    for f in ["matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"] {
        std::fs::copy(src.join("cell_feature_matrix").join(f), out.join("cell_feature_matrix").join(f)).unwrap();
    }
    let mut text = String::from("cell_id,x_centroid,y_centroid\n");
    for i in 0..3000 {
        text.push_str(&format!("cell{i}-1,{i}.5,{i}.25\n"));
    }
    let gz = gzip_bytes(text.as_bytes());
    std::fs::write(out.join("cells.csv.gz"), &gz[..gz.len() - 40]).unwrap();
    let e = err_text(xenium::read(&out, &opts()));
    assert!(e.contains("cells.csv.gz") && e.contains("truncated"), "{e}");
}

// ---------------------------------------------------------------- MERSCOPE

#[test]
fn merscope_vpt() {
    // Python (csv + numpy): 997 cells x 130 genes (no Blank-* column), sum 590155, 83041 non-zeros.
    let ds = merscope::read(&test_data("merscope"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 997, n_genes: 130, total: 590155.0, nnz: 83041, has_coordinates: true });
    assert_eq!(ds.platform, "merscope");
    assert!(matches!(ds.cells.get("volume"), Some(Column::Float(_))));
    // VPT leaves `fov` empty here: kept as a column of missing values, not an error.
    assert!(ds.cells.get("fov").is_some());
    assert!((ds.cells.x[0] - 37.82719630835313).abs() < 1e-9);
}

#[test]
fn merscope_r_written_order_and_prefix() {
    // Python: 8 cells x 9 genes, all zero; metadata (first column `X`) lists the cells in another order.
    let ds = merscope::read(&test_data("merscope/r_written"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 8, n_genes: 9, total: 0.0, nnz: 0, has_coordinates: true });
    let i = ds.cells.cell_id.iter().position(|c| c == "88869").unwrap();
    assert!((ds.cells.x[i] - 12501.3060081969).abs() < 1e-9);
}

#[test]
fn merscope_blank_columns_and_mismatched_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("cell_by_gene.csv"), "cell,A,Blank-0,B,Blank-1\n1,2,1,0,4\n2,0,0,3,0\n").unwrap();
    std::fs::write(
        d.join("cell_metadata.csv"),
        "EntityID,fov,volume,center_x,center_y\n1,0,10,1.0,2.0\n2,0,11,3.0,4.0\n",
    )
    .unwrap();
    let ds = merscope::read(d, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 2, n_genes: 2, total: 5.0, nnz: 2, has_coordinates: true });
    assert_eq!(ds.cells.get("blank_counts"), Some(&Column::Int(vec![Some(5), Some(0)])));
    std::fs::write(
        d.join("cell_metadata.csv"),
        "EntityID,fov,volume,center_x,center_y\n1,0,10,1.0,2.0\n7,0,11,3.0,4.0\n",
    )
    .unwrap();
    let e = err_text(merscope::read(d, &opts()));
    assert!(e.contains("cell_metadata.csv") && e.contains("1 of the 2 cells") && e.contains("`2`"), "{e}");
    std::fs::write(d.join("cell_metadata.csv"), "EntityID,fov,volume,center_y\n1,0,10,2.0\n").unwrap();
    let e = err_text(merscope::read(d, &opts()));
    assert!(e.contains("`center_x`") && e.contains("missing"), "{e}");
}

// ---------------------------------------------------------------- CosMx

#[test]
fn cosmx_expression_matrix_and_metadata() {
    // Python: 9 cells (fov 10, cell_ID 1-9, none 0) x 8 targets, sum 7, 5 non-zeros.
    let ds = cosmx::read(&test_data("cosmx/r_written"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 9, n_genes: 8, total: 7.0, nnz: 5, has_coordinates: true });
    assert_eq!(ds.cells.cell_id[0], "c_10_1");
    assert!((ds.cells.x[0] - 25423.7777777778 * cosmx::UM_PER_PX).abs() < 1e-6);
    assert_eq!(
        ds.cells.get("Area"),
        Some(&Column::Int(vec![5836, 6841, 3300, 3296, 2240, 5142, 12591, 2461, 5439].into_iter().map(Some).collect()))
    );
}

#[test]
fn cosmx_transcripts_aggregated() {
    // Python (csv): 25825 transcripts; cell_ID != 0 leaves 120 cells; of their transcripts 182 are NegPrb*
    // controls and 18783 hit 960 distinct targets, in 11648 distinct (cell, target) pairs.
    let ds = cosmx::read(&test_data("cosmx"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 120, n_genes: 960, total: 18783.0, nnz: 11648, has_coordinates: true });
    let neg: i64 = match ds.cells.get("negprobe_counts") {
        Some(Column::Int(v)) => v.iter().flatten().sum(),
        other => panic!("{other:?}"),
    };
    assert_eq!(neg, 182);
}

#[test]
fn cosmx_background_dropped_and_controls_split() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("r_exprMat_file.csv"),
        "fov,cell_ID,A,NegPrb1,SystemControl2,B\n1,0,9,9,9,9\n1,1,2,1,3,0\n2,1,0,0,0,5\n",
    )
    .unwrap();
    std::fs::write(
        d.join("r_metadata_file.csv"),
        "fov,cell_ID,CenterX_global_px,CenterY_global_px\n1,1,100,200\n2,1,300,400\n",
    )
    .unwrap();
    let ds = cosmx::read(d, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 2, n_genes: 2, total: 7.0, nnz: 2, has_coordinates: true });
    assert_eq!(ds.cells.cell_id, vec!["c_1_1", "c_2_1"]);
    assert_eq!(ds.cells.get("negprobe_counts"), Some(&Column::Int(vec![Some(1), Some(0)])));
    assert_eq!(ds.cells.get("systemcontrol_counts"), Some(&Column::Int(vec![Some(3), Some(0)])));
    // A non-numeric count names the line and the column.
    std::fs::write(d.join("r_exprMat_file.csv"), "fov,cell_ID,A,B\n1,1,2,0\n2,1,zero,5\n").unwrap();
    let e = err_text(cosmx::read(d, &opts()));
    assert!(e.contains("r_exprMat_file.csv") && e.contains("line 3") && e.contains("`A`"), "{e}");
}

// ---------------------------------------------------------------- tables

#[test]
fn table_cells_by_genes_with_obs_and_labels() {
    // Summed by hand from counts_cells_by_genes.csv: 5 cells x 4 genes, total 34, 9 non-zeros.
    let o = ReadOptions { obs: Some(test_data("tables/obs.csv")), label_column: Some("cell_type".into()), ..opts() };
    let ds = table::read(&test_data("tables/counts_cells_by_genes.csv"), &o).unwrap();
    check(&ds, &Expected { n_cells: 5, n_genes: 4, total: 34.0, nnz: 9, has_coordinates: true });
    assert_eq!(ds.cells.x[2], 30.25);
    assert_eq!(ds.coordinate_unit, "pixel");
    assert!(matches!(ds.cells.get("cell_type"), Some(Column::Text(v)) if v[3].as_deref() == Some("B cell")));
    assert!(ds.cells.get("patient").is_some());
}

#[test]
fn table_separate_coordinates() {
    let o = ReadOptions {
        coords: Some(test_data("tables/coords.csv")),
        x_column: Some("xcoord".into()),
        y_column: Some("ycoord".into()),
        ..opts()
    };
    let ds = table::read(&test_data("tables/counts_cells_by_genes.csv"), &o).unwrap();
    assert_eq!(ds.cells.x, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn table_parquet_counts() {
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("counts.parquet");
    let batch = arrow::array::RecordBatch::try_from_iter(vec![
        ("cell", std::sync::Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef),
        ("x_centroid", std::sync::Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as ArrayRef),
        ("y_centroid", std::sync::Arc::new(Float64Array::from(vec![4.0, 5.0, 6.0])) as ArrayRef),
        ("G1", std::sync::Arc::new(Int64Array::from(vec![0, 3, 1])) as ArrayRef),
        ("G2", std::sync::Arc::new(Int64Array::from(vec![2, 0, 0])) as ArrayRef),
    ])
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let ds = table::read(&p, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 3, n_genes: 2, total: 6.0, nnz: 3, has_coordinates: true });
    assert_eq!(ds.coordinate_unit, "micrometre");
    // Genes in rows: the same file read the other way round has 2 "cells" (G1, G2 columns become cells).
    let t = table::read(&p, &ReadOptions { genes_in_rows: true, ..opts() });
    assert!(t.is_ok());
}

#[test]
fn table_oligodendroglioma_reference() {
    // Python (numpy): 10,338 genes x 184 cells (header has one field fewer than the rows), 771,850
    // non-zeros, values rounded to f32 sum to 18322440.677537367; annotations have no header.
    let dir = test_data("reference/oligodendroglioma");
    let o = ReadOptions {
        genes_in_rows: true,
        obs: Some(dir.join("oligodendroglioma_annotations_downsampled.txt")),
        label_column: Some("column_2".into()),
        ..opts()
    };
    let ds = table::read(&dir.join("oligodendroglioma_expression_downsampled.counts.matrix.gz"), &o).unwrap();
    check(
        &ds,
        &Expected { n_cells: 184, n_genes: 10338, total: 18322440.677537367, nnz: 771850, has_coordinates: false },
    );
    assert!(!ds.counts.values.is_integer());
    let types: std::collections::BTreeSet<String> = match ds.cells.get("cell_type") {
        Some(Column::Text(v)) => v.iter().flatten().cloned().collect(),
        other => panic!("{other:?}"),
    };
    assert!(types.contains("Microglia/Macrophage") && types.len() == 6, "{types:?}");
}

/// Sums a genes x cells CSV (quoted names, first column gene) independently of the reader.
fn sum_csv(path: &Path) -> (usize, usize, f64, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let n_cols = lines.next().unwrap().split(',').count() - 1;
    let (mut rows, mut total, mut nnz) = (0, 0.0, 0);
    for l in lines.filter(|l| !l.is_empty()) {
        rows += 1;
        for v in l.split(',').skip(1) {
            let v: f64 = v.parse().unwrap();
            total += v;
            nnz += (v != 0.0) as usize;
        }
    }
    (rows, n_cols, total, nnz)
}

const RCTD: &str = "/work/shared/validation/rctd_slideseq";

#[test]
fn table_rctd_slideseq_layout() {
    let root = PathBuf::from(RCTD);
    if !root.is_dir() {
        eprintln!("skipped: {RCTD} not present");
        return;
    }
    // Spatial: genes x beads counts + bead locations `barcodes,xcoord,ycoord`.
    let dge = root.join("spatial/MappedDGEForR.csv");
    let (n_genes, n_beads, total, nnz) = sum_csv(&dge);
    let o = ReadOptions { genes_in_rows: true, coords: Some(root.join("spatial/BeadLocationsForR.csv")), ..opts() };
    let ds = table::read(&dge, &o).unwrap();
    check(&ds, &Expected { n_cells: n_beads, n_genes, total, nnz, has_coordinates: true });
    // Reference: genes x cells + meta_data.csv with the label column `cluster`.
    let dge = root.join("reference/dge.csv");
    let (n_genes, n_cells, total, nnz) = sum_csv(&dge);
    let o = ReadOptions {
        genes_in_rows: true,
        obs: Some(root.join("reference/meta_data.csv")),
        label_column: Some("cluster".into()),
        ..opts()
    };
    let ds = table::read(&dge, &o).unwrap();
    check(&ds, &Expected { n_cells, n_genes, total, nnz, has_coordinates: false });
    assert!(ds.cells.get("cell_type").is_some() && ds.cells.get("nUMI").is_some());
}

#[test]
fn table_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Non-numeric count.
    let p = d.join("c.csv");
    std::fs::write(&p, "cell,A,B\nc1,1,2\nc2,3,n/a\n").unwrap();
    let e = err_text(table::read(&p, &opts()));
    assert!(e.contains("c.csv") && e.contains("line 3") && e.contains("`B`") && e.contains("n/a"), "{e}");
    // Wrong delimiter: a semicolon file read as one column of text per line -> no gene columns.
    let p = d.join("semi.csv");
    std::fs::write(&p, "cell;A;B\nc1;1;2\n").unwrap();
    let e = err_text(table::read(&p, &opts()));
    assert!(e.contains("semi.csv") && e.contains("no gene columns"), "{e}");
    // Ragged row (a comma inside a TSV row).
    let p = d.join("r.tsv");
    std::fs::write(&p, "cell\tA\tB\nc1\t1\t2\nc2\t1\n").unwrap();
    let e = err_text(table::read(&p, &opts()));
    assert!(e.contains("r.tsv") && e.contains("line 3") && e.contains("expected 3 fields"), "{e}");
    // Empty matrix.
    let p = d.join("empty.csv");
    std::fs::write(&p, "cell,A,B\n").unwrap();
    let e = err_text(table::read(&p, &opts()));
    assert!(e.contains("empty.csv") && e.contains("empty matrix"), "{e}");
    // Duplicate cell ids.
    let p = d.join("dup.csv");
    std::fs::write(&p, "cell,A\nc1,1\nc1,2\n").unwrap();
    let e = err_text(table::read(&p, &opts()));
    assert!(e.contains("dup.csv") && e.contains("duplicate"), "{e}");
    // Coordinates whose ids do not match the counts.
    let coords = d.join("xy.csv");
    std::fs::write(&coords, "id,x,y\nzz,1,2\n").unwrap();
    let e = err_text(table::read(
        &test_data("tables/counts_cells_by_genes.csv"),
        &ReadOptions { coords: Some(coords), ..opts() },
    ));
    assert!(e.contains("xy.csv") && e.contains("5 of the 5 cells"), "{e}");
    // Empty coordinate.
    let coords = d.join("nan.csv");
    std::fs::write(&coords, "id,x,y\ncell_a,1,2\ncell_b,,2\ncell_c,1,2\ncell_d,1,2\ncell_e,1,2\n").unwrap();
    let e = err_text(table::read(
        &test_data("tables/counts_cells_by_genes.csv"),
        &ReadOptions { coords: Some(coords), ..opts() },
    ));
    assert!(e.contains("nan.csv") && e.contains("cell_b") && e.contains("finite"), "{e}");
    // Truncated gzip.
    let p = d.join("m.csv.gz");
    let mut text = String::from("cell,A\n");
    for i in 0..5000 {
        text.push_str(&format!("c{i},{i}\n"));
    }
    let gz = gzip_bytes(text.as_bytes());
    std::fs::write(&p, &gz[..gz.len() * 2 / 3]).unwrap();
    let e = err_text(table::read(&p, &opts()));
    assert!(e.contains("m.csv.gz") && e.contains("truncated"), "{e}");
}

// ---------------------------------------------------------------- detection

#[test]
fn formats_are_detected() {
    assert_eq!(detect::detect(&test_data("xenium/synthetic")).unwrap(), Format::Xenium);
    assert_eq!(detect::detect(&test_data("xenium/xenium_small")).unwrap(), Format::Xenium);
    assert_eq!(detect::detect(&test_data("xenium/synthetic_int_ids/transcripts.parquet")).unwrap(), Format::Xenium);
    assert_eq!(detect::detect(&test_data("merscope")).unwrap(), Format::Merscope);
    assert_eq!(detect::detect(&test_data("merscope/r_written")).unwrap(), Format::Merscope);
    assert_eq!(detect::detect(&test_data("cosmx")).unwrap(), Format::Cosmx);
    assert_eq!(detect::detect(&test_data("cosmx/r_written")).unwrap(), Format::Cosmx);
    assert_eq!(detect::detect(&test_data("tenx/3.0.0/filtered_feature_bc_matrix")).unwrap(), Format::TenxMtx);
    assert_eq!(detect::detect(&test_data("tables/counts_cells_by_genes.csv")).unwrap(), Format::Table);
    assert_eq!(detect::detect(&test_data("tenx/3.0.0/filtered_feature_bc_matrix.h5")).unwrap(), Format::TenxH5);
    let ds = detect::read(&test_data("cosmx/r_written"), Format::Cosmx, &opts()).unwrap();
    assert_eq!(ds.platform, "cosmx");
    assert!(detect::detect(Path::new("/nonexistent/x")).is_err());
}
