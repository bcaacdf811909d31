//! Cell types and tissue regions of the simulated tumour microenvironment.
//!
//! Names are snake_case and are the labels written to `cell_type` (reference) and to the truth files.

use serde::{Deserialize, Serialize};

/// A simulated cell type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellType {
    /// Malignant epithelial cell.
    TumorEpithelial,
    /// Myofibroblastic cancer-associated fibroblast (ACTA2/TAGLN high, near tumour).
    Mycaf,
    /// Inflammatory cancer-associated fibroblast (IL6/CXCL12 high, distal stroma).
    Icaf,
    /// Vascular endothelial cell.
    Endothelial,
    /// Pericyte wrapping a vessel.
    Pericyte,
    /// Cytotoxic CD8 T cell.
    Cd8T,
    /// Helper CD4 T cell.
    Cd4T,
    /// Regulatory T cell.
    Treg,
    /// B cell.
    BCell,
    /// Plasma cell.
    Plasma,
    /// Natural killer cell.
    Nk,
    /// M2-like tumour-associated macrophage.
    MacrophageM2,
    /// Monocyte / monocytic myeloid-derived suppressor cell.
    MonocyteMdsc,
    /// Dendritic cell.
    Dendritic,
}

impl CellType {
    /// Every type, in the order used by the truth files.
    pub const ALL: [CellType; 14] = [
        CellType::TumorEpithelial,
        CellType::Mycaf,
        CellType::Icaf,
        CellType::Endothelial,
        CellType::Pericyte,
        CellType::Cd8T,
        CellType::Cd4T,
        CellType::Treg,
        CellType::BCell,
        CellType::Plasma,
        CellType::Nk,
        CellType::MacrophageM2,
        CellType::MonocyteMdsc,
        CellType::Dendritic,
    ];

    /// The label written to the files.
    pub fn name(self) -> &'static str {
        match self {
            CellType::TumorEpithelial => "tumor_epithelial",
            CellType::Mycaf => "mycaf",
            CellType::Icaf => "icaf",
            CellType::Endothelial => "endothelial",
            CellType::Pericyte => "pericyte",
            CellType::Cd8T => "cd8_t",
            CellType::Cd4T => "cd4_t",
            CellType::Treg => "treg",
            CellType::BCell => "b_cell",
            CellType::Plasma => "plasma",
            CellType::Nk => "nk",
            CellType::MacrophageM2 => "macrophage_m2",
            CellType::MonocyteMdsc => "monocyte_mdsc",
            CellType::Dendritic => "dendritic",
        }
    }

    /// Position in [`CellType::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the type is a T cell (CD8, CD4 or Treg): the neighbours that induce checkpoint ligands.
    pub fn is_t_cell(self) -> bool {
        matches!(self, CellType::Cd8T | CellType::Cd4T | CellType::Treg)
    }

    /// Whether the type is a cancer-associated fibroblast.
    pub fn is_caf(self) -> bool {
        matches!(self, CellType::Mycaf | CellType::Icaf)
    }

    /// Whether the type expresses checkpoint ligands when a T cell is next to it.
    pub fn can_express_checkpoint_ligands(self) -> bool {
        matches!(
            self,
            CellType::TumorEpithelial | CellType::MacrophageM2 | CellType::MonocyteMdsc | CellType::Dendritic
        )
    }

    /// Relative library size of the type (larger, transcriptionally active cells carry more RNA).
    pub fn size_factor(self) -> f64 {
        match self {
            CellType::TumorEpithelial => 1.4,
            CellType::Mycaf => 1.2,
            CellType::Icaf => 1.1,
            CellType::Endothelial => 1.0,
            CellType::Pericyte => 0.9,
            CellType::Cd8T | CellType::Cd4T | CellType::Treg | CellType::Nk => 0.6,
            CellType::BCell => 0.65,
            CellType::Plasma => 1.3,
            CellType::MacrophageM2 => 1.2,
            CellType::MonocyteMdsc => 0.9,
            CellType::Dendritic => 0.9,
        }
    }

    /// Marker sets (names in the shipped `markers.gmt`) expressed at marker level, and extra genes at
    /// marker level.
    pub fn marker_sets(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            CellType::TumorEpithelial => (&["tumor_epithelial"], &[]),
            CellType::Mycaf => (&["caf"], &["ACTA2", "TAGLN", "POSTN"]),
            CellType::Icaf => (&["caf"], &["IL6", "CXCL12", "CLEC3B"]),
            CellType::Endothelial => (&["endothelial"], &[]),
            CellType::Pericyte => (&["pericyte"], &["NOTCH3"]),
            CellType::Cd8T => (&["t_cell", "cd8_t"], &[]),
            CellType::Cd4T => (&["t_cell"], &["CD4", "IL7R"]),
            CellType::Treg => (&["t_cell", "treg"], &["CD4"]),
            CellType::BCell => (&["b_cell"], &["CD19"]),
            CellType::Plasma => (&["plasma"], &["XBP1"]),
            CellType::Nk => (&["nk"], &["FCGR3A"]),
            CellType::MacrophageM2 => (&["macrophage"], &["APOE"]),
            CellType::MonocyteMdsc => (&["monocyte"], &[]),
            CellType::Dendritic => (&["dendritic"], &[]),
        }
    }

    /// Programs (names in the shipped `programs.gmt`) expressed at program level, and extra genes at
    /// program level (ligands and receptors the type is known to express).
    pub fn program_sets(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            CellType::TumorEpithelial => (
                &["ifn_signalling_core"],
                &["MIF", "CD47", "CSF1", "AREG", "GAS6", "VEGFA", "EGFR", "MET", "JAG1", "CD44", "SPP1", "NECTIN2"],
            ),
            CellType::Mycaf => {
                (&["mycaf"], &["TGFB1", "COL11A1", "FN1", "SPARC", "ITGB1", "DDR1", "THBS1", "LOX", "PDGFRB"])
            }
            CellType::Icaf => (&["icaf"], &["CCL2", "TGFB1", "SPARC", "HGF", "ITGB1", "C3"]),
            CellType::Endothelial => (&["angiogenesis"], &["TEK", "NOTCH1", "ACKR3", "PDGFB", "JAG1"]),
            CellType::Pericyte => (&[], &["PDGFRB", "ACTA2", "TAGLN", "MYL9", "TPM2"]),
            CellType::Cd8T => {
                (&[], &["GZMA", "PRF1", "NKG7", "CCL5", "CXCR3", "IFNG", "CD27", "CXCR6", "PTPRC", "CXCR4", "CCR5"])
            }
            CellType::Cd4T => (&[], &["CCR7", "CXCR4", "TNF", "PTPRC", "CD27", "CD28"]),
            CellType::Treg => (&[], &["CTLA4", "TIGIT", "IL10", "TGFB1", "PTPRC", "CCR4", "IL2RA"]),
            CellType::BCell => (&["apcaf"], &["CXCR5", "PTPRC", "CCR7", "CD74"]),
            CellType::Plasma => (&[], &["CD27", "PTPRC"]),
            CellType::Nk => (&[], &["GZMA", "PRF1", "KLRC1", "PTPRC", "CCL5"]),
            CellType::MacrophageM2 => {
                (&["m2_tam"], &["CD74", "HLA-DRA", "CSF1R", "SPP1", "TGFB1", "IL10", "CD86", "SIRPA", "PTPRC", "CD44"])
            }
            CellType::MonocyteMdsc => (&["mdsc"], &["CCR2", "CD86", "SIRPA", "PTPRC", "CSF1R"]),
            CellType::Dendritic => (&[], &["CD74", "HLA-DRA", "HLA-DQA1", "HLA-DRB1", "CCR7", "CD80", "CD86", "PTPRC"]),
        }
    }
}

