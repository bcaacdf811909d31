//! Loading one sample run folder into the compact, per-cell arrays the figures and summary need.
//!
//! Cells are the rows of `dataset/cells.parquet` (positions, and the `cell_type` label and `condition`
//! when given); every other per-cell file is joined on `cell_id` (a hash join, O(rows)). Long-form files
//! (proportions, programs) are streamed, so memory stays proportional to cells x programs in `f32`, never
//! to the text of the files. When `cells.parquet` is missing, the cells of `niches.parquet` are used
//! without positions (maps are then "not available").

use crate::read::{describe, for_each_batch, FastMap, Interner, NONE};
use crate::rundir::stage_file;
use arrow::array::Array;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tmescope_core::{Error, Result};

/// A categorical per-cell column: codes into `names`, [`NONE`] for missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cat {
    /// Per-cell code.
    pub codes: Vec<u32>,
    /// Category names by code.
    pub names: Vec<String>,
}

impl Cat {
    /// Number of cells in each category (indexed by code).
    pub fn counts(&self) -> Vec<usize> {
        let mut c = vec![0usize; self.names.len()];
        for &k in &self.codes {
            if let Some(slot) = c.get_mut(k as usize) {
                *slot += 1;
            }
        }
        c
    }

    /// Name of cell `i`'s category.
    pub fn name_of(&self, i: usize) -> Option<&str> {
        self.codes.get(i).and_then(|&c| self.names.get(c as usize)).map(String::as_str)
    }
}

/// Scores of one gene program, aligned with the cells (NaN where a cell has no score).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramScores {
    /// Program name.
    pub name: String,
    /// Raw score per cell.
    pub score: Vec<f32>,
    /// Neighbourhood-smoothed score per cell (NaN when the file has no `smoothed_score`).
    pub smoothed: Vec<f32>,
}

/// Mean cell-type composition of each niche.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    /// Cell types (columns).
    pub cell_types: Vec<String>,
    /// Per niche (indexed by niche code): fraction of each cell type, summing to 1 (or all 0).
    pub fractions: Vec<Vec<f64>>,
    /// What the composition was computed from (labels or deconvolved proportions).
    pub source: String,
}

/// What `deconvolution_qc.parquet` says about the spots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QcSummary {
    /// Number of spots in the file.
    pub n_spots: usize,
    /// Spots not fitted, by reason.
    pub dropped: BTreeMap<String, usize>,
    /// Spots by doublet-mode class.
    pub classes: BTreeMap<String, usize>,
    /// Fitted spots whose optimisation did not converge.
    pub not_converged: usize,
}

/// Neighbourhood-enrichment z-scores between cell types.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    /// Cell types (rows and columns).
    pub types: Vec<String>,
    /// z[a][b]; NaN where the file has no value.
    pub z: Vec<Vec<f64>>,
}

/// One row of `communication.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommRow {
    /// Niche the interaction was tested in.
    pub niche: String,
    /// Sending cell type.
    pub sender: String,
    /// Receiving cell type.
    pub receiver: String,
    /// Ligand gene.
    pub ligand: String,
    /// Receptor gene.
    pub receptor: String,
    /// Interaction score.
    pub score: f64,
    /// FDR q-value (NaN when absent).
    pub q: f64,
}

/// A small table shown as text (e.g. `niche_summary.parquet`, `autocorrelation.parquet`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextTable {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of formatted cells.
    pub rows: Vec<Vec<String>>,
    /// Rows in the file (the table may show fewer).
    pub total_rows: usize,
}

/// A Parquet file of the run, for the links and provenance sections.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// Path of the file.
    pub path: PathBuf,
    /// Path relative to the run folder (for display).
    pub display: String,
    /// Number of rows.
    pub rows: usize,
    /// Size in bytes.
    pub bytes: u64,
    /// The `tmescope.provenance` JSON, when present.
    pub provenance: Option<serde_json::Value>,
}

