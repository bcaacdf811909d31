//! The stage plan: from a config and a sample sheet to the exact command line of every stage and sample.
//!
//! This is the one place where parameters become command-line arguments: `tmescope run` spawns these
//! argument lists, `tmescope config --print-commands` prints them, and the Snakemake workflow reads them
//! (as JSON) so that both run exactly the same commands and write the same files. Building the plan is
//! O(samples x stages) and touches the disk only to tell a dataset folder from vendor output.

use super::config::LoadedConfig;
use super::sheet::{self, SampleRow};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A pipeline stage; its name is the `tmescope` subcommand (and the Snakemake rule) that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Vendor output -> dataset folder.
    Ingest,
    /// Proportions per spot / labels per cell.
    Deconvolve,
    /// Neighbour graph.
    Graph,
    /// Spatial statistics.
    Stats,
    /// Gene-program scores.
    Score,
    /// Niches, states, resistance niches.
    Niches,
    /// Ligand-receptor communication.
    Communicate,
    /// Cross-sample comparison (cohort).
    Compare,
    /// HTML report (cohort).
    Report,
}

impl Stage {
    /// Every stage in pipeline order.
    pub const ALL: [Stage; 9] = [
        Stage::Ingest,
        Stage::Deconvolve,
        Stage::Graph,
        Stage::Stats,
        Stage::Score,
        Stage::Niches,
        Stage::Communicate,
        Stage::Compare,
        Stage::Report,
    ];

    /// The subcommand name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Deconvolve => "deconvolve",
            Stage::Graph => "graph",
            Stage::Stats => "stats",
            Stage::Score => "score",
            Stage::Niches => "niches",
            Stage::Communicate => "communicate",
            Stage::Compare => "compare",
            Stage::Report => "report",
        }
    }

    /// The output folder's name: under `<output>/<sample>/` for per-sample stages, under
    /// `<output>/cohort/` for cohort stages (the report's run-folder convention, docs/report.md).
    pub fn folder(self) -> &'static str {
        match self {
            Stage::Ingest => "dataset",
            Stage::Deconvolve => "deconvolution",
            Stage::Graph => "graph",
            Stage::Stats => "stats",
            Stage::Score => "scores",
            Stage::Niches => "niches",
            Stage::Communicate => "communication",
            Stage::Compare => "compare",
            Stage::Report => "report",
        }
    }

    /// Whether the stage runs once for the cohort rather than once per sample.
    pub fn is_cohort(self) -> bool {
        matches!(self, Stage::Compare | Stage::Report)
    }

    /// 1-based position in the pipeline (for `[3/9]` progress lines).
    pub fn number(self) -> usize {
        Stage::ALL.iter().position(|s| *s == self).map_or(0, |i| i + 1)
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Run `tmescope <argv...>` (argv starts with the subcommand; `--threads` is added by the runner).
    Command(Vec<String>),
    /// Copy an already-ingested dataset folder as is (`format = dataset`).
    Copy(PathBuf),
}

/// One stage for one sample (or for the cohort).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The stage.
    pub stage: Stage,
    /// The sample, or `None` for cohort stages.
    pub sample: Option<String>,
    /// What to run.
    pub action: Action,
    /// Files and folders the step reads (outputs of earlier steps or user files).
    pub inputs: Vec<PathBuf>,
    /// The folder the step writes.
    pub output: PathBuf,
    /// Indices (in the plan) of the steps whose outputs this step reads.
    pub needs: Vec<usize>,
}

impl Step {
    /// `graph s1`, or `report` for cohort stages.
    pub fn label(&self) -> String {
        match &self.sample {
            Some(s) => format!("{} {s}", self.stage.name()),
            None => self.stage.name().to_string(),
        }
    }

    /// The command line as a shell would show it (`tmescope graph ...`), quoting where needed.
    pub fn shell_line(&self, program: &str) -> String {
        let words: Vec<String> = match &self.action {
            Action::Command(argv) => std::iter::once(program.to_string()).chain(argv.iter().cloned()).collect(),
            Action::Copy(from) => {
                vec!["cp".into(), "-r".into(), from.display().to_string(), self.output.display().to_string()]
            }
        };
        words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
    }
}

