//! `tmescope ingest`: vendor output (or a generic table) in, a dataset folder out.

use super::{expected, numbers};
use crate::context::Context;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use tmescope_core::dataset::{Column, Dataset};
use tmescope_core::output::OutputDir;
use tmescope_core::provenance::Provenance;
use tmescope_core::timing::timed;
use tmescope_core::Error;
use tmescope_io::detect::{self, Format};
use tmescope_io::ReadOptions;

/// Options of `tmescope ingest`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  tmescope ingest xenium_outs/ -o datasets/tumour1 --sample tumour1 --meta condition=responder
  tmescope ingest --format visium spaceranger/outs -o datasets/s1 --keep-off-tissue
  tmescope ingest --format visium-hd outs/ --bin-size 16 -o datasets/hd16
  tmescope ingest run_exprMat_file.csv -o datasets/cosmx1
  tmescope ingest --format h5ad atlas.h5ad --layer counts --label-column cell_type -o ref
  tmescope ingest --format table --counts counts.tsv.gz --genes-in-rows --obs labels.txt \\
      --label-column column_2 -o reference
  tmescope ingest --format table --counts beads_x_genes.csv --coords locations.csv \\
      --x-column xcoord --y-column ycoord -o datasets/slideseq
  tmescope ingest --samples samples.csv -o datasets/")]
pub struct Args {
    /// Vendor folder or file to read (a Space Ranger `outs/`, a Xenium or MERSCOPE folder, a CosMx
    /// export, an `.h5`/`.h5ad`, an MTX folder or a table). Not used with --samples.
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Output dataset folder (with --samples: the folder receiving one dataset folder per sample).
    /// Written atomically: it appears only when complete.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Input format: auto (detect from folder contents, file names and the HDF5 signature), visium,
    /// visium-hd, xenium, merscope, cosmx, h5ad, 10x-h5, 10x-mtx or table.
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub format: String,
    /// Sample name written into `cells.sample` (default: the output folder's name).
    #[arg(long, value_name = "NAME")]
    pub sample: Option<String>,
    /// Metadata stored as a constant text column of cells.parquet, e.g. `--meta condition=responder`
    /// (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Sample sheet (CSV/TSV) with columns `sample,path` and optional `format` plus metadata columns
    /// (e.g. `condition,timepoint,patient`); writes DIR/<sample>/ for each row. Relative paths are
    /// resolved against the sheet's folder.
    #[arg(long, value_name = "SHEET.csv", conflicts_with_all = ["path", "sample", "counts"])]
    pub samples: Option<PathBuf>,
    /// Table format: the counts file (CSV/TSV/Parquet, gzipped text too); same as PATH.
    #[arg(long, value_name = "FILE")]
    pub counts: Option<PathBuf>,
    /// Table format: a separate coordinates file joined on the cell id.
    #[arg(long, value_name = "FILE")]
    pub coords: Option<PathBuf>,
    /// Table format: a cell metadata file joined on the cell id (a file without header is read with
    /// columns column_1, column_2, ...).
    #[arg(long, value_name = "FILE")]
    pub obs: Option<PathBuf>,
    /// Table format: genes are rows and cells are columns (default: cells are rows).
    #[arg(long)]
    pub genes_in_rows: bool,
    /// Table format: the cell id column of the counts, coordinates and metadata files (default: the first
    /// column of each).
    #[arg(long, value_name = "COLUMN")]
    pub id_column: Option<String>,
    /// Table format: x coordinate column (default: auto-detect x, x_centroid, center_x, xcoord, imagecol,
    /// x_location, spatial_x, pxl_col_in_fullres).
    #[arg(long, value_name = "COLUMN")]
    pub x_column: Option<String>,
    /// Table format: y coordinate column (default: auto-detect, as for x).
    #[arg(long, value_name = "COLUMN")]
    pub y_column: Option<String>,
    /// Column holding cell-type labels, stored as `cell_type` (for single-cell references; h5ad obs or
    /// table metadata).
    #[arg(long, value_name = "COLUMN")]
    pub label_column: Option<String>,
    /// Visium: keep spots outside the tissue (`in_tissue = 0`); they are dropped by default.
    #[arg(long)]
    pub keep_off_tissue: bool,
    /// Visium HD: bin size in micrometres (2, 8 or 16).
    #[arg(long, value_name = "UM", default_value_t = 8)]
    pub bin_size: u32,
    /// h5ad: read this layer (e.g. `counts`) instead of X.
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// h5ad: read raw/X (and raw/var) instead of X.
    #[arg(long)]
    pub raw: bool,
    /// Xenium transcripts: minimum Phred quality value of a counted transcript.
    #[arg(long, value_name = "QV", default_value_t = 20.0, value_parser = numbers::non_negative)]
    pub min_qv: f64,
    /// 10x: keep every feature type (Antibody Capture, CRISPR, ...), not only Gene Expression.
    #[arg(long)]
    pub all_feature_types: bool,
}

