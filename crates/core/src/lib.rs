//! Shared domain types of tmescope.
//!
//! Every stage of the pipeline reads and writes Parquet. This crate holds what they share:
//!
//! - [`counts::CsrCounts`], the sparse cells x genes count matrix (CSR: `u64` row pointers, `u32`
//!   column indices, `u32` or `f32` values);
//! - [`dataset::Dataset`], a sample as the ingest stage writes it (`cells.parquet`, `genes.parquet`,
//!   `counts.parquet`);
//! - [`schema`], the Arrow schema of every file the pipeline writes, documented in `docs/formats.md`;
//! - [`provenance::Provenance`], the tool version, parameters and input hashes stored in each file's
//!   Parquet key-value metadata;
//! - [`output`], atomic output: files and folders are written under a temporary name and renamed when
//!   complete, so an interrupted run never leaves something that looks finished;
//! - [`error::Error`], the error type whose input variants name the file, the field and what was expected.
//! - [`timing`], the step timings that `-v` prints.
//! - [`seed`], the seed mix every random stream is derived with, and [`permute`], the generator and shuffle
//!   of the permutation tests.
//!
//! # Examples
//!
//! ```
//! use tmescope_core::counts::CsrCounts;
//! // Two cells, three genes: cell 0 has 2 counts of gene 1, cell 1 has 5 of gene 0 and 1 of gene 2.
//! let m = CsrCounts::from_triplets(2, 3, vec![(0, 1, 2.0), (1, 0, 5.0), (1, 2, 1.0)], true).unwrap();
//! assert_eq!(m.nnz(), 3);
//! assert_eq!(m.row_totals(), vec![2.0, 6.0]);
//! ```

pub mod counts;
pub mod dataset;
pub mod error;
pub mod gene_stats;
pub mod graph;
pub mod output;
pub mod parquet_io;
pub mod permute;
pub mod programs;
pub mod provenance;
pub mod schema;
pub mod seed;
pub mod text;
pub mod timing;

pub use error::{Error, Result};

/// The version of the tmescope tool, written into every output's provenance.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
