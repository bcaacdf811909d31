//! Clustering of neighbourhood features into niches: k-means++ with restarts, a diagonal Gaussian
//! mixture fitted by EM, and the choice of k by stability across seeds.
//!
//! - k-means: k-means++ seeding (Arthur & Vassilvitskii, SODA 2007), then Lloyd iterations with Hamerly's
//!   bounds (SDM 2010: the same labels, most distances skipped once the centroids settle); `restarts`
//!   independent seeds, the lowest within-cluster sum of squares wins. O(iterations x n x k x d) at worst.
//! - Gaussian mixture with diagonal covariances, initialised from k-means, EM until the mean
//!   log-likelihood changes by less than `1e-5` (a variance floor `1e-6` keeps components proper).
//! - Automatic k (the idea of CellCharter, Varrone et al., Nat Genet 2024): for each k in a range, cluster
//!   with several seeds; the stability of k is the mean adjusted Rand index between the solutions at k and
//!   those at k - 1 and k + 1; the most stable interior k wins (ties: the smaller k).
//!
//! Every random choice uses its own ChaCha8 stream seeded from `(seed, restart)`; partial sums are
//! reduced in a fixed chunk order, so results do not depend on the number of threads. Labels are
//! renumbered by decreasing cluster size (ties by centroid order) so niche 0 is the largest.

use crate::score::item_seed;
use crate::stats::adjusted_rand_index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tmescope_core::graph::NeighborGraph;

const CHUNK: usize = 8_192;

/// Points in row-major order (`n` rows of `d` features).
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    /// The values, `n * d`.
    pub x: &'a [f64],
    /// Number of features per point.
    pub d: usize,
}

impl Points<'_> {
    /// Number of points.
    pub fn n(&self) -> usize {
        self.x.len().checked_div(self.d).unwrap_or(0)
    }
    #[inline]
    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// Squared Euclidean distance, summed in 8 independent lanes (the compiler vectorises them; a single running
/// sum cannot be reordered) and then pairwise, so the result does not depend on the machine.
fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    const L: usize = 8;
    let mut acc = [0.0f64; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..L {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// Assigns every point to its nearest centroid (row-major `k x d`).
pub fn assign(points: Points, centroids: &[f64]) -> Vec<u32> {
    let d = points.d;
    (0..points.n()).into_par_iter().map(|i| nearest_two(centroids, d, points.row(i)).0).collect()
}

/// A fitted k-means model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Centroids, row-major `k x d`.
    pub centroids: Vec<f64>,
    /// Labels of the fitted points.
    pub labels: Vec<u32>,
    /// Within-cluster sum of squares.
    pub inertia: f64,
}

fn kmeans_once(points: Points, k: usize, seed: u64, max_iter: usize) -> KMeans {
    let (n, d) = (points.n(), points.d);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centroids.extend_from_slice(points.row(first));
    let mut dmin: Vec<f64> = (0..n).into_par_iter().map(|i| sq_dist(points.row(i), points.row(first))).collect();
    for _ in 1..k {
        let total: f64 = dmin.iter().sum();
        let pick = if total > 0.0 {
            let mut t = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, &v) in dmin.iter().enumerate() {
                if t < v {
                    pick = i;
                    break;
                }
                t -= v;
            }
            pick
        } else {
            rng.random_range(0..n)
        };
        let c = points.row(pick).to_vec();
        dmin.par_iter_mut().enumerate().for_each(|(i, v)| *v = v.min(sq_dist(points.row(i), &c)));
        centroids.extend_from_slice(&c);
    }
    lloyd(points, centroids, max_iter)
}

/// The nearest and second-nearest squared distances from `p` to the centroids (row-major `k x d`), with
/// the nearest's index (ties: the lower index).
fn nearest_two(c: &[f64], d: usize, p: &[f64]) -> (u32, f64, f64) {
    let mut best = (0u32, f64::INFINITY, f64::INFINITY);
    for j in 0..c.len() / d {
        let dist = sq_dist(&c[j * d..(j + 1) * d], p);
        if dist < best.1 {
            best = (j as u32, dist, best.1);
        } else if dist < best.2 {
            best.2 = dist;
        }
    }
    best
}

