//! Tests of the HDF5-based readers (10x h5, h5ad, Visium) on the real fixtures in `test_data/`, plus
//! synthetic files written here with `rust-hdf5` for the cases no public fixture covers.
//!
//! Expected totals and non-zeros come from outside the reader under test: from the MTX twin of the same
//! data (parsed by the small independent summer below), or from `scanpy.read_10x_h5` /
//! `anndata.read_h5ad` (scanpy 1.11.5, anndata 0.12, h5py 3.16), run once and written as literals.

use crate::conformance::{check, test_data, Expected};
use rust_hdf5::H5File;
use std::io::Read;
use std::path::Path;
use tmescope_core::counts::CountValues;
use tmescope_core::dataset::Column;
use tmescope_io::{h5ad, tenx_h5, visium, ReadOptions};

/// Sum and number of non-zero entries of a Matrix Market file (gzipped or not), parsed independently.
fn mtx_totals(path: &Path) -> (f64, usize) {
    let raw = std::fs::read(path).unwrap();
    let mut text = String::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_string(&mut text).unwrap();
    } else {
        text = String::from_utf8(raw).unwrap();
    }
    let mut lines = text.lines().filter(|l| !l.starts_with('%'));
    lines.next(); // size line
    let (mut total, mut nnz) = (0.0, 0);
    for l in lines {
        let v: f64 = l.split_whitespace().nth(2).unwrap().parse().unwrap();
        total += v;
        nnz += (v != 0.0) as usize;
    }
    (total, nnz)
}

fn opts() -> ReadOptions {
    ReadOptions { sample: "s1".into(), ..Default::default() }
}

fn err_text<T: std::fmt::Debug>(r: tmescope_core::Result<T>) -> String {
    let e = r.expect_err("must fail");
    assert!(e.is_user_error(), "expected a user error (exit 2), got {e:?}");
    e.to_string()
}

fn text_col(ds: &tmescope_core::dataset::Dataset, name: &str) -> Vec<Option<String>> {
    ds.cells.get(name).unwrap_or_else(|| panic!("column {name}")).as_text()
}

// ---------------------------------------------------------------------------------------------------
// 10x HDF5

#[test]
fn cellranger2_h5_matches_its_mtx_twin() {
    let ds = tenx_h5::read(&test_data("tenx/1.2.0/filtered_gene_bc_matrices_h5.h5"), &opts()).unwrap();
    let (total, nnz) = mtx_totals(&test_data("tenx/1.2.0/filtered_gene_bc_matrices/hg19_chr21/matrix.mtx"));
    check(&ds, &Expected { n_cells: 12, n_genes: 343, total, nnz, has_coordinates: false });
    assert_eq!(ds.platform, "10x-h5");
    assert_eq!(ds.coordinate_unit, "none");
    assert!(ds.cells.x.iter().all(|x| x.is_nan()));
    assert!(ds.cells.sample.iter().all(|s| s == "s1"));
    assert!(ds.counts.values.is_integer());
    assert_eq!(ds.genes.feature_type[0], "Gene Expression");
}

#[test]
fn cellranger3_h5_matches_its_mtx_twin() {
    let ds = tenx_h5::read(&test_data("tenx/3.0.0/filtered_feature_bc_matrix.h5"), &opts()).unwrap();
    let (total, nnz) = mtx_totals(&test_data("tenx/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz"));
    // scanpy.read_10x_h5: (1107, 507), total 41549, nnz 23866.
    assert_eq!((total, nnz), (41549.0, 23866));
    check(&ds, &Expected { n_cells: 1107, n_genes: 507, total, nnz, has_coordinates: false });
    assert!(ds.genes.gene_id[0].starts_with("ENSG"));
    assert_ne!(ds.genes.gene_id[0], ds.genes.gene_name[0]);
}

#[test]
fn multi_genome_h5_keeps_every_genome() {
    let ds = tenx_h5::read(&test_data("tenx/1.2.0/multiple_genomes.h5"), &opts()).unwrap();
    // scanpy.read_10x_h5(genome=...): hg19_chr21 12 x 343, total 12, nnz 12; another_genome 12 x 343,
    // total 13, nnz 12; same barcodes, no shared gene id.
    check(&ds, &Expected { n_cells: 12, n_genes: 686, total: 25.0, nnz: 24, has_coordinates: false });
    assert!(ds.notes.iter().any(|n| n.contains("multi-genome") && n.contains("another_genome")), "{:?}", ds.notes);
}

