//! Ground-truth tumour microenvironment simulator for tmescope.
//!
//! `tmescope simulate` writes tumour sections whose truth is known: a tissue layout with named regions
//! (tumour nests with a hypoxic core, invasive margin, desmoplastic CAF-rich stroma, an immune-excluded
//! band, a myeloid-suppressive zone, a TLS-like B/T aggregate, vessels), 14 cell types, expression
//! profiles built from the shipped markers and programs with negative-binomial noise, state programs
//! driven by the layout (hypoxia with distance to vessels, exhaustion of CD8 T cells in tumour,
//! TGF-beta CAFs near tumour, low MHC-I in an immune-evasive clone, checkpoint ligands next to T cells),
//! measured as Xenium-like cells and/or Visium-like spots, plus a disjoint labelled reference and a
//! cohort design (patients x conditions) with a known therapy effect. See `docs/simulator.md`.
//!
//! Modules: [`config`] (every parameter), [`types`] (cell types, regions, compositions), [`layout`]
//! (geometry, regions, types, states), [`expression`] (panel, profiles, counts), [`spots`] (hexagonal
//! grid and aggregation), [`cohort`] (writing datasets and truth files), [`rng`] (per-item seeding),
//! [`geometry`] (k-d tree look-ups).
//!
//! Determinism: every random draw comes from a generator seeded by the seed and the item (cell) index,
//! and parallel results are collected in index order, so the files are identical for any thread count.
//!
//! # Examples
//!
//! ```
//! use tmescope_sim::config::SimConfig;
//! use tmescope_sim::layout::{plan_sections, simulate_layout};
//! let cfg = SimConfig { n_cells: 2_000, ..SimConfig::default() };
//! let layout = simulate_layout(&cfg, &plan_sections(&cfg)[0]);
//! assert_eq!(layout.cell_type.len(), 2_000);
//! ```

pub mod cohort;
pub mod config;
pub mod expression;
pub mod geometry;
pub mod layout;
pub mod rng;
pub mod spots;
pub mod types;

pub use cohort::{simulate_cohort, SimulationSummary};
pub use config::{Platform, SimConfig};