/// Quotes a word for a POSIX shell when it holds anything but safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r#"'\''"#))
    }
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The output folder.
    pub output: PathBuf,
    /// The samples, in sheet order.
    pub samples: Vec<String>,
    /// Steps in execution order (stage-major: every sample's ingest, then every sample's deconvolve, ...).
    pub steps: Vec<Step>,
    /// Why stages are left out (no reference, one sample, not in `stages`).
    pub notes: Vec<String>,
    /// Threads per stage (0 = every core).
    pub threads: usize,
}

fn push_opt<T: ToString>(argv: &mut Vec<String>, flag: &str, value: &Option<T>) {
    if let Some(v) = value {
        argv.push(flag.to_string());
        argv.push(v.to_string());
    }
}

/// Where a stage's cell types come from: a configured label column, else the sample's deconvolution
/// (which then becomes an input of the step), else the stage's own default.
fn push_cell_types(
    argv: &mut Vec<String>,
    inputs: &mut Vec<PathBuf>,
    labels: &Option<String>,
    deconv: &Option<PathBuf>,
) {
    match (labels, deconv) {
        (Some(l), _) => argv.extend(["--labels".into(), l.clone()]),
        (None, Some(d)) => {
            argv.extend(["--proportions".into(), path_str(d)]);
            inputs.push(d.clone());
        }
        (None, None) => {}
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Builds the plan for `loaded` (reading its sample sheet).
pub fn build(loaded: &LoadedConfig) -> tmescope_core::Result<Plan> {
    let c = &loaded.config;
    let sheet_path = loaded.resolve(&c.samples);
    let default_format = c.ingest.format.clone().unwrap_or_else(|| "auto".into());
    let rows = sheet::read(&sheet_path, &default_format)?;
    Ok(build_from_rows(loaded, &rows))
}

/// Builds the plan from sample rows already read.
pub fn build_from_rows(loaded: &LoadedConfig, rows: &[SampleRow]) -> Plan {
    let c = &loaded.config;
    let out = loaded.resolve(&c.output);
    let wanted = |s: Stage| c.stages.iter().any(|n| n == s.name());
    let mut notes = Vec::new();
    for s in Stage::ALL {
        if !wanted(s) {
            notes.push(format!("{}: not in `stages`", s.name()));
        }
    }
    let reference = (!c.deconvolve.reference.trim().is_empty()).then(|| loaded.resolve(&c.deconvolve.reference));
    let run_deconvolve = wanted(Stage::Deconvolve) && reference.is_some();
    if wanted(Stage::Deconvolve) && reference.is_none() {
        notes.push("deconvolve: skipped, no `deconvolve.reference` in the config".into());
    }
    let dir = |sample: &str, stage: Stage| out.join(sample).join(stage.folder());
    let cohort = |stage: Stage| out.join("cohort").join(stage.folder());
    let mut steps: Vec<Step> = Vec::new();
    fn add(
        steps: &mut Vec<Step>,
        stage: Stage,
        sample: Option<&str>,
        action: Action,
        inputs: Vec<PathBuf>,
        output: PathBuf,
    ) {
        steps.push(Step { stage, sample: sample.map(str::to_string), action, inputs, output, needs: vec![] });
    }

    for stage in Stage::ALL.into_iter().filter(|s| !s.is_cohort()) {
        if !wanted(stage) || (stage == Stage::Deconvolve && !run_deconvolve) {
            continue;
        }
        for row in rows {
            let s = row.sample.as_str();
            let dataset = dir(s, Stage::Ingest);
            let output = dir(s, stage);
            let o = path_str(&output);
            let deconv = run_deconvolve.then(|| dir(s, Stage::Deconvolve));
            let mut argv = vec![stage.name().to_string()];
            let mut inputs = vec![];
            match stage {
                Stage::Ingest => {
                    if sheet::is_dataset(row) {
                        add(&mut steps, stage, Some(s), Action::Copy(row.path.clone()), vec![row.path.clone()], output);
                        continue;
                    }
                    if row.format != "auto" {
                        argv.extend(["--format".into(), row.format.clone()]);
                    }
                    argv.extend([path_str(&row.path), "-o".into(), o, "--sample".into(), s.into()]);
                    for (k, v) in &row.metadata {
                        argv.extend(["--meta".into(), format!("{k}={v}")]);
                    }
                    argv.extend(c.ingest.extra_args.iter().cloned());
                    inputs.push(row.path.clone());
                }
                Stage::Deconvolve => {
                    let reference = reference.clone().unwrap_or_default();
                    argv.extend([
                        "--spatial".into(),
                        path_str(&dataset),
                        "--reference".into(),
                        path_str(&reference),
                        "-o".into(),
                        o,
                    ]);
                    let d = &c.deconvolve;
                    push_opt(&mut argv, "--method", &d.method);
                    push_opt(&mut argv, "--mode", &d.mode);
                    push_opt(&mut argv, "--sigma", &d.sigma);
                    push_opt(&mut argv, "--seed", &d.seed);
                    argv.extend(d.extra_args.iter().cloned());
                    inputs.extend([dataset, reference]);
                }
                Stage::Graph => {
                    argv.extend([path_str(&dataset), "-o".into(), o]);
                    let g = &c.graph;
                    push_opt(&mut argv, "--kind", &g.kind);
                    push_opt(&mut argv, "--k", &g.k);
                    push_opt(&mut argv, "--radius", &g.radius);
                    argv.extend(g.extra_args.iter().cloned());
                    inputs.push(dataset);
                }
                Stage::Stats => {
                    let graph = dir(s, Stage::Graph);
                    argv.extend([path_str(&dataset), "--graph".into(), path_str(&graph)]);
                    let st = &c.stats;
                    push_cell_types(&mut argv, &mut inputs, &st.labels, &deconv);
                    argv.extend(["-o".into(), o]);
                    push_opt(&mut argv, "--perms", &st.perms);
                    push_opt(&mut argv, "--max-radius", &st.max_radius);
                    push_opt(&mut argv, "--top-variable", &st.top_variable);
                    push_opt(&mut argv, "--seed", &st.seed);
                    argv.extend(st.extra_args.iter().cloned());
                    inputs.extend([dataset, graph]);
                }
                Stage::Score => {
                    let graph = dir(s, Stage::Graph);
                    argv.extend([path_str(&dataset), "--graph".into(), path_str(&graph), "-o".into(), o]);
                    let sc = &c.score;
                    let programs = sc.programs.as_ref().map(|p| path_str(&loaded.resolve(p)));
                    push_opt(&mut argv, "--programs", &programs);
                    push_opt(&mut argv, "--method", &sc.method);
                    push_opt(&mut argv, "--seed", &sc.seed);
                    argv.extend(sc.extra_args.iter().cloned());
                    inputs.extend([dataset, graph]);
                    inputs.extend(programs.map(PathBuf::from));
                }
                Stage::Niches => {
                    let graph = dir(s, Stage::Graph);
                    let scores = dir(s, Stage::Score);
                    argv.extend([path_str(&dataset), "--graph".into(), path_str(&graph)]);
                    inputs.extend([dataset.clone(), graph]);
                    if wanted(Stage::Score) {
                        argv.extend(["--scores".into(), path_str(&scores)]);
                        inputs.push(scores);
                    }
                    if let Some(d) = &deconv {
                        argv.extend(["--proportions".into(), path_str(d)]);
                        inputs.push(d.clone());
                    }
                    argv.extend(["-o".into(), o]);
                    let n = &c.niches;
                    push_opt(&mut argv, "--niches", &n.niches);
                    push_opt(&mut argv, "--seed", &n.seed);
                    argv.extend(n.extra_args.iter().cloned());
                }
                Stage::Communicate => {
                    let graph = dir(s, Stage::Graph);
                    let niches = dir(s, Stage::Niches);
                    argv.extend([path_str(&dataset), "--graph".into(), path_str(&graph)]);
                    inputs.extend([dataset.clone(), graph]);
                    if wanted(Stage::Niches) {
                        argv.extend(["--niches".into(), path_str(&niches)]);
                        inputs.push(niches);
                    }
                    let cm = &c.communicate;
                    // Spots carry deconvolved proportions, not labels (as for stats and niches).
                    push_cell_types(&mut argv, &mut inputs, &cm.labels, &deconv);
                    argv.extend(["-o".into(), o]);
                    let pairs = cm.pairs.as_ref().map(|p| path_str(&loaded.resolve(p)));
                    push_opt(&mut argv, "--pairs", &pairs);
                    push_opt(&mut argv, "--perms", &cm.perms);
                    push_opt(&mut argv, "--seed", &cm.seed);
                    argv.extend(cm.extra_args.iter().cloned());
                    inputs.extend(pairs.map(PathBuf::from));
                }
                Stage::Compare | Stage::Report => unreachable!("cohort stages are planned below"),
            }
            add(&mut steps, stage, Some(s), Action::Command(argv), inputs, output);
        }
    }

    let sample_dirs: Vec<PathBuf> = rows.iter().map(|r| out.join(&r.sample)).collect();
    let per_sample_outputs = |steps: &[Step]| -> Vec<PathBuf> {
        steps.iter().filter(|st| !st.stage.is_cohort()).map(|st| st.output.clone()).collect()
    };
    let mut compare_planned = false;
    if wanted(Stage::Compare) {
        if rows.len() < 2 {
            notes.push("compare: skipped, the cohort has fewer than 2 samples".into());
        } else if !wanted(Stage::Niches) {
            notes.push("compare: skipped, it needs `niches`".into());
        } else {
            // compare reads the niches folders (niches.parquet carries the sample's metadata columns).
            let inputs: Vec<PathBuf> = rows.iter().map(|r| dir(&r.sample, Stage::Niches)).collect();
            let mut argv = vec![Stage::Compare.name().to_string()];
            argv.extend(inputs.iter().map(|d| path_str(d)));
            argv.extend(["--by".into(), c.compare.by.clone()]);
            let cp = &c.compare;
            push_opt(&mut argv, "--pair-by", &cp.pair_by);
            push_opt(&mut argv, "--reference", &cp.reference);
            push_opt(&mut argv, "--test", &cp.test);
            argv.extend(["-o".into(), path_str(&cohort(Stage::Compare))]);
            argv.extend(cp.extra_args.iter().cloned());
            add(&mut steps, Stage::Compare, None, Action::Command(argv), inputs, cohort(Stage::Compare));
            compare_planned = true;
        }
    }
    if wanted(Stage::Report) {
        let mut argv = vec![Stage::Report.name().to_string()];
        argv.extend(sample_dirs.iter().map(|d| path_str(d)));
        let mut inputs = per_sample_outputs(&steps);
        if compare_planned {
            argv.push(path_str(&cohort(Stage::Compare)));
            inputs.push(cohort(Stage::Compare));
        }
        argv.extend(["-o".into(), path_str(&cohort(Stage::Report))]);
        argv.extend(c.report.extra_args.iter().cloned());
        add(&mut steps, Stage::Report, None, Action::Command(argv), inputs, cohort(Stage::Report));
    }

    // Dependencies: a step needs the earlier steps whose output it reads.
    for i in 0..steps.len() {
        let needs: Vec<usize> = (0..i).filter(|&j| steps[i].inputs.contains(&steps[j].output)).collect();
        steps[i].needs = needs;
    }
    Plan { output: out, samples: rows.iter().map(|r| r.sample.clone()).collect(), steps, notes, threads: c.threads }
}

/// Whether a stage's subcommand is implemented in this build, asked of `program <stage> --help`: a stub
/// subcommand has no options of its own (only the global `--threads`, `-q`, `-v`, `-h`, `-V`).
pub fn stage_available(program: &Path, stage: Stage) -> bool {
    let Ok(out) = std::process::Command::new(program).args([stage.name(), "--help"]).output() else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let help = String::from_utf8_lossy(&out.stdout);
    let global = ["--threads", "--quiet", "--verbose", "--help", "--version"];
    help.split_whitespace()
        .filter_map(|w| w.strip_prefix("--").map(|_| w.trim_end_matches([',', '.', ')', ']', '='])))
        .filter(|w| w.len() > 2 && w.chars().nth(2).is_some_and(|c| c.is_ascii_alphabetic()))
        .any(|w| !global.contains(&w.split('=').next().unwrap_or(w)) && !w.contains('<'))
}

#[cfg(test)]
mod tests {
    use super::super::config::{LoadedConfig, PipelineConfig};
    use super::*;

    /// The rows of `cfg/samples.csv` holding `s1,raw/s1,xenium,pre` and `s2,ds/s2,dataset,post`.
    fn rows() -> Vec<SampleRow> {
        let row = |sample: &str, path: &str, format: &str, condition: &str| SampleRow {
            sample: sample.into(),
            path: Path::new("cfg").join(path),
            format: format.into(),
            metadata: vec![("condition".into(), condition.into())],
        };
        vec![row("s1", "raw/s1", "xenium", "pre"), row("s2", "ds/s2", "dataset", "post")]
    }

    fn loaded(config: PipelineConfig) -> LoadedConfig {
        LoadedConfig { config, source: "cfg/p.toml".into(), base: "cfg".into() }
    }

    #[test]
    fn plan_covers_every_stage_in_order_with_dependencies() {
        let mut c = PipelineConfig::default();
        c.deconvolve.reference = "ref".into();
        c.graph.k = Some(8);
        let plan = build_from_rows(&loaded(c), &rows());
        let labels: Vec<String> = plan.steps.iter().map(Step::label).collect();
        assert_eq!(labels[..4], ["ingest s1", "ingest s2", "deconvolve s1", "deconvolve s2"]);
        assert_eq!(labels[labels.len() - 2..], ["compare", "report"]);
        assert_eq!(plan.steps[1].action, Action::Copy(PathBuf::from("cfg/ds/s2")));
        let graph = plan.steps.iter().find(|s| s.label() == "graph s1").unwrap();
        assert_eq!(graph.shell_line("tmescope"), "tmescope graph cfg/results/s1/dataset -o cfg/results/s1/graph --k 8");
        assert_eq!(graph.needs, vec![0]);
        let ingest = &plan.steps[0];
        assert!(ingest.shell_line("tmescope").contains("--format xenium cfg/raw/s1 -o cfg/results/s1/dataset"));
        assert!(ingest.shell_line("tmescope").ends_with("--meta condition=pre"));
        let report = plan.steps.last().unwrap();
        assert!(report.needs.len() > 10);
        // Spots: communicate reads the deconvolved proportions (and depends on deconvolve).
        let comm = plan.steps.iter().find(|s| s.label() == "communicate s1").unwrap();
        assert!(comm.shell_line("tmescope").contains("--proportions cfg/results/s1/deconvolution -o"));
        assert!(comm.needs.contains(&2), "{:?}", comm.needs);
    }

    #[test]
    fn communicate_labels_replace_the_proportions() {
        let mut c = PipelineConfig::default();
        c.deconvolve.reference = "ref".into();
        c.communicate.labels = Some("cell_type".into());
        let plan = build_from_rows(&loaded(c), &rows());
        let comm = plan.steps.iter().find(|s| s.label() == "communicate s1").unwrap();
        let line = comm.shell_line("tmescope");
        assert!(line.contains("--labels cell_type") && !line.contains("--proportions"), "{line}");
    }

    #[test]
    fn no_reference_skips_deconvolution_and_one_sample_skips_compare() {
        let plan = build_from_rows(&loaded(PipelineConfig::default()), &rows()[..1]);
        assert!(plan.steps.iter().all(|s| s.stage != Stage::Deconvolve && s.stage != Stage::Compare));
        assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r#"'it'\''s'"#);
        assert_eq!(shell_quote("x/y.parquet"), "x/y.parquet");
    }
}