/// Everything the report knows about one sample.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Sample name (from `cells.parquet`'s `sample` column, else the folder name).
    pub name: String,
    /// The run folder.
    pub root: PathBuf,
    /// Condition (from a `condition` column), if any.
    pub condition: Option<String>,
    /// Number of cells / spots.
    pub n_cells: usize,
    /// x positions (NaN when unknown).
    pub x: Vec<f64>,
    /// y positions.
    pub y: Vec<f64>,
    /// Whether finite positions exist.
    pub has_positions: bool,
    /// Cell type per cell: the dominant deconvolved type when proportions exist, else the label.
    pub cell_type: Option<Cat>,
    /// Where `cell_type` came from.
    pub cell_type_source: String,
    /// Niche per cell.
    pub niche: Option<Cat>,
    /// Microenvironmental state per cell.
    pub state: Option<Cat>,
    /// Resistance score per cell (NaN when absent).
    pub resistance_score: Option<Vec<f64>>,
    /// Resistance niche id per cell (missing = not in a resistance niche).
    pub resistance_niche: Option<Cat>,
    /// Cell-type composition of each niche.
    pub composition: Option<Composition>,
    /// Gene program scores.
    pub programs: Vec<ProgramScores>,
    /// Deconvolution QC.
    pub qc: Option<QcSummary>,
    /// Neighbourhood enrichment.
    pub enrichment: Option<Enrichment>,
    /// Communication rows.
    pub communication: Option<Vec<CommRow>>,
    /// Spatial autocorrelation, strongest first.
    pub autocorrelation: Option<TextTable>,
    /// The niche summary table.
    pub niche_summary: Option<TextTable>,
    /// Things the reader should know (unmatched ids, ...).
    pub notes: Vec<String>,
    /// Every Parquet file of the run folder.
    pub files: Vec<FileInfo>,
}

/// Lists every Parquet file below `root` (sorted), with rows, size and provenance.
pub fn list_parquet(root: &Path) -> Result<Vec<FileInfo>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let hidden = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(root, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let (_, meta, rows) = describe(&p)?;
            let bytes = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            let provenance =
                meta.get(tmescope_core::provenance::PROVENANCE_KEY).and_then(|t| serde_json::from_str(t).ok());
            let display = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            Ok(FileInfo { path: p, display, rows, bytes, provenance })
        })
        .collect()
}

/// Joins per-cell rows to cells by id. Rows are usually in the cells' order, so the row's own index is
/// tried first and the hash map only on a mismatch.
struct CellIndex {
    ids: Vec<String>,
    map: FastMap<String, u32>,
}

impl CellIndex {
    fn new(ids: Vec<String>) -> Self {
        let mut map = FastMap::default();
        map.reserve(ids.len());
        for (i, id) in ids.iter().enumerate() {
            map.entry(id.clone()).or_insert(i as u32);
        }
        CellIndex { ids, map }
    }

    fn find(&self, guess: usize, id: &str) -> Option<usize> {
        if self.ids.get(guess).is_some_and(|g| g == id) {
            return Some(guess);
        }
        self.map.get(id).map(|&i| i as usize)
    }
}

fn cat_from(interner: Interner, codes: Vec<u32>) -> Cat {
    Cat { codes, names: interner.names }
}

/// Keeps the rows of a file that belong to `sample` (files may pool several samples); a file without a
/// `sample` column, or whose samples all differ from ours (e.g. a renamed sample), keeps every row.
fn sample_filter(path: &Path, sample: &str) -> Result<bool> {
    let (names, _, _) = describe(path)?;
    if !names.iter().any(|n| n == "sample") {
        return Ok(false);
    }
    let mut seen = false;
    for_each_batch(path, &["sample"], &[], |b| {
        let s = b.text("sample")?;
        if (0..s.len()).any(|i| !s.is_null(i) && s.value(i) == sample) {
            seen = true;
        }
        Ok(())
    })?;
    Ok(seen)
}

