//! 10x Matrix Market folders (Cell Ranger `filtered_feature_bc_matrix/`, Xenium `cell_feature_matrix/`).
//!
//! A folder holds three files, each optionally gzipped:
//!
//! - `matrix.mtx`: a Matrix Market `coordinate` matrix (`integer` or `real`, `general`), genes x barcodes,
//!   1-based `gene barcode value` lines after a `genes barcodes entries` size line;
//! - `features.tsv` (Cell Ranger >= 3: `id`, `name`, `feature_type`, ...) or `genes.tsv` (Cell Ranger 2:
//!   `id`, `name`);
//! - `barcodes.tsv`, one barcode per line (integers are accepted and kept as text).
//!
//! Only `Gene Expression` features are kept unless [`ReadOptions::all_feature_types`] is set; what was
//! dropped is written into the dataset notes. The result has no positions (`coordinate_unit = "none"`).
//!
//! Parsing the entries runs in parallel over chunks of lines and the matrix is assembled by a counting
//! sort on the barcode: O(nnz) time, O(nnz) memory.
//!
//! Reference: the Matrix Market exchange format (NIST, Boisvert et al. 1996) and the 10x Genomics
//! "Feature-barcode matrices" documentation.

use crate::text_util::{check_unique, csr_from_coo, find_file, read_text, split_fields, CooPart};
use crate::ReadOptions;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{CellTable, Dataset, GeneTable};
use tmescope_core::{Error, Result};

/// The three files of a 10x MTX folder.
#[derive(Debug, Clone)]
pub struct MtxFiles {
    /// `matrix.mtx[.gz]`.
    pub matrix: PathBuf,
    /// `features.tsv[.gz]` or `genes.tsv[.gz]`.
    pub features: PathBuf,
    /// `barcodes.tsv[.gz]`.
    pub barcodes: PathBuf,
}

/// Finds the files of a 10x MTX folder, or an input error naming what is missing.
pub fn locate(dir: &Path) -> Result<MtxFiles> {
    let missing = |what: &str| {
        Error::file(dir, format!("not a 10x MTX folder: no {what} (expected matrix.mtx[.gz], features.tsv[.gz] or genes.tsv, barcodes.tsv[.gz])"))
    };
    let matrix = find_file(dir, &["matrix.mtx.gz", "matrix.mtx"]).ok_or_else(|| missing("matrix.mtx"))?;
    let features = find_file(dir, &["features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"])
        .ok_or_else(|| missing("features.tsv or genes.tsv"))?;
    let barcodes = find_file(dir, &["barcodes.tsv.gz", "barcodes.tsv"]).ok_or_else(|| missing("barcodes.tsv"))?;
    Ok(MtxFiles { matrix, features, barcodes })
}

/// Whether `dir` looks like a 10x MTX folder.
pub fn is_mtx_dir(dir: &Path) -> bool {
    dir.is_dir() && locate(dir).is_ok()
}

/// Reads a 10x MTX folder (Cell Ranger 2 or >= 3 layout, gzipped or not) into a dataset without positions.
pub fn read(dir: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let files = locate(dir)?;
    let (genes, types_given) = read_features(&files.features)?;
    let barcodes = read_barcodes(&files.barcodes)?;
    let counts = read_matrix(&files.matrix, (&files.features, genes.len()), (&files.barcodes, barcodes.len()))?;

    let mut notes = Vec::new();
    let (genes, counts) = if opts.all_feature_types || !types_given {
        (genes, counts)
    } else {
        let keep: Vec<usize> = (0..genes.len()).filter(|&i| genes.feature_type[i] == "Gene Expression").collect();
        if keep.len() == genes.len() {
            (genes, counts)
        } else {
            notes.push(dropped_note(&genes, &keep));
            let mut new_index = vec![None; genes.len()];
            for (n, &i) in keep.iter().enumerate() {
                new_index[i] = Some(n as u32);
            }
            (genes.select(&keep), counts.select_cols(&new_index, keep.len()))
        }
    };
    let n = barcodes.len();
    let cells = CellTable {
        cell_id: barcodes,
        sample: vec![opts.sample.clone(); n],
        x: vec![f64::NAN; n],
        y: vec![f64::NAN; n],
        z: None,
        extra: vec![],
    };
    Ok(Dataset { cells, genes, counts, platform: "10x-mtx".into(), coordinate_unit: "none".into(), notes })
}

/// The provenance note for features dropped because their type is not `Gene Expression`.
pub(crate) fn dropped_note(genes: &GeneTable, keep: &[usize]) -> String {
    let mut by_type: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut kept = vec![false; genes.len()];
    for &k in keep {
        kept[k] = true;
    }
    for (i, t) in genes.feature_type.iter().enumerate() {
        if !kept[i] {
            *by_type.entry(t.as_str()).or_default() += 1;
        }
    }
    let parts: Vec<String> = by_type.iter().map(|(t, n)| format!("{n} `{t}`")).collect();
    format!(
        "dropped {} features that are not `Gene Expression` ({}); use --all-feature-types to keep them",
        genes.len() - keep.len(),
        parts.join(", ")
    )
}

