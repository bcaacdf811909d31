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
pub mod report;
pub mod run;
pub mod score;
pub mod simulate;
pub mod stats;
