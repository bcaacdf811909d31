//! CSV/TSV/gzip helpers shared by the text readers (MTX, Xenium, MERSCOPE, CosMx, tables).
//!
//! Files are read whole into memory (decompressed when they start with the gzip magic bytes, whatever
//! their extension), then split into lines and fields. Parsing the rows of a large table runs in parallel
//! over lines with rayon; results are assembled in line order, so the output never depends on the number
//! of threads. Reading is O(bytes) in time and memory.
//!
//! Fields follow RFC 4180 quoting (`"a,b"`, `""` for a quote inside quotes); a quoted field may not span
//! lines (no vendor format tmescope reads writes one). Errors name the file and the 1-based line number,
//! and for fields the column name, so a user can find the offending cell in an editor.

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};
use tmescope_core::counts::{CountValues, CsrCounts};
use tmescope_core::dataset::{Column, IdMap};
pub use tmescope_core::text::split_fields;
use tmescope_core::{Error, Result};

/// Reads a whole file, decompressing it when it is gzip. A truncated or corrupt gzip stream is an input
/// error naming the file.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let gzip = raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
    if !gzip && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        return Err(Error::file(
            path,
            "named .gz but not gzip data (expected the bytes 1f 8b at the start): re-compress it or rename it",
        ));
    }
    if gzip {
        let mut out = Vec::with_capacity(raw.len() * 4);
        MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(|e| {
            Error::file(path, format!("truncated or corrupt gzip data after {} decompressed bytes ({e})", out.len()))
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads a whole text file (gzipped or not) as UTF-8 ([`tmescope_core::text::decode_text`]: a leading
/// byte-order mark is dropped, other text is an error naming the line and byte).
pub fn read_text(path: &Path) -> Result<String> {
    tmescope_core::text::decode_text(path, read_bytes(path)?)
}

/// The first existing file among `dir/name` for each name (e.g. `features.tsv.gz`, `features.tsv`).
pub fn find_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Files in `dir` whose names end with one of `suffixes`, sorted by name.
pub fn files_ending(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .map(|n| n.to_string_lossy())
                            .is_some_and(|n| suffixes.iter().any(|s| n.ends_with(s)))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Picks the delimiter from the file name (`.tsv`, `.txt`, `.tab` mean tab) and the header line: tab when
/// the header has more tabs than commas, else comma.
pub fn detect_delimiter(path: &Path, header: &str) -> u8 {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name = name.trim_end_matches(".gz");
    let tabs = header.bytes().filter(|&b| b == b'\t').count();
    let commas = header.bytes().filter(|&b| b == b',').count();
    if (name.ends_with(".tsv") || name.ends_with(".tab")) && tabs > 0 {
        return b'\t';
    }
    if tabs > commas {
        b'\t'
    } else if commas > 0 {
        b','
    } else if name.ends_with(".tsv") || name.ends_with(".txt") || name.ends_with(".tab") {
        b'\t'
    } else {
        b','
    }
}

/// A delimited text table held in memory: header fields plus the data lines with their line numbers.
pub struct TextTable {
    /// The file it was read from.
    pub path: PathBuf,
    /// The delimiter (`,` or tab).
    pub delim: u8,
    /// Header fields (empty when read without a header).
    pub header: Vec<String>,
    text: String,
    /// `(1-based line number, byte start, byte end)` of each non-empty data line.
    lines: Vec<(usize, usize, usize)>,
}

impl TextTable {
    /// Reads `path` (gzipped or not); with `has_header`, the first non-empty line is the header.
    pub fn read(path: &Path, has_header: bool) -> Result<Self> {
        let text = read_text(path)?;
        let mut lines = Vec::new();
        let mut pos = 0usize;
        for (i, line) in text.split('\n').enumerate() {
            let len = line.len();
            let trimmed = line.trim_end_matches('\r');
            if !trimmed.trim().is_empty() {
                lines.push((i + 1, pos, pos + trimmed.len()));
            }
            pos += len + 1;
        }
        let first = lines.first().map(|&(_, a, b)| &text[a..b]).unwrap_or("");
        let delim = detect_delimiter(path, first);
        let mut header = Vec::new();
        if has_header {
            if lines.is_empty() {
                return Err(Error::file(path, "empty file: expected a header line"));
            }
            header = split_fields(first, delim).into_iter().map(|f| f.trim().to_string()).collect();
            lines.remove(0);
        }
        Ok(TextTable { path: path.to_path_buf(), delim, header, text, lines })
    }

    /// R's `write.table` writes one header field fewer than data fields when the first column holds row
    /// names: add an empty name for it, so that header and rows line up.
    pub fn fix_row_name_header(&mut self) {
        if let Some(first) = self.lines.first() {
            let n = split_fields(&self.text[first.1..first.2], self.delim).len();
            if n == self.header.len() + 1 {
                self.header.insert(0, String::new());
            }
        }
    }

    /// Number of data lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are no data lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// 1-based line number of data line `i`.
    pub fn line_no(&self, i: usize) -> usize {
        self.lines[i].0
    }

    /// The raw text of data line `i`.
    pub fn line(&self, i: usize) -> &str {
        let (_, a, b) = self.lines[i];
        &self.text[a..b]
    }

    /// The fields of data line `i`.
    pub fn fields(&self, i: usize) -> Vec<Cow<'_, str>> {
        split_fields(self.line(i), self.delim)
    }

    /// Index of the header column `name` (exact match first, then case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .or_else(|| self.header.iter().position(|h| h.eq_ignore_ascii_case(name)))
    }

    /// Index of the header column `name`, or an input error listing what the file has.
    pub fn require(&self, name: &str) -> Result<usize> {
        self.column_index(name).ok_or_else(|| {
            Error::input(
                &self.path,
                format!("column `{name}`"),
                format!("required column is missing (header has: {})", preview(&self.header, 12)),
            )
        })
    }

    /// An input error at data line `i`.
    pub fn error_at(&self, i: usize, message: impl Into<String>) -> Error {
        Error::input(&self.path, format!("line {}", self.line_no(i)), message)
    }

    /// Every field of column `col` (trimmed), checking that each line has the header's number of fields
    /// (`n_fields`); runs in parallel.
    pub fn column_values(&self, col: usize, n_fields: usize) -> Result<Vec<String>> {
        (0..self.len())
            .into_par_iter()
            .map(|i| {
                let f = self.fields(i);
                if f.len() != n_fields {
                    return Err(self.error_at(i, format!("expected {n_fields} fields, found {}", f.len())));
                }
                Ok(f[col].trim().to_string())
            })
            .collect()
    }

    /// All columns as text, parsed in parallel; every line must have `n_fields` fields.
    pub fn all_columns(&self, n_fields: usize) -> Result<Vec<Vec<String>>> {
        let rows: Vec<Vec<String>> = (0..self.len())
            .into_par_iter()
            .map(|i| {
                let f = self.fields(i);
                if f.len() != n_fields {
                    return Err(self.error_at(
                        i,
                        format!("expected {n_fields} fields like the header, found {} (wrong delimiter?)", f.len()),
                    ));
                }
                Ok(f.into_iter().map(|s| s.trim().to_string()).collect())
            })
            .collect::<Result<_>>()?;
        let mut cols: Vec<Vec<String>> = (0..n_fields).map(|_| Vec::with_capacity(rows.len())).collect();
        for row in rows {
            for (c, v) in row.into_iter().enumerate() {
                cols[c].push(v);
            }
        }
        Ok(cols)
    }
}

/// The first `n` items joined by `, ` (with `...` when there are more), for error messages.
pub fn preview(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(", ... ({} in all)", items.len()));
    }
    s
}

/// Parses a count field: integers take a fast path; anything else goes through `f64` parsing. Returns
/// `None` for text that is not a finite, non-negative number (empty and `NA` included).
#[inline]
pub fn parse_count(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(|c| c.is_ascii_digit()) {
        let mut v = 0u64;
        for &c in b {
            v = v * 10 + (c - b'0') as u64;
        }
        return Some(v as f64);
    }
    let v: f64 = s.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// One parsed row of a sparse matrix: sorted column indices and their non-zero values.
#[derive(Debug, Default, Clone)]
pub struct SparseRow {
    /// Column (gene) indices, increasing.
    pub cols: Vec<u32>,
    /// Values, non-zero.
    pub vals: Vec<f64>,
}

/// Whether every value is a whole number that fits `u32` (then counts are stored as integers).
pub fn all_integer<'a>(vals: impl Iterator<Item = &'a f64>) -> bool {
    let mut ok = true;
    for &v in vals {
        ok &= v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v);
    }
    ok
}

