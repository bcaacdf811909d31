//! A simulated cohort on disk: dataset folders, the reference, the truth files and the sample sheet.
//!
//! Layout of the output folder `DIR` (written under a temporary name, renamed when complete):
//!
//! ```text
//! DIR/<section>_xenium/    cells.parquet genes.parquet counts.parquet  (platform simulated-xenium)
//! DIR/<section>_visium/    same, one row per spot                       (platform simulated-visium)
//! DIR/reference/           labelled single-cell reference (`cell_type`) (platform simulated-scrna)
//! DIR/truth_cells.parquet  every simulated cell: type, region, states, distances, spot
//! DIR/truth_spots.parquet  per spot and cell type: cells and proportion (long form)
//! DIR/truth.json           every parameter, the model and the planted effects, per-section summaries
//! DIR/samples.csv          sample sheet of every dataset (plus samples_xenium.csv / samples_visium.csv)
//! ```

use crate::config::SimConfig;
use crate::expression::{simulate_counts, CellDraw, Profiles};
use crate::layout::{
    plan_sections, simulate_layout, EffectiveParams, Layout, SectionPlan, FLAG_CHECKPOINT_HIGH, FLAG_EXHAUSTED,
    FLAG_HYPOXIC, FLAG_MHC_LOW, FLAG_TGFB_CAF,
};
use crate::rng::{rng_for, STREAM_EXPRESSION, STREAM_REFERENCE};
use crate::spots::{aggregate, SpotGrid, SpotMembers};
use crate::types::{CellType, NestPhenotype, Region};
use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tmescope_core::counts::CsrCounts;
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::output::OutputDir;
use tmescope_core::parquet_io::{arc, ParquetSink};
use tmescope_core::provenance::Provenance;
use tmescope_core::{Error, Result};

/// Platform name of the single-cell datasets.
pub const PLATFORM_XENIUM: &str = "simulated-xenium";
/// Platform name of the spot datasets.
pub const PLATFORM_VISIUM: &str = "simulated-visium";
/// Platform name of the reference.
pub const PLATFORM_REFERENCE: &str = "simulated-scrna";
/// File name of the per-cell truth.
pub const TRUTH_CELLS_FILE: &str = "truth_cells.parquet";
/// File name of the per-spot truth.
pub const TRUTH_SPOTS_FILE: &str = "truth_spots.parquet";
/// File name of the parameters and planted effects.
pub const TRUTH_JSON_FILE: &str = "truth.json";
/// File name of the sample sheet.
pub const SAMPLES_FILE: &str = "samples.csv";
/// Folder name of the reference.
pub const REFERENCE_DIR: &str = "reference";
/// Version of the truth file layout, recorded in `truth.json`.
pub const TRUTH_VERSION: u32 = 1;

/// Schema of `truth_cells.parquet`.
pub fn truth_cells_schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(vec![
        f("cell_id", DataType::Utf8, false),
        f("sample", DataType::Utf8, false),
        f("section", DataType::Utf8, false),
        f("patient", DataType::Utf8, false),
        f("condition", DataType::Utf8, false),
        f("x", DataType::Float64, false),
        f("y", DataType::Float64, false),
        f("cell_type", DataType::Utf8, false),
        f("region", DataType::Utf8, false),
        f("nest", DataType::Int32, true),
        f("nest_phenotype", DataType::Utf8, true),
        f("hypoxia", DataType::Float64, false),
        f("hypoxic", DataType::Boolean, false),
        f("exhausted", DataType::Boolean, false),
        f("mhc_low", DataType::Boolean, false),
        f("checkpoint_high", DataType::Boolean, false),
        f("tgfb_caf", DataType::Boolean, false),
        f("distance_to_vessel", DataType::Float64, false),
        f("distance_to_tumor", DataType::Float64, false),
        f("spot_id", DataType::Utf8, true),
    ]))
}

/// Schema of `truth_spots.parquet`.
pub fn truth_spots_schema() -> SchemaRef {
    let f = |n: &str, t: DataType| Field::new(n, t, false);
    Arc::new(Schema::new(vec![
        f("spot_id", DataType::Utf8),
        f("sample", DataType::Utf8),
        f("section", DataType::Utf8),
        f("cell_type", DataType::Utf8),
        f("n_cells", DataType::UInt32),
        f("proportion", DataType::Float64),
        f("spot_n_cells", DataType::UInt32),
    ]))
}

