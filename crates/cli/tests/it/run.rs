//! End-to-end tests of `tmescope run` and `tmescope config`.
//!
//! The cohort is two tiny hand-made dataset folders (`format = dataset` in the sheet), written with the
//! core crate, so that these tests do not depend on the simulator or on every stage being finished:
//! stages that are still stubs in this build are skipped by `run` with a message, which the tests accept.

use crate::common::{fails_with, ok, tmescope};
use std::path::{Path, PathBuf};
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::provenance::Provenance;

/// A 6 x 6 grid of cells, 10 um apart, two cell types in halves, 8 genes with type-specific counts.
/// Also used by `reliability.rs`.
pub(crate) fn write_dataset(dir: &Path, sample: &str, condition: &str) {
    let n = 36;
    let types = ["tumor", "T cell"];
    let genes: Vec<String> =
        ["EPCAM", "KRT8", "CD3E", "CD8A", "VIM", "ACTB", "HIF1A", "PDCD1"].iter().map(|g| g.to_string()).collect();
    let mut triplets = Vec::new();
    for c in 0..n {
        let t = usize::from(c % 6 >= 3);
        for (g, _) in genes.iter().enumerate() {
            let own = if t == 0 { g < 2 } else { (2..4).contains(&g) };
            let count = if own { 5 + (c * 7 + g * 3) % 4 } else { (c + g) % 3 };
            if count > 0 {
                triplets.push((c as u32, g as u32, count as f64));
            }
        }
    }
    let counts = CsrCounts::from_triplets(n, genes.len(), triplets, true).expect("counts");
    let cells = CellTable {
        cell_id: (0..n).map(|c| format!("cell{c}")).collect(),
        sample: vec![sample.to_string(); n],
        x: (0..n).map(|c| (c % 6) as f64 * 10.0).collect(),
        y: (0..n).map(|c| (c / 6) as f64 * 10.0).collect(),
        z: None,
        extra: vec![
            ("cell_type".into(), Column::Text((0..n).map(|c| Some(types[usize::from(c % 6 >= 3)].into())).collect())),
            ("condition".into(), Column::constant_text(condition, n)),
        ],
    };
    let ds = Dataset {
        cells,
        genes: GeneTable::from_names(genes),
        counts,
        platform: "table".into(),
        coordinate_unit: "micrometre".into(),
        notes: vec![],
    };
    ds.write(dir, &Provenance::new("ingest", serde_json::json!({}))).expect("dataset written");
}

