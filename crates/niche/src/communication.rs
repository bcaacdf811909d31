//! Ligand-receptor communication between neighbouring cell types, per niche.
//!
//! CellPhoneDB's statistic (Efremova et al., Nat Protoc 2020), restricted to cells in contact, for
//! labelled cells and, with type weights, for spots whose types come from deconvolution.
//!
//! Every cell or spot `i` has a composition `pi_i(t)`: one-hot for a labelled cell, the deconvolved
//! proportions for a spot. For sender type `a` and receiver type `b` in a niche, the *sender weight* of
//! `i` is `s_i = pi_i(a) * max_{j in N(i)} pi_j(b)` (how much of `i` is type `a`, times how strongly its
//! neighbourhood holds type `b`), the *receiver weight* `r_j = pi_j(b) * max_{i in N(j)} pi_i(a)`. The
//! ligand mean is the `s`-weighted mean of its normalised expression over the senders of the niche,
//! `sum_i s_i L_i / sum_i s_i`, the receptor mean the `r`-weighted mean over the receivers; the expressing
//! fractions are weighted the same way (`sum_i s_i [L_i > 0] / sum_i s_i`); a complex takes the minimum
//! over its subunits (of the mean and of the fraction). The score is `(ligand mean + receptor mean) / 2`
//! when both fractions exceed `threshold` (CellPhoneDB 0.1), else 0.
//!
//! With one-hot compositions the weights are 0 or 1 and this is exactly CellPhoneDB's statistic over the
//! type-`a` cells with a type-`b` neighbour (and the type-`b` cells with a type-`a` neighbour). With
//! proportions, a spot's ligand counts come from all its types: the weighting attributes them to type `a`
//! in proportion to its abundance (as spatial scores on deconvolved spots do, e.g. the cell-type-weighted
//! signalling of COMMOT, Cang et al., Nat Methods 2023, and CellChat's spatial mode, Jin et al., Nat
//! Protoc 2025), not to type-specific expression; contacts inside a spot are not counted (only graph
//! neighbours, as for cells).
//!
//! The null shuffles the compositions (labels, or whole proportion vectors) among the cells/spots of each
//! niche, expression staying in place (`perms` times, each permutation with its own seeded stream);
//! `p = (1 + #{perm score >= observed}) / (1 + perms)`; rows with a zero score get `p = q = 1` and do not
//! count in the BH correction.
//!
//! Cost per permutation: O(sum over cells of types held x distinct neighbour types x expressed pair genes).

use crate::stats::bh;
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;
use tmescope_core::permute::{shuffle, PermutationRng};
use tmescope_spatial::locality::LocalGraph;

/// Sparse expression of the genes used by the pairs: CSR over cells, local gene ids.
#[derive(Debug, Clone, Default)]
pub struct PairExpression {
    /// Row pointers, `n + 1`.
    pub indptr: Vec<usize>,
    /// Local gene ids.
    pub genes: Vec<u32>,
    /// Normalised expression values.
    pub values: Vec<f64>,
    /// Number of local genes.
    pub n_genes: usize,
}

/// Cell-type composition of every cell or spot: CSR rows of `(cell type id, weight)`, only positive
/// weights. A labelled cell holds one type with weight 1; a spot its deconvolved proportions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Composition {
    /// Row pointers, `n + 1`.
    pub indptr: Vec<usize>,
    /// Cell type ids.
    pub types: Vec<u32>,
    /// Weights (> 0).
    pub weights: Vec<f64>,
    /// Number of cell types.
    pub n_types: usize,
}

impl Composition {
    /// One-hot compositions from labels (`labels[i] < n_types`).
    pub fn from_labels(labels: &[u32], n_types: usize) -> Self {
        Composition {
            indptr: (0..=labels.len()).collect(),
            types: labels.to_vec(),
            weights: vec![1.0; labels.len()],
            n_types,
        }
    }

