//! The pipeline configuration: one TOML (or JSON) file with every stage's parameters.
//!
//! Every stage option is optional: a key left out means "the stage's own default", which the documented
//! file printed by `tmescope config --print-default` shows commented out. What a key holds is passed to
//! the stage's subcommand as the option of the same name (see [`super::plan`]), so the command lines that
//! `tmescope run` spawns and that the Snakemake workflow runs are built in one place.
//!
//! Unknown keys and wrong types are errors naming the file, the key and the line
//! (`#[serde(deny_unknown_fields)]`), because a misspelt parameter silently ignored would give a result
//! the user did not ask for.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tmescope_core::Error;

/// The whole pipeline configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Sample sheet (CSV or TSV) with columns `sample`, `path`, `format` and any metadata
    /// (`condition`, `patient`, `timepoint`, ...). Relative to the config file's folder.
    pub samples: String,
    /// Output folder: `<output>/<sample>/<stage folder>/` and `<output>/cohort/{compare,report}/`.
    /// Relative to the config file's folder.
    pub output: String,
    /// Worker threads given to each stage (`--threads`); 0 = every core. Results do not depend on it.
    pub threads: usize,
    /// Stages to run, in pipeline order; leave a stage out to skip it (and the stages that need it).
    pub stages: Vec<String>,
    /// `ingest`: reading each sample's vendor output into a dataset folder.
    pub ingest: IngestConfig,
    /// `deconvolve`: cell-type proportions per spot (or labels per cell) against a reference.
    pub deconvolve: DeconvolveConfig,
    /// `graph`: the spatial neighbour graph.
    pub graph: GraphConfig,
    /// `stats`: neighbourhood enrichment, co-occurrence, autocorrelation.
    pub stats: StatsConfig,
    /// `score`: gene-program scores per cell/spot.
    pub score: ScoreConfig,
    /// `niches`: niches, states and resistance niches.
    pub niches: NichesConfig,
    /// `communicate`: ligand-receptor communication between neighbouring cell types.
    pub communicate: CommunicateConfig,
    /// `compare`: niche and state abundance between conditions across samples.
    pub compare: CompareConfig,
    /// `report`: the self-contained HTML report of the cohort.
    pub report: ReportConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            samples: "samples.csv".into(),
            output: "results".into(),
            threads: 0,
            stages: super::plan::Stage::ALL.iter().map(|s| s.name().to_string()).collect(),
            ingest: IngestConfig::default(),
            deconvolve: DeconvolveConfig::default(),
            graph: GraphConfig::default(),
            stats: StatsConfig::default(),
            score: ScoreConfig::default(),
            niches: NichesConfig::default(),
            communicate: CommunicateConfig::default(),
            compare: CompareConfig::default(),
            report: ReportConfig::default(),
        }
    }
}

