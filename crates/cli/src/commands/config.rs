//! `tmescope config`: print the documented default config, check a config, print the command lines.

use crate::context::Context;
use crate::pipeline::{config, plan};
use std::path::PathBuf;

/// Options of `tmescope config`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    tmescope config --print-default > pipeline.toml\n  \
    tmescope config --check pipeline.toml\n  \
    tmescope config --print-commands pipeline.toml          # one command line per sample and stage\n  \
    tmescope config --print-commands pipeline.toml --json   # the plan as JSON (read by the Snakemake workflow)\n  \
    echo '{\"samples\": \"samples.tsv\"}' | tmescope config --print-commands - --json")]
#[command(group(clap::ArgGroup::new("action").required(true).multiple(false)))]
pub struct Args {
    /// Print the documented configuration with every parameter and its default.
    #[arg(long, group = "action")]
    pub print_default: bool,
    /// Check a config file (and its sample sheet): exit 2 naming the key or line when something is wrong.
    #[arg(long, value_name = "FILE", group = "action")]
    pub check: Option<PathBuf>,
    /// Print the command line of every stage and sample that `tmescope run` would spawn (`-` reads the
    /// config, TOML or JSON, from standard input, with paths relative to the current folder).
    #[arg(long, value_name = "FILE", group = "action")]
    pub print_commands: Option<PathBuf>,
    /// With --print-commands: print the plan as JSON (steps with stage, sample, argv, inputs, output, and
    /// whether the stage is implemented in this build).
    #[arg(long, requires = "print_commands")]
    pub json: bool,
}

/// Runs `tmescope config`.
pub fn run(args: &Args, ctx: &Context) -> anyhow::Result<()> {
    if args.print_default {
        print!("{}", config::DEFAULT_TOML);
        return Ok(());
    }
    if let Some(path) = &args.check {
        let loaded = config::load(path)?;
        let plan = plan::build(&loaded)?;
        ctx.say(format!(
            "{}: ok ({} sample(s), {} step(s), output in {})",
            loaded.source.display(),
            plan.samples.len(),
            plan.steps.len(),
            plan.output.display()
        ));
        for note in &plan.notes {
            ctx.say(format!("note: {note}"));
        }
        return Ok(());
    }
    if let Some(path) = &args.print_commands {
        let loaded = config::load(path)?;
        let plan = plan::build(&loaded)?;
        if args.json {
            let program = crate::pipeline::runner::current_program()?;
            let mut available = std::collections::BTreeMap::new();
            for s in plan::Stage::ALL {
                available.insert(s.name(), plan::stage_available(&program, s));
            }
            let json = serde_json::json!({
                "output": plan.output,
                "samples": plan.samples,
                "threads": plan.threads,
                "notes": plan.notes,
                "available": available,
                "steps": plan.steps.iter().map(|s| {
                    let (argv, copy_from) = match &s.action {
                        plan::Action::Command(a) => (Some(a.clone()), None),
                        plan::Action::Copy(p) => (None, Some(p.clone())),
                    };
                    serde_json::json!({
                        "stage": s.stage.name(),
                        "sample": s.sample,
                        "argv": argv,
                        "copy_from": copy_from,
                        "inputs": s.inputs,
                        "output": s.output,
                        "needs": s.needs,
                        "shell": s.shell_line("tmescope"),
                    })
                }).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            for note in &plan.notes {
                println!("# {note}");
            }
            for s in &plan.steps {
                println!("# [{}/{}] {}", s.stage.number(), plan::Stage::ALL.len(), s.label());
                println!("{}", s.shell_line("tmescope"));
            }
        }
        return Ok(());
    }
    Ok(())
}