/// What was written for one section.
#[derive(Debug, Clone, Serialize)]
pub struct SectionSummary {
    /// The design of the section.
    pub plan: SectionPlan,
    /// Parameters in force.
    pub params: EffectiveParams,
    /// Section width and height (micrometres).
    pub size: [f64; 2],
    /// Number of cells.
    pub n_cells: usize,
    /// Xenium-like dataset folder (relative to the output folder), if written.
    pub xenium: Option<String>,
    /// Visium-like dataset folder, if written.
    pub visium: Option<String>,
    /// Spots kept (holding at least one cell).
    pub n_spots: usize,
    /// Mean cells per kept spot.
    pub mean_cells_per_spot: f64,
    /// Non-zeros per cell (mean) of the single-cell counts.
    pub mean_nonzeros_per_cell: f64,
    /// Mean counts per cell.
    pub mean_counts_per_cell: f64,
    /// Fraction of cells of each type.
    pub cell_type_fractions: BTreeMap<String, f64>,
    /// Fraction of cells in each region.
    pub region_fractions: BTreeMap<String, f64>,
    /// Fraction of all cells flagged hypoxic (hypoxia level >= 0.5): the hypoxic area.
    pub hypoxic_fraction: f64,
    /// Fraction of CD8 T cells that are exhausted.
    pub exhausted_fraction_of_cd8: f64,
    /// Fraction of tumour cells with low MHC-I.
    pub mhc_low_fraction_of_tumor: f64,
    /// Fraction of tumour and myeloid cells with checkpoint ligands up.
    pub checkpoint_high_fraction: f64,
    /// Fraction of CAFs with TGF-beta / ECM programs on.
    pub tgfb_caf_fraction_of_caf: f64,
    /// Nests: centre, scale, phenotype and number of tumour cells.
    pub nests: Vec<Value>,
    /// Number of vessels.
    pub n_vessels: usize,
    /// TLS centres.
    pub tls_centres: Vec<[f64; 2]>,
    /// Centres of the myeloid-suppressive zone.
    pub myeloid_centres: Vec<[f64; 2]>,
}

/// What a simulation wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationSummary {
    /// The output folder.
    pub output: PathBuf,
    /// One entry per section.
    pub sections: Vec<SectionSummary>,
    /// Reference folder (relative) and number of cells, if written.
    pub reference: Option<(String, usize)>,
    /// Number of genes in the panel.
    pub n_genes: usize,
    /// Files and folders written, relative to the output folder.
    pub written: Vec<String>,
}

