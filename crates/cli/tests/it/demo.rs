//! End-to-end tests of the demo stage(s).

use crate::common::{ok, tmescope};
use tmescope_core::dataset::Dataset;

#[test]
fn demo_simulates_a_cohort_and_says_where() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.display().to_string();
    // The pipeline stages have their own end-to-end tests; in a debug build the full demo takes minutes.
    let out = ok(["demo", "-o", d.as_str(), "--cells", "1500", "--no-pipeline"]);
    let data = dir.join("data");
    for name in ["P1_pre_xenium", "P1_post_visium", "P2_pre_visium", "P2_post_xenium", "reference"] {
        let p = data.join(name);
        Dataset::read(&p).unwrap();
        assert!(out.contains(&p.display().to_string()), "{name} not reported:\n{out}");
    }
    assert!(data.join("truth.json").is_file());
    assert!(out.contains("truth.json"), "{out}");
    assert!(out.contains("tmescope demo finished"), "{out}");
}

#[test]
fn demo_help_shows_examples() {
    let out = tmescope(["demo", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("tmescope demo -o"));
}