/// A cohort of two dataset folders with a sheet and a config running `stages`; returns the config path.
fn cohort(root: &Path, stages: &[&str]) -> PathBuf {
    write_dataset(&root.join("data/s1"), "s1", "pre");
    write_dataset(&root.join("data/s2"), "s2", "post");
    std::fs::write(
        root.join("samples.csv"),
        "sample,path,format,condition\ns1,data/s1,dataset,pre\ns2,data/s2,dataset,post\n",
    )
    .unwrap();
    let stages: Vec<String> = stages.iter().map(|s| format!("\"{s}\"")).collect();
    let config = root.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "samples = \"samples.csv\"\noutput = \"out\"\nthreads = 1\nstages = [{}]\n[stats]\nperms = 10\n",
            stages.join(", ")
        ),
    )
    .unwrap();
    config
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = tmescope(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether `tmescope <stage>` is implemented in this build (not a stub).
fn implemented(stage: &str) -> bool {
    let help = ok([stage, "--help"]);
    help.contains("-o, --output") || help.contains("--output <")
}

#[test]
fn run_twice_redoes_nothing_the_second_time() {
    let tmp = tempfile::tempdir().unwrap();
    let config = cohort(tmp.path(), &["ingest", "graph"]);
    let c = config.to_str().unwrap();
    let (code, stdout, stderr) = run(&["run", "--config", c]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... done"), "{stderr}");
    assert!(stderr.contains("[1/9] ingest s2 ... done"), "{stderr}");
    assert!(stdout.contains("step(s) ran"), "{stdout}");
    let out = tmp.path().join("out");
    for s in ["s1", "s2"] {
        for f in ["cells.parquet", "genes.parquet", "counts.parquet"] {
            assert!(out.join(s).join("dataset").join(f).is_file(), "{s}/{f}");
        }
    }
    if implemented("graph") {
        assert!(stderr.contains("[3/9] graph s1 ... done"), "{stderr}");
        assert!(out.join("s1/graph/edges.parquet").is_file());
        // Each stage's log says how long its steps took.
        let log = std::fs::read_to_string(out.join("logs/graph-s1.log")).unwrap();
        assert!(log.contains("INFO graph: build the knn graph: "), "{log}");
    } else {
        assert!(stderr.contains("graph s1 ... skipped (`tmescope graph` is not implemented"), "{stderr}");
    }

    // Second run: nothing is redone.
    let (code, stdout, stderr) = run(&["run", "--config", c]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("... done"), "something was redone:\n{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... up to date"), "{stderr}");
    if implemented("graph") {
        assert!(stderr.contains("[3/9] graph s2 ... up to date"), "{stderr}");
    }
    assert!(stdout.contains("0 step(s) ran"), "{stdout}");

    // A changed input reruns its step (and only what depends on it); --dry-run only tells.
    write_dataset(&tmp.path().join("data/s2"), "s2", "post-therapy");
    let (code, _, stderr) = run(&["run", "--config", c, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... up to date"), "{stderr}");
    assert!(stderr.contains("[1/9] ingest s2 ... would run (input"), "{stderr}");
    let (code, _, stderr) = run(&["run", "--config", c, "--samples", "s2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[1/9] ingest s2 ... done"), "{stderr}");
    assert!(!stderr.contains("ingest s1"), "--samples s2 must leave s1 out:\n{stderr}");

    // --force reruns everything.
    let (code, _, stderr) = run(&["run", "--config", c, "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... done"), "{stderr}");
}

#[test]
fn changed_parameter_reruns_the_stage() {
    if !implemented("graph") {
        eprintln!("graph is not implemented in this build: parameter-change rerun not exercised");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = cohort(tmp.path(), &["ingest", "graph"]);
    let c = config.to_str().unwrap();
    ok(["run", "--config", c]);
    let text = std::fs::read_to_string(&config).unwrap() + "[graph]\nk = 4\n";
    std::fs::write(&config, text).unwrap();
    let (code, _, stderr) = run(&["run", "--config", c]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... up to date"), "{stderr}");
    assert!(stderr.contains("[3/9] graph s1 ... done"), "{stderr}");
}

#[test]
fn failing_stage_stops_with_its_error_and_leaves_no_finished_output() {
    let tmp = tempfile::tempdir().unwrap();
    let config = cohort(tmp.path(), &["ingest", "graph"]);
    let c = config.to_str().unwrap();
    // A dataset folder whose cells.parquet is not Parquet at all.
    let bad = tmp.path().join("data/s2/cells.parquet");
    std::fs::write(&bad, b"not parquet").unwrap();
    let out = tmp.path().join("out");
    if implemented("graph") {
        let err = fails_with(["run", "--config", c], &["stage `graph s2` failed (exit code 2)", "cells.parquet"]);
        assert!(err.contains("logs/graph-s2.log"), "{err}");
        assert!(!err.contains(" INFO "), "the step timings stay in the log:\n{err}");
        assert!(!out.join("s2/graph").exists(), "a failed stage must leave no output folder");
        // The partial folder of the failed stage is gone too.
        let leftovers: Vec<_> = std::fs::read_dir(out.join("s2"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Rerunning after fixing the input succeeds and reruns only what failed or changed.
        write_dataset(&tmp.path().join("data/s2"), "s2", "post");
        let (code, _, stderr) = run(&["run", "--config", c]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("[3/9] graph s1 ... up to date"), "{stderr}");
        assert!(stderr.contains("[3/9] graph s2 ... done"), "{stderr}");
    }
    // Without the stage binary's help: a sheet row pointing at a folder that is no dataset fails in run
    // itself, exit 2, naming the folder.
    std::fs::remove_file(&bad).unwrap();
    fails_with(["run", "--config", c, "--force"], &["data/s2", "cells.parquet", "dataset folder"]);
    assert!(!out.join("s2/dataset").exists());
}

#[test]
fn print_default_parses_back_and_check_names_bad_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let text = ok(["config", "--print-default"]);
    assert!(text.contains("[graph]") && text.contains("# k = 6"), "{text}");
    let config = tmp.path().join("pipeline.toml");
    std::fs::write(&config, &text).unwrap();
    std::fs::write(tmp.path().join("samples.csv"), "sample,path,format\ns1,data/s1,dataset\n").unwrap();
    let out = ok(["config", "--check", config.to_str().unwrap()]);
    assert!(out.contains("ok (1 sample(s)"), "{out}");

    // Unknown key, wrong type, bad value: exit 2 naming the file, the key and the line.
    std::fs::write(&config, "samples = \"samples.csv\"\n[graph]\nkk = 3\n").unwrap();
    fails_with(["config", "--check", config.to_str().unwrap()], &["pipeline.toml", "line 3", "unknown field `kk`"]);
    std::fs::write(&config, "samples = \"samples.csv\"\n[graph]\nk = \"six\"\n").unwrap();
    fails_with(["config", "--check", config.to_str().unwrap()], &["pipeline.toml", "graph.k", "line 3"]);
    std::fs::write(&config, "samples = 3\n").unwrap();
    fails_with(["run", "--config", config.to_str().unwrap()], &["pipeline.toml", "`samples`", "line 1"]);
    std::fs::write(&config, "stages = [\"ingest\", \"grpah\"]\n").unwrap();
    fails_with(["config", "--check", config.to_str().unwrap()], &["key `stages`", "grpah"]);
    // A missing sample sheet names the sheet.
    std::fs::write(&config, "samples = \"nope.csv\"\n").unwrap();
    fails_with(["config", "--check", config.to_str().unwrap()], &["nope.csv"]);
}

#[test]
fn print_commands_lists_every_step_and_json_for_snakemake() {
    let tmp = tempfile::tempdir().unwrap();
    let config = cohort(tmp.path(), &["ingest", "graph", "stats", "niches", "compare", "report"]);
    let c = config.to_str().unwrap();
    let text = ok(["config", "--print-commands", c]);
    let graph = format!("tmescope graph {0}/out/s1/dataset -o {0}/out/s1/graph", tmp.path().display());
    assert!(text.contains(&graph), "{text}");
    assert!(text.contains("# [8/9] compare"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&ok(["config", "--print-commands", c, "--json"])).unwrap();
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2 + 2 + 2 + 2 + 1 + 1);
    assert_eq!(steps[0]["argv"], serde_json::Value::Null);
    assert_eq!(steps[2]["argv"][0], "graph");
    assert!(json["available"]["report"].is_boolean());
    // From standard input (how the Snakemake workflow asks), paths stay relative to the current folder.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tmescope"))
        .args(["config", "--print-commands", "-", "--json"])
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), br#"{"samples": "samples.csv", "output": "res"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["output"], "res");
    assert_eq!(json["steps"][0]["output"], "res/s1/dataset");
}

#[test]
fn snakemake_schema_matches_config() {
    // The workflow's JSON schema and the Rust config must know the same keys.
    let schema_path = crate::common::repo().join("pipelines/workflow/schemas/config.schema.yaml");
    let text: String = std::fs::read_to_string(&schema_path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let default = ok(["config", "--print-default"]);
    // Every key of the documented default (commented or not) is in the schema, section by section.
    let mut section = String::new();
    for line in default.lines() {
        let l = line.trim_start_matches("# ").trim();
        if l.starts_with('[') && l.ends_with(']') {
            section = l.trim_matches(|c| c == '[' || c == ']').to_string();
            assert!(schema["properties"][&section].is_object(), "schema lacks section {section}");
            continue;
        }
        let Some((key, _)) = l.split_once(" = ") else { continue };
        if !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let props =
            if section.is_empty() { &schema["properties"] } else { &schema["properties"][&section]["properties"] };
        assert!(props[key].is_object(), "schema lacks {section}.{key}");
    }
}

/// A raw (vendor) input in the sample sheet: changing or adding a raw file reruns ingest; a bad raw file
/// fails the stage with its error and leaves no output that a later run would take as finished.
#[test]
fn changed_raw_input_reruns_ingest_and_a_bad_one_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw/s1");
    std::fs::create_dir_all(&raw).unwrap();
    for f in ["cell_by_gene.csv", "cell_metadata.csv"] {
        std::fs::copy(crate::common::test_data(&format!("merscope/{f}")), raw.join(f)).unwrap();
    }
    std::fs::write(tmp.path().join("samples.csv"), "sample,path,format,condition\ns1,raw/s1,merscope,pre\n").unwrap();
    let config = tmp.path().join("pipeline.toml");
    std::fs::write(&config, "samples = \"samples.csv\"\noutput = \"out\"\nthreads = 1\nstages = [\"ingest\"]\n")
        .unwrap();
    let c = config.to_str().unwrap();
    let (code, _, stderr) = run(&["run", "--config", c]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... done"), "{stderr}");
    let (_, _, stderr) = run(&["run", "--config", c]);
    assert!(stderr.contains("[1/9] ingest s1 ... up to date"), "{stderr}");

    // A changed raw file (one coordinate edited): ingest reruns.
    let meta = raw.join("cell_metadata.csv");
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.contains("37.82719630835313"));
    std::fs::write(&meta, text.replacen("37.82719630835313", "37.9", 1)).unwrap();
    let (_, _, stderr) = run(&["run", "--config", c, "--dry-run"]);
    assert!(stderr.contains(&format!("ingest s1 ... would run (input {} changed)", meta.display())), "{stderr}");
    let (code, _, stderr) = run(&["run", "--config", c]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("[1/9] ingest s1 ... done"), "{stderr}");

    // A file added to the raw folder: ingest reruns too.
    let added = raw.join("detected_transcripts_README.txt");
    std::fs::write(&added, "notes\n").unwrap();
    let (_, _, stderr) = run(&["run", "--config", c, "--dry-run"]);
    assert!(stderr.contains(&format!("ingest s1 ... would run (input {} added)", added.display())), "{stderr}");
    std::fs::remove_file(&added).unwrap();

    // A bad raw file: the stage's own error (exit 2, naming the file), and no dataset folder left behind,
    // so the next run (and Snakemake, which also deletes a failed job's output) does not skip it.
    std::fs::write(raw.join("cell_by_gene.csv"), "cell,A\nx1,not-a-number\n").unwrap();
    fails_with(["run", "--config", c], &["stage `ingest s1` failed (exit code 2)", "cell_by_gene.csv"]);
    assert!(!tmp.path().join("out/s1/dataset").exists(), "a failed ingest must leave no dataset folder");
    let (_, _, stderr) = run(&["run", "--config", c, "--dry-run"]);
    assert!(stderr.contains("ingest s1 ... would run (no output yet)"), "{stderr}");
}
