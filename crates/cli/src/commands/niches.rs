//! `tmescope niches`: niches from neighbourhood composition, microenvironmental states, spatial metrics
//! and resistance niches, for one sample or a cohort.

use super::{expected, numbers};
use crate::context::Context;
use std::path::PathBuf;
use tmescope_core::provenance::Provenance;
use tmescope_core::Error;
use tmescope_niche::stage::{default_rules_text, run_niches, NicheInput, NicheMethod, NicheParams};

/// Clustering method.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Method {
    /// k-means++ with restarts.
    Kmeans,
    /// Diagonal Gaussian mixture (EM, initialised by k-means).
    Gmm,
}

/// Options of `tmescope niches`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  tmescope niches s1 --graph s1_graph --scores s1_scores -o s1_niches\n  tmescope niches s1 s2 s3 --graph g1 --graph g2 --graph g3 --joint --niches 8 -o cohort_niches\n  tmescope niches spots --graph g --proportions deconv -o n --niches auto --method gmm\n  tmescope niches s1 s2 --graph g1 --graph g2 --scores c1 --scores c2 --joint --standardize=false --with-distances=false --smooth 0 -o n\n  tmescope niches --print-rules > my_rules.toml"
)]
pub struct Args {
    /// Dataset folders, one per sample.
    #[arg(value_name = "DATASET")]
    pub datasets: Vec<PathBuf>,
    /// Graph folder (or edges.parquet) of each dataset, repeated in the same order.
    #[arg(long, value_name = "DIR")]
    pub graph: Vec<PathBuf>,
    /// `score` output of each dataset (repeated in order): program scores for states, resistance niches
    /// and summaries.
    #[arg(long, value_name = "DIR")]
    pub scores: Vec<PathBuf>,
    /// `deconvolve` output of each dataset (repeated in order): composition from proportions instead of labels.
    #[arg(long, value_name = "DIR")]
    pub proportions: Vec<PathBuf>,
    /// Cell-type label column of cells.parquet (used without --proportions).
    #[arg(long, default_value = "cell_type")]
    pub labels: String,
    /// Output folder (niches.parquet, niche_summary.parquet).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Number of niches (at most 100, and at most the cells of a sample), or `auto` to choose k by
    /// stability across seeds.
    #[arg(long, default_value = "auto", value_name = "K|auto")]
    pub niches: String,
    /// Smallest k tried by `--niches auto`.
    #[arg(long, default_value_t = 2)]
    pub k_min: usize,
    /// Largest k tried by `--niches auto` (at most 100; lowered to one less than the cells of a sample).
    #[arg(long, default_value_t = 10)]
    pub k_max: usize,
    /// Clustering method.
    #[arg(long, value_enum, default_value = "kmeans")]
    pub method: Method,
    /// Fit one model on all samples so niche ids mean the same thing everywhere (default: per sample).
    #[arg(long)]
    pub joint: bool,
    /// Layers of neighbourhood aggregation in the clustering features: layer 1 is the mean composition of
    /// the cell and its graph neighbours, layer l averages layer l - 1 over the same neighbourhood (wider
    /// and smoother); the layers are concatenated (CellCharter-style). At most 20.
    #[arg(long, default_value_t = 6, value_name = "L")]
    pub hops: usize,
    /// Add the program scores (z-scored, weighted by --score-weight) to the composition features
    /// (default: when --scores are given; `--with-scores=false` to leave them out).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub with_scores: Option<bool>,
    /// Weight of the program-score block of the features.
    #[arg(long, default_value_t = 0.5, value_parser = numbers::non_negative)]
    pub score_weight: f64,
    /// Scale every composition column to unit variance (pooled over the cells clustered) before
    /// clustering, so that rare cell types (endothelial, B cells) weigh as much as abundant ones
    /// (`--standardize=false`: raw fractions).
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true",
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub standardize: bool,
    /// Add each cell's distances to the nearest tumour cell and the nearest endothelial cell (log-compressed
    /// `ln(1 + d / 50 um)`, capped at 1 mm, z-scored, weighted by --distance-weight) to the features:
    /// margins, stromal bands and hypoxic cores are defined by these distances as much as by composition
    /// (`--with-distances=false`: leave them out).
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true",
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub with_distances: bool,
    /// Weight of the distance block of the features.
    #[arg(long, default_value_t = 0.6, value_parser = numbers::non_negative)]
    pub distance_weight: f64,
    /// Spatial smoothing of the niche labels: strength `beta` of a Potts prior on the neighbour graph
    /// (hidden Markov random field, iterated conditional modes). Each cell takes the niche minimising its
    /// squared distance to the niche mean (in units of the mean within-niche distance) plus `beta` times
    /// the fraction of the cells within --smooth-hops graph steps in another niche. 0: no smoothing;
    /// 2-4 removes isolated labels without erasing bands a few cells wide.
    #[arg(long, default_value_t = 2.5, value_name = "BETA", value_parser = numbers::non_negative)]
    pub smooth: f64,
    /// Neighbourhood of --smooth: the cells within N steps on the (symmetrised) graph vote, each once.
    /// `auto`: 70 um over the median edge length (4 steps between cells 17 um apart, 1 between Visium
    /// spots), at most 8.
    #[arg(long, default_value = "auto", value_name = "N|auto")]
    pub smooth_hops: String,
    /// Maximum rounds of --smooth (stops earlier when no label changes).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub smooth_rounds: usize,
    /// k-means restarts (seeds).
    #[arg(long, default_value_t = 20)]
    pub restarts: usize,
    /// Fit the model on at most this many cells (seeded subsample); every cell is then assigned.
    #[arg(long, default_value_t = 100_000)]
    pub fit_sample: usize,
    /// Rules file (states, groups, resistance, axes); default: the shipped rules (--print-rules).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Print the shipped rules (TOML) and exit.
    #[arg(long)]
    pub print_rules: bool,
    /// FDR level (BH q) of resistance hotspots.
    #[arg(long, default_value_t = 0.05, value_parser = numbers::fdr_level)]
    pub alpha: f64,
    /// Smallest resistance niche, in cells.
    #[arg(long, default_value_t = 10)]
    pub min_size: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn per_dataset(name: &str, v: &[PathBuf], n: usize) -> anyhow::Result<Vec<Option<PathBuf>>> {
    match v.len() {
        0 => Ok(vec![None; n]),
        m if m == n => Ok(v.iter().cloned().map(Some).collect()),
        m => Err(Error::Usage(format!(
            "--{name} is given {m} times for {n} datasets: give it once per dataset, in the same order"
        ))
        .into()),
    }
}

/// The value of option `--{name}`: `auto` (`None`) or a whole number >= 1.
fn number_or_auto(name: &str, value: &str) -> anyhow::Result<Option<usize>> {
    match value {
        "auto" => Ok(None),
        s => match s.parse::<usize>() {
            Ok(k) if k >= 1 => Ok(Some(k)),
            _ => Err(Error::Usage(format!("--{name} expects a number >= 1 or `auto`, found `{s}`")).into()),
        },
    }
}

/// Most layers of `--hops`: each adds a column per cell type to the features (and a pass over the graph).
const MAX_HOPS: usize = 20;

/// Most niches (`--niches`, `--k-max`): more than anyone can name and interpret, and k-means cost grows
/// with k.
const MAX_NICHES: usize = 100;

/// Runs `tmescope niches`.
pub fn run(a: &Args, ctx: &Context) -> anyhow::Result<()> {
    if a.print_rules {
        print!("{}", default_rules_text());
        return Ok(());
    }
    if a.datasets.is_empty() {
        return Err(Error::Usage("give at least one DATASET (or --print-rules)".into()).into());
    }
    let out = a.output.clone().ok_or_else(|| Error::Usage("-o/--output DIR is required".into()))?;
    if !(1..=MAX_HOPS).contains(&a.hops) {
        return Err(Error::Usage(format!("--hops must be between 1 and {MAX_HOPS}")).into());
    }
    if a.restarts == 0 || a.fit_sample == 0 {
        return Err(Error::Usage("--restarts and --fit-sample must be at least 1".into()).into());
    }
    let smooth_hops = number_or_auto("smooth-hops", &a.smooth_hops)?;
    if a.with_scores == Some(true) && a.scores.is_empty() {
        return Err(Error::Usage("--with-scores needs the program scores: give --scores DIR per dataset".into()).into());
    }
    let n = a.datasets.len();
    let graphs = per_dataset("graph", &a.graph, n)?;
    if graphs.iter().any(|g| g.is_none()) {
        return Err(Error::Usage("--graph DIR is required, once per dataset".into()).into());
    }
    let scores = per_dataset("scores", &a.scores, n)?;
    let props = per_dataset("proportions", &a.proportions, n)?;
    let k = number_or_auto("niches", &a.niches)?;
    if a.k_min < 2 || a.k_max < a.k_min || a.k_max > MAX_NICHES || k.is_some_and(|k| k > MAX_NICHES) {
        return Err(Error::Usage(format!(
            "--k-min must be >= 2, --k-max >= --k-min, and --niches and --k-max at most {MAX_NICHES}"
        ))
        .into());
    }
    let inputs: Vec<NicheInput> = (0..n)
        .map(|i| NicheInput {
            dataset: a.datasets[i].clone(),
            graph: graphs[i].clone().unwrap_or_default(),
            scores: scores[i].clone(),
            proportions: props[i].clone(),
        })
        .collect();
    let params = NicheParams {
        labels: a.labels.clone(),
        k,
        k_min: a.k_min,
        k_max: a.k_max,
        method: match a.method {
            Method::Kmeans => NicheMethod::Kmeans,
            Method::Gmm => NicheMethod::Gmm,
        },
        joint: a.joint,
        restarts: a.restarts,
        fit_sample: a.fit_sample,
        hops: a.hops,
        with_scores: a.with_scores.unwrap_or(true),
        score_weight: a.score_weight,
        standardize: a.standardize,
        with_distances: a.with_distances,
        distance_weight: a.distance_weight,
        smooth: a.smooth,
        smooth_hops,
        smooth_rounds: a.smooth_rounds,
        rules: a.rules.clone(),
        alpha: a.alpha,
        min_size: a.min_size,
        seed: a.seed,
        ..NicheParams::default()
    };
    let mut prov =
        Provenance::new("niches", serde_json::json!({"params": &params, "inputs": &inputs})).with_seed(a.seed);
    for i in &inputs {
        prov = prov.with_inputs(&i.graph, expected::GRAPH)?;
        for (p, what) in [(&i.scores, expected::SCORES), (&i.proportions, expected::PROPORTIONS)] {
            if let Some(p) = p {
                prov = prov.with_inputs(p, what)?;
            }
        }
        prov = prov.with_inputs(&i.dataset.join("cells.parquet"), expected::DATASET)?;
    }
    let sp = ctx.spinner("niches");
    let s = run_niches(&inputs, &out, &params, prov)?;
    sp.finish_and_clear();
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    for (k, curve) in &s.k {
        if curve.is_empty() {
            ctx.say(format!("k = {k}"));
        } else {
            let c: Vec<String> = curve.iter().map(|(k, s)| format!("{k}:{s:.3}")).collect();
            ctx.say(format!("k = {k} chosen by stability (k:mean ARI with k-1/k+1) {}", c.join(" ")));
        }
    }
    for h in &s.smooth_hops {
        ctx.say(format!("labels smoothed over {h} graph steps (--smooth {})", a.smooth));
    }
    for (sample, cells, k, res) in &s.samples {
        ctx.say(format!("{sample}: {cells} cells, {k} niches, {res} resistance niches"));
    }
    let st: Vec<String> = s.states.iter().map(|(k, v)| format!("{k} {v}")).collect();
    ctx.say(format!("cells per niche state: {}", st.join(", ")));
    ctx.say(format!("wrote {}", out.display()));
    Ok(())
}