impl Args {
    fn read_options(&self, sample: &str) -> ReadOptions {
        ReadOptions {
            sample: sample.to_string(),
            all_feature_types: self.all_feature_types,
            keep_off_tissue: self.keep_off_tissue,
            bin_size_um: self.bin_size,
            layer: self.layer.clone(),
            use_raw: self.raw,
            min_qv: self.min_qv,
            genes_in_rows: self.genes_in_rows,
            coords: self.coords.clone(),
            obs: self.obs.clone(),
            id_column: self.id_column.clone(),
            x_column: self.x_column.clone(),
            y_column: self.y_column.clone(),
            label_column: self.label_column.clone(),
        }
    }

    fn parameters(&self, sample: &str, format: Format, meta: &[(String, String)]) -> serde_json::Value {
        serde_json::json!({
            "format": format.name(),
            "sample": sample,
            "meta": meta.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "coords": self.coords.as_ref().map(|p| p.display().to_string()),
            "obs": self.obs.as_ref().map(|p| p.display().to_string()),
            "genes_in_rows": self.genes_in_rows,
            "id_column": self.id_column,
            "x_column": self.x_column,
            "y_column": self.y_column,
            "label_column": self.label_column,
            "keep_off_tissue": self.keep_off_tissue,
            "bin_size": self.bin_size,
            "layer": self.layer,
            "raw": self.raw,
            "min_qv": self.min_qv,
            "all_feature_types": self.all_feature_types,
        })
    }
}

/// Parses `KEY=VALUE` pairs.
fn parse_meta(items: &[String]) -> Result<Vec<(String, String)>, Error> {
    items
        .iter()
        .map(|m| match m.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(Error::Usage(format!("--meta `{m}`: expected KEY=VALUE"))),
        })
        .collect()
}

/// Adds constant metadata columns, refusing names that clash with existing columns.
fn add_metadata(ds: &mut Dataset, meta: &[(String, String)], source: &str) -> Result<(), Error> {
    const FIXED: [&str; 7] = ["cell_id", "sample", "x", "y", "z", "total_counts", "n_genes"];
    for (k, v) in meta {
        if FIXED.contains(&k.as_str()) || ds.cells.get(k).is_some() {
            return Err(Error::Usage(format!(
                "{source} `{k}`: a column with this name already exists in cells.parquet; choose another name"
            )));
        }
        ds.cells.set(k, Column::constant_text(v, ds.cells.len()));
    }
    Ok(())
}

/// Reads one input: detects the format when asked, then reads with a spinner.
fn read_one(path: &Path, format: &str, opts: &ReadOptions, ctx: &Context) -> anyhow::Result<(Dataset, Format)> {
    let format = if format.eq_ignore_ascii_case("auto") { detect::detect(path)? } else { format.parse::<Format>()? };
    let pb = ctx.spinner(&format!("reading {} ({format})", path.display()));
    let ds = detect::read(path, format, opts);
    pb.finish_and_clear();
    let ds = ds?;
    ds.validate(path)?;
    Ok((ds, format))
}

/// The provenance record: parameters plus every input file (hashed).
fn provenance(params: serde_json::Value, inputs: &[&Path]) -> anyhow::Result<Provenance> {
    let mut prov = Provenance::new("ingest", params);
    for p in inputs {
        prov = prov.with_inputs(p, expected::READ)?;
    }
    Ok(prov)
}

fn summary(ctx: &Context, ds: &Dataset, format: Format, input: &Path, out: &Path) {
    ctx.say(format!(
        "ingested {} ({format}): {} cells, {} genes, {} non-zeros, {} total counts -> {}",
        input.display(),
        ds.cells.len(),
        ds.genes.len(),
        ds.counts.nnz(),
        ds.counts.total(),
        out.display()
    ));
    for n in &ds.notes {
        ctx.say(format!("  note: {n}"));
    }
}