/// Builds CSR counts from rows whose columns are already sorted and unique.
pub fn csr_from_rows(rows: Vec<SparseRow>, n_cols: usize) -> CsrCounts {
    let integer = rows.par_iter().all(|r| all_integer(r.vals.iter()));
    let nnz: usize = rows.iter().map(|r| r.cols.len()).sum();
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0u64);
    let mut indices = Vec::with_capacity(nnz);
    let mut u = Vec::new();
    let mut f = Vec::new();
    if integer {
        u.reserve(nnz);
    } else {
        f.reserve(nnz);
    }
    let n_rows = rows.len();
    for r in rows {
        indices.extend_from_slice(&r.cols);
        if integer {
            u.extend(r.vals.iter().map(|&v| v as u32));
        } else {
            f.extend(r.vals.iter().map(|&v| v as f32));
        }
        indptr.push(indices.len() as u64);
    }
    let values = if integer { CountValues::U32(u) } else { CountValues::F32(f) };
    let mut m = CsrCounts { n_rows, n_cols, indptr, indices, values };
    // f32 can round a tiny positive value to zero; such entries are not stored.
    m.drop_zeros();
    m
}

/// Coordinate lists `(rows, cols, vals)`: entry `k` is `vals[k]` at (`rows[k]`, `cols[k]`).
pub type CooPart = (Vec<u32>, Vec<u32>, Vec<f64>);

