//! Reliability (issue 9): the bad-input corpus, fault behaviour, determinism across thread counts and the
//! `--max-memory` guard, all through the real `tmescope` binary. The table of cases and the guarantees are
//! in `docs/reliability.md`.
//!
//! - [`bad_input_corpus`] runs every case of `test_data/bad/cases.toml` (in a few threads: each case is a
//!   separate process on tiny inputs) and checks exit code 2, no panic, the expected words in the message
//!   and that nothing is left under the output's final name.
//! - [`killed_stage_leaves_no_final_output_and_rerun_succeeds`] SIGKILLs `simulate` while it writes.
//! - `*_is_identical_with_1_and_2_threads`: one test per stage, comparing Parquet data columns (not the
//!   key-value metadata, whose provenance holds the command line) of two pipeline runs made once.
//! - [`max_memory_refuses_a_too_large_input_before_loading`]: `--max-memory` with tiny limits.

use crate::common::{fails_with, ok, test_data, tmescope};
use crate::run::write_dataset;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{Dataset, GeneTable};
use tmescope_core::parquet_io::{ParquetSink, Table};
use tmescope_core::programs::{default_lr_pairs, default_programs};
use tmescope_core::provenance::Provenance;

/// The stages `run` runs for the shared fixture (deconvolve and simulate have their own thread tests).
const STAGES: &[&str] = &["ingest", "graph", "stats", "score", "niches", "communicate", "compare"];

/// Two runs of the tiny two-sample pipeline, with `--threads 1` and `--threads 2`.
struct Runs {
    /// `<root>/t1/out`: per-sample stage folders and `cohort/`.
    one: PathBuf,
    /// The same with two threads.
    two: PathBuf,
    /// Inputs derived from real fixtures and from `one` for the corpus (`{gen}`).
    generated: PathBuf,
}

/// Runs the pipeline once per test process (shared by the corpus and the determinism tests). Lives under
/// Cargo's per-target temporary folder, one folder per process id; copies left by earlier test processes
/// that are no longer running are removed first (nextest runs tests in parallel processes, so a folder of a
/// live process is never touched).
fn runs() -> &'static Runs {
    static RUNS: OnceLock<Runs> = OnceLock::new();
    RUNS.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let stale = name
                    .strip_prefix("reliability-")
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists());
                if stale {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let root = base.join(format!("reliability-{}", std::process::id()));
        let dirs: Vec<PathBuf> = std::thread::scope(|s| {
            let handles = [1, 2].map(|t| {
                let dir = root.join(format!("t{t}"));
                s.spawn(move || pipeline(&dir, t))
            });
            handles.into_iter().map(|h| h.join().expect("pipeline thread")).collect()
        });
        let generated = root.join("gen");
        make_generated_inputs(&generated, &dirs[0]);
        Runs { one: dirs[0].clone(), two: dirs[1].clone(), generated }
    })
}

/// Writes two hand-made samples and runs every stage of [`STAGES`] with `threads`; returns the output.
fn pipeline(dir: &Path, threads: usize) -> PathBuf {
    for (s, condition) in [("s1", "pre"), ("s2", "post")] {
        write_dataset(&dir.join("data").join(s), s, condition);
        add_program_genes(&dir.join("data").join(s));
    }
    std::fs::write(
        dir.join("samples.csv"),
        "sample,path,format,condition\ns1,data/s1,dataset,pre\ns2,data/s2,dataset,post\n",
    )
    .unwrap();
    let stages: Vec<String> = STAGES.iter().map(|s| format!("\"{s}\"")).collect();
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "samples = \"samples.csv\"\noutput = \"out\"\nthreads = {threads}\nstages = [{}]\n\
             [stats]\nperms = 20\n[communicate]\nperms = 20\n",
            stages.join(", ")
        ),
    )
    .unwrap();
    ok(["run".as_ref(), "--config".as_ref(), config.as_os_str()]);
    dir.join("out")
}

