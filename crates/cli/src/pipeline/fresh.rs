//! The up-to-date check: is a step's output what running it now would produce?
//!
//! A step is up to date when its output folder exists (stages write it atomically, so an existing folder
//! is complete) and, from the provenance stored in its Parquet files (`tmescope.provenance`):
//! - the tool version is this one,
//! - the command line, without the program name and the options that never change results (`--threads`,
//!   `-q`, `-v`), equals the one the plan would run now (so every parameter is the same),
//! - every input file it records still has the same size and SHA-256,
//! - for `ingest`, no file was added below a raw input folder (a vendor folder or a dataset folder from
//!   the sample sheet): ingest records every file below it, so a new file is a changed input.
//!
//! Content hashes rather than modification times mean that an upstream stage rerun that produces the same
//! bytes does not force its downstream stages to rerun. Cost: one read of every input (SHA-256, about
//! 0.5-1 GB/s) and of the smallest Parquet file of the output.
//!
//! Outputs without Parquet provenance (the HTML report, a copied dataset folder) use a **stamp** instead:
//! `<output>/logs/<step>.stamp.json`, written by `tmescope run` after the step succeeded, holding the tool
//! version, the normalised command line (or the copied folder), the inputs' sizes and hashes and the
//! output's files with sizes and modification times (so an output rewritten by another tool, e.g.
//! Snakemake, is not mistaken for this run's).

use super::plan::{Action, Stage, Step};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tmescope_core::parquet_io::Table;
use tmescope_core::provenance::InputFile;
use tmescope_core::{Error, Result};

/// The verdict of the check.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    /// Nothing to do.
    UpToDate,
    /// The step must run, and why.
    Stale(String),
}

/// The command line without what never changes results: the program name is left out by the caller;
/// `--threads N`, `--threads=N`, `-q`, `--quiet`, `-v...`, `--verbose` are removed.
pub fn normalise(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut skip_next = false;
    for a in argv {
        if skip_next {
            skip_next = false;
            continue;
        }
        match a.as_str() {
            "--threads" => skip_next = true,
            "-q" | "--quiet" | "--verbose" => {}
            s if s.starts_with("--threads=") => {}
            s if s.len() >= 2 && s.starts_with('-') && s[1..].chars().all(|c| c == 'v') => {}
            _ => out.push(a.clone()),
        }
    }
    out
}

/// What `tmescope run` records after a step whose output carries no provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// Version of tmescope that ran the step.
    pub tool_version: String,
    /// The normalised command line, or `["copy", FROM]`.
    pub command: Vec<String>,
    /// Every input file with size and hash.
    pub inputs: Vec<InputFile>,
    /// Every output file (relative path, size, modification time in ns since the epoch).
    pub outputs: Vec<(String, u64, u128)>,
}

/// Where the stamp of `step` lives: `<plan output>/logs/<stage>[-<sample>].stamp.json`.
pub fn stamp_path(plan_output: &Path, step: &Step) -> PathBuf {
    plan_output.join("logs").join(format!("{}.stamp.json", log_stem(step)))
}

/// `graph-s1`, or `report` for cohort steps: the base name of a step's log and stamp.
pub fn log_stem(step: &Step) -> String {
    match &step.sample {
        Some(s) => format!("{}-{s}", step.stage.name()),
        None => step.stage.name().to_string(),
    }
}

fn step_command(step: &Step) -> Vec<String> {
    match &step.action {
        Action::Command(argv) => normalise(argv),
        Action::Copy(from) => vec!["copy".into(), from.display().to_string()],
    }
}

/// Every regular file below `dir`, sorted, relative paths with `/`.
fn files_below(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let p = e.map_err(|e| Error::io(&d, e))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn output_listing(dir: &Path) -> Result<Vec<(String, u64, u128)>> {
    files_below(dir)?
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?;
            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            Ok((rel, m.len(), mtime.map_or(0, |d| d.as_nanos())))
        })
        .collect()
}

/// The smallest Parquet file directly in `dir`, if any (all files of one stage carry the same
/// provenance; the smallest is the cheapest to open).
fn smallest_parquet(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet") && p.is_file())
        .min_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX))
}

/// Whether the recorded inputs still have the recorded size and hash; the first that differs, if any.
fn changed_input(inputs: &[InputFile]) -> Option<String> {
    for i in inputs {
        let p = Path::new(&i.path);
        let now = match std::fs::metadata(p) {
            Ok(m) if m.len() == i.size => InputFile::describe(p).ok(),
            _ => None,
        };
        match now {
            Some(n) if n.sha256 == i.sha256 => {}
            _ => return Some(format!("input {} changed", i.path)),
        }
    }
    None
}

/// For `ingest`, the first file below a raw input folder that the recorded inputs do not list (a file
/// added since the step ran); other stages may record only the files they read, so they are not checked.
fn added_input(step: &Step, recorded: &[InputFile]) -> Option<String> {
    if step.stage != Stage::Ingest {
        return None;
    }
    for dir in step.inputs.iter().filter(|p| p.is_dir()) {
        let Ok(files) = files_below(dir) else {
            return Some(format!("input {} unreadable", dir.display()));
        };
        if let Some(f) = files.iter().find(|f| !recorded.iter().any(|r| Path::new(&r.path) == f.as_path())) {
            return Some(format!("input {} added", f.display()));
        }
    }
    None
}

