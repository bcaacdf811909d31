//! 10x Genomics HDF5 feature-barcode matrices (`*.h5` from Cell Ranger, Space Ranger and Xenium).
//!
//! The matrix is stored as compressed sparse columns of a features x barcodes matrix (`data`,
//! `indices`, `indptr`, `shape`), which is exactly the compressed sparse rows of barcodes x features,
//! so no transpose is needed: reading is O(nnz) time and memory (the big arrays are read in bulk, in
//! chunk-aligned blocks).
//!
//! Layouts handled:
//! - **Cell Ranger 2** (`filtered_gene_bc_matrices_h5.h5`): one root group per genome, e.g.
//!   `hg19_chr21/{barcodes,data,gene_names,genes,indices,indptr,shape}`; features are genes.
//! - **Multi-genome** (barnyard) files: Cell Ranger 2 writes one group per genome over the same barcodes;
//!   every genome is kept, genes side by side (genome after genome, barcodes united in order of first
//!   appearance). When a gene id occurs in more than one genome, ids and names are prefixed
//!   `<genome>_` as Cell Ranger 3 does for barnyard references. Cell Ranger 3 files carry the genome
//!   per feature (`features/genome`); all genomes are kept there too. A note says so.
//! - **Cell Ranger 3+ / Space Ranger / Xenium** (`matrix/` with `features/{id,name,feature_type,genome}`):
//!   only `Gene Expression` features are kept unless [`ReadOptions::all_feature_types`]; what was dropped
//!   (features and counts per type) is recorded in [`Dataset::notes`].
//! - **Probe-based Space Ranger >= 2.1** (`features/{filtered_probes,gene_id,gene_name,probe_region}`,
//!   `matrix/filtered_barcodes`): the matrix is kept exactly as `scanpy.read_10x_h5` returns it, one
//!   feature per probe (`gene_id` = probe `id`, `gene_name` = probe `name`, e.g. `Itgb2l|2ef1e7b`), every
//!   barcode kept, `filtered_barcodes` and `filtered_probes` are not applied but `filtered_barcodes` is kept
//!   as a boolean cell column so that a user can subset. Probes are *not* aggregated to genes, so totals and
//!   non-zeros equal the file's.
//! - `data` may be integers or floats: floats that are all whole numbers are stored as `u32`, otherwise
//!   as `f32`. Index arrays written as float64 by R (rhdf5) are accepted when every value is a
//!   non-negative whole number and rejected with the offending element otherwise.
//!
//! The dataset has no positions: `x`/`y` are NaN, `coordinate_unit` is `none`, platform `10x-h5`.

use crate::hdf5_util::H5;
use crate::ReadOptions;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use tmescope_core::counts::{first_out_of_range, CountValues, CsrCounts};
use tmescope_core::dataset::{CellTable, Column, Dataset, GeneTable};
use tmescope_core::Result;

/// The feature type kept by default.
pub const GENE_EXPRESSION: &str = "Gene Expression";

/// Reads a 10x HDF5 matrix (any of the layouts in the module docs) into a [`Dataset`].
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let h5 = H5::open(path)?;
    let ds = read_from(&h5, opts)?;
    ds.validate(path)?;
    Ok(ds)
}

/// Reads from an already open file (shared with the Visium reader).
pub(crate) fn read_from(h5: &H5, opts: &ReadOptions) -> Result<Dataset> {
    let (barcodes, genes, counts, extra, notes) =
        if h5.is_group("matrix") { read_v3(h5, opts)? } else { read_legacy(h5)? };
    let n = barcodes.len();
    Ok(Dataset {
        cells: CellTable {
            cell_id: barcodes,
            sample: vec![opts.sample.clone(); n],
            x: vec![f64::NAN; n],
            y: vec![f64::NAN; n],
            z: None,
            extra,
        },
        genes,
        counts,
        platform: "10x-h5".into(),
        coordinate_unit: "none".into(),
        notes,
    })
}

type Parts = (Vec<String>, GeneTable, CsrCounts, Vec<(String, Column)>, Vec<String>);

