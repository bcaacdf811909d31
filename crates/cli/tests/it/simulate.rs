//! End-to-end tests of the simulate stage(s).

use crate::common::{fails_with, ok, tmescope};
use std::path::Path;
use tmescope_core::dataset::Dataset;
use tmescope_core::parquet_io::Table;

/// Small, fast simulation options (debug build).
const SMALL: &[&str] = &["--cells", "1500", "--samples", "2", "--genes", "20", "--reference-cells", "70"];

fn simulate(dir: &Path, extra: &[&str]) -> String {
    let mut args: Vec<String> = vec!["simulate".into(), "-o".into(), dir.display().to_string()];
    args.extend(SMALL.iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    ok(&args)
}

/// Every file below `dir`, relative path -> bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn simulate_writes_datasets_truth_and_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    let out = simulate(&dir, &["--platform", "both"]);
    assert!(out.contains("P1_pre_xenium"), "{out}");
    for name in ["P1_pre_xenium", "P1_post_xenium", "P1_pre_visium", "P1_post_visium", "reference"] {
        let ds = Dataset::read(&dir.join(name)).unwrap();
        ds.validate(&dir.join(name)).unwrap();
        assert!(ds.genes.len() > 250, "{name}");
    }
    let x = Dataset::read(&dir.join("P1_post_xenium")).unwrap();
    assert_eq!(x.platform, "simulated-xenium");
    assert_eq!(x.coordinate_unit, "micrometre");
    assert_eq!(x.cells.len(), 1500);
    for col in ["patient", "condition", "timepoint"] {
        assert!(x.cells.get(col).is_some(), "{col} missing");
    }
    assert_eq!(x.cells.get("condition").unwrap().as_text()[0].as_deref(), Some("post"));
    let v = Dataset::read(&dir.join("P1_pre_visium")).unwrap();
    assert_eq!(v.platform, "simulated-visium");
    let r = Dataset::read(&dir.join("reference")).unwrap();
    assert!(r.cells.get("cell_type").is_some());
    let truth = Table::read(&dir.join("truth_cells.parquet")).unwrap();
    assert_eq!(truth.num_rows(), 3000);
    for col in [
        "cell_id",
        "sample",
        "x",
        "y",
        "cell_type",
        "region",
        "hypoxic",
        "exhausted",
        "mhc_low",
        "checkpoint_high",
        "tgfb_caf",
        "distance_to_vessel",
    ] {
        assert!(truth.has(col), "{col}");
    }
    let spots = Table::read(&dir.join("truth_spots.parquet")).unwrap();
    assert_eq!(
        spots.num_rows(),
        14 * (v.cells.len() + Dataset::read(&dir.join("P1_post_visium")).unwrap().cells.len())
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    assert_eq!(json["parameters"]["n_cells"], 1500);
    assert!(json["therapy_effect"]["factors"]["tumor_fraction"].as_f64().unwrap() < 1.0);
    let sheet = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    assert!(sheet.starts_with("sample,path,format,patient,condition,timepoint"));
    assert_eq!(sheet.lines().count(), 5);
}

#[test]
fn same_seed_gives_identical_files_whatever_the_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let args = |dir: &Path, threads: &str| -> Vec<String> {
        let mut v: Vec<String> =
            vec!["--threads".into(), threads.into(), "simulate".into(), "-o".into(), dir.display().to_string()];
        v.extend(SMALL.iter().map(|s| s.to_string()));
        v
    };
    ok(args(&a, "1"));
    ok(args(&b, "2"));
    ok(args(&c, "1"));
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    assert!(fa.keys().any(|k| k.ends_with("counts.parquet")));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs between --threads 1 and --threads 2");
        assert!(v == &fc[k], "{k} differs between two runs with the same seed");
    }
    // A different seed gives different data.
    let d = tmp.path().join("d");
    simulate(&d, &["--seed", "2"]);
    assert_ne!(files(&d)["truth_cells.parquet"], fa["truth_cells.parquet"]);
}

#[test]
fn bad_options_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let d = dir.display().to_string();
    let d = d.as_str();
    fails_with(["simulate", "-o", d, "--cells", "0"], &["--cells"]);
    fails_with(["simulate", "-o", d, "--platform", "merfish"], &["merfish", "visium"]);
    fails_with(["simulate", "-o", d, "--samples", "0"], &["--samples"]);
    fails_with(["simulate", "-o", d, "--tumor-fraction", "1.5"], &["--tumor-fraction"]);
    fails_with(["simulate", "-o", d, "--conditions", "pre,pre"], &["twice"]);
    assert!(!dir.exists());
}

#[test]
fn help_shows_examples() {
    let out = tmescope(["simulate", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Examples:") && text.contains("tmescope simulate -o"), "{text}");
}
