//! The `tmescope` binary: a thin command-line layer over the library crates.
//!
//! Each subcommand lives in `commands/<name>.rs` with its options and `--help` examples; algorithms live
//! in the library crates. Exit codes: 0 success, 2 bad input or options (the message names the file, the
//! field and what was expected), 1 anything else.

mod commands;
mod context;
mod memory;
mod pipeline;

use clap::{Parser, Subcommand};
use context::Context;
use std::process::ExitCode;

/// Map the tumour microenvironment from spatial transcriptomics and single-cell data.
#[derive(Parser, Debug)]
#[command(name = "tmescope", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Number of worker threads (default: all cores). Results do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// Refuse inputs estimated to need more memory than SIZE (e.g. 8G, 500M; 0 = no limit), before loading
    /// them, with advice. Default: 80% of the physical memory. See docs/reliability.md for the estimates.
    #[arg(long, global = true, value_name = "SIZE", value_parser = memory::parse_size)]
    max_memory: Option<u64>,
    /// Print only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More detail: -v prints how long each step took (reading, each computation, writing); -vv debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read vendor output (Visium, Visium HD, Xenium, MERSCOPE, CosMx, 10x, h5ad, tables) into a dataset folder.
    Ingest(commands::ingest::Args),
    /// Describe a dataset folder or vendor output: cells, genes, counts, coordinates, provenance.
    Inspect(commands::inspect::Args),
    /// Simulate tumour sections with a known microenvironment (ground truth included).
    Simulate(commands::simulate::Args),
    /// Simulate a small cohort and run every stage on it.
    Demo(commands::demo::Args),
    /// Estimate cell-type proportions per spot, or labels per cell, against a reference.
    Deconvolve(commands::deconvolve::Args),
    /// Build the spatial neighbour graph (kNN, radius, Delaunay, Visium grid).
    Graph(commands::graph::Args),
    /// Spatial statistics: neighbourhood enrichment, co-occurrence, Moran/Geary, Getis-Ord, Ripley.
    Stats(commands::stats::Args),
    /// Score gene programs per cell/spot, smooth them and find hotspots.
    Score(commands::score::Args),
    /// Find niches, microenvironmental states and resistance niches.
    Niches(commands::niches::Args),
    /// Ligand-receptor communication between neighbouring cell types.
    Communicate(commands::communicate::Args),
    /// Compare niche and state abundance between conditions across samples.
    Compare(commands::compare::Args),
    /// Write the self-contained HTML niche report.
    Report(commands::report::Args),
    /// Run the whole pipeline for a sample sheet from a config file.
    Run(commands::run::Args),
    /// Print or check the pipeline configuration.
    Config(commands::config::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let ctx = match Context::new(cli.threads, cli.quiet, cli.verbose, cli.max_memory) {
        Ok(c) => c,
        Err(e) => return report(e),
    };
    if let Err(e) = check_memory(&cli.command, &ctx) {
        return report(e.into());
    }
    let result = match &cli.command {
        Command::Ingest(a) => commands::ingest::run(a, &ctx),
        Command::Inspect(a) => commands::inspect::run(a, &ctx),
        Command::Simulate(a) => commands::simulate::run(a, &ctx),
        Command::Demo(a) => commands::demo::run(a, &ctx),
        Command::Deconvolve(a) => commands::deconvolve::run(a, &ctx),
        Command::Graph(a) => commands::graph::run(a, &ctx),
        Command::Stats(a) => commands::stats::run(a, &ctx),
        Command::Score(a) => commands::score::run(a, &ctx),
        Command::Niches(a) => commands::niches::run(a, &ctx),
        Command::Communicate(a) => commands::communicate::run(a, &ctx),
        Command::Compare(a) => commands::compare::run(a, &ctx),
        Command::Report(a) => commands::report::run(a, &ctx),
        Command::Run(a) => commands::run::run(a, &ctx),
        Command::Config(a) => commands::config::run(a, &ctx),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

/// The `--max-memory` guard, before a stage loads anything: dataset folders from their Parquet footers,
/// vendor inputs from their file sizes (see [`memory`]).
fn check_memory(command: &Command, ctx: &Context) -> tmescope_core::Result<()> {
    let limit = &ctx.max_memory;
    match command {
        Command::Ingest(a) => {
            for p in a.path.iter().chain(a.counts.iter()) {
                limit.check_input(p, a.bin_size)?;
            }
            Ok(())
        }
        Command::Graph(a) => limit.check_dataset(&a.dataset),
        Command::Stats(a) => limit.check_dataset(&a.dataset),
        Command::Score(a) => limit.check_dataset(&a.dataset),
        Command::Communicate(a) => limit.check_dataset(&a.dataset),
        Command::Niches(a) => a.datasets.iter().try_for_each(|d| limit.check_dataset(d)),
        Command::Deconvolve(a) => {
            limit.check_dataset(&a.spatial)?;
            limit.check_dataset(&a.reference)
        }
        _ => Ok(()),
    }
}

/// Prints the error chain and picks the exit code: 2 for user errors, 1 for the rest.
fn report(e: anyhow::Error) -> ExitCode {
    eprint!("{}", error_text(&e));
    ExitCode::from(context::exit_code(&e))
}

/// The error and its causes, one per line; a cause whose text the lines above already show (an I/O
/// error's message, included in the error naming its path) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = format!("error: {e}\n");
    for cause in e.chain().skip(1).map(|c| c.to_string()) {
        if !text.contains(&cause) {
            text.push_str(&format!("  caused by: {cause}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::from(tmescope_core::Error::io("/x/edges.parquet", gone));
        assert_eq!(error_text(&e), "error: /x/edges.parquet: gone\n");
        let e = anyhow::Error::from(std::io::Error::other("disk full")).context("writing /x/out");
        assert_eq!(error_text(&e), "error: writing /x/out\n  caused by: disk full\n");
    }
}