/// Runs `tmescope ingest`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    if args.samples.is_some() {
        return run_sheet(args, ctx);
    }
    let input = match (&args.path, &args.counts) {
        (Some(p), None) | (None, Some(p)) => p.clone(),
        (Some(_), Some(_)) => {
            return Err(Error::Usage("give the counts either as PATH or as --counts, not both".into()).into())
        }
        (None, None) => {
            return Err(Error::Usage("give an input PATH (or --counts for a table, or --samples)".into()).into())
        }
    };
    let format = if args.counts.is_some() && args.format == "auto" { "table".to_string() } else { args.format.clone() };
    let sample = match &args.sample {
        Some(s) if !s.trim().is_empty() => s.clone(),
        Some(_) => return Err(Error::Usage("--sample must not be empty".into()).into()),
        None => args.output.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "sample1".into()),
    };
    let meta = parse_meta(&args.meta)?;
    let opts = args.read_options(&sample);
    let (mut ds, fmt) = timed("ingest: read the input", || read_one(&input, &format, &opts, ctx))?;
    add_metadata(&mut ds, &meta, "--meta")?;
    let mut inputs: Vec<&Path> = vec![&input];
    inputs.extend(args.coords.as_deref());
    inputs.extend(args.obs.as_deref());
    let prov = provenance(args.parameters(&sample, fmt, &meta), &inputs)?;
    timed("ingest: write the dataset", || ds.write(&args.output, &prov))
        .with_context(|| format!("writing {}", args.output.display()))?;
    summary(ctx, &ds, fmt, &input, &args.output);
    Ok(())
}

/// What is printed for each sample of a sheet.
struct SampleSummary {
    sample: String,
    format: Format,
    path: PathBuf,
    line: String,
    notes: Vec<String>,
}

/// `--samples`: every sample is read and written into a staging folder inside DIR; the sample folders
/// are moved into place only when all samples succeeded, so a bad sample leaves nothing behind.
fn run_sheet(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    let sheet = args.samples.as_deref().unwrap_or(Path::new(""));
    let rows = tmescope_io::table::read_sample_sheet(sheet, "auto")?;
    let global_meta = parse_meta(&args.meta)?;
    // Check every path and format before reading anything.
    for r in &rows {
        if !r.path.exists() {
            return Err(Error::input(
                sheet,
                format!("sample `{}`", r.sample),
                format!("input {} does not exist", r.path.display()),
            )
            .into());
        }
        if !r.format.eq_ignore_ascii_case("auto") {
            r.format
                .parse::<Format>()
                .map_err(|e| Error::input(sheet, format!("sample `{}`", r.sample), e.to_string()))?;
        }
    }
    let existed = args.output.exists();
    std::fs::create_dir_all(&args.output).map_err(|e| Error::io(&args.output, e))?;
    let staging = OutputDir::create(&args.output.join(".ingest-staging"))?;
    let result = (|| -> anyhow::Result<Vec<SampleSummary>> {
        let mut done = Vec::new();
        for r in &rows {
            let opts = args.read_options(&r.sample);
            let (mut ds, fmt) = read_one(&r.path, &r.format, &opts, ctx)
                .with_context(|| format!("sample `{}` of {}", r.sample, sheet.display()))?;
            let mut meta = r.metadata.clone();
            meta.extend(global_meta.iter().cloned());
            add_metadata(&mut ds, &meta, "sample sheet column")?;
            let mut inputs: Vec<&Path> = vec![&r.path];
            inputs.extend(args.coords.as_deref());
            inputs.extend(args.obs.as_deref());
            let prov = provenance(args.parameters(&r.sample, fmt, &meta), &inputs)?;
            ds.write(&staging.path(&r.sample), &prov)?;
            // Keep only the summary, not the data, while the other samples are read.
            done.push(SampleSummary {
                sample: r.sample.clone(),
                format: fmt,
                path: r.path.clone(),
                line: format!(
                    "{} cells, {} genes, {} non-zeros, {} total counts",
                    ds.cells.len(),
                    ds.genes.len(),
                    ds.counts.nnz(),
                    ds.counts.total()
                ),
                notes: ds.notes,
            });
        }
        Ok(done)
    })();
    let done = match result {
        Ok(d) => d,
        Err(e) => {
            drop(staging);
            if !existed {
                let _ = std::fs::remove_dir(&args.output);
            }
            return Err(e);
        }
    };
    for d in &done {
        let target = args.output.join(&d.sample);
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        }
        std::fs::rename(staging.path(&d.sample), &target).map_err(|e| Error::io(&target, e))?;
    }
    drop(staging);
    for d in &done {
        ctx.say(format!(
            "ingested {} ({}) as sample {}: {} -> {}",
            d.path.display(),
            d.format,
            d.sample,
            d.line,
            args.output.join(&d.sample).display()
        ));
        for n in &d.notes {
            ctx.say(format!("  note: {n}"));
        }
    }
    ctx.say(format!("{} samples written under {}", done.len(), args.output.display()));
    Ok(())
}
