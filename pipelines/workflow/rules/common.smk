# Helpers shared by the rules: the stage plan, asked of `tmescope config --print-commands - --json`.
#
# The command line of every stage is built by tmescope itself from the same parameters `tmescope run`
# reads (one place: crates/cli/src/pipeline/plan.rs), so this workflow and `tmescope run` run the same
# commands and write the same files. This file only turns that plan into rule inputs, outputs and shells.

import json
import os
import shlex
import subprocess
import sys

from snakemake.exceptions import WorkflowError

# Keys of config/config.yaml that only this workflow reads; the rest is the tmescope pipeline config.
SNAKEMAKE_ONLY_KEYS = ("tmescope", "resources")


def load_plan(tmescope, pipeline_config):
    """Asks tmescope for the plan (every step's argv, inputs and output) as JSON."""
    try:
        proc = subprocess.run(
            [tmescope, "config", "--print-commands", "-", "--json"],
            input=json.dumps(pipeline_config),
            capture_output=True,
            text=True,
        )
    except OSError as e:
        raise WorkflowError(
            f"cannot run `{tmescope}` ({e}): put tmescope on PATH or set `tmescope:` in config/config.yaml"
        )
    if proc.returncode != 0:
        raise WorkflowError(f"`{tmescope} config` rejected the configuration:\n{proc.stderr}")
    return json.loads(proc.stdout)


TMESCOPE = str(config.get("tmescope", "tmescope"))
PLAN = load_plan(TMESCOPE, {k: v for k, v in config.items() if k not in SNAKEMAKE_ONLY_KEYS})
OUT = PLAN["output"]
STEPS = {(s["stage"], s["sample"] or ""): s for s in PLAN["steps"]}


def _runnable(index, memo={}):
    """A step runs when its stage is implemented in this tmescope build and every step it needs runs."""
    if index not in memo:
        s = PLAN["steps"][index]
        memo[index] = PLAN["available"][s["stage"]] and all(_runnable(j) for j in s["needs"])
    return memo[index]


RUNNABLE = [s for i, s in enumerate(PLAN["steps"]) if _runnable(i)]
for note in PLAN["notes"]:
    print(f"tmescope: note: {note}", file=sys.stderr)
for stage, ok in PLAN["available"].items():
    if not ok:
        print(f"tmescope: `{stage}` is not implemented in this build: its steps are skipped", file=sys.stderr)


def final_outputs():
    """Every output the plan can produce with this build (the target of `rule all`)."""
    return [s["output"] for s in RUNNABLE]


def step(stage, wildcards):
    return STEPS[(stage, getattr(wildcards, "sample", ""))]


def step_inputs(stage):
    """Input function: the files and folders the step reads."""
    return lambda wildcards: step(stage, wildcards)["inputs"]


def raw_files(wildcards):
    """Input function of ingest: every file below the sample sheet's path(s), sorted.

    Snakemake judges a folder input by the folder's own modification time, which changes when a file is
    added or removed but not when one is rewritten; listing the files makes a changed raw input re-run
    ingest (and, through its output, the stages after it). A path that does not exist is returned as is,
    so Snakemake reports it as a missing input.
    """
    files = []
    for path in step("ingest", wildcards)["inputs"]:
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names))
        else:
            files.append(path)
    return files


def step_command(stage):
    """Params function: the step's shell command (the same argv `tmescope run` spawns: -v, so that the log
    also says how long each step of the stage took, the argv, then --threads)."""

    def command(wildcards, output, threads):
        s = step(stage, wildcards)
        if s["argv"] is None:
            # format = dataset: the already-ingested folder is copied as is, like `tmescope run` does.
            return shlex.join(["cp", "-r", s["copy_from"], output[0]])
        return shlex.join([TMESCOPE, "-v"] + s["argv"] + ["--threads", str(threads)])

    return command


BUILTIN_RESOURCES = {"threads": 1, "mem_mb": 4000, "runtime": 60}


def res(stage, key):
    """A rule's threads or resource, from `resources:` in config/config.yaml (`default` when unset)."""
    table = config.get("resources", {})
    default = table.get("default", {}).get(key, BUILTIN_RESOURCES[key])
    return table.get(stage, {}).get(key, default)