/// Checks `step` (see the module docs).
pub fn check(plan_output: &Path, step: &Step) -> Freshness {
    if !step.output.is_dir() {
        return Freshness::Stale("no output yet".into());
    }
    let want = step_command(step);
    if matches!(step.action, Action::Command(_)) {
        if let Some(prov) = smallest_parquet(&step.output).and_then(|p| Table::read(&p).ok()?.provenance()) {
            if prov.tool_version != tmescope_core::TOOL_VERSION {
                return Freshness::Stale(format!("made by tmescope {}", prov.tool_version));
            }
            let had = normalise(prov.command_line.get(1..).unwrap_or(&[]));
            if had != want {
                return Freshness::Stale("parameters changed".into());
            }
            return match changed_input(&prov.inputs).or_else(|| added_input(step, &prov.inputs)) {
                Some(why) => Freshness::Stale(why),
                None => Freshness::UpToDate,
            };
        }
    }
    let path = stamp_path(plan_output, step);
    let Some(stamp) = std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str::<Stamp>(&t).ok()) else {
        return Freshness::Stale("no provenance or stamp".into());
    };
    if stamp.tool_version != tmescope_core::TOOL_VERSION {
        return Freshness::Stale(format!("made by tmescope {}", stamp.tool_version));
    }
    if stamp.command != want {
        return Freshness::Stale("parameters changed".into());
    }
    if output_listing(&step.output).ok().as_ref() != Some(&stamp.outputs) {
        return Freshness::Stale("output changed since it was made".into());
    }
    match changed_input(&stamp.inputs).or_else(|| added_input(step, &stamp.inputs)) {
        Some(why) => Freshness::Stale(why),
        None => Freshness::UpToDate,
    }
}

/// Whether the output of a finished step carries Parquet provenance (else it needs a stamp).
pub fn has_provenance(step: &Step) -> bool {
    matches!(step.action, Action::Command(_))
        && smallest_parquet(&step.output).and_then(|p| Table::read(&p).ok()?.provenance()).is_some()
}

/// Writes the stamp of a step that just succeeded.
pub fn write_stamp(plan_output: &Path, step: &Step) -> Result<()> {
    let mut inputs = Vec::new();
    for i in &step.inputs {
        if i.exists() {
            inputs.extend(InputFile::describe_all(i)?);
        }
    }
    let stamp = Stamp {
        tool_version: tmescope_core::TOOL_VERSION.into(),
        command: step_command(step),
        inputs,
        outputs: output_listing(&step.output)?,
    };
    let path = stamp_path(plan_output, step);
    let text = serde_json::to_string_pretty(&stamp).map_err(|e| Error::Internal(e.to_string()))?;
    tmescope_core::output::atomic_write(&path, |tmp| std::fs::write(tmp, &text).map_err(|e| Error::io(tmp, e)))
}

/// Copies the dataset folder `from` to `to` atomically (a temporary sibling renamed when complete).
pub fn copy_dataset(from: &Path, to: &Path) -> Result<()> {
    if !from.join("cells.parquet").is_file() {
        return Err(Error::file(
            from,
            "format `dataset` expects a dataset folder holding cells.parquet, genes.parquet and counts.parquet",
        ));
    }
    let out = tmescope_core::output::OutputDir::create(to)?;
    for f in files_below(from)? {
        let rel = f.strip_prefix(from).unwrap_or(&f);
        let dest = out.path(&rel.to_string_lossy());
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::copy(&f, &dest).map_err(|e| Error::io(&f, e))?;
    }
    out.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalise_drops_only_result_neutral_options() {
        assert_eq!(
            normalise(&s(&["graph", "d", "--threads", "4", "-o", "g", "-vv", "--threads=2", "-q", "--k", "6"])),
            s(&["graph", "d", "-o", "g", "--k", "6"])
        );
    }

    #[test]
    fn stamp_detects_changed_input_and_output() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("cells.parquet"), "x").unwrap();
        let out = tmp.path().join("out");
        let step = Step {
            stage: super::super::plan::Stage::Ingest,
            sample: Some("s1".into()),
            action: Action::Copy(src.clone()),
            inputs: vec![src.clone()],
            output: out.join("s1/dataset"),
            needs: vec![],
        };
        assert!(matches!(check(&out, &step), Freshness::Stale(_)));
        copy_dataset(&src, &step.output).unwrap();
        write_stamp(&out, &step).unwrap();
        assert_eq!(check(&out, &step), Freshness::UpToDate);
        std::fs::write(src.join("cells.parquet"), "y").unwrap();
        assert_eq!(
            check(&out, &step),
            Freshness::Stale(format!("input {} changed", src.join("cells.parquet").display()))
        );
        std::fs::write(src.join("cells.parquet"), "x").unwrap();
        assert_eq!(check(&out, &step), Freshness::UpToDate);
        // A file added below the raw input folder is a changed input too.
        std::fs::create_dir(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/more.csv"), "m").unwrap();
        assert_eq!(check(&out, &step), Freshness::Stale(format!("input {} added", src.join("sub/more.csv").display())));
        std::fs::remove_dir_all(src.join("sub")).unwrap();
        assert_eq!(check(&out, &step), Freshness::UpToDate);
        std::fs::write(step.output.join("extra.txt"), "z").unwrap();
        assert!(matches!(check(&out, &step), Freshness::Stale(_)));
    }
}
