//! Neighbourhood enrichment and the interaction matrix.
//!
//! The observed count `observed[a, b]` is the number of graph edges from a cell labelled `a` to a cell
//! labelled `b` (squidpy's `nhood_enrichment` counts the same CSR entries). The null shuffles the labels among
//! the cells (call this once per sample so labels never move between samples) and recounts, `n_perms` times;
//! `z = (observed - mean_perm) / sd_perm` with the population sd, as squidpy does (Palla et al., Nat Methods
//! 2022). Where `sd_perm = 0` (e.g. every cell has the same label) squidpy returns NaN; we return `z = 0`
//! and set `sd_zero` (scverse/squidpy#426). On directed kNN graphs `z` is asymmetric, which confuses users
//! (scverse/squidpy#557), so `z_symmetric` scores the unordered pair `{a, b}` as well.
//!
//! Permutation `p` shuffles the labels with its own stream, `PermutationRng::new(seed, p)`
//! (`tmescope_core::permute`: xoshiro256++, two Fisher-Yates steps per 64-bit draw), so every permutation is
//! the same whatever the number of threads (squidpy's results depended on it, scverse/squidpy#1232). The
//! permutations run on the graph renumbered in breadth-first order, so that neighbours are close in
//! memory (a million cells' labels do not fit in a core's cache; the walk then mostly hits it), eight at a
//! time: their labels, one byte each, are packed into one `u64` per cell, so one pass over the edge list and
//! one load per neighbour count all eight, into per-permutation tables indexed by `(a << S) | b` for labels
//! of `S` = 4, 6 or 8 bits (up to 16, 64 or 256 labels; more labels are counted one permutation at a time).
//!
//! The analytic expectation is the exact mean of the permutation null: an edge joins two distinct cells,
//! so `E[observed[a, b]] = E * n_a (n_b - [a = b]) / (N (N - 1))` for `E` edges and `n_a` cells of type `a`.
//!
//! Cost: O(n_perms * (N + E)) time; memory: 16 bytes per cell and eight count tables per thread, plus
//! `n_perms * T^2` counts.

use crate::locality::LocalGraph;
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;
use tmescope_core::permute::{shuffle, PermutationRng};

/// Result of [`nhood_enrichment`] for `n_types` labels; matrices are row-major `n_types x n_types`
/// (row = source label `a`, column = neighbour label `b`).
#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    /// Number of labels.
    pub n_types: usize,
    /// Observed edge counts.
    pub observed: Vec<u64>,
    /// Analytic expectation (exact permutation mean).
    pub expected: Vec<f64>,
    /// Mean of the permuted counts.
    pub perm_mean: Vec<f64>,
    /// Population standard deviation of the permuted counts.
    pub perm_sd: Vec<f64>,
    /// `(observed - perm_mean) / perm_sd`, or 0 where `perm_sd = 0`.
    pub z: Vec<f64>,
    /// Whether `perm_sd` is 0 (z set to 0 by definition).
    pub sd_zero: Vec<bool>,
    /// z of the unordered pair: counts `observed[a, b] + observed[b, a]` (a != b) against the same sum in
    /// each permutation; equals `z` on symmetric graphs.
    pub z_symmetric: Vec<f64>,
    /// Two-sided permutation p-value `(1 + #{|perm - mean| >= |observed - mean|}) / (n_perms + 1)`.
    pub p: Vec<f64>,
    /// Number of permutations.
    pub n_perms: usize,
}

/// Permutations counted together in one pass over the graph: their labels (one byte each) are packed into
/// one `u64` per cell, so the edge list is streamed once per batch and one load fetches a neighbour's label
/// in every permutation of the batch.
const LANES: usize = 8;

