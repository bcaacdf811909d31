//! Spot deconvolution (NNLS, Poisson EM, RCTD-style Poisson-lognormal) and single-cell labelling.
//!
//! - [`profiles`]: reference profiles and the reg/bulk gene lists;
//! - [`likelihood`]: the Poisson-lognormal likelihood tables and their interpolation;
//! - [`solver`]: the per-spot Newton / box-QP weight solver;
//! - [`rctd`]: platform effect, sigma choice, full / doublet / multi modes;
//! - [`labels`]: labels mode, one type per cell for single-cell-resolution data;
//! - [`nnls`]: Lawson-Hanson NNLS and Poisson EM baselines;
//! - [`pipeline`]: a whole run on datasets; [`output`]: the Parquet files;
//! - [`synth`]: simulated spots with known truth (Spotless protocol) and accuracy metrics.

// Numerical kernels index several parallel arrays by the same position; iterator chains would hide it.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

pub mod eigen;
pub mod labels;
pub mod likelihood;
pub mod nnls;
pub mod output;
pub mod pipeline;
pub mod profiles;
pub mod rctd;
pub mod solver;
pub mod synth;

pub use pipeline::{deconvolve, prepare_reference, Deconvolution, GeneKey, Method, Mode, Params};
