//! End-to-end tests of the ingest stage(s).

use crate::common::{fails_with, ok, test_data, tmescope};
use std::path::Path;

fn inspect(dir: &Path) -> String {
    ok(["inspect".as_ref(), dir.as_os_str()])
}

#[test]
fn ingest_each_text_platform() {
    let tmp = tempfile::tempdir().unwrap();
    // (input, expected platform, cells line)
    let cases = [
        ("xenium/synthetic", "xenium", "cells: 12"),
        ("xenium/synthetic_int_ids/transcripts.parquet", "xenium", "cells: 12"),
        ("merscope", "merscope", "cells: 997"),
        ("cosmx", "cosmx", "cells: 120"),
        ("cosmx/r_written", "cosmx", "cells: 9"),
        ("tenx/3.0.0/filtered_feature_bc_matrix", "10x-mtx", "cells: 1107"),
    ];
    for (i, (input, platform, cells)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("ds{i}"));
        let said = ok(["ingest".as_ref(), test_data(input).as_os_str(), "-o".as_ref(), out.as_os_str()]);
        assert!(said.contains("cells") && said.contains(platform), "{said}");
        for f in ["cells.parquet", "genes.parquet", "counts.parquet"] {
            assert!(out.join(f).is_file(), "{input}: {f}");
        }
        let report = inspect(&out);
        assert!(report.contains(&format!("platform {platform}")), "{report}");
        assert!(report.contains(cells), "{input}: {report}");
        assert!(report.contains("stage ingest") && report.contains("sha256"), "{report}");
    }
}