/// Loads one sample run folder.
pub fn load_sample(root: &Path) -> Result<Sample> {
    let folder_name = root
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| root.display().to_string());
    let mut s = Sample { name: folder_name, root: root.to_path_buf(), ..Default::default() };
    s.files = list_parquet(root)?;

    // Cells: positions, label, condition.
    let mut ids: Vec<String> = Vec::new();
    if let Some(cells) = stage_file(root, "dataset", "cells.parquet") {
        let mut label = Interner::default();
        let mut label_codes = Vec::new();
        let mut has_label = false;
        let mut sample_name: Option<String> = None;
        for_each_batch(&cells, &["cell_id"], &["sample", "x", "y", "cell_type", "condition"], |b| {
            let id = b.text("cell_id")?;
            for i in 0..id.len() {
                if id.is_null(i) {
                    return Err(Error::input(&cells, "column `cell_id`", "expected an id in every row, found a null"));
                }
                ids.push(id.value(i).to_string());
            }
            if b.has("x") && b.has("y") {
                s.x.extend(b.f64("x")?);
                s.y.extend(b.f64("y")?);
            } else {
                s.x.extend(std::iter::repeat_n(f64::NAN, b.len()));
                s.y.extend(std::iter::repeat_n(f64::NAN, b.len()));
            }
            if sample_name.is_none() && b.has("sample") {
                let a = b.text("sample")?;
                sample_name = (0..a.len()).find(|&i| !a.is_null(i)).map(|i| a.value(i).to_string());
            }
            if s.condition.is_none() && b.has("condition") {
                let a = b.text("condition")?;
                s.condition = (0..a.len()).find(|&i| !a.is_null(i)).map(|i| a.value(i).to_string());
            }
            if b.has("cell_type") {
                has_label = true;
                let a = b.text("cell_type")?;
                label_codes.extend((0..a.len()).map(|i| if a.is_null(i) { NONE } else { label.code(a.value(i)) }));
            }
            Ok(())
        })?;
        if let Some(n) = sample_name {
            s.name = n;
        }
        if has_label {
            s.cell_type = Some(cat_from(label, label_codes));
            s.cell_type_source = "cell_type label in cells.parquet".into();
        }
    }

    // Niches (also the source of cells when cells.parquet is missing).
    let niches_path = stage_file(root, "niches", "niches.parquet");
    if ids.is_empty() {
        if let Some(p) = &niches_path {
            for_each_batch(p, &["cell_id"], &[], |b| {
                let id = b.text("cell_id")?;
                ids.extend((0..id.len()).map(|i| id.value(i).to_string()));
                Ok(())
            })?;
            s.x = vec![f64::NAN; ids.len()];
            s.y = vec![f64::NAN; ids.len()];
        }
    }
    s.n_cells = ids.len();
    s.has_positions = s.x.iter().zip(&s.y).any(|(x, y)| x.is_finite() && y.is_finite());
    let index = CellIndex::new(ids);
    let n = s.n_cells;

    if let Some(p) = &niches_path {
        load_niches(p, &index, &mut s)?;
    }
    if let Some(p) = stage_file(root, "deconvolution", "proportions.parquet") {
        load_proportions(&p, &index, &mut s)?;
    }
    if s.composition.is_none() {
        if let (Some(niche), Some(ct)) = (&s.niche, &s.cell_type) {
            let mut counts = vec![vec![0f64; ct.names.len()]; niche.names.len()];
            for (&a, &b) in niche.codes.iter().zip(&ct.codes) {
                if a != NONE && b != NONE {
                    counts[a as usize][b as usize] += 1.0;
                }
            }
            s.composition = Some(Composition {
                cell_types: ct.names.clone(),
                fractions: normalise_rows(counts),
                source: format!("cell counts ({})", s.cell_type_source),
            });
        }
    }
    if let Some(p) = stage_file(root, "scores", "programs.parquet") {
        load_programs(&p, &index, n, &mut s)?;
    }
    if let Some(p) = stage_file(root, "deconvolution", "deconvolution_qc.parquet") {
        s.qc = Some(load_qc(&p)?);
    }
    if let Some(p) = stage_file(root, "stats", "nhood_enrichment.parquet") {
        s.enrichment = Some(load_enrichment(&p, &s.name)?);
    }
    if let Some(p) = stage_file(root, "communication", "communication.parquet") {
        s.communication = Some(load_communication(&p, &s.name)?);
    }
    if let Some(p) = stage_file(root, "stats", "autocorrelation.parquet") {
        s.autocorrelation = Some(load_autocorrelation(&p, &s.name)?);
    }
    if let Some(p) = stage_file(root, "niches", "niche_summary.parquet") {
        s.niche_summary = Some(text_table(&p, 40)?);
    }
    Ok(s)
}

