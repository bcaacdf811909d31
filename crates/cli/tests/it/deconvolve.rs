//! End-to-end tests of the deconvolve stage(s).

use crate::common::{fails_with, ok, tmescope};
use std::ffi::OsStr;
use std::path::Path;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::parquet_io::Table;
use tmescope_core::provenance::Provenance;
use tmescope_deconv::synth::{split_cells, synthesize, synthetic_reference, Pattern, SynthOptions};

fn dataset(counts: CsrCounts, genes: Vec<String>, platform: &str, extra: Vec<(String, Column)>) -> Dataset {
    let n = counts.n_rows;
    Dataset {
        cells: CellTable {
            cell_id: (0..n).map(|i| format!("c{i}")).collect(),
            sample: vec!["s1".into(); n],
            x: (0..n).map(|i| i as f64).collect(),
            y: vec![0.0; n],
            z: None,
            extra,
        },
        genes: GeneTable::from_names(genes),
        counts,
        platform: platform.into(),
        coordinate_unit: "micrometre".into(),
        notes: vec![],
    }
}

/// Writes a labelled reference (4 types x 30 cells, 80 genes) and 40 simulated spots into `dir`.
fn fixtures(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (counts, types) = synthetic_reference(4, 80, 60, 1500.0, 7);
    let (pool, keep) = split_cells(&types, 4, 7);
    let genes: Vec<String> = (0..80).map(|g| format!("G{g}")).collect();
    let opts = SynthOptions { n_spots: 40, mean_total: 400.0, sd_total: 100.0, ..Default::default() };
    let spots = synthesize(&counts, &types, 4, &pool, Pattern::Uniform, &opts);
    let labels = Column::Text(keep.iter().map(|&i| Some(format!("type{}", types[i]))).collect());
    let reference = dataset(counts.select_rows(&keep), genes.clone(), "table", vec![("cell_type".into(), labels)]);
    let spatial = dataset(spots.counts, genes, "simulated-visium", vec![]);
    let prov = Provenance::new("test", serde_json::json!({}));
    let (r, s) = (dir.join("ref"), dir.join("spatial"));
    reference.write(&r, &prov).unwrap();
    spatial.write(&s, &prov).unwrap();
    (r, s)
}

fn run_args<'a>(r: &'a Path, s: &'a Path, o: &'a Path) -> Vec<&'a OsStr> {
    vec![
        OsStr::new("deconvolve"),
        OsStr::new("--spatial"),
        s.as_os_str(),
        OsStr::new("--reference"),
        r.as_os_str(),
        OsStr::new("-o"),
        o.as_os_str(),
    ]
}

/// [`run_args`] with sigma fixed at 0.8 (no search) and `--min-cells-per-type min_cells`.
fn fixed_sigma_args<'a>(r: &'a Path, s: &'a Path, o: &'a Path, min_cells: &'a str) -> Vec<&'a OsStr> {
    let mut args = run_args(r, s, o);
    args.extend([OsStr::new("--sigma"), OsStr::new("0.8"), OsStr::new("--min-cells-per-type"), OsStr::new(min_cells)]);
    args
}

