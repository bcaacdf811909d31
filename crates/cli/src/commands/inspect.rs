//! `tmescope inspect`: what a dataset folder or a vendor path holds.

use crate::context::Context;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{Column, Dataset, CELLS_FILE};
use tmescope_core::parquet_io::Table;
use tmescope_core::provenance::Provenance;
use tmescope_io::detect::{self, Format};
use tmescope_io::ReadOptions;

/// Options of `tmescope inspect`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope inspect datasets/tumour1          # a dataset folder written by `tmescope ingest`
  tmescope inspect xenium_outs/              # a vendor folder: detected format and what would be read
  tmescope inspect --format table counts.csv")]
pub struct Args {
    /// A dataset folder (from `tmescope ingest`) or any vendor path `ingest` accepts.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Format of a vendor path (default: detect it, as `ingest --format auto` does).
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub format: String,
}

/// Runs `tmescope inspect`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let path = &args.path;
    let is_dataset = path.join(CELLS_FILE).is_file();
    let (ds, what, prov) = if is_dataset {
        let pb = ctx.spinner(&format!("reading {}", path.display()));
        let ds = Dataset::read(path);
        pb.finish_and_clear();
        let ds = ds?;
        let prov = Table::read(&path.join(CELLS_FILE))?.provenance();
        let what = format!("tmescope dataset folder (platform {})", ds.platform);
        (ds, what, prov)
    } else {
        let format = if args.format.eq_ignore_ascii_case("auto") {
            detect::detect(path)?
        } else {
            args.format.parse::<Format>()?
        };
        let pb = ctx.spinner(&format!("reading {} ({format})", path.display()));
        let ds = detect::read(path, format, &ReadOptions::default());
        pb.finish_and_clear();
        let ds = ds?;
        let what = format!("{} input ({})", format, if args.format == "auto" { "detected" } else { "given" });
        (ds, what, None)
    };
    for line in describe(path, &ds, &what, prov.as_ref()) {
        ctx.say(line);
    }
    Ok(())
}

/// The report lines.
fn describe(path: &Path, ds: &Dataset, what: &str, prov: Option<&Provenance>) -> Vec<String> {
    let mut out = vec![format!("path: {}", path.display()), format!("format: {what}")];
    let n = ds.cells.len();
    let samples: std::collections::BTreeSet<&str> = ds.cells.sample.iter().map(String::as_str).collect();
    out.push(format!("samples: {}", samples.into_iter().collect::<Vec<_>>().join(", ")));
    out.push(format!("cells: {n}"));
    let mut types: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in &ds.genes.feature_type {
        *types.entry(t.as_str()).or_default() += 1;
    }
    let types: Vec<String> = types.iter().map(|(t, c)| format!("{c} {t}")).collect();
    out.push(format!("genes: {} ({})", ds.genes.len(), types.join(", ")));
    let nnz = ds.counts.nnz();
    let density =
        if n > 0 && !ds.genes.is_empty() { 100.0 * nnz as f64 / (n as f64 * ds.genes.len() as f64) } else { 0.0 };
    out.push(format!("non-zeros: {nnz} ({density:.2}% of the matrix)"));
    let totals = ds.counts.row_totals();
    let mut sorted = totals.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let median = if sorted.is_empty() { 0.0 } else { sorted[sorted.len() / 2] };
    out.push(format!(
        "total counts: {} ({}; median per cell {median})",
        ds.counts.total(),
        if ds.counts.values.is_integer() { "integer" } else { "non-integer" }
    ));
    if ds.cells.has_coordinates() {
        let range = |v: &[f64]| {
            let f = v.iter().filter(|x| x.is_finite());
            let lo = f.clone().fold(f64::INFINITY, |a, &b| a.min(b));
            let hi = f.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            format!("[{lo:.2}, {hi:.2}]")
        };
        out.push(format!("coordinates: x {}, y {} ({})", range(&ds.cells.x), range(&ds.cells.y), ds.coordinate_unit));
    } else {
        out.push("coordinates: none".to_string());
    }
    let cols: Vec<String> = ds
        .cells
        .extra
        .iter()
        .map(|(name, c)| {
            let kind = match c {
                Column::Int(_) => "int",
                Column::Float(_) => "float",
                Column::Text(_) => "text",
                Column::Bool(_) => "bool",
            };
            format!("{name} ({kind})")
        })
        .collect();
    out.push(format!("metadata columns: {}", if cols.is_empty() { "none".to_string() } else { cols.join(", ") }));
    if let Some(Column::Text(labels)) = ds.cells.get("cell_type") {
        let distinct: std::collections::BTreeSet<&str> = labels.iter().flatten().map(String::as_str).collect();
        out.push(format!(
            "cell types: {} ({})",
            distinct.len(),
            distinct.iter().take(12).copied().collect::<Vec<_>>().join(", ")
        ));
    }
    for note in &ds.notes {
        out.push(format!("note: {note}"));
    }
    match prov {
        Some(p) => {
            out.push(format!(
                "provenance: {} {}, stage {}, schema version {}",
                p.tool, p.tool_version, p.stage, p.schema_version
            ));
            out.push(format!("  command line: {}", p.command_line.join(" ")));
            out.push(format!("  parameters: {}", p.parameters));
            for i in &p.inputs {
                out.push(format!("  input: {} ({} bytes, sha256 {})", i.path, i.size, i.sha256));
            }
            for note in &p.notes {
                out.push(format!("  note: {note}"));
            }
        }
        None => out.push("provenance: none (not written by tmescope)".to_string()),
    }
    out
}