fn normalise_rows(m: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    m.into_iter()
        .map(|row| {
            let t: f64 = row.iter().sum();
            if t > 0.0 {
                row.iter().map(|v| v / t).collect()
            } else {
                row
            }
        })
        .collect()
}

// Rows are read from several parallel columns at once, hence index loops.
#[allow(clippy::needless_range_loop)]
fn load_niches(p: &Path, index: &CellIndex, s: &mut Sample) -> Result<()> {
    let n = s.n_cells;
    let filter = sample_filter(p, &s.name)?;
    let (mut niche, mut state, mut rn) = (Interner::default(), Interner::default(), Interner::default());
    let (mut niche_codes, mut state_codes, mut rn_codes) = (vec![NONE; n], vec![NONE; n], vec![NONE; n]);
    let mut score = vec![f64::NAN; n];
    // Which optional columns the file has comes from its schema, not from its batches: a file with no
    // rows has none.
    let (columns, _, _) = describe(p)?;
    let has = |c: &str| columns.iter().any(|n| n == c);
    let (has_state, has_score, has_rn) = (has("state"), has("resistance_score"), has("resistance_niche"));
    let (mut unmatched, mut matched) = (0usize, 0usize);
    let mut row = 0usize;
    let name = s.name.clone();
    let mut condition: Option<String> = None;
    let want_condition = s.condition.is_none();
    for_each_batch(
        p,
        &["cell_id", "niche"],
        &["sample", "state", "resistance_score", "resistance_niche", "condition"],
        |b| {
            if want_condition && condition.is_none() && b.has("condition") {
                let a = b.text("condition")?;
                condition = (0..a.len()).find(|&i| !a.is_null(i)).map(|i| a.value(i).to_string());
            }
            let id = b.text("cell_id")?;
            let ni = b.text("niche")?;
            let sample = if filter { Some(b.text("sample")?) } else { None };
            let st = if b.has("state") { Some(b.text("state")?) } else { None };
            let sc = if b.has("resistance_score") { Some(b.f64("resistance_score")?) } else { None };
            let r = if b.has("resistance_niche") { Some(b.text("resistance_niche")?) } else { None };
            for i in 0..b.len() {
                let guess = row;
                row += 1;
                if let Some(sa) = &sample {
                    if sa.is_null(i) || sa.value(i) != name {
                        continue;
                    }
                }
                let Some(c) = (!id.is_null(i)).then(|| index.find(guess, id.value(i))).flatten() else {
                    unmatched += 1;
                    continue;
                };
                matched += 1;
                if !ni.is_null(i) {
                    niche_codes[c] = niche.code(ni.value(i));
                }
                if let Some(st) = &st {
                    if !st.is_null(i) {
                        state_codes[c] = state.code(st.value(i));
                    }
                }
                if let Some(sc) = &sc {
                    score[c] = sc[i];
                }
                if let Some(r) = &r {
                    if !r.is_null(i) && !r.value(i).is_empty() {
                        rn_codes[c] = rn.code(r.value(i));
                    }
                }
            }
            Ok(())
        },
    )?;
    if condition.is_some() {
        s.condition = condition;
    }
    if unmatched > 0 {
        s.notes.push(format!("{unmatched} rows of {} name cells not in cells.parquet; they were skipped", p.display()));
    }
    if matched == 0 {
        s.notes.push(format!("{} has no rows for this sample: every cell is shown unassigned", p.display()));
    }
    s.niche = Some(cat_from(niche, niche_codes));
    if has_state {
        s.state = Some(cat_from(state, state_codes));
    }
    if has_score {
        s.resistance_score = Some(score);
    }
    if has_rn {
        s.resistance_niche = Some(cat_from(rn, rn_codes));
    }
    Ok(())
}