    /// Compositions from `(row, type, weight)` entries over `n` rows; non-finite or non-positive weights
    /// are left out. Out-of-range rows or types are ignored (callers build them from validated ids).
    pub fn from_entries(n: usize, n_types: usize, entries: &[(usize, u32, f64)]) -> Self {
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for &(i, t, w) in entries {
            if i < n && (t as usize) < n_types && w.is_finite() && w > 0.0 {
                rows[i].push((t, w));
            }
        }
        let mut c = Composition { indptr: vec![0], types: vec![], weights: vec![], n_types };
        for mut r in rows {
            r.sort_by_key(|e| e.0);
            for (t, w) in r {
                c.types.push(t);
                c.weights.push(w);
            }
            c.indptr.push(c.types.len());
        }
        c
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let r = self.indptr[i]..self.indptr[i + 1];
        self.types[r.clone()].iter().map(|&t| t as usize).zip(self.weights[r].iter().copied())
    }
}

/// A pair resolved to local gene ids; each side lists its subunits.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPair {
    /// Ligand name as given.
    pub ligand: String,
    /// Receptor name as given.
    pub receptor: String,
    /// Ligand subunits (local ids).
    pub ligand_genes: Vec<usize>,
    /// Receptor subunits (local ids).
    pub receptor_genes: Vec<usize>,
}

/// One row of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct CommRow {
    /// Niche id.
    pub niche: u32,
    /// Sender cell type id.
    pub sender: u32,
    /// Receiver cell type id.
    pub receiver: u32,
    /// Pair index.
    pub pair: usize,
    /// Number of senders in contact (cells or spots with a positive sender weight).
    pub n_senders: u64,
    /// Number of receivers in contact (with a positive receiver weight).
    pub n_receivers: u64,
    /// Ligand mean over the senders (weighted).
    pub ligand_mean: f64,
    /// Receptor mean over the receivers (weighted).
    pub receptor_mean: f64,
    /// The score.
    pub score: f64,
    /// Permutation p-value.
    pub p: f64,
    /// BH q-value.
    pub q: f64,
}

/// Per (niche, a, b) group: members with a positive weight, the weight sum, and per local gene
/// `[weighted expression sum, weighted expressing count]` (side by side: one cache line per update).
struct ContactStats {
    count: Vec<u64>,
    weight: Vec<f64>,
    genes: Vec<[f64; 2]>,
}

/// Marks a cell without a type in [`Composition::one_hot`].
const NO_TYPE: u8 = u8::MAX;

/// Most cell types the label path handles (labels are bytes, one value marks "no type").
const MAX_LABEL_TYPES: usize = NO_TYPE as usize;

impl Composition {
    /// The type of every row when each row holds at most one type with weight 1 (labelled cells) and there
    /// are at most [`MAX_LABEL_TYPES`] types, with [`NO_TYPE`] for empty rows; `None` otherwise (proportions,
    /// or more types: the general path).
    fn one_hot(&self) -> Option<Vec<u8>> {
        if self.n_types > MAX_LABEL_TYPES {
            return None;
        }
        (0..self.len())
            .map(|i| match self.indptr[i + 1] - self.indptr[i] {
                0 => Some(NO_TYPE),
                1 if self.weights[self.indptr[i]] == 1.0 => Some(self.types[self.indptr[i]] as u8),
                _ => None,
            })
            .collect()
    }
}

impl ContactStats {
    fn zeros(n_niches: usize, t: usize, g: usize) -> Self {
        let groups = n_niches * t * t;
        ContactStats { count: vec![0; groups], weight: vec![0.0; groups], genes: vec![[0.0; 2]; groups * g] }
    }

    /// Sets every sum back to zero (buffers are reused across permutations).
    fn clear(&mut self) {
        self.count.fill(0);
        self.weight.fill(0.0);
        self.genes.fill([0.0; 2]);
    }