/// Builds CSR counts from coordinate lists given in parts (e.g. one per parsed chunk of a file), summing
/// duplicates and dropping zeros, in O(nnz) plus a sort within each row. Each part is freed as soon as its
/// entries are placed, so the parts are never held twice (a 200-million-entry Matrix Market file would
/// otherwise need several GB more).
pub fn csr_from_coo(n_rows: usize, n_cols: usize, parts: Vec<CooPart>) -> CsrCounts {
    let total: usize = parts.iter().map(|p| p.0.len()).sum();
    let mut counts = vec![0u64; n_rows + 1];
    for (rows, _, _) in &parts {
        for &r in rows {
            counts[r as usize + 1] += 1;
        }
    }
    for i in 0..n_rows {
        counts[i + 1] += counts[i];
    }
    let mut next = counts.clone();
    let mut idx = vec![0u32; total];
    let mut val = vec![0f64; total];
    for (rows, cols, vals) in parts {
        for k in 0..rows.len() {
            let r = rows[k] as usize;
            let d = next[r] as usize;
            next[r] += 1;
            idx[d] = cols[k];
            val[d] = vals[k];
        }
    }
    drop(next);
    let out: Vec<SparseRow> = (0..n_rows)
        .into_par_iter()
        .map(|r| {
            let (a, b) = (counts[r] as usize, counts[r + 1] as usize);
            let mut pairs: Vec<(u32, f64)> = idx[a..b].iter().copied().zip(val[a..b].iter().copied()).collect();
            if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
                pairs.sort_by_key(|p| p.0);
            }
            let mut row = SparseRow { cols: Vec::with_capacity(pairs.len()), vals: Vec::with_capacity(pairs.len()) };
            for (c, v) in pairs {
                if row.cols.last() == Some(&c) {
                    if let Some(last) = row.vals.last_mut() {
                        *last += v;
                    }
                } else {
                    row.cols.push(c);
                    row.vals.push(v);
                }
            }
            let keep: Vec<usize> = (0..row.cols.len()).filter(|&k| row.vals[k] != 0.0).collect();
            if keep.len() != row.cols.len() {
                row.cols = keep.iter().map(|&k| row.cols[k]).collect();
                row.vals = keep.iter().map(|&k| row.vals[k]).collect();
            }
            row
        })
        .collect();
    csr_from_rows(out, n_cols)
}

/// The texts that mean a missing value in a text table (besides an empty field), in every column: R's
/// `NA`, pandas' `NaN`/`nan`/`None`, and `null`. The same set for a counts table's metadata columns
/// ([`infer_column`]) and for an `--obs` file, so a label column reads the same from either.
pub const MISSING_TOKENS: [&str; 6] = ["NA", "NaN", "nan", "null", "NULL", "None"];