// Rows are read from several parallel columns at once, hence index loops.
#[allow(clippy::needless_range_loop)]
fn load_proportions(p: &Path, index: &CellIndex, s: &mut Sample) -> Result<()> {
    let n = s.n_cells;
    let filter = sample_filter(p, &s.name)?;
    let mut types = Interner::default();
    let mut best = vec![f32::NEG_INFINITY; n];
    let mut best_code = vec![NONE; n];
    let niche_codes = s.niche.as_ref().map(|c| c.codes.clone());
    let n_niches = s.niche.as_ref().map_or(0, |c| c.names.len());
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); n_niches];
    let mut row = 0usize;
    let name = s.name.clone();
    for_each_batch(p, &["cell_id", "cell_type", "proportion"], &["sample"], |b| {
        let id = b.text("cell_id")?;
        let ty = b.text("cell_type")?;
        let pr = b.f64("proportion")?;
        let sample = if filter { Some(b.text("sample")?) } else { None };
        for i in 0..b.len() {
            let guess = row / types.names.len().max(1);
            row += 1;
            if let Some(sa) = &sample {
                if sa.is_null(i) || sa.value(i) != name {
                    continue;
                }
            }
            if id.is_null(i) || ty.is_null(i) || !pr[i].is_finite() {
                continue;
            }
            let Some(c) = index.find(guess, id.value(i)) else { continue };
            let t = types.code(ty.value(i));
            let v = pr[i] as f32;
            if v > best[c] {
                best[c] = v;
                best_code[c] = t;
            }
            if let Some(nc) = &niche_codes {
                let k = nc[c];
                if k != NONE {
                    let row = &mut sums[k as usize];
                    if row.len() <= t as usize {
                        row.resize(t as usize + 1, 0.0);
                    }
                    row[t as usize] += pr[i];
                }
            }
        }
        Ok(())
    })?;
    let k = types.names.len();
    if niche_codes.is_some() {
        let m: Vec<Vec<f64>> = sums
            .into_iter()
            .map(|mut r| {
                r.resize(k, 0.0);
                r
            })
            .collect();
        s.composition = Some(Composition {
            cell_types: types.names.clone(),
            fractions: normalise_rows(m),
            source: "mean deconvolved proportions (proportions.parquet)".into(),
        });
    }
    s.cell_type = Some(cat_from(types, best_code));
    s.cell_type_source = "dominant deconvolved type (proportions.parquet)".into();
    Ok(())
}

fn load_programs(p: &Path, index: &CellIndex, n: usize, s: &mut Sample) -> Result<()> {
    let filter = sample_filter(p, &s.name)?;
    let mut names = Interner::default();
    let mut progs: Vec<ProgramScores> = Vec::new();
    let mut row = 0usize;
    let name = s.name.clone();
    for_each_batch(p, &["cell_id", "program", "score"], &["sample", "smoothed_score"], |b| {
        let id = b.text("cell_id")?;
        let pg = b.text("program")?;
        let sc = b.f64("score")?;
        let sm = if b.has("smoothed_score") { Some(b.f64("smoothed_score")?) } else { None };
        let sample = if filter { Some(b.text("sample")?) } else { None };
        for i in 0..b.len() {
            // Program-major long form (all cells of one program, then the next) hits the guess; other
            // orders fall back to the hash join.
            let guess = row % n.max(1);
            row += 1;
            if let Some(sa) = &sample {
                if sa.is_null(i) || sa.value(i) != name {
                    continue;
                }
            }
            if id.is_null(i) || pg.is_null(i) {
                continue;
            }
            let Some(c) = index.find(guess, id.value(i)) else { continue };
            let code = names.code(pg.value(i)) as usize;
            if code == progs.len() {
                progs.push(ProgramScores {
                    name: pg.value(i).to_string(),
                    score: vec![f32::NAN; n],
                    smoothed: vec![f32::NAN; n],
                });
            }
            let ps = &mut progs[code];
            ps.score[c] = sc[i] as f32;
            if let Some(sm) = &sm {
                ps.smoothed[c] = sm[i] as f32;
            }
        }
        Ok(())
    })?;
    progs.sort_by(|a, b| a.name.cmp(&b.name));
    s.programs = progs;
    Ok(())
}

