//! Shared by the fuzz targets: the readers take paths, so the fuzz bytes are written to a file first.

use std::path::PathBuf;

/// A temporary folder holding `name` with `bytes`; returns the folder (kept alive) and the file's path.
#[allow(dead_code)] // the Parquet target builds its own dataset folder
pub fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write fuzz input");
    (dir, path)
}

/// Lets a panic raised inside one of `crates` (source paths containing one of the strings) pass silently:
/// the readers run those crates under a guard (`catch_unwind`) that turns such a panic into an input
/// error naming the file, which is the behaviour under test. Any other panic keeps libFuzzer's hook (report
/// and abort), and a panic that escapes the guard still aborts in libfuzzer-sys, so crashes are still
/// found. (A build with overflow checks, `-a`, also panics on arithmetic overflow inside a crate, where a
/// release build wraps.)
#[allow(dead_code)] // used by the HDF5 and Parquet targets only; each target includes this module
pub fn tolerate_guarded_panics(crates: &'static [&'static str]) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_some_and(|l| crates.iter().any(|c| l.file().contains(c))) {
                return;
            }
            previous(info);
        }));
    });
}
