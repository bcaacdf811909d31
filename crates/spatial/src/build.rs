//! Building neighbour graphs from cell positions, one sample at a time (never an edge across samples).
//!
//! - **kNN**: the `k` nearest other cells (squidpy's default k = 6), directed `i -> j` for `j` among `i`'s
//!   neighbours as squidpy leaves it, or the union of both directions with `symmetric`. Ties at the k-th
//!   distance go to the lower row index. Searched on a uniform grid of buckets (`knn_grid`), about O(n k)
//!   for a section's even density, or with a k-d tree (kiddo, O(n log n)) where the grid declines.
//! - **radius**: every other cell with `d <= r`. O(n log n + edges).
//! - **Delaunay**: the Delaunay triangulation (spade; large sections in strips triangulated in parallel,
//!   see `delaunay`), symmetric, with edges longer than a percentile of all edge lengths removed
//!   (CellCharter prunes above the 99th percentile, Varrone et al., Nat Genet 2024) so hull-boundary edges
//!   do not join distant tissue. O(n log n).
//! - **grid** (Visium): kNN with `k` = 6 keeping edges `d < 1.3 * median kNN distance` (squidpy's
//!   `coord_type="grid"` rule); `rings > 1` adds ring 2, 3, ... by walking the ring-1 lattice, like squidpy's
//!   powers of the adjacency matrix.
//!
//! Cells sharing exactly the same position are kept: kNN and radius graphs treat them as neighbours at
//! distance 0; the Delaunay graph triangulates one cell per position (the lowest row), links the others to
//! it at distance 0 and gives them its neighbours. A position may hold at most [`MAX_CELLS_PER_POSITION`]
//! cells of a sample (an input error otherwise): m cells at one position are m^2 edges.

use crate::delaunay::triangulation_edges;
use crate::kdtree::PointTree;
use crate::knn_grid::{NearestNeighbors, PointGrid};
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use tmescope_core::gene_stats::percentile;
use tmescope_core::graph::{unit_weights, NeighborGraph};
use tmescope_core::{Error, Result};

/// Which graph to build.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GraphKind {
    /// k nearest neighbours.
    Knn {
        /// Neighbours per cell.
        k: usize,
        /// Union of both directions instead of directed edges.
        symmetric: bool,
    },
    /// All cells within a distance.
    Radius {
        /// The distance (inclusive), in the coordinate unit.
        radius: f64,
    },
    /// Delaunay triangulation with long-edge pruning.
    Delaunay {
        /// Edges longer than this percentile of the sample's edge lengths are removed (100 keeps all).
        prune_percentile: f64,
    },
    /// Visium lattice: kNN with the 1.3 x median distance cut, plus rings.
    Grid {
        /// Neighbours per spot in ring 1 (6 on the Visium hex lattice, 4 on a square one).
        k: usize,
        /// Number of rings (1 = direct neighbours).
        rings: usize,
    },
}

impl GraphKind {
    /// Whether the edges built are directed.
    pub fn directed(&self) -> bool {
        matches!(self, GraphKind::Knn { symmetric: false, .. } | GraphKind::Grid { .. })
    }

    /// The JSON description stored in `edges.parquet` metadata.
    pub fn description(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// A usage error for parameters out of range (k = 0, a radius that is not positive, ...).
    pub(crate) fn check(&self) -> Result<()> {
        match *self {
            GraphKind::Knn { k, .. } | GraphKind::Grid { k, .. } if k == 0 => {
                Err(Error::Usage("--k must be at least 1".into()))
            }
            GraphKind::Grid { rings: 0, .. } => Err(Error::Usage("--rings must be at least 1".into())),
            GraphKind::Radius { radius } if !(radius.is_finite() && radius > 0.0) => {
                Err(Error::Usage(format!("--radius must be a positive number, got {radius}")))
            }
            GraphKind::Delaunay { prune_percentile: p } if !(p > 0.0 && p <= 100.0) => {
                Err(Error::Usage(format!("--prune-percentile must be in (0, 100], got {p}")))
            }
            _ => Ok(()),
        }
    }
}

/// The cells of each sample, in order of first appearance: `(sample name, row indices)`. A cell of the
/// same sample as the cell before is placed without a hash lookup (a dataset's cells come sample by
/// sample).
pub fn sample_groups(sample: &[String]) -> Vec<(String, Vec<u32>)> {
    let mut order: Vec<(String, Vec<u32>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut last: Option<(&str, usize)> = None;
    for (i, s) in sample.iter().enumerate() {
        let g = match last {
            Some((name, g)) if name == s => g,
            _ => *index.entry(s.as_str()).or_insert_with(|| {
                order.push((s.clone(), Vec::new()));
                order.len() - 1
            }),
        };
        last = Some((s, g));
        order[g].1.push(i as u32);
    }
    order
}

/// Checks that every coordinate is finite; `source` names the file in the error.
pub fn check_coordinates(x: &[f64], y: &[f64], cell_id: &[String], source: &Path) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::Internal(format!("x has {} rows, y {}", x.len(), y.len())));
    }
    if let Some(i) = (0..x.len()).find(|&i| !(x[i].is_finite() && y[i].is_finite())) {
        let id = cell_id.get(i).map(String::as_str).unwrap_or("?");
        return Err(Error::input(
            source,
            format!("columns `x`/`y`, row {} (cell `{id}`)", i + 1),
            format!(
                "expected finite coordinates, found ({}, {}): a spatial graph needs a position for every cell \
                 (filter cells without positions first)",
                x[i], y[i]
            ),
        ));
    }
    Ok(())
}