/// Programs every nucleated cell expresses at program level (MHC class I is ubiquitous).
pub const COMMON_PROGRAMS: &[&str] = &["mhc1_antigen_presentation"];

/// Genes named by the type table that are not in the shipped programs, markers or pairs; they join the
/// panel so each type has a recognisable marker.
pub fn extra_panel_genes() -> Vec<&'static str> {
    let mut g: Vec<&'static str> =
        CellType::ALL.iter().flat_map(|t| t.marker_sets().1.iter().chain(t.program_sets().1.iter()).copied()).collect();
    g.sort_unstable();
    g.dedup();
    g
}

/// A named tissue region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Tumour cells far from every vessel (the hypoxic core of a nest).
    TumorCore,
    /// The rest of a tumour nest.
    TumorNest,
    /// Stroma touching the nests, where tumour, CAFs and immune cells mix.
    InvasiveMargin,
    /// Band of stroma beyond the margin of an immune-excluded nest where CD8 T cells accumulate.
    ImmuneExcludedBand,
    /// CAF-rich stroma near the tumour.
    DesmoplasticStroma,
    /// Myeloid-suppressive zone: TAMs and MDSCs.
    MyeloidZone,
    /// Tertiary-lymphoid-structure-like B/T aggregate.
    Tls,
    /// A vessel: endothelial lining and pericytes.
    Vessel,
    /// Distal stroma.
    Stroma,
}

impl Region {
    /// Every region, in the order used by the truth files.
    pub const ALL: [Region; 9] = [
        Region::TumorCore,
        Region::TumorNest,
        Region::InvasiveMargin,
        Region::ImmuneExcludedBand,
        Region::DesmoplasticStroma,
        Region::MyeloidZone,
        Region::Tls,
        Region::Vessel,
        Region::Stroma,
    ];

