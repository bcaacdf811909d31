//! End-to-end tests of `tmescope report`: render reports for run folders written in a temp dir and check
//! the structure a reader relies on (every section, every figure a valid PNG/SVG, no broken links).
//!
//! [`check_report`] is the structural check; it takes only the output folder and the sample names, so the
//! same check runs on `tmescope demo` output once the demo writes run folders.

use crate::common::{fails_with, ok};
use std::path::Path;
use tmescope_report::example::{write_example_run, write_text_columns, ExampleSample};

fn cohort(root: &Path) {
    let samples = [("P1-pre", "untreated", 1500), ("P1-post", "treated", 1200), ("P2-post", "treated", 900)];
    let samples: Vec<ExampleSample> = samples
        .iter()
        .map(|(n, c, k)| ExampleSample { name: n.to_string(), condition: c.to_string(), n_cells: *k })
        .collect();
    write_example_run(root, &samples, 42).expect("example run written");
}

/// The per-sample section ids (suffixes after the sample's id).
const SAMPLE_SECTIONS: [&str; 6] =
    ["maps", "composition", "enrichment", "communication", "deconvolution-qc", "programs"];

fn slug(s: &str) -> String {
    tmescope_report::html::slug(s)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("&amp;", "&")
}

/// Every `href="..."` and `src="..."` value in `html`.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("closed attribute");
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// Checks the report in `out` for the given samples; returns the page.
pub fn check_report(out: &Path, samples: &[&str], cohort_expected: bool) -> String {
    let html = std::fs::read_to_string(out.join("index.html")).expect("index.html written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: no scripts, no remote resources.
    assert!(!html.contains("<script"), "the page must not load scripts");
    for l in links(&html) {
        assert!(!l.contains("://"), "remote link {l}");
    }
    for id in ["summary", "cohort", "cohort-abundance", "differential", "provenance", "files"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id} missing");
    }
    for s in samples {
        let id = slug(s);
        assert!(html.contains(&format!("id=\"sample-{id}\"")), "sample section {s} missing");
        for sec in SAMPLE_SECTIONS {
            assert!(html.contains(&format!("id=\"{id}-{sec}\"")), "section {id}-{sec} missing");
        }
    }
    // Every relative link resolves; anchors point at existing ids.
    let mut figures_linked = 0;
    for l in links(&html) {
        if let Some(anchor) = l.strip_prefix('#') {
            assert!(html.contains(&format!("id=\"{anchor}\"")), "broken anchor #{anchor}");
            continue;
        }
        let target = out.join(percent_decode(&l));
        assert!(target.exists(), "broken link {l} ({})", target.display());
        if l.starts_with("figures/") {
            figures_linked += 1;
        }
    }
    assert!(figures_linked > 0, "no figure in the page");
    // Every figure file is a valid PNG or SVG of non-trivial size.
    let mut n_png = 0;
    for e in std::fs::read_dir(out.join("figures")).expect("figures folder") {
        let p = e.expect("entry").path();
        let bytes = std::fs::read(&p).expect("figure readable");
        match p.extension().and_then(|x| x.to_str()) {
            Some("png") => {
                n_png += 1;
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", p.display());
                assert!(bytes.len() > 2_000, "{} is too small ({} bytes)", p.display(), bytes.len());
                assert!(p.with_extension("svg").exists(), "{} has no SVG twin", p.display());
            }
            Some("svg") => {
                let text = String::from_utf8(bytes).expect("SVG is UTF-8");
                assert!(text.contains("<svg") && text.trim_end().ends_with("</svg>"), "{} is not an SVG", p.display());
                assert!(text.len() > 1_000, "{} is too small", p.display());
                assert_eq!(text.matches('<').count(), text.matches('>').count(), "{} is not well formed", p.display());
            }
            _ => panic!("unexpected file {}", p.display()),
        }
    }
    assert!(n_png >= 5 * samples.len(), "expected at least 5 figures per sample, found {n_png}");
    if cohort_expected {
        assert!(!html.contains("Not run: comparison between conditions"));
    }
    html
}