/// Reads the compressed-sparse-column matrix of group `g` as barcodes x features CSR.
fn read_csc(h5: &H5, g: &str, n_features_hint: usize) -> Result<(Vec<String>, CsrCounts)> {
    let p = |name: &str| format!("{g}/{name}");
    let barcodes = h5.read_strings(&p("barcodes"))?;
    let (n_features, n_barcodes) = if h5.is_dataset(&p("shape")) {
        let shape = h5.read_i64(&p("shape"))?;
        match shape.as_slice() {
            [f, b] if *f >= 0 && *b >= 0 => (*f as usize, *b as usize),
            other => {
                return Err(h5.err(
                    &p("shape"),
                    format!("expected two non-negative numbers (features, barcodes), found {other:?}"),
                ))
            }
        }
    } else {
        (n_features_hint, barcodes.len())
    };
    if barcodes.len() != n_barcodes {
        return Err(h5.err(
            &p("barcodes"),
            format!("{} barcodes but `shape` says the matrix has {n_barcodes} columns", barcodes.len()),
        ));
    }
    if n_features_hint != n_features {
        return Err(h5.err(
            &p("shape"),
            format!("says {n_features} features but the feature list has {n_features_hint} entries"),
        ));
    }
    let (indptr, indices, values) = h5.read_sparse_parts(g)?;
    let counts = assemble(h5, g, n_barcodes, n_features, indptr, indices, values)?;
    Ok((barcodes, counts))
}

/// Checks the compressed structure and builds canonical CSR (sorted genes per cell, no zeros).
pub(crate) fn assemble(
    h5: &H5,
    g: &str,
    n_major: usize,
    n_minor: usize,
    indptr: Vec<u64>,
    indices: Vec<u32>,
    values: CountValues,
) -> Result<CsrCounts> {
    let p = |name: &str| if g.is_empty() { name.to_string() } else { format!("{g}/{name}") };
    if indptr.len() != n_major + 1 {
        return Err(h5.err(
            &p("indptr"),
            format!("has {} entries, expected {} (one more than the major dimension)", indptr.len(), n_major + 1),
        ));
    }
    if indices.len() != values.len() {
        return Err(h5.err(&p("indices"), format!("has {} entries but `data` has {}", indices.len(), values.len())));
    }
    if indptr[0] != 0 || indptr[n_major] != indices.len() as u64 {
        return Err(h5.err(
            &p("indptr"),
            format!(
                "must start at 0 and end at the number of stored values {}, found {}..{}",
                indices.len(),
                indptr[0],
                indptr[n_major]
            ),
        ));
    }
    if let Some(i) = indptr.windows(2).position(|w| w[0] > w[1]) {
        return Err(h5.err(&p("indptr"), format!("must not decrease, but entry {} > entry {}", i, i + 1)));
    }
    if let Some(bad) = first_out_of_range(&indices, n_minor) {
        return Err(h5.err(&p("indices"), format!("index {bad} is outside the {n_minor} rows of the matrix")));
    }
    let mut m = CsrCounts::from_compressed(n_major, n_minor, indptr, indices, values, false);
    m.canonicalize().map_err(|e| h5.err(g, e.to_string()))?;
    Ok(m)
}

