//! The tissue layout of one section: cell positions, regions, cell types and layout-driven states.
//!
//! Algorithm (all distances in micrometres):
//! 1. Cells sit on a jittered hexagonal lattice (spacing from the area per cell), so densities are
//!    even and no two cells overlap.
//! 2. Tumour nests: a field `f(p) = max_k g_k(p) * (1 + 0.2 n(p))` where `g_k` is a Gaussian bump around
//!    nest centre `k` with a random angular wobble (harmonics 2..4) and `n` a sum of random plane waves
//!    (ragged borders). The `tumor_fraction * N` cells with the highest field are tumour, so the tumour
//!    fraction is exactly as asked; each belongs to the nest whose bump is highest.
//! 3. Vessels are dropped uniformly at `vessel_density`; inside nests only a fraction is kept, so nest
//!    cores are far from vessels. Cells within `vessel_radius` of a vessel centre are endothelial, in
//!    the following `pericyte_ring` pericytes.
//! 4. Tertiary lymphoid structures are discs centred far from tumour; the myeloid-suppressive zone is
//!    the `myeloid_fraction * N` stromal cells closest (with a wobble) to centres on the invasive margin.
//! 5. The remaining stroma is labelled by distance to the nearest tumour cell: invasive margin, immune-
//!    excluded band (around excluded nests only), desmoplastic stroma, distal stroma; tumour cells farther
//!    than `hypoxic_core_distance` from every vessel form the hypoxic core.
//! 6. Each cell's type is drawn from its region's composition (adjusted by the therapy effect and the
//!    patient's T-cell level); states follow from the layout (hypoxia from the vessel distance,
//!    exhaustion of CD8 T cells in tumour, TGF-beta CAFs near tumour, low MHC-I in the evasive clone,
//!    checkpoint ligands on tumour/myeloid cells with a T cell within `checkpoint_radius`).
//!
//! Cost: O(N log N) for the k-d tree queries, O(N) memory; per-cell randomness is seeded by the cell
//! index, so the layout does not depend on the thread count.

use crate::config::SimConfig;
use crate::geometry::PointIndex;
use crate::rng::{rng_for, STREAM_PATIENT, STREAM_POSITION, STREAM_SECTION, STREAM_TYPE};
use crate::types::{CellType, NestPhenotype, Region};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;

/// Bit of [`Layout::flags`]: hypoxia level at least 0.5.
pub const FLAG_HYPOXIC: u8 = 1;
/// Bit of [`Layout::flags`]: exhausted CD8 T cell (inside tumour or on its margin).
pub const FLAG_EXHAUSTED: u8 = 2;
/// Bit of [`Layout::flags`]: tumour cell of the immune-evasive clone (low MHC-I).
pub const FLAG_MHC_LOW: u8 = 4;
/// Bit of [`Layout::flags`]: tumour or myeloid cell with a T cell nearby (checkpoint ligands up).
pub const FLAG_CHECKPOINT_HIGH: u8 = 8;
/// Bit of [`Layout::flags`]: CAF near tumour with the TGF-beta / ECM programs on.
pub const FLAG_TGFB_CAF: u8 = 16;

/// One section to simulate: its name and design.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionPlan {
    /// Position in the cohort (0-based).
    pub index: usize,
    /// Section name, e.g. `P1_pre`.
    pub name: String,
    /// Patient name, e.g. `P1`.
    pub patient: String,
    /// Patient number (0-based).
    pub patient_index: usize,
    /// Condition name.
    pub condition: String,
    /// Position of the condition in the configured list (0 = baseline).
    pub timepoint: usize,
    /// Strength of the therapy effect in `[0, 1]`: `timepoint / (n_conditions - 1)`.
    pub effect: f64,
}

