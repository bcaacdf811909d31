//! Parameters of a simulation, with their defaults and validation.
//!
//! Every number the simulator uses is a field here, so that `truth.json` can record the complete model.
//! Distances are in micrometres.

use serde::{Deserialize, Serialize};
use tmescope_core::{Error, Result};

/// Which measurement platforms to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Visium-like spots only.
    Visium,
    /// Xenium-like single cells only.
    Xenium,
    /// Both, observing the same simulated molecules of the same section.
    Both,
}

impl Platform {
    /// Parses `visium`, `xenium` or `both`.
    pub fn parse(text: &str) -> Result<Platform> {
        match text.trim().to_ascii_lowercase().as_str() {
            "visium" => Ok(Platform::Visium),
            "xenium" => Ok(Platform::Xenium),
            "both" => Ok(Platform::Both),
            other => {
                Err(Error::Usage(format!("--platform: unknown platform `{other}`, expected visium, xenium or both")))
            }
        }
    }

    /// Whether single-cell (Xenium-like) datasets are written.
    pub fn has_xenium(self) -> bool {
        matches!(self, Platform::Xenium | Platform::Both)
    }

    /// Whether spot (Visium-like) datasets are written.
    pub fn has_visium(self) -> bool {
        matches!(self, Platform::Visium | Platform::Both)
    }
}

/// Multiplicative effects of therapy, applied in full to the last condition and interpolated (in log
/// space) for the conditions in between; the first condition is the untreated baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TherapyEffect {
    /// Factor on the fraction of cells inside tumour nests (below 1: tumour loss).
    pub tumor_fraction: f64,
    /// Factor on the fraction of cells in the myeloid-suppressive zone.
    pub myeloid_fraction: f64,
    /// Factor on the density of vessels (below 1: vessel loss, so more hypoxic area).
    pub vessel_density: f64,
    /// Factor on the weight of myCAF and iCAF in every region's composition.
    pub caf_weight: f64,
    /// Factor on the weight of macrophages and monocytes/MDSCs in every region's composition.
    pub myeloid_weight: f64,
    /// Factor on the weight of CD8 T, CD4 T, Treg and NK cells in every region's composition.
    pub t_cell_weight: f64,
}

impl Default for TherapyEffect {
    fn default() -> Self {
        TherapyEffect {
            tumor_fraction: 0.6,
            myeloid_fraction: 1.8,
            vessel_density: 0.5,
            caf_weight: 1.6,
            myeloid_weight: 1.6,
            t_cell_weight: 0.45,
        }
    }
}