/// Parameters of `tmescope ingest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Format used when the sheet has no `format` column or leaves it empty: `auto` (default), `dataset`
    /// (an already-ingested dataset folder, copied as is), or any `tmescope ingest --format`.
    pub format: Option<String>,
    /// Extra arguments appended to every `tmescope ingest` command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope deconvolve`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeconvolveConfig {
    /// The single-cell reference: a dataset folder with a `cell_type` column (ingest it first with
    /// `tmescope ingest --label-column ...`, or use the `reference/` a simulation writes). Relative to the
    /// config file's folder. Empty: deconvolution is skipped.
    pub reference: String,
    /// `rctd` (default) or `nnls`.
    pub method: Option<String>,
    /// RCTD mode: `full` (default), `doublet` or `multi`.
    pub mode: Option<String>,
    /// Fixed noise parameter sigma (default: chosen from the data).
    pub sigma: Option<f64>,
    /// Random seed.
    pub seed: Option<u64>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope graph`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// `knn` (default), `radius`, `delaunay` or `grid`.
    pub kind: Option<String>,
    /// Neighbours per cell for `knn` (default 6).
    pub k: Option<u32>,
    /// Radius in micrometres for `radius`.
    pub radius: Option<f64>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Cell label column to use instead of the deconvolved proportions (e.g. `cell_type`). Default: the
    /// proportions when deconvolution runs, else the dataset's `cell_type` column.
    pub labels: Option<String>,
    /// Permutations of the neighbourhood enrichment test (default 1000).
    pub perms: Option<u32>,
    /// Maximum co-occurrence radius in micrometres.
    pub max_radius: Option<f64>,
    /// Number of most variable genes for Moran's I / Geary's C.
    pub top_variable: Option<u32>,
    /// Random seed.
    pub seed: Option<u64>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope score`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {
    /// Gene programs file (GMT or two-column TSV) replacing or adding to the shipped programs.
    /// Relative to the config file's folder.
    pub programs: Option<String>,
    /// Scoring method (the stage's default when unset).
    pub method: Option<String>,
    /// Random seed.
    pub seed: Option<u64>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope niches`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NichesConfig {
    /// Number of niches, or `auto` (the stage's default) to choose it by stability across seeds.
    pub niches: Option<String>,
    /// Random seed.
    pub seed: Option<u64>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope communicate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommunicateConfig {
    /// Cell label column instead of the deconvolved proportions (default: the proportions when
    /// deconvolution runs, else the stage's default labels, `cell_type`).
    pub labels: Option<String>,
    /// Ligand-receptor pair table (CellPhoneDB- or OmniPath-style) instead of the shipped TME list.
    /// Relative to the config file's folder.
    pub pairs: Option<String>,
    /// Permutations of the communication test.
    pub perms: Option<u32>,
    /// Random seed.
    pub seed: Option<u64>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// Parameters of `tmescope compare`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareConfig {
    /// Sample-sheet column holding the condition to compare (default `condition`).
    pub by: String,
    /// Column pairing samples (e.g. `patient`) for paired tests (default: unpaired).
    pub pair_by: Option<String>,
    /// The reference condition effects are measured against (default: the stage's choice).
    pub reference: Option<String>,
    /// Test: `t` (the stage's default) or `wilcoxon`.
    pub test: Option<String>,
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig { by: "condition".into(), pair_by: None, reference: None, test: None, extra_args: vec![] }
    }
}

/// Parameters of `tmescope report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Extra arguments appended to the command line.
    pub extra_args: Vec<String>,
}

/// A loaded configuration with the folder its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The parameters.
    pub config: PipelineConfig,
    /// The file it came from (`-` for standard input).
    pub source: PathBuf,
    /// The folder relative paths are resolved against (the config file's folder, or the current folder).
    pub base: PathBuf,
}

impl LoadedConfig {
    /// Resolves a path from the config against its folder, without touching the disk (so command lines
    /// stay as short and stable as the user wrote them).
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() || self.base.as_os_str().is_empty() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }
}

/// Reads a config file: TOML, or JSON when the name ends in `.json` or the text starts with `{`.
/// `-` reads standard input, with paths relative to the current folder.
pub fn load(path: &Path) -> tmescope_core::Result<LoadedConfig> {
    let (text, base) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| Error::io(path, e))?;
        (text, PathBuf::new())
    } else {
        let text = tmescope_core::text::read_text_file(path)?;
        (text, path.parent().map(Path::to_path_buf).unwrap_or_default())
    };
    let config = parse(&text, path)?;
    Ok(LoadedConfig { config, source: path.to_path_buf(), base })
}

/// Parses config text; errors name `source`, the key and the line.
pub fn parse(text: &str, source: &Path) -> tmescope_core::Result<PipelineConfig> {
    let is_json = source.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    let config: PipelineConfig = if is_json {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error_json(de, source)?
    } else {
        toml::from_str(text).map_err(|e| toml_error(source, text, &e))?
    };
    validate(&config, source)?;
    Ok(config)
}

fn serde_path_to_error_json(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
    source: &Path,
) -> tmescope_core::Result<PipelineConfig> {
    PipelineConfig::deserialize(de).map_err(|e| {
        Error::input(source, format!("line {}, column {}", e.line(), e.column()), format!("invalid config: {e}"))
    })
}

fn toml_error(source: &Path, text: &str, e: &toml::de::Error) -> Error {
    let location = match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}")
        }
        None => String::new(),
    };
    // toml's message names the key ("unknown field `kk`, expected one of ...", "invalid type: ... for key
    // `graph.k`"); keep only its first line, the rest repeats the source text.
    let message = e.message().lines().next().unwrap_or("invalid config").to_string();
    let key = e.span().and_then(|s| key_at(text, s.start)).map(|k| format!(" (key `{k}`)")).unwrap_or_default();
    Error::input(source, location, format!("invalid config{key}: {message}"))
}