/// The cohort design: section `i` is patient `i / n_conditions` under condition `i % n_conditions`.
pub fn plan_sections(cfg: &SimConfig) -> Vec<SectionPlan> {
    let nc = cfg.conditions.len();
    (0..cfg.n_samples)
        .map(|i| {
            let (p, c) = (i / nc, i % nc);
            let patient = format!("P{}", p + 1);
            SectionPlan {
                index: i,
                name: format!("{patient}_{}", cfg.conditions[c]),
                patient,
                patient_index: p,
                condition: cfg.conditions[c].clone(),
                timepoint: c,
                effect: if nc > 1 { c as f64 / (nc - 1) as f64 } else { 0.0 },
            }
        })
        .collect()
}

/// The parameters in force for one section after the therapy effect and the patient effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveParams {
    /// Fraction of cells in tumour nests.
    pub tumor_fraction: f64,
    /// Fraction of cells in the myeloid-suppressive zone.
    pub myeloid_fraction: f64,
    /// Vessels per square millimetre.
    pub vessel_density: f64,
    /// Factor on CAF weights.
    pub caf_weight: f64,
    /// Factor on myeloid weights.
    pub myeloid_weight: f64,
    /// Factor on T/NK weights (therapy effect times the patient's T-cell level).
    pub t_cell_weight: f64,
    /// The patient's T-cell level (log-normal, sd 0.2 on the log scale; shared by the patient's sections).
    pub patient_t_cell_level: f64,
}

impl EffectiveParams {
    /// The parameters for `plan` under `cfg`.
    pub fn new(cfg: &SimConfig, plan: &SectionPlan) -> Self {
        let s = plan.effect;
        let t = &cfg.therapy;
        let z: f64 = StandardNormal.sample(&mut rng_for(cfg.seed, &[STREAM_PATIENT, plan.patient_index as u64]));
        let patient_t_cell_level = (0.2 * z).exp();
        let myeloid_fraction = (cfg.myeloid_fraction * t.myeloid_fraction.powf(s)).min(0.9);
        let tumor_fraction = (cfg.tumor_fraction * t.tumor_fraction.powf(s)).min(0.95 - myeloid_fraction).max(0.0);
        EffectiveParams {
            tumor_fraction,
            myeloid_fraction,
            vessel_density: cfg.vessel_density * t.vessel_density.powf(s),
            caf_weight: t.caf_weight.powf(s),
            myeloid_weight: t.myeloid_weight.powf(s),
            t_cell_weight: t.t_cell_weight.powf(s) * patient_t_cell_level,
            patient_t_cell_level,
        }
    }
}

/// A tumour nest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nest {
    /// Centre.
    pub centre: [f64; 2],
    /// Gaussian scale of the bump.
    pub scale: f64,
    /// Amplitude and phase of the angular harmonics 2, 3, 4.
    pub harmonics: [(f64, f64); 3],
    /// Immune phenotype.
    pub phenotype: NestPhenotype,
}

/// A sum of random plane waves with unit-order amplitude, giving borders a ragged look.
#[derive(Debug, Clone, PartialEq)]
struct NoiseField {
    waves: Vec<(f64, f64, f64)>,
}

impl NoiseField {
    fn new(rng: &mut ChaCha8Rng) -> Self {
        let waves = (0..6)
            .map(|_| {
                let wavelength = rng.random_range(150.0..500.0);
                let angle = rng.random_range(0.0..std::f64::consts::TAU);
                let k = std::f64::consts::TAU / wavelength;
                (k * angle.cos(), k * angle.sin(), rng.random_range(0.0..std::f64::consts::TAU))
            })
            .collect();
        NoiseField { waves }
    }

    fn at(&self, p: [f64; 2]) -> f64 {
        let s: f64 = self.waves.iter().map(|&(kx, ky, ph)| (kx * p[0] + ky * p[1] + ph).sin()).sum();
        s / (self.waves.len() as f64 / 2.0).sqrt()
    }
}

