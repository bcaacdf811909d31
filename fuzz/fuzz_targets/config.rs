//! The pipeline config parser (`tmescope run --config`, TOML or JSON) and the sample-sheet parser, built
//! from the CLI's own source files (the CLI is a binary crate, so they are included by path).
#![no_main]
#![allow(dead_code, missing_docs)]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

// At the crate root, so that their `super::` paths resolve as in the CLI's `pipeline` module.
#[path = "../../crates/cli/src/pipeline/config.rs"]
mod config;
#[path = "../../crates/cli/src/pipeline/plan.rs"]
mod plan;
#[path = "../../crates/cli/src/pipeline/sheet.rs"]
mod sheet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = config::parse(text, Path::new("pipeline.toml"));
    let _ = config::parse(text, Path::new("pipeline.json"));
    let _ = sheet::parse(text, Path::new("samples.csv"), "auto");
});