#[test]
fn float_data_that_is_whole_becomes_integer_counts() {
    // Space Ranger 1.0 fixture stores `data` as float64; scanpy: (100, 100), total 932, nnz 656.
    let ds = tenx_h5::read(&test_data("visium_sr1/1.0.0/filtered_feature_bc_matrix.h5"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 100, n_genes: 100, total: 932.0, nnz: 656, has_coordinates: false });
    assert!(ds.counts.values.is_integer());
}

#[test]
fn probe_based_h5_matches_scanpy() {
    // scanpy.read_10x_h5: 4987 barcodes x 1000 probes, total 3372, nnz 858; 2348 filtered barcodes.
    let ds = tenx_h5::read(&test_data("visium_sr1/sr2.1_raw_probe_bc_matrix.h5"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 4987, n_genes: 1000, total: 3372.0, nnz: 858, has_coordinates: false });
    assert_eq!(ds.genes.gene_name[0], "Itgb2l|2ef1e7b");
    assert!(ds.genes.gene_id[0].starts_with("DEPRECATED_ENSMUSG00000000157|Itgb2l"));
    let Some(Column::Bool(fb)) = ds.cells.get("filtered_barcodes") else { panic!("filtered_barcodes column") };
    assert_eq!(fb.iter().filter(|b| **b == Some(true)).count(), 2348);
    assert!(ds.notes.iter().any(|n| n.contains("682 of 1000 probes")), "{:?}", ds.notes);
}

/// Writes a small Cell Ranger 3 style h5: 3 barcodes x 4 features (2 genes, 1 antibody, 1 CRISPR).
struct Tiny {
    indptr: Vec<f64>,
    indices: Vec<f64>,
    data: Vec<f64>,
    float_index: bool,
    float_data: bool,
    barcodes: Vec<&'static str>,
    skip: Option<&'static str>,
}

impl Default for Tiny {
    fn default() -> Self {
        Tiny {
            // column (barcode) j holds rows indices[indptr[j]..indptr[j+1]]
            indptr: vec![0.0, 2.0, 4.0, 6.0],
            indices: vec![0.0, 2.0, 1.0, 3.0, 0.0, 1.0],
            data: vec![1.0, 5.0, 2.0, 7.0, 3.0, 4.0],
            float_index: false,
            float_data: false,
            barcodes: vec!["AAA-1", "CCC-1", "GGG-1"],
            skip: None,
        }
    }
}

impl Tiny {
    fn write(&self, path: &Path) {
        let f = H5File::create(path).unwrap();
        let m = f.create_group("matrix").unwrap();
        let skip = |n: &str| self.skip == Some(n);
        let num = |name: &str, v: &[f64], float: bool| {
            if skip(name) {
                return;
            }
            if float {
                m.new_dataset::<f64>().shape([v.len()]).create(name).unwrap().write_raw(v).unwrap();
            } else {
                let w: Vec<i64> = v.iter().map(|&x| x as i64).collect();
                m.new_dataset::<i64>().shape([w.len()]).create(name).unwrap().write_raw(&w).unwrap();
            }
        };
        num("indptr", &self.indptr, self.float_index);
        num("indices", &self.indices, self.float_index);
        num("data", &self.data, self.float_data);
        num("shape", &[4.0, self.barcodes.len() as f64], self.float_index);
        if !skip("barcodes") {
            m.write_vlen_strings("barcodes", &self.barcodes).unwrap();
        }
        let ft = m.create_group("features").unwrap();
        ft.write_vlen_strings("id", &["ENSG1", "ENSG2", "AB1", "GUIDE1"]).unwrap();
        ft.write_vlen_strings("name", &["GENE1", "GENE2", "CD3_TotalSeqB", "g1"]).unwrap();
        ft.write_vlen_strings(
            "feature_type",
            &["Gene Expression", "Gene Expression", "Antibody Capture", "CRISPR Guide Capture"],
        )
        .unwrap();
        ft.write_vlen_strings("genome", &["GRCh38", "GRCh38", "", ""]).unwrap();
        f.close().unwrap();
    }
}

