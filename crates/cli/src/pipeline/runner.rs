//! Running a plan: each step is the current `tmescope` executable spawned as a child process with the
//! step's command line (so a failing stage gives its own error and exit code, and the Snakemake rules run
//! the very same commands), steps in plan order, one progress line per step and a summary.
//!
//! A step is skipped when its subcommand is not implemented in this build (a stub), when a step it needs
//! did not produce its output, or when its output is up to date ([`super::fresh`]). The first failing
//! step stops the run; its output folder is removed if an older one was there, so neither `run` nor
//! Snakemake can take it for finished.

use super::fresh::{self, Freshness};
use super::plan::{Action, Plan, Stage, Step};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tmescope_core::Error;

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Rerun every step even when up to date.
    pub force: bool,
    /// Only print what would run.
    pub dry_run: bool,
    /// Restrict per-sample steps to these samples (cohort steps are then left out).
    pub samples: Vec<String>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Print each command line.
    pub verbose: bool,
}

/// What happened to a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Ran successfully in this many seconds.
    Done(f64),
    /// Output already up to date.
    UpToDate,
    /// Dry run: would run (and why).
    WouldRun(String),
    /// Not run, and why.
    Skipped(String),
    /// Left out by `--samples`.
    Excluded,
    /// Failed.
    Failed,
}

impl Outcome {
    fn produced(&self) -> bool {
        matches!(self, Outcome::Done(_) | Outcome::UpToDate | Outcome::WouldRun(_))
    }
}

/// Why a child stage failed: its exit code and the error lines it printed.
fn stage_error(step: &Step, code: Option<i32>, stderr: &str, log: &Path) -> anyhow::Error {
    // The error is at the end of stderr; the step timings (-v) before it are left to the log.
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !l.contains(" INFO ")).collect();
    let tail = lines[lines.len().saturating_sub(12)..].join("\n  ");
    let message = format!(
        "stage `{}` failed (exit code {}): \n  {}\n  (full log: {})",
        step.label(),
        code.map_or("killed by a signal".to_string(), |c| c.to_string()),
        tail,
        log.display()
    );
    if code == Some(2) {
        Error::Usage(message).into()
    } else {
        Error::Internal(message).into()
    }
}