#[test]
fn report_renders_a_cohort_with_every_section() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    cohort(&run);
    let out = tmp.path().join("report");
    let stdout = ok(["report".as_ref(), run.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert!(stdout.contains("report:"), "{stdout}");
    let html = check_report(&out, &["P1-pre", "P1-post", "P2-post"], true);
    // The summary is computed from the data.
    assert!(html.contains("2 resistance niches"), "summary should count resistance niches");
    assert!(html.contains("Myeloid-suppressive area up 2.1x in treated vs untreated (q = 0.003)"));
    // A niche keeps its colour across samples: the cohort figure and every niche map share the legend.
    assert!(out.join("figures/p1-pre-map-niche.svg").exists());
    assert!(out.join("figures/cohort-niche-abundance.svg").exists());
    // Links to the Parquet files are relative and nothing big is copied.
    assert!(html.contains("href=\"../run/P1-pre/niches/niches.parquet\""));
    assert!(std::fs::read_dir(&out).unwrap().all(|e| e.unwrap().path().extension().is_none_or(|x| x != "parquet")));
    // Provenance of the files is shown.
    assert!(html.contains("stage <b>niches</b>"));
}

#[test]
fn report_says_not_run_for_missing_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    cohort(&run);
    let sample = run.join("P1-pre");
    for stage in ["communication", "deconvolution", "stats", "scores"] {
        std::fs::remove_dir_all(sample.join(stage)).unwrap();
    }
    let out = tmp.path().join("out");
    ok([
        "report".as_ref(),
        sample.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--max-points".as_ref(),
        "500".as_ref(),
    ]);
    let html = check_report(&out, &["P1-pre"], true);
    for what in [
        "Not run: communication",
        "Not run: deconvolution",
        "Not run: neighbourhood enrichment",
        "Not run: program scoring",
    ] {
        assert!(html.contains(what), "missing `{what}`");
    }
    // Drawing is downsampled, the statistics are not.
    assert!(html.contains("of 1500 cells drawn"));
    assert!(html.contains("1500 cells/spots"));
}

#[test]
fn report_names_file_and_column_when_a_required_column_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = tmp.path().join("s1");
    std::fs::create_dir_all(sample.join("niches")).unwrap();
    let niches = sample.join("niches/niches.parquet");
    write_text_columns(&niches, &[("cell_id", vec!["a".into(), "b".into()]), ("state", vec!["x".into(), "y".into()])])
        .unwrap();
    let out = tmp.path().join("out");
    fails_with(["report".as_ref(), sample.as_os_str(), "-o".as_ref(), out.as_os_str()], &["niches.parquet", "`niche`"]);
    assert!(!out.exists(), "no report folder after a failure");
    fails_with(["report", "/nonexistent/run", "-o", "x"], &["/nonexistent/run"]);
}

/// A `niches.parquet` with the columns but no rows: the maps are drawn with every cell unassigned and a
/// note says why (the `state` column was once reported "not found" because no batch carried it).
#[test]
fn report_on_niches_without_rows_notes_it_and_keeps_the_state_map() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    cohort(&run);
    let sample = run.join("P1-pre");
    let niches = sample.join("niches/niches.parquet");
    write_text_columns(&niches, &[("cell_id", vec![]), ("niche", vec![]), ("state", vec![])]).unwrap();
    let out = tmp.path().join("out");
    ok(["report".as_ref(), sample.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let html = check_report(&out, &["P1-pre"], true);
    assert!(html.contains("has no rows for this sample: every cell is shown unassigned"));
    assert!(!html.contains("state in niches/niches.parquet not found"));
    assert!(html.contains("-map-state.svg"), "the state map is drawn");
}

#[test]
fn report_help_shows_examples() {
    let help = ok(["report", "--help"]);
    assert!(help.contains("Examples:") && help.contains("tmescope report run/P1 -o report"));
}

/// The report of `tmescope demo` (simulate, then every stage through the pipeline runner, communication
/// scored on the Visium-like spots from their deconvolved proportions): small and with a fixed sigma so
/// the whole demo stays fast in a debug build.
#[test]
fn demo_report_has_every_section_figure_and_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.display().to_string();
    let out = ok(["demo", "-o", d.as_str(), "--cells", "1500", "--sigma", "0.8", "--threads", "2"]);
    let report = dir.join("results/cohort/report");
    assert!(out.contains(&report.join("index.html").display().to_string()), "the demo names its report:\n{out}");
    let samples = ["P1_pre_visium", "P1_post_visium", "P2_pre_visium", "P2_post_visium"];
    let html = check_report(&report, &samples, true);
    // Communication ran on spot data and is drawn for every sample.
    assert!(!html.contains("Not run: communication"), "communication missing from the demo report");
    assert!(html.contains("deconvolved proportions: the ligand weighted"), "spot communication not described");
    for s in samples {
        let fig = report.join(format!("figures/{}-communication.png", slug(s)));
        assert!(fig.is_file(), "no communication dot plot for {s}");
        assert!(dir.join("results").join(s).join("communication/communication.parquet").is_file());
    }
    // The resistance-score map is drawn (resistance niches outlined on it, figures::convex_hull).
    for s in samples {
        assert!(report.join(format!("figures/{}-map-resistance.svg", slug(s))).is_file(), "{s}");
    }
    assert!(html.contains("resistance niches outlined"), "no outline caption");
}
