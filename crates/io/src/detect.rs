//! `--format auto`: which reader a path needs, from folder contents, file names and the HDF5 signature.
//!
//! Rules, first match wins:
//!
//! | path | format |
//! |---|---|
//! | folder with `binned_outputs/`, or a `square_XXXum/` bin folder with `spatial/tissue_positions.parquet` | Visium HD |
//! | folder with `spatial/tissue_positions.csv` or `spatial/tissue_positions_list.csv` | Visium |
//! | folder with `cells.parquet`/`cells.csv.gz` + `cell_feature_matrix*`, or `transcripts.parquet`; or a `transcripts.parquet` file | Xenium |
//! | folder with `*cell_by_gene.csv`, or such a file | MERSCOPE |
//! | folder with `*_exprMat_file.csv` or `*_tx_file.csv`, or such a file | CosMx |
//! | folder with `matrix.mtx[.gz]`, or a `.mtx` file | 10x MTX |
//! | file starting with the HDF5 signature: `.h5ad` name, else a 10x `.h5` | h5ad / 10x HDF5 |
//! | any other `.csv`, `.tsv`, `.txt`, `.parquet` file (gzipped too) | table |
//!
//! Detection only lists folder entries and reads 8 bytes of a file: O(entries).

use crate::{cosmx, merscope, mtx, xenium, ReadOptions};
use std::io::Read;
use std::path::Path;
use tmescope_core::dataset::Dataset;
use tmescope_core::{Error, Result};

/// The input formats tmescope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Visium Space Ranger output (SR1 headerless or SR >= 2 positions).
    Visium,
    /// Visium HD binned outputs.
    VisiumHd,
    /// Xenium output folder or transcripts.
    Xenium,
    /// MERSCOPE `cell_by_gene.csv` + `cell_metadata.csv`.
    Merscope,
    /// CosMx flat files.
    Cosmx,
    /// AnnData `.h5ad`.
    H5ad,
    /// 10x HDF5 feature-barcode matrix.
    TenxH5,
    /// 10x Matrix Market folder.
    TenxMtx,
    /// Generic count table.
    Table,
}

impl Format {
    /// Every format, in the order of the `--format` help.
    pub const ALL: [Format; 9] = [
        Format::Visium,
        Format::VisiumHd,
        Format::Xenium,
        Format::Merscope,
        Format::Cosmx,
        Format::H5ad,
        Format::TenxH5,
        Format::TenxMtx,
        Format::Table,
    ];

