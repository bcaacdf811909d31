//! The whole pipeline from one config file: `tmescope run`, `tmescope config` and the Snakemake workflow.
//!
//! - [`config`]: the TOML schema (every parameter, its default and meaning), loading with errors that
//!   name the key;
//! - [`sheet`]: the sample sheet;
//! - [`plan`]: config + sheet -> the command line of every stage and sample (the one place where that
//!   mapping lives; the Snakemake rules read it as JSON from `tmescope config --print-commands`);
//! - [`fresh`]: whether a step's output is up to date (Parquet provenance, or a stamp);
//! - [`runner`]: runs a plan, one child `tmescope <stage>` process per step, with a progress line per
//!   step and a summary.

pub mod config;
pub mod fresh;
pub mod plan;
pub mod runner;
pub mod sheet;
