//! End-to-end tests of the niche stages: `score`, `niches`, `communicate`, `compare`.
//!
//! Inputs are small synthetic sections built here: a grid of cells with planted regions of known
//! composition and expression, and a radius-2 (5 x 5) neighbour graph.

use crate::common::{fails_with, ok};
use std::path::{Path, PathBuf};
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::graph::NeighborGraph;
use tmescope_core::parquet_io::Table;
use tmescope_core::programs::default_programs;
use tmescope_core::provenance::Provenance;

/// A tiny deterministic generator (xorshift), so the tests need no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn poisson(&mut self, lambda: f64) -> u32 {
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u32, 1.0);
        loop {
            p *= self.next();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

fn program_genes(name: &str) -> Vec<String> {
    default_programs().into_iter().find(|p| p.name == name).map(|p| p.genes).unwrap_or_default()
}

/// A `w x h` grid section (10 um spacing). `region(x, y)` gives the region id of a cell, `types[region]`
/// the cell-type mix `(label, probability)`; `hypoxic[region]` raises the hypoxia genes there.
struct Section<'a> {
    name: &'a str,
    w: usize,
    h: usize,
    region: &'a dyn Fn(usize, usize) -> usize,
    types: Vec<Vec<(&'a str, f64)>>,
    hypoxic: Vec<bool>,
    meta: Vec<(&'a str, &'a str)>,
    seed: u64,
}

fn write_section(root: &Path, s: &Section) -> (PathBuf, PathBuf, Vec<usize>) {
    let mut rng = Rng(s.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let hyp = program_genes("hypoxia_buffa");
    let mut genes: Vec<String> = hyp.clone();
    for g in ["EPCAM", "KRT8", "CD8A", "CD3E", "CD68", "CD163", "COL1A1", "PECAM1", "CD274", "PDCD1", "CXCL12", "CXCR4"]
    {
        if !genes.iter().any(|x| x == g) {
            genes.push(g.to_string());
        }
    }
    for i in 0..150 {
        genes.push(format!("FILLER{i}"));
    }
    let n = s.w * s.h;
    let (mut ids, mut xs, mut ys, mut labels, mut truth, mut trip) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for y in 0..s.h {
        for x in 0..s.w {
            let i = ids.len() as u32;
            let r = (s.region)(x, y);
            let mut u = rng.next();
            let mut label = s.types[r][0].0;
            for (t, p) in &s.types[r] {
                if u < *p {
                    label = t;
                    break;
                }
                u -= p;
            }
            ids.push(format!("{}_{x}_{y}", s.name));
            xs.push(x as f64 * 10.0);
            ys.push(y as f64 * 10.0);
            labels.push(Some(label.to_string()));
            truth.push(r);
            for (g, name) in genes.iter().enumerate() {
                let lambda = if hyp.contains(name) {
                    if s.hypoxic[r] {
                        3.0
                    } else {
                        0.4
                    }
                } else if name.starts_with("FILLER") {
                    0.3 + (g % 7) as f64 * 0.3
                } else {
                    let hit = matches!(
                        (label, name.as_str()),
                        ("Tumor", "EPCAM" | "KRT8" | "CD274" | "CXCL12")
                            | ("CD8 T", "CD8A" | "CD3E" | "PDCD1" | "CXCR4")
                            | ("Macrophage", "CD68" | "CD163")
                            | ("CAF", "COL1A1" | "CXCL12")
                            | ("Endothelial", "PECAM1")
                    );
                    if hit {
                        4.0
                    } else {
                        0.05
                    }
                };
                let c = rng.poisson(lambda);
                if c > 0 {
                    trip.push((i, g as u32, c as f64));
                }
            }
        }
    }
    let mut extra = vec![("cell_type".to_string(), Column::Text(labels))];
    for (k, v) in &s.meta {
        extra.push((k.to_string(), Column::constant_text(v, n)));
    }
    let ds = Dataset {
        cells: CellTable { cell_id: ids, sample: vec![s.name.to_string(); n], x: xs, y: ys, z: None, extra },
        genes: GeneTable::from_names(genes.clone()),
        counts: CsrCounts::from_triplets(n, genes.len(), trip, true).unwrap(),
        platform: "table".into(),
        coordinate_unit: "micrometre".into(),
        notes: vec![],
    };
    let dir = root.join(s.name);
    let prov = Provenance::new("test", serde_json::json!({}));
    ds.write(&dir, &prov).unwrap();
    // Radius-2 (Chebyshev) grid graph, symmetric.
    let mut e = vec![];
    for y in 0..s.h as i64 {
        for x in 0..s.w as i64 {
            for dy in -2..=2i64 {
                for dx in -2..=2i64 {
                    let (nx, ny) = (x + dx, y + dy);
                    if (dx, dy) != (0, 0) && nx >= 0 && ny >= 0 && nx < s.w as i64 && ny < s.h as i64 {
                        let d = ((dx * dx + dy * dy) as f64).sqrt() * 10.0;
                        e.push(((y * s.w as i64 + x) as u32, (ny * s.w as i64 + nx) as u32, d, 1.0));
                    }
                }
            }
        }
    }
    let g = NeighborGraph::from_edges(n, e, false);
    let gdir = root.join(format!("{}_graph", s.name));
    std::fs::create_dir_all(&gdir).unwrap();
    g.write(&gdir.join("edges.parquet"), &ds.cells, &serde_json::json!({"kind": "grid"}), &prov).unwrap();
    (dir, gdir, truth)
}

fn ari(a: &[u32], b: &[usize]) -> f64 {
    let b: Vec<u32> = b.iter().map(|&x| x as u32).collect();
    tmescope_niche::stats::adjusted_rand_index(a, &b)
}

/// Four quadrants: inflamed tumour (tumour + CD8 T), CAF stroma, myeloid-rich tumour, hypoxic tumour.
fn quadrants(root: &Path) -> (PathBuf, PathBuf, Vec<usize>) {
    let region = |x: usize, y: usize| usize::from(x >= 20) + 2 * usize::from(y >= 20);
    let s = Section {
        name: "quad",
        w: 40,
        h: 40,
        region: &region,
        types: vec![
            vec![("Tumor", 0.5), ("CD8 T", 0.5)],
            vec![("CAF", 0.7), ("Endothelial", 0.3)],
            vec![("Tumor", 0.5), ("Macrophage", 0.5)],
            vec![("Tumor", 1.0)],
        ],
        hypoxic: vec![false, false, false, true],
        meta: vec![],
        seed: 7,
    };
    write_section(root, &s)
}

#[test]
fn score_niches_states_and_resistance_on_planted_quadrants() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, g, truth) = quadrants(tmp.path());
    let scores = tmp.path().join("scores");
    let out =
        ok(["score".as_ref(), ds.as_os_str(), "--graph".as_ref(), g.as_os_str(), "-o".as_ref(), scores.as_os_str()]);
    assert!(out.contains("hypoxia_buffa: 51/51 genes found"), "{out}");
    let t = Table::read(&scores.join("programs.parquet")).unwrap();
    let progs = t.utf8("program").unwrap();
    assert!(progs.iter().any(|p| p == "resistance"));
    let genes = Table::read(&scores.join("program_genes.parquet")).unwrap();
    assert!(genes.utf8("role").unwrap().iter().any(|r| r == "control"));

    let nout = tmp.path().join("niches");
    let out = ok([
        "niches".as_ref(),
        ds.as_os_str(),
        "--graph".as_ref(),
        g.as_os_str(),
        "--scores".as_ref(),
        scores.as_os_str(),
        "--niches".as_ref(),
        "4".as_ref(),
        "-o".as_ref(),
        nout.as_os_str(),
    ]);
    assert!(out.contains("1 resistance niches") || out.contains("resistance niches"), "{out}");
    let t = Table::read(&nout.join("niches.parquet")).unwrap();
    let niche = t.u32("niche").unwrap();
    let a = ari(&niche, &truth);
    eprintln!("planted quadrants: ARI = {a:.3}");
    assert!(a >= 0.7, "ARI {a}");
    // States of the planted quadrants: the majority state of each region.
    let state = t.utf8("state").unwrap();
    let majority = |r: usize| {
        let mut c = std::collections::BTreeMap::new();
        for i in (0..truth.len()).filter(|&i| truth[i] == r) {
            *c.entry(state[i].clone()).or_insert(0) += 1;
        }
        c.into_iter().max_by_key(|x| x.1).unwrap().0
    };
    assert_eq!(majority(0), "immune-inflamed");
    assert_eq!(majority(1), "fibrotic/CAF-rich");
    assert_eq!(majority(2), "myeloid-suppressive");
    assert_eq!(majority(3), "hypoxic/glycolytic");
    // The resistance niche sits in the hypoxic quadrant.
    let rn = t.i64_opt("resistance_niche").unwrap();
    let inside: Vec<usize> = (0..truth.len()).filter(|&i| rn[i] == Some(0)).collect();
    assert!(!inside.is_empty());
    let in_q4 = inside.iter().filter(|&&i| truth[i] == 3).count() as f64 / inside.len() as f64;
    assert!(in_q4 > 0.8, "{in_q4}");
    let s = Table::read(&nout.join("niche_summary.parquet")).unwrap();
    let kinds = s.utf8("kind").unwrap();
    let axis = s.utf8("reprogramming_axis").unwrap();
    let k = kinds.iter().position(|k| k == "resistance_niche").unwrap();
    assert_eq!(axis[k], "metabolic");
    assert!(s.utf8("hypothesis").unwrap()[k].contains("research hypothesis"));
    // Distances: endothelial cells are 0 from themselves.
    let d = t.f64("distance_to_endothelium").unwrap();
    assert!(d.contains(&0.0) && d.iter().all(|x| x.is_finite()));

    // Communication per niche on the same section.
    let cout = tmp.path().join("comm");
    let out = ok([
        "communicate".as_ref(),
        ds.as_os_str(),
        "--graph".as_ref(),
        g.as_os_str(),
        "--niches".as_ref(),
        nout.as_os_str(),
        "--perms".as_ref(),
        "50".as_ref(),
        "-o".as_ref(),
        cout.as_os_str(),
    ]);
    assert!(out.contains("pairs scored"), "{out}");
    let c = Table::read(&cout.join("communication.parquet")).unwrap();
    let (lig, snd, sc) = (c.utf8("ligand").unwrap(), c.utf8("sender").unwrap(), c.f64("score").unwrap());
    assert!((0..c.num_rows()).any(|k| lig[k] == "CD274" && snd[k] == "Tumor" && sc[k] > 0.0));
}