/// Infers a typed column from text values: all integers -> `Int`, all numbers -> `Float`, `true`/`false`
/// -> `Bool`, else `Text`. Empty fields and the [`MISSING_TOKENS`] are missing values.
pub fn infer_column(values: &[String]) -> Column {
    let missing = |s: &str| s.is_empty() || MISSING_TOKENS.contains(&s);
    let present: Vec<&str> = values.iter().map(|s| s.as_str()).filter(|s| !missing(s)).collect();
    if !present.is_empty() && present.iter().all(|s| s.parse::<i64>().is_ok()) {
        return Column::Int(values.iter().map(|s| if missing(s) { None } else { s.parse().ok() }).collect());
    }
    if !present.is_empty() && present.iter().all(|s| s.parse::<f64>().is_ok()) {
        return Column::Float(values.iter().map(|s| if missing(s) { None } else { s.parse().ok() }).collect());
    }
    let is_bool = |s: &str| matches!(s, "true" | "false" | "TRUE" | "FALSE" | "True" | "False");
    if !present.is_empty() && present.iter().all(|s| is_bool(s)) {
        return Column::Bool(
            values.iter().map(|s| if missing(s) { None } else { Some(s.eq_ignore_ascii_case("true")) }).collect(),
        );
    }
    Column::Text(values.iter().map(|s| (!missing(s)).then(|| s.clone())).collect())
}

/// Column names reserved by `cells.parquet` (fixed columns): a vendor column with one of these names is
/// renamed by [`extra_column_name`].
pub const RESERVED_CELL_COLUMNS: [&str; 7] = ["cell_id", "sample", "x", "y", "z", "total_counts", "n_genes"];

/// The name a vendor column gets in `cells.parquet`: its own name unless it clashes with a fixed column,
/// then prefixed with `source_` (e.g. Xenium's `total_counts`, which includes control probes, becomes
/// `source_total_counts`; tmescope's `total_counts` is recomputed over genes only).
pub fn extra_column_name(name: &str) -> String {
    if RESERVED_CELL_COLUMNS.contains(&name) {
        format!("source_{name}")
    } else {
        name.to_string()
    }
}

/// Checks that `ids` are unique, else an input error naming both lines of the first duplicate
/// (`line_of(i)` gives the location of id `i`).
pub fn check_unique(path: &Path, ids: &[String], line_of: impl Fn(usize) -> String) -> Result<()> {
    check_unique_named(path, ids, line_of, "cell/barcode ids")
}

/// [`check_unique`] for any kind of name: `what` (e.g. `gene names`) is said to need to be unique.
pub fn check_unique_named(path: &Path, ids: &[String], line_of: impl Fn(usize) -> String, what: &str) -> Result<()> {
    let mut seen: IdMap<&str, usize> = IdMap::with_capacity_and_hasher(ids.len(), Default::default());
    for (i, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id.as_str(), i) {
            return Err(Error::input(
                path,
                line_of(i),
                format!("duplicate `{id}` (also at {}): {what} must be unique", line_of(first)),
            ));
        }
    }
    Ok(())
}

/// What a field of a wide (one row per cell, one column per gene) table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    /// Not a count (an id or metadata column): ignored by [`parse_wide`].
    Skip,
    /// Counts of gene `i` (output column `i`).
    Gene(u32),
    /// Counts of a control probe/codeword summed into QC group `i`.
    Control(usize),
}