    /// Adds cell `i` as a sender of type `a` with weight `w` towards neighbour type `b`.
    #[inline]
    fn add(&mut self, gi: usize, w: f64, i: usize, x: &PairExpression) {
        let g = x.n_genes;
        self.count[gi] += 1;
        self.weight[gi] += w;
        for k in x.indptr[i]..x.indptr[i + 1] {
            let e = &mut self.genes[gi * g + x.genes[k] as usize];
            e[0] += w * x.values[k];
            e[1] += w;
        }
    }
}

/// [`contact_stats`] for labelled cells: `labels[i]` is the type placed at cell `i` ([`NO_TYPE`] for
/// none). The same sums in the same order as the general path with weights 1, without its indirections
/// (one byte-sized read per neighbour instead of three arrays).
fn contact_stats_labels(
    graph: &NeighborGraph,
    labels: &[u8],
    t: usize,
    niche: &[u32],
    x: &PairExpression,
    st: &mut ContactStats,
) {
    st.clear();
    let mut seen = vec![false; t];
    let mut list = Vec::with_capacity(8);
    for i in 0..graph.n {
        let a = labels[i];
        if a == NO_TYPE {
            continue;
        }
        list.clear();
        for &j in graph.neighbors_of(i) {
            let b = labels[j as usize];
            if b != NO_TYPE && !seen[b as usize] {
                seen[b as usize] = true;
                list.push(b as usize);
            }
        }
        for &b in &list {
            seen[b] = false;
            st.add((niche[i] as usize * t + a as usize) * t + b, 1.0, i, x);
        }
    }
}

/// Contact statistics with the composition of row `order[i]` placed at cell `i` (identity for the
/// observed data, a within-niche permutation for the null).
fn contact_stats(
    graph: &NeighborGraph,
    comp: &Composition,
    order: &[usize],
    niche: &[u32],
    x: &PairExpression,
    st: &mut ContactStats,
) {
    let t = comp.n_types;
    st.clear();
    // Neighbourhood maximum of each type, and the types seen, reset after each cell.
    let mut best = vec![0.0f64; t];
    let mut list = Vec::with_capacity(8);
    for i in 0..graph.n {
        list.clear();
        for &j in graph.neighbors_of(i) {
            for (b, w) in comp.row(order[j as usize]) {
                if best[b] == 0.0 {
                    list.push(b);
                }
                best[b] = best[b].max(w);
            }
        }
        for (a, pa) in comp.row(order[i]) {
            for &b in &list {
                st.add((niche[i] as usize * t + a) * t + b, pa * best[b], i, x);
            }
        }
        for &b in &list {
            best[b] = 0.0;
        }
    }
}

/// `values` with the entries of each member list shuffled among themselves (one shuffle per list, in order).
fn shuffled_within<T: Copy>(values: &[T], members: &[Vec<usize>], rng: &mut PermutationRng) -> Vec<T> {
    let mut out = values.to_vec();
    for m in members {
        let mut l: Vec<T> = m.iter().map(|&i| values[i]).collect();
        shuffle(&mut l, rng);
        for (&i, v) in m.iter().zip(l) {
            out[i] = v;
        }
    }
    out
}

fn side(st: &ContactStats, gi: usize, g: usize, genes: &[usize]) -> (f64, f64) {
    let c = st.weight[gi];
    let mut mean = f64::INFINITY;
    let mut frac = f64::INFINITY;
    for &k in genes {
        let [sum, expressing] = st.genes[gi * g + k];
        mean = mean.min(sum / c);
        frac = frac.min(expressing / c);
    }
    (mean, frac)
}