/// Every parameter of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Random seed: the same seed gives the same files, whatever the thread count.
    pub seed: u64,
    /// Cells per tissue section.
    pub n_cells: usize,
    /// Number of sections (samples). Sections are assigned to patients and conditions in turn:
    /// section `i` is patient `i / n_conditions + 1` under condition `i % n_conditions`.
    pub n_samples: usize,
    /// Platforms to write.
    pub platform: Platform,
    /// Conditions in order (the first is the untreated baseline; `timepoint` is the position).
    pub conditions: Vec<String>,
    /// Number of background genes added to the panel of named genes.
    pub n_background_genes: usize,
    /// Cells in the single-cell reference (0: no reference).
    pub reference_cells: usize,
    /// Section width in micrometres; `None` derives it from `cell_area` (square section).
    pub width: Option<f64>,
    /// Mean tissue area per cell (square micrometres) when `width` is not given.
    pub cell_area: f64,
    /// Fraction of cells inside tumour nests (baseline condition).
    pub tumor_fraction: f64,
    /// Fraction of cells in the myeloid-suppressive zone (baseline condition).
    pub myeloid_fraction: f64,
    /// Mean number of tumour nests per square millimetre.
    pub nest_density: f64,
    /// Fraction of nests that are immune-inflamed (CD8 T cells among tumour cells, exhausted).
    pub inflamed_nest_fraction: f64,
    /// Fraction of nests formed by the immune-evasive clone (low MHC-I).
    pub evasive_nest_fraction: f64,
    /// Vessels per square millimetre in stroma (baseline condition).
    pub vessel_density: f64,
    /// Probability that a vessel drawn inside a tumour nest is kept (tumour cores are poorly vascularised).
    pub tumor_vessel_acceptance: f64,
    /// Radius of a vessel's endothelial lining (cells within it are endothelial).
    pub vessel_radius: f64,
    /// Width of the pericyte ring around the endothelium.
    pub pericyte_ring: f64,
    /// Tertiary lymphoid structures per square millimetre (at least one per section when room allows).
    pub tls_density: f64,
    /// Radius of a tertiary lymphoid structure.
    pub tls_radius: f64,
    /// Minimal distance from a TLS centre to the nearest tumour cell.
    pub tls_min_tumor_distance: f64,
    /// Width of the invasive margin outside the nests.
    pub margin_width: f64,
    /// Width of the immune-excluded band beyond the margin (around excluded nests).
    pub excluded_band_width: f64,
    /// Distance from the tumour up to which the stroma is desmoplastic (CAF-rich).
    pub desmoplastic_width: f64,
    /// Tumour cells farther than this from any vessel form the hypoxic core region.
    pub hypoxic_core_distance: f64,
    /// Distance to the nearest vessel where the hypoxia program starts to rise.
    pub hypoxia_onset: f64,
    /// Distance to the nearest vessel where the hypoxia program is fully on.
    pub hypoxia_full: f64,
    /// Fold change of hypoxia and glycolysis genes at full hypoxia (`1 + gain * level`).
    pub hypoxia_gain: f64,
    /// Fold change of exhaustion genes in CD8 T cells inside tumour (nest, core or margin).
    pub exhaustion_gain: f64,
    /// CAFs closer than this to a tumour cell switch on the TGF-beta/ECM programs.
    pub caf_tgfb_distance: f64,
    /// Fold change of TGF-beta fibroblast and ECM genes in those CAFs.
    pub tgfb_gain: f64,
    /// Factor on MHC-I antigen-presentation genes in the immune-evasive clone.
    pub mhc_low_factor: f64,
    /// Tumour and myeloid cells with a T cell closer than this express checkpoint ligands.
    pub checkpoint_radius: f64,
    /// Fold change of checkpoint ligand genes in those cells.
    pub checkpoint_gain: f64,
    /// Mean counts per cell (before the cell-type size factor).
    pub depth: f64,
    /// Mean counts per reference cell.
    pub reference_depth: f64,
    /// Standard deviation of the log library size between cells.
    pub library_sd: f64,
    /// Negative-binomial dispersion (variance = mu + dispersion * mu^2); 0 gives Poisson.
    pub dispersion: f64,
    /// Spot diameter of the spot platform.
    pub spot_diameter: f64,
    /// Centre-to-centre distance of the hexagonal spot grid.
    pub spot_spacing: f64,
    /// Therapy effect of the last condition.
    pub therapy: TherapyEffect,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            n_cells: 20_000,
            n_samples: 2,
            platform: Platform::Both,
            conditions: vec!["pre".into(), "post".into()],
            n_background_genes: 300,
            reference_cells: 3_000,
            width: None,
            cell_area: 250.0,
            tumor_fraction: 0.40,
            myeloid_fraction: 0.06,
            nest_density: 2.0,
            inflamed_nest_fraction: 0.35,
            evasive_nest_fraction: 0.25,
            vessel_density: 40.0,
            tumor_vessel_acceptance: 0.05,
            vessel_radius: 16.0,
            pericyte_ring: 8.0,
            tls_density: 0.25,
            tls_radius: 110.0,
            tls_min_tumor_distance: 200.0,
            margin_width: 40.0,
            excluded_band_width: 100.0,
            desmoplastic_width: 300.0,
            hypoxic_core_distance: 150.0,
            hypoxia_onset: 50.0,
            hypoxia_full: 200.0,
            hypoxia_gain: 4.0,
            exhaustion_gain: 8.0,
            caf_tgfb_distance: 150.0,
            tgfb_gain: 4.0,
            mhc_low_factor: 0.15,
            checkpoint_radius: 30.0,
            checkpoint_gain: 6.0,
            depth: 550.0,
            reference_depth: 1_000.0,
            library_sd: 0.35,
            dispersion: 0.2,
            spot_diameter: 55.0,
            spot_spacing: 100.0,
            therapy: TherapyEffect::default(),
        }
    }
}