/// The most cells one position may hold in a sample. Cells at the same position are each other's
/// neighbours at distance 0, so a position holding m cells costs m^2 edges (Delaunay, radius) or kNN
/// queries that each visit all m (ties at distance 0 go to the lowest rows): far more than this is not a
/// tissue but missing, constant or coarsely rounded coordinates, and is refused rather than left to run
/// out of memory.
pub const MAX_CELLS_PER_POSITION: usize = 100;

/// The points of one sample that share a position with another.
struct PositionRuns {
    /// The indices of the points at each position that holds more than one (its bit pattern, with -0.0
    /// as 0.0), ascending, ordered by their first (lowest) index. Empty when every position is distinct.
    shared: Vec<Vec<u32>>,
}

/// The runs of equal positions, of two points or more, of `keyed` (`(position bits, index)`, sorted).
fn shared_runs(keyed: &[(u128, u32)], out: &mut Vec<Vec<u32>>) {
    for run in keyed.chunk_by(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            out.push(run.iter().map(|k| k.1).collect());
        }
    }
}

impl PositionRuns {
    /// Groups `pts` by position. Equal positions fall in the same bucket of a grid of about one point per
    /// bucket ([`PointGrid`]), so only each bucket's few points are sorted, in parallel, in linear time
    /// overall; for point sets the grid declines (very uneven), one parallel sort of every position's bit
    /// pattern. Either way the keys are unique with the index, so the result is one for any thread count.
    fn of(pts: &[[f64; 2]]) -> Self {
        // `+ 0.0` turns -0.0 into 0.0, so that equal positions have equal bits.
        let key = |i: u32| {
            let [x, y] = pts[i as usize];
            ((x + 0.0).to_bits() as u128) << 64 | (y + 0.0).to_bits() as u128
        };
        let mut shared: Vec<Vec<u32>> = match PointGrid::new(pts, 2) {
            Some(grid) => grid
                .buckets()
                .with_min_len(4096)
                .fold(
                    || (Vec::new(), Vec::new()),
                    |(mut keyed, mut out), bucket| {
                        if bucket.len() > 1 {
                            keyed.clear();
                            keyed.extend(bucket.iter().map(|&i| (key(i), i)));
                            keyed.sort_unstable();
                            shared_runs(&keyed, &mut out);
                        }
                        (keyed, out)
                    },
                )
                .flat_map_iter(|(_, out)| out)
                .collect(),
            None => {
                let mut keyed: Vec<(u128, u32)> = (0..pts.len() as u32).into_par_iter().map(|i| (key(i), i)).collect();
                keyed.par_sort_unstable();
                let mut out = Vec::new();
                shared_runs(&keyed, &mut out);
                out
            }
        };
        shared.par_sort_unstable_by_key(|run| run[0]);
        PositionRuns { shared }
    }

    /// An input error when a position holds more than [`MAX_CELLS_PER_POSITION`] points; `rows` maps the
    /// points to rows of the cells table (`cell_id`), `sample` and `source` name them.
    fn check(&self, pts: &[[f64; 2]], rows: &[u32], cell_id: &[String], sample: &str, source: &Path) -> Result<()> {
        let Some(run) = self.shared.iter().max_by_key(|run| (run.len(), std::cmp::Reverse(run[0]))) else {
            return Ok(());
        };
        let (m, r) = (run.len(), run[0]);
        if m <= MAX_CELLS_PER_POSITION {
            return Ok(());
        }
        let examples: Vec<String> = run[..3]
            .iter()
            .map(|&i| format!("`{}`", cell_id.get(rows[i as usize] as usize).map(String::as_str).unwrap_or("?")))
            .collect();
        let [x, y] = pts[r as usize];
        Err(Error::input(
            source,
            format!("columns `x`/`y`, sample `{sample}`"),
            format!(
                "{m} cells share the position ({}, {}) (cells {}, ...): expected at most \
                 {MAX_CELLS_PER_POSITION} cells at one position (are the coordinates missing, constant or \
                 rounded too coarsely?)",
                x + 0.0,
                y + 0.0,
                examples.join(", ")
            ),
        ))
    }
}