/// Runs `plan` with the executable `program`; returns the outcome of every step (in plan order).
pub fn run(plan: &Plan, program: &Path, opts: &RunOptions) -> anyhow::Result<Vec<Outcome>> {
    for s in &opts.samples {
        if !plan.samples.contains(s) {
            return Err(Error::Usage(format!(
                "--samples: `{s}` is not in the sample sheet (samples: {})",
                plan.samples.join(", ")
            ))
            .into());
        }
    }
    let started = Instant::now();
    let mut available: HashMap<Stage, bool> = HashMap::new();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(plan.steps.len());
    let total = Stage::ALL.len();
    let mut err = std::io::stderr();
    let say = |text: &str| {
        if !opts.quiet {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    };
    for note in &plan.notes {
        say(&format!("note: {note}"));
    }
    for step in plan.steps.iter() {
        let prefix = format!("[{}/{total}] {}", step.stage.number(), step.label());
        let excluded = !opts.samples.is_empty() && step.sample.as_ref().is_none_or(|s| !opts.samples.contains(s));
        if excluded {
            outcomes.push(Outcome::Excluded);
            continue;
        }
        if let Some(&j) = step.needs.iter().find(|&&j| !outcomes[j].produced()) {
            let why = format!("needs {}", plan.steps[j].label());
            say(&format!("{prefix} ... skipped ({why})"));
            outcomes.push(Outcome::Skipped(why));
            continue;
        }
        if let Action::Command(_) = step.action {
            let ok = *available.entry(step.stage).or_insert_with(|| super::plan::stage_available(program, step.stage));
            if !ok {
                let why = format!("`tmescope {}` is not implemented in this build", step.stage.name());
                say(&format!("{prefix} ... skipped ({why})"));
                outcomes.push(Outcome::Skipped(why));
                continue;
            }
        }
        let upstream_pending = step.needs.iter().any(|&j| matches!(outcomes[j], Outcome::WouldRun(_)));
        let freshness = if opts.force {
            Freshness::Stale("--force".into())
        } else if upstream_pending {
            Freshness::Stale(format!("after {}", plan.steps[step.needs[0]].label()))
        } else {
            fresh::check(&plan.output, step)
        };
        let why = match freshness {
            Freshness::UpToDate => {
                say(&format!("{prefix} ... up to date"));
                outcomes.push(Outcome::UpToDate);
                continue;
            }
            Freshness::Stale(why) => why,
        };
        if opts.dry_run {
            say(&format!("{prefix} ... would run ({why}): {}", step.shell_line("tmescope")));
            outcomes.push(Outcome::WouldRun(why));
            continue;
        }
        if opts.verbose {
            say(&format!("{prefix}: {}", step.shell_line(&program.display().to_string())));
        }
        if !opts.quiet {
            let _ = write!(err, "{prefix} ... ");
            let _ = err.flush();
        }
        let t0 = Instant::now();
        let log = plan.output.join("logs").join(format!("{}.log", fresh::log_stem(step)));
        let result = execute(plan, program, step, &log);
        match result {
            Ok(()) => {
                let secs = t0.elapsed().as_secs_f64();
                if !fresh::has_provenance(step) {
                    fresh::write_stamp(&plan.output, step)?;
                }
                if !opts.quiet {
                    let _ = writeln!(err, "done {secs:.1} s");
                }
                outcomes.push(Outcome::Done(secs));
            }
            Err(e) => {
                if !opts.quiet {
                    let _ = writeln!(err, "failed");
                }
                // An older output of this step must not pass for the result of this run.
                if step.output.is_dir() {
                    let _ = std::fs::remove_dir_all(&step.output);
                }
                let _ = std::fs::remove_file(fresh::stamp_path(&plan.output, step));
                outcomes.push(Outcome::Failed);
                summary(plan, &outcomes, started, opts);
                return Err(e);
            }
        }
    }
    summary(plan, &outcomes, started, opts);
    Ok(outcomes)
}

/// Runs one step, writing the child's output to `log`.
fn execute(plan: &Plan, program: &Path, step: &Step, log: &Path) -> anyhow::Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    match &step.action {
        Action::Copy(from) => {
            fresh::copy_dataset(from, &step.output)?;
            let line = format!("copied {} to {}\n", from.display(), step.output.display());
            std::fs::write(log, line).map_err(|e| Error::io(log, e))?;
            Ok(())
        }
        Action::Command(argv) => {
            let mut cmd = std::process::Command::new(program);
            // -v: the log also says how long each step of the stage took.
            cmd.arg("-v").args(argv);
            if plan.threads > 0 {
                cmd.args(["--threads", &plan.threads.to_string()]);
            }
            let out = cmd.output().map_err(|e| Error::Internal(format!("cannot start {}: {e}", program.display())))?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut text = format!("$ {}\n", step.shell_line(&program.display().to_string()));
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            text.push_str(&stderr);
            std::fs::write(log, text).map_err(|e| Error::io(log, e))?;
            if out.status.success() {
                if !step.output.is_dir() {
                    return Err(Error::Internal(format!(
                        "stage `{}` succeeded but wrote no folder {}",
                        step.label(),
                        step.output.display()
                    ))
                    .into());
                }
                Ok(())
            } else {
                Err(stage_error(step, out.status.code(), &stderr, log))
            }
        }
    }
}

fn summary(plan: &Plan, outcomes: &[Outcome], started: Instant, opts: &RunOptions) {
    if opts.quiet {
        return;
    }
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let done = count(&|o| matches!(o, Outcome::Done(_)));
    let fresh = count(&|o| matches!(o, Outcome::UpToDate));
    let would = count(&|o| matches!(o, Outcome::WouldRun(_)));
    let skipped = count(&|o| matches!(o, Outcome::Skipped(_)));
    let failed = count(&|o| matches!(o, Outcome::Failed));
    let mut line = if opts.dry_run {
        format!("dry run: {would} step(s) would run, {fresh} up to date")
    } else {
        format!("{done} step(s) ran, {fresh} up to date")
    };
    if skipped > 0 {
        let mut why: Vec<String> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Skipped(w) if w.contains("not implemented") => Some(w.clone()),
                _ => None,
            })
            .collect();
        why.dedup();
        line.push_str(&format!(", {skipped} skipped"));
        if !why.is_empty() {
            line.push_str(&format!(" ({})", why.join("; ")));
        }
    }
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    line.push_str(&format!(" in {:.1} s; outputs in {}", started.elapsed().as_secs_f64(), plan.output.display()));
    println!("{line}");
    let report = plan.steps.iter().zip(outcomes).find(|(s, o)| s.stage == Stage::Report && o.produced());
    if let Some((step, _)) = report {
        println!("report: {}", step.output.join("index.html").display());
    }
}

/// The executable to spawn for stages: this very binary.
pub fn current_program() -> anyhow::Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Internal(format!("cannot find the tmescope executable: {e}")).into())
}
