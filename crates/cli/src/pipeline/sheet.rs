//! The sample sheet: one row per sample with `sample`, `path`, `format` and any metadata columns.
//!
//! CSV or TSV (the delimiter is the one of the header line: a tab if it has one, else a comma), with
//! double-quoted fields allowed. Paths are relative to the sheet's folder. Reading is O(rows).

use std::path::{Path, PathBuf};
use tmescope_core::{Error, Result};

/// One sample of the sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    /// Sample name (unique; used as a folder name).
    pub sample: String,
    /// Vendor output or dataset folder, resolved against the sheet's folder.
    pub path: PathBuf,
    /// `dataset` (or `tmescope`, as `tmescope simulate` writes), `auto` or a `tmescope ingest --format` value.
    pub format: String,
    /// The other columns, in sheet order (e.g. `condition`, `patient`).
    pub metadata: Vec<(String, String)>,
}

impl SampleRow {
    /// Whether the sample is an already-ingested dataset folder (copied, not ingested).
    pub fn is_dataset(&self) -> bool {
        // `tmescope` is what `tmescope simulate` writes in its sheet.
        matches!(self.format.as_str(), "dataset" | "tmescope")
            || (self.format == "auto" && self.path.join("cells.parquet").is_file())
    }
}

/// Splits one delimited line, honouring double quotes (`""` inside quotes is a quote).
fn split_line(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == delimiter && !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

/// Reads the sheet at `path`; `default_format` fills a missing or empty `format`.
pub fn read(path: &Path, default_format: &str) -> Result<Vec<SampleRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&text, path, default_format)
}

/// Parses sheet text (see [`read`]); errors name the sheet, the line and the column.
pub fn parse(text: &str, path: &Path, default_format: &str) -> Result<Vec<SampleRow>> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, header) = lines.next().ok_or_else(|| Error::file(path, "the sample sheet is empty"))?;
    let delimiter = if header.contains('\t') { '\t' } else { ',' };
    let columns = split_line(header, delimiter);
    let find = |name: &str| columns.iter().position(|c| c == name);
    let sample_col = find("sample").ok_or_else(|| {
        Error::input(path, "line 1", format!("missing column `sample` (found: {})", columns.join(", ")))
    })?;
    let path_col = find("path").ok_or_else(|| {
        Error::input(path, "line 1", format!("missing column `path` (found: {})", columns.join(", ")))
    })?;
    let format_col = find("format");
    let mut rows: Vec<SampleRow> = Vec::new();
    for (i, line) in lines {
        let at = format!("line {}", i + 1);
        let fields = split_line(line, delimiter);
        if fields.len() != columns.len() {
            return Err(Error::input(
                path,
                at,
                format!("expected {} fields like the header, found {}", columns.len(), fields.len()),
            ));
        }
        let sample = fields[sample_col].clone();
        if sample.is_empty() {
            return Err(Error::input(path, at, "column `sample` is empty"));
        }
        if sample == "cohort" || sample == "logs" || sample.starts_with('.') || sample.contains(['/', '\\']) {
            return Err(Error::input(
                path,
                format!("{at}, column `sample`"),
                format!("`{sample}` cannot be a sample name (it is used as a folder name; `cohort` and `logs` are reserved)"),
            ));
        }
        if rows.iter().any(|r| r.sample == sample) {
            return Err(Error::input(path, format!("{at}, column `sample`"), format!("duplicate sample `{sample}`")));
        }
        let raw_path = &fields[path_col];
        if raw_path.is_empty() {
            return Err(Error::input(path, format!("{at}, column `path`"), "empty path"));
        }
        let p = Path::new(raw_path);
        let resolved = if p.is_absolute() || base.as_os_str().is_empty() { p.to_path_buf() } else { base.join(p) };
        let format = format_col.map(|c| fields[c].clone()).filter(|f| !f.is_empty());
        let metadata = columns
            .iter()
            .zip(&fields)
            .enumerate()
            .filter(|(c, _)| *c != sample_col && *c != path_col && Some(*c) != format_col)
            .map(|(_, (k, v))| (k.clone(), v.clone()))
            .collect();
        rows.push(SampleRow {
            sample,
            path: resolved,
            format: format.unwrap_or_else(|| default_format.to_string()),
            metadata,
        });
    }
    if rows.is_empty() {
        return Err(Error::file(path, "the sample sheet has a header but no samples"));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_tsv_with_metadata() {
        let csv = "sample,path,format,condition\ns1,data/s1,dataset,pre\n\"s2\",\"/abs/s 2\",,post\n";
        let rows = parse(csv, Path::new("cfg/samples.csv"), "auto").unwrap();
        assert_eq!(rows[0].path, PathBuf::from("cfg/data/s1"));
        assert!(rows[0].is_dataset());
        assert_eq!(rows[1].path, PathBuf::from("/abs/s 2"));
        assert_eq!(rows[1].format, "auto");
        assert_eq!(rows[1].metadata, vec![("condition".to_string(), "post".to_string())]);
        let tsv = "sample\tpath\ns1\tx\n";
        assert_eq!(parse(tsv, Path::new("s.tsv"), "xenium").unwrap()[0].format, "xenium");
    }

    #[test]
    fn bad_sheets_name_line_and_column() {
        let e = parse("name,path\na,b\n", Path::new("s.csv"), "auto").unwrap_err().to_string();
        assert!(e.contains("s.csv") && e.contains("`sample`"), "{e}");
        let e = parse("sample,path\na,b\na,c\n", Path::new("s.csv"), "auto").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("duplicate"), "{e}");
        let e = parse("sample,path\na,b,c\n", Path::new("s.csv"), "auto").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("expected 2 fields"), "{e}");
        let e = parse("sample,path\ncohort,b\n", Path::new("s.csv"), "auto").unwrap_err().to_string();
        assert!(e.contains("reserved"), "{e}");
    }
}