/// Builds the graph of `kind` over all cells, one sample at a time. `x`, `y`, `sample` and `cell_id` are
/// the columns of `cells.parquet`; `source` names that file in errors. For a radius graph, `check_edges` is
/// first given the estimated number of edges ([`radius_edge_estimate`], summed over the samples) and the
/// number of cells, and may refuse them (e.g. a memory limit) before any edge is built.
pub fn build_graph(
    x: &[f64],
    y: &[f64],
    sample: &[String],
    cell_id: &[String],
    kind: &GraphKind,
    source: &Path,
    check_edges: &dyn Fn(u64, usize) -> Result<()>,
) -> Result<NeighborGraph> {
    kind.check()?;
    let n = x.len();
    if sample.len() != n {
        return Err(Error::Internal(format!("sample has {} rows, x {n}", sample.len())));
    }
    check_coordinates(x, y, cell_id, source)?;
    // Every sample is checked before any edge is built.
    let mut samples = Vec::new();
    for (name, rows) in sample_groups(sample) {
        let pts: Vec<[f64; 2]> = rows.iter().map(|&r| [x[r as usize], y[r as usize]]).collect();
        if let GraphKind::Knn { k, .. } | GraphKind::Grid { k, .. } = kind {
            if pts.len() <= *k {
                return Err(Error::input(
                    source,
                    format!("sample `{name}`"),
                    format!(
                        "{} cells but a {k}-nearest-neighbour graph needs at least {} (k + 1): lower --k or \
                         drop this sample",
                        pts.len(),
                        k + 1
                    ),
                ));
            }
        }
        let positions = PositionRuns::of(&pts);
        positions.check(&pts, &rows, cell_id, &name, source)?;
        samples.push((rows, pts, positions));
    }
    // A radius graph's trees serve both the estimate and the edges.
    let trees: Vec<PointTree> = match *kind {
        GraphKind::Radius { radius } => {
            let trees: Vec<PointTree> = samples.iter().map(|(_, pts, _)| PointTree::new(pts.clone())).collect();
            check_edges(trees.iter().map(|t| radius_edge_estimate(t, radius)).sum(), n)?;
            trees
        }
        _ => Vec::new(),
    };
    let mut edges: Vec<(u32, u32, f64, f64)> = Vec::new();
    for (s, (rows, pts, positions)) in samples.into_iter().enumerate() {
        if is_every_row(&rows, n) {
            // One sample holding every cell in order: the rows go straight into CSR form.
            match *kind {
                GraphKind::Knn { k, symmetric: false } => return Ok(knn_graph(&pts, k)),
                GraphKind::Delaunay { prune_percentile } => return delaunay_graph(&pts, positions, prune_percentile),
                _ => {}
            }
        }
        let local = match kind {
            GraphKind::Knn { k, symmetric } => knn_edges(&pts, *k, *symmetric),
            GraphKind::Radius { radius } => radius_edges(&trees[s], *radius),
            GraphKind::Delaunay { prune_percentile } => delaunay_edges(&pts, positions, *prune_percentile)?,
            GraphKind::Grid { k, rings } => grid_edges(&pts, *k, *rings),
        };
        edges.extend(local.into_iter().map(|(a, b, d)| (rows[a as usize], rows[b as usize], d, 1.0)));
    }
    Ok(NeighborGraph::from_edges(n, edges, kind.directed()))
}

/// Directed kNN edges `(i, j, distance)` over `pts`, or their union with `symmetric`.
pub fn knn_edges(pts: &[[f64; 2]], k: usize, symmetric: bool) -> Vec<(u32, u32, f64)> {
    let index = NearestNeighbors::new(pts, k);
    let mut edges: Vec<(u32, u32, f64)> = (0..pts.len())
        .into_par_iter()
        .map_init(Vec::new, |best, i| {
            index.knn_of(i, k, best);
            best.iter().map(|&(d2, j)| (i as u32, j, d2.sqrt())).collect::<Vec<_>>()
        })
        .flatten_iter()
        .collect();
    if symmetric {
        let rev: Vec<_> = edges.iter().map(|&(a, b, d)| (b, a, d)).collect();
        edges.extend(rev);
    }
    edges
}

/// The directed kNN graph of `pts` (more than `k` points), built in place: row `i` holds the `k` edges of
/// [`knn_edges`] from `i`, sorted by neighbour, as [`NeighborGraph::from_edges`] would order them.
fn knn_graph(pts: &[[f64; 2]], k: usize) -> NeighborGraph {
    let index = NearestNeighbors::new(pts, k);
    let n = pts.len();
    let mut neighbors = vec![0u32; n * k];
    let mut distances = vec![0.0; n * k];
    neighbors.par_chunks_mut(k).zip(distances.par_chunks_mut(k)).enumerate().for_each_init(
        Vec::new,
        |row, (i, (nb, dist))| {
            index.knn_of(i, k, row);
            row.sort_unstable_by_key(|e| e.1);
            for (slot, &(d2, j)) in row.iter().enumerate() {
                nb[slot] = j;
                dist[slot] = d2.sqrt();
            }
        },
    );
    NeighborGraph {
        n,
        indptr: (0..=n as u64).map(|i| i * k as u64).collect(),
        neighbors,
        distances,
        weights: unit_weights(n * k),
        directed: true,
    }
}

/// Points whose neighbours [`radius_edge_estimate`] counts, at the most.
const ESTIMATE_POINTS: usize = 512;

/// The number of edges [`radius_edges`] would give, estimated before building them: the neighbours within
/// `radius` of up to 512 evenly spaced points, scaled to all points (exact for fewer points). Lets a
/// caller refuse a radius that would link every cell to most of the tissue (e.g. given in micrometres for
/// coordinates in pixels) before the edges fill the memory.
pub fn radius_edge_estimate(tree: &PointTree, radius: f64) -> u64 {
    let n = tree.len();
    if n < 2 {
        return 0;
    }
    let step = n.div_ceil(ESTIMATE_POINTS);
    let probes: Vec<usize> = (0..n).step_by(step).collect();
    let found: u64 = probes
        .par_iter()
        .map(|&i| {
            let mut m = 0u64;
            tree.within_visit(i, radius * radius, |_, _| m += 1);
            m.saturating_sub(1)
        })
        .sum();
    (found as f64 * n as f64 / probes.len() as f64).round() as u64
}

/// Edges `(i, j, distance)` between every pair of the points of `tree` with `d <= radius`, both
/// directions, self excluded.
pub fn radius_edges(tree: &PointTree, radius: f64) -> Vec<(u32, u32, f64)> {
    let r2 = radius * radius;
    (0..tree.len())
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut out = Vec::new();
            tree.within_visit(i, r2, |j, d2| {
                if j as usize != i {
                    out.push((i as u32, j, d2.sqrt()));
                }
            });
            out
        })
        .collect()
}