/// The dotted key (`graph.k`) defined on the line holding byte `pos`, from the last `[section]` above it.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let before = &text[..pos.min(text.len())];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[line_start..].find('\n').map(|i| line_start + i).unwrap_or(text.len());
    let line = text[line_start..line_end].trim();
    let section = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line.split('=').next()?.trim();
    if key.is_empty() || line.starts_with('[') || !line.contains('=') {
        return line.starts_with('[').then(|| line.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    Some(match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    })
}

/// Checks values serde cannot: stage names, enumerations, positive numbers.
pub fn validate(c: &PipelineConfig, source: &Path) -> tmescope_core::Result<()> {
    let bad = |key: &str, msg: String| Error::input(source, format!("key `{key}`"), msg);
    let names: Vec<&str> = super::plan::Stage::ALL.iter().map(|s| s.name()).collect();
    for s in &c.stages {
        if !names.contains(&s.as_str()) {
            return Err(bad("stages", format!("unknown stage `{s}`; expected some of {}", names.join(", "))));
        }
    }
    if c.samples.trim().is_empty() {
        return Err(bad("samples", "the sample sheet path is empty".into()));
    }
    if c.output.trim().is_empty() {
        return Err(bad("output", "the output folder is empty".into()));
    }
    let one_of = |key: &str, value: &Option<String>, allowed: &[&str]| match value {
        Some(v) if !allowed.contains(&v.as_str()) => {
            Err(bad(key, format!("`{v}` is not one of {}", allowed.join(", "))))
        }
        _ => Ok(()),
    };
    one_of("deconvolve.method", &c.deconvolve.method, &["rctd", "nnls"])?;
    one_of("deconvolve.mode", &c.deconvolve.mode, &["full", "doublet", "multi"])?;
    one_of("graph.kind", &c.graph.kind, &["knn", "radius", "delaunay", "grid"])?;
    one_of("score.method", &c.score.method, &["scanpy", "rank"])?;
    one_of("compare.test", &c.compare.test, &["t", "wilcoxon"])?;
    if c.graph.k == Some(0) {
        return Err(bad("graph.k", "must be at least 1".into()));
    }
    for (key, v) in [("graph.radius", c.graph.radius), ("stats.max_radius", c.stats.max_radius)] {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(key, format!("must be a positive number of micrometres, got {v}")));
            }
        }
    }
    if let Some(s) = c.deconvolve.sigma {
        if !(s.is_finite() && s > 0.0) {
            return Err(bad("deconvolve.sigma", format!("must be positive, got {s}")));
        }
    }
    if let Some(n) = &c.niches.niches {
        if n != "auto" && n.parse::<u32>().map_or(true, |k| k < 2) {
            return Err(bad("niches.niches", format!("expected `auto` or a number of niches >= 2, got `{n}`")));
        }
    }
    if c.compare.by.trim().is_empty() {
        return Err(bad("compare.by", "the condition column is empty".into()));
    }
    Ok(())
}

/// The documented default configuration printed by `tmescope config --print-default`: every parameter
/// with its default; stage options are commented out (unset = the stage's own default, shown).
pub const DEFAULT_TOML: &str = r#"# tmescope pipeline configuration (`tmescope run --config FILE`).
# Every key is optional. Relative paths are relative to this file's folder.
# Stage options left commented out use the stage's own default, shown after `=`.

# Sample sheet (CSV or TSV): columns `sample`, `path`, `format` (optional) and any metadata such as
# `condition`, `patient`, `timepoint` (passed to ingest as --meta KEY=VALUE). Paths in the sheet are
# relative to the sheet's folder. `format = dataset` marks an already-ingested dataset folder (e.g. from
# `tmescope simulate`), which is copied as is.
samples = "samples.csv"

# Output folder: <output>/<sample>/{dataset,deconvolution,graph,stats,scores,niches,communication}/
# and <output>/cohort/{compare,report}/; logs in <output>/logs/.
output = "results"

# Worker threads per stage (--threads); 0 = every core. Results do not depend on it.
threads = 0

# Stages to run, in order; remove one to skip it (and the stages that need its output).
stages = ["ingest", "deconvolve", "graph", "stats", "score", "niches", "communicate", "compare", "report"]