    /// The label written to the files.
    pub fn name(self) -> &'static str {
        match self {
            Region::TumorCore => "tumor_core",
            Region::TumorNest => "tumor_nest",
            Region::InvasiveMargin => "invasive_margin",
            Region::ImmuneExcludedBand => "immune_excluded_band",
            Region::DesmoplasticStroma => "desmoplastic_stroma",
            Region::MyeloidZone => "myeloid_zone",
            Region::Tls => "tls",
            Region::Vessel => "vessel",
            Region::Stroma => "stroma",
        }
    }

    /// Whether the region lies inside a tumour nest.
    pub fn is_tumor(self) -> bool {
        matches!(self, Region::TumorCore | Region::TumorNest)
    }

    /// Baseline cell-type composition (relative weights in [`CellType::ALL`] order). Tumour nests depend
    /// on the nest's immune phenotype; vessels are assigned by distance instead (see `layout`).
    pub fn composition(self, nest: NestPhenotype) -> [f64; 14] {
        // Order: tumor, mycaf, icaf, endo, peri, cd8, cd4, treg, b, plasma, nk, macro, mono, dc.
        match self {
            Region::TumorCore => [0.90, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.06, 0.02, 0.0],
            Region::TumorNest => match nest {
                NestPhenotype::Inflamed => {
                    [0.78, 0.03, 0.0, 0.0, 0.0, 0.09, 0.03, 0.01, 0.0, 0.0, 0.01, 0.04, 0.0, 0.01]
                }
                NestPhenotype::Excluded => {
                    [0.90, 0.04, 0.0, 0.0, 0.0, 0.004, 0.006, 0.0, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0]
                }
                NestPhenotype::Evasive => [0.91, 0.03, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.04, 0.01, 0.0],
            },
            Region::InvasiveMargin => [0.25, 0.20, 0.05, 0.0, 0.0, 0.10, 0.08, 0.05, 0.02, 0.0, 0.02, 0.15, 0.05, 0.03],
            Region::ImmuneExcludedBand => {
                [0.0, 0.25, 0.10, 0.0, 0.0, 0.30, 0.12, 0.06, 0.02, 0.0, 0.04, 0.08, 0.0, 0.03]
            }
            Region::DesmoplasticStroma => {
                [0.0, 0.45, 0.20, 0.0, 0.0, 0.05, 0.06, 0.02, 0.02, 0.03, 0.02, 0.10, 0.03, 0.02]
            }
            Region::MyeloidZone => [0.0, 0.06, 0.08, 0.0, 0.0, 0.03, 0.04, 0.06, 0.0, 0.0, 0.0, 0.45, 0.25, 0.03],
            Region::Tls => [0.0, 0.0, 0.02, 0.02, 0.0, 0.10, 0.25, 0.04, 0.45, 0.05, 0.0, 0.0, 0.0, 0.07],
            Region::Vessel => [0.0, 0.0, 0.0, 0.7, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            Region::Stroma => [0.0, 0.10, 0.40, 0.0, 0.0, 0.05, 0.08, 0.02, 0.05, 0.10, 0.03, 0.10, 0.04, 0.03],
        }
    }
}

/// The immune phenotype of a tumour nest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NestPhenotype {
    /// CD8 T cells infiltrate the nest (and become exhausted there).
    Inflamed,
    /// CD8 T cells stay in a band of stroma outside the nest.
    Excluded,
    /// The immune-evasive clone: low MHC-I, few T cells.
    Evasive,
}

impl NestPhenotype {
    /// The label written to `truth.json`.
    pub fn name(self) -> &'static str {
        match self {
            NestPhenotype::Inflamed => "inflamed",
            NestPhenotype::Excluded => "excluded",
            NestPhenotype::Evasive => "evasive",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tmescope_core::programs::{default_markers, default_programs};

    #[test]
    fn names_and_sets_exist() {
        let markers = default_markers();
        let programs = default_programs();
        for (i, t) in CellType::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            for s in t.marker_sets().0 {
                assert!(markers.iter().any(|m| m.name == *s), "{s} missing from markers.gmt");
            }
            for s in t.program_sets().0 {
                assert!(programs.iter().any(|m| m.name == *s), "{s} missing from programs.gmt");
            }
        }
        for p in COMMON_PROGRAMS {
            assert!(programs.iter().any(|m| m.name == *p));
        }
        assert_eq!(CellType::Cd8T.name(), "cd8_t");
        assert!(extra_panel_genes().contains(&"CD4"));
    }

    #[test]
    fn compositions_have_weight() {
        for r in Region::ALL {
            for n in [NestPhenotype::Inflamed, NestPhenotype::Excluded, NestPhenotype::Evasive] {
                assert!(r.composition(n).iter().sum::<f64>() > 0.5, "{}", r.name());
            }
        }
        // The excluded band holds far more CD8 T cells than an excluded nest.
        let cd8 = CellType::Cd8T.index();
        assert!(
            Region::ImmuneExcludedBand.composition(NestPhenotype::Excluded)[cd8]
                > 20.0 * Region::TumorNest.composition(NestPhenotype::Excluded)[cd8]
        );
    }
}
