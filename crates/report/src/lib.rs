//! The tmescope niche report: one self-contained HTML page per run, with PNG and SVG figures beside it.
//!
//! [`render_report`] reads one or more run folders (see [`rundir`] for the layout: a folder per sample
//! with a subfolder per stage, and an optional `compare/` folder), and writes `index.html` plus
//! `figures/*.png|svg` into an output folder that appears only when complete. The page has no external
//! scripts, fonts or style sheets; it opens offline in any browser and can be shared as one folder.
//!
//! What it shows: a plain-words summary computed from the data ([`summary`]); per sample tissue maps
//! (cell type, niche, state, resistance score with resistance niches outlined, key programs), the cell-type
//! composition of each niche, the neighbourhood-enrichment heatmap, a communication dot plot, deconvolution
//! QC and program-score distributions; per cohort niche and state abundance per sample grouped by condition
//! and the differential table with a plot of the changes; the parameters and provenance of every file;
//! and relative links to every Parquet file. Every section says "Not run" when its files are missing.
//!
//! Colours come from one colour-blind-safe palette assigned by the sorted union of categories across all
//! samples ([`palette`]), so a niche has the same colour everywhere. Maps draw a seeded, niche-stratified
//! sample of at most `max_points` cells; statistics always use every cell. Figures render in parallel.
//! Cost: O(rows read) to load (files are streamed, only the needed columns), O(points drawn) to draw.
//!
//! # Examples
//!
//! ```no_run
//! use tmescope_report::{render_report, ReportOptions};
//! use std::path::{Path, PathBuf};
//! let out = render_report(&[PathBuf::from("run/P1")], Path::new("report"), &ReportOptions::default())?;
//! println!("{}", out.index.display());
//! # Ok::<(), tmescope_core::Error>(())
//! ```

pub mod cohort;
pub mod data;
pub mod example;
pub mod figures;
pub mod html;
pub mod palette;
pub mod read;
mod report;
pub mod rundir;
pub mod summary;

pub use report::{draw_subset, render_report, ReportOptions, ReportOutcome};
