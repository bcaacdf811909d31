//! The neighbour graph every spatial stage shares, in CSR form, and its file `edges.parquet`.
//!
//! Nodes are the rows of a dataset's `cells.parquet` (0-based). The graph is built by the `graph` stage
//! (crate `tmescope-spatial`) and read by the statistics, scoring and niche stages.

use crate::counts::{entry_rows, first_out_of_range};
use crate::dataset::CellTable;
use crate::parquet_io::{arc, batch_with_schema, file_footer, ParquetSink, Table, ROW_GROUP_ROWS};
use crate::provenance::Provenance;
use crate::schema::spatial::edges_schema;
use crate::{Error, Result};
use arrow::array::{Float64Array, StringArray, UInt32Array};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::Path;

/// File name of the edge list.
pub const EDGES_FILE: &str = "edges.parquet";
/// Metadata key holding the graph kind and parameters (JSON).
pub const GRAPH_KEY: &str = "tmescope.graph";

/// A weighted neighbour graph over `n` nodes, adjacency in CSR form (row `i` lists `i`'s neighbours).
#[derive(Debug, Clone, PartialEq)]
pub struct NeighborGraph {
    /// Number of nodes.
    pub n: usize,
    /// Row pointers, `n + 1` entries.
    pub indptr: Vec<u64>,
    /// Neighbour of each edge, sorted within a row.
    pub neighbors: Vec<u32>,
    /// Euclidean distance of each edge.
    pub distances: Vec<f64>,
    /// Weight of each edge (1 for unweighted graphs).
    pub weights: Vec<f64>,
    /// Whether the edge list is directed (kNN without `--symmetric`).
    pub directed: bool,
}

/// Key, in the graph description, of the [`cells_digest`] of the cells the graph was built over.
const CELLS_DIGEST: &str = "cells_digest";