/// Lloyd's iterations from `centroids` until no label changes (at most `max_iter` assignment passes),
/// with Hamerly's bounds (SDM 2010) to skip the distances that cannot change a label: each point keeps an
/// upper bound on the distance to its centroid and a lower bound on the distance to any other, both moved
/// by how far the centroids moved; a point is re-examined only when its upper bound reaches the larger of
/// its lower bound and half the distance from its centroid to the nearest other one. The labels are
/// Lloyd's (a point is skipped only when its centroid is strictly nearest), at a fraction of the cost once
/// the centroids settle.
fn lloyd(points: Points, mut centroids: Vec<f64>, max_iter: usize) -> KMeans {
    let (n, d) = (points.n(), points.d);
    let k = centroids.len() / d;
    // (label, upper bound, lower bound) of every point.
    let mut state: Vec<(u32, f64, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (j, d1, d2) = nearest_two(&centroids, d, points.row(i));
            (j, d1.sqrt(), d2.sqrt())
        })
        .collect();
    let mut labels: Vec<u32> = state.iter().map(|s| s.0).collect();
    for _ in 1..max_iter {
        let old = centroids.clone();
        update_means(points, &labels, k, &mut centroids);
        let moved: Vec<f64> =
            (0..k).map(|j| sq_dist(&old[j * d..(j + 1) * d], &centroids[j * d..(j + 1) * d]).sqrt()).collect();
        // The two largest moves: a point's other centroids moved at most the largest one that is not its own.
        let far = (0..k).fold(0, |b, j| if moved[j] > moved[b] { j } else { b });
        let far2 = (0..k).filter(|&j| j != far).map(|j| moved[j]).fold(0.0, f64::max);
        let half: Vec<f64> = (0..k)
            .map(|j| {
                let c = &centroids[j * d..(j + 1) * d];
                let m = (0..k)
                    .filter(|&o| o != j)
                    .map(|o| sq_dist(c, &centroids[o * d..(o + 1) * d]))
                    .fold(f64::INFINITY, f64::min);
                0.5 * m.sqrt()
            })
            .collect();
        let c = &centroids;
        let changed = state
            .par_iter_mut()
            .enumerate()
            .map(|(i, (a, u, l))| {
                let j = *a as usize;
                *u += moved[j];
                *l -= if j == far { far2 } else { moved[far] };
                let bound = half[j].max(*l);
                if *u < bound {
                    return false;
                }
                let p = points.row(i);
                *u = sq_dist(&c[j * d..(j + 1) * d], p).sqrt();
                if *u < bound {
                    return false;
                }
                let (b, d1, d2) = nearest_two(c, d, p);
                (*u, *l) = (d1.sqrt(), d2.sqrt());
                std::mem::replace(a, b) != b
            })
            .filter(|&c| c)
            .count();
        if changed == 0 {
            break;
        }
        labels.iter_mut().zip(&state).for_each(|(l, s)| *l = s.0);
    }
    let inertia = (0..n).map(|i| sq_dist(&centroids[labels[i] as usize * d..][..d], points.row(i))).sum();
    KMeans { centroids, labels, inertia }
}

/// Renumbers `labels` (`< k`) by decreasing cluster size (ties by old id); returns the old id of each new
/// one (`order[new] = old`).
fn renumber_by_size(labels: &mut [u32], k: usize) -> Vec<usize> {
    let mut size = vec![0usize; k];
    for &l in labels.iter() {
        size[l as usize] += 1;
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| size[b].cmp(&size[a]).then(a.cmp(&b)));
    let mut inv = vec![0u32; k];
    for (new, &old) in order.iter().enumerate() {
        inv[old] = new as u32;
    }
    labels.iter_mut().for_each(|l| *l = inv[*l as usize]);
    order
}

/// k-means++ with `restarts` seeds; the solution with the lowest inertia, labels renumbered by size.
pub fn kmeans(points: Points, k: usize, seed: u64, restarts: usize, max_iter: usize) -> KMeans {
    let k = k.clamp(1, points.n().max(1));
    let runs: Vec<KMeans> = (0..restarts.max(1) as u64)
        .into_par_iter()
        .map(|r| kmeans_once(points, k, item_seed(seed, r), max_iter))
        .collect();
    let mut best = runs.into_iter().reduce(|a, b| if b.inertia < a.inertia { b } else { a }).expect("at least one run");
    let order = renumber_by_size(&mut best.labels, k);
    let d = points.d;
    best.centroids = order.iter().flat_map(|&old| best.centroids[old * d..(old + 1) * d].iter().copied()).collect();
    best
}