#[test]
fn ingest_table_with_options_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tbl");
    let said = ok([
        "ingest".as_ref(),
        "--format".as_ref(),
        "table".as_ref(),
        "--counts".as_ref(),
        test_data("tables/counts_cells_by_genes.csv").as_os_str(),
        "--coords".as_ref(),
        test_data("tables/coords.csv").as_os_str(),
        "--x-column".as_ref(),
        "xcoord".as_ref(),
        "--y-column".as_ref(),
        "ycoord".as_ref(),
        "--obs".as_ref(),
        test_data("tables/obs.csv").as_os_str(),
        "--label-column".as_ref(),
        "cell_type".as_ref(),
        "--sample".as_ref(),
        "patientA".as_ref(),
        "--meta".as_ref(),
        "condition=responder".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(said.contains("5 cells, 4 genes, 9 non-zeros, 34 total counts"), "{said}");
    let report = inspect(&out);
    assert!(report.contains("samples: patientA"), "{report}");
    assert!(report.contains("condition (text)") && report.contains("cell types: 3"), "{report}");
    assert!(report.contains("x [1.00, 5.00]"), "{report}");
    assert!(report.contains("\"label_column\":\"cell_type\""), "{report}");
}

#[test]
fn ingest_sample_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = tmp.path().join("samples.csv");
    std::fs::write(
        &sheet,
        format!(
            "sample,path,format,condition\nmer,{},merscope,pre\ncos,{},,post\n",
            test_data("merscope/r_written").display(),
            test_data("cosmx/r_written").display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("all");
    let said = ok(["ingest".as_ref(), "--samples".as_ref(), sheet.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(said.contains("2 samples written"), "{said}");
    let report = inspect(&out.join("cos"));
    assert!(report.contains("samples: cos") && report.contains("condition (text)"), "{report}");
    assert!(out.join("mer/cells.parquet").is_file());
    // Only the two sample folders: no staging folder left behind.
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn sample_sheet_errors_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sheet = tmp.path().join("samples.csv");
    let out = tmp.path().join("all");
    // Duplicate (case-insensitive) sample names.
    std::fs::write(&sheet, format!("sample,path\nA,{p}\na,{p}\n", p = test_data("cosmx/r_written").display())).unwrap();
    fails_with(
        ["ingest".as_ref(), "--samples".as_ref(), sheet.as_os_str(), "-o".as_ref(), out.as_os_str()],
        &["samples.csv", "conflicts"],
    );
    assert!(!out.exists());
    // The second sample is bad: the first one must not be left either.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "cell,A\nc1,x\n").unwrap();
    std::fs::write(
        &sheet,
        format!("sample,path\ngood,{}\nbad,{}\n", test_data("cosmx/r_written").display(), bad.display()),
    )
    .unwrap();
    fails_with(
        ["ingest".as_ref(), "--samples".as_ref(), sheet.as_os_str(), "-o".as_ref(), out.as_os_str()],
        &["bad.csv", "line 2", "`A`"],
    );
    assert!(!out.exists(), "no output folder after a failed sheet");
}

#[test]
fn bad_inputs_exit_2_and_leave_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("out");
    let run = |input: &Path, extra: &[&str], needles: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec!["ingest".into(), input.into(), "-o".into(), out.clone().into()];
        args.extend(extra.iter().map(|s| s.into()));
        fails_with(args, needles);
        assert!(!out.exists(), "no output left for {}", input.display());
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(left.is_empty(), "partial folder left");
    };
    // Non-numeric counts.
    let p = d.join("counts.csv");
    std::fs::write(&p, "cell,A,B\nc1,1,2\nc2,3,four\n").unwrap();
    run(&p, &[], &["counts.csv", "line 3", "`B`"]);
    // Truncated gz.
    let gz = d.join("counts.csv.gz");
    let mut enc = flate2_like_gzip("cell,A\n", 4000);
    enc.truncate(enc.len() / 2);
    std::fs::write(&gz, &enc).unwrap();
    run(&gz, &[], &["counts.csv.gz", "truncated"]);
    // Missing columns (MERSCOPE metadata without center_x).
    let m = d.join("mer");
    std::fs::create_dir(&m).unwrap();
    std::fs::write(m.join("cell_by_gene.csv"), "cell,A\n1,2\n").unwrap();
    std::fs::write(m.join("cell_metadata.csv"), "EntityID,center_y\n1,2\n").unwrap();
    run(&m, &[], &["cell_metadata.csv", "center_x"]);
    // Duplicate barcodes.
    let dup = d.join("dup.csv");
    std::fs::write(&dup, "cell,A\nc1,1\nc1,2\n").unwrap();
    run(&dup, &[], &["dup.csv", "duplicate"]);
    // Empty matrix.
    let empty = d.join("empty.csv");
    std::fs::write(&empty, "cell,A\n").unwrap();
    run(&empty, &[], &["empty.csv", "empty"]);
    // Positions without matching ids.
    let xy = d.join("xy.csv");
    std::fs::write(&xy, "id,x,y\nnope,1,2\n").unwrap();
    run(
        &test_data("tables/counts_cells_by_genes.csv"),
        &["--coords", xy.to_str().unwrap()],
        &["xy.csv", "5 of the 5 cells"],
    );
    // NaN coordinates.
    let nan = d.join("nan.csv");
    std::fs::write(&nan, "cell,x,y,A\nc1,NaN,2,1\n").unwrap();
    run(&nan, &[], &["nan.csv", "finite"]);
    // Unknown format and a path that does not exist.
    run(&p, &["--format", "nope"], &["unknown format"]);
    run(&d.join("missing.csv"), &[], &["missing.csv"]);
}

/// Gzip of `header` followed by `n` numeric rows, written without a dependency on flate2: the binary
/// under test is the only gzip consumer, so use the system `gzip`.
fn flate2_like_gzip(header: &str, n: usize) -> Vec<u8> {
    let mut text = String::from(header);
    for i in 0..n {
        text.push_str(&format!("c{i},{i}\n"));
    }
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip available");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[test]
fn help_shows_examples() {
    let out = tmescope(["ingest", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Examples:") && text.contains("--samples") && text.contains("--genes-in-rows"), "{text}");
}
