//! Readers for every vendor format tmescope ingests, each turning what an instrument or core facility
//! produced into a [`tmescope_core::dataset::Dataset`].
//!
//! One module per platform or container format:
//!
//! | module | reads |
//! |---|---|
//! | [`tenx_h5`] | 10x HDF5 matrices (Cell Ranger 2/3, Space Ranger, multi-genome, probe-based) |
//! | [`mtx`] | 10x Matrix Market folders (CR2 `genes.tsv`, CR3 `features.tsv.gz`) |
//! | [`visium`] | Visium SR1/SR2 spot outputs and Visium HD binned outputs |
//! | [`xenium`] | Xenium `cells` + `cell_feature_matrix`, or `transcripts.parquet` |
//! | [`merscope`] | MERSCOPE `cell_by_gene.csv` + `cell_metadata.csv` |
//! | [`cosmx`] | CosMx expression matrix + metadata, or the transcript file |
//! | [`h5ad`] | AnnData `.h5ad` (legacy, 0.7 and >= 0.8 encodings) |
//! | [`table`] | generic CSV/TSV/Parquet count tables with coordinates and metadata |
//! | [`detect`] | `--format auto`: which of the above a path is |
//!
//! Every reader returns user-facing errors ([`tmescope_core::Error::Input`]) that name the file, the field
//! and what was expected; none panics on malformed input.

pub mod cosmx;
pub mod detect;
pub mod h5ad;
mod hdf5_chunks;
mod hdf5_util;
pub mod merscope;
pub mod mtx;
pub mod table;
pub mod tenx_h5;
mod text_util;
pub mod visium;
pub mod xenium;

use std::path::PathBuf;

/// Options shared by the readers; each reader uses the ones that apply to it.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Sample name written into `cells.sample`.
    pub sample: String,
    /// Keep every feature type (10x), not only `Gene Expression`.
    pub all_feature_types: bool,
    /// Keep Visium spots with `in_tissue = 0`.
    pub keep_off_tissue: bool,
    /// Visium HD bin size in micrometres (2, 8 or 16).
    pub bin_size_um: u32,
    /// AnnData layer to read instead of `X` (e.g. `counts`).
    pub layer: Option<String>,
    /// Read AnnData `raw/X` instead of `X`.
    pub use_raw: bool,
    /// Minimum Phred quality of Xenium transcripts counted (default 20).
    pub min_qv: f64,
    /// Generic tables: genes are rows, cells are columns.
    pub genes_in_rows: bool,
    /// Generic tables: separate coordinates file.
    pub coords: Option<PathBuf>,
    /// Generic tables: separate cell metadata file joined on the cell id.
    pub obs: Option<PathBuf>,
    /// Generic tables: name of the cell id column (default: the first column).
    pub id_column: Option<String>,
    /// Name of the x coordinate column (default: auto-detected `x`, `x_centroid`, `center_x`, ...).
    pub x_column: Option<String>,
    /// Name of the y coordinate column.
    pub y_column: Option<String>,
    /// Column holding cell-type labels (stored as `cell_type`), for references.
    pub label_column: Option<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            sample: "sample1".into(),
            all_feature_types: false,
            keep_off_tissue: false,
            bin_size_um: 8,
            layer: None,
            use_raw: false,
            min_qv: 20.0,
            genes_in_rows: false,
            coords: None,
            obs: None,
            id_column: None,
            x_column: None,
            y_column: None,
            label_column: None,
        }
    }
}
