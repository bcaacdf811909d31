//! End-to-end tests of the spatial stages (`graph`, `stats`).

use crate::common::{fails_with, ok, tmescope};
use std::path::{Path, PathBuf};
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::parquet_io::Table;
use tmescope_core::provenance::Provenance;

/// A dataset of `n` cells on a jittered grid with two spatially segregated cell types and three genes.
fn dataset(dir: &Path, n: usize, edit: impl FnOnce(&mut Dataset)) -> PathBuf {
    let side = (n as f64).sqrt().ceil() as usize;
    let mut x = vec![];
    let mut y = vec![];
    let mut ty = vec![];
    let mut trip = vec![];
    for i in 0..n {
        let (r, c) = (i / side, i % side);
        x.push(c as f64 * 10.0 + (i * 7 % 5) as f64 * 0.37);
        y.push(r as f64 * 10.0 + (i * 3 % 5) as f64 * 0.41);
        let left = c < side / 2;
        ty.push(Some(if left { "Tumor" } else { "T cell" }.to_string()));
        trip.push((i as u32, 0, if left { 5.0 } else { 1.0 }));
        trip.push((i as u32, 1, 1.0 + (i % 3) as f64));
        trip.push((i as u32, 2, 2.0));
    }
    let mut d = Dataset {
        cells: CellTable {
            cell_id: (0..n).map(|i| format!("c{i}")).collect(),
            sample: vec!["s1".into(); n],
            x,
            y,
            z: None,
            extra: vec![
                ("cell_type".into(), Column::Text(ty)),
                ("score".into(), Column::Float((0..n).map(|i| Some((i % side) as f64)).collect())),
            ],
        },
        genes: GeneTable::from_names(vec!["EPCAM".into(), "CD3E".into(), "ACTB".into()]),
        counts: CsrCounts::from_triplets(n, 3, trip, true).unwrap(),
        platform: "table".into(),
        coordinate_unit: "micrometre".into(),
        notes: vec![],
    };
    edit(&mut d);
    let path = dir.join("ds");
    d.write(&path, &Provenance::new("test", serde_json::json!({}))).unwrap();
    path
}

#[test]
fn graph_and_stats_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 100, |_| {});
    let g = tmp.path().join("g");
    let out = ok(["graph".as_ref(), ds.as_os_str(), "-o".as_ref(), g.as_os_str()]);
    assert!(out.contains("600 edges"), "{out}");
    let edges = Table::read(&g.join("edges.parquet")).unwrap();
    assert_eq!(edges.num_rows(), 600);
    assert!(edges.metadata["tmescope.graph"].contains("\"kind\":\"knn\""));
    assert!(g.join("components.parquet").exists());

    let s = tmp.path().join("s");
    let out = ok([
        "stats",
        ds.to_str().unwrap(),
        "--graph",
        g.to_str().unwrap(),
        "-o",
        s.to_str().unwrap(),
        "--perms",
        "200",
        "--genes",
        "EPCAM,CD3E",
        "--columns",
        "score",
        "--hotspots",
        "score",
        "--ripley",
        "Tumor",
        "--max-radius",
        "40",
    ]);
    assert!(out.contains("enrichment: 2 cell types, 200 permutations"), "{out}");
    for f in
        ["neighborhoods", "nhood_enrichment", "interaction", "cooccurrence", "autocorrelation", "hotspots", "ripley"]
    {
        assert!(s.join(format!("{f}.parquet")).exists(), "{f}");
    }
    // Segregated types: same-type edges are enriched.
    let e = Table::read(&s.join("nhood_enrichment.parquet")).unwrap();
    let (a, b, z) = (e.utf8("type_a").unwrap(), e.utf8("type_b").unwrap(), e.f64("z").unwrap());
    let zt = (0..a.len()).find(|&k| a[k] == "Tumor" && b[k] == "Tumor").map(|k| z[k]).unwrap();
    assert!(zt > 3.0, "{zt}");
    // EPCAM follows the left/right split: strong positive Moran's I.
    let ac = Table::read(&s.join("autocorrelation.parquet")).unwrap();
    let (f, st, v) = (ac.utf8("feature").unwrap(), ac.utf8("statistic").unwrap(), ac.f64("value").unwrap());
    let i = (0..f.len()).find(|&k| f[k] == "EPCAM" && st[k] == "moran").map(|k| v[k]).unwrap();
    assert!(i > 0.5, "{i}");
    let nb = Table::read(&s.join("neighborhoods.parquet")).unwrap();
    assert_eq!(nb.num_rows(), 200);
    let (_, _, types, frac) = tmescope_spatial::pipeline::read_neighborhoods(&s.join("neighborhoods.parquet")).unwrap();
    assert_eq!(types, vec!["T cell".to_string(), "Tumor".to_string()]);
    assert!((frac[0] + frac[1] - 1.0).abs() < 1e-12);
}