/// Adds to the dataset folder `dir` the first genes of two shipped programs and of a few shipped
/// ligand-receptor pairs (so that `score` and `communicate` have something to work on), higher in the
/// first cell type (`x < 30`).
fn add_program_genes(dir: &Path) {
    let mut ds = Dataset::read(dir).unwrap();
    let programs = default_programs();
    let mut extra: Vec<String> = Vec::new();
    for name in ["hypoxia_buffa", "caf_core"] {
        let p = programs.iter().find(|p| p.name == name).unwrap();
        extra.extend(p.genes.iter().take(6).cloned());
    }
    for pair in default_lr_pairs().into_iter().take(4) {
        extra.extend(pair.ligand.split('_').chain(pair.receptor.split('_')).map(str::to_string));
    }
    let mut names = ds.genes.gene_name.clone();
    for g in extra {
        if !names.contains(&g) {
            names.push(g);
        }
    }
    let (n, g0) = (ds.cells.len(), ds.genes.len());
    let mut triplets = Vec::new();
    for c in 0..n {
        triplets.extend(ds.counts.row_iter(c).map(|(g, v)| (c as u32, g, v)));
        let high = ds.cells.x[c] < 30.0;
        for g in g0..names.len() {
            let v = (c * 7 + g * 3) % 4 + if high { 3 } else { 0 };
            if v > 0 {
                triplets.push((c as u32, g as u32, v as f64));
            }
        }
    }
    ds.counts = CsrCounts::from_triplets(n, names.len(), triplets, true).unwrap();
    ds.genes = GeneTable::from_names(names);
    write(&ds, dir);
}

/// Copies the folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Writes the first `keep` (a fraction) of `from` to `to`.
fn truncated(from: &Path, to: &Path, keep: f64) {
    let bytes = std::fs::read(from).unwrap();
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, &bytes[..(bytes.len() as f64 * keep) as usize]).unwrap();
}

/// Writes `ds` as a dataset folder.
fn write(ds: &Dataset, dir: &Path) {
    ds.write(dir, &Provenance::new("test", serde_json::json!({}))).unwrap();
}

