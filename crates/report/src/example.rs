//! A synthetic run folder with every file the report reads, for tests, the screenshot script and the
//! rendering benchmark (`cargo run -p tmescope-report --example bench_report`).
//!
//! The data are made up but shaped like the real stages' output: five Voronoi niches with their own
//! cell-type mix and state, a resistance-score bump in two niches whose high cells form two resistance
//! niches, six programs, long-form proportions, deconvolution QC with some dropped spots, neighbourhood
//! enrichment, communication and, for a cohort, a comparison. Everything is a deterministic function of
//! the seed. Generating is O(cells x programs).

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tmescope_core::parquet_io::write_batch;
use tmescope_core::provenance::Provenance;
use tmescope_core::seed::{mix64, GOLDEN_GAMMA};
use tmescope_core::{Error, Result};

/// One sample of the example run.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleSample {
    /// Sample name (also the folder name).
    pub name: String,
    /// Condition label.
    pub condition: String,
    /// Number of cells.
    pub n_cells: usize,
}

/// The cell types of the example.
pub const CELL_TYPES: [&str; 6] = ["tumour", "CAF", "T cell", "macrophage", "endothelial", "B cell"];
/// The state of each of the five niches.
pub const STATES: [&str; 5] = ["immune-inflamed", "fibrotic", "hypoxic", "myeloid-suppressive", "immune-desert"];
/// The programs scored.
pub const PROGRAMS: [&str; 6] =
    ["checkpoint", "hypoxia_buffa", "ifng_response", "m2_tam", "mhc1_antigen_presentation", "tgfb_fibroblast_ftbrs"];

fn mix(seed: u64, i: u64) -> u64 {
    mix64(seed.wrapping_add(i.wrapping_mul(GOLDEN_GAMMA)))
}

fn unif(seed: u64, i: u64) -> f64 {
    (mix(seed, i) >> 11) as f64 / (1u64 << 53) as f64
}

fn arc<A: arrow::array::Array + 'static>(a: A) -> ArrayRef {
    Arc::new(a)
}

fn write(path: &Path, stage: &str, seed: u64, cols: Vec<(&str, ArrayRef)>) -> Result<()> {
    let batch = RecordBatch::try_from_iter(cols).map_err(|e| Error::Internal(format!("example batch: {e}")))?;
    let prov = Provenance::new(stage, json!({"example": true, "stage": stage})).with_seed(seed);
    write_batch(path, &batch, &prov, &[])
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))
}

/// Writes a Parquet file of text columns (with provenance), e.g. a deliberately malformed file in a test.
pub fn write_text_columns(path: &Path, columns: &[(&str, Vec<String>)]) -> Result<()> {
    let cols = columns.iter().map(|(n, v)| (*n, arc(StringArray::from(v.clone())))).collect();
    write(path, "test", 0, cols)
}

/// Writes a cohort of example sample folders under `root` (plus `compare/` when there are two or more
/// conditions) and returns the sample folders.
pub fn write_example_run(root: &Path, samples: &[ExampleSample], seed: u64) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for (k, s) in samples.iter().enumerate() {
        let dir = root.join(&s.name);
        write_sample(&dir, s, seed ^ mix(seed, k as u64 + 1000))?;
        dirs.push(dir);
    }
    let mut conditions: Vec<&str> = samples.iter().map(|s| s.condition.as_str()).collect();
    conditions.sort();
    conditions.dedup();
    if conditions.len() >= 2 {
        let dir = root.join("compare");
        mkdir(&dir)?;
        // The first sample's condition is the reference.
        let a = samples[0].condition.as_str();
        let b = conditions.iter().copied().find(|c| *c != a).unwrap_or(a);
        let mut kind = Vec::new();
        let mut cat = Vec::new();
        let mut eff = Vec::new();
        let mut q = Vec::new();
        for (i, st) in STATES.iter().enumerate() {
            kind.push("state");
            cat.push(st.to_string());
            eff.push(if *st == "myeloid-suppressive" { 1.07 } else { 0.3 * (i as f64 - 2.0) });
            q.push(if *st == "myeloid-suppressive" { 0.003 } else { 0.2 + 0.1 * i as f64 });
        }
        for n in 0..5 {
            kind.push("niche");
            cat.push(format!("niche_{n}"));
            eff.push(0.2 * (n as f64 - 2.0));
            q.push(0.3 + 0.1 * n as f64);
        }
        let m = kind.len();
        let p: Vec<f64> = q.iter().map(|v| v / 2.0).collect();
        write(
            &dir.join("differential.parquet"),
            "compare",
            seed,
            vec![
                ("kind", arc(StringArray::from(kind))),
                ("category", arc(StringArray::from(cat))),
                ("by", arc(StringArray::from(vec!["condition"; m]))),
                // The other condition is compared against the reference.
                ("level", arc(StringArray::from(vec![b; m]))),
                ("reference", arc(StringArray::from(vec![a; m]))),
                ("mean_level", arc(Float64Array::from(eff.iter().map(|e| 0.2 * 2f64.powf(*e)).collect::<Vec<_>>()))),
                ("mean_reference", arc(Float64Array::from(vec![0.2; m]))),
                (
                    "difference",
                    arc(Float64Array::from(eff.iter().map(|e| 0.2 * 2f64.powf(*e) - 0.2).collect::<Vec<_>>())),
                ),
                ("log2_fc", arc(Float64Array::from(eff))),
                ("p", arc(Float64Array::from(p))),
                ("q", arc(Float64Array::from(q))),
            ],
        )?;
    }
    Ok(dirs)
}

