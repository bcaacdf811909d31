//! Spatial neighbour graphs and statistics for tmescope.
//!
//! Everything here takes slices and returns vectors; only [`pipeline`] touches files.
//!
//! - [`build`]: kNN, radius, Delaunay and Visium-grid graphs per sample, connected components and regions;
//! - [`composition`]: each cell's neighbourhood composition by cell type (labels or deconvolved
//!   proportions), over 1..n hops;
//! - [`enrichment`]: neighbourhood enrichment (label permutations, seeded per permutation) and the
//!   interaction matrix;
//! - [`cooccurrence`]: squidpy's co-occurrence ratio by k-d tree range counting up to a maximum radius;
//! - `delaunay` (private): the Delaunay triangulation's edges, large sections in strips on parallel threads;
//! - [`autocorr`]: Moran's I and Geary's C with analytic variance, permutations and Benjamini-Hochberg;
//! - [`hotspots`]: local Getis-Ord Gi* z-scores;
//! - [`ripley`]: Ripley's K and L for one cell type with bounded memory;
//! - [`locality`]: breadth-first renumbering of a graph so that edge walks hit the cache.
//!
//! Definitions follow squidpy (Palla et al., Nat Methods 2022) where they are sound; `docs/spatial.md`
//! lists every difference and why.
//!
//! # Examples
//!
//! ```
//! use tmescope_spatial::build::{build_graph, GraphKind};
//! let x = [0.0, 1.0, 2.0, 3.0];
//! let y = [0.0; 4];
//! let sample = vec!["s".to_string(); 4];
//! let ids: Vec<String> = (0..4).map(|i| i.to_string()).collect();
//! let kind = GraphKind::Knn { k: 2, symmetric: false };
//! // The last argument may refuse a radius graph's estimated edge count (a memory limit); none here.
//! let g = build_graph(&x, &y, &sample, &ids, &kind, "cells.parquet".as_ref(), &|_, _| Ok(())).unwrap();
//! assert_eq!(g.neighbors_of(0), &[1, 2]);
//! ```

// Index loops over parallel arrays read more clearly than zipped iterators in these numeric kernels.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

pub mod autocorr;
pub mod build;
pub mod composition;
pub mod cooccurrence;
mod delaunay;
pub mod enrichment;
pub mod hotspots;
pub mod kdtree;
pub mod knn_grid;
pub mod locality;
pub mod pipeline;
pub mod ripley;
pub mod stats;

pub use composition::neighborhood_fractions;
pub use hotspots::getis_ord_gi_star;

#[cfg(test)]
mod test_graphs {
    use tmescope_core::graph::NeighborGraph;

    /// The path 0 - 1 - ... - (n - 1), both directions, unit lengths and weights.
    pub fn path(n: usize) -> NeighborGraph {
        let mut e = vec![];
        for i in 0..n as u32 - 1 {
            e.push((i, i + 1, 1.0, 1.0));
            e.push((i + 1, i, 1.0, 1.0));
        }
        NeighborGraph::from_edges(n, e, false)
    }
}
