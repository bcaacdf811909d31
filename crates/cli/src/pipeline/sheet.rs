//! The sample sheet of `tmescope run`: read by [`read_sample_sheet`] (the reader of `tmescope ingest
//! --samples`, so both commands accept the same sheets), plus the rules of the run's own folder layout.

use std::path::Path;
use tmescope_core::{Error, Result};
use tmescope_io::table::read_sample_sheet;
pub use tmescope_io::table::SampleRow;

/// Names of the run's own folders beside the sample folders, so not usable as sample names.
const RESERVED: [&str; 2] = ["cohort", "logs"];

/// Reads the sheet at `path`; `default_format` fills a missing or empty `format`. Errors name the sheet,
/// the line and the column.
pub fn read(path: &Path, default_format: &str) -> Result<Vec<SampleRow>> {
    let rows = read_sample_sheet(path, default_format)?;
    if let Some(r) = rows.iter().find(|r| RESERVED.contains(&r.sample.as_str())) {
        return Err(Error::input(
            path,
            "column `sample`",
            format!("`{}` cannot be a sample name (`cohort` and `logs` are the run's own folders)", r.sample),
        ));
    }
    Ok(rows)
}

/// Whether the sample is an already-ingested dataset folder (copied, not ingested).
pub fn is_dataset(row: &SampleRow) -> bool {
    // `tmescope` is what `tmescope simulate` writes in its sheet.
    matches!(row.format.as_str(), "dataset" | "tmescope")
        || (row.format == "auto" && row.path.join("cells.parquet").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_are_not_sample_names_and_datasets_are_recognised() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("s.csv");
        std::fs::write(&p, "sample,path,format\na,data/a,dataset\nb,raw/b,\n").unwrap();
        let rows = read(&p, "xenium").unwrap();
        assert!(is_dataset(&rows[0]) && !is_dataset(&rows[1]));
        assert_eq!(rows[1].format, "xenium");
        std::fs::write(&p, "sample,path\na,b\ncohort,c\n").unwrap();
        let e = read(&p, "auto").unwrap_err().to_string();
        assert!(e.contains("s.csv") && e.contains("`cohort` cannot be a sample name"), "{e}");
    }
}