/// Writes one example sample folder.
pub fn write_sample(dir: &Path, s: &ExampleSample, seed: u64) -> Result<()> {
    let n = s.n_cells;
    for sub in ["dataset", "deconvolution", "graph", "stats", "scores", "niches", "communication"] {
        mkdir(&dir.join(sub))?;
    }
    let centres = [(200.0, 200.0), (750.0, 250.0), (500.0, 550.0), (250.0, 800.0), (800.0, 800.0)];
    let ids: Vec<String> = (0..n).map(|i| format!("{}-c{i}", s.name)).collect();
    let x: Vec<f64> = (0..n).map(|i| 1000.0 * unif(seed, 2 * i as u64)).collect();
    let y: Vec<f64> = (0..n).map(|i| 1000.0 * unif(seed, 2 * i as u64 + 1)).collect();
    let niche: Vec<usize> = (0..n)
        .map(|i| {
            (0..5)
                .min_by(|&a, &b| {
                    let d = |c: (f64, f64)| (x[i] - c.0).powi(2) + (y[i] - c.1).powi(2);
                    d(centres[a]).total_cmp(&d(centres[b]))
                })
                .unwrap_or(0)
        })
        .collect();
    // Dominant type per niche, with a second type mixed in.
    let dominant = [2usize, 1, 0, 3, 0];
    let cell_type: Vec<usize> = (0..n)
        .map(|i| {
            let u = unif(seed ^ 77, i as u64);
            if u < 0.6 {
                dominant[niche[i]]
            } else {
                ((u * 100.0) as usize) % CELL_TYPES.len()
            }
        })
        .collect();
    let bump =
        |i: usize, c: (f64, f64)| (-((x[i] - c.0).powi(2) + (y[i] - c.1).powi(2)) / (2.0 * 120.0f64.powi(2))).exp();
    let score: Vec<f64> = (0..n)
        .map(|i| 2.5 * bump(i, centres[1]) + 2.0 * bump(i, centres[3]) + 0.3 * unif(seed ^ 5, i as u64))
        .collect();
    let rn: Vec<Option<u32>> = (0..n)
        .map(|i| {
            if score[i] > 1.4 {
                Some(if niche[i] == 1 || bump(i, centres[1]) > bump(i, centres[3]) { 0 } else { 1 })
            } else {
                None
            }
        })
        .collect();

    let cond = vec![s.condition.as_str(); n];
    let sample = vec![s.name.as_str(); n];
    write(
        &dir.join("dataset/cells.parquet"),
        "simulate",
        seed,
        vec![
            ("cell_id", arc(StringArray::from(ids.clone()))),
            ("sample", arc(StringArray::from(sample.clone()))),
            ("x", arc(Float64Array::from(x.clone()))),
            ("y", arc(Float64Array::from(y.clone()))),
            ("total_counts", arc(Float64Array::from(vec![100.0; n]))),
            ("n_genes", arc(UInt32Array::from(vec![50u32; n]))),
            ("condition", arc(StringArray::from(cond))),
        ],
    )?;
    write(
        &dir.join("niches/niches.parquet"),
        "niches",
        seed,
        vec![
            ("cell_id", arc(StringArray::from(ids.clone()))),
            ("sample", arc(StringArray::from(sample.clone()))),
            ("niche", arc(UInt32Array::from(niche.iter().map(|&k| k as u32).collect::<Vec<_>>()))),
            ("state", arc(StringArray::from(niche.iter().map(|&k| STATES[k]).collect::<Vec<_>>()))),
            ("resistance_score", arc(Float64Array::from(score.clone()))),
            ("resistance_niche", arc(UInt32Array::from(rn.clone()))),
            ("distance_to_endothelium", arc(Float64Array::from(vec![10.0; n]))),
        ],
    )?;
    write(
        &dir.join("niches/niche_summary.parquet"),
        "niches",
        seed,
        vec![
            ("sample", arc(StringArray::from(vec![s.name.as_str(); 5]))),
            ("kind", arc(StringArray::from(vec!["niche"; 5]))),
            ("id", arc(UInt32Array::from((0..5).collect::<Vec<u32>>()))),
            (
                "n_cells",
                arc(UInt32Array::from(
                    (0..5).map(|k| niche.iter().filter(|&&v| v == k).count() as u32).collect::<Vec<_>>(),
                )),
            ),
            ("state", arc(StringArray::from(STATES.to_vec()))),
            (
                "dominant_programs",
                arc(StringArray::from(vec!["checkpoint", "tgfb_fibroblast_ftbrs", "", "hypoxia_buffa,m2_tam", ""])),
            ),
            ("reprogramming_axis", arc(StringArray::from(vec!["", "stromal", "", "myeloid", ""]))),
        ],
    )?;

    // Long-form proportions: three types per cell, the labelled one dominant.
    let mut pid = Vec::with_capacity(3 * n);
    let mut ptype = Vec::with_capacity(3 * n);
    let mut pval = Vec::with_capacity(3 * n);
    for i in 0..n {
        let t = cell_type[i];
        for (k, w) in [(t, 0.7), ((t + 1) % 6, 0.2), ((t + 3) % 6, 0.1)] {
            pid.push(ids[i].as_str());
            ptype.push(CELL_TYPES[k]);
            pval.push(w);
        }
    }
    let m = pid.len();
    write(
        &dir.join("deconvolution/proportions.parquet"),
        "deconvolve",
        seed,
        vec![
            ("cell_id", arc(StringArray::from(pid))),
            ("sample", arc(StringArray::from(vec![s.name.as_str(); m]))),
            ("cell_type", arc(StringArray::from(ptype))),
            ("weight", arc(Float64Array::from(pval.iter().map(|v| v * 100.0).collect::<Vec<_>>()))),
            ("proportion", arc(Float64Array::from(pval))),
        ],
    )?;
    let classes = ["singlet", "doublet_certain", "doublet_uncertain", "reject"];
    let class: Vec<&str> = (0..n)
        .map(|i| match mix(seed ^ 9, i as u64) % 10 {
            0..=5 => classes[0],
            6 | 7 => classes[1],
            8 => classes[2],
            _ => classes[3],
        })
        .collect();
    let dropped: Vec<Option<&str>> = (0..n)
        .map(|i| match mix(seed ^ 11, i as u64) % 100 {
            0 | 1 => Some("too few counts"),
            2 => Some("no reference genes detected"),
            _ => None,
        })
        .collect();
    write(
        &dir.join("deconvolution/deconvolution_qc.parquet"),
        "deconvolve",
        seed,
        vec![
            ("cell_id", arc(StringArray::from(ids.clone()))),
            ("n_counts", arc(Float64Array::from(vec![100.0; n]))),
            ("converged", arc(arrow::array::BooleanArray::from((0..n).map(|i| i % 97 != 0).collect::<Vec<_>>()))),
            ("spot_class", arc(StringArray::from(class))),
            ("dropped_reason", arc(StringArray::from(dropped))),
        ],
    )?;

    // Programs, long form, program-major.
    let mut gid = Vec::with_capacity(6 * n);
    let mut gname = Vec::with_capacity(6 * n);
    let mut gscore = Vec::with_capacity(6 * n);
    let mut gsmooth = Vec::with_capacity(6 * n);
    for (pk, p) in PROGRAMS.iter().enumerate() {
        for i in 0..n {
            let base = match *p {
                "tgfb_fibroblast_ftbrs" => score[i] * 0.8,
                "hypoxia_buffa" => 1.5 * bump(i, centres[3]) + 0.5 * bump(i, centres[1]),
                "m2_tam" => {
                    if niche[i] == 3 {
                        1.0
                    } else {
                        0.2
                    }
                }
                "checkpoint" => {
                    if niche[i] == 0 {
                        0.8
                    } else {
                        0.1
                    }
                }
                _ => 0.3,
            };
            let v = base + 0.4 * (unif(seed ^ (pk as u64 + 100), i as u64) - 0.5);
            gid.push(ids[i].as_str());
            gname.push(*p);
            gscore.push(v);
            gsmooth.push(0.7 * base + 0.3 * v);
        }
    }
    let m = gid.len();
    write(
        &dir.join("scores/programs.parquet"),
        "score",
        seed,
        vec![
            ("cell_id", arc(StringArray::from(gid))),
            ("sample", arc(StringArray::from(vec![s.name.as_str(); m]))),
            ("program", arc(StringArray::from(gname))),
            ("score", arc(Float64Array::from(gscore))),
            ("smoothed_score", arc(Float64Array::from(gsmooth))),
        ],
    )?;

    // Neighbourhood enrichment between every pair of types.
    let (mut ta, mut tb, mut z) = (Vec::new(), Vec::new(), Vec::new());
    for (a, na) in CELL_TYPES.iter().enumerate() {
        for (b, nb) in CELL_TYPES.iter().enumerate() {
            ta.push(*na);
            tb.push(*nb);
            let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
            z.push(if a == b { 12.0 } else { 16.0 * (unif(seed ^ 3, lo * 10 + hi) - 0.5) });
        }
    }
    let m = ta.len();
    write(
        &dir.join("stats/nhood_enrichment.parquet"),
        "stats",
        seed,
        vec![
            ("sample", arc(StringArray::from(vec![s.name.as_str(); m]))),
            ("type_a", arc(StringArray::from(ta))),
            ("type_b", arc(StringArray::from(tb))),
            ("observed", arc(Float64Array::from(vec![1.0; m]))),
            ("expected", arc(Float64Array::from(vec![1.0; m]))),
            ("sd", arc(Float64Array::from(vec![1.0; m]))),
            ("z", arc(Float64Array::from(z))),
            ("p", arc(Float64Array::from(vec![0.01; m]))),
        ],
    )?;
    let k = PROGRAMS.len();
    write(
        &dir.join("stats/autocorrelation.parquet"),
        "stats",
        seed,
        vec![
            ("sample", arc(StringArray::from(vec![s.name.as_str(); k]))),
            ("feature", arc(StringArray::from(PROGRAMS.to_vec()))),
            ("statistic", arc(StringArray::from(vec!["moran"; k]))),
            ("value", arc(Float64Array::from((0..k).map(|i| 0.1 * i as f64).collect::<Vec<_>>()))),
            ("z", arc(Float64Array::from(vec![3.0; k]))),
            ("q", arc(Float64Array::from(vec![0.01; k]))),
        ],
    )?;

    // Communication: a few TME pairs in every niche.
    let pairs = [
        ("TGFB1", "TGFBR2", "CAF", "tumour"),
        ("CXCL12", "CXCR4", "CAF", "T cell"),
        ("CD274", "PDCD1", "tumour", "T cell"),
        ("SPP1", "CD44", "macrophage", "tumour"),
        ("VEGFA", "KDR", "tumour", "endothelial"),
        ("CSF1", "CSF1R", "tumour", "macrophage"),
        ("CXCL9", "CXCR3", "macrophage", "T cell"),
    ];
    let mut cols: [Vec<String>; 5] = Default::default();
    let (mut sc, mut q) = (Vec::new(), Vec::new());
    for nn in 0..5u64 {
        for (pi, (l, r, snd, rcv)) in pairs.iter().enumerate() {
            let u = unif(seed ^ 13, nn * 100 + pi as u64);
            for (c, v) in
                cols.iter_mut().zip([nn.to_string(), snd.to_string(), rcv.to_string(), l.to_string(), r.to_string()])
            {
                c.push(v);
            }
            sc.push(u * 2.0);
            q.push((1.0 - u).powi(3));
        }
    }
    let m = sc.len();
    let [c0, c1, c2, c3, c4] = cols;
    write(
        &dir.join("communication/communication.parquet"),
        "communicate",
        seed,
        vec![
            ("sample", arc(StringArray::from(vec![s.name.as_str(); m]))),
            ("niche", arc(StringArray::from(c0))),
            ("sender", arc(StringArray::from(c1))),
            ("receiver", arc(StringArray::from(c2))),
            ("ligand", arc(StringArray::from(c3))),
            ("receptor", arc(StringArray::from(c4))),
            ("score", arc(Float64Array::from(sc))),
            ("p", arc(Float64Array::from(q.clone()))),
            ("q", arc(Float64Array::from(q))),
        ],
    )?;

    // A token graph (chain), so the links section has a graph file.
    let e = n.saturating_sub(1).min(100_000);
    write(
        &dir.join("graph/edges.parquet"),
        "graph",
        seed,
        vec![
            ("sample", arc(StringArray::from(vec![s.name.as_str(); e]))),
            ("src", arc(UInt32Array::from((0..e as u32).collect::<Vec<_>>()))),
            ("dst", arc(UInt32Array::from((1..=e as u32).collect::<Vec<_>>()))),
            ("distance", arc(Float64Array::from(vec![1.0; e]))),
            ("weight", arc(Float64Array::from(vec![1.0; e]))),
        ],
    )?;
    Ok(())
}