fn load_qc(p: &Path) -> Result<QcSummary> {
    let mut q = QcSummary::default();
    for_each_batch(p, &[], &["spot_class", "dropped_reason", "converged"], |b| {
        q.n_spots += b.len();
        if b.has("dropped_reason") {
            let a = b.text("dropped_reason")?;
            for i in 0..a.len() {
                if !a.is_null(i) && !a.value(i).trim().is_empty() {
                    *q.dropped.entry(a.value(i).to_string()).or_default() += 1;
                }
            }
        }
        if b.has("spot_class") {
            let a = b.text("spot_class")?;
            for i in 0..a.len() {
                if !a.is_null(i) && !a.value(i).trim().is_empty() {
                    *q.classes.entry(a.value(i).to_string()).or_default() += 1;
                }
            }
        }
        if b.has("converged") {
            q.not_converged += b.bool_opt("converged")?.iter().filter(|v| **v == Some(false)).count();
        }
        Ok(())
    })?;
    Ok(q)
}

// Rows are read from several parallel columns at once, hence index loops.
#[allow(clippy::needless_range_loop)]
fn load_enrichment(p: &Path, sample: &str) -> Result<Enrichment> {
    let filter = sample_filter(p, sample)?;
    let mut rows: Vec<(String, String, f64)> = Vec::new();
    for_each_batch(p, &["type_a", "type_b", "z"], &["sample"], |b| {
        let (a, bb, z) = (b.text("type_a")?, b.text("type_b")?, b.f64("z")?);
        let sa = if filter { Some(b.text("sample")?) } else { None };
        for i in 0..b.len() {
            if sa.as_ref().is_some_and(|s| s.is_null(i) || s.value(i) != sample) || a.is_null(i) || bb.is_null(i) {
                continue;
            }
            rows.push((a.value(i).to_string(), bb.value(i).to_string(), z[i]));
        }
        Ok(())
    })?;
    let mut types: Vec<String> = rows.iter().flat_map(|r| [r.0.clone(), r.1.clone()]).collect();
    types.sort_by(|a, b| crate::palette::natural_cmp(a, b));
    types.dedup();
    let pos: BTreeMap<&str, usize> = types.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let mut z = vec![vec![f64::NAN; types.len()]; types.len()];
    for (a, b, v) in &rows {
        if let (Some(&i), Some(&j)) = (pos.get(a.as_str()), pos.get(b.as_str())) {
            z[i][j] = *v;
        }
    }
    Ok(Enrichment { types, z })
}

// Rows are read from several parallel columns at once, hence index loops.
#[allow(clippy::needless_range_loop)]
fn load_communication(p: &Path, sample: &str) -> Result<Vec<CommRow>> {
    let filter = sample_filter(p, sample)?;
    let mut rows = Vec::new();
    let req = ["niche", "sender", "receiver", "ligand", "receptor", "score"];
    for_each_batch(p, &req, &["sample", "q"], |b| {
        let t: Vec<_> = req[..5].iter().map(|c| b.text(c)).collect::<Result<_>>()?;
        let score = b.f64("score")?;
        let q = if b.has("q") { b.f64("q")? } else { vec![f64::NAN; b.len()] };
        let sa = if filter { Some(b.text("sample")?) } else { None };
        for i in 0..b.len() {
            if sa.as_ref().is_some_and(|s| s.is_null(i) || s.value(i) != sample) || t.iter().any(|c| c.is_null(i)) {
                continue;
            }
            rows.push(CommRow {
                niche: t[0].value(i).to_string(),
                sender: t[1].value(i).to_string(),
                receiver: t[2].value(i).to_string(),
                ligand: t[3].value(i).to_string(),
                receptor: t[4].value(i).to_string(),
                score: score[i],
                q: q[i],
            });
        }
        Ok(())
    })?;
    Ok(rows)
}

