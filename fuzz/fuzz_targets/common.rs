//! Shared by the fuzz targets: the readers take paths, so the fuzz bytes are written to a file first.

use std::path::PathBuf;

/// A temporary folder holding `name` with `bytes`; returns the folder (kept alive) and the file's path.
pub fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write fuzz input");
    (dir, path)
}