#[test]
fn full_mode_writes_three_files_and_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, s) = fixtures(tmp.path());
    let o = tmp.path().join("out");
    let args = fixed_sigma_args(&r, &s, &o, "10");
    let out = ok(&args);
    assert!(out.contains("40 spots fitted") && out.contains("sigma 0.80"), "{out}");
    let qc = Table::read(&o.join("deconvolution_qc.parquet")).unwrap();
    assert_eq!(qc.num_rows(), 40);
    let props = Table::read(&o.join("proportions.parquet")).unwrap();
    assert_eq!(props.num_rows(), 40 * 4);
    let p = props.f64("proportion").unwrap();
    for spot in p.chunks(4) {
        assert!((spot.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    let prof = Table::read(&o.join("profiles.parquet")).unwrap();
    assert!(prof.utf8("role").unwrap().iter().any(|r| r == "reg"));
    let prov = qc.provenance().unwrap();
    assert_eq!(prov.stage, "deconvolve");
    assert_eq!(prov.parameters["sigma_chosen"], serde_json::json!(0.8));
}

#[test]
fn sigma_search_doublet_mode_and_thread_independence() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, s) = fixtures(tmp.path());
    let mut tables = Vec::new();
    for threads in ["1", "2"] {
        let o = tmp.path().join(format!("out{threads}"));
        let mut args = run_args(&r, &s, &o);
        args.extend([
            OsStr::new("--mode"),
            OsStr::new("doublet"),
            OsStr::new("--min-cells-per-type"),
            OsStr::new("10"),
        ]);
        args.extend([OsStr::new("--threads"), OsStr::new(threads), OsStr::new("--max-sigma-rounds"), OsStr::new("2")]);
        let out = ok(&args);
        assert!(out.contains("classes:") && out.contains("sigma"), "{out}");
        let qc = Table::read(&o.join("deconvolution_qc.parquet")).unwrap();
        let props = Table::read(&o.join("proportions.parquet")).unwrap();
        // Compare the data columns only: the schema metadata holds the provenance, whose command line differs.
        tables.push((qc.batch.columns().to_vec(), props.batch.columns().to_vec()));
    }
    assert_eq!(tables[0], tables[1], "results differ between 1 and 2 threads");
}

#[test]
fn nnls_and_labels_modes_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, s) = fixtures(tmp.path());
    let o = tmp.path().join("nnls");
    let mut args = run_args(&r, &s, &o);
    args.extend([OsStr::new("--method"), OsStr::new("nnls"), OsStr::new("--min-cells-per-type"), OsStr::new("10")]);
    assert!(ok(&args).contains("(nnls, full)"));
    let o = tmp.path().join("labels");
    let mut args = run_args(&r, &s, &o);
    args.extend([
        OsStr::new("--mode"),
        OsStr::new("labels"),
        OsStr::new("--sigma"),
        OsStr::new("0.8"),
        OsStr::new("--min-cells-per-type"),
        OsStr::new("10"),
    ]);
    ok(&args);
    let qc = Table::read(&o.join("deconvolution_qc.parquet")).unwrap();
    let first = qc.utf8_opt("first_type").unwrap();
    let margin = qc.f64("margin").unwrap();
    assert!(first.iter().all(|f| f.is_some()) && margin.iter().all(|m| *m >= 0.0));
}

