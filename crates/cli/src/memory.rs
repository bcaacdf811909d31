//! The `--max-memory` guard: estimate what an input needs before loading it and refuse early, with advice,
//! instead of being killed by the operating system half-way.
//!
//! Estimates (documented in `docs/reliability.md`), all O(number of files) and read from headers only:
//! - a dataset folder: the row counts in the Parquet footers of `counts.parquet` (non-zeros) and
//!   `cells.parquet` (cells): [`BYTES_PER_NONZERO`] per non-zero (CSR index and value, plus the columns
//!   read from Parquet before they are converted) and [`BYTES_PER_CELL`] per cell;
//! - a radius graph, in `graph --kind radius`: the number of edges estimated from up to 512 cells
//!   (`tmescope_spatial::build::radius_edge_estimate`) times [`BYTES_PER_EDGE`];
//! - vendor input for `ingest`: the size of the files that will be read times an expansion factor
//!   ([`COMPRESSED_FACTOR`] for HDF5, gzip and Parquet, [`TEXT_FACTOR`] for text); images are skipped and,
//!   for Visium HD, only the `square_NNNum` folder of the chosen bin size counts.
//!
//! The default limit is 80% of the physical memory (`MemTotal` in `/proc/meminfo`; no limit where that
//! cannot be read); `--max-memory 0` turns the guard off.

use std::path::{Path, PathBuf};
use tmescope_core::Error;

/// Bytes held per stored non-zero count of a dataset folder while a stage loads it.
pub const BYTES_PER_NONZERO: u64 = 24;
/// Bytes held per cell (cell table, per-cell results).
pub const BYTES_PER_CELL: u64 = 256;
/// Bytes held per edge while `graph` builds a radius graph (the edge list, its sorted copy and the
/// compressed rows).
pub const BYTES_PER_EDGE: u64 = 64;
/// Memory per byte of compressed input (HDF5, gzip, Parquet) while `ingest` reads it.
pub const COMPRESSED_FACTOR: u64 = 8;
/// Memory per byte of plain-text input while `ingest` reads it.
pub const TEXT_FACTOR: u64 = 3;

/// The memory limit in force and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Bytes; `None` = no limit.
    pub bytes: Option<u64>,
    /// Whether the user gave it (`--max-memory`) rather than the default (80% of physical memory).
    pub explicit: bool,
}

impl Limit {
    /// The limit from `--max-memory` (bytes, 0 = none) or the default: 80% of physical memory.
    pub fn new(max_memory: Option<u64>) -> Self {
        match max_memory {
            Some(0) => Limit { bytes: None, explicit: true },
            Some(b) => Limit { bytes: Some(b), explicit: true },
            None => Limit { bytes: physical_memory().map(|m| m / 10 * 8), explicit: false },
        }
    }

    /// Fails with advice when `need` bytes for `file` (described by `what`) exceed the limit.
    pub fn check(&self, file: &Path, need: u64, what: &str, advice: &str) -> tmescope_core::Result<()> {
        let Some(limit) = self.bytes else { return Ok(()) };
        if need <= limit {
            return Ok(());
        }
        let source = if self.explicit { "--max-memory" } else { "the default --max-memory, 80% of physical memory" };
        Err(Error::file(
            file,
            format!(
                "this input needs about {} of memory ({what}) but the limit is {} ({source}); {advice}, or raise \
                 --max-memory (e.g. --max-memory {}) if the machine has that memory",
                format_size(need),
                format_size(limit),
                format_size(need.saturating_mul(2)).replace(' ', "")
            ),
        ))
    }

    /// Checks a dataset folder from the row counts in its Parquet footers. Unreadable or missing files
    /// pass: the stage reports them itself, with its own message.
    pub fn check_dataset(&self, dir: &Path) -> tmescope_core::Result<()> {
        let counts = dir.join("counts.parquet");
        let (Some(nnz), Some(cells)) = (parquet_rows(&counts), parquet_rows(&dir.join("cells.parquet"))) else {
            return Ok(());
        };
        let need = nnz.saturating_mul(BYTES_PER_NONZERO).saturating_add(cells.saturating_mul(BYTES_PER_CELL));
        self.check(
            &counts,
            need,
            &format!("{nnz} non-zero counts, {cells} cells"),
            "run the stage on a subset of the cells (or a coarser Visium HD bin size at ingest)",
        )
    }

    /// Checks a vendor input given to `ingest` from the size of the files that will be read.
    pub fn check_input(&self, path: &Path, bin_size_um: u32) -> tmescope_core::Result<()> {
        if self.bytes.is_none() {
            return Ok(());
        }
        let (need, visium_hd) = input_estimate(path, bin_size_um);
        let advice = match (visium_hd, bin_size_um) {
            (true, b) if b < 8 => "bin at 8 or 16 um with --bin-size 8 or --bin-size 16",
            (true, b) if b < 16 => "bin at 16 um with --bin-size 16",
            _ => "split the input (one sample or region per run)",
        };
        self.check(path, need, "estimated from the size of the files to read", advice)
    }
}

/// Parses a size: a number with an optional unit `K`, `M`, `G`, `T` (powers of 1024, an optional `B` or
/// `iB` after it), e.g. `8G`, `500M`, `1.5G`, `1073741824`; `0` means no limit.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix("IB").or_else(|| upper.strip_suffix('B')).unwrap_or(&upper);
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        Some('T') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * (mult as f64) < u64::MAX as f64 => Ok((v * mult as f64) as u64),
        _ => {
            Err(format!("`{s}` is not a size: expected a number with an optional unit, like 8G, 500M or 0 (no limit)"))
        }
    }
}