/// Delaunay edges `(i, j, distance)`, both directions, without edges longer than the `prune_percentile`-th
/// percentile of the triangulation's edge lengths; the rows of [`delaunay_graph`] in order.
fn delaunay_edges(pts: &[[f64; 2]], positions: PositionRuns, prune_percentile: f64) -> Result<Vec<(u32, u32, f64)>> {
    let g = delaunay_graph(pts, positions, prune_percentile)?;
    Ok((0..g.n)
        .flat_map(|i| {
            let row = g.indptr[i] as usize..g.indptr[i + 1] as usize;
            g.neighbors[row.clone()].iter().zip(&g.distances[row]).map(move |(&j, &d)| (i as u32, j, d))
        })
        .collect())
}

/// Points per parallel task when rows are filled in chunks.
const ROW_CHUNK: usize = 4096;

/// The Delaunay graph of `pts` (undirected, unit weights), rows sorted by neighbour: each point is linked to the points at the
/// positions its position shares a triangulation edge with, unless the edge is longer than the
/// `prune_percentile`-th percentile of the triangulation's edge lengths. Points sharing a position are
/// triangulated once and linked to each other (distance 0), and each gets the neighbours of the position.
/// The rows are filled in parallel from the triangulation's vertex adjacency, in the same order for any
/// thread count.
fn delaunay_graph(pts: &[[f64; 2]], positions: PositionRuns, prune_percentile: f64) -> Result<NeighborGraph> {
    let n = pts.len();
    // One vertex per distinct position, represented by its lowest index; ordered by representative:
    // vertex `v` of the triangulation is `runs[v]`.
    // `runs[v]` = (representative, start, end): the points at vertex `v` are `order[start..end]`.
    let shared = !positions.shared.is_empty();
    let (order, runs) = if shared {
        let mut first = vec![true; n];
        for run in &positions.shared {
            run[1..].iter().for_each(|&i| first[i as usize] = false);
        }
        let mut next = positions.shared.iter().peekable();
        let (mut order, mut runs) = (Vec::with_capacity(n), Vec::new());
        for i in (0..n as u32).filter(|&i| first[i as usize]) {
            let start = order.len() as u32;
            match next.next_if(|run| run[0] == i) {
                Some(run) => order.extend_from_slice(run),
                None => order.push(i),
            }
            runs.push((i, start, order.len() as u32));
        }
        (order, runs)
    } else {
        ((0..n as u32).collect(), (0..n as u32).map(|i| (i, i, i + 1)).collect::<Vec<_>>())
    };
    let mut vertex_of = vec![0u32; n];
    for (v, &(_, a, b)) in runs.iter().enumerate() {
        for &i in &order[a as usize..b as usize] {
            vertex_of[i as usize] = v as u32;
        }
    }
    // The triangulation's edges as vertex adjacency lists (CSR over vertices).
    let nv = runs.len();
    let ends = if shared {
        triangulation_edges(&runs.iter().map(|&(r, _, _)| pts[r as usize]).collect::<Vec<_>>())?
    } else {
        triangulation_edges(pts)?
    };
    let mut start = vec![0u64; nv + 1];
    for &[a, b] in &ends {
        start[a as usize + 1] += 1;
        start[b as usize + 1] += 1;
    }
    for v in 0..nv {
        start[v + 1] += start[v];
    }
    let mut adjacent = vec![0u32; start[nv] as usize];
    let mut fill = start.clone();
    for &[a, b] in &ends {
        adjacent[fill[a as usize] as usize] = b;
        fill[a as usize] += 1;
        adjacent[fill[b as usize] as usize] = a;
        fill[b as usize] += 1;
    }
    drop((ends, fill));
    let neighbours = |v: usize| &adjacent[start[v] as usize..start[v + 1] as usize];
    // Vertex `v` is at the position of row `runs[v].0`.
    let at = |v: usize| pts[runs[v].0 as usize];
    let length = |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let cut = if prune_percentile < 100.0 && !adjacent.is_empty() {
        // Each undirected edge once, from its lower vertex.
        let mut lengths: Vec<f64> = (0..nv)
            .into_par_iter()
            .flat_map_iter(|v| {
                let p = at(v);
                neighbours(v).iter().filter(move |&&u| u as usize > v).map(move |&u| length(p, at(u as usize)))
            })
            .collect();
        percentile(&mut lengths, prune_percentile)
    } else {
        f64::INFINITY
    };
    let members = |v: usize| &order[runs[v].1 as usize..runs[v].2 as usize];
    let chunks: Vec<(Vec<u64>, Vec<u32>, Vec<f64>)> = (0..n.div_ceil(ROW_CHUNK))
        .into_par_iter()
        .map(|c| {
            let rows = c * ROW_CHUNK..((c + 1) * ROW_CHUNK).min(n);
            let (mut len, mut nb, mut dist) = (Vec::with_capacity(rows.len()), Vec::new(), Vec::new());
            let mut row: Vec<(u32, f64)> = Vec::new();
            for i in rows {
                let v = vertex_of[i] as usize;
                row.clear();
                if shared {
                    row.extend(members(v).iter().filter(|&&u| u as usize != i).map(|&u| (u, 0.0)));
                }
                let p = at(v);
                for &to in neighbours(v) {
                    let to = to as usize;
                    let d = length(p, at(to));
                    if d > cut {
                        continue;
                    }
                    if shared {
                        row.extend(members(to).iter().map(|&u| (u, d)));
                    } else {
                        row.push((runs[to].0, d));
                    }
                }
                row.sort_unstable_by_key(|e| e.0);
                len.push(row.len() as u64);
                nb.extend(row.iter().map(|e| e.0));
                dist.extend(row.iter().map(|e| e.1));
            }
            (len, nb, dist)
        })
        .collect();
    // The chunks' rows are copied into place in parallel, each chunk where the ones before it end.
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0u64);
    let mut at = 0u64;
    for (len, _, _) in &chunks {
        indptr.extend(len.iter().map(|l| {
            at += l;
            at
        }));
    }
    let total = at as usize;
    let (mut neighbors, mut distances) = (vec![0u32; total], vec![0.0; total]);
    let mut nb_rest: &mut [u32] = &mut neighbors;
    let mut dist_rest: &mut [f64] = &mut distances;
    let mut parts = Vec::with_capacity(chunks.len());
    for (_, nb, dist) in &chunks {
        let (a, b) = std::mem::take(&mut nb_rest).split_at_mut(nb.len());
        let (c, d) = std::mem::take(&mut dist_rest).split_at_mut(dist.len());
        parts.push((a, c, nb, dist));
        (nb_rest, dist_rest) = (b, d);
    }
    parts.into_par_iter().for_each(|(to_nb, to_dist, nb, dist)| {
        to_nb.copy_from_slice(nb);
        to_dist.copy_from_slice(dist);
    });
    Ok(NeighborGraph { n, indptr, neighbors, distances, weights: unit_weights(total), directed: false })
}