/// The `{gen}` inputs of the corpus: binary files cut or corrupted from real fixtures, and dataset, graph,
/// niche and run folders broken in one way each, derived from the fixture run `run`.
fn make_generated_inputs(gen: &Path, run: &Path) {
    std::fs::create_dir_all(gen.join("empty_dir")).unwrap();
    // Truncated gzip, HDF5 and h5ad from the real vendor fixtures.
    let xenium = test_data("xenium/xenium_small");
    truncated(&xenium.join("cells.csv.gz"), &gen.join("truncated_cells.csv.gz"), 0.5);
    std::fs::create_dir_all(gen.join("xenium_truncated_h5")).unwrap();
    std::fs::copy(xenium.join("cells.csv.gz"), gen.join("xenium_truncated_h5/cells.csv.gz")).unwrap();
    truncated(&xenium.join("cell_feature_matrix.h5"), &gen.join("xenium_truncated_h5/cell_feature_matrix.h5"), 0.5);
    let tenx = test_data("tenx/3.0.0/filtered_feature_bc_matrix.h5");
    truncated(&tenx, &gen.join("tenx_truncated.h5"), 0.5);
    let mut bytes = std::fs::read(&tenx).unwrap();
    bytes[8..200].iter_mut().for_each(|b| *b = 0xA5); // keep the signature, destroy the superblock
    std::fs::write(gen.join("tenx_corrupt.h5"), bytes).unwrap();
    truncated(&test_data("anndata/pbmc68k_reduced.h5ad"), &gen.join("truncated.h5ad"), 0.3);

    // Dataset folders broken in one way each.
    let ds_dir = run.join("s1/dataset");
    let ds = Dataset::read(&ds_dir).unwrap();
    let n = ds.cells.len();
    for (name, file, keep) in
        [("ds_truncated_cells", "cells.parquet", 0.5), ("ds_truncated_counts", "counts.parquet", 0.6)]
    {
        copy_dir(&ds_dir, &gen.join(name));
        truncated(&ds_dir.join(file), &gen.join(name).join(file), keep);
    }
    // Counts out of the required order (the second half of the rows first).
    copy_dir(&ds_dir, &gen.join("ds_unsorted_counts"));
    let counts = Table::read(&ds_dir.join("counts.parquet")).unwrap();
    let half = counts.num_rows() / 2;
    let prov = Provenance::new("test", serde_json::json!({}));
    let mut sink =
        ParquetSink::create(&gen.join("ds_unsorted_counts/counts.parquet"), counts.batch.schema(), &prov, &[]).unwrap();
    sink.write(&counts.batch.slice(half, counts.num_rows() - half)).unwrap();
    sink.write(&counts.batch.slice(0, half)).unwrap();
    sink.finish().unwrap();
    copy_dir(&ds_dir, &gen.join("ds_text_cells"));
    std::fs::write(gen.join("ds_text_cells/cells.parquet"), "cell_id,x,y\nc1,1,2\n").unwrap();
    copy_dir(&ds_dir, &gen.join("ds_genes_as_cells"));
    std::fs::copy(ds_dir.join("genes.parquet"), gen.join("ds_genes_as_cells/cells.parquet")).unwrap();
    let mut nan = ds.clone();
    nan.cells.x[3] = f64::NAN;
    write(&nan, &gen.join("ds_nan_xy"));
    let subset = |rows: &[usize]| {
        let mut d = ds.clone();
        d.cells = ds.cells.select(rows);
        d.counts = ds.counts.select_rows(rows);
        d
    };
    write(&subset(&[0]), &gen.join("ds_one_cell"));
    write(&subset(&[]), &gen.join("ds_zero_cells"));
    write(&subset(&(0..10).collect::<Vec<_>>()), &gen.join("ds_ten_cells"));
    let mut one_gene = ds.clone();
    let keep: Vec<Option<u32>> = (0..ds.genes.len()).map(|g| (g == 0).then_some(0)).collect();
    one_gene.counts = ds.counts.select_cols(&keep, 1);
    one_gene.genes = ds.genes.select(&[0]);
    write(&one_gene, &gen.join("ds_one_gene"));
    let mut zero = ds.clone();
    zero.counts = CsrCounts::zeros(n, ds.genes.len());
    write(&zero, &gen.join("ds_all_zero"));
    let mut other = ds.clone();
    other.genes = GeneTable::from_names((0..ds.genes.len()).map(|g| format!("NOT_A_GENE_{g}")).collect());
    write(&other, &gen.join("ref_no_overlap"));

    // Stage outputs broken in one way each.
    copy_dir(&run.join("s1/graph"), &gen.join("graph_truncated"));
    truncated(&run.join("s1/graph/edges.parquet"), &gen.join("graph_truncated/edges.parquet"), 0.5);
    let garbage = b"PAR1 this is not a parquet footer PAR1";
    copy_dir(&run.join("s1/niches"), &gen.join("niches_corrupt"));
    std::fs::write(gen.join("niches_corrupt/niches.parquet"), garbage).unwrap();
    copy_dir(&run.join("s1"), &gen.join("run_corrupt_niches"));
    std::fs::write(gen.join("run_corrupt_niches/niches/niches.parquet"), garbage).unwrap();
}