[ingest]
# Format when the sheet has no `format` column or leaves it empty: auto, dataset (or tmescope, as
# `tmescope simulate` writes), visium, visium-hd, xenium, merscope, cosmx, h5ad, 10x-h5, 10x-mtx, table.
# format = "auto"
# Extra arguments appended to every ingest command line.
extra_args = []

[deconvolve]
# Single-cell reference dataset folder (with a `cell_type` column). Empty: deconvolution is skipped.
reference = ""
# Method: rctd or nnls.
# method = "rctd"
# RCTD mode: full, doublet or multi.
# mode = "full"
# Fixed noise parameter (unset: chosen from the data).
# sigma = 0.84
# Random seed.
# seed = 0
extra_args = []

[graph]
# Graph kind: knn, radius, delaunay or grid.
# kind = "knn"
# Neighbours per cell (knn).
# k = 6
# Radius in micrometres (radius graphs).
# radius = 50.0
extra_args = []

[stats]
# Cell label column instead of the deconvolved proportions (default: the proportions when deconvolution
# runs, else the stage's default labels).
# labels = "cell_type"
# Permutations of the neighbourhood enrichment test.
# perms = 1000
# Maximum co-occurrence radius in micrometres.
# max_radius = 200.0
# Number of most variable genes for Moran's I / Geary's C.
# top_variable = 100
# Random seed.
# seed = 0
extra_args = []

[score]
# Gene programs (GMT or two-column TSV) instead of the shipped ones.
# programs = "programs.gmt"
# Scoring method: scanpy (score_genes) or rank (UCell-like).
# method = "scanpy"
# Random seed.
# seed = 0
extra_args = []

[niches]
# Number of niches, or "auto" (chosen by stability across seeds).
# niches = "auto"
# Random seed.
# seed = 0
extra_args = []

[communicate]
# Cell label column instead of the deconvolved proportions (default: the proportions when deconvolution
# runs, else the stage's default labels).
# labels = "cell_type"
# Ligand-receptor pairs (CellPhoneDB- or OmniPath-style table) instead of the shipped TME list.
# pairs = "pairs.tsv"
# Permutations of the communication test.
# perms = 1000
# Random seed.
# seed = 0
extra_args = []

[compare]
# Sample-sheet column holding the condition to compare.
by = "condition"
# Column pairing samples (e.g. patient) for paired tests; unset: unpaired.
# pair_by = "patient"
# Reference condition effects are measured against (unset: the stage's choice).
# reference = "pre"
# Test: t or wilcoxon.
# test = "t"
extra_args = []

[report]
extra_args = []
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_parses_to_default() {
        let c = parse(DEFAULT_TOML, Path::new("default.toml")).unwrap();
        assert_eq!(c, PipelineConfig::default());
    }

    #[test]
    fn every_commented_default_parses_with_its_type() {
        // Uncommenting every `# key = value` line must still give a valid config: the documented defaults
        // have the right types.
        let text: String = DEFAULT_TOML
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split(" = ")
                        .next()
                        .is_some_and(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                        && rest.contains(" = ") =>
                {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = parse(&text, Path::new("uncommented.toml")).unwrap();
        assert_eq!(c.graph.k, Some(6));
        assert_eq!(c.niches.niches.as_deref(), Some("auto"));
        assert_eq!(c.stats.perms, Some(1000));
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_key() {
        let e = parse("[graph]\nkk = 3\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(e.contains("p.toml") && e.contains("line 2") && e.contains("kk"), "{e}");
        let e = parse("[graph]\nk = \"six\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(e.contains("graph.k") && e.contains("line 2"), "{e}");
        let e = parse("[graph]\nkind = \"star\"\n", Path::new("p.toml")).unwrap_err().to_string();
        assert!(e.contains("graph.kind") && e.contains("star"), "{e}");
        let e = parse(r#"{"graph": {"k": -1}}"#, Path::new("p.json")).unwrap_err().to_string();
        assert!(e.contains("p.json") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let l = LoadedConfig { config: PipelineConfig::default(), source: "cfg/p.toml".into(), base: "cfg".into() };
        assert_eq!(l.resolve("samples.csv"), PathBuf::from("cfg/samples.csv"));
        assert_eq!(l.resolve("/abs/x"), PathBuf::from("/abs/x"));
    }
}