/// Counts, for each lane `b`, the edges by (source, neighbour) label into `tables[b][(source << S) |
/// neighbour]` (`TL = 1 << 2S` entries, so the masked index needs no bounds check).
fn count_packed<const S: usize, const TL: usize>(g: &NeighborGraph, packed: &[u64], tables: &mut [[u32; TL]]) {
    tables.iter_mut().for_each(|t| t.fill(0));
    let Ok(tables): Result<&mut [[u32; TL]; LANES], _> = tables.try_into() else { unreachable!("one table per lane") };
    for (w, &li) in g.indptr.windows(2).zip(packed) {
        let src: [usize; LANES] = std::array::from_fn(|b| (((li >> (8 * b)) & 0xff) as usize) << S);
        for &j in &g.neighbors[w[0] as usize..w[1] as usize] {
            let lj = packed[j as usize];
            for (b, table) in tables.iter_mut().enumerate() {
                table[(src[b] | ((lj >> (8 * b)) & 0xff) as usize) & (TL - 1)] += 1;
            }
        }
    }
}

/// Every permutation's counts (`n_perms * t * t`, in permutation order) for at most 256 labels of width
/// `S` bits: batches of [`LANES`] permutations run in parallel, each thread reusing its buffers.
fn permuted_counts_packed<const S: usize, const TL: usize>(
    g: &NeighborGraph,
    labels: &[u8],
    t: usize,
    n_perms: usize,
    seed: u64,
    progress: &(dyn Fn() + Sync),
) -> Vec<u32> {
    let (n, tt) = (labels.len(), t * t);
    let mut perms = vec![0u32; n_perms * tt];
    perms.par_chunks_mut((LANES * tt).max(1)).enumerate().for_each_init(
        || (vec![0u8; LANES * n], vec![0u64; n], vec![[0u32; TL]; LANES]),
        |(shuffled, packed, tables), (batch, out)| {
            let lanes = out.len() / tt;
            // Each permutation shuffles a compact copy (8x fewer cache lines for the random swaps than
            // shuffling in the packed buffer); lanes past the last permutation are counted but not read.
            for (lane, one) in shuffled.chunks_exact_mut(n.max(1)).take(lanes).enumerate() {
                one.copy_from_slice(labels);
                shuffle(one, &mut PermutationRng::new(seed, (batch * LANES + lane) as u64));
            }
            let lane_labels: [&[u8]; LANES] = std::array::from_fn(|b| &shuffled[b * n..(b + 1) * n]);
            for (i, p) in packed.iter_mut().enumerate() {
                *p = u64::from_le_bytes(std::array::from_fn(|b| lane_labels[b][i]));
            }
            count_packed::<S, TL>(g, packed, tables);
            for (o, table) in out.chunks_exact_mut(tt).zip(tables.iter()) {
                for (a, row) in o.chunks_exact_mut(t).enumerate() {
                    row.copy_from_slice(&table[a << S..(a << S) + t]);
                }
            }
            (0..lanes).for_each(|_| progress());
        },
    );
    perms
}

/// Every permutation's counts for more than 256 labels: one permutation at a time.
fn permuted_counts_wide(
    g: &NeighborGraph,
    labels: &[u32],
    t: usize,
    n_perms: usize,
    seed: u64,
    progress: &(dyn Fn() + Sync),
) -> Vec<u32> {
    let tt = t * t;
    let mut perms = vec![0u32; n_perms * tt];
    perms.par_chunks_mut(tt.max(1)).enumerate().for_each_init(
        || labels.to_vec(),
        |one, (p, out)| {
            one.copy_from_slice(labels);
            shuffle(one, &mut PermutationRng::new(seed, p as u64));
            for (o, c) in out.iter_mut().zip(interaction_counts(g, one, t)) {
                *o = c as u32;
            }
            progress();
        },
    );
    perms
}

/// The interaction matrix: `counts[a * n_types + b]` = number of edges from label `a` to label `b`
/// (squidpy's `interaction_matrix` with unit weights). Labels must be `< n_types`.
pub fn interaction_counts(g: &NeighborGraph, labels: &[u32], n_types: usize) -> Vec<u64> {
    let mut out = vec![0u64; n_types * n_types];
    for i in 0..g.n {
        let row = labels[i] as usize * n_types;
        for &j in g.neighbors_of(i) {
            out[row + labels[j as usize] as usize] += 1;
        }
    }
    out
}

/// Row-normalised interaction matrix (each row sums to 1; rows without edges stay 0).
pub fn row_normalise(counts: &[u64], n_types: usize) -> Vec<f64> {
    let mut out = vec![0.0; counts.len()];
    for a in 0..n_types {
        let row = &counts[a * n_types..(a + 1) * n_types];
        let s: u64 = row.iter().sum();
        if s > 0 {
            for b in 0..n_types {
                out[a * n_types + b] = row[b] as f64 / s as f64;
            }
        }
    }
    out
}