#[test]
fn only_gene_expression_is_kept_and_the_rest_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("m.h5");
    Tiny::default().write(&p);
    let ds = tenx_h5::read(&p, &opts()).unwrap();
    // Gene rows 0 and 1 hold 1 + 2 + 3 + 4 = 10 in 4 entries; antibody 5, CRISPR 7 dropped.
    check(&ds, &Expected { n_cells: 3, n_genes: 2, total: 10.0, nnz: 4, has_coordinates: false });
    assert_eq!(ds.genes.gene_name, vec!["GENE1", "GENE2"]);
    let notes = ds.notes.join("\n");
    assert!(notes.contains("1 features of type `Antibody Capture` (5 counts)"), "{notes}");
    assert!(notes.contains("CRISPR Guide Capture"), "{notes}");
    assert_eq!(ds.counts.row_totals(), vec![1.0, 2.0, 7.0]);

    let all = tenx_h5::read(&p, &ReadOptions { all_feature_types: true, ..opts() }).unwrap();
    check(&all, &Expected { n_cells: 3, n_genes: 4, total: 22.0, nnz: 6, has_coordinates: false });
}

#[test]
fn r_written_float64_index_arrays_are_accepted_when_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("r.h5");
    Tiny { float_index: true, float_data: true, ..Default::default() }.write(&p);
    let ds = tenx_h5::read(&p, &ReadOptions { all_feature_types: true, ..opts() }).unwrap();
    check(&ds, &Expected { n_cells: 3, n_genes: 4, total: 22.0, nnz: 6, has_coordinates: false });
    assert!(ds.counts.values.is_integer());
}

#[test]
fn r_written_xenium_matrix_with_float64_indices_reads() {
    // SpatialExperimentIO's Xenium_small cell_feature_matrix.h5 (R rhdf5: indices/indptr/shape/data float64).
    // h5py: shape [4, 6], 15 stored values (3 explicit zeros, dropped) summing to 21, all Gene Expression.
    let ds = tenx_h5::read(&test_data("xenium/xenium_small/cell_feature_matrix.h5"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 6, n_genes: 4, total: 21.0, nnz: 12, has_coordinates: false });
    assert!(ds.counts.values.is_integer());
    assert_eq!(ds.genes.gene_name[0], "ABCC11");
}

#[test]
fn non_whole_float64_indices_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.h5");
    Tiny { float_index: true, indices: vec![0.0, 2.5, 1.0, 3.0, 0.0, 1.0], ..Default::default() }.write(&p);
    let e = err_text(tenx_h5::read(&p, &opts()));
    assert!(e.contains("bad.h5") && e.contains("matrix/indices") && e.contains("2.5"), "{e}");
}

#[test]
fn non_integer_float_data_stays_float() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("f.h5");
    Tiny { float_data: true, data: vec![0.5, 5.0, 2.25, 7.0, 3.0, 4.0], ..Default::default() }.write(&p);
    let ds = tenx_h5::read(&p, &opts()).unwrap();
    assert!(matches!(ds.counts.values, CountValues::F32(_)));
    check(&ds, &Expected { n_cells: 3, n_genes: 2, total: 9.75, nnz: 4, has_coordinates: false });
}

#[test]
fn missing_datasets_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    for what in ["indptr", "indices", "data", "barcodes"] {
        let p = tmp.path().join(format!("no_{what}.h5"));
        Tiny { skip: Some(what), ..Default::default() }.write(&p);
        let e = err_text(tenx_h5::read(&p, &opts()));
        assert!(e.contains(&format!("matrix/{what}")) && e.contains("missing"), "{e}");
    }
}