/// A diagonal Gaussian mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct Gmm {
    /// Mixing weights, `k`.
    pub weights: Vec<f64>,
    /// Means, row-major `k x d`.
    pub means: Vec<f64>,
    /// Variances, row-major `k x d`.
    pub variances: Vec<f64>,
    /// Mean log-likelihood per point at convergence.
    pub mean_loglik: f64,
}

impl Gmm {
    fn log_resp(&self, p: &[f64], out: &mut [f64]) -> f64 {
        let d = p.len();
        let k = self.weights.len();
        for j in 0..k {
            let mut l = self.weights[j].max(1e-300).ln();
            for t in 0..d {
                let v = self.variances[j * d + t];
                let diff = p[t] - self.means[j * d + t];
                l -= 0.5 * ((2.0 * std::f64::consts::PI * v).ln() + diff * diff / v);
            }
            out[j] = l;
        }
        let m = out.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + out.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
        out.iter_mut().for_each(|l| *l -= lse);
        lse
    }

    /// The most probable component of each point.
    pub fn predict(&self, points: Points) -> Vec<u32> {
        let k = self.weights.len();
        (0..points.n())
            .into_par_iter()
            .map(|i| {
                let mut r = vec![0.0; k];
                self.log_resp(points.row(i), &mut r);
                (0..k).fold(0usize, |b, j| if r[j] > r[b] { j } else { b }) as u32
            })
            .collect()
    }
}

/// Fits a diagonal Gaussian mixture with `k` components, initialised from k-means.
pub fn gmm(points: Points, k: usize, seed: u64, restarts: usize, max_iter: usize) -> Gmm {
    let (n, d) = (points.n(), points.d);
    let km = kmeans(points, k, seed, restarts, max_iter);
    let k = km.centroids.len() / d.max(1);
    let floor = 1e-6;
    let mut g = Gmm {
        weights: vec![0.0; k],
        means: km.centroids.clone(),
        variances: vec![0.0; k * d],
        mean_loglik: f64::NEG_INFINITY,
    };
    let mut cnt = vec![0.0; k];
    for i in 0..n {
        let l = km.labels[i] as usize;
        cnt[l] += 1.0;
        for t in 0..d {
            let diff = points.row(i)[t] - g.means[l * d + t];
            g.variances[l * d + t] += diff * diff;
        }
    }
    for j in 0..k {
        g.weights[j] = (cnt[j] / n as f64).max(1e-6);
        for t in 0..d {
            g.variances[j * d + t] = (g.variances[j * d + t] / cnt[j].max(1.0)).max(floor);
        }
    }
    for _ in 0..max_iter {
        let partial: Vec<(Vec<f64>, Vec<f64>, Vec<f64>, f64)> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let (mut nk, mut s1, mut s2, mut ll) = (vec![0.0; k], vec![0.0; k * d], vec![0.0; k * d], 0.0);
                let mut r = vec![0.0; k];
                for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    let p = points.row(i);
                    ll += g.log_resp(p, &mut r);
                    for j in 0..k {
                        let w = r[j].exp();
                        nk[j] += w;
                        for t in 0..d {
                            s1[j * d + t] += w * p[t];
                            s2[j * d + t] += w * p[t] * p[t];
                        }
                    }
                }
                (nk, s1, s2, ll)
            })
            .collect();
        let (mut nk, mut s1, mut s2, mut ll) = (vec![0.0; k], vec![0.0; k * d], vec![0.0; k * d], 0.0);
        for (a, b, c, l) in partial {
            nk.iter_mut().zip(a).for_each(|(x, y)| *x += y);
            s1.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            s2.iter_mut().zip(c).for_each(|(x, y)| *x += y);
            ll += l;
        }
        let mean_ll = ll / n as f64;
        for j in 0..k {
            if nk[j] < 1e-9 {
                continue;
            }
            g.weights[j] = nk[j] / n as f64;
            for t in 0..d {
                let m = s1[j * d + t] / nk[j];
                g.means[j * d + t] = m;
                g.variances[j * d + t] = (s2[j * d + t] / nk[j] - m * m).max(floor);
            }
        }
        let done = (mean_ll - g.mean_loglik).abs() < 1e-5;
        g.mean_loglik = mean_ll;
        if done {
            break;
        }
    }
    g
}

/// The stability curve of the automatic choice of k.
#[derive(Debug, Clone, PartialEq)]
pub struct KChoice {
    /// The chosen k.
    pub k: usize,
    /// `(k, stability)` for every interior k tried.
    pub stability: Vec<(usize, f64)>,
}

