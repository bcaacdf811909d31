//! Ligand-receptor communication between neighbouring cell types, per niche.
//!
//! CellPhoneDB's statistic (Efremova et al., Nat Protoc 2020), restricted to cells in contact: for sender
//! type `a` and receiver type `b` in a niche, the senders are the cells of type `a` with at least one graph
//! neighbour of type `b`, the receivers the cells of type `b` with a neighbour of type `a`. The ligand mean
//! is its mean normalised expression over the senders, the receptor mean over the receivers; a complex
//! takes the minimum over its subunits (of the mean and of the expressing fraction). The score is
//! `(ligand mean + receptor mean) / 2` when both expressing fractions exceed `threshold` (CellPhoneDB
//! 0.1), else 0. The null shuffles cell-type labels among the cells of each niche (`perms` times, each
//! permutation with its own seeded stream); `p = (1 + #{perm score >= observed}) / (1 + perms)`; rows
//! with a zero score get `p = q = 1` and do not count in the BH correction.
//!
//! Cost per permutation: O(sum over cells of distinct neighbour types x expressed pair genes).

use crate::score::item_seed;
use crate::stats::bh;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;

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
    /// Number of senders in contact.
    pub n_senders: u64,
    /// Number of receivers in contact.
    pub n_receivers: u64,
    /// Ligand mean over the senders.
    pub ligand_mean: f64,
    /// Receptor mean over the receivers.
    pub receptor_mean: f64,
    /// The score.
    pub score: f64,
    /// Permutation p-value.
    pub p: f64,
    /// BH q-value.
    pub q: f64,
}

struct ContactStats {
    count: Vec<u64>,
    sum: Vec<f64>,
    expr: Vec<u64>,
}

fn contact_stats(
    graph: &NeighborGraph,
    labels: &[u32],
    niche: &[u32],
    n_types: usize,
    n_niches: usize,
    x: &PairExpression,
) -> ContactStats {
    let t = n_types;
    let g = x.n_genes;
    let groups = n_niches * t * t;
    let mut st = ContactStats { count: vec![0; groups], sum: vec![0.0; groups * g], expr: vec![0; groups * g] };
    let mut seen = vec![false; t];
    let mut list = Vec::with_capacity(8);
    for i in 0..graph.n {
        list.clear();
        for &j in graph.neighbors_of(i) {
            let b = labels[j as usize] as usize;
            if !seen[b] {
                seen[b] = true;
                list.push(b);
            }
        }
        let a = labels[i] as usize;
        for &b in &list {
            seen[b] = false;
            let gi = (niche[i] as usize * t + a) * t + b;
            st.count[gi] += 1;
            for k in x.indptr[i]..x.indptr[i + 1] {
                let idx = gi * g + x.genes[k] as usize;
                st.sum[idx] += x.values[k];
                st.expr[idx] += 1;
            }
        }
    }
    st
}

fn side(st: &ContactStats, gi: usize, g: usize, genes: &[usize]) -> (f64, f64) {
    let c = st.count[gi] as f64;
    let mut mean = f64::INFINITY;
    let mut frac = f64::INFINITY;
    for &k in genes {
        mean = mean.min(st.sum[gi * g + k] / c);
        frac = frac.min(st.expr[gi * g + k] as f64 / c);
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
            if st.count[gs] == 0 || st.count[gr] == 0 {
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

/// Scores every pair for every (niche, sender type, receiver type) in contact. `graph` must be
/// symmetric (contacts are mutual).
#[allow(clippy::too_many_arguments)]
pub fn communicate(
    graph: &NeighborGraph,
    labels: &[u32],
    niche: &[u32],
    n_types: usize,
    n_niches: usize,
    x: &PairExpression,
    pairs: &[ResolvedPair],
    params: CommParams,
) -> Vec<CommRow> {
    let (t, g) = (n_types, x.n_genes);
    let obs = contact_stats(graph, labels, niche, t, n_niches, x);
    let mut keys = Vec::new();
    for n in 0..n_niches as u32 {
        for a in 0..t as u32 {
            for b in 0..t as u32 {
                let gs = (n as usize * t + a as usize) * t + b as usize;
                let gr = (n as usize * t + b as usize) * t + a as usize;
                if obs.count[gs] > 0 && obs.count[gr] > 0 {
                    for p in 0..pairs.len() {
                        keys.push((n, a, b, p));
                    }
                }
            }
        }
    }
    let observed = scores(&obs, &keys, pairs, t, g, params.threshold);
    // Cells of each niche, for within-niche shuffles.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_niches];
    for (i, &n) in niche.iter().enumerate() {
        members[n as usize].push(i);
    }
    let exceed: Vec<u64> = (0..params.perms as u64)
        .into_par_iter()
        .map(|r| {
            let mut rng = ChaCha8Rng::seed_from_u64(item_seed(params.seed, r));
            let mut perm = labels.to_vec();
            for m in &members {
                let mut l: Vec<u32> = m.iter().map(|&i| labels[i]).collect();
                l.shuffle(&mut rng);
                for (&i, v) in m.iter().zip(l) {
                    perm[i] = v;
                }
            }
            let st = contact_stats(graph, &perm, niche, t, n_niches, x);
            scores(&st, &keys, pairs, t, g, params.threshold)
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

    /// A 2 x 20 strip: column pairs are neighbours; left half type 0 expresses the ligand, right half
    /// type 1 expresses the receptor only next to the border.
    #[test]
    fn contact_pair_is_significant_and_thread_independent() {
        let w = 20usize;
        let n = 2 * w;
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
        let g = NeighborGraph::from_edges(n, e, false);
        // Interleave types so contacts are everywhere: type = column parity.
        let labels: Vec<u32> = (0..n).map(|i| (i % w % 2) as u32).collect();
        let mut indptr = vec![0];
        let (mut genes, mut values) = (vec![], vec![]);
        for i in 0..n {
            if labels[i] == 0 {
                genes.push(0);
                values.push(2.0);
            } else {
                genes.push(1);
                values.push(1.0);
            }
            indptr.push(genes.len());
        }
        let x = PairExpression { indptr, genes, values, n_genes: 2 };
        let pairs = vec![ResolvedPair {
            ligand: "L".into(),
            receptor: "R".into(),
            ligand_genes: vec![0],
            receptor_genes: vec![1],
        }];
        let params = CommParams { threshold: 0.1, perms: 99, seed: 3 };
        let rows = communicate(&g, &labels, &vec![0; n], 2, 1, &x, &pairs, params);
        let fwd = rows.iter().find(|r| r.sender == 0 && r.receiver == 1).unwrap();
        assert!((fwd.score - 1.5).abs() < 1e-12, "{fwd:?}");
        assert!(fwd.p <= 0.05, "{fwd:?}");
        let back = rows.iter().find(|r| r.sender == 1 && r.receiver == 0).unwrap();
        assert_eq!(back.score, 0.0);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let rows1 = one.install(|| communicate(&g, &labels, &vec![0; n], 2, 1, &x, &pairs, params));
        assert_eq!(rows, rows1);
    }
}