#[test]
fn bad_inputs_give_clear_errors_or_reported_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, s) = fixtures(tmp.path());
    let prov = Provenance::new("test", serde_json::json!({}));
    // Empty gene overlap.
    let mut sp = Dataset::read(&s).unwrap();
    sp.genes = GeneTable::from_names((0..80).map(|g| format!("ENSG{g:011}")).collect());
    let bad = tmp.path().join("ensembl");
    sp.write(&bad, &prov).unwrap();
    let o = tmp.path().join("o1");
    fails_with(run_args(&r, &bad, &o), &["match", "--gene-key id"]);
    // Labels missing.
    let mut rf = Dataset::read(&r).unwrap();
    rf.cells.extra.clear();
    let nolab = tmp.path().join("nolabels");
    rf.write(&nolab, &prov).unwrap();
    fails_with(run_args(&nolab, &s, &o), &["cell_type", "missing"]);
    // NaN in the reference.
    let mut rf = Dataset::read(&r).unwrap();
    let vals: Vec<f32> =
        (0..rf.counts.nnz()).map(|k| if k == 3 { f32::NAN } else { rf.counts.values.get(k) as f32 }).collect();
    rf.counts.values = tmescope_core::counts::CountValues::F32(vals);
    let nan = tmp.path().join("nan");
    rf.write(&nan, &prov).unwrap();
    fails_with(run_args(&nan, &s, &o), &["finite"]);
    // A type with too few cells is dropped and reported; zero-count spots are reported, not fitted.
    let mut sp = Dataset::read(&s).unwrap();
    let keep: Vec<usize> = (0..sp.counts.n_rows).collect();
    let mut m = sp.counts.select_rows(&keep);
    m.indptr.push(*m.indptr.last().unwrap());
    m.n_rows += 1;
    sp.counts = m;
    sp.cells.cell_id.push("empty".into());
    sp.cells.sample.push("s1".into());
    sp.cells.x.push(99.0);
    sp.cells.y.push(0.0);
    let zero = tmp.path().join("zero");
    sp.write(&zero, &prov).unwrap();
    let o = tmp.path().join("o2");
    let args = fixed_sigma_args(&r, &zero, &o, "31");
    let out = tmescope(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 30 cells per type in the reference half: every type is below 31 -> a clear error naming the drops.
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("type0 (30 cells)"), "{stderr}");
    let args = fixed_sigma_args(&r, &zero, &o, "10");
    let out = ok(&args);
    assert!(out.contains("1 zero counts"), "{out}");
    let qc = Table::read(&o.join("deconvolution_qc.parquet")).unwrap();
    let reasons = qc.utf8_opt("dropped_reason").unwrap();
    assert_eq!(reasons.last().unwrap().as_deref(), Some("zero counts"));
    // One type with 5 cells: dropped and named in the summary, the others fitted.
    let rf = Dataset::read(&r).unwrap();
    let labels = rf.cells.get("cell_type").unwrap().as_text();
    let mut seen = 0;
    let rows: Vec<usize> = (0..rf.cells.len())
        .filter(|&i| {
            if labels[i].as_deref() == Some("type3") {
                seen += 1;
                seen <= 5
            } else {
                true
            }
        })
        .collect();
    let small = Dataset { cells: rf.cells.select(&rows), counts: rf.counts.select_rows(&rows), ..rf.clone() };
    let small_dir = tmp.path().join("small");
    small.write(&small_dir, &prov).unwrap();
    let o = tmp.path().join("o3");
    let args = fixed_sigma_args(&small_dir, &s, &o, "10");
    let out = ok(&args);
    assert!(out.contains("type3 (5 cells)") && out.contains("3 cell types"), "{out}");
    // A gene name held by two genes (G1 renamed G0 in the spatial data, G3 renamed G2 in the reference): those
    // genes are ignored, not matched to whichever came last, and the summary says so.
    let (mut sp, mut rf) = (Dataset::read(&s).unwrap(), Dataset::read(&r).unwrap());
    sp.genes.gene_name[1] = "G0".into();
    rf.genes.gene_name[3] = "G2".into();
    let (dup_s, dup_r, o) = (tmp.path().join("dup_spatial"), tmp.path().join("dup_reference"), tmp.path().join("o4"));
    sp.write(&dup_s, &prov).unwrap();
    rf.write(&dup_r, &prov).unwrap();
    let out = ok(fixed_sigma_args(&dup_r, &dup_s, &o, "10"));
    assert!(out.contains("2 gene names held by more than one gene") && out.contains("G0, G2"), "{out}");
    let genes = Table::read(&o.join("profiles.parquet")).unwrap().utf8("gene_name").unwrap();
    assert!(!genes.iter().any(|g| ["G0", "G1", "G2", "G3"].contains(&g.as_str())), "{genes:?}");
    // Counts scaled far beyond raw UMIs reach the end of the likelihood table: said, not silent.
    let mut sp = Dataset::read(&s).unwrap();
    let scaled: Vec<f32> = (0..sp.counts.nnz()).map(|k| sp.counts.values.get(k) as f32 * 5000.0).collect();
    sp.counts.values = tmescope_core::counts::CountValues::F32(scaled);
    let (big, o) = (tmp.path().join("scaled"), tmp.path().join("o5"));
    sp.write(&big, &prov).unwrap();
    let out = ok(fixed_sigma_args(&r, &big, &o, "10"));
    assert!(out.contains("40 of 40 spots have a gene count above 1000") && out.contains("clipped"), "{out}");
    // Unknown options are usage errors.
    fails_with(["deconvolve", "--spatial", "a", "--reference", "b", "-o", "c", "--method", "magic"], &["--method"]);
}

#[test]
fn help_shows_examples() {
    let out = ok(["deconvolve", "--help"]);
    assert!(out.contains("Examples:") && out.contains("--likelihood-cache") && out.contains("--max-sigma-rounds"));
}