/// Neighbourhood enrichment of `labels` (values `< n_types`, one per node of `g`) with `n_perms` label
/// permutations under `seed`. `progress` is called once per finished permutation.
pub fn nhood_enrichment(
    g: &NeighborGraph,
    labels: &[u32],
    n_types: usize,
    n_perms: usize,
    seed: u64,
    progress: &(dyn Fn() + Sync),
) -> Enrichment {
    let t = n_types;
    let tt = t * t;
    let observed = interaction_counts(g, labels, t);
    // Permutations shuffle the labels of the breadth-first renumbered graph (a uniform permutation either
    // way), whose neighbours are close in memory.
    let local = LocalGraph::new(g);
    let local_labels: Vec<u32> = local.renumber(labels);
    let bytes = || local_labels.iter().map(|&x| x as u8).collect::<Vec<u8>>();
    let lg = &local.graph;
    let perms = match t {
        0..=16 => permuted_counts_packed::<4, 256>(lg, &bytes(), t, n_perms, seed, progress),
        17..=64 => permuted_counts_packed::<6, 4096>(lg, &bytes(), t, n_perms, seed, progress),
        65..=256 => permuted_counts_packed::<8, 65536>(lg, &bytes(), t, n_perms, seed, progress),
        _ => permuted_counts_wide(lg, &local_labels, t, n_perms, seed, progress),
    };
    let n = g.n as f64;
    let e = g.n_edges() as f64;
    let mut n_of = vec![0f64; t];
    for &l in labels {
        n_of[l as usize] += 1.0;
    }
    let mut expected = vec![0.0; tt];
    if g.n > 1 {
        for a in 0..t {
            for b in 0..t {
                let nb = n_of[b] - if a == b { 1.0 } else { 0.0 };
                expected[a * t + b] = e * n_of[a] * nb / (n * (n - 1.0));
            }
        }
    }
    let stats = |cell: &dyn Fn(usize) -> f64, obs: f64| -> (f64, f64, f64, bool, f64) {
        if n_perms == 0 {
            return (f64::NAN, f64::NAN, f64::NAN, false, f64::NAN);
        }
        let mean = (0..n_perms).map(cell).sum::<f64>() / n_perms as f64;
        let var = (0..n_perms).map(|p| (cell(p) - mean).powi(2)).sum::<f64>() / n_perms as f64;
        let sd = var.sqrt();
        // Counts are integers: a spread below 1e-9 is round-off of an exactly constant null.
        let zero = sd < 1e-9;
        let z = if zero { 0.0 } else { (obs - mean) / sd };
        let dev = (obs - mean).abs();
        let extreme = (0..n_perms).filter(|&p| (cell(p) - mean).abs() >= dev - 1e-9).count();
        let p = (1 + extreme) as f64 / (n_perms + 1) as f64;
        (mean, sd, z, zero, p)
    };
    let mut res = Enrichment {
        n_types: t,
        observed: observed.clone(),
        expected,
        perm_mean: vec![0.0; tt],
        perm_sd: vec![0.0; tt],
        z: vec![0.0; tt],
        sd_zero: vec![false; tt],
        z_symmetric: vec![0.0; tt],
        p: vec![0.0; tt],
        n_perms,
    };
    for a in 0..t {
        for b in 0..t {
            let k = a * t + b;
            let (mean, sd, z, zero, p) = stats(&|pi| perms[pi * tt + k] as f64, observed[k] as f64);
            res.perm_mean[k] = mean;
            res.perm_sd[k] = sd;
            res.z[k] = z;
            res.sd_zero[k] = zero;
            res.p[k] = p;
            let kt = b * t + a;
            res.z_symmetric[k] = if a == b {
                z
            } else {
                stats(&|pi| (perms[pi * tt + k] + perms[pi * tt + kt]) as f64, (observed[k] + observed[kt]) as f64).2
            };
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(n: usize) -> NeighborGraph {
        let mut e = vec![];
        for i in 0..n - 1 {
            e.push((i as u32, i as u32 + 1, 1.0, 1.0));
            e.push((i as u32 + 1, i as u32, 1.0, 1.0));
        }
        NeighborGraph::from_edges(n, e, false)
    }

    #[test]
    fn counts_and_row_normalisation() {
        let g = path(4);
        let c = interaction_counts(&g, &[0, 0, 1, 1], 2);
        assert_eq!(c, vec![2, 1, 1, 2]);
        assert_eq!(row_normalise(&c, 2), vec![2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0]);
    }

    #[test]
    fn segregated_labels_are_enriched_and_thread_count_does_not_matter() {
        let g = path(40);
        let labels: Vec<u32> = (0..40).map(|i| (i >= 20) as u32).collect();
        let e = nhood_enrichment(&g, &labels, 2, 200, 7, &|| ());
        assert!(e.z[0] > 3.0 && e.z[1] < -3.0, "{:?}", e.z);
        assert_eq!(e.observed, vec![38, 1, 1, 38]);
        // Exact permutation mean: 78 edges * 20 * 19 / (40 * 39) = 19.
        assert!((e.expected[0] - 19.0).abs() < 1e-12);
        assert!((e.perm_mean[0] - 19.0).abs() < 1.5);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let e1 = one.install(|| nhood_enrichment(&g, &labels, 2, 200, 7, &|| ()));
        assert_eq!(e, e1);
        assert!(e.p[0] < 0.01);
    }

    #[test]
    fn batched_permutations_equal_one_at_a_time() {
        // Permutation p is PermutationRng::new(seed, p)'s shuffle of the breadth-first renumbered labels,
        // whatever the batching into lanes and the label width (4, 6 or 8 bits, or unpacked above 256
        // labels); 11 permutations leave a partly filled last batch.
        let n = 400;
        let g = path(n);
        for t in [3usize, 20, 70, 300] {
            let labels: Vec<u32> = (0..n).map(|i| (i * 7 % t) as u32).collect();
            let e = nhood_enrichment(&g, &labels, t, 11, 11, &|| ());
            let local = LocalGraph::new(&g);
            let mut counts = vec![];
            for p in 0..11u64 {
                let mut l: Vec<u32> = local.renumber(&labels);
                shuffle(&mut l, &mut PermutationRng::new(11, p));
                counts.push(interaction_counts(&local.graph, &l, t));
            }
            for k in 0..t * t {
                let mean = counts.iter().map(|c| c[k] as f64).sum::<f64>() / 11.0;
                assert!((e.perm_mean[k] - mean).abs() < 1e-12, "{t} types, {k}: {} vs {mean}", e.perm_mean[k]);
            }
        }
    }

    #[test]
    fn no_labels_or_no_cells_give_empty_results() {
        let empty = NeighborGraph::from_edges(0, vec![], false);
        let e = nhood_enrichment(&empty, &[], 0, 10, 1, &|| ());
        assert!(e.z.is_empty() && e.observed.is_empty());
        let e = nhood_enrichment(&empty, &[], 2, 10, 1, &|| ());
        assert_eq!(e.observed, vec![0; 4]);
        assert!(e.sd_zero.iter().all(|&z| z));
    }

    #[test]
    fn one_label_gives_defined_zero_z() {
        let g = path(5);
        let e = nhood_enrichment(&g, &[0; 5], 1, 50, 1, &|| ());
        assert_eq!(e.z, vec![0.0]);
        assert_eq!(e.sd_zero, vec![true]);
        assert_eq!(e.observed, vec![8]);
        assert!((e.expected[0] - 8.0).abs() < 1e-12);
    }

    #[test]
    fn directed_graph_symmetric_z() {
        let g = NeighborGraph::from_edges(
            4,
            vec![(0, 2, 1.0, 1.0), (1, 2, 1.0, 1.0), (2, 3, 1.0, 1.0), (3, 0, 1.0, 1.0)],
            true,
        );
        let e = nhood_enrichment(&g, &[0, 0, 1, 1], 2, 100, 3, &|| ());
        assert_eq!(e.z_symmetric[1], e.z_symmetric[2]);
    }
}