// Rows are read from several parallel columns at once, hence index loops.
#[allow(clippy::needless_range_loop)]
fn load_autocorrelation(p: &Path, sample: &str) -> Result<TextTable> {
    let filter = sample_filter(p, sample)?;
    let mut rows: Vec<(String, String, f64, f64, f64)> = Vec::new();
    for_each_batch(p, &["feature", "statistic", "value"], &["sample", "z", "q"], |b| {
        let (f, st, v) = (b.text("feature")?, b.text("statistic")?, b.f64("value")?);
        let z = if b.has("z") { b.f64("z")? } else { vec![f64::NAN; b.len()] };
        let q = if b.has("q") { b.f64("q")? } else { vec![f64::NAN; b.len()] };
        let sa = if filter { Some(b.text("sample")?) } else { None };
        for i in 0..b.len() {
            if sa.as_ref().is_some_and(|s| s.is_null(i) || s.value(i) != sample) || f.is_null(i) || st.is_null(i) {
                continue;
            }
            rows.push((f.value(i).to_string(), st.value(i).to_string(), v[i], z[i], q[i]));
        }
        Ok(())
    })?;
    let total = rows.len();
    // Strongest spatial structure first: Moran's I high (Geary's C is low when structured, so it sorts
    // by 1 - C).
    let key = |r: &(String, String, f64, f64, f64)| {
        let v = if r.1.to_ascii_lowercase().starts_with("geary") { 1.0 - r.2 } else { r.2 };
        if v.is_finite() {
            v
        } else {
            f64::NEG_INFINITY
        }
    };
    rows.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(15);
    Ok(TextTable {
        columns: ["feature", "statistic", "value", "z", "q"].map(String::from).to_vec(),
        rows: rows.into_iter().map(|r| vec![r.0, r.1, fmt_num(r.2), fmt_num(r.3), fmt_num(r.4)]).collect(),
        total_rows: total,
    })
}

/// Formats a number for a table: 3 significant digits, scientific for very small or large values.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() { "".into() } else { format!("{v}") };
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Reads a small file as text (first `max_rows` rows), formatting numbers with [`fmt_num`].
pub fn text_table(p: &Path, max_rows: usize) -> Result<TextTable> {
    use arrow::datatypes::DataType;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let table = tmescope_core::parquet_io::Table::read(p)?;
    let batch = &table.batch;
    let columns = table.column_names();
    let shown = batch.num_rows().min(max_rows);
    let mut rows = vec![Vec::with_capacity(columns.len()); shown];
    for (ci, col) in batch.columns().iter().enumerate() {
        let is_float = matches!(col.data_type(), DataType::Float16 | DataType::Float32 | DataType::Float64);
        if is_float {
            let v = table.f64(&columns[ci])?;
            for (r, row) in rows.iter_mut().enumerate() {
                row.push(fmt_num(v[r]));
            }
        } else {
            let opts = FormatOptions::default().with_null("");
            let f = ArrayFormatter::try_new(col.as_ref(), &opts)
                .map_err(|e| Error::input(p, format!("column `{}`", columns[ci]), format!("cannot display ({e})")))?;
            for (r, row) in rows.iter_mut().enumerate() {
                let mut text = f.value(r).to_string();
                if text.chars().count() > 120 {
                    text = text.chars().take(117).collect::<String>() + "...";
                }
                row.push(text);
            }
        }
    }
    Ok(TextTable { columns, rows, total_rows: batch.num_rows() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(0.0031), "0.003");
        assert_eq!(fmt_num(0.00001234), "1.23e-5");
        assert_eq!(fmt_num(2.1234), "2.12");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(f64::NAN), "");
    }

    #[test]
    fn cell_index_prefers_the_row_position() {
        let idx = CellIndex::new(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(idx.find(1, "b"), Some(1));
        assert_eq!(idx.find(0, "c"), Some(2));
        assert_eq!(idx.find(0, "zz"), None);
    }
}