/// Reads `features.tsv` / `genes.tsv`; returns the genes and whether a feature-type column was present.
fn read_features(path: &Path) -> Result<(GeneTable, bool)> {
    let text = read_text(path)?;
    let mut genes = GeneTable::default();
    let mut types_given = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_fields(line, b'\t');
        let id = f[0].trim().to_string();
        if id.is_empty() {
            return Err(Error::input(path, format!("line {}", i + 1), "empty feature id"));
        }
        let name = f.get(1).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| id.clone());
        let ftype = match f.get(2) {
            Some(t) if !t.trim().is_empty() => {
                types_given = true;
                t.trim().to_string()
            }
            _ => "Gene Expression".to_string(),
        };
        genes.gene_id.push(id);
        genes.gene_name.push(name);
        genes.feature_type.push(ftype);
    }
    if genes.is_empty() {
        return Err(Error::file(path, "no features listed: expected one feature per line (id, name[, type])"));
    }
    Ok((genes, types_given))
}

/// Reads `barcodes.tsv` (first field of each line), checking that barcodes are unique.
fn read_barcodes(path: &Path) -> Result<Vec<String>> {
    let text = read_text(path)?;
    let mut ids = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let id = line.split('\t').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        ids.push(id.to_string());
        lines.push(i + 1);
    }
    if ids.is_empty() {
        return Err(Error::file(path, "no barcodes listed: expected one barcode per line"));
    }
    check_unique(path, &ids, |k| format!("line {}", lines[k]))?;
    Ok(ids)
}

/// Reads a Matrix Market coordinate file of `n_genes` x `n_barcodes` into barcodes x genes CSR counts.
/// The last component of `p`, for messages.
fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string())
}

/// Reads `matrix.mtx`; `features` and `barcodes` are the list files and their lengths, to check the size line.
fn read_matrix(
    path: &Path,
    (features, n_genes): (&Path, usize),
    (barcodes, n_barcodes): (&Path, usize),
) -> Result<tmescope_core::counts::CsrCounts> {
    let text = read_text(path)?;
    let mut lines = text.split('\n').enumerate();
    let (_, banner) = lines.next().ok_or_else(|| Error::file(path, "empty file: expected a %%MatrixMarket header"))?;
    let banner_l = banner.trim().to_lowercase();
    let words: Vec<&str> = banner_l.split_whitespace().collect();
    if words.len() < 5 || words[0] != "%%matrixmarket" || words[1] != "matrix" {
        return Err(Error::input(
            path,
            "line 1",
            format!("expected `%%MatrixMarket matrix coordinate integer|real general`, found `{}`", banner.trim()),
        ));
    }
    if words[2] != "coordinate" {
        return Err(Error::input(
            path,
            "line 1",
            format!("only `coordinate` (sparse) matrices are supported, found `{}`", words[2]),
        ));
    }
    let integer_field = match words[3] {
        "integer" => true,
        "real" | "double" => false,
        other => {
            return Err(Error::input(path, "line 1", format!("expected field `integer` or `real`, found `{other}`")))
        }
    };
    if words[4] != "general" {
        return Err(Error::input(path, "line 1", format!("expected symmetry `general`, found `{}`", words[4])));
    }
    // Size line after comments.
    let mut size = None;
    let mut body_start = 0usize;
    let mut offset = banner.len() + 1;
    for (i, line) in lines.by_ref() {
        let len = line.len() + 1;
        let t = line.trim();
        offset += len;
        if t.is_empty() || t.starts_with('%') {
            continue;
        }
        let nums: Vec<Option<u64>> = t.split_whitespace().map(|w| w.parse().ok()).collect();
        if nums.len() != 3 || nums.iter().any(|n| n.is_none()) {
            return Err(Error::input(
                path,
                format!("line {}", i + 1),
                format!("expected the size line `genes barcodes entries`, found `{t}`"),
            ));
        }
        size = Some((nums[0].unwrap_or(0), nums[1].unwrap_or(0), nums[2].unwrap_or(0), i + 1));
        body_start = offset.min(text.len());
        break;
    }
    let (rows, cols, entries, size_line) =
        size.ok_or_else(|| Error::file(path, "no size line: expected `genes barcodes entries` after the header"))?;
    if rows as usize != n_genes || cols as usize != n_barcodes {
        return Err(Error::input(
            path,
            format!("line {size_line}"),
            format!(
                "matrix is {rows} features x {cols} barcodes but {} lists {n_genes} features and {} lists \
                 {n_barcodes} barcodes: expected the three files of one run",
                file_name(features),
                file_name(barcodes)
            ),
        ));
    }
    if entries == 0 {
        return Err(Error::input(path, format!("line {size_line}"), "empty matrix: 0 entries"));
    }
    let parts = parse_entries(path, &text[body_start..], size_line + 1, n_genes, n_barcodes, integer_field)?;
    // The text is no longer needed: free it before the matrix is assembled.
    drop(text);
    let found: usize = parts.iter().map(|p| p.0.len()).sum();
    if found as u64 != entries {
        return Err(Error::input(
            path,
            format!("line {size_line}"),
            format!("the size line announces {entries} entries but the file holds {found} (truncated?)"),
        ));
    }
    // CSC of genes x barcodes = CSR of barcodes x genes: rows are barcodes.
    Ok(csr_from_coo(n_barcodes, n_genes, parts))
}