#[test]
fn distance_and_standardised_features_recover_the_quadrants() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, g, truth) = quadrants(tmp.path());
    let scores = tmp.path().join("scores");
    ok(["score".as_ref(), ds.as_os_str(), "--graph".as_ref(), g.as_os_str(), "-o".as_ref(), scores.as_os_str()]);
    let run = |extra: &[&str], out: &Path| {
        let mut args: Vec<std::ffi::OsString> =
            vec!["niches".into(), ds.clone().into(), "--graph".into(), g.clone().into()];
        args.extend(["--scores".into(), scores.clone().into(), "--niches".into(), "4".into(), "-o".into()]);
        args.push(out.into());
        args.extend(extra.iter().map(|a| a.into()));
        ok(args.iter().map(|a| a.as_os_str()));
        Table::read(&out.join("niches.parquet")).unwrap().u32("niche").unwrap()
    };
    // Composition only (the features before session 7's defaults), then the default features unsmoothed.
    let composition_only = ["--standardize=false", "--with-distances=false", "--with-scores=false", "--smooth", "0"];
    let plain = run(&composition_only, &tmp.path().join("plain"));
    let with = run(&["--smooth", "0"], &tmp.path().join("with"));
    let a = ari(&with, &truth);
    eprintln!("distances + standardised composition + scores: ARI = {a:.3}");
    assert!(a >= 0.7, "ARI {a}");
    assert_ne!(plain, with, "the extra features change the clustering input");
    // The defaults add the spatial smoothing of the labels (Potts prior), which keeps or improves the
    // recovery of the quadrants; its reach (70 um over the median edge, 20 um in this radius-2 grid graph:
    // 4 graph steps) is printed.
    let out = tmp.path().join("smoothed");
    let mut args: Vec<std::ffi::OsString> =
        vec!["niches".into(), ds.clone().into(), "--graph".into(), g.clone().into()];
    args.extend([
        "--scores".into(),
        scores.clone().into(),
        "--niches".into(),
        "4".into(),
        "-o".into(),
        out.clone().into(),
    ]);
    let said = ok(args.iter().map(|a| a.as_os_str()));
    assert!(said.contains("labels smoothed over 4 graph steps"), "{said}");
    let b = ari(&Table::read(&out.join("niches.parquet")).unwrap().u32("niche").unwrap(), &truth);
    eprintln!("defaults (smoothed): ARI = {b:.3}");
    assert!(b >= a, "smoothing lowered the ARI: {a} -> {b}");
    let out = tmp.path().join("no_scores");
    let bad = ["niches".as_ref(), ds.as_os_str(), "--graph".as_ref(), g.as_os_str(), "--with-scores".as_ref()];
    fails_with(bad.into_iter().chain(["-o".as_ref(), out.as_os_str()]), &["--with-scores needs the program scores"]);
    let bad =
        ["niches".as_ref(), ds.as_os_str(), "--graph".as_ref(), g.as_os_str(), "--smooth-hops".as_ref(), "0".as_ref()];
    fails_with(bad.into_iter().chain(["-o".as_ref(), out.as_os_str()]), &["--smooth-hops expects a number >= 1"]);
    assert!(!out.exists());
    let out = tmp.path().join("bad_smooth");
    let bad = ["niches".as_ref(), ds.as_os_str(), "--graph".as_ref(), g.as_os_str(), "--smooth=-1".as_ref()];
    fails_with(
        bad.into_iter().chain(["-o".as_ref(), out.as_os_str()]),
        &["--smooth <BETA>", "expected a finite number >= 0, found `-1`"],
    );
    assert!(!out.exists());
}

