//! Helpers shared by the end-to-end tests.

#![allow(dead_code)] // each test module uses a different subset of the helpers

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// A file under `test_data/`.
pub fn test_data(rel: &str) -> PathBuf {
    repo().join("test_data").join(rel)
}

/// Runs `tmescope` with `args`, returning its output.
pub fn tmescope<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_tmescope")).args(args).output().expect("tmescope runs")
}

/// Runs `tmescope` and asserts success, returning stdout.
pub fn ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = tmescope(args);
    assert!(
        out.status.success(),
        "tmescope failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `tmescope`, asserts exit code 2 and that stderr mentions every `needle`; returns stderr.
pub fn fails_with<I, S>(args: I, needles: &[&str]) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = tmescope(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "expected exit code 2, stderr:\n{err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention `{n}`:\n{err}");
    }
    err
}