/// A simulated section: per-cell positions, labels and states, and the planted structures.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Section width.
    pub width: f64,
    /// Section height.
    pub height: f64,
    /// Cell x positions.
    pub x: Vec<f64>,
    /// Cell y positions.
    pub y: Vec<f64>,
    /// Cell types.
    pub cell_type: Vec<CellType>,
    /// Regions.
    pub region: Vec<Region>,
    /// Nest of tumour cells; for other cells the nest of the nearest tumour cell.
    pub nest: Vec<Option<u32>>,
    /// Distance to the nearest vessel wall (0 inside a vessel).
    pub distance_to_vessel: Vec<f64>,
    /// Distance to the nearest tumour cell (0 for tumour cells).
    pub distance_to_tumor: Vec<f64>,
    /// Hypoxia level in `[0, 1]`.
    pub hypoxia: Vec<f64>,
    /// State flags (`FLAG_*` bits).
    pub flags: Vec<u8>,
    /// The nests.
    pub nests: Vec<Nest>,
    /// Vessel centres.
    pub vessels: Vec<[f64; 2]>,
    /// TLS centres.
    pub tls_centres: Vec<[f64; 2]>,
    /// Centres of the myeloid-suppressive zone.
    pub myeloid_centres: Vec<[f64; 2]>,
    /// The parameters in force.
    pub params: EffectiveParams,
}