fn read_v3(h5: &H5, opts: &ReadOptions) -> Result<Parts> {
    let f = "matrix/features";
    let mut notes = Vec::new();
    let probe_based = h5.is_dataset(&format!("{f}/filtered_probes")) || h5.is_dataset(&format!("{f}/gene_id"));
    let ids = if h5.is_dataset(&format!("{f}/id")) {
        h5.read_strings(&format!("{f}/id"))?
    } else if h5.is_dataset("matrix/genes") {
        // Some third-party writers keep the Cell Ranger 2 names under `matrix/`.
        h5.read_strings("matrix/genes")?
    } else {
        return Err(h5.err(f, "missing: expected `matrix/features/{id,name,feature_type}` (Cell Ranger 3+ layout)"));
    };
    let n = ids.len();
    let read_opt = |name: &str| -> Result<Option<Vec<String>>> {
        let p = format!("{f}/{name}");
        if !h5.is_dataset(&p) {
            return Ok(None);
        }
        let v = h5.read_strings(&p)?;
        if v.len() != n {
            return Err(h5.err(&p, format!("has {} entries but `features/id` has {n}", v.len())));
        }
        Ok(Some(v))
    };
    let names = read_opt("name")?.unwrap_or_else(|| ids.clone());
    let types = read_opt("feature_type")?.unwrap_or_else(|| vec![GENE_EXPRESSION.to_string(); n]);
    let genomes = read_opt("genome")?;
    let (barcodes, mut counts) = read_csc(h5, "matrix", n)?;
    let mut genes = GeneTable { gene_id: ids, gene_name: names, feature_type: types };
    let mut extra = Vec::new();

    if probe_based {
        let mut msg = format!(
            "probe-based 10x matrix: {n} probes kept as features (gene_id = probe id, gene_name = probe name, as scanpy.read_10x_h5), not aggregated to genes"
        );
        let fp = format!("{f}/filtered_probes");
        if h5.is_dataset(&fp) {
            let kept = h5.read_bools(&fp)?.iter().filter(|&&b| b).count();
            msg.push_str(&format!(
                "; {kept} of {n} probes pass Space Ranger's probe filter (features/filtered_probes, not applied)"
            ));
        }
        notes.push(msg);
        let fb = "matrix/filtered_barcodes";
        if h5.is_dataset(fb) {
            let v = h5.read_bools(fb)?;
            if v.len() != barcodes.len() {
                return Err(h5.err(fb, format!("has {} entries but there are {} barcodes", v.len(), barcodes.len())));
            }
            notes.push(format!(
                "{} of {} barcodes are marked in matrix/filtered_barcodes (kept as cell column `filtered_barcodes`, not applied)",
                v.iter().filter(|&&b| b).count(),
                v.len()
            ));
            extra.push(("filtered_barcodes".to_string(), Column::Bool(v.into_iter().map(Some).collect())));
        }
    }

    if let Some(genomes) = &genomes {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for (g, t) in genomes.iter().zip(&genes.feature_type) {
            if opts.all_feature_types || t == GENE_EXPRESSION {
                *per.entry(g.as_str()).or_default() += 1;
            }
        }
        let named: Vec<_> = per.iter().filter(|(g, _)| !g.is_empty()).collect();
        if named.len() > 1 {
            let list: Vec<String> = named.iter().map(|(g, k)| format!("{g}: {k} features")).collect();
            notes.push(format!("multi-genome matrix: all genomes kept ({})", list.join(", ")));
        }
    }

    if !opts.all_feature_types && genes.feature_type.iter().any(|t| t != GENE_EXPRESSION) {
        let totals = counts.col_totals();
        let mut dropped: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        let mut new_index = vec![None; n];
        let mut keep = Vec::new();
        for (j, t) in genes.feature_type.iter().enumerate() {
            if t == GENE_EXPRESSION {
                new_index[j] = Some(keep.len() as u32);
                keep.push(j);
            } else {
                let e = dropped.entry(t.as_str()).or_default();
                e.0 += 1;
                e.1 += totals[j];
            }
        }
        if keep.is_empty() {
            let types: Vec<&str> = dropped.keys().copied().collect();
            return Err(h5.err(
                "matrix/features/feature_type",
                format!(
                    "no `{GENE_EXPRESSION}` features (found {}); keep all feature types to read this matrix",
                    types.join(", ")
                ),
            ));
        }
        for (t, (k, total)) in &dropped {
            notes.push(format!(
                "dropped {k} features of type `{t}` ({total} counts); keep all feature types to include them"
            ));
        }
        counts = counts.select_cols(&new_index, keep.len());
        genes = genes.select(&keep);
    }
    Ok((barcodes, genes, counts, extra, notes))
}

fn read_legacy(h5: &H5) -> Result<Parts> {
    let mut genomes = Vec::new();
    for g in h5.groups("")? {
        if h5.is_dataset(&format!("{g}/indptr")) {
            genomes.push(g);
        }
    }
    if genomes.is_empty() {
        return Err(tmescope_core::Error::file(
            h5.path(),
            "not a 10x HDF5 matrix: expected a `matrix` group (Cell Ranger 3+) or a genome-named group holding barcodes, data, indices, indptr, shape (Cell Ranger 2)",
        ));
    }
    let mut parts = Vec::new();
    for g in &genomes {
        let ids = h5.read_strings(&format!("{g}/genes"))?;
        let names_path = format!("{g}/gene_names");
        let names = if h5.is_dataset(&names_path) { h5.read_strings(&names_path)? } else { ids.clone() };
        if names.len() != ids.len() {
            return Err(h5.err(&names_path, format!("has {} entries but `genes` has {}", names.len(), ids.len())));
        }
        let (barcodes, counts) = read_csc(h5, g, ids.len())?;
        parts.push((g.clone(), barcodes, ids, names, counts));
    }
    if parts.len() == 1 {
        let (_, barcodes, ids, names, counts) = parts.pop().expect("one genome");
        let n = ids.len();
        let genes = GeneTable { gene_id: ids, gene_name: names, feature_type: vec![GENE_EXPRESSION.into(); n] };
        return Ok((barcodes, genes, counts, vec![], vec![]));
    }
    Ok(merge_genomes(parts))
}

/// One genome group: name, barcodes, gene ids, gene names, counts.
type GenomePart = (String, Vec<String>, Vec<String>, Vec<String>, CsrCounts);