#[test]
fn inconsistent_structure_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("ptr.h5");
    Tiny { indptr: vec![0.0, 4.0, 2.0, 6.0], ..Default::default() }.write(&p);
    assert!(err_text(tenx_h5::read(&p, &opts())).contains("must not decrease"));
    let p = tmp.path().join("idx.h5");
    Tiny { indices: vec![0.0, 9.0, 1.0, 3.0, 0.0, 1.0], ..Default::default() }.write(&p);
    assert!(err_text(tenx_h5::read(&p, &opts())).contains("outside"));
    let p = tmp.path().join("neg.h5");
    Tiny { data: vec![1.0, -5.0, 2.0, 7.0, 3.0, 4.0], ..Default::default() }.write(&p);
    assert!(err_text(tenx_h5::read(&p, &opts())).contains("matrix/data"));
    let p = tmp.path().join("dup.h5");
    Tiny { barcodes: vec!["AAA-1", "CCC-1", "AAA-1"], ..Default::default() }.write(&p);
    assert!(err_text(tenx_h5::read(&p, &opts())).contains("duplicate"));
}

#[test]
fn truncated_or_garbage_h5_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = std::fs::read(test_data("tenx/3.0.0/filtered_feature_bc_matrix.h5")).unwrap();
    for keep in [0, 100, 2_000, src.len() / 2] {
        let p = tmp.path().join(format!("cut_{keep}.h5"));
        std::fs::write(&p, &src[..keep]).unwrap();
        let e = err_text(tenx_h5::read(&p, &opts()));
        assert!(e.contains(&format!("cut_{keep}.h5")), "{e}");
    }
    let p = tmp.path().join("text.h5");
    std::fs::write(&p, "barcode,count\nA,1\n").unwrap();
    assert!(err_text(tenx_h5::read(&p, &opts())).contains("HDF5"));
    assert!(err_text(tenx_h5::read(&tmp.path().join("absent.h5"), &opts())).contains("absent.h5"));
    // An HDF5 file that is not a 10x matrix.
    let p = tmp.path().join("other.h5");
    let f = H5File::create(&p).unwrap();
    f.new_dataset::<f64>().shape([2]).create("x").unwrap().write_raw(&[1.0, 2.0]).unwrap();
    f.close().unwrap();
    assert!(err_text(tenx_h5::read(&p, &opts())).contains("not a 10x HDF5 matrix"));
}

// ---------------------------------------------------------------------------------------------------
// Visium