fn scores(
    st: &ContactStats,
    keys: &[(u32, u32, u32, usize)],
    pairs: &[ResolvedPair],
    t: usize,
    g: usize,
    threshold: f64,
) -> Vec<(f64, f64, f64)> {
    keys.iter()
        .map(|&(n, a, b, p)| {
            let gs = (n as usize * t + a as usize) * t + b as usize;
            let gr = (n as usize * t + b as usize) * t + a as usize;
            if st.weight[gs] <= 0.0 || st.weight[gr] <= 0.0 {
                return (0.0, 0.0, 0.0);
            }
            let (lm, lf) = side(st, gs, g, &pairs[p].ligand_genes);
            let (rm, rf) = side(st, gr, g, &pairs[p].receptor_genes);
            let s = if lf > threshold && rf > threshold { (lm + rm) / 2.0 } else { 0.0 };
            (lm, rm, s)
        })
        .collect()
}

/// Communication parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommParams {
    /// Minimum expressing fraction on each side (CellPhoneDB 0.1).
    pub threshold: f64,
    /// Number of label permutations (0 = no p-values: p and q are NaN).
    pub perms: usize,
    /// Seed.
    pub seed: u64,
}

/// Rows `order[0], order[1], ...` of the CSR matrix `(indptr, cols, vals)`.
fn csr_rows<C: Copy, V: Copy>(indptr: &[usize], cols: &[C], vals: &[V], order: &[u32]) -> (Vec<usize>, Vec<C>, Vec<V>) {
    let (mut p, mut c, mut v) = (vec![0], Vec::with_capacity(cols.len()), Vec::with_capacity(vals.len()));
    for &old in order {
        let r = indptr[old as usize]..indptr[old as usize + 1];
        c.extend_from_slice(&cols[r.clone()]);
        v.extend_from_slice(&vals[r]);
        p.push(c.len());
    }
    (p, c, v)
}