/// Chooses k in `[k_min, k_max]` by stability across `n_seeds` seeds (see the module docs).
pub fn choose_k(points: Points, k_min: usize, k_max: usize, n_seeds: usize, seed: u64) -> KChoice {
    let k_min = k_min.max(2);
    let k_max = k_max.max(k_min + 2);
    let n_seeds = n_seeds.max(2);
    let ks: Vec<usize> = (k_min - 1..=k_max + 1).collect();
    let sols: Vec<Vec<Vec<u32>>> = ks
        .iter()
        .map(|&k| {
            (0..n_seeds as u64).map(|r| kmeans(points, k, item_seed(seed ^ k as u64, r), 1, 100).labels).collect()
        })
        .collect();
    let mut stability = Vec::new();
    for (pos, &k) in ks.iter().enumerate() {
        if k < k_min || k > k_max {
            continue;
        }
        let mut s = 0.0;
        let mut m = 0.0;
        for other in [pos - 1, pos + 1] {
            for a in &sols[pos] {
                for b in &sols[other] {
                    s += adjusted_rand_index(a, b);
                    m += 1.0;
                }
            }
        }
        stability.push((k, s / m));
    }
    let k = stability.iter().fold((k_min, f64::NEG_INFINITY), |b, &(k, s)| if s > b.1 + 1e-12 { (k, s) } else { b }).0;
    KChoice { k, stability }
}

/// Sets `means` (row-major `k x d`) to the mean of the points of each cluster; an empty cluster keeps its
/// row. Partial sums are taken over fixed chunks of points in parallel and added in chunk order, so the
/// result does not depend on the number of threads.
fn update_means(points: Points, labels: &[u32], k: usize, means: &mut [f64]) {
    let (n, d) = (labels.len(), points.d);
    let partial: Vec<(Vec<f64>, Vec<u64>)> = (0..n.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut s = vec![0.0; k * d];
            let mut m = vec![0u64; k];
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                let l = labels[i] as usize;
                m[l] += 1;
                for (a, b) in s[l * d..(l + 1) * d].iter_mut().zip(points.row(i)) {
                    *a += b;
                }
            }
            (s, m)
        })
        .collect();
    let mut s = vec![0.0; k * d];
    let mut m = vec![0u64; k];
    for (ps, pm) in partial {
        s.iter_mut().zip(ps).for_each(|(a, b)| *a += b);
        m.iter_mut().zip(pm).for_each(|(a, b)| *a += b);
    }
    for j in 0..k {
        if m[j] > 0 {
            for t in 0..d {
                means[j * d + t] = s[j * d + t] / m[j] as f64;
            }
        }
    }
}

/// Spatially regularised labels: a hidden Markov random field with a Potts prior on the neighbour graph,
/// solved by iterated conditional modes (Besag 1986; the HMRF of Zhu et al., Nat Biotechnol 2018, and
/// BayesSpace, Zhao et al., Nat Biotechnol 2021). Each round gives every cell the cluster `k` minimising
///
/// `||x_i - mu_k||^2 / s2 + beta * (1 - w_ik / w_i)`
///
/// where `mu_k` are the cluster means, `s2` the mean squared distance of the cells to their own cluster's
/// mean at the start, `w_i` the number of other cells within `hops` steps of the cell on `graph` and
/// `w_ik` how many of them are labelled `k`: with `hops = 1` the neighbours vote, with more steps a wider
/// neighbourhood does. Cells without neighbours keep the data term only. All cells are
/// updated at once from the previous round's labels (so the result does not depend on the thread count),
/// the means are recomputed, and rounds stop when no label changes or after `rounds`; the clusters are then
/// renumbered by decreasing size. `beta = 0` returns `labels` unchanged.
pub fn smooth_labels(points: Points, labels: &[u32], k: usize, graph: &NeighborGraph, smooth: &Smoothing) -> Vec<u32> {
    let mut labels = labels.to_vec();
    if smooth.beta <= 0.0 || k < 2 || labels.is_empty() {
        return labels;
    }
    let (n, d) = (labels.len(), points.d);
    let mut mu = vec![0.0; k * d];
    update_means(points, &labels, k, &mut mu);
    let s2 = labels
        .par_iter()
        .enumerate()
        .map(|(i, &l)| sq_dist(points.row(i), &mu[l as usize * d..(l as usize + 1) * d]))
        .sum::<f64>()
        / n as f64;
    let s2 = if s2 > 0.0 { s2 } else { 1.0 };
    let (ball_ptr, ball) = balls(graph, n, smooth.hops.max(1));
    for _ in 0..smooth.rounds {
        let next: Vec<u32> = (0..n)
            .into_par_iter()
            .map_init(
                || vec![0usize; k],
                |votes, i| {
                    let members = &ball[ball_ptr[i]..ball_ptr[i + 1]];
                    votes.fill(0);
                    for &j in members {
                        votes[labels[j as usize] as usize] += 1;
                    }
                    let total = members.len().max(1) as f64;
                    let x = points.row(i);
                    let mut best = (labels[i], f64::INFINITY);
                    for (c, &m) in votes.iter().enumerate() {
                        let e = sq_dist(x, &mu[c * d..(c + 1) * d]) / s2 + smooth.beta * (1.0 - m as f64 / total);
                        if e < best.1 {
                            best = (c as u32, e);
                        }
                    }
                    best.0
                },
            )
            .collect();
        let changed = next.iter().zip(&labels).any(|(a, b)| a != b);
        labels = next;
        if !changed {
            break;
        }
        update_means(points, &labels, k, &mut mu);
    }
    renumber_by_size(&mut labels, k);
    labels
}