/// One case of `test_data/bad/cases.toml`.
#[derive(Debug, serde::Deserialize)]
struct Case {
    name: String,
    args: Vec<String>,
    expect: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

/// Reads the manifest of the corpus.
fn corpus() -> Vec<Case> {
    let path = test_data("bad/cases.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str::<Corpus>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())).case
}

/// Runs one case; returns what went wrong, if anything.
fn check_case(case: &Case, runs: &Runs, tmp: &Path) -> Result<(), String> {
    let work = tmp.join(&case.name);
    std::fs::create_dir_all(&work).unwrap();
    let out = work.join("out");
    let subst = |a: &str| {
        a.replace("{bad}", &test_data("bad").display().to_string())
            .replace("{data}", &test_data("").display().to_string())
            .replace("{gen}", &runs.generated.display().to_string())
            .replace("{run}", &runs.one.display().to_string())
            .replace("{out}", &out.display().to_string())
    };
    let args: Vec<String> = case.args.iter().map(|a| subst(a)).collect();
    let o = tmescope(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    if let Some(dump) = std::env::var_os("TMESCOPE_RELIABILITY_DUMP") {
        // For docs/reliability.md: one JSON line per case with the message users get.
        let line = serde_json::json!({"name": case.name, "args": case.args, "stderr": err.trim()}).to_string();
        let dump = PathBuf::from(dump).join(format!("{}.json", case.name));
        std::fs::write(dump, line).unwrap();
    }
    let mut problems = Vec::new();
    if o.status.code() != Some(2) {
        problems.push(format!("exit code {:?}, expected 2", o.status.code()));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        problems.push("panicked".to_string());
    }
    for e in &case.expect {
        if !err.contains(e.as_str()) {
            problems.push(format!("message lacks `{e}`"));
        }
    }
    let left: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out"))
        .collect();
    if !left.is_empty() {
        problems.push(format!("left behind: {left:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}\n  $ tmescope {}\n  {}", case.name, problems.join("; "), args.join(" "), err.trim()))
    }
}

#[test]
fn bad_input_corpus() {
    let cases = corpus();
    assert!(cases.len() >= 40, "the corpus must hold at least 40 cases, has {}", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let runs = runs();
    let tmp = tempfile::tempdir().unwrap();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                if let Err(e) = check_case(case, runs, tmp.path()) {
                    failures.lock().unwrap().push(e);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    // `run --config` cases must not leave the configured output folder either.
    assert!(!test_data("bad/config/out").exists(), "run left test_data/bad/config/out");
}

#[test]
fn killed_stage_leaves_no_final_output_and_rerun_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sim");
    // Large enough to take a while in a debug build; killed as soon as its temporary folder holds a file.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tmescope"))
        .args(["--threads", "1", "simulate", "-o"])
        .arg(&out)
        .args(["--cells", "400000", "--samples", "4", "--genes", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = format!(".sim.partial-{}", child.id());
    let writing = || {
        let p = tmp.path().join(&partial);
        std::fs::read_dir(&p).map(|mut d| d.next().is_some()).unwrap_or(false)
    };
    let mut seen = false;
    for _ in 0..6000 {
        if writing() {
            seen = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs, no cleanup
    let status = child.wait().unwrap();
    assert!(seen, "simulate never started writing its temporary folder (status {status:?})");
    assert!(!status.success(), "simulate finished before it was killed: make the input larger");
    assert!(!out.exists(), "a killed stage must not leave its final-named folder");
    assert!(tmp.path().join(&partial).exists(), "the killed run's temporary folder is expected to remain");
    // Rerunning (smaller, to stay fast) succeeds and removes the stale temporary folder.
    ok(["simulate".as_ref(), "-o".as_ref(), out.as_os_str(), "--cells".as_ref(), "300".as_ref()]);
    assert!(out.is_dir());
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["sim".to_string()], "stale temporary folders are removed by the rerun");
}

/// Asserts that every Parquet file under `a` has the same data columns (names, types, values) as its
/// twin under `b`, and that both folders hold the same Parquet files; returns how many were compared.
pub(crate) fn assert_same_parquet_data(a: &Path, b: &Path) -> usize {
    let list = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        v.sort();
        v
    };
    let (fa, fb) = (list(a), list(b));
    assert_eq!(fa, fb, "{} and {} hold different Parquet files", a.display(), b.display());
    assert!(!fa.is_empty(), "no Parquet file in {}", a.display());
    for f in &fa {
        let (ta, tb) = (Table::read(&a.join(f)).unwrap(), Table::read(&b.join(f)).unwrap());
        assert_eq!(ta.batch.schema().fields(), tb.batch.schema().fields(), "{f}: columns differ");
        for (k, field) in ta.batch.schema().fields().iter().enumerate() {
            assert!(
                ta.batch.column(k) == tb.batch.column(k),
                "{f}: column `{}` differs between {} and {}",
                field.name(),
                a.display(),
                b.display()
            );
        }
    }
    fa.len()
}

/// Compares the output folder `folder` of every sample (or of the cohort) between the two runs.
fn same_with_1_and_2_threads(folder: &str, per_sample: bool) {
    let r = runs();
    let subs: Vec<String> = if per_sample {
        ["s1", "s2"].map(|s| format!("{s}/{folder}")).to_vec()
    } else {
        vec![format!("cohort/{folder}")]
    };
    for sub in subs {
        assert_same_parquet_data(&r.one.join(&sub), &r.two.join(&sub));
    }
}

#[test]
fn ingest_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("dataset", true);
    // And a real vendor input read by a parallel reader (MERSCOPE, ~2000 cells).
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["1", "2"]
        .map(|t| {
            let o = tmp.path().join(format!("t{t}"));
            let input = test_data("merscope");
            let args: [&OsStr; 8] = [
                "--threads".as_ref(),
                t.as_ref(),
                "ingest".as_ref(),
                input.as_os_str(),
                "--sample".as_ref(),
                "m".as_ref(),
                "-o".as_ref(),
                o.as_os_str(),
            ];
            ok(args);
            o
        })
        .to_vec();
    assert_eq!(assert_same_parquet_data(&dirs[0], &dirs[1]), 3);
}

#[test]
fn graph_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("graph", true);
}

#[test]
fn stats_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("stats", true);
}

#[test]
fn score_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("scores", true);
}

#[test]
fn niches_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("niches", true);
}

#[test]
fn communicate_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("communication", true);
}