/// Parses the count fields of every data line of a wide table in parallel: each line must have
/// `roles.len()` fields; gene fields become a sparse row, control fields are summed per group
/// (`n_groups` groups). A non-numeric or negative count is an input error naming the line and column.
pub fn parse_wide(t: &TextTable, roles: &[FieldRole], n_groups: usize) -> Result<(Vec<SparseRow>, Vec<Vec<f64>>)> {
    let n_fields = roles.len();
    let parsed: Vec<(SparseRow, Vec<f64>)> = (0..t.len())
        .into_par_iter()
        .map(|i| {
            let line = t.line(i);
            let mut row = SparseRow::default();
            let mut qc = vec![0.0; n_groups];
            // Fast path without quote handling when the line has no quotes (the usual numeric rows).
            let fields: Vec<Cow<'_, str>> = if line.contains('"') {
                split_fields(line, t.delim)
            } else {
                line.trim_end_matches('\r').split(t.delim as char).map(Cow::Borrowed).collect()
            };
            if fields.len() != n_fields {
                return Err(t.error_at(
                    i,
                    format!(
                        "expected {n_fields} fields like the header, found {} (wrong delimiter or ragged row?)",
                        fields.len()
                    ),
                ));
            }
            for (n, (f, role)) in fields.iter().zip(roles).enumerate() {
                if let FieldRole::Skip = role {
                    continue;
                }
                let v = parse_count(f.trim()).ok_or_else(|| {
                    let name = t.header.get(n).cloned().unwrap_or_else(|| format!("field {}", n + 1));
                    Error::input(
                        &t.path,
                        format!("line {}, column `{name}`", t.line_no(i)),
                        format!("expected a non-negative number, found `{}`", f.trim()),
                    )
                })?;
                match *role {
                    FieldRole::Gene(g) if v != 0.0 => {
                        row.cols.push(g);
                        row.vals.push(v);
                    }
                    FieldRole::Control(k) => qc[k] += v,
                    _ => {}
                }
            }
            // Gene columns may not be in increasing order of their output index.
            if row.cols.windows(2).any(|w| w[0] >= w[1]) {
                let mut pairs: Vec<(u32, f64)> = row.cols.iter().copied().zip(row.vals.iter().copied()).collect();
                pairs.sort_by_key(|p| p.0);
                row.cols = pairs.iter().map(|p| p.0).collect();
                row.vals = pairs.iter().map(|p| p.1).collect();
            }
            Ok((row, qc))
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::with_capacity(parsed.len());
    let mut groups: Vec<Vec<f64>> = (0..n_groups).map(|_| Vec::with_capacity(parsed.len())).collect();
    for (row, qc) in parsed {
        rows.push(row);
        for (g, v) in qc.into_iter().enumerate() {
            groups[g].push(v);
        }
    }
    Ok((rows, groups))
}

/// A QC column from per-cell control sums: integers when every sum is whole.
pub fn qc_column(sums: &[f64]) -> Column {
    if all_integer(sums.iter()) {
        Column::Int(sums.iter().map(|&v| Some(v as i64)).collect())
    } else {
        Column::Float(sums.iter().map(|&v| Some(v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_text_names_line_and_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.csv");
        std::fs::write(&p, b"id,a\nc1,1\nc\xe92,2\n").unwrap();
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.contains("t.csv (line 3)") && e.contains("0xE9") && e.contains("character 2"), "{e}");
    }
    use std::io::Write;

    #[test]
    fn delimiter_follows_header() {
        assert_eq!(detect_delimiter(Path::new("a.csv"), "a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(Path::new("a.tsv.gz"), "a,b\tc"), b'\t');
        assert_eq!(detect_delimiter(Path::new("a.txt"), "a,b,c"), b',');
    }

    #[test]
    fn counts_parse_strictly() {
        assert_eq!(parse_count("12"), Some(12.0));
        assert_eq!(parse_count("0.5"), Some(0.5));
        assert_eq!(parse_count("1e3"), Some(1000.0));
        assert_eq!(parse_count("abc"), None);
        assert_eq!(parse_count(""), None);
        assert_eq!(parse_count("-1"), None);
    }

    #[test]
    fn coo_sums_duplicates_and_sorts() {
        let m = csr_from_coo(
            2,
            3,
            vec![(vec![1, 0], vec![2, 1], vec![1.0, 4.0]), (vec![1, 1], vec![0, 2], vec![2.0, 3.0])],
        );
        assert_eq!(m.indptr, vec![0, 1, 3]);
        assert_eq!(m.indices, vec![1, 0, 2]);
        assert_eq!(m.values, CountValues::U32(vec![4, 2, 4]));
        let f = csr_from_coo(1, 1, vec![(vec![0], vec![0], vec![0.5])]);
        assert_eq!(f.values, CountValues::F32(vec![0.5]));
    }

    #[test]
    fn columns_are_typed() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(infer_column(&s(&["1", "", "3"])), Column::Int(vec![Some(1), None, Some(3)]));
        assert_eq!(infer_column(&s(&["1.5", "NA"])), Column::Float(vec![Some(1.5), None]));
        assert_eq!(infer_column(&s(&["a", "1"])), Column::Text(vec![Some("a".into()), Some("1".into())]));
    }

    #[test]
    fn truncated_gzip_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..2000 {
            writeln!(enc, "row{i},{i}").unwrap();
        }
        let bytes = enc.finish().unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_bytes(&p).unwrap_err().to_string();
        assert!(e.contains("x.csv.gz") && e.contains("truncated"), "{e}");
    }

    #[test]
    fn table_reads_lines_with_numbers() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("t.csv");
        std::fs::write(&p, "id,a\n\nc1,1\nc2,x\n").unwrap();
        let t = TextTable::read(&p, true).unwrap();
        assert_eq!(t.header, vec!["id", "a"]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.line_no(1), 4);
        assert!(t.require("b").unwrap_err().to_string().contains("`b`"));
    }
}