/// The cells within `hops` steps of each of the `n` cells of `graph` (breadth-first, the cell itself left
/// out), as row pointers and members. Built in parallel over blocks of cells; each parallel job marks the
/// cells reached from cell `i` with `i` in one array, reused for all of its blocks.
fn balls(graph: &NeighborGraph, n: usize, hops: usize) -> (Vec<usize>, Vec<u32>) {
    const BLOCK: usize = 1 << 14;
    let blocks: Vec<(Vec<usize>, Vec<u32>)> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map_init(
            || vec![usize::MAX; n],
            |seen, b| {
                let (mut len, mut members, mut frontier) = (Vec::new(), Vec::new(), Vec::new());
                for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                    let first = members.len();
                    frontier.clear();
                    frontier.push(i as u32);
                    seen[i] = i;
                    for _ in 0..hops {
                        let start = members.len();
                        for f in std::mem::take(&mut frontier) {
                            for &j in graph.neighbors_of(f as usize) {
                                if seen[j as usize] != i {
                                    seen[j as usize] = i;
                                    members.push(j);
                                }
                            }
                        }
                        frontier.extend_from_slice(&members[start..]);
                    }
                    len.push(members.len() - first);
                }
                (len, members)
            },
        )
        .collect();
    let mut ptr = Vec::with_capacity(n + 1);
    ptr.push(0);
    let mut all = Vec::with_capacity(blocks.iter().map(|b| b.1.len()).sum());
    for (len, members) in blocks {
        for l in len {
            ptr.push(ptr.last().copied().unwrap_or(0) + l);
        }
        all.extend_from_slice(&members);
    }
    (ptr, all)
}

/// Settings of [`smooth_labels`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Smoothing {
    /// Strength of the Potts prior (0: no smoothing).
    pub beta: f64,
    /// Graph steps that define the voting neighbourhood (1: the neighbours).
    pub hops: usize,
    /// Maximum rounds.
    pub rounds: usize,
}