#[test]
fn auto_k_and_gmm_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, g, truth) = quadrants(tmp.path());
    let nout = tmp.path().join("n");
    let out = ok([
        "niches".as_ref(),
        ds.as_os_str(),
        "--graph".as_ref(),
        g.as_os_str(),
        "--niches".as_ref(),
        "auto".as_ref(),
        "--k-max".as_ref(),
        "6".as_ref(),
        "--method".as_ref(),
        "gmm".as_ref(),
        "-o".as_ref(),
        nout.as_os_str(),
    ]);
    assert!(out.contains("chosen by stability"), "{out}");
    let t = Table::read(&nout.join("niches.parquet")).unwrap();
    let a = ari(&t.u32("niche").unwrap(), &truth);
    eprintln!("auto k + gmm: ARI = {a:.3}\n{out}");
    assert!(a > 0.5, "ARI {a}");
}

/// A cohort: six patients, before and after therapy; therapy grows the CAF region (planted effect),
/// the myeloid band keeps its width (unplanted).
#[test]
fn compare_detects_the_planted_therapy_effect() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ds_args: Vec<PathBuf> = vec![];
    let mut graphs: Vec<PathBuf> = vec![];
    let names: Vec<String> = (0..6).flat_map(|p| [format!("p{p}_pre"), format!("p{p}_post")]).collect();
    for (k, name) in names.iter().enumerate() {
        let post = name.ends_with("post");
        let caf_cols = if post { 12 } else { 6 } + k % 2;
        let region = move |x: usize, _y: usize| {
            if x < 4 {
                2
            } else if x < 4 + caf_cols {
                1
            } else {
                0
            }
        };
        let patient = name.split('_').next().unwrap().to_string();
        let s = Section {
            name,
            w: 24,
            h: 12,
            region: &region,
            types: vec![
                vec![("Tumor", 0.55), ("CD8 T", 0.45)],
                vec![("CAF", 0.9), ("Endothelial", 0.1)],
                vec![("Macrophage", 0.6), ("Tumor", 0.4)],
            ],
            hypoxic: vec![false, false, false],
            meta: vec![
                ("condition", if post { "post" } else { "pre" }),
                ("patient", Box::leak(patient.into_boxed_str())),
            ],
            seed: 100 + k as u64,
        };
        let (d, g, _) = write_section(tmp.path(), &s);
        ds_args.push(d);
        graphs.push(g);
    }
    let nout = tmp.path().join("cohort_niches");
    let mut args: Vec<std::ffi::OsString> = vec!["niches".into()];
    args.extend(ds_args.iter().map(|p| p.clone().into_os_string()));
    for g in &graphs {
        args.push("--graph".into());
        args.push(g.clone().into_os_string());
    }
    args.extend(["--joint".into(), "--niches".into(), "3".into(), "-o".into(), nout.clone().into_os_string()]);
    ok(&args);
    let dout = tmp.path().join("diff");
    let out = ok([
        "compare".as_ref(),
        nout.as_os_str(),
        "--by".as_ref(),
        "condition".as_ref(),
        "--pair-by".as_ref(),
        "patient".as_ref(),
        "--reference".as_ref(),
        "pre".as_ref(),
        "-o".as_ref(),
        dout.as_os_str(),
    ]);
    eprintln!("{out}");
    let t = Table::read(&dout.join("differential.parquet")).unwrap();
    let (kind, cat, diff, q, test) = (
        t.utf8("kind").unwrap(),
        t.utf8("category").unwrap(),
        t.f64("difference").unwrap(),
        t.f64("q").unwrap(),
        t.utf8("test").unwrap(),
    );
    let row = |k: &str, c: &str| (0..t.num_rows()).find(|&i| kind[i] == k && cat[i] == c).unwrap();
    let caf = row("state", "fibrotic/CAF-rich");
    assert_eq!(test[caf], "paired_t");
    assert!(diff[caf] > 0.0 && q[caf] < 0.05, "CAF-rich: diff {} q {}", diff[caf], q[caf]);
    let infl = row("state", "immune-inflamed");
    assert!(diff[infl] < 0.0 && q[infl] < 0.05);
    let mye = row("state", "myeloid-suppressive");
    assert!(q[mye] >= 0.05 || q[mye].is_nan(), "unplanted myeloid band: q {}", q[mye]);
    // The same effect read from the cell-level states.
    let caf_cells = row("cell_state", "fibrotic/CAF-rich");
    assert!(diff[caf_cells] > 0.0 && q[caf_cells] < 0.05, "cell-level CAF-rich: q {}", q[caf_cells]);

    // A condition with a single sample: NaN p-values with a warning (unpaired).
    let sub: Vec<std::ffi::OsString> = vec!["compare".into(), nout.clone().into_os_string()];
    let sheet = tmp.path().join("sheet.csv");
    let mut text = String::from("sample,arm\n");
    for n in &names {
        text.push_str(&format!("{n},{}\n", if n == "p0_post" { "b" } else { "a" }));
    }
    std::fs::write(&sheet, text).unwrap();
    let out = crate::common::tmescope(sub.iter().cloned().chain([
        "--by".into(),
        "arm".into(),
        "--metadata".into(),
        sheet.into_os_string(),
        "-o".into(),
        tmp.path().join("d2").into_os_string(),
    ]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("p-values are NaN"));

    // Per-sample niche runs: niche ids of separate fits are not compared (states are), with a warning.
    let mut folders: Vec<std::ffi::OsString> = vec!["compare".into()];
    for (k, (d, g)) in ds_args.iter().zip(&graphs).enumerate() {
        let o = tmp.path().join(format!("niches_{k}"));
        ok([
            "niches".as_ref(),
            d.as_os_str(),
            "--graph".as_ref(),
            g.as_os_str(),
            "--niches".as_ref(),
            "3".as_ref(),
            "-o".as_ref(),
            o.as_os_str(),
        ]);
        folders.push(o.into_os_string());
    }
    let d3 = tmp.path().join("d3");
    let out = crate::common::tmescope(folders.into_iter().chain(["-o".into(), d3.clone().into_os_string()]));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("come from {} separate fits", names.len())), "{stderr}");
    let kinds = Table::read(&d3.join("differential.parquet")).unwrap().utf8("kind").unwrap();
    assert!(kinds.iter().all(|k| k != "niche") && kinds.iter().any(|k| k == "state"), "{kinds:?}");
    let abundance = Table::read(&d3.join("abundance.parquet")).unwrap().utf8("kind").unwrap();
    assert!(abundance.iter().any(|k| k == "niche"));
}

