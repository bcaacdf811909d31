//! One module per subcommand: its options (with `--help` examples) and a `run` function.

pub mod communicate;
pub mod compare;
pub mod config;
pub mod deconvolve;
pub mod demo;
pub mod graph;
pub mod ingest;
pub mod inspect;
pub mod niches;
pub(crate) mod numbers;
pub mod report;
pub mod run;
pub mod score;
pub mod simulate;
pub mod stats;

/// What each input of the subcommands should be, for the error when the path given does not exist
/// ([`tmescope_core::provenance::Provenance::with_inputs`]).
pub(crate) mod expected {
    /// A dataset folder.
    pub const DATASET: &str =
        "a dataset folder written by `tmescope ingest` (cells.parquet, genes.parquet, counts.parquet)";
    /// The `--graph` input.
    pub const GRAPH: &str = "the --graph folder written by `tmescope graph` (or its edges.parquet)";
    /// The `--proportions` input.
    pub const PROPORTIONS: &str =
        "the --proportions folder written by `tmescope deconvolve` (or its proportions.parquet)";
    /// The `--scores` input.
    pub const SCORES: &str = "the --scores folder written by `tmescope score` (or its programs.parquet)";
    /// A `niches` output given to `communicate --niches` or `compare`.
    pub const NICHES: &str = "a folder written by `tmescope niches` (or its niches.parquet)";
    /// The `--pairs` table.
    pub const PAIRS: &str = "the --pairs table (CSV/TSV of ligand-receptor pairs)";
    /// The `--programs` gene sets.
    pub const PROGRAMS: &str = "the --programs gene sets (GMT, or a two-column TSV)";
    /// A file that was read just before (ingest, deconvolve): it vanished in between.
    pub const READ: &str = "the input file read at the start of the run (was it moved or deleted meanwhile?)";
}