/// SHA-256 (hex) of the cells' ids and samples in row order: stored in the graph description, it ties a
/// graph to the dataset it was built from (another dataset with as many cells has another digest).
fn cells_digest(cell_id: &[String], sample: &[String]) -> String {
    let mut h = Sha256::new();
    for (id, s) in cell_id.iter().zip(sample) {
        h.update(id.as_bytes());
        h.update([0x1f]);
        h.update(s.as_bytes());
        h.update([0x1e]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `m` weights of 1 (an unweighted graph's), written on the rayon pool: the pages of a large vector are
/// then touched by every thread instead of one.
pub fn unit_weights(m: usize) -> Vec<f64> {
    let mut w = Vec::new();
    w.par_extend(rayon::iter::repeat_n(1.0, m));
    w
}

/// The row pointers of edges `(src[k], dst[k])` over `n` nodes (every index below `n`) when they are
/// sorted by source, then destination, without a repeated pair: the CSR order [`NeighborGraph::from_edges`]
/// would give them. `None` otherwise. The order is checked in parallel.
fn sorted_row_pointers(n: usize, src: &[u32], dst: &[u32]) -> Option<Vec<u64>> {
    let in_order =
        src.par_windows(2).zip(dst.par_windows(2)).all(|(s, d)| s[0] < s[1] || (s[0] == s[1] && d[0] < d[1]));
    if !in_order {
        return None;
    }
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0);
    for (k, &s) in src.iter().enumerate() {
        // Rows up to `s` end before edge `k`.
        while indptr.len() <= s as usize {
            indptr.push(k as u64);
        }
    }
    indptr.resize(n + 1, src.len() as u64);
    Some(indptr)
}

impl NeighborGraph {
    /// Builds the graph from `(src, dst, distance, weight)` edges; duplicates are kept once (the first
    /// given). O(edges): a counting sort by source, then each row sorted by destination (both stable, so
    /// the order is that of a stable sort by `(src, dst)`).
    pub fn from_edges(n: usize, edges: Vec<(u32, u32, f64, f64)>, directed: bool) -> Self {
        let mut start = vec![0usize; n + 1];
        for e in &edges {
            start[e.0 as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut next = start[..n].to_vec();
        let mut rows: Vec<(u32, f64, f64)> = vec![(0, 0.0, 0.0); edges.len()];
        for (s, d, dist, w) in edges {
            let p = &mut next[s as usize];
            rows[*p] = (d, dist, w);
            *p += 1;
        }
        let mut g = NeighborGraph {
            n,
            indptr: Vec::with_capacity(n + 1),
            neighbors: Vec::with_capacity(rows.len()),
            distances: Vec::with_capacity(rows.len()),
            weights: Vec::with_capacity(rows.len()),
            directed,
        };
        g.indptr.push(0);
        for i in 0..n {
            let row = &mut rows[start[i]..start[i + 1]];
            row.sort_by_key(|e| e.0);
            for (k, &(d, dist, w)) in row.iter().enumerate() {
                if k == 0 || row[k - 1].0 != d {
                    g.neighbors.push(d);
                    g.distances.push(dist);
                    g.weights.push(w);
                }
            }
            g.indptr.push(g.neighbors.len() as u64);
        }
        g
    }

    /// The disjoint union of `graphs`: node `i` of graph `g` becomes node `i + (nodes of graphs before g)`,
    /// so per-sample graphs stack into one without an edge between samples. Directed if any input is.
    pub fn stacked(graphs: &[NeighborGraph]) -> Self {
        let n: usize = graphs.iter().map(|g| g.n).sum();
        let mut out = NeighborGraph {
            n,
            indptr: Vec::with_capacity(n + 1),
            neighbors: Vec::with_capacity(graphs.iter().map(NeighborGraph::n_edges).sum()),
            distances: Vec::new(),
            weights: Vec::new(),
            directed: graphs.iter().any(|g| g.directed),
        };
        out.indptr.push(0);
        let mut offset = 0u32;
        for g in graphs {
            let base = out.neighbors.len() as u64;
            out.indptr.extend(g.indptr[1..].iter().map(|p| p + base));
            out.neighbors.extend(g.neighbors.iter().map(|j| j + offset));
            out.distances.extend_from_slice(&g.distances);
            out.weights.extend_from_slice(&g.weights);
            offset += g.n as u32;
        }
        out
    }

    /// Number of stored edges.
    pub fn n_edges(&self) -> usize {
        self.neighbors.len()
    }

    /// Neighbours of node `i`.
    #[inline]
    pub fn neighbors_of(&self, i: usize) -> &[u32] {
        &self.neighbors[self.indptr[i] as usize..self.indptr[i + 1] as usize]
    }

    /// Edge weights of node `i`, aligned with [`NeighborGraph::neighbors_of`].
    #[inline]
    pub fn weights_of(&self, i: usize) -> &[f64] {
        &self.weights[self.indptr[i] as usize..self.indptr[i + 1] as usize]
    }

    /// Writes `edges.parquet` for the graph over `cells`: the sample of each source node per edge, and as
    /// metadata the graph description with `directed`, `n_nodes` and the [`cells_digest`] of `cells` (which
    /// [`NeighborGraph::read`] checks). The rows are built and encoded a few row groups at a time, in
    /// parallel ([`ParquetSink::write_row_groups`]), so the memory beyond the graph stays bounded and no
    /// column outgrows Arrow's 32-bit string offsets, however many edges there are.
    pub fn write(
        &self,
        path: &Path,
        cells: &CellTable,
        description: &serde_json::Value,
        prov: &Provenance,
    ) -> Result<()> {
        let mut desc = description.clone();
        desc["directed"] = serde_json::Value::Bool(self.directed);
        desc["n_nodes"] = serde_json::json!(self.n);
        desc[CELLS_DIGEST] = serde_json::json!(cells_digest(&cells.cell_id, &cells.sample));
        let schema = edges_schema();
        let mut sink = ParquetSink::create(path, schema.clone(), prov, &[(GRAPH_KEY.to_string(), desc.to_string())])?;
        let m = self.n_edges();
        sink.write_row_groups(m.div_ceil(ROW_GROUP_ROWS), |g| {
            let rows = g * ROW_GROUP_ROWS..((g + 1) * ROW_GROUP_ROWS).min(m);
            let src = entry_rows(&self.indptr, rows.clone());
            batch_with_schema(
                schema.clone(),
                vec![
                    arc(StringArray::from_iter_values(src.iter().map(|&s| cells.sample[s as usize].as_str()))),
                    arc(UInt32Array::from(src)),
                    arc(UInt32Array::from(self.neighbors[rows.clone()].to_vec())),
                    arc(Float64Array::from(self.distances[rows.clone()].to_vec())),
                    arc(Float64Array::from(self.weights[rows].to_vec())),
                ],
            )
        })?;
        sink.finish()
    }

    /// Reads `edges.parquet` for the dataset whose cells are `cells`. Returns the graph and its description.
    /// A graph built from another dataset is refused: by its number of nodes, and, when its description
    /// holds the [`cells_digest`] of the cells it was built over (as `tmescope graph` writes it), by that.
    pub fn read(path: &Path, cells: &CellTable) -> Result<(Self, serde_json::Value)> {
        let n = cells.len();
        let (m, metadata) = file_footer(path)?;
        let desc: serde_json::Value =
            metadata.get(GRAPH_KEY).and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| {
                Error::file(
                    path,
                    format!("no `{GRAPH_KEY}` metadata: expected an edges.parquet written by `tmescope graph`"),
                )
            })?;
        if let Some(m) = desc.get("n_nodes").and_then(|v| v.as_u64()) {
            if m as usize != n {
                return Err(Error::file(
                    path,
                    format!("graph has {m} nodes but the dataset has {n} cells: was it built from another dataset?"),
                ));
            }
        }
        if let Some(stored) = desc.get(CELLS_DIGEST).and_then(|v| v.as_str()) {
            if stored != cells_digest(&cells.cell_id, &cells.sample) {
                return Err(Error::file(
                    path,
                    format!(
                        "graph was built from another dataset: the ids or samples of its {n} cells differ from \
                         the dataset's (`{CELLS_DIGEST}` in its metadata): rebuild it with `tmescope graph` on \
                         this dataset"
                    ),
                ));
            }
        }
        // The columns are appended batch by batch (one copy, while the next batch is decoded) to vectors
        // reserved from the footer's row count, capped so that a corrupt footer cannot ask for more than
        // address space (reserved pages cost no memory until written). The per-edge `sample` column is not
        // needed to rebuild the graph and is not decoded.
        let m = m.min(1 << 27);
        let (mut src, mut dst) = (Vec::with_capacity(m), Vec::with_capacity(m));
        let (mut dist, mut w) = (Vec::with_capacity(m), Vec::with_capacity(m));
        Table::stream(path, &["src", "dst", "distance", "weight"], |t| {
            src.extend_from_slice(&t.u32_buffer("src")?);
            dst.extend_from_slice(&t.u32_buffer("dst")?);
            t.extend_f64("distance", &mut dist)?;
            t.extend_f64("weight", &mut w)
        })?;
        if let Some(bad) = first_out_of_range(&src, n).or_else(|| first_out_of_range(&dst, n)) {
            return Err(Error::input(path, "columns `src`/`dst`", format!("node {bad} but the dataset has {n} cells")));
        }
        let directed = desc.get("directed").and_then(|v| v.as_bool()).unwrap_or(false);
        // The rows `tmescope graph` writes are already in CSR order: they are taken as they are.
        let g = match sorted_row_pointers(n, &src, &dst) {
            Some(indptr) => NeighborGraph { n, indptr, neighbors: dst, distances: dist, weights: w, directed },
            None => {
                let edges = (0..src.len()).map(|k| (src[k], dst[k], dist[k], w[k])).collect();
                NeighborGraph::from_edges(n, edges, directed)
            }
        };
        Ok((g, desc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_graphs_offset_nodes_without_crossing() {
        let a = NeighborGraph::from_edges(2, vec![(0, 1, 1.0, 1.0), (1, 0, 1.0, 1.0)], false);
        let b = NeighborGraph::from_edges(3, vec![(0, 2, 2.0, 0.5), (2, 1, 3.0, 1.0)], true);
        let s = NeighborGraph::stacked(&[a, b]);
        assert_eq!(s.n, 5);
        assert!(s.directed);
        assert_eq!(s.neighbors_of(0), &[1]);
        assert_eq!(s.neighbors_of(2), &[4]);
        assert_eq!(s.neighbors_of(3), &[] as &[u32]);
        assert_eq!(s.neighbors_of(4), &[3]);
        assert_eq!(s.distances, vec![1.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.weights, vec![1.0, 1.0, 0.5, 1.0]);
    }

    #[test]
    fn from_edges_sorts_rows_and_keeps_the_first_duplicate() {
        let edges = vec![
            (2, 0, 1.0, 1.0),
            (0, 3, 2.0, 1.0),
            (0, 1, 3.0, 1.0),
            (2, 0, 9.0, 0.5),
            (3, 2, 4.0, 1.0),
            (0, 3, 8.0, 1.0),
            (0, 2, 5.0, 1.0),
        ];
        let g = NeighborGraph::from_edges(5, edges.clone(), true);
        // The order of a stable sort by (src, dst), then the first of each (src, dst) kept.
        let mut want = edges;
        want.sort_by_key(|e| (e.0, e.1));
        want.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        assert_eq!(g.indptr, vec![0, 3, 3, 4, 5, 5]);
        assert_eq!(g.neighbors, want.iter().map(|e| e.1).collect::<Vec<_>>());
        assert_eq!(g.distances, want.iter().map(|e| e.2).collect::<Vec<_>>());
        assert_eq!(g.distances, vec![3.0, 5.0, 2.0, 1.0, 4.0]);
        assert_eq!(g.weights, vec![1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn graph_round_trip() {
        let g = NeighborGraph::from_edges(3, vec![(0, 1, 1.0, 1.0), (1, 0, 1.0, 1.0), (2, 1, 2.0, 0.5)], true);
        assert_eq!(g.neighbors_of(2), &[1]);
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("edges.parquet");
        let cells = |ids: &[&str]| CellTable {
            cell_id: ids.iter().map(|s| s.to_string()).collect(),
            sample: vec!["s".to_string(); ids.len()],
            x: vec![0.0; ids.len()],
            y: vec![0.0; ids.len()],
            z: None,
            extra: vec![],
        };
        let built = cells(&["a", "b", "c"]);
        g.write(&p, &built, &serde_json::json!({"kind": "knn"}), &Provenance::new("graph", serde_json::json!({})))
            .unwrap();
        let columns = crate::parquet_io::first_row_group_columns(&p);
        let codecs: Vec<String> =
            columns.iter().map(|c| format!("{}:{}", c.column_path().string(), c.compression())).collect();
        assert_eq!(
            codecs,
            ["sample:ZSTD(ZstdLevel(1))", "src:SNAPPY", "dst:SNAPPY", "distance:SNAPPY", "weight:ZSTD(ZstdLevel(1))"]
        );
        let delta: Vec<bool> =
            columns.iter().map(|c| c.encodings().any(|e| e == parquet::basic::Encoding::DELTA_BINARY_PACKED)).collect();
        assert_eq!(delta, [false, true, true, false, false]);
        let (back, desc) = NeighborGraph::read(&p, &built).unwrap();
        assert_eq!(back, g);
        assert_eq!(desc["kind"], "knn");
        let e = NeighborGraph::read(&p, &cells(&["a", "b", "c", "d"])).unwrap_err().to_string();
        assert!(e.contains("3 nodes but the dataset has 4 cells"), "{e}");
        // As many cells, other ids (or the same ids in another order): another dataset.
        for other in [cells(&["a", "b", "x"]), cells(&["b", "a", "c"])] {
            let e = NeighborGraph::read(&p, &other).unwrap_err().to_string();
            assert!(e.contains("edges.parquet") && e.contains("built from another dataset"), "{e}");
        }
        assert_ne!(cells_digest(&["ab".into()], &["c".into()]), cells_digest(&["a".into()], &["bc".into()]));
    }

    #[test]
    fn sorted_edges_are_taken_as_rows_and_others_are_sorted() {
        // Sorted, with empty rows at the start, the middle and the end: the rows of `from_edges`.
        let edges = vec![(1, 0, 1.0, 1.0), (1, 3, 2.0, 1.0), (3, 1, 3.0, 0.5), (4, 2, 4.0, 1.0)];
        let g = NeighborGraph::from_edges(6, edges.clone(), true);
        let src: Vec<u32> = edges.iter().map(|e| e.0).collect();
        let dst: Vec<u32> = edges.iter().map(|e| e.1).collect();
        assert_eq!(sorted_row_pointers(6, &src, &dst), Some(g.indptr.clone()));
        assert_eq!(g.indptr, vec![0, 0, 2, 2, 3, 4, 4]);
        assert_eq!(sorted_row_pointers(3, &[], &[]), Some(vec![0, 0, 0, 0]));
        // Out of order by source or by destination, or a repeated pair: sorted by `from_edges` instead.
        assert_eq!(sorted_row_pointers(6, &[1, 0], &[0, 1]), None);
        assert_eq!(sorted_row_pointers(6, &[1, 1], &[3, 0]), None);
        assert_eq!(sorted_row_pointers(6, &[1, 1], &[3, 3]), None);
        // Read back, a file written out of order gives the graph of its edges sorted.
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("edges.parquet");
        let cells = CellTable {
            cell_id: (0..6).map(|i| i.to_string()).collect(),
            sample: vec!["s".to_string(); 6],
            x: vec![0.0; 6],
            y: vec![0.0; 6],
            z: None,
            extra: vec![],
        };
        let shuffled = [3, 0, 2, 1].map(|k| edges[k]);
        let batch = batch_with_schema(
            edges_schema(),
            vec![
                arc(StringArray::from(vec!["s"; 4])),
                arc(UInt32Array::from(shuffled.iter().map(|e| e.0).collect::<Vec<_>>())),
                arc(UInt32Array::from(shuffled.iter().map(|e| e.1).collect::<Vec<_>>())),
                arc(Float64Array::from(shuffled.iter().map(|e| e.2).collect::<Vec<_>>())),
                arc(Float64Array::from(shuffled.iter().map(|e| e.3).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let desc = serde_json::json!({"kind": "knn", "directed": true, "n_nodes": 6}).to_string();
        crate::parquet_io::write_batch(
            &p,
            &batch,
            &Provenance::new("graph", serde_json::json!({})),
            &[(GRAPH_KEY.to_string(), desc)],
        )
        .unwrap();
        assert_eq!(NeighborGraph::read(&p, &cells).unwrap().0, g);
    }
}