fn smoothstep(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Hypoxia level at `distance` from the nearest vessel: 0 up to `onset`, 1 from `full`, smooth between.
pub fn hypoxia_level(distance: f64, onset: f64, full: f64) -> f64 {
    smoothstep((distance - onset) / (full - onset))
}

/// Indices of the `k` smallest keys (ties broken by index), in index order.
fn smallest_k(keys: &[(f64, u32)], k: usize) -> Vec<u32> {
    let mut v: Vec<(f64, u32)> = keys.to_vec();
    let k = k.min(v.len());
    if k == 0 {
        return vec![];
    }
    if k < v.len() {
        v.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    let mut out: Vec<u32> = v[..k].iter().map(|x| x.1).collect();
    out.sort_unstable();
    out
}

/// Simulates the layout of section `plan`.
pub fn simulate_layout(cfg: &SimConfig, plan: &SectionPlan) -> Layout {
    let n = cfg.n_cells;
    let params = EffectiveParams::new(cfg, plan);
    let seed = cfg.seed;
    let sec = plan.index as u64;
    let mut srng = rng_for(seed, &[STREAM_SECTION, sec]);

    // 1. Jittered hexagonal lattice.
    let sqrt3 = 3f64.sqrt();
    let side = cfg.width.unwrap_or_else(|| (n as f64 * cfg.cell_area).sqrt());
    let spacing = (side * side * 2.0 / (sqrt3 * n as f64)).sqrt();
    let ncols = ((side / spacing).round() as usize).max(1);
    let nrows = n.div_ceil(ncols);
    let row_h = spacing * sqrt3 / 2.0;
    let width = (ncols as f64 + 0.5) * spacing;
    let height = nrows as f64 * row_h;
    let (x, y): (Vec<f64>, Vec<f64>) = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut r = rng_for(seed, &[STREAM_POSITION, sec, i as u64]);
            let (row, col) = (i / ncols, i % ncols);
            let shift = if row % 2 == 1 { 0.5 } else { 0.0 };
            let jx = r.random_range(-0.3..0.3) * spacing;
            let jy = r.random_range(-0.3..0.3) * spacing;
            ((col as f64 + 0.5 + shift) * spacing + jx, (row as f64 + 0.5) * row_h + jy)
        })
        .unzip();
    let area_mm2 = width * height / 1e6;

    // 2. Tumour nests and the tumour field.
    let n_nests = ((area_mm2 * cfg.nest_density).round() as usize).max(1);
    let nest_scale =
        (params.tumor_fraction.max(0.01) * width * height / (n_nests as f64 * std::f64::consts::PI)).sqrt();
    let mut phenotypes: Vec<NestPhenotype> = Vec::with_capacity(n_nests);
    let mut n_inflamed = (n_nests as f64 * cfg.inflamed_nest_fraction).round() as usize;
    let mut n_evasive = (n_nests as f64 * cfg.evasive_nest_fraction).round() as usize;
    if n_nests >= 3 {
        n_inflamed = n_inflamed.clamp(usize::from(cfg.inflamed_nest_fraction > 0.0), n_nests - 2);
        n_evasive = n_evasive.clamp(usize::from(cfg.evasive_nest_fraction > 0.0), n_nests - 1 - n_inflamed);
    }
    n_inflamed = n_inflamed.min(n_nests);
    n_evasive = n_evasive.min(n_nests - n_inflamed);
    phenotypes.extend(std::iter::repeat_n(NestPhenotype::Inflamed, n_inflamed));
    phenotypes.extend(std::iter::repeat_n(NestPhenotype::Evasive, n_evasive));
    phenotypes.resize(n_nests, NestPhenotype::Excluded);
    // Fisher-Yates with the section stream, so which nest gets which phenotype varies with the seed.
    for i in (1..n_nests).rev() {
        let j = srng.random_range(0..=i);
        phenotypes.swap(i, j);
    }
    let nests: Vec<Nest> = phenotypes
        .into_iter()
        .map(|phenotype| Nest {
            centre: [srng.random_range(0.0..width), srng.random_range(0.0..height)],
            scale: nest_scale * srng.random_range(0.75..1.25),
            harmonics: [
                (srng.random_range(0.0..0.25), srng.random_range(0.0..std::f64::consts::TAU)),
                (srng.random_range(0.0..0.2), srng.random_range(0.0..std::f64::consts::TAU)),
                (srng.random_range(0.0..0.15), srng.random_range(0.0..std::f64::consts::TAU)),
            ],
            phenotype,
        })
        .collect();
    let noise = NoiseField::new(&mut srng);
    let nest_index = PointIndex::new(&nests.iter().map(|n| n.centre).collect::<Vec<_>>());
    let field = |p: [f64; 2]| -> (f64, u32) {
        let mut best = (f64::NEG_INFINITY, 0u32);
        for (k, d) in nest_index.nearest_n(p, 6) {
            let nest = &nests[k];
            let (dx, dy) = (p[0] - nest.centre[0], p[1] - nest.centre[1]);
            let theta = dy.atan2(dx);
            let wobble: f64 =
                nest.harmonics.iter().enumerate().map(|(m, &(a, ph))| a * ((m as f64 + 2.0) * theta + ph).cos()).sum();
            let g = (-(d * d) / (2.0 * nest.scale * nest.scale)).exp() * (1.0 + wobble);
            if g > best.0 {
                best = (g, k as u32);
            }
        }
        (best.0 * (1.0 + 0.2 * noise.at(p)), best.1)
    };
    let fields: Vec<(f64, u32)> = (0..n).into_par_iter().map(|i| field([x[i], y[i]])).collect();
    let n_tumor = ((params.tumor_fraction * n as f64).round() as usize).min(n);
    let neg_keys: Vec<(f64, u32)> = fields.iter().enumerate().map(|(i, f)| (-f.0, i as u32)).collect();
    let tumor_cells = smallest_k(&neg_keys, n_tumor);
    let mut is_tumor = vec![false; n];
    for &i in &tumor_cells {
        is_tumor[i as usize] = true;
    }
    let threshold = tumor_cells.iter().map(|&i| fields[i as usize].0).fold(f64::INFINITY, f64::min);

    // Distance to the nearest tumour cell and the nest it belongs to.
    let tumor_points: Vec<[f64; 2]> = tumor_cells.iter().map(|&i| [x[i as usize], y[i as usize]]).collect();
    let tumor_index = PointIndex::new(&tumor_points);
    let diagonal = (width * width + height * height).sqrt();
    let (distance_to_tumor, nest): (Vec<f64>, Vec<Option<u32>>) = (0..n)
        .into_par_iter()
        .map(|i| {
            if is_tumor[i] {
                (0.0, Some(fields[i].1))
            } else {
                match tumor_index.nearest([x[i], y[i]]) {
                    Some((j, d)) => (d, Some(fields[tumor_cells[j] as usize].1)),
                    None => (diagonal, None),
                }
            }
        })
        .unzip();

    // 3. Vessels.
    let n_candidates = (area_mm2 * params.vessel_density).round() as usize;
    let mut vessels = Vec::with_capacity(n_candidates);
    for _ in 0..n_candidates {
        let p = [srng.random_range(0.0..width), srng.random_range(0.0..height)];
        let inside = n_tumor > 0 && field(p).0 >= threshold;
        let keep_draw: f64 = srng.random();
        if !inside || keep_draw < cfg.tumor_vessel_acceptance {
            vessels.push(p);
        }
    }
    let vessel_index = PointIndex::new(&vessels);
    let vessel_centre_distance: Vec<f64> =
        (0..n).into_par_iter().map(|i| vessel_index.nearest([x[i], y[i]]).map_or(diagonal, |(_, d)| d)).collect();
    let vessel_outer = cfg.vessel_radius + cfg.pericyte_ring;
    let in_vessel: Vec<bool> = vessel_centre_distance.iter().map(|&d| d < vessel_outer).collect();
    let distance_to_vessel: Vec<f64> =
        vessel_centre_distance.iter().map(|&d| (d - cfg.vessel_radius).max(0.0)).collect();

    // 4a. Tertiary lymphoid structures, far from tumour.
    let n_tls = ((area_mm2 * cfg.tls_density).round() as usize).max(1);
    let candidates: Vec<usize> = (0..n)
        .filter(|&i| !is_tumor[i] && !in_vessel[i] && distance_to_tumor[i] >= cfg.tls_min_tumor_distance)
        .collect();
    let mut tls_centres: Vec<[f64; 2]> = Vec::new();
    if !candidates.is_empty() {
        for _ in 0..(50 * n_tls) {
            if tls_centres.len() == n_tls {
                break;
            }
            let c = candidates[srng.random_range(0..candidates.len())];
            let p = [x[c], y[c]];
            if tls_centres
                .iter()
                .all(|q| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt() >= 3.0 * cfg.tls_radius)
            {
                tls_centres.push(p);
            }
        }
    }
    let tls_index = PointIndex::new(&tls_centres);
    let in_tls: Vec<bool> = (0..n)
        .into_par_iter()
        .map(|i| {
            !is_tumor[i] && !in_vessel[i] && tls_index.nearest([x[i], y[i]]).is_some_and(|(_, d)| d <= cfg.tls_radius)
        })
        .collect();

    // 4b. Myeloid-suppressive zone around centres on the invasive margin.
    let n_myeloid_centres = n_nests.div_ceil(2).max(1);
    let margin: Vec<usize> = (0..n).filter(|&i| !is_tumor[i] && distance_to_tumor[i] < cfg.margin_width).collect();
    let pool: Vec<usize> = if margin.is_empty() { (0..n).filter(|&i| !is_tumor[i]).collect() } else { margin };
    let myeloid_centres: Vec<[f64; 2]> = if pool.is_empty() {
        vec![]
    } else {
        (0..n_myeloid_centres)
            .map(|_| {
                let c = pool[srng.random_range(0..pool.len())];
                [x[c], y[c]]
            })
            .collect()
    };
    let myeloid_index = PointIndex::new(&myeloid_centres);
    let eligible: Vec<(f64, u32)> = (0..n)
        .into_par_iter()
        .filter(|&i| !is_tumor[i] && !in_vessel[i] && !in_tls[i])
        .map(|i| {
            let p = [x[i], y[i]];
            let d = myeloid_index.nearest(p).map_or(diagonal, |(_, d)| d);
            (d * (1.0 + 0.3 * noise.at([p[1], p[0]])), i as u32)
        })
        .collect();
    let n_myeloid = ((params.myeloid_fraction * n as f64).round() as usize).min(eligible.len());
    let mut in_myeloid = vec![false; n];
    for i in smallest_k(&eligible, n_myeloid) {
        in_myeloid[i as usize] = true;
    }

    // 5. Regions.
    let region: Vec<Region> = (0..n)
        .map(|i| {
            if in_vessel[i] {
                Region::Vessel
            } else if is_tumor[i] {
                if distance_to_vessel[i] > cfg.hypoxic_core_distance {
                    Region::TumorCore
                } else {
                    Region::TumorNest
                }
            } else if in_tls[i] {
                Region::Tls
            } else if in_myeloid[i] {
                Region::MyeloidZone
            } else {
                let d = distance_to_tumor[i];
                let excluded = nest[i].is_some_and(|k| nests[k as usize].phenotype == NestPhenotype::Excluded);
                if d < cfg.margin_width {
                    Region::InvasiveMargin
                } else if excluded && d < cfg.margin_width + cfg.excluded_band_width {
                    Region::ImmuneExcludedBand
                } else if d < cfg.desmoplastic_width {
                    Region::DesmoplasticStroma
                } else {
                    Region::Stroma
                }
            }
        })
        .collect();

    // 6. Cell types.
    let cell_type: Vec<CellType> = (0..n)
        .into_par_iter()
        .map(|i| {
            if region[i] == Region::Vessel {
                return if vessel_centre_distance[i] < cfg.vessel_radius {
                    CellType::Endothelial
                } else {
                    CellType::Pericyte
                };
            }
            let phenotype = nest[i].map_or(NestPhenotype::Excluded, |k| nests[k as usize].phenotype);
            let mut w = region[i].composition(phenotype);
            for t in CellType::ALL {
                let f = match t {
                    CellType::Mycaf | CellType::Icaf => params.caf_weight,
                    CellType::MacrophageM2 | CellType::MonocyteMdsc => params.myeloid_weight,
                    CellType::Cd8T | CellType::Cd4T | CellType::Treg | CellType::Nk => params.t_cell_weight,
                    _ => 1.0,
                };
                w[t.index()] *= f;
            }
            let total: f64 = w.iter().sum();
            let mut r = rng_for(seed, &[STREAM_TYPE, sec, i as u64]);
            let mut u = r.random::<f64>() * total;
            for t in CellType::ALL {
                u -= w[t.index()];
                if u < 0.0 {
                    return t;
                }
            }
            // Rounding left `u` a hair above zero: take the last type with weight.
            CellType::ALL.into_iter().rev().find(|t| w[t.index()] > 0.0).unwrap_or(CellType::TumorEpithelial)
        })
        .collect();

    // 7. States driven by the layout.
    let t_points: Vec<[f64; 2]> = (0..n).filter(|&i| cell_type[i].is_t_cell()).map(|i| [x[i], y[i]]).collect();
    let t_index = PointIndex::new(&t_points);
    let hypoxia: Vec<f64> =
        distance_to_vessel.iter().map(|&d| hypoxia_level(d, cfg.hypoxia_onset, cfg.hypoxia_full)).collect();
    let flags: Vec<u8> = (0..n)
        .into_par_iter()
        .map(|i| {
            let t = cell_type[i];
            let mut f = 0u8;
            if hypoxia[i] >= 0.5 {
                f |= FLAG_HYPOXIC;
            }
            if t == CellType::Cd8T
                && matches!(region[i], Region::TumorCore | Region::TumorNest | Region::InvasiveMargin)
            {
                f |= FLAG_EXHAUSTED;
            }
            if t == CellType::TumorEpithelial
                && nest[i].is_some_and(|k| nests[k as usize].phenotype == NestPhenotype::Evasive)
            {
                f |= FLAG_MHC_LOW;
            }
            if t.is_caf() && distance_to_tumor[i] <= cfg.caf_tgfb_distance && n_tumor > 0 {
                f |= FLAG_TGFB_CAF;
            }
            if t.can_express_checkpoint_ligands()
                && t_index.nearest([x[i], y[i]]).is_some_and(|(_, d)| d <= cfg.checkpoint_radius)
            {
                f |= FLAG_CHECKPOINT_HIGH;
            }
            f
        })
        .collect();

    Layout {
        width,
        height,
        x,
        y,
        cell_type,
        region,
        nest,
        distance_to_vessel,
        distance_to_tumor,
        hypoxia,
        flags,
        nests,
        vessels,
        tls_centres,
        myeloid_centres,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig { n_cells: 6_000, ..SimConfig::default() }
    }

    #[test]
    fn plan_pairs_patients_and_conditions() {
        let cfg = SimConfig { n_samples: 4, ..SimConfig::default() };
        let p = plan_sections(&cfg);
        assert_eq!(p.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["P1_pre", "P1_post", "P2_pre", "P2_post"]);
        assert_eq!(p[1].effect, 1.0);
        assert_eq!(p[2].patient, "P2");
    }

    #[test]
    fn tumor_fraction_is_exact_and_regions_exist() {
        let cfg = small();
        let l = simulate_layout(&cfg, &plan_sections(&cfg)[0]);
        let n = l.x.len();
        assert_eq!(n, 6_000);
        let tumor = l.distance_to_tumor.iter().filter(|&&d| d == 0.0).count();
        assert_eq!(tumor, (cfg.tumor_fraction * n as f64).round() as usize);
        let myeloid = l.region.iter().filter(|&&r| r == Region::MyeloidZone).count();
        assert_eq!(myeloid, (cfg.myeloid_fraction * n as f64).round() as usize);
        for r in [Region::TumorNest, Region::InvasiveMargin, Region::Vessel, Region::DesmoplasticStroma] {
            assert!(l.region.contains(&r), "{} missing", r.name());
        }
        // Every vessel-region cell is endothelial or pericyte.
        for i in 0..n {
            if l.region[i] == Region::Vessel {
                assert!(matches!(l.cell_type[i], CellType::Endothelial | CellType::Pericyte));
            }
        }
    }

    #[test]
    fn hypoxic_core_is_far_from_vessels_and_cd8_excluded() {
        let cfg = SimConfig { n_cells: 12_000, seed: 3, ..SimConfig::default() };
        let l = simulate_layout(&cfg, &plan_sections(&cfg)[0]);
        for i in 0..l.x.len() {
            if l.region[i] == Region::TumorCore {
                assert!(l.distance_to_vessel[i] > cfg.hypoxic_core_distance);
            }
        }
        let frac = |r: Region| {
            let cells: Vec<usize> = (0..l.x.len()).filter(|&i| l.region[i] == r).collect();
            cells.iter().filter(|&&i| l.cell_type[i] == CellType::Cd8T).count() as f64 / cells.len().max(1) as f64
        };
        if l.region.contains(&Region::ImmuneExcludedBand) {
            assert!(frac(Region::ImmuneExcludedBand) > 3.0 * frac(Region::TumorNest));
        }
        assert!(l.hypoxia.iter().any(|&h| h > 0.9));
    }

    #[test]
    fn therapy_shrinks_tumour_and_grows_myeloid() {
        let cfg = small();
        let plans = plan_sections(&cfg);
        let pre = simulate_layout(&cfg, &plans[0]);
        let post = simulate_layout(&cfg, &plans[1]);
        let count = |l: &Layout, t: CellType| l.cell_type.iter().filter(|&&c| c == t).count();
        assert!(count(&post, CellType::TumorEpithelial) < count(&pre, CellType::TumorEpithelial));
        assert!(count(&post, CellType::MacrophageM2) > count(&pre, CellType::MacrophageM2));
        assert!(post.vessels.len() < pre.vessels.len());
    }

    #[test]
    fn geometry_changes_with_seed() {
        let a = small();
        let b = SimConfig { seed: 2, ..small() };
        let la = simulate_layout(&a, &plan_sections(&a)[0]);
        let lb = simulate_layout(&b, &plan_sections(&b)[0]);
        assert_ne!(la.nests[0].centre, lb.nests[0].centre);
        assert_ne!(la.region, lb.region);
    }

    #[test]
    fn hypoxia_curve() {
        assert_eq!(hypoxia_level(10.0, 50.0, 200.0), 0.0);
        assert_eq!(hypoxia_level(300.0, 50.0, 200.0), 1.0);
        assert!((hypoxia_level(125.0, 50.0, 200.0) - 0.5).abs() < 1e-12);
    }
}