/// Parses `gene barcode value` lines in parallel chunks; returns, per chunk, the 0-based barcode and gene
/// indices and the values (the coordinate lists of the barcodes x genes matrix).
fn parse_entries(
    path: &Path,
    body: &str,
    first_line: usize,
    n_genes: usize,
    n_barcodes: usize,
    integer_field: bool,
) -> Result<Vec<CooPart>> {
    // Chunk boundaries at newlines, about 4 MB each, and the line number each chunk starts at.
    let bytes = body.as_bytes();
    let mut bounds = vec![0usize];
    let chunk = 4 << 20;
    while *bounds.last().unwrap_or(&0) < bytes.len() {
        let start = *bounds.last().unwrap_or(&0);
        let mut end = (start + chunk).min(bytes.len());
        while end < bytes.len() && bytes[end - 1] != b'\n' {
            end += 1;
        }
        bounds.push(end);
    }
    let line_starts: Vec<usize> = {
        let mut acc = first_line;
        let mut v = Vec::with_capacity(bounds.len());
        for w in bounds.windows(2) {
            v.push(acc);
            acc += bytes[w[0]..w[1]].iter().filter(|&&c| c == b'\n').count();
        }
        v
    };
    bounds
        .windows(2)
        .zip(line_starts)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(w, line0)| {
            let mut g = Vec::new();
            let mut b = Vec::new();
            let mut v = Vec::new();
            for (k, line) in body[w[0]..w[1]].split('\n').enumerate() {
                let t = line.trim();
                if t.is_empty() || t.starts_with('%') {
                    continue;
                }
                let err = |msg: String| Error::input(path, format!("line {}", line0 + k), msg);
                let mut it = t.split_ascii_whitespace();
                let gi: u64 = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| err(format!("expected `gene barcode value`, found `{t}`")))?;
                let bi: u64 = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| err(format!("expected `gene barcode value`, found `{t}`")))?;
                let val: f64 = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| err(format!("expected a numeric value, found `{t}`")))?;
                if gi == 0 || gi as usize > n_genes || bi == 0 || bi as usize > n_barcodes {
                    return Err(err(format!(
                        "entry ({gi}, {bi}) outside the {n_genes} x {n_barcodes} matrix (indices are 1-based)"
                    )));
                }
                if !val.is_finite() || val < 0.0 || (integer_field && val.fract() != 0.0) {
                    return Err(err(format!(
                        "expected a non-negative {} count, found `{val}`",
                        if integer_field { "integer" } else { "real" }
                    )));
                }
                g.push((gi - 1) as u32);
                b.push((bi - 1) as u32);
                v.push(val);
            }
            Ok((b, g, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(matrix: &str, features: &str, barcodes: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("matrix.mtx"), matrix).unwrap();
        std::fs::write(tmp.path().join("features.tsv"), features).unwrap();
        std::fs::write(tmp.path().join("barcodes.tsv"), barcodes).unwrap();
        tmp
    }

    #[test]
    fn size_line_disagreeing_with_a_list_names_the_list() {
        let t =
            folder("%%MatrixMarket matrix coordinate integer general\n2 3 1\n1 1 5\n", "g1\tA\ng2\tB\n", "c1\nc2\n");
        let e = read(t.path(), &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("(line 2)") && e.contains("barcodes.tsv lists 2 barcodes"), "{e}");
    }

    #[test]
    fn reads_and_drops_other_feature_types() {
        let t = folder(
            "%%MatrixMarket matrix coordinate integer general\n%c\n3 2 3\n1 1 5\n3 1 2\n2 2 7\n",
            "g1\tA\tGene Expression\ng2\tB\tGene Expression\nab\tCD3\tAntibody Capture\n",
            "c1\nc2\n",
        );
        let ds = read(t.path(), &ReadOptions::default()).unwrap();
        assert_eq!(ds.genes.gene_name, vec!["A", "B"]);
        assert_eq!(ds.counts.row_totals(), vec![5.0, 7.0]);
        assert!(ds.notes[0].contains("1 `Antibody Capture`"), "{:?}", ds.notes);
        let all = read(t.path(), &ReadOptions { all_feature_types: true, ..Default::default() }).unwrap();
        assert_eq!(all.counts.total(), 14.0);
    }

    #[test]
    fn out_of_range_entry_names_the_line() {
        let t = folder("%%MatrixMarket matrix coordinate integer general\n1 1 1\n2 1 1\n", "g\tG\n", "c\n");
        let e = read(t.path(), &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("matrix.mtx") && e.contains("line 3"), "{e}");
    }

    #[test]
    fn wrong_entry_count_is_an_error() {
        let t = folder("%%MatrixMarket matrix coordinate integer general\n1 1 2\n1 1 1\n", "g\tG\n", "c\n");
        assert!(read(t.path(), &ReadOptions::default()).unwrap_err().to_string().contains("truncated"));
    }
}