#[test]
fn visium_sr1_headerless_positions_in_micrometres() {
    let ds = visium::read(&test_data("visium_sr1/1.0.0"), &opts()).unwrap();
    // All 100 matrix barcodes are in tissue (checked with Python's csv module); scanpy: total 932, nnz 656.
    check(&ds, &Expected { n_cells: 100, n_genes: 100, total: 932.0, nnz: 656, has_coordinates: true });
    assert_eq!(ds.platform, "visium");
    assert_eq!(ds.coordinate_unit, "micrometre");
    // First matrix barcode, from tissue_positions_list.csv and spot_diameter_fullres 89.42751063343188.
    let i = 0;
    let id = &ds.cells.cell_id[i];
    let line = std::fs::read_to_string(test_data("visium_sr1/1.0.0/spatial/tissue_positions_list.csv"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{id},")))
        .unwrap()
        .to_string();
    let f: Vec<f64> = line.split(',').skip(1).map(|s| s.parse().unwrap()).collect();
    let um = 55.0 / 89.42751063343188;
    assert!((ds.cells.x[i] - f[4] * um).abs() < 1e-9 && (ds.cells.y[i] - f[3] * um).abs() < 1e-9);
    for c in ["in_tissue", "array_row", "array_col", "pxl_row_in_fullres", "pxl_col_in_fullres"] {
        assert!(ds.cells.get(c).is_some(), "{c}");
    }
    assert!(ds.notes.iter().any(|n| n.contains("4135 in-tissue positions")), "{:?}", ds.notes);
}

#[test]
fn visium_sr2_header_positions_with_mtx_and_parent_folder() {
    for s in ["sample01", "sample02"] {
        let root = test_data(&format!("visium_sr2/{s}"));
        let (total, nnz) = mtx_totals(&root.join("outs/filtered_feature_bc_matrix/matrix.mtx"));
        let n =
            std::fs::read_to_string(root.join("outs/filtered_feature_bc_matrix/barcodes.tsv")).unwrap().lines().count();
        // Parent of outs/ and outs/ itself both work.
        for dir in [root.clone(), root.join("outs")] {
            let ds = visium::read(&dir, &opts()).unwrap();
            check(&ds, &Expected { n_cells: n, n_genes: 5, total, nnz, has_coordinates: true });
            assert_eq!(ds.genes.gene_name[1], "KLK3");
        }
    }
}

/// Copies a Visium folder to a temp dir so a test can damage it.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn off_tissue_spots_are_dropped_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    copy_dir(&test_data("visium_sr2/sample01"), &dir);
    let pos = dir.join("outs/spatial/tissue_positions.csv");
    let text = std::fs::read_to_string(&pos).unwrap();
    // Mark the first spot (GTGGCGTGCACCAGAG-1, the first matrix column) as off tissue.
    let text = text.replacen("GTGGCGTGCACCAGAG-1,1,", "GTGGCGTGCACCAGAG-1,0,", 1);
    std::fs::write(&pos, text).unwrap();
    let ds = visium::read(&dir, &opts()).unwrap();
    assert_eq!(ds.cells.len(), 11);
    assert!(!ds.cells.cell_id.contains(&"GTGGCGTGCACCAGAG-1".to_string()));
    assert!(ds.notes.iter().any(|n| n.contains("dropped 1 off-tissue")), "{:?}", ds.notes);
    // Column 1 of the MTX holds 38 + 54 + 46 + 5 + 22 = 165.
    let (total, _) = mtx_totals(&dir.join("outs/filtered_feature_bc_matrix/matrix.mtx"));
    assert_eq!(ds.counts.total(), total - 165.0);
    let kept = visium::read(&dir, &ReadOptions { keep_off_tissue: true, ..opts() }).unwrap();
    assert_eq!(kept.cells.len(), 12);
    assert_eq!(text_col(&kept, "in_tissue")[0].as_deref(), Some("0"));
}

#[test]
fn barcode_without_position_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    copy_dir(&test_data("visium_sr2/sample01"), &dir);
    let pos = dir.join("outs/spatial/tissue_positions.csv");
    let text: String = std::fs::read_to_string(&pos)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("GGTCCCATAACATAGA-1"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&pos, text).unwrap();
    let e = err_text(visium::read(&dir, &opts()));
    assert!(e.contains("tissue_positions.csv") && e.contains("GGTCCCATAACATAGA-1"), "{e}");
}

#[test]
fn nan_or_empty_visium_coordinates_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    for (k, bad) in ["NaN", ""].iter().enumerate() {
        let dir = tmp.path().join(format!("s{k}"));
        copy_dir(&test_data("visium_sr2/sample01"), &dir);
        let pos = dir.join("outs/spatial/tissue_positions.csv");
        let text = std::fs::read_to_string(&pos).unwrap().replacen(
            "GTGGCGTGCACCAGAG-1,1,1,101,3932,",
            &format!("GTGGCGTGCACCAGAG-1,1,1,101,{bad},"),
            1,
        );
        std::fs::write(&pos, text).unwrap();
        let e = err_text(visium::read(&dir, &opts()));
        assert!(e.contains("tissue_positions.csv") && e.contains("line 2") && e.contains("pxl_row_in_fullres"), "{e}");
    }
}

#[test]
fn missing_scalefactors_or_matrix_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    copy_dir(&test_data("visium_sr2/sample01"), &dir);
    let json = dir.join("outs/spatial/scalefactors_json.json");
    let good = std::fs::read_to_string(&json).unwrap();
    std::fs::write(&json, "{\"tissue_hires_scalef\": 0.07}").unwrap();
    assert!(err_text(visium::read(&dir, &opts())).contains("spot_diameter_fullres"));
    std::fs::write(&json, "{\"spot_diameter_fullres\": -3}").unwrap();
    assert!(err_text(visium::read(&dir, &opts())).contains("positive number"));
    std::fs::write(&json, good).unwrap();
    std::fs::remove_dir_all(dir.join("outs/filtered_feature_bc_matrix")).unwrap();
    assert!(err_text(visium::read(&dir, &opts())).contains("no count matrix"));
    assert!(err_text(visium::read(tmp.path(), &opts())).contains("not a Visium output folder"));
}