fn fraction(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

fn summarise(layout: &Layout) -> (BTreeMap<String, f64>, BTreeMap<String, f64>, [f64; 5]) {
    let n = layout.x.len();
    let mut types = BTreeMap::new();
    for t in CellType::ALL {
        types.insert(t.name().to_string(), fraction(layout.cell_type.iter().filter(|&&c| c == t).count(), n));
    }
    let mut regions = BTreeMap::new();
    for r in Region::ALL {
        regions.insert(r.name().to_string(), fraction(layout.region.iter().filter(|&&c| c == r).count(), n));
    }
    let count = |pred: &dyn Fn(usize) -> bool| (0..n).filter(|&i| pred(i)).count();
    let has = |i: usize, f: u8| layout.flags[i] & f != 0;
    let cd8 = count(&|i| layout.cell_type[i] == CellType::Cd8T);
    let tumor = count(&|i| layout.cell_type[i] == CellType::TumorEpithelial);
    let cp = count(&|i| layout.cell_type[i].can_express_checkpoint_ligands());
    let caf = count(&|i| layout.cell_type[i].is_caf());
    let states = [
        fraction(count(&|i| has(i, FLAG_HYPOXIC)), n),
        fraction(count(&|i| has(i, FLAG_EXHAUSTED)), cd8),
        fraction(count(&|i| has(i, FLAG_MHC_LOW)), tumor),
        fraction(count(&|i| has(i, FLAG_CHECKPOINT_HIGH)), cp),
        fraction(count(&|i| has(i, FLAG_TGFB_CAF)), caf),
    ];
    (types, regions, states)
}

/// Simulates the reference: `n` cells, types balanced (cell `i` has type `i mod 14`), states drawn at
/// random (so the reference covers the states the sections show): hypoxia level uniform in 30% of cells,
/// exhaustion in 30% of CD8 T cells, TGF-beta in 50% of CAFs, low MHC-I in 20% of tumour cells,
/// checkpoint ligands in 30% of tumour/myeloid cells.
pub fn simulate_reference(cfg: &SimConfig, profiles: &Profiles, n: usize) -> (Vec<CellType>, CsrCounts) {
    let draws: Vec<CellDraw> = (0..n)
        .into_par_iter()
        .map(|i| {
            let t = CellType::ALL[i % CellType::ALL.len()];
            let mut r = rng_for(cfg.seed, &[STREAM_REFERENCE, 0, i as u64]);
            let hypoxia = if r.random::<f64>() < 0.3 { r.random::<f64>() } else { 0.0 };
            let mut flags = 0u8;
            if t == CellType::Cd8T && r.random::<f64>() < 0.3 {
                flags |= FLAG_EXHAUSTED;
            }
            if t.is_caf() && r.random::<f64>() < 0.5 {
                flags |= FLAG_TGFB_CAF;
            }
            if t == CellType::TumorEpithelial && r.random::<f64>() < 0.2 {
                flags |= FLAG_MHC_LOW;
            }
            if t.can_express_checkpoint_ligands() && r.random::<f64>() < 0.3 {
                flags |= FLAG_CHECKPOINT_HIGH;
            }
            CellDraw { cell_type: t, hypoxia, flags }
        })
        .collect();
    let counts = simulate_counts(cfg, profiles, &draws, cfg.reference_depth, [STREAM_REFERENCE, 1], None);
    (draws.iter().map(|d| d.cell_type).collect(), counts)
}

fn metadata_columns(plan: &SectionPlan, n: usize) -> Vec<(String, Column)> {
    vec![
        ("patient".into(), Column::constant_text(&plan.patient, n)),
        ("condition".into(), Column::constant_text(&plan.condition, n)),
        ("timepoint".into(), Column::Int(vec![Some(plan.timepoint as i64); n])),
        ("section".into(), Column::constant_text(&plan.name, n)),
    ]
}

fn cell_id(i: usize) -> String {
    format!("cell_{i}")
}

fn spot_id(grid: &SpotGrid, s: usize) -> String {
    format!("spot_{}_{}", grid.array_row[s], grid.array_col[s])
}

/// Writes a whole simulated cohort into `output` (replacing a folder there). `progress` receives one
/// line per step. Returns what was written.
pub fn simulate_cohort(
    cfg: &SimConfig,
    output: &Path,
    provenance: &Provenance,
    progress: &mut dyn FnMut(&str),
) -> Result<SimulationSummary> {
    cfg.validate()?;
    let out = OutputDir::create(output)?;
    let profiles = Profiles::new(cfg);
    let genes = GeneTable::from_names(profiles.panel.genes.clone());
    let plans = plan_sections(cfg);
    let mut written = Vec::new();
    let mut cells_sink = ParquetSink::create(&out.path(TRUTH_CELLS_FILE), truth_cells_schema(), provenance, &[])?;
    let mut spots_sink = if cfg.platform.has_visium() {
        Some(ParquetSink::create(&out.path(TRUTH_SPOTS_FILE), truth_spots_schema(), provenance, &[])?)
    } else {
        None
    };
    let mut sections = Vec::with_capacity(plans.len());
    let mut sheet: Vec<[String; 8]> = Vec::new();
    for plan in &plans {
        progress(&format!("section {} ({} of {}): layout", plan.name, plan.index + 1, plans.len()));
        let layout = simulate_layout(cfg, plan);
        let n = layout.x.len();
        let xenium_name = format!("{}_xenium", plan.name);
        let visium_name = format!("{}_visium", plan.name);

        // Spot membership (needed for the truth even before counts).
        let (grid, membership) = if cfg.platform.has_visium() {
            let grid = SpotGrid::new(layout.width, layout.height, cfg.spot_spacing);
            let m = grid.assign(&layout.x, &layout.y, cfg.spot_diameter / 2.0);
            (Some(grid), Some(m))
        } else {
            (None, None)
        };
        let draws: Vec<CellDraw> = (0..n)
            .map(|i| CellDraw { cell_type: layout.cell_type[i], hypoxia: layout.hypoxia[i], flags: layout.flags[i] })
            .collect();
        let needed: Option<Vec<bool>> = if cfg.platform.has_xenium() {
            None
        } else {
            membership.as_ref().map(|m| m.iter().map(Option::is_some).collect())
        };
        progress(&format!("section {}: counts of {n} cells", plan.name));
        let counts = simulate_counts(
            cfg,
            &profiles,
            &draws,
            cfg.depth,
            [STREAM_EXPRESSION, plan.index as u64],
            needed.as_deref(),
        );
        let measured = needed.as_ref().map_or(n, |m| m.iter().filter(|&&b| b).count());
        let mean_nonzeros_per_cell = fraction(counts.nnz(), measured);
        let mean_counts_per_cell = if measured == 0 { 0.0 } else { counts.total() / measured as f64 };

        // Truth of the cells.
        let spot_of: Vec<Option<String>> = match (&grid, &membership) {
            (Some(g), Some(m)) => m.iter().map(|s| s.map(|s| spot_id(g, s as usize))).collect(),
            _ => vec![None; n],
        };
        write_truth_cells(&mut cells_sink, plan, &xenium_name, &layout, spot_of)?;

        let mut visium = None;
        let mut n_spots = 0;
        let mut mean_cells_per_spot = 0.0;
        if let (Some(grid), Some(membership)) = (&grid, &membership) {
            progress(&format!("section {}: spots", plan.name));
            let members = SpotMembers::new(membership, grid.len());
            let kept: Vec<usize> = (0..grid.len()).filter(|&s| !members.of(s).is_empty()).collect();
            n_spots = kept.len();
            mean_cells_per_spot = fraction(members.cells.len(), kept.len());
            let spot_counts = aggregate(&counts, &members, &kept);
            let k = kept.len();
            let mut extra = vec![
                ("in_tissue".to_string(), Column::Int(vec![Some(1); k])),
                ("array_row".to_string(), Column::Int(kept.iter().map(|&s| Some(grid.array_row[s])).collect())),
                ("array_col".to_string(), Column::Int(kept.iter().map(|&s| Some(grid.array_col[s])).collect())),
            ];
            extra.extend(metadata_columns(plan, k));
            let ds = Dataset {
                cells: CellTable {
                    cell_id: kept.iter().map(|&s| spot_id(grid, s)).collect(),
                    sample: vec![visium_name.clone(); k],
                    x: kept.iter().map(|&s| grid.centre[s][0]).collect(),
                    y: kept.iter().map(|&s| grid.centre[s][1]).collect(),
                    z: None,
                    extra,
                },
                genes: genes.clone(),
                counts: spot_counts,
                platform: PLATFORM_VISIUM.into(),
                coordinate_unit: "micrometre".into(),
                notes: vec![format!(
                    "simulated section {}: {} um spots on a {} um hexagonal grid summing the cells inside",
                    plan.name, cfg.spot_diameter, cfg.spot_spacing
                )],
            };
            if k > 0 {
                ds.validate(&out.path(&visium_name))?;
                ds.write(&out.path(&visium_name), provenance)?;
                sheet.push(sheet_row(&visium_name, plan, "visium"));
                written.push(visium_name.clone());
                visium = Some(visium_name.clone());
            }
            if let Some(sink) = spots_sink.as_mut() {
                write_truth_spots(sink, plan, &visium_name, grid, &members, &kept, &layout)?;
            }
        }

        let mut xenium = None;
        if cfg.platform.has_xenium() {
            progress(&format!("section {}: writing {xenium_name}", plan.name));
            let mut extra = vec![("cell_area".to_string(), Column::Float(vec![Some(cfg.cell_area); n]))];
            extra.extend(metadata_columns(plan, n));
            let ds = Dataset {
                cells: CellTable {
                    cell_id: (0..n).map(cell_id).collect(),
                    sample: vec![xenium_name.clone(); n],
                    x: layout.x.clone(),
                    y: layout.y.clone(),
                    z: None,
                    extra,
                },
                genes: genes.clone(),
                counts,
                platform: PLATFORM_XENIUM.into(),
                coordinate_unit: "micrometre".into(),
                notes: vec![format!("simulated section {} (tmescope simulate, seed {})", plan.name, cfg.seed)],
            };
            ds.validate(&out.path(&xenium_name))?;
            ds.write(&out.path(&xenium_name), provenance)?;
            sheet.push(sheet_row(&xenium_name, plan, "xenium"));
            written.push(xenium_name.clone());
            xenium = Some(xenium_name.clone());
        }

        let (cell_type_fractions, region_fractions, states) = summarise(&layout);
        let nests = layout
            .nests
            .iter()
            .enumerate()
            .map(|(k, nest)| {
                let cells = (0..n).filter(|&i| layout.region[i].is_tumor() && layout.nest[i] == Some(k as u32)).count();
                json!({"nest": k, "centre": nest.centre, "scale": nest.scale, "phenotype": nest.phenotype.name(), "n_tumor_region_cells": cells})
            })
            .collect();
        sections.push(SectionSummary {
            plan: plan.clone(),
            params: layout.params.clone(),
            size: [layout.width, layout.height],
            n_cells: n,
            xenium,
            visium,
            n_spots,
            mean_cells_per_spot,
            mean_nonzeros_per_cell,
            mean_counts_per_cell,
            cell_type_fractions,
            region_fractions,
            hypoxic_fraction: states[0],
            exhausted_fraction_of_cd8: states[1],
            mhc_low_fraction_of_tumor: states[2],
            checkpoint_high_fraction: states[3],
            tgfb_caf_fraction_of_caf: states[4],
            nests,
            n_vessels: layout.vessels.len(),
            tls_centres: layout.tls_centres.clone(),
            myeloid_centres: layout.myeloid_centres.clone(),
        });
    }
    cells_sink.finish()?;
    written.push(TRUTH_CELLS_FILE.into());
    if let Some(sink) = spots_sink {
        sink.finish()?;
        written.push(TRUTH_SPOTS_FILE.into());
    }

    let mut reference = None;
    if cfg.reference_cells > 0 {
        progress(&format!("reference: {} cells", cfg.reference_cells));
        let (types, counts) = simulate_reference(cfg, &profiles, cfg.reference_cells);
        let n = types.len();
        let ds = Dataset {
            cells: CellTable {
                cell_id: (0..n).map(|i| format!("ref_{i}")).collect(),
                sample: vec![REFERENCE_DIR.to_string(); n],
                x: vec![f64::NAN; n],
                y: vec![f64::NAN; n],
                z: None,
                extra: vec![(
                    "cell_type".into(),
                    Column::Text(types.iter().map(|t| Some(t.name().to_string())).collect()),
                )],
            },
            genes: genes.clone(),
            counts,
            platform: PLATFORM_REFERENCE.into(),
            coordinate_unit: "none".into(),
            notes: vec!["simulated single-cell reference: balanced types, disjoint from every section's cells".into()],
        };
        ds.validate(&out.path(REFERENCE_DIR))?;
        ds.write(&out.path(REFERENCE_DIR), provenance)?;
        written.push(REFERENCE_DIR.into());
        reference = Some((REFERENCE_DIR.to_string(), n));
    }

    progress("truth.json and sample sheets");
    let truth = truth_json(cfg, &profiles, &sections, reference.as_ref());
    let text = serde_json::to_string_pretty(&truth).map_err(|e| Error::Internal(format!("truth.json: {e}")))?;
    write_text(&out.path(TRUTH_JSON_FILE), &(text + "\n"))?;
    written.push(TRUTH_JSON_FILE.into());
    let header = "sample,path,format,patient,condition,timepoint,section,platform";
    let csv = |rows: &mut dyn Iterator<Item = &[String; 8]>| {
        let mut s = String::from(header);
        s.push('\n');
        for r in rows {
            s.push_str(&r.join(","));
            s.push('\n');
        }
        s
    };
    write_text(&out.path(SAMPLES_FILE), &csv(&mut sheet.iter()))?;
    written.push(SAMPLES_FILE.into());
    if cfg.platform == crate::config::Platform::Both {
        for p in ["xenium", "visium"] {
            let name = format!("samples_{p}.csv");
            write_text(&out.path(&name), &csv(&mut sheet.iter().filter(|r| r[7] == p)))?;
            written.push(name);
        }
    }
    let output = out.commit()?;
    Ok(SimulationSummary { output, sections, reference, n_genes: profiles.panel.genes.len(), written })
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn sheet_row(dataset: &str, plan: &SectionPlan, platform: &str) -> [String; 8] {
    [
        dataset.to_string(),
        dataset.to_string(),
        "tmescope".to_string(),
        plan.patient.clone(),
        plan.condition.clone(),
        plan.timepoint.to_string(),
        plan.name.clone(),
        platform.to_string(),
    ]
}

fn write_truth_cells(
    sink: &mut ParquetSink,
    plan: &SectionPlan,
    sample: &str,
    layout: &Layout,
    spot_of: Vec<Option<String>>,
) -> Result<()> {
    let n = layout.x.len();
    let is =
        |f: u8| -> ArrayRef { arc(BooleanArray::from(layout.flags.iter().map(|&x| x & f != 0).collect::<Vec<_>>())) };
    let tumor_nest: Vec<Option<u32>> =
        (0..n).map(|i| if layout.region[i].is_tumor() { layout.nest[i] } else { None }).collect();
    let phenotype = |k: Option<u32>| -> Option<&'static str> {
        k.and_then(|k| layout.nests.get(k as usize)).map(|nest: &crate::layout::Nest| nest.phenotype.name())
    };
    let columns: Vec<ArrayRef> = vec![
        arc(StringArray::from_iter_values((0..n).map(cell_id))),
        arc(StringArray::from_iter_values(std::iter::repeat_n(sample, n))),
        arc(StringArray::from_iter_values(std::iter::repeat_n(plan.name.as_str(), n))),
        arc(StringArray::from_iter_values(std::iter::repeat_n(plan.patient.as_str(), n))),
        arc(StringArray::from_iter_values(std::iter::repeat_n(plan.condition.as_str(), n))),
        arc(Float64Array::from(layout.x.clone())),
        arc(Float64Array::from(layout.y.clone())),
        arc(StringArray::from_iter_values(layout.cell_type.iter().map(|t| t.name()))),
        arc(StringArray::from_iter_values(layout.region.iter().map(|r| r.name()))),
        arc(Int32Array::from(tumor_nest.iter().map(|k| k.map(|k| k as i32)).collect::<Vec<_>>())),
        arc(StringArray::from(tumor_nest.iter().map(|&k| phenotype(k)).collect::<Vec<_>>())),
        arc(Float64Array::from(layout.hypoxia.clone())),
        is(FLAG_HYPOXIC),
        is(FLAG_EXHAUSTED),
        is(FLAG_MHC_LOW),
        is(FLAG_CHECKPOINT_HIGH),
        is(FLAG_TGFB_CAF),
        arc(Float64Array::from(layout.distance_to_vessel.clone())),
        arc(Float64Array::from(layout.distance_to_tumor.clone())),
        arc(StringArray::from(spot_of)),
    ];
    let batch = RecordBatch::try_new(truth_cells_schema(), columns)
        .map_err(|e| Error::Internal(format!("truth_cells batch: {e}")))?;
    sink.write(&batch)
}

fn write_truth_spots(
    sink: &mut ParquetSink,
    plan: &SectionPlan,
    sample: &str,
    grid: &SpotGrid,
    members: &SpotMembers,
    kept: &[usize],
    layout: &Layout,
) -> Result<()> {
    let nt = CellType::ALL.len();
    let rows = kept.len() * nt;
    let mut ids = Vec::with_capacity(rows);
    let mut types = Vec::with_capacity(rows);
    let mut n_cells = Vec::with_capacity(rows);
    let mut props = Vec::with_capacity(rows);
    let mut totals = Vec::with_capacity(rows);
    for &s in kept {
        let mut c = [0u32; 14];
        for &cell in members.of(s) {
            c[layout.cell_type[cell as usize].index()] += 1;
        }
        let total: u32 = c.iter().sum();
        let id = spot_id(grid, s);
        for t in CellType::ALL {
            ids.push(id.clone());
            types.push(t.name());
            n_cells.push(c[t.index()]);
            props.push(fraction(c[t.index()] as usize, total as usize));
            totals.push(total);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        arc(StringArray::from(ids)),
        arc(StringArray::from_iter_values(std::iter::repeat_n(sample, rows))),
        arc(StringArray::from_iter_values(std::iter::repeat_n(plan.name.as_str(), rows))),
        arc(StringArray::from(types)),
        arc(UInt32Array::from(n_cells)),
        arc(Float64Array::from(props)),
        arc(UInt32Array::from(totals)),
    ];
    let batch = RecordBatch::try_new(truth_spots_schema(), columns)
        .map_err(|e| Error::Internal(format!("truth_spots batch: {e}")))?;
    sink.write(&batch)
}

fn truth_json(
    cfg: &SimConfig,
    profiles: &Profiles,
    sections: &[SectionSummary],
    reference: Option<&(String, usize)>,
) -> Value {
    let names = |idx: &[u32]| -> Vec<&str> { idx.iter().map(|&j| profiles.panel.genes[j as usize].as_str()).collect() };
    let st = &profiles.states;
    let mut compositions = serde_json::Map::new();
    for r in Region::ALL {
        let mut by = serde_json::Map::new();
        for (label, ph) in [
            ("inflamed", NestPhenotype::Inflamed),
            ("excluded", NestPhenotype::Excluded),
            ("evasive", NestPhenotype::Evasive),
        ] {
            let w = r.composition(ph);
            let m: serde_json::Map<String, Value> = CellType::ALL
                .iter()
                .filter(|t| w[t.index()] > 0.0)
                .map(|t| (t.name().to_string(), json!(w[t.index()])))
                .collect();
            by.insert(label.to_string(), Value::Object(m));
        }
        compositions.insert(r.name().to_string(), Value::Object(by));
    }
    let profile_map: serde_json::Map<String, Value> =
        CellType::ALL.iter().map(|t| (t.name().to_string(), json!(profiles.profile[t.index()]))).collect();
    let markers: serde_json::Map<String, Value> =
        CellType::ALL.iter().map(|t| (t.name().to_string(), json!(profiles.markers[t.index()]))).collect();
    json!({
        "truth_version": TRUTH_VERSION,
        "tool": "tmescope",
        "tool_version": tmescope_core::TOOL_VERSION,
        "parameters": cfg,
        "cell_types": CellType::ALL.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "regions": Region::ALL.iter().map(|r| r.name()).collect::<Vec<_>>(),
        "panel": {
            "n_genes": profiles.panel.genes.len(),
            "n_named": profiles.panel.n_named,
            "n_background": profiles.panel.genes.len() - profiles.panel.n_named,
            "background_prefix": "SIMBG",
        },
        "markers": markers,
        "region_compositions": compositions,
        "state_programs": {
            "hypoxia": {
                "rule": "every cell: level = smoothstep((distance_to_vessel - hypoxia_onset) / (hypoxia_full - hypoxia_onset)); flag hypoxic when level >= 0.5",
                "effect": format!("genes x (1 + {} * level)", cfg.hypoxia_gain),
                "genes": names(&st.hypoxia),
            },
            "exhaustion": {
                "rule": "cd8_t cells in tumor_core, tumor_nest or invasive_margin",
                "effect": format!("genes x {}", cfg.exhaustion_gain),
                "genes": names(&st.exhaustion),
            },
            "tgfb_caf": {
                "rule": format!("mycaf and icaf cells within caf_tgfb_distance = {} um of a tumour cell", cfg.caf_tgfb_distance),
                "effect": format!("genes x {}", cfg.tgfb_gain),
                "genes": names(&st.tgfb),
            },
            "mhc_low": {
                "rule": "tumor_epithelial cells of nests with phenotype `evasive` (the immune-evasive clone)",
                "effect": format!("genes x {}", cfg.mhc_low_factor),
                "genes": names(&st.mhc1),
            },
            "checkpoint_high": {
                "rule": format!("tumor_epithelial, macrophage_m2, monocyte_mdsc and dendritic cells with a cd8_t, cd4_t or treg cell within checkpoint_radius = {} um", cfg.checkpoint_radius),
                "effect": format!("genes x {}", cfg.checkpoint_gain),
                "genes": names(&st.checkpoint),
            },
        },
        "therapy_effect": {
            "description": "The first condition is the untreated baseline; the last gets these factors in full, conditions in between get factor^(timepoint / (n_conditions - 1)). Post-therapy sections lose tumour and T/NK cells and gain CAFs, myeloid cells and hypoxic area (fewer vessels).",
            "factors": cfg.therapy,
            "expected": [
                {"quantity": "fraction of tumor_epithelial cells", "direction": "lower after therapy"},
                {"quantity": "fraction of cd8_t, cd4_t, treg and nk cells", "direction": "lower after therapy"},
                {"quantity": "fraction of mycaf and icaf cells", "direction": "higher after therapy"},
                {"quantity": "fraction of macrophage_m2 and monocyte_mdsc cells; myeloid_zone region", "direction": "higher after therapy"},
                {"quantity": "hypoxic fraction (hypoxia level >= 0.5)", "direction": "higher after therapy"},
            ],
        },
        "sections": sections,
        "reference": reference.map(|(dir, n)| json!({"path": dir, "n_cells": n, "types": "balanced: cell i has type i mod 14", "states": "random (see docs/simulator.md)"})),
        "profiles": profile_map,
        "genes": profiles.panel.genes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Platform;
    use tmescope_core::parquet_io::Table;

    fn tiny(platform: Platform) -> SimConfig {
        SimConfig {
            n_cells: 3_000,
            n_samples: 2,
            reference_cells: 140,
            n_background_genes: 50,
            platform,
            ..SimConfig::default()
        }
    }

    #[test]
    fn spot_truth_matches_cells_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sim");
        let cfg = tiny(Platform::Both);
        let s = simulate_cohort(&cfg, &dir, &Provenance::new("simulate", json!({})), &mut |_| {}).unwrap();
        assert_eq!(s.sections.len(), 2);
        let cells = Table::read(&dir.join(TRUTH_CELLS_FILE)).unwrap();
        let spots = Table::read(&dir.join(TRUTH_SPOTS_FILE)).unwrap();
        // Count truth cells per (sample section, spot, type) and compare with truth_spots.
        let section = cells.utf8("section").unwrap();
        let spot = cells.utf8_opt("spot_id").unwrap();
        let ty = cells.utf8("cell_type").unwrap();
        let mut from_cells: BTreeMap<(String, String, String), u32> = BTreeMap::new();
        for i in 0..cells.num_rows() {
            if let Some(sp) = &spot[i] {
                *from_cells.entry((section[i].clone(), sp.clone(), ty[i].clone())).or_default() += 1;
            }
        }
        let s_section = spots.utf8("section").unwrap();
        let s_id = spots.utf8("spot_id").unwrap();
        let s_type = spots.utf8("cell_type").unwrap();
        let s_n = spots.u32("n_cells").unwrap();
        let s_p = spots.f64("proportion").unwrap();
        let s_tot = spots.u32("spot_n_cells").unwrap();
        let mut nonzero = 0;
        for i in 0..spots.num_rows() {
            let key = (s_section[i].clone(), s_id[i].clone(), s_type[i].clone());
            assert_eq!(from_cells.get(&key).copied().unwrap_or(0), s_n[i]);
            assert!((s_p[i] - s_n[i] as f64 / s_tot[i] as f64).abs() < 1e-12);
            nonzero += usize::from(s_n[i] > 0);
        }
        assert_eq!(nonzero, from_cells.len());
        // Spot counts equal the sum of the member cells' counts.
        let xen = Dataset::read(&dir.join("P1_pre_xenium")).unwrap();
        let vis = Dataset::read(&dir.join("P1_pre_visium")).unwrap();
        assert_eq!(vis.platform, PLATFORM_VISIUM);
        let in_spot: f64 = (0..xen.cells.len())
            .filter(|&i| spot[i].is_some())
            .map(|i| xen.counts.row_iter(i).map(|(_, v)| v).sum::<f64>())
            .sum();
        assert_eq!(vis.counts.total(), in_spot);
        let reference = Dataset::read(&dir.join(REFERENCE_DIR)).unwrap();
        assert_eq!(reference.cells.len(), 140);
        assert!(reference.cells.get("cell_type").is_some());
        let sheet = std::fs::read_to_string(dir.join(SAMPLES_FILE)).unwrap();
        assert_eq!(sheet.lines().count(), 5, "{sheet}");
        assert!(sheet.starts_with("sample,path,format,patient,condition,timepoint"));
        let truth: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(TRUTH_JSON_FILE)).unwrap()).unwrap();
        assert_eq!(truth["sections"][1]["plan"]["condition"], "post");
    }

    #[test]
    fn planted_effects_show_in_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sim");
        let cfg = SimConfig {
            n_cells: 8_000,
            n_samples: 1,
            reference_cells: 0,
            platform: Platform::Xenium,
            ..tiny(Platform::Xenium)
        };
        simulate_cohort(&cfg, &dir, &Provenance::new("simulate", json!({})), &mut |_| {}).unwrap();
        let ds = Dataset::read(&dir.join("P1_pre_xenium")).unwrap();
        let truth = Table::read(&dir.join(TRUTH_CELLS_FILE)).unwrap();
        let ty = truth.utf8("cell_type").unwrap();
        let dv = truth.f64("distance_to_vessel").unwrap();
        let nest_ph = truth.utf8_opt("nest_phenotype").unwrap();
        let genes: Vec<&str> = ds.genes.gene_name.iter().map(String::as_str).collect();
        let set = |names: &[&str]| -> Vec<u32> {
            names.iter().filter_map(|g| genes.iter().position(|x| x == g)).map(|j| j as u32).collect()
        };
        let score = |i: usize, set: &[u32]| -> f64 {
            let total: f64 = ds.counts.row_iter(i).map(|(_, v)| v).sum();
            let hit: f64 = ds.counts.row_iter(i).filter(|(j, _)| set.contains(j)).map(|(_, v)| v).sum();
            if total > 0.0 {
                hit / total
            } else {
                0.0
            }
        };
        let mean = |cells: &[usize], set: &[u32]| {
            cells.iter().map(|&i| score(i, set)).sum::<f64>() / cells.len().max(1) as f64
        };
        let hyp = set(&["CA9", "VEGFA", "LDHA", "BNIP3", "PGK1", "SLC2A1", "NDRG1", "ADM"]);
        let tumor: Vec<usize> = (0..ty.len()).filter(|&i| ty[i] == "tumor_epithelial").collect();
        let near: Vec<usize> = tumor.iter().copied().filter(|&i| dv[i] < 40.0).collect();
        let far: Vec<usize> = tumor.iter().copied().filter(|&i| dv[i] > 220.0).collect();
        assert!(!near.is_empty() && !far.is_empty());
        assert!(
            mean(&far, &hyp) > 2.0 * mean(&near, &hyp),
            "hypoxia far {} near {}",
            mean(&far, &hyp),
            mean(&near, &hyp)
        );
        let mhc = set(&["HLA-A", "HLA-B", "HLA-C", "B2M"]);
        let evasive: Vec<usize> = tumor.iter().copied().filter(|&i| nest_ph[i].as_deref() == Some("evasive")).collect();
        let other: Vec<usize> =
            tumor.iter().copied().filter(|&i| matches!(nest_ph[i].as_deref(), Some("inflamed" | "excluded"))).collect();
        if !evasive.is_empty() && !other.is_empty() {
            assert!(mean(&evasive, &mhc) < 0.5 * mean(&other, &mhc));
        }
        // Markers: EPCAM counts concentrate in tumour cells.
        let epcam = set(&["EPCAM"]);
        let non_tumor: Vec<usize> = (0..ty.len()).filter(|&i| ty[i] != "tumor_epithelial").collect();
        assert!(mean(&tumor, &epcam) > 10.0 * mean(&non_tumor, &epcam));
    }

    #[test]
    fn therapy_effect_shows_in_realised_fractions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sim");
        let cfg = SimConfig {
            n_cells: 10_000,
            n_samples: 2,
            reference_cells: 0,
            platform: Platform::Visium,
            ..tiny(Platform::Visium)
        };
        let s = simulate_cohort(&cfg, &dir, &Provenance::new("simulate", json!({})), &mut |_| {}).unwrap();
        let (pre, post) = (&s.sections[0], &s.sections[1]);
        let f = |sec: &SectionSummary, types: &[&str]| types.iter().map(|t| sec.cell_type_fractions[*t]).sum::<f64>();
        assert!(f(post, &["tumor_epithelial"]) < f(pre, &["tumor_epithelial"]));
        assert!(f(post, &["cd8_t", "cd4_t", "treg", "nk"]) < f(pre, &["cd8_t", "cd4_t", "treg", "nk"]));
        assert!(f(post, &["mycaf", "icaf"]) > f(pre, &["mycaf", "icaf"]));
        assert!(f(post, &["macrophage_m2", "monocyte_mdsc"]) > f(pre, &["macrophage_m2", "monocyte_mdsc"]));
        assert!(post.hypoxic_fraction > pre.hypoxic_fraction, "{} vs {}", post.hypoxic_fraction, pre.hypoxic_fraction);
        assert!(pre.n_spots > 0 && pre.mean_cells_per_spot > 3.0);
    }
}