/// Scores every pair for every (niche, sender type, receiver type) in contact. `graph` must be
/// symmetric (contacts are mutual); `comp` has a row per graph node, `niche[i] < n_niches`.
///
/// Every permutation walks every edge, so the work runs on the graph renumbered breadth-first
/// ([`LocalGraph`]): a cell's neighbours are close to it in memory and their labels are read from cache.
/// The permutations shuffle the cells of each niche in that order.
pub fn communicate(
    graph: &NeighborGraph,
    comp: &Composition,
    niche: &[u32],
    n_niches: usize,
    x: &PairExpression,
    pairs: &[ResolvedPair],
    params: CommParams,
) -> Vec<CommRow> {
    // From here on, everything is in the renumbered order (the rows out are per group, not per cell).
    let local = LocalGraph::new(graph);
    let graph = &local.graph;
    let (indptr, types, weights) = csr_rows(&comp.indptr, &comp.types, &comp.weights, &local.order);
    let comp = &Composition { indptr, types, weights, n_types: comp.n_types };
    let (indptr, genes, values) = csr_rows(&x.indptr, &x.genes, &x.values, &local.order);
    let x = &PairExpression { indptr, genes, values, n_genes: x.n_genes };
    let niche = &local.renumber(niche)[..];
    let (t, g) = (comp.n_types, x.n_genes);
    let identity: Vec<usize> = (0..comp.len()).collect();
    let one_hot = comp.one_hot();
    // Cells of each niche, for within-niche shuffles.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_niches];
    for (i, &n) in niche.iter().enumerate() {
        members[n as usize].push(i);
    }
    // Contact statistics with the compositions shuffled within each niche by `rng` (none: observed).
    // Labels are shuffled as they are; proportions through the order of their rows. Either way the same
    // draws give the same permutation. `st` is the caller's buffer, reused across permutations.
    let stats_of = |rng: Option<&mut PermutationRng>, st: &mut ContactStats| match &one_hot {
        Some(labels) => {
            let placed = match rng {
                Some(rng) => shuffled_within(labels, &members, rng),
                None => labels.clone(),
            };
            contact_stats_labels(graph, &placed, t, niche, x, st)
        }
        None => {
            let order = match rng {
                Some(rng) => shuffled_within(&identity, &members, rng),
                None => identity.clone(),
            };
            contact_stats(graph, comp, &order, niche, x, st)
        }
    };
    let buffer = || ContactStats::zeros(n_niches, t, g);
    let mut obs = buffer();
    stats_of(None, &mut obs);
    let mut keys = Vec::new();
    for n in 0..n_niches as u32 {
        for a in 0..t as u32 {
            for b in 0..t as u32 {
                let gs = (n as usize * t + a as usize) * t + b as usize;
                let gr = (n as usize * t + b as usize) * t + a as usize;
                if obs.weight[gs] > 0.0 && obs.weight[gr] > 0.0 {
                    for p in 0..pairs.len() {
                        keys.push((n, a, b, p));
                    }
                }
            }
        }
    }
    let observed = scores(&obs, &keys, pairs, t, g, params.threshold);
    let exceed: Vec<u64> = (0..params.perms as u64)
        .into_par_iter()
        .map_init(buffer, |st, r| {
            let mut rng = PermutationRng::new(params.seed, r);
            stats_of(Some(&mut rng), st);
            scores(st, &keys, pairs, t, g, params.threshold)
                .iter()
                .zip(&observed)
                .map(|(s, o)| u64::from(o.2 > 0.0 && s.2 >= o.2))
                .collect::<Vec<u64>>()
        })
        .reduce(|| vec![0u64; keys.len()], |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect());
    let p: Vec<f64> = observed
        .iter()
        .zip(&exceed)
        .map(|(o, &e)| {
            if params.perms == 0 {
                f64::NAN
            } else if o.2 > 0.0 {
                (1.0 + e as f64) / (1.0 + params.perms as f64)
            } else {
                1.0
            }
        })
        .collect();
    let tested: Vec<f64> = p.iter().zip(&observed).map(|(p, o)| if o.2 > 0.0 { *p } else { f64::NAN }).collect();
    let q = bh(&tested);
    keys.iter()
        .enumerate()
        .map(|(k, &(n, a, b, pi))| {
            let gs = (n as usize * t + a as usize) * t + b as usize;
            let gr = (n as usize * t + b as usize) * t + a as usize;
            CommRow {
                niche: n,
                sender: a,
                receiver: b,
                pair: pi,
                n_senders: obs.count[gs],
                n_receivers: obs.count[gr],
                ligand_mean: observed[k].0,
                receptor_mean: observed[k].1,
                score: observed[k].2,
                p: p[k],
                q: if observed[k].2 > 0.0 {
                    q[k]
                } else if params.perms == 0 {
                    f64::NAN
                } else {
                    1.0
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one test pair: ligand `L` is gene 0, receptor `R` gene 1.
    fn ligand_receptor() -> Vec<ResolvedPair> {
        vec![ResolvedPair { ligand: "L".into(), receptor: "R".into(), ligand_genes: vec![0], receptor_genes: vec![1] }]
    }

    /// A 2 x `w` strip of cells: left-right neighbours in each row, and the rows joined column by column.
    fn strip(w: usize) -> NeighborGraph {
        let mut e = vec![];
        for r in 0..2 {
            for c in 0..w {
                let i = (r * w + c) as u32;
                if c + 1 < w {
                    e.push((i, i + 1, 1.0, 1.0));
                    e.push((i + 1, i, 1.0, 1.0));
                }
                if r == 0 {
                    e.push((i, i + w as u32, 1.0, 1.0));
                    e.push((i + w as u32, i, 1.0, 1.0));
                }
            }
        }
        NeighborGraph::from_edges(2 * w, e, false)
    }

    /// The 2 x `w` strip of [`strip`] with alternating types (type = column parity, so contacts are
    /// everywhere): type 0 cells express the ligand (gene 0) at 2, type 1 cells the receptor (gene 1) at 1.
    fn alternating_strip(w: usize) -> (NeighborGraph, Vec<u32>, PairExpression) {
        let labels: Vec<u32> = (0..2 * w).map(|i| (i % w % 2) as u32).collect();
        let values = labels.iter().map(|&l| if l == 0 { 2.0 } else { 1.0 }).collect();
        let x = PairExpression { indptr: (0..=2 * w).collect(), genes: labels.clone(), values, n_genes: 2 };
        (strip(w), labels, x)
    }

    /// A 2 x 20 strip with alternating types: every ligand-expressing cell touches receptor-expressing
    /// ones, so sender 0 -> receiver 1 scores and the reverse direction does not.
    #[test]
    fn contact_pair_is_significant_and_thread_independent() {
        let (g, labels, x) = alternating_strip(20);
        let n = labels.len();
        let pairs = ligand_receptor();
        let params = CommParams { threshold: 0.1, perms: 99, seed: 3 };
        let comp = Composition::from_labels(&labels, 2);
        let rows = communicate(&g, &comp, &vec![0; n], 1, &x, &pairs, params);
        let fwd = rows.iter().find(|r| r.sender == 0 && r.receiver == 1).unwrap();
        assert!((fwd.score - 1.5).abs() < 1e-12, "{fwd:?}");
        assert!(fwd.p <= 0.05, "{fwd:?}");
        let back = rows.iter().find(|r| r.sender == 1 && r.receiver == 0).unwrap();
        assert_eq!(back.score, 0.0);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let rows1 = one.install(|| communicate(&g, &comp, &vec![0; n], 1, &x, &pairs, params));
        assert_eq!(rows, rows1);
    }

    /// Three spots in a row, 0 - 1 - 2: spot 0 is all type A, spot 1 half A half B, spot 2 all B; gene L
    /// (the ligand) is 2, 1, 0 and gene R (the receptor) 0, 1, 3. Worked by hand in the comments.
    #[test]
    fn proportion_weights_match_the_hand_computation() {
        let g = NeighborGraph::from_edges(
            3,
            vec![(0, 1, 1.0, 1.0), (1, 0, 1.0, 1.0), (1, 2, 1.0, 1.0), (2, 1, 1.0, 1.0)],
            false,
        );
        let comp = Composition::from_entries(3, 2, &[(0, 0, 1.0), (1, 1, 0.5), (1, 0, 0.5), (2, 1, 1.0), (2, 0, 0.0)]);
        assert_eq!(comp.types, vec![0, 0, 1, 1], "sorted by type, zero weights dropped");
        let x = PairExpression {
            indptr: vec![0, 1, 3, 4],
            genes: vec![0, 0, 1, 1],
            values: vec![2.0, 1.0, 1.0, 3.0],
            n_genes: 2,
        };
        let pairs = ligand_receptor();
        let params = CommParams { threshold: 0.1, perms: 0, seed: 0 };
        let rows = communicate(&g, &comp, &[0, 0, 0], 1, &x, &pairs, params);
        let get = |a: u32, b: u32| rows.iter().find(|r| r.sender == a && r.receiver == b).unwrap();
        // A -> B. Neighbourhood maxima of B: 0.5, 1, 0.5; sender weights pi(A) * max B = 0.5, 0.5, 0:
        // ligand (0.5 * 2 + 0.5 * 1) / 1 = 1.5. Receiver weights pi(B) * max A = 0, 0.5, 0.5:
        // receptor (0.5 * 1 + 0.5 * 3) / 1 = 2. Score (1.5 + 2) / 2.
        let ab = get(0, 1);
        assert_eq!((ab.n_senders, ab.n_receivers), (2, 2));
        assert!((ab.ligand_mean - 1.5).abs() < 1e-12 && (ab.receptor_mean - 2.0).abs() < 1e-12, "{ab:?}");
        assert!((ab.score - 1.75).abs() < 1e-12, "{ab:?}");
        assert!(ab.p.is_nan() && ab.q.is_nan(), "no permutations: no p-values");
        // B -> A: senders 0, 0.5, 0.5: ligand 0.5, fraction 0.5; receivers 0.5, 0.5, 0: receptor 0.5.
        let ba = get(1, 0);
        assert!((ba.score - 0.5).abs() < 1e-12, "{ba:?}");
        // A -> A: senders 0.5, 0.5, 0 (ligand 1.5), receivers the same (receptor 0.5).
        let aa = get(0, 0);
        assert!((aa.ligand_mean - 1.5).abs() < 1e-12 && (aa.score - 1.0).abs() < 1e-12, "{aa:?}");
        // A fraction threshold above 0.5 zeroes B -> A only.
        let strict = communicate(&g, &comp, &[0, 0, 0], 1, &x, &pairs, CommParams { threshold: 0.6, ..params });
        let s = |a: u32, b: u32| strict.iter().find(|r| r.sender == a && r.receiver == b).unwrap().score;
        assert_eq!((s(1, 0), s(0, 0)), (0.0, 0.0));
        assert!((s(0, 1) - 1.75).abs() < 1e-12);
    }

    #[test]
    fn result_does_not_depend_on_the_numbering_of_the_cells() {
        // The work runs on a renumbered graph: numbering the cells differently gives the same observed
        // statistics (up to the order of additions), for labels and for mixed proportions.
        let w = 20usize;
        let n = 2 * w;
        let g = strip(w);
        let new_of = |i: usize| (i * 7) % n; // a bijection: gcd(7, 40) = 1
        let mut edges = vec![];
        for i in 0..n {
            for &j in g.neighbors_of(i) {
                edges.push((new_of(i) as u32, new_of(j as usize) as u32, 1.0, 1.0));
            }
        }
        edges.sort_by_key(|e| (e.0, e.1));
        let g2 = NeighborGraph::from_edges(n, edges, false);
        let types = |i: usize| [(i % 3) as u32, ((i + 1) % 3) as u32];
        let entries = |map: &dyn Fn(usize) -> usize| -> Vec<(usize, u32, f64)> {
            (0..n).flat_map(|i| [(map(i), types(i)[0], 0.7), (map(i), types(i)[1], 0.3)]).collect()
        };
        let expression = |map: &dyn Fn(usize) -> usize| {
            let mut rows = vec![(0u32, 0.0); n];
            for i in 0..n {
                rows[map(i)] = ((i % 2) as u32, 0.5 + i as f64);
            }
            PairExpression {
                indptr: (0..=n).collect(),
                genes: rows.iter().map(|r| r.0).collect(),
                values: rows.iter().map(|r| r.1).collect(),
                n_genes: 2,
            }
        };
        let niche = |map: &dyn Fn(usize) -> usize| {
            let mut v = vec![0u32; n];
            for i in 0..n {
                v[map(i)] = u32::from(i % w >= w / 2);
            }
            v
        };
        let params = CommParams { threshold: 0.1, perms: 0, seed: 1 };
        let same = |i: usize| i;
        for labels in [true, false] {
            let comp = |map: &dyn Fn(usize) -> usize| {
                if labels {
                    let mut l = vec![0u32; n];
                    (0..n).for_each(|i| l[map(i)] = types(i)[0]);
                    Composition::from_labels(&l, 3)
                } else {
                    Composition::from_entries(n, 3, &entries(map))
                }
            };
            let a = communicate(&g, &comp(&same), &niche(&same), 2, &expression(&same), &ligand_receptor(), params);
            let b =
                communicate(&g2, &comp(&new_of), &niche(&new_of), 2, &expression(&new_of), &ligand_receptor(), params);
            assert_eq!(a.len(), b.len());
            assert!(a.iter().any(|r| r.score > 0.0));
            for (r, q) in a.iter().zip(&b) {
                assert_eq!(
                    (r.niche, r.sender, r.receiver, r.n_senders, r.n_receivers),
                    (q.niche, q.sender, q.receiver, q.n_senders, q.n_receivers)
                );
                assert!(
                    (r.score - q.score).abs() < 1e-12 && (r.ligand_mean - q.ligand_mean).abs() < 1e-12,
                    "{r:?} {q:?}"
                );
            }
        }
    }

    #[test]
    fn label_fast_path_equals_the_general_path() {
        // Three types on a strip, two cells without a type, two niches, a permuted placement.
        let w = 15usize;
        let n = 2 * w;
        let g = strip(w);
        let entries: Vec<(usize, u32, f64)> =
            (0..n).filter(|&i| i != 4 && i != 11).map(|i| (i, (i * 7 % 3) as u32, 1.0)).collect();
        let comp = Composition::from_entries(n, 3, &entries);
        let hot = comp.one_hot().expect("one-hot");
        assert_eq!((hot[4], hot[11]), (NO_TYPE, NO_TYPE));
        let x = PairExpression {
            indptr: (0..=n).collect(),
            genes: (0..n).map(|i| (i % 2) as u32).collect(),
            values: (0..n).map(|i| 0.5 + i as f64).collect(),
            n_genes: 2,
        };
        let niche: Vec<u32> = (0..n).map(|i| u32::from(i >= w)).collect();
        let order: Vec<usize> = (0..n).rev().collect();
        let (mut general, mut fast) = (ContactStats::zeros(2, 3, 2), ContactStats::zeros(2, 3, 2));
        contact_stats(&g, &comp, &order, &niche, &x, &mut general);
        let placed: Vec<u8> = order.iter().map(|&k| hot[k]).collect();
        contact_stats_labels(&g, &placed, 3, &niche, &x, &mut fast);
        assert_eq!(general.count, fast.count);
        assert_eq!(general.weight, fast.weight);
        assert_eq!(general.genes, fast.genes);
        assert!(Composition::from_entries(1, 2, &[(0, 0, 0.5), (0, 1, 0.5)]).one_hot().is_none());
        // More types than a byte label holds: the general path.
        assert!(Composition::from_labels(&[255], 256).one_hot().is_none());
        assert!(Composition::from_labels(&[254], 255).one_hot().is_some());
    }

    #[test]
    fn one_hot_proportions_equal_labels_and_mixed_spots_keep_the_signal() {
        // The strip of the first test, as proportions: one-hot gives exactly the label result.
        let (g, labels, x) = alternating_strip(20);
        let n = labels.len();
        let pairs = ligand_receptor();
        let params = CommParams { threshold: 0.1, perms: 99, seed: 5 };
        let niche = vec![0; n];
        let by_labels = communicate(&g, &Composition::from_labels(&labels, 2), &niche, 1, &x, &pairs, params);
        let entries: Vec<(usize, u32, f64)> = labels.iter().enumerate().map(|(i, &l)| (i, l, 1.0)).collect();
        let one_hot = communicate(&g, &Composition::from_entries(n, 2, &entries), &niche, 1, &x, &pairs, params);
        assert_eq!(by_labels, one_hot);
        // Spots 80/20 mixtures: the ligand stays with the sender-rich spots, so A -> B stays significant.
        let mixed: Vec<(usize, u32, f64)> =
            labels.iter().enumerate().flat_map(|(i, &l)| [(i, l, 0.8), (i, 1 - l, 0.2)]).collect();
        let comp = Composition::from_entries(n, 2, &mixed);
        let rows = communicate(&g, &comp, &niche, 1, &x, &pairs, params);
        let ab = rows.iter().find(|r| r.sender == 0 && r.receiver == 1).unwrap();
        // Sender weights 0.8 * 0.8 on A-rich spots (ligand 2), 0.2 * 0.8 on B-rich ones (no ligand).
        assert!((ab.ligand_mean - 2.0 * 0.64 / 0.8).abs() < 1e-12, "{ab:?}");
        assert!(ab.p <= 0.05, "{ab:?}");
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(rows, one.install(|| communicate(&g, &comp, &niche, 1, &x, &pairs, params)));
    }
}