    /// The name used on the command line and as the dataset's platform (`10x-h5`, `visium-hd`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Format::Visium => "visium",
            Format::VisiumHd => "visium-hd",
            Format::Xenium => "xenium",
            Format::Merscope => "merscope",
            Format::Cosmx => "cosmx",
            Format::H5ad => "h5ad",
            Format::TenxH5 => "10x-h5",
            Format::TenxMtx => "10x-mtx",
            Format::Table => "table",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let norm = s.to_ascii_lowercase().replace('_', "-");
        Format::ALL.into_iter().find(|f| f.name() == norm).ok_or_else(|| {
            Error::Usage(format!(
                "unknown format `{s}`: expected auto or one of {}",
                Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// The HDF5 file signature.
const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Whether `path` starts with the HDF5 signature.
pub fn is_hdf5(path: &Path) -> bool {
    let mut buf = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf)).is_ok() && &buf == HDF5_MAGIC
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// Works out the format of `path` (see the module docs), or a usage error saying what was looked for.
pub fn detect(path: &Path) -> Result<Format> {
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder")));
    }
    if path.is_dir() {
        let spatial = path.join("spatial");
        if path.join("binned_outputs").is_dir()
            || (file_name(path).starts_with("square_") && spatial.join("tissue_positions.parquet").is_file())
        {
            return Ok(Format::VisiumHd);
        }
        if spatial.join("tissue_positions.csv").is_file()
            || spatial.join("tissue_positions_list.csv").is_file()
            || spatial.join("tissue_positions.parquet").is_file()
        {
            return Ok(Format::Visium);
        }
        if xenium::is_xenium(path) {
            return Ok(Format::Xenium);
        }
        if merscope::is_merscope(path) {
            return Ok(Format::Merscope);
        }
        if cosmx::is_cosmx(path) {
            return Ok(Format::Cosmx);
        }
        if mtx::is_mtx_dir(path) {
            return Ok(Format::TenxMtx);
        }
        return Err(Error::file(
            path,
            "cannot tell the format of this folder (no Visium spatial/, Xenium cells + cell_feature_matrix or transcripts.parquet, MERSCOPE cell_by_gene.csv, CosMx *_exprMat_file.csv / *_tx_file.csv, or 10x matrix.mtx): give --format",
        ));
    }
    let name = file_name(path).to_lowercase();
    let base = name.trim_end_matches(".gz");
    if is_hdf5(path) {
        return Ok(if base.ends_with(".h5ad") { Format::H5ad } else { Format::TenxH5 });
    }
    if base.ends_with(".h5ad") || base.ends_with(".h5") {
        return Err(Error::file(
            path,
            "named like an HDF5 file but does not start with the HDF5 signature (truncated or not HDF5?)",
        ));
    }
    if name.contains("transcripts") && base.ends_with(".parquet") {
        return Ok(Format::Xenium);
    }
    if name.contains("cell_by_gene") {
        return Ok(Format::Merscope);
    }
    if name.contains("exprmat_file") || name.contains("tx_file") {
        return Ok(Format::Cosmx);
    }
    if base.ends_with(".mtx") {
        return Ok(Format::TenxMtx);
    }
    if [".csv", ".tsv", ".txt", ".tab", ".parquet", ".pq", ".matrix"].iter().any(|e| base.ends_with(e)) {
        return Ok(Format::Table);
    }
    Err(Error::file(path, "cannot tell the format of this file from its name or content: give --format"))
}

/// A usage error when `opts` sets an option that the reader of `format` does not use (e.g. `--obs` for a
/// 10x folder): silently ignoring it would give a dataset without the labels the user asked for.
fn check_options(format: Format, opts: &ReadOptions) -> Result<()> {
    let given = [
        ("--obs", opts.obs.is_some(), &[Format::Table][..]),
        ("--coords", opts.coords.is_some(), &[Format::Table]),
        ("--genes-in-rows", opts.genes_in_rows, &[Format::Table]),
        ("--id-column", opts.id_column.is_some(), &[Format::Table]),
        ("--x-column", opts.x_column.is_some(), &[Format::Table]),
        ("--y-column", opts.y_column.is_some(), &[Format::Table]),
        ("--label-column", opts.label_column.is_some(), &[Format::Table, Format::H5ad]),
        ("--layer", opts.layer.is_some(), &[Format::H5ad]),
        ("--raw", opts.use_raw, &[Format::H5ad]),
    ];
    for (option, set, formats) in given {
        if set && !formats.contains(&format) {
            let names: Vec<&str> = formats.iter().map(|f| f.name()).collect();
            let advice = match option {
                "--obs" | "--label-column" => {
                    ": to give cell labels to other input, write its counts and labels as a table or an .h5ad"
                }
                _ => "",
            };
            return Err(Error::Usage(format!(
                "{option} applies to {} input only, and this input is {}{advice}",
                names.join(" and "),
                format.name()
            )));
        }
    }
    Ok(())
}

/// Reads `path` with the reader of `format`; an option the reader does not use is a usage error.
pub fn read(path: &Path, format: Format, opts: &ReadOptions) -> Result<Dataset> {
    check_options(format, opts)?;
    match format {
        Format::Visium => crate::visium::read(path, opts),
        Format::VisiumHd => crate::visium::read_hd(path, opts),
        Format::Xenium => xenium::read(path, opts),
        Format::Merscope => merscope::read(path, opts),
        Format::Cosmx => cosmx::read(path, opts),
        Format::H5ad => crate::h5ad::read(path, opts),
        Format::TenxH5 => crate::tenx_h5::read(path, opts),
        Format::TenxMtx => {
            let dir = if path.is_file() { path.parent().unwrap_or(Path::new(".")) } else { path };
            mtx::read(dir, opts)
        }
        Format::Table => crate::table::read(path, opts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!("nope".parse::<Format>().is_err());
    }

    #[test]
    fn files_are_recognised_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("Lung_tx_file.csv");
        std::fs::write(&p, "fov\n").unwrap();
        assert_eq!(detect(&p).unwrap(), Format::Cosmx);
        let q = tmp.path().join("counts.tsv.gz");
        std::fs::write(&q, "x").unwrap();
        assert_eq!(detect(&q).unwrap(), Format::Table);
        let h = tmp.path().join("m.h5");
        std::fs::write(&h, b"\x89HDF\r\n\x1a\n....").unwrap();
        assert_eq!(detect(&h).unwrap(), Format::TenxH5);
        // An option another reader does not use is refused, not ignored.
        let opts = ReadOptions { obs: Some("obs.csv".into()), ..Default::default() };
        let e = read(tmp.path(), Format::TenxMtx, &opts).unwrap_err().to_string();
        assert!(e.contains("--obs applies to table input only") && e.contains("10x-mtx"), "{e}");
        let opts = ReadOptions { label_column: Some("type".into()), ..Default::default() };
        let e = read(tmp.path(), Format::Visium, &opts).unwrap_err().to_string();
        assert!(e.contains("--label-column applies to table and h5ad input only"), "{e}");
    }
}