#[test]
fn bad_inputs_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, g, _) = quadrants(tmp.path());
    // A program with no genes present.
    let gmt = tmp.path().join("sets.gmt");
    std::fs::write(&gmt, "absent\tnone of these\tNOPE1\tNOPE2\tNOPE3\n").unwrap();
    let o = tmp.path().join("s");
    fails_with(
        [
            "score".as_ref(),
            ds.as_os_str(),
            "-o".as_ref(),
            o.as_os_str(),
            "--programs".as_ref(),
            gmt.as_os_str(),
            "--replace-programs".as_ref(),
        ],
        &["no gene program", "absent", "0 of 3"],
    );
    let out = crate::common::tmescope([
        "score".as_ref(),
        ds.as_os_str(),
        "--graph".as_ref(),
        g.as_os_str(),
        "-o".as_ref(),
        o.as_os_str(),
        "--programs".as_ref(),
        gmt.as_os_str(),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("program `absent` dropped"));
    // A single-sample comparison.
    let n = tmp.path().join("n");
    ok([
        "niches".as_ref(),
        ds.as_os_str(),
        "--graph".as_ref(),
        g.as_os_str(),
        "--niches".as_ref(),
        "2".as_ref(),
        "-o".as_ref(),
        n.as_os_str(),
    ]);
    let d = tmp.path().join("d");
    fails_with(
        ["compare".as_ref(), n.as_os_str(), "--by".as_ref(), "condition".as_ref(), "-o".as_ref(), d.as_os_str()],
        &["condition"],
    );
    let sheet = tmp.path().join("sheet.tsv");
    std::fs::write(&sheet, "sample\tcondition\nquad\tpre\n").unwrap();
    fails_with(
        ["compare".as_ref(), n.as_os_str(), "--metadata".as_ref(), sheet.as_os_str(), "-o".as_ref(), d.as_os_str()],
        &["at least two samples"],
    );
    // Mismatched repeated options, missing labels.
    fails_with(
        [
            "niches".as_ref(),
            ds.as_os_str(),
            ds.as_os_str(),
            "--graph".as_ref(),
            g.as_os_str(),
            "-o".as_ref(),
            d.as_os_str(),
        ],
        &["--graph", "2 datasets"],
    );
    fails_with(
        [
            "niches".as_ref(),
            ds.as_os_str(),
            "--graph".as_ref(),
            g.as_os_str(),
            "--labels".as_ref(),
            "nope".as_ref(),
            "-o".as_ref(),
            d.as_os_str(),
        ],
        &["nope", "cells.parquet"],
    );
    let rules = ok(["niches", "--print-rules"]);
    assert!(rules.contains("[[state]]") && rules.contains("immune-excluded"));
}