/// Puts the genes of several genome groups side by side over the union of their barcodes.
fn merge_genomes(parts: Vec<GenomePart>) -> Parts {
    let mut seen = HashSet::new();
    let collide = parts.iter().flat_map(|p| p.2.iter()).any(|id| !seen.insert(id.as_str()));
    let mut barcodes: Vec<String> = Vec::new();
    let mut row_of: HashMap<String, usize> = HashMap::new();
    // local_rows[g][global row] = row of that barcode in genome g, if any.
    let mut local_rows: Vec<Vec<Option<usize>>> = Vec::new();
    for (_, bcs, ..) in &parts {
        let mut map = vec![None; barcodes.len()];
        for (r, b) in bcs.iter().enumerate() {
            let gi = *row_of.entry(b.clone()).or_insert_with(|| {
                barcodes.push(b.clone());
                barcodes.len() - 1
            });
            if map.len() <= gi {
                map.resize(gi + 1, None);
            }
            map[gi] = Some(r);
        }
        local_rows.push(map);
    }
    let integer = parts.iter().all(|p| p.4.values.is_integer());
    let mut genes = GeneTable::default();
    let mut offsets = Vec::new();
    let mut summary = Vec::new();
    for (g, _, ids, names, _) in &parts {
        offsets.push(genes.len() as u32);
        summary.push(format!("{g}: {} genes", ids.len()));
        for (id, name) in ids.iter().zip(names) {
            if collide {
                genes.gene_id.push(format!("{g}_{id}"));
                genes.gene_name.push(format!("{g}_{name}"));
            } else {
                genes.gene_id.push(id.clone());
                genes.gene_name.push(name.clone());
            }
            genes.feature_type.push(GENE_EXPRESSION.into());
        }
    }
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let (mut vu, mut vf) = (Vec::new(), Vec::new());
    for row in 0..barcodes.len() {
        for (gi, part) in parts.iter().enumerate() {
            let Some(Some(r)) = local_rows[gi].get(row) else { continue };
            for (c, v) in part.4.row_iter(*r) {
                indices.push(c + offsets[gi]);
                if integer {
                    vu.push(v as u32);
                } else {
                    vf.push(v as f32);
                }
            }
        }
        indptr.push(indices.len() as u64);
    }
    let values = if integer { CountValues::U32(vu) } else { CountValues::F32(vf) };
    let counts = CsrCounts { n_rows: barcodes.len(), n_cols: genes.len(), indptr, indices, values };
    let mut notes =
        vec![format!("multi-genome 10x HDF5 (Cell Ranger 2 layout): all genomes kept ({})", summary.join(", "))];
    if collide {
        notes.push("gene ids occur in more than one genome: ids and names prefixed `<genome>_`".into());
    }
    (barcodes, genes, counts, vec![], notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(rows: Vec<Vec<(u32, f64)>>, n_cols: usize) -> CsrCounts {
        let trip = rows.iter().enumerate().flat_map(|(r, v)| v.iter().map(move |&(c, x)| (r as u32, c, x))).collect();
        CsrCounts::from_triplets(rows.len(), n_cols, trip, true).unwrap()
    }

    #[test]
    fn fuzz_regression_huge_chunk_is_an_error() {
        // Found by the `tenx_h5` fuzz target (session 4): a mutated layout declares a chunk of ~10^12 bytes;
        // the HDF5 crate allocated it before decompressing and the process aborted. Chunk sizes are now
        // checked against the file size when a dataset is opened.
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../test_data/bad/fuzz/tenx_h5_huge_chunk.h5"));
        let e = read(path, &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("tenx_h5_huge_chunk.h5"), "{e}");
    }

    #[test]
    fn genomes_merge_side_by_side_over_united_barcodes() {
        let a = (
            "A".to_string(),
            vec!["b1".into(), "b2".into()],
            vec!["g1".into()],
            vec!["G1".into()],
            csr(vec![vec![(0, 1.0)], vec![]], 1),
        );
        let b = (
            "B".to_string(),
            vec!["b2".into(), "b3".into()],
            vec!["h1".into(), "h2".into()],
            vec!["H1".into(), "H2".into()],
            csr(vec![vec![(1, 2.0)], vec![(0, 3.0)]], 2),
        );
        let (bcs, genes, m, _, notes) = merge_genomes(vec![a, b]);
        assert_eq!(bcs, vec!["b1", "b2", "b3"]);
        assert_eq!(genes.gene_id, vec!["g1", "h1", "h2"]);
        assert_eq!(m.row_totals(), vec![1.0, 2.0, 3.0]);
        assert_eq!(m.indices, vec![0, 2, 1]);
        assert!(notes[0].contains("A: 1 genes"));
    }

    #[test]
    fn colliding_gene_ids_are_prefixed_with_the_genome() {
        let a = ("A".to_string(), vec!["b1".into()], vec!["g".into()], vec!["G".into()], csr(vec![vec![(0, 1.0)]], 1));
        let b = ("B".to_string(), vec!["b1".into()], vec!["g".into()], vec!["G".into()], csr(vec![vec![(0, 1.0)]], 1));
        let (_, genes, m, _, _) = merge_genomes(vec![a, b]);
        assert_eq!(genes.gene_id, vec!["A_g", "B_g"]);
        assert_eq!(genes.gene_name, vec!["A_G", "B_G"]);
        assert_eq!(m.nnz(), 2);
    }
}