#[test]
fn verbose_prints_how_long_each_step_took() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 64, |_| {});
    let g = tmp.path().join("g");
    let out = tmescope(["-v", "graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap(), "--kind", "delaunay"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let steps: Vec<(&str, f64)> = err
        .lines()
        .filter_map(|l| l.split_once(" INFO ")?.1.rsplit_once(": "))
        .map(|(what, t)| (what, t.trim_end_matches(" s").parse::<f64>().expect("seconds")))
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        ["graph: read the cell positions", "graph: build the delaunay graph", "graph: write the edges and components"],
        "{err}"
    );
    assert!(steps.iter().all(|s| s.1 >= 0.0));
    // Without -v, no step lines.
    let quiet = tmescope(["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("INFO"));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 64, |_| {});
    let g = tmp.path().join("g");
    ok(["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap(), "--kind", "delaunay"]);
    let mut z = vec![];
    for t in ["1", "2"] {
        let s = tmp.path().join(format!("s{t}"));
        ok([
            "--threads",
            t,
            "stats",
            ds.to_str().unwrap(),
            "--graph",
            g.to_str().unwrap(),
            "-o",
            s.to_str().unwrap(),
            "--perms",
            "100",
            "--seed",
            "3",
        ]);
        z.push(Table::read(&s.join("nhood_enrichment.parquet")).unwrap().f64("z").unwrap());
    }
    assert_eq!(z[0], z[1]);
}

#[test]
fn fewer_cells_than_k_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 5, |_| {});
    let g = tmp.path().join("g");
    fails_with(
        ["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap(), "--k", "6"],
        &["cells.parquet", "sample `s1`", "5 cells", "at least 7"],
    );
    assert!(!g.exists());
}

#[test]
fn nan_coordinates_are_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 20, |d| d.cells.x[3] = f64::NAN);
    let g = tmp.path().join("g");
    fails_with(["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap()], &["cells.parquet", "row 4", "c3", "finite"]);
}

#[test]
fn duplicate_coordinates_are_neighbours_at_distance_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 30, |d| {
        d.cells.x[1] = d.cells.x[0];
        d.cells.y[1] = d.cells.y[0];
    });
    for kind in ["knn", "delaunay"] {
        let g = tmp.path().join(kind);
        ok(["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap(), "--kind", kind]);
        let e = Table::read(&g.join("edges.parquet")).unwrap();
        let (src, dst, d) = (e.u32("src").unwrap(), e.u32("dst").unwrap(), e.f64("distance").unwrap());
        assert!((0..src.len()).any(|k| src[k] == 1 && dst[k] == 0 && d[k] == 0.0), "{kind}");
    }
}

#[test]
fn one_label_gives_defined_enrichment() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 36, |d| d.cells.set("cell_type", Column::constant_text("Tumor", 36)));
    let g = tmp.path().join("g");
    ok(["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap()]);
    let s = tmp.path().join("s");
    let out =
        ok(["stats", ds.to_str().unwrap(), "--graph", g.to_str().unwrap(), "-o", s.to_str().unwrap(), "--perms", "50"]);
    assert!(out.contains("constant null (z = 0)"), "{out}");
    let e = Table::read(&s.join("nhood_enrichment.parquet")).unwrap();
    assert_eq!(e.f64("z").unwrap(), vec![0.0]);
}

#[test]
fn missing_label_column_and_help() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = dataset(tmp.path(), 20, |_| {});
    let g = tmp.path().join("g");
    ok(["graph", ds.to_str().unwrap(), "-o", g.to_str().unwrap(), "--k", "3"]);
    let s = tmp.path().join("s");
    fails_with(
        ["stats", ds.to_str().unwrap(), "--graph", g.to_str().unwrap(), "-o", s.to_str().unwrap(), "--labels", "nope"],
        &["`nope`", "cells.parquet"],
    );
    for cmd in ["graph", "stats"] {
        let out = tmescope([cmd, "--help"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"), "{cmd}");
    }
}