/// Indices of an evenly spread, seeded subsample of at most `max` of `n` items (all when `n <= max`), sorted.
pub fn subsample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        return (0..n).collect();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(item_seed(seed, 0x5ab));
    let mut v = rand::seq::index::sample(&mut rng, n, max).into_vec();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (Vec<f64>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let centres = [[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]];
        let mut x = vec![];
        let mut truth = vec![];
        for (c, ctr) in centres.iter().enumerate() {
            for _ in 0..100 + c * 20 {
                x.push(ctr[0] + rng.random::<f64>() - 0.5);
                x.push(ctr[1] + rng.random::<f64>() - 0.5);
                truth.push(c as u32);
            }
        }
        (x, truth)
    }

    #[test]
    fn bounded_lloyd_gives_the_labels_of_plain_lloyd() {
        // Overlapping uniform noise in 5 dimensions: many iterations, many points near a boundary.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, d, k) = (3_000, 5, 7);
        let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>()).collect();
        let p = Points { x: &x, d };
        let start: Vec<f64> = x[..k * d].to_vec();
        let fit = lloyd(p, start.clone(), 300);
        // Plain Lloyd: every distance in every pass.
        let mut c = start;
        let mut labels = assign(p, &c);
        let mut passes = 1;
        loop {
            update_means(p, &labels, k, &mut c);
            let next = assign(p, &c);
            passes += 1;
            if next == labels {
                break;
            }
            labels = next;
        }
        assert!(passes > 10, "the test needs a long run, got {passes} passes");
        assert_eq!(fit.labels, labels);
        assert_eq!(fit.centroids, c);
        let inertia: f64 = (0..n).map(|i| sq_dist(&c[labels[i] as usize * d..][..d], p.row(i))).sum();
        assert_eq!(fit.inertia, inertia);
    }

    #[test]
    fn kmeans_and_gmm_recover_blobs() {
        let (x, truth) = blobs();
        let p = Points { x: &x, d: 2 };
        let km = kmeans(p, 3, 42, 4, 100);
        assert!(adjusted_rand_index(&km.labels, &truth) > 0.99);
        // Largest cluster first.
        assert_eq!(km.labels[truth.len() - 1], 0);
        let g = gmm(p, 3, 42, 2, 100);
        assert!(adjusted_rand_index(&g.predict(p), &truth) > 0.99);
        assert_eq!(kmeans(p, 3, 42, 4, 100), km, "seeded");
    }

    #[test]
    fn smoothing_relabels_isolated_cells_and_keeps_the_border() {
        // A 20 x 20 grid, left half one niche (feature 0), right half another (feature 1); a few cells of
        // the left half look like the right (0.6) and are labelled so by their nearest mean.
        let side = 20;
        let idx = |r: usize, c: usize| (r * side + c) as u32;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut x = vec![];
        let mut truth = vec![];
        for r in 0..side {
            for c in 0..side {
                let left = c < side / 2;
                let odd = c + 1 < side / 2 && (r * 7 + c * 3) % 11 == 0;
                let noise = 0.5 * (rng.random::<f64>() - 0.5);
                x.push(if odd {
                    0.7
                } else if left {
                    noise
                } else {
                    1.0 + noise
                });
                truth.push(u32::from(!left));
            }
        }
        let mut edges = vec![];
        for r in 0..side {
            for c in 0..side {
                for (dr, dc) in [(0i64, 1i64), (1, 0), (0, -1), (-1, 0)] {
                    let (rr, cc) = (r as i64 + dr, c as i64 + dc);
                    if (0..side as i64).contains(&rr) && (0..side as i64).contains(&cc) {
                        edges.push((idx(r, c), idx(rr as usize, cc as usize), 1.0, 1.0));
                    }
                }
            }
        }
        let g = NeighborGraph::from_edges(side * side, edges, false);
        let p = Points { x: &x, d: 1 };
        let noisy = assign(p, &[0.0, 1.0]);
        let wrong = noisy.iter().zip(&truth).filter(|(a, b)| a != b).count();
        assert!(wrong >= 10, "the test needs mislabelled cells, found {wrong}");
        let off = Smoothing { beta: 0.0, hops: 1, rounds: 10 };
        assert_eq!(smooth_labels(p, &noisy, 2, &g, &off), noisy);
        for hops in [1, 3] {
            let s = Smoothing { beta: 30.0, hops, rounds: 10 };
            let smoothed = smooth_labels(p, &noisy, 2, &g, &s);
            assert_eq!(smoothed, truth, "hops {hops}");
        }
        // The result is renumbered by size: niche 0 is the largest.
        let lone = NeighborGraph::from_edges(4, vec![], false);
        let s = Smoothing { beta: 1.0, hops: 1, rounds: 10 };
        let q = Points { x: &[0.0, 1.0, 1.0, 1.0], d: 1 };
        assert_eq!(smooth_labels(q, &[0, 1, 1, 1], 2, &lone, &s), vec![1, 0, 0, 0]);
        // A strong prior on an unstructured feature does not erase the straight border either.
        let s = Smoothing { beta: 30.0, hops: 3, rounds: 50 };
        assert_eq!(smooth_labels(p, &truth, 2, &g, &s), truth);
    }

    #[test]
    fn auto_k_finds_three_blobs() {
        let (x, _) = blobs();
        let c = choose_k(Points { x: &x, d: 2 }, 2, 6, 4, 3);
        // Stability rises sharply from k = 2 to k = 3; with three equal-sized blobs the k +/- 1 criterion
        // may prefer 3 or 4 (a split blob is stable too), as in CellCharter's curves.
        let s = |k: usize| c.stability.iter().find(|x| x.0 == k).unwrap().1;
        assert!(s(3) > s(2) + 0.3, "{:?}", c.stability);
        assert!((3..=4).contains(&c.k), "{:?}", c.stability);
    }
}