// ---------------------------------------------------------------------------------------------------
// Visium HD (synthetic, spec-exact fixture from scripts/make_visium_hd_fixture.py)

#[test]
fn visium_hd_bins_of_8_and_16_um() {
    // Totals printed by the generator and checked with scanpy.read_10x_h5:
    // square_008um: 256 bins listed, 148 in tissue, 20 genes, total 3090, nnz 1118;
    // square_016um: 64 bins listed, 44 in tissue, 20 genes, total 3172, nnz 508.
    let root = test_data("visium_hd");
    let ds = visium::read_hd(&root, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 148, n_genes: 20, total: 3090.0, nnz: 1118, has_coordinates: true });
    assert_eq!(ds.platform, "visium-hd");
    assert_eq!(ds.coordinate_unit, "micrometre");
    // Bin centres are 8 um apart: x = pxl_col * microns_per_pixel, pxl_col = 2310.75 + (col + 0.5) * 8 / mpp.
    let Some(Column::Int(cols)) = ds.cells.get("array_col") else { panic!("array_col") };
    let x0 = 2310.75 * 0.27376;
    for (x, c) in ds.cells.x.iter().zip(cols) {
        assert!((x - (x0 + (c.unwrap() as f64 + 0.5) * 8.0)).abs() < 1e-6);
    }
    let d16 = visium::read_hd(&root.join("outs/binned_outputs"), &ReadOptions { bin_size_um: 16, ..opts() }).unwrap();
    check(&d16, &Expected { n_cells: 44, n_genes: 20, total: 3172.0, nnz: 508, has_coordinates: true });
    assert!(d16.cells.cell_id[0].starts_with("s_016um_"));
}

#[test]
fn visium_hd_scale_without_microns_per_pixel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("square_008um");
    copy_dir(&test_data("visium_hd/outs/binned_outputs/square_008um"), &dir);
    let reference = visium::read_hd(&dir, &opts()).unwrap();
    let json = dir.join("spatial/scalefactors_json.json");
    let mut m: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    m.remove("microns_per_pixel");
    std::fs::write(&json, serde_json::to_string(&m).unwrap()).unwrap();
    let a = visium::read_hd(&dir, &opts()).unwrap();
    m.remove("spot_diameter_fullres");
    std::fs::write(&json, serde_json::to_string(&m).unwrap()).unwrap();
    let b = visium::read_hd(&dir, &opts()).unwrap();
    for ds in [&a, &b] {
        for (x, r) in ds.cells.x.iter().zip(&reference.cells.x) {
            assert!((x - r).abs() < 1e-6 * r.abs(), "{x} vs {r}");
        }
    }
    assert!(b.notes.iter().any(|n| n.contains("median bin spacing")), "{:?}", b.notes);
}

#[test]
fn visium_hd_missing_bin_size_lists_what_exists() {
    let e = err_text(visium::read_hd(&test_data("visium_hd"), &ReadOptions { bin_size_um: 2, ..opts() }));
    assert!(e.contains("square_002um") && e.contains("square_008um, square_016um"), "{e}");
}

// ---------------------------------------------------------------------------------------------------
// AnnData

#[test]
fn h5ad_v011_squidpy_with_spatial_and_categoricals() {
    // anndata.read_h5ad: 49 x 1999 CSR float32, X.sum() = 30129.566022634506, nnz 22372.
    let ds = h5ad::read(&test_data("anndata/squidpy_visium_test_data.h5ad"), &opts()).unwrap();
    check(&ds, &Expected { n_cells: 49, n_genes: 1999, total: 30129.566022634506, nnz: 22372, has_coordinates: true });
    assert_eq!(ds.platform, "h5ad");
    assert_eq!(ds.coordinate_unit, "pixel");
    assert_eq!(ds.genes.gene_name[0], "4732440D04Rik");
    assert_ne!(ds.genes.gene_id[0], ds.genes.gene_name[0]);
    assert_eq!(ds.cells.cell_id[0], "AAATTGCGGCGGTTCT-1");
    assert!(matches!(ds.cells.get("in_tissue"), Some(Column::Int(_))));
    let leiden = text_col(&ds, "leiden");
    assert!(leiden.iter().all(|l| l.is_some()));
    let with_label = h5ad::read(
        &test_data("anndata/squidpy_visium_test_data.h5ad"),
        &ReadOptions { label_column: Some("leiden".into()), ..opts() },
    )
    .unwrap();
    assert_eq!(text_col(&with_label, "cell_type"), leiden);
}