/// Visium lattice edges: kNN edges with `d < 1.3 * median kNN distance`, then rings 2..=`rings` by walking
/// the ring-1 edges (a spot in ring r is reachable in r steps and not fewer).
pub fn grid_edges(pts: &[[f64; 2]], k: usize, rings: usize) -> Vec<(u32, u32, f64)> {
    let knn = knn_edges(pts, k, false);
    let mut d: Vec<f64> = knn.iter().map(|e| e.2).collect();
    let cut = 1.3 * percentile(&mut d, 50.0);
    let ring1: Vec<(u32, u32, f64)> = knn.into_iter().filter(|e| e.2 < cut).collect();
    if rings <= 1 {
        return ring1;
    }
    let g = NeighborGraph::from_edges(pts.len(), ring1.iter().map(|&(a, b, d)| (a, b, d, 1.0)).collect(), true);
    (0..pts.len())
        .into_par_iter()
        .flat_map_iter(|s| {
            // Breadth-first walk up to `rings` steps from spot s.
            let mut seen = std::collections::HashSet::from([s as u32]);
            let mut frontier = vec![s as u32];
            let mut out = Vec::new();
            for _ in 0..rings {
                let mut next = Vec::new();
                for &u in &frontier {
                    for &v in g.neighbors_of(u as usize) {
                        if seen.insert(v) {
                            next.push(v);
                            let (a, b) = (pts[s], pts[v as usize]);
                            out.push((s as u32, v, ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()));
                        }
                    }
                }
                frontier = next;
            }
            out
        })
        .collect()
}

/// Connected components of the graph (edges taken as undirected), numbered 0, 1, ... in order of each
/// component's first cell. O(edges * alpha(n)) with petgraph's union-find.
pub fn connected_components(g: &NeighborGraph) -> Vec<u32> {
    label_regions(g, &vec![true; g.n]).into_iter().map(|c| c.unwrap_or(0)).collect()
}

/// Regions: connected components of the subgraph induced by the cells where `mask` is true (for example
/// contiguous tumour regions), numbered 0, 1, ... by first cell; `None` for cells outside the mask.
pub fn label_regions(g: &NeighborGraph, mask: &[bool]) -> Vec<Option<u32>> {
    let mut uf = petgraph::unionfind::UnionFind::<u32>::new(g.n);
    for i in 0..g.n {
        if !mask.get(i).copied().unwrap_or(false) {
            continue;
        }
        for &j in g.neighbors_of(i) {
            if mask.get(j as usize).copied().unwrap_or(false) {
                uf.union(i as u32, j);
            }
        }
    }
    let mut id_of_root = std::collections::HashMap::new();
    (0..g.n)
        .map(|i| {
            if !mask.get(i).copied().unwrap_or(false) {
                return None;
            }
            let root = uf.find(i as u32);
            let next = id_of_root.len() as u32;
            Some(*id_of_root.entry(root).or_insert(next))
        })
        .collect()
}

/// Whether `rows` is `0..n` in order (a sample holding every cell of a one-sample dataset).
pub fn is_every_row(rows: &[u32], n: usize) -> bool {
    rows.len() == n && rows.iter().enumerate().all(|(k, &r)| r as usize == k)
}

