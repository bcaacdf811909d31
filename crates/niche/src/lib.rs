//! Gene programs, niches, microenvironmental states, resistance niches, communication and cohort
//! comparison: the `score`, `niches`, `communicate` and `compare` stages of tmescope.
//!
//! Algorithms take slices and return vectors ([`score`], [`cluster`], [`states`], [`metrics`],
//! [`resistance`], [`communication`], [`compare`], [`stats`]); [`stage`] reads the stage inputs and
//! writes the documented Parquet files (`docs/formats.md`). The science and every default are in
//! `docs/niches.md`.

// Index loops over parallel arrays read more clearly than zipped iterators in these numeric kernels.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

pub mod cluster;
pub mod communication;
pub mod compare;
pub mod metrics;
pub mod programs;
pub mod resistance;
pub mod score;
pub mod stage;
pub mod states;
pub mod stats;