#[test]
fn h5ad_pbmc68k_reference_from_raw_with_labels() {
    // anndata: raw.X 700 x 765 CSR float32, sum 319044.23824107647, nnz 174400; obs/bulk_labels 10 types.
    let o = ReadOptions { use_raw: true, label_column: Some("bulk_labels".into()), ..opts() };
    let ds = h5ad::read(&test_data("anndata/pbmc68k_reduced.h5ad"), &o).unwrap();
    check(
        &ds,
        &Expected { n_cells: 700, n_genes: 765, total: 319044.23824107647, nnz: 174400, has_coordinates: false },
    );
    let types: std::collections::BTreeSet<_> = text_col(&ds, "cell_type").into_iter().flatten().collect();
    assert_eq!(types.len(), 10);
    assert!(matches!(ds.cells.get("n_genes"), Some(Column::Int(_))));
    assert!(matches!(ds.cells.get("percent_mito"), Some(Column::Float(_))));
    // The dense, scaled X holds negative values: a clear error, pointing at raw.
    let e = err_text(h5ad::read(&test_data("anndata/pbmc68k_reduced.h5ad"), &opts()));
    assert!(e.contains("pbmc68k_reduced.h5ad") && e.contains("negative") && e.contains("raw"), "{e}");
}

#[test]
fn h5ad_legacy_v05_compound_tables() {
    // Same data as pbmc68k in the < 0.7 encoding: raw.X CSR (h5sparse_format), obs a compound dataset,
    // categories in uns/<col>_categories.
    let o = ReadOptions { use_raw: true, label_column: Some("bulk_labels".into()), ..opts() };
    let ds = h5ad::read(&test_data("anndata/archive_v0.5.0/adata.h5ad"), &o).unwrap();
    check(
        &ds,
        &Expected { n_cells: 700, n_genes: 765, total: 319044.23824107647, nnz: 174400, has_coordinates: false },
    );
    assert_eq!(ds.cells.cell_id[0], "AAAGCCTGGCTAAC-1");
    assert_eq!(ds.genes.gene_name[0], "HES4");
    let modern = h5ad::read(&test_data("anndata/pbmc68k_reduced.h5ad"), &o).unwrap();
    assert_eq!(text_col(&ds, "cell_type"), text_col(&modern, "cell_type"));
    assert_eq!(text_col(&ds, "phase"), text_col(&modern, "phase"));
    assert_eq!(ds.cells.get("n_genes"), modern.cells.get("n_genes"));
    assert_eq!(ds.counts, modern.counts);
}

#[test]
fn h5ad_v07_categories_layers_and_raw() {
    // anndata.read_h5ad (archive_v0.7.0): X 30 x 20 CSR, sum 285, nnz 228; raw 30 x 40, sum 627, nnz 480;
    // layers/array dense sum 302.83045121571445, nnz 600; layers/sparse sum 3.466002232823232, nnz 6.
    let p = test_data("anndata/archive_v0.7.0/adata.h5ad");
    let ds = h5ad::read(&p, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 30, n_genes: 20, total: 285.0, nnz: 228, has_coordinates: false });
    assert!(ds.counts.values.is_integer());
    assert_eq!(ds.cells.cell_id[0], "cell0");
    assert_eq!(ds.genes.gene_name[0], "gene0");
    assert!(text_col(&ds, "obs_cat").iter().all(|v| v.is_some()));
    assert!(matches!(ds.cells.get("uint8"), Some(Column::Int(_))));
    assert!(matches!(ds.cells.get("float64"), Some(Column::Float(_))));
    let raw = h5ad::read(&p, &ReadOptions { use_raw: true, ..opts() }).unwrap();
    check(&raw, &Expected { n_cells: 30, n_genes: 40, total: 627.0, nnz: 480, has_coordinates: false });
    let dense = h5ad::read(&p, &ReadOptions { layer: Some("array".into()), ..opts() }).unwrap();
    check(&dense, &Expected { n_cells: 30, n_genes: 20, total: 302.83045121571445, nnz: 600, has_coordinates: false });
    let sparse = h5ad::read(&p, &ReadOptions { layer: Some("sparse".into()), ..opts() }).unwrap();
    check(&sparse, &Expected { n_cells: 30, n_genes: 20, total: 3.466002232823232, nnz: 6, has_coordinates: false });
    let e = err_text(h5ad::read(&p, &ReadOptions { layer: Some("counts".into()), ..opts() }));
    assert!(e.contains("layers/counts") && e.contains("array, sparse"), "{e}");
}