/// Extracts the subgraph of the cells `rows` (renumbered 0..rows.len() in that order); edges leaving the
/// set are dropped. When `rows` is every cell in order (one sample), the graph itself is returned.
pub fn subgraph<'a>(g: &'a NeighborGraph, rows: &[u32]) -> std::borrow::Cow<'a, NeighborGraph> {
    if is_every_row(rows, g.n) {
        return std::borrow::Cow::Borrowed(g);
    }
    let mut local = vec![u32::MAX; g.n];
    for (k, &r) in rows.iter().enumerate() {
        local[r as usize] = k as u32;
    }
    let mut edges = Vec::new();
    for (k, &r) in rows.iter().enumerate() {
        let r = r as usize;
        let (s, e) = (g.indptr[r] as usize, g.indptr[r + 1] as usize);
        for p in s..e {
            let j = local[g.neighbors[p] as usize];
            if j != u32::MAX {
                edges.push((k as u32, j, g.distances[p], g.weights[p]));
            }
        }
    }
    std::borrow::Cow::Owned(NeighborGraph::from_edges(rows.len(), edges, g.directed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`build_graph`] without an edge limit.
    fn build(
        x: &[f64],
        y: &[f64],
        sample: &[String],
        ids: &[String],
        kind: &GraphKind,
        src: &Path,
    ) -> Result<NeighborGraph> {
        build_graph(x, y, sample, ids, kind, src, &|_, _| Ok(()))
    }

    fn s(n: usize) -> Vec<String> {
        vec!["s".to_string(); n]
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn shared_positions_by_the_grid_and_by_the_sort() {
        // 2,000 points on 77 positions (0.0 and -0.0 alike), then 300 more at one of them: a bucket of
        // more than 256 points, which the grid declines (the sort groups them).
        let mut pts: Vec<[f64; 2]> =
            (0..2000).map(|i| [(i * 37 % 11) as f64, if i % 3 == 0 { -0.0 } else { (i * 17 % 7) as f64 }]).collect();
        for extra in [0, 300] {
            pts.extend(std::iter::repeat_n([4.0, 0.0], extra));
            assert_eq!(PointGrid::new(&pts, 2).is_some(), extra == 0);
            let mut by_bits: std::collections::BTreeMap<(u64, u64), Vec<u32>> = Default::default();
            for (i, p) in pts.iter().enumerate() {
                by_bits.entry(((p[0] + 0.0).to_bits(), (p[1] + 0.0).to_bits())).or_default().push(i as u32);
            }
            let mut want: Vec<Vec<u32>> = by_bits.into_values().filter(|run| run.len() > 1).collect();
            want.sort();
            assert_eq!(PositionRuns::of(&pts).shared, want);
        }
        assert!(PositionRuns::of(&[[1.0, 2.0], [2.0, 1.0]]).shared.is_empty());
    }

    #[test]
    fn too_many_cells_at_one_position_are_refused_per_sample() {
        // 101 cells at (5, -0) and (5, 0) (the same position), plus cells elsewhere: refused by every kind.
        let m = MAX_CELLS_PER_POSITION + 1;
        let mut x: Vec<f64> = vec![5.0; m];
        let mut y: Vec<f64> = (0..m).map(|i| if i % 2 == 0 { 0.0 } else { -0.0 }).collect();
        x.extend((0..20).map(|i| i as f64));
        y.extend([1.0; 20]);
        let n = x.len();
        let kinds = [
            GraphKind::Knn { k: 6, symmetric: false },
            GraphKind::Radius { radius: 2.0 },
            GraphKind::Delaunay { prune_percentile: 100.0 },
            GraphKind::Grid { k: 6, rings: 1 },
        ];
        for kind in &kinds {
            let e = build(&x, &y, &s(n), &ids(n), kind, Path::new("cells.parquet")).unwrap_err();
            let text = e.to_string();
            assert!(e.is_user_error(), "{text}");
            for part in ["cells.parquet", "sample `s`", "101 cells share the position (5, 0)", "`c0`", "at most 100"] {
                assert!(text.contains(part), "{part} not in {text}");
            }
        }
        // At the limit the graph is built.
        for kind in &kinds {
            assert!(build(&x[1..], &y[1..], &s(n - 1), &ids(n - 1), kind, Path::new("c")).is_ok());
        }
    }

    #[test]
    fn radius_edge_estimate_is_exact_when_small_and_close_when_sampled() {
        let grid = |side: usize| -> Vec<[f64; 2]> {
            (0..side * side).map(|i| [(i % side) as f64, (i / side) as f64 + 0.001 * (i % 7) as f64]).collect()
        };
        let small = grid(20);
        for r in [0.5, 1.0, 2.5, 100.0] {
            let tree = PointTree::new(small.clone());
            assert_eq!(radius_edge_estimate(&tree, r), radius_edges(&tree, r).len() as u64, "radius {r}");
        }
        let big = grid(150);
        let tree = PointTree::new(big.clone());
        let (estimate, exact) = (radius_edge_estimate(&tree, 3.0), radius_edges(&tree, 3.0).len() as f64);
        assert!((estimate as f64 / exact - 1.0).abs() < 0.05, "{estimate} vs {exact}");
        assert_eq!(radius_edge_estimate(&PointTree::new(big[..1].to_vec()), 3.0), 0);
    }

    #[test]
    fn radius_check_is_given_the_estimate_over_all_samples_first() {
        // Two samples of 10 points 1 apart on a line: 18 edges within 1 in each (exact below 512 points).
        let x: Vec<f64> = (0..20).map(|i| (i % 10) as f64).collect();
        let y = vec![0.0; 20];
        let sample: Vec<String> = (0..20).map(|i| if i < 10 { "a" } else { "b" }.to_string()).collect();
        let radius = GraphKind::Radius { radius: 1.0 };
        let seen = std::cell::Cell::new((0, 0));
        let g = build_graph(&x, &y, &sample, &ids(20), &radius, Path::new("c"), &|e, n| {
            seen.set((e, n));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.get(), (36, 20));
        assert_eq!(g.n_edges(), 36);
        let refuse = |_, _| Err(Error::Usage("over the limit".into()));
        let e = build_graph(&x, &y, &sample, &ids(20), &radius, Path::new("c"), &refuse).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
        // Other kinds are not checked.
        let knn = GraphKind::Knn { k: 2, symmetric: false };
        assert!(build_graph(&x, &y, &sample, &ids(20), &knn, Path::new("c"), &refuse).is_ok());
    }

    #[test]
    fn knn_is_directed_and_exact() {
        let x = vec![0.0, 1.0, 2.0, 10.0];
        let y = vec![0.0; 4];
        let g = build(&x, &y, &s(4), &ids(4), &GraphKind::Knn { k: 1, symmetric: false }, Path::new("c")).unwrap();
        assert!(g.directed);
        assert_eq!(g.neighbors_of(0), &[1]);
        assert_eq!(g.neighbors_of(1), &[0]); // tie between 0 and 2 goes to the lower index
        assert_eq!(g.neighbors_of(3), &[2]);
        assert_eq!(g.n_edges(), 4);
        let g = build(&x, &y, &s(4), &ids(4), &GraphKind::Knn { k: 1, symmetric: true }, Path::new("c")).unwrap();
        assert_eq!(g.neighbors_of(2), &[1, 3]);
    }

    #[test]
    fn knn_in_place_equals_the_edge_list_path() {
        // Ties included (a lattice), one sample in order: the in-place CSR equals the edges through
        // from_edges.
        let (mut x, mut y) = (vec![], vec![]);
        for i in 0..12 {
            for j in 0..9 {
                x.push(i as f64 * 1.5 + if j % 2 == 0 { 0.0 } else { 0.75 });
                y.push(j as f64);
            }
        }
        let pts: Vec<[f64; 2]> = x.iter().zip(&y).map(|(&a, &b)| [a, b]).collect();
        for k in [1, 4, 6, 10] {
            let edges = knn_edges(&pts, k, false).into_iter().map(|(a, b, d)| (a, b, d, 1.0)).collect();
            let want = NeighborGraph::from_edges(pts.len(), edges, true);
            let got =
                build(&x, &y, &s(x.len()), &ids(x.len()), &GraphKind::Knn { k, symmetric: false }, Path::new("c"))
                    .unwrap();
            assert_eq!(got, want, "k = {k}");
        }
    }

    #[test]
    fn samples_never_connect() {
        let x = vec![0.0, 0.1, 0.2, 0.3];
        let y = vec![0.0; 4];
        let sample: Vec<String> = ["a", "b", "a", "b"].iter().map(|s| s.to_string()).collect();
        let g = build(&x, &y, &sample, &ids(4), &GraphKind::Knn { k: 1, symmetric: false }, Path::new("c")).unwrap();
        assert_eq!(g.neighbors_of(0), &[2]);
        assert_eq!(g.neighbors_of(1), &[3]);
    }

    #[test]
    fn too_few_cells_for_k_is_an_input_error() {
        let e = build(
            &[0.0, 1.0],
            &[0.0, 0.0],
            &s(2),
            &ids(2),
            &GraphKind::Knn { k: 6, symmetric: false },
            Path::new("cells.parquet"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cells.parquet") && e.contains("sample `s`") && e.contains("at least 7"), "{e}");
    }

    #[test]
    fn nan_coordinates_are_an_input_error() {
        let e = build(
            &[0.0, f64::NAN],
            &[0.0, 0.0],
            &s(2),
            &ids(2),
            &GraphKind::Radius { radius: 1.0 },
            Path::new("cells.parquet"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("row 2") && e.contains("c1") && e.contains("finite"), "{e}");
    }

    #[test]
    fn radius_is_inclusive_and_symmetric() {
        let g = build(&[0.0, 1.0, 2.5], &[0.0; 3], &s(3), &ids(3), &GraphKind::Radius { radius: 1.5 }, Path::new("c"))
            .unwrap();
        assert_eq!(g.neighbors_of(0), &[1]);
        assert_eq!(g.neighbors_of(1), &[0, 2]);
        assert!(!g.directed);
    }

    #[test]
    fn delaunay_square_and_pruning() {
        // Unit square plus a far point: the square's diagonal (one of them) and the long edges exist.
        let x = vec![0.0, 1.0, 0.0, 1.0, 10.0];
        let y = vec![0.0, 0.0, 1.0, 1.0, 0.5];
        let g =
            build(&x, &y, &s(5), &ids(5), &GraphKind::Delaunay { prune_percentile: 100.0 }, Path::new("c")).unwrap();
        assert!(g.neighbors_of(4).contains(&1) && g.neighbors_of(4).contains(&3));
        assert_eq!(g.n_edges() % 2, 0);
        let pruned =
            build(&x, &y, &s(5), &ids(5), &GraphKind::Delaunay { prune_percentile: 50.0 }, Path::new("c")).unwrap();
        assert!(pruned.neighbors_of(4).is_empty());
        assert!(pruned.neighbors_of(0).contains(&1));
    }

    #[test]
    fn delaunay_matches_the_empty_circle_definition() {
        // 40 points in general position plus copies of four of them, in a scrambled order: an edge joins
        // two positions when some triangle through both has no position strictly inside its circumcircle
        // (brute force), and cells at one position share its neighbours and link to each other at distance 0.
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 100.0
        };
        let mut pos: Vec<[f64; 2]> = (0..40).map(|_| [next(), next()]).collect();
        let m = pos.len();
        let circumcircle_empty = |a: [f64; 2], b: [f64; 2], c: [f64; 2], pos: &[[f64; 2]]| {
            let d = 2.0 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]));
            let sq = |p: [f64; 2]| p[0] * p[0] + p[1] * p[1];
            let ux = (sq(a) * (b[1] - c[1]) + sq(b) * (c[1] - a[1]) + sq(c) * (a[1] - b[1])) / d;
            let uy = (sq(a) * (c[0] - b[0]) + sq(b) * (a[0] - c[0]) + sq(c) * (b[0] - a[0])) / d;
            let r2 = (a[0] - ux).powi(2) + (a[1] - uy).powi(2);
            pos.iter().all(|p| (p[0] - ux).powi(2) + (p[1] - uy).powi(2) >= r2 * (1.0 - 1e-9))
        };
        let mut edge = vec![vec![false; m]; m];
        for a in 0..m {
            for b in a + 1..m {
                for c in b + 1..m {
                    if circumcircle_empty(pos[a], pos[b], pos[c], &pos) {
                        for (u, v) in [(a, b), (b, c), (a, c)] {
                            edge[u][v] = true;
                            edge[v][u] = true;
                        }
                    }
                }
            }
        }
        // Cells: the positions, then copies of positions 3, 8, 8 and 21; scrambled.
        let mut cell_pos: Vec<usize> = (0..m).chain([3, 8, 8, 21]).collect();
        let n = cell_pos.len();
        let perm: Vec<usize> = (0..n).map(|i| (i * 17 + 5) % n).collect();
        cell_pos = perm.iter().map(|&i| cell_pos[i]).collect();
        pos.truncate(m);
        let (x, y): (Vec<f64>, Vec<f64>) = cell_pos.iter().map(|&p| (pos[p][0], pos[p][1])).unzip();
        let g =
            build(&x, &y, &s(n), &ids(n), &GraphKind::Delaunay { prune_percentile: 100.0 }, Path::new("c")).unwrap();
        for i in 0..n {
            let (pi, want): (usize, Vec<u32>) = (
                cell_pos[i],
                (0..n)
                    .filter(|&j| j != i && (cell_pos[j] == cell_pos[i] || edge[cell_pos[i]][cell_pos[j]]))
                    .map(|j| j as u32)
                    .collect(),
            );
            assert_eq!(g.neighbors_of(i), want.as_slice(), "cell {i} (position {pi})");
            let row = g.indptr[i] as usize..g.indptr[i + 1] as usize;
            for (&j, &d) in g.neighbors[row.clone()].iter().zip(&g.distances[row]) {
                let q = pos[cell_pos[j as usize]];
                assert_eq!(d, ((pos[pi][0] - q[0]).powi(2) + (pos[pi][1] - q[1]).powi(2)).sqrt());
            }
        }
        // Two samples (the general path through the edge list) give each sample the same graph.
        let two: Vec<String> = (0..2 * n).map(|i| if i < n { "a" } else { "b" }.to_string()).collect();
        let (x2, y2) = ([x.clone(), x.iter().map(|v| v + 1e4).collect()].concat(), [y.clone(), y].concat());
        let g2 = build(&x2, &y2, &two, &ids(2 * n), &GraphKind::Delaunay { prune_percentile: 100.0 }, Path::new("c"))
            .unwrap();
        for i in 0..n {
            let shifted: Vec<u32> = g2.neighbors_of(i + n).iter().map(|&j| j - n as u32).collect();
            assert_eq!(g2.neighbors_of(i), g.neighbors_of(i));
            assert_eq!(shifted.as_slice(), g.neighbors_of(i));
        }
    }

    #[test]
    fn delaunay_duplicates_share_neighbours() {
        let x = vec![0.0, 1.0, 0.0, 0.0];
        let y = vec![0.0, 0.0, 1.0, 0.0];
        let g =
            build(&x, &y, &s(4), &ids(4), &GraphKind::Delaunay { prune_percentile: 100.0 }, Path::new("c")).unwrap();
        assert_eq!(g.neighbors_of(3), &[0, 1, 2]);
        assert_eq!(g.neighbors_of(0), &[1, 2, 3]);
        assert!(g.neighbors_of(1).contains(&3));
    }

    #[test]
    fn grid_rings_on_a_square_lattice() {
        // 5 x 5 square lattice, k = 4: ring 1 are the 4 direct neighbours, ring 2 adds 8 more at the centre.
        let (mut x, mut y) = (vec![], vec![]);
        for i in 0..5 {
            for j in 0..5 {
                x.push(i as f64);
                y.push(j as f64);
            }
        }
        let g = build(&x, &y, &s(25), &ids(25), &GraphKind::Grid { k: 4, rings: 1 }, Path::new("c")).unwrap();
        assert_eq!(g.neighbors_of(12).len(), 4);
        // A corner's 4-NN include a diagonal at sqrt(2) > 1.3 * median (1): dropped.
        assert_eq!(g.neighbors_of(0).len(), 2);
        let g2 = build(&x, &y, &s(25), &ids(25), &GraphKind::Grid { k: 4, rings: 2 }, Path::new("c")).unwrap();
        assert_eq!(g2.neighbors_of(12).len(), 12);
    }

    #[test]
    fn components_and_regions() {
        let g = NeighborGraph::from_edges(5, vec![(0, 1, 1.0, 1.0), (3, 4, 1.0, 1.0), (1, 2, 1.0, 1.0)], true);
        assert_eq!(connected_components(&g), vec![0, 0, 0, 1, 1]);
        let r = label_regions(&g, &[true, false, true, true, true]);
        assert_eq!(r, vec![Some(0), None, Some(1), Some(2), Some(2)]);
    }

    #[test]
    fn subgraph_renumbers() {
        let g = NeighborGraph::from_edges(4, vec![(0, 2, 1.0, 1.0), (2, 0, 1.0, 1.0), (1, 3, 2.0, 1.0)], false);
        let sg = subgraph(&g, &[2, 0]);
        assert_eq!(sg.neighbors_of(0), &[1]);
        assert_eq!(sg.neighbors_of(1), &[0]);
        assert!(matches!(subgraph(&g, &[0, 1, 2, 3]), std::borrow::Cow::Borrowed(_)), "all cells: no copy");
    }
}