impl SimConfig {
    /// Checks that the parameters make sense; errors name the option.
    pub fn validate(&self) -> Result<()> {
        let usage = |m: String| Err(Error::Usage(m));
        if self.n_cells == 0 {
            return usage("--cells must be at least 1".into());
        }
        if self.n_cells > u32::MAX as usize / 2 {
            return usage(format!("--cells {} is too large (at most {})", self.n_cells, u32::MAX / 2));
        }
        if self.n_samples == 0 {
            return usage("--samples must be at least 1".into());
        }
        if self.conditions.is_empty() || self.conditions.iter().any(|c| c.trim().is_empty()) {
            return usage("--conditions must list at least one non-empty condition name, e.g. pre,post".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.conditions {
            if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                return usage(format!("--conditions: `{c}` may only hold letters, digits, `-` and `_`"));
            }
            if !seen.insert(c) {
                return usage(format!("--conditions: `{c}` is listed twice"));
            }
        }
        if let Some(w) = self.width {
            if !(w.is_finite() && w > 0.0) {
                return usage(format!("--width must be a positive number of micrometres, found {w}"));
            }
        }
        let positive = [
            ("--cell-area", self.cell_area),
            ("--depth", self.depth),
            ("--reference-depth", self.reference_depth),
            ("spot_diameter", self.spot_diameter),
            ("spot_spacing", self.spot_spacing),
            ("vessel_radius", self.vessel_radius),
            ("tls_radius", self.tls_radius),
            ("nest_density", self.nest_density),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return usage(format!("{name} must be a positive number, found {v}"));
            }
        }
        let fractions = [
            ("--tumor-fraction", self.tumor_fraction),
            ("--myeloid-fraction", self.myeloid_fraction),
            ("inflamed_nest_fraction", self.inflamed_nest_fraction),
            ("evasive_nest_fraction", self.evasive_nest_fraction),
            ("tumor_vessel_acceptance", self.tumor_vessel_acceptance),
        ];
        for (name, v) in fractions {
            if !(0.0..=1.0).contains(&v) {
                return usage(format!("{name} must be between 0 and 1, found {v}"));
            }
        }
        if self.tumor_fraction + self.myeloid_fraction > 0.95 {
            return usage("--tumor-fraction plus --myeloid-fraction must leave room for stroma (at most 0.95)".into());
        }
        if self.inflamed_nest_fraction + self.evasive_nest_fraction > 1.0 {
            return usage("inflamed_nest_fraction plus evasive_nest_fraction must be at most 1".into());
        }
        let non_negative = [
            ("--vessel-density", self.vessel_density),
            ("tls_density", self.tls_density),
            ("--dispersion", self.dispersion),
            ("library_sd", self.library_sd),
            ("margin_width", self.margin_width),
            ("excluded_band_width", self.excluded_band_width),
            ("desmoplastic_width", self.desmoplastic_width),
            ("pericyte_ring", self.pericyte_ring),
            ("hypoxia_gain", self.hypoxia_gain),
            ("exhaustion_gain", self.exhaustion_gain),
            ("tgfb_gain", self.tgfb_gain),
            ("checkpoint_gain", self.checkpoint_gain),
            ("mhc_low_factor", self.mhc_low_factor),
            ("checkpoint_radius", self.checkpoint_radius),
            ("caf_tgfb_distance", self.caf_tgfb_distance),
            ("hypoxic_core_distance", self.hypoxic_core_distance),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return usage(format!("{name} must be a non-negative number, found {v}"));
            }
        }
        if !(self.hypoxia_full > self.hypoxia_onset && self.hypoxia_onset >= 0.0) {
            return usage("hypoxia_full must be larger than hypoxia_onset (both >= 0)".into());
        }
        let t = &self.therapy;
        for (name, v) in [
            ("therapy.tumor_fraction", t.tumor_fraction),
            ("therapy.myeloid_fraction", t.myeloid_fraction),
            ("therapy.vessel_density", t.vessel_density),
            ("therapy.caf_weight", t.caf_weight),
            ("therapy.myeloid_weight", t.myeloid_weight),
            ("therapy.t_cell_weight", t.t_cell_weight),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return usage(format!("{name} must be a positive factor, found {v}"));
            }
        }
        if self.spot_diameter > self.spot_spacing {
            return usage("spot_diameter must not exceed spot_spacing (spots would overlap)".into());
        }
        Ok(())
    }

    /// Number of distinct patients: sections are grouped by patient, one per condition.
    pub fn n_patients(&self) -> usize {
        self.n_samples.div_ceil(self.conditions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SimConfig::default().validate().unwrap();
        assert_eq!(SimConfig::default().n_patients(), 1);
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let c = SimConfig { n_cells: 0, ..SimConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("--cells"));
        let c = SimConfig { conditions: vec!["pre".into(), "pre".into()], ..SimConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
        assert!(Platform::parse("merfish").unwrap_err().to_string().contains("merfish"));
        assert_eq!(Platform::parse("Both").unwrap(), Platform::Both);
    }
}
