//! End-to-end tests of the inspect stage(s).

use crate::common::{fails_with, ok, test_data};

#[test]
fn inspect_vendor_path_detects_the_format() {
    let report = ok(["inspect".as_ref(), test_data("merscope/r_written").as_os_str()]);
    assert!(report.contains("format: merscope input (detected)"), "{report}");
    assert!(report.contains("cells: 8") && report.contains("genes: 9"), "{report}");
    assert!(report.contains("coordinates: x [") && report.contains("micrometre"), "{report}");
    assert!(report.contains("provenance: none"), "{report}");
}

#[test]
fn inspect_table_without_coordinates() {
    let report = ok([
        "inspect".as_ref(),
        "--format".as_ref(),
        "10x-mtx".as_ref(),
        test_data("tenx/1.2.0/filtered_gene_bc_matrices/hg19_chr21").as_os_str(),
    ]);
    assert!(
        report.contains("cells: 12") && report.contains("non-zeros: 12") && report.contains("coordinates: none"),
        "{report}"
    );
}

#[test]
fn inspect_dataset_folder_shows_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    ok([
        "ingest".as_ref(),
        test_data("cosmx/r_written").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--meta".as_ref(),
        "patient=P9".as_ref(),
    ]);
    let report = ok(["inspect".as_ref(), out.as_os_str()]);
    assert!(report.contains("format: tmescope dataset folder (platform cosmx)"), "{report}");
    assert!(report.contains("total counts: 7"), "{report}");
    assert!(report.contains("input: ") && report.contains("lung_p9s1_exprMat_file.csv"), "{report}");
    assert!(report.contains("\"min_qv\":20.0"), "{report}");
    assert!(report.contains("note: CenterX_global_px"), "{report}");
}

#[test]
fn inspect_bad_path_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    fails_with(["inspect".as_ref(), tmp.path().as_os_str()], &["cannot tell the format"]);
}