/// `communicate --proportions`: one-hot proportions made from the labels give the label result exactly
/// (the spot path generalises the cell path); missing labels and foreign proportions are explained.
#[test]
fn communicate_from_proportions_matches_labels_and_explains_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (ds, g, _) = quadrants(tmp.path());
    let cells = Table::read(&ds.join("cells.parquet")).unwrap();
    let (ids, types) = (cells.utf8("cell_id").unwrap(), cells.utf8("cell_type").unwrap());
    let samples = cells.utf8("sample").unwrap();
    let deconv = tmp.path().join("deconv");
    std::fs::create_dir_all(&deconv).unwrap();
    tmescope_report::example::write_text_columns(
        &deconv.join("proportions.parquet"),
        &[
            ("cell_id", ids.clone()),
            ("sample", samples.clone()),
            ("cell_type", types.clone()),
            ("proportion", vec!["1".to_string(); ids.len()]),
        ],
    )
    .unwrap();
    let comm = |extra: &[&std::ffi::OsStr], out: &Path| -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["communicate".into(), ds.clone().into(), "--graph".into(), g.clone().into(), "--perms".into()];
        args.extend(["30".into(), "-o".into(), out.as_os_str().to_owned()]);
        args.extend(extra.iter().map(|e| e.to_os_string()));
        args
    };
    let (by_labels, by_props) = (tmp.path().join("cl"), tmp.path().join("cp"));
    ok(comm(&[], &by_labels));
    ok(comm(&["--proportions".as_ref(), deconv.as_os_str()], &by_props));
    let (a, b) = (
        Table::read(&by_labels.join("communication.parquet")).unwrap(),
        Table::read(&by_props.join("communication.parquet")).unwrap(),
    );
    assert!(a.num_rows() > 0);
    for col in ["sender", "receiver", "ligand", "receptor"] {
        assert_eq!(a.utf8(col).unwrap(), b.utf8(col).unwrap(), "{col}");
    }
    for col in ["score", "ligand_mean", "receptor_mean", "p"] {
        assert_eq!(a.f64(col).unwrap(), b.f64(col).unwrap(), "{col}");
    }
    // No label column and no proportions: both ways out are named.
    fails_with(comm(&["--labels".as_ref(), "nope".as_ref()], &tmp.path().join("x")), &["`nope`", "--proportions"]);
    // Proportions of another dataset: the file and its cell_id column are named.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    tmescope_report::example::write_text_columns(
        &other.join("proportions.parquet"),
        &[
            ("cell_id", vec!["zz".into()]),
            ("sample", vec![samples[0].clone()]),
            ("cell_type", vec!["Tumor".into()]),
            ("proportion", vec!["1".into()]),
        ],
    )
    .unwrap();
    fails_with(
        comm(&["--proportions".as_ref(), other.as_os_str()], &tmp.path().join("y")),
        &["proportions.parquet", "cell_id", "another dataset"],
    );
    assert!(!tmp.path().join("y").exists());
    // A graph without edges (a radius below the spacing of the cells): nothing to score, and a warning.
    let lonely = tmp.path().join("lonely");
    ok([
        "graph".as_ref(),
        ds.as_os_str(),
        "--kind".as_ref(),
        "radius".as_ref(),
        "--radius".as_ref(),
        "0.001".as_ref(),
        "-o".as_ref(),
        lonely.as_os_str(),
    ]);
    let mut args = comm(&[], &tmp.path().join("z"));
    args[3] = lonely.into_os_string();
    let out = crate::common::tmescope(args);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no edges"), "{}", String::from_utf8_lossy(&out.stderr));
}