#[test]
fn compare_is_identical_with_1_and_2_threads() {
    same_with_1_and_2_threads("compare", false);
}

#[test]
fn max_memory_refuses_a_too_large_input_before_loading() {
    let r = runs();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("g");
    let ds = r.one.join("s1/dataset");
    let err = fails_with(
        ["--max-memory".as_ref(), "1K".as_ref(), "graph".as_ref(), ds.as_os_str(), "-o".as_ref(), out.as_os_str()],
        &["counts.parquet", "--max-memory", "needs about"],
    );
    assert!(!out.exists(), "{err}");
    let h5 = test_data("tenx/3.0.0/filtered_feature_bc_matrix.h5");
    fails_with(
        ["--max-memory".as_ref(), "10K".as_ref(), "ingest".as_ref(), h5.as_os_str(), "-o".as_ref(), out.as_os_str()],
        &["filtered_feature_bc_matrix.h5", "--max-memory", "needs about"],
    );
    assert!(!out.exists());
    let hd = test_data("visium_hd/outs");
    let args: [&OsStr; 8] = [
        "--max-memory".as_ref(),
        "100K".as_ref(),
        "ingest".as_ref(),
        hd.as_os_str(),
        "--bin-size".as_ref(),
        "8".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    fails_with(args, &["visium_hd/outs", "--bin-size 16", "raise --max-memory"]);
    assert!(!out.exists());
    // A radius graph is also checked, by its estimated number of edges (every pair, 36 x 35, at this radius),
    // before it is built; the same limit lets a kNN graph through.
    let radius = |limit: &'static str| -> [&OsStr; 10] {
        [
            "--max-memory".as_ref(),
            limit.as_ref(),
            "graph".as_ref(),
            ds.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--kind".as_ref(),
            "radius".as_ref(),
            "--radius".as_ref(),
            "1e6".as_ref(),
        ]
    };
    fails_with(radius("60K"), &["cells.parquet", "radius graph of about 1260 edges", "lower --radius"]);
    assert!(!out.exists());
    ok(["--max-memory".as_ref(), "60K".as_ref(), "graph".as_ref(), ds.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    ok(radius("1G"));
    std::fs::remove_dir_all(&out).unwrap();
    // A large enough limit changes nothing; a malformed one is a usage error.
    ok(["--max-memory".as_ref(), "1G".as_ref(), "graph".as_ref(), ds.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    fails_with(["--max-memory", "lots", "graph", "x", "-o", "y"], &["--max-memory", "lots", "8G"]);
}