#[test]
fn h5ad_v078_reads() {
    // anndata.read_h5ad (archive_v0.7.8): X sum 302, nnz 239; raw sum 568, nnz 453.
    let p = test_data("anndata/archive_v0.7.8/adata.h5ad");
    let ds = h5ad::read(&p, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 30, n_genes: 20, total: 302.0, nnz: 239, has_coordinates: false });
    let raw = h5ad::read(&p, &ReadOptions { use_raw: true, ..opts() }).unwrap();
    check(&raw, &Expected { n_cells: 30, n_genes: 40, total: 568.0, nnz: 453, has_coordinates: false });
}

#[test]
fn h5ad_without_x_and_bad_labels_are_clear_errors() {
    // archive_v0.11.4 is an AnnData with X = None (10 obs x 20 var, nothing else).
    let e = err_text(h5ad::read(&test_data("anndata/archive_v0.11.4/adata.h5ad"), &opts()));
    assert!(e.contains("adata.h5ad") && e.contains("X = None"), "{e}");
    let o = ReadOptions { label_column: Some("celltype".into()), ..opts() };
    let e = err_text(h5ad::read(&test_data("anndata/squidpy_visium_test_data.h5ad"), &o));
    assert!(e.contains("celltype") && e.contains("leiden"), "{e}");
}

#[test]
fn h5ad_csc_matrix_is_transposed() {
    // A CSC X written here: 2 cells x 3 genes, [[1, 0, 2], [0, 3, 0]].
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("csc.h5ad");
    let f = H5File::create(&p).unwrap();
    let x = f.create_group("X").unwrap();
    x.set_attr_string("encoding-type", "csc_matrix").unwrap();
    x.new_dataset::<f32>().shape([3]).create("data").unwrap().write_raw(&[1.0f32, 3.0, 2.0]).unwrap();
    x.new_dataset::<i32>().shape([3]).create("indices").unwrap().write_raw(&[0i32, 1, 0]).unwrap();
    x.new_dataset::<i32>().shape([4]).create("indptr").unwrap().write_raw(&[0i32, 1, 2, 3]).unwrap();
    for (name, ids) in [("obs", vec!["c1", "c2"]), ("var", vec!["g1", "g2", "g3"])] {
        let g = f.create_group(name).unwrap();
        g.set_attr_string("encoding-type", "dataframe").unwrap();
        g.set_attr_string("_index", "_index").unwrap();
        g.write_vlen_strings("_index", &ids).unwrap();
    }
    f.close().unwrap();
    let ds = h5ad::read(&p, &opts()).unwrap();
    check(&ds, &Expected { n_cells: 2, n_genes: 3, total: 6.0, nnz: 3, has_coordinates: false });
    assert_eq!(ds.counts.row_totals(), vec![3.0, 3.0]);
    assert_eq!(ds.counts.indices, vec![0, 2, 1]);
}

#[test]
fn truncated_h5ad_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let src = std::fs::read(test_data("anndata/squidpy_visium_test_data.h5ad")).unwrap();
    let p = tmp.path().join("cut.h5ad");
    std::fs::write(&p, &src[..src.len() / 3]).unwrap();
    assert!(err_text(h5ad::read(&p, &opts())).contains("cut.h5ad"));
}