/// A size for people: `1.5 GB`, `300 MB`, `12 KB`, `100 B` (powers of 1024).
pub fn format_size(bytes: u64) -> String {
    let units = [("TB", 1u64 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (name, size) in units {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if v < 10.0 { format!("{v:.1} {name}") } else { format!("{v:.0} {name}") };
        }
    }
    format!("{bytes} B")
}

/// Physical memory from `/proc/meminfo` (Linux); `None` elsewhere.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Rows in a Parquet file, from its footer only.
fn parquet_rows(path: &Path) -> Option<u64> {
    use parquet::file::reader::FileReader;
    let file = std::fs::File::open(path).ok()?;
    let reader = parquet::file::reader::SerializedFileReader::new(file).ok()?;
    u64::try_from(reader.metadata().file_metadata().num_rows()).ok()
}

/// Whether ingest skips the file `path` (lower-case `name`) because a file it prefers sits beside it:
/// per-transcript tables when a cell x gene matrix is there (Xenium `transcripts.*` next to
/// `cell_feature_matrix*`, CosMx `*_tx_file*` next to `*_exprmat_file*`, MERSCOPE `detected_transcripts*`
/// next to `cell_by_gene*`), and 10x raw matrices next to filtered ones.
fn not_read(path: &Path, name: &str) -> bool {
    let Some(dir) = path.parent() else { return false };
    let beside = |pattern: &str| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().any(|e| e.file_name().to_string_lossy().to_ascii_lowercase().contains(pattern))
            })
            .unwrap_or(false)
    };
    (name.starts_with("transcripts.") && beside("cell_feature_matrix"))
        || (name.contains("_tx_file") && beside("_exprmat_file"))
        || (name.starts_with("detected_transcripts") && beside("cell_by_gene"))
        || (name.starts_with("raw_feature_bc_matrix") && beside("filtered_feature_bc_matrix"))
}

/// Estimated bytes to read `path` (a file or a vendor folder), and whether it is Visium HD binned output.
fn input_estimate(path: &Path, bin_size_um: u32) -> (u64, bool) {
    let keep_bin = format!("square_{bin_size_um:03}um");
    let mut total = 0u64;
    let mut visium_hd = false;
    let mut stack: Vec<(PathBuf, usize)> = vec![(path.to_path_buf(), 0)];
    while let Some((p, depth)) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.is_dir() {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if name.starts_with("square_") && name.ends_with("um") {
                visium_hd = true;
                if name != keep_bin {
                    continue;
                }
            }
            if depth < 6 {
                if let Ok(entries) = std::fs::read_dir(&p) {
                    stack.extend(entries.flatten().map(|e| (e.path(), depth + 1)));
                }
            }
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let factor = if [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".json", ".html", ".svg", ".zarr.zip"]
            .iter()
            .any(|e| name.ends_with(e))
            || not_read(&p, &name)
        {
            0
        } else if [".h5", ".h5ad", ".hdf5", ".gz", ".parquet", ".zarr", ".zip"].iter().any(|e| name.ends_with(e)) {
            COMPRESSED_FACTOR
        } else {
            TEXT_FACTOR
        };
        total = total.saturating_add(meta.len().saturating_mul(factor));
    }
    (total, visium_hd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("500m"), Ok(500 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("lots").unwrap_err().contains("8G"));
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn sizes_print_for_people() {
        assert_eq!(format_size(100), "100 B");
        assert_eq!(format_size(3 << 29), "1.5 GB");
        assert_eq!(format_size(300 << 20), "300 MB");
    }

    #[test]
    fn limit_refuses_and_advises() {
        let l = Limit { bytes: Some(1000), explicit: true };
        assert!(l.check(Path::new("a.h5"), 999, "x", "advice").is_ok());
        let e = l.check(Path::new("a.h5"), 5000, "5 non-zeros", "bin at 8 um").unwrap_err().to_string();
        assert!(e.contains("a.h5") && e.contains("4.9 KB") && e.contains("bin at 8 um") && e.contains("--max-memory"));
        assert!(Limit::new(Some(0)).check(Path::new("a"), u64::MAX, "", "").is_ok());
    }

    #[test]
    fn files_ingest_skips_are_not_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let x = tmp.path();
        for (name, size) in [
            ("cells.parquet", 10),
            ("cell_feature_matrix.h5", 100),
            ("transcripts.parquet", 1_000_000),
            ("transcripts.zarr.zip", 1_000_000),
        ] {
            std::fs::write(x.join(name), vec![0u8; size]).unwrap();
        }
        assert_eq!(input_estimate(x, 8), (110 * COMPRESSED_FACTOR, false));
        // Without the matrix, the transcripts are what ingest reads.
        std::fs::remove_file(x.join("cell_feature_matrix.h5")).unwrap();
        assert_eq!(input_estimate(x, 8), (1_000_010 * COMPRESSED_FACTOR, false));
    }

    #[test]
    fn visium_hd_counts_only_the_chosen_bin() {
        let tmp = tempfile::tempdir().unwrap();
        for (bin, size) in [("square_002um", 10_000), ("square_008um", 100)] {
            let d = tmp.path().join("binned_outputs").join(bin);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("filtered_feature_bc_matrix.h5"), vec![0u8; size]).unwrap();
        }
        assert_eq!(input_estimate(tmp.path(), 8), (100 * COMPRESSED_FACTOR, true));
        assert_eq!(input_estimate(tmp.path(), 2), (10_000 * COMPRESSED_FACTOR, true));
    }
}
