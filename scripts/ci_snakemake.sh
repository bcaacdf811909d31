#!/usr/bin/env bash
# End-to-end check of the Snakemake workflow (pipelines/) against `tmescope run` (issue 8).
#
#  1. a venv with Snakemake 9 + snakemake-executor-plugin-slurm + pyarrow (scripts/.venv-snakemake);
#  2. the debug binary (cargo build -p tmescope-cli);
#  3. a tiny simulated cohort (tmescope simulate: 4 Visium-like sections, 2 patients x pre/post, reference);
#  4. the workflow end to end with the local profile, then again: "Nothing to be done";
#  5. snakemake --lint (only the deliberate "no conda env/container" lint is accepted: the workflow calls
#     the tmescope binary, see docs/pipelines.md) and a dry run with the SLURM profile;
#  6. `tmescope run` on the same cohort and config, twice (the second run redoes nothing), and every
#     Parquet file compared with the Snakemake one (same data and provenance; the provenance's
#     command_line may differ and is ignored).
# Usage: scripts/ci_snakemake.sh [WORK_DIR]   (default: a temporary folder, removed at the end)
# Takes about 2-4 minutes on 2 cores once the binary is built.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$repo/scripts/.venv-snakemake"
work="${1:-}"
if [[ -z "$work" ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"
step() { printf '\n== %s\n' "$*"; }

step "venv with Snakemake ($venv)"
if [[ ! -x "$venv/bin/snakemake" ]]; then
  python3 -m venv "$venv"
  echo '*' > "$venv/.gitignore"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet 'snakemake>=9,<10' snakemake-executor-plugin-slurm pyarrow
fi
snakemake="$venv/bin/snakemake"
"$snakemake" --version

step "debug binary"
(cd "$repo" && cargo build -p tmescope-cli)
tmescope="$repo/target/debug/tmescope"
[[ -n "${CARGO_TARGET_DIR:-}" ]] && tmescope="$CARGO_TARGET_DIR/debug/tmescope"
"$tmescope" --version

step "tiny simulated cohort"
"$tmescope" simulate -o "$work/sim" --platform visium --samples 4 --cells 1500 --genes 150 \
  --reference-cells 700 --seed 3
cat "$work/sim/samples.csv"

# The same parameters for both runners: Snakemake reads them from YAML, `tmescope run` from TOML. Both
# run in sibling folders with the same relative paths, so they build identical command lines.
step "Snakemake workflow, local profile"
mkdir -p "$work/smk"
cp -r "$repo/pipelines/workflow" "$repo/pipelines/profiles" "$work/smk/"
mkdir -p "$work/smk/config"
cat > "$work/smk/config/config.yaml" <<EOF
tmescope: $tmescope
samples: ../sim/samples.csv
output: results
# communicate is left out: it reads a cell_type column from cells.parquet, which simulated spots lack
# (their types come from deconvolution).
stages: [ingest, deconvolve, graph, stats, score, niches, compare, report]
# sigma fixed so the debug build skips the sigma search (tested elsewhere).
deconvolve: {reference: ../sim/reference, sigma: 0.8}
stats: {perms: 50, max_radius: 200.0}
niches: {niches: "4"}
compare: {by: condition, pair_by: patient}
resources:
  default: {threads: 2, mem_mb: 2000, runtime: 30}
EOF
cd "$work/smk"
"$snakemake" --profile profiles/local --cores 2 2>&1 | tee "$work/smk1.log" | tail -n 25
grep -q "steps (100%) done" "$work/smk1.log" || { echo "FAIL: the workflow did not finish"; exit 1; }
ls results/cohort/report/index.html >/dev/null 2>&1 || echo "note: no report in this build (stage skipped)"

step "Snakemake again: nothing to redo"
"$snakemake" --profile profiles/local --cores 2 2>&1 | tee "$work/smk2.log" | tail -n 3
grep -q "Nothing to be done" "$work/smk2.log" || { echo "FAIL: the second run redid work"; exit 1; }

step "snakemake --lint"
set +e
"$snakemake" --lint > "$work/lint.txt" 2>&1
set -e
# Every lint is a line "    * <title>:"; only the deliberate no-conda/container one is accepted.
others="$(grep -E '^\s+\* ' "$work/lint.txt" | grep -v 'Specify a conda environment or container for each rule' || true)"
if [[ -n "$others" ]]; then
  echo "FAIL: lints:"; echo "$others"; exit 1
fi
grep -q 'Traceback\|Error' "$work/lint.txt" && { cat "$work/lint.txt"; echo "FAIL: lint crashed"; exit 1; }
echo "lint: ok ($(grep -cE '^Lints for rule' "$work/lint.txt") rules with only the deliberate no-conda-env lint)"

step "SLURM profile dry run"
"$snakemake" --profile profiles/slurm -n --config output=slurm-results 2>&1 | tee "$work/slurm.log" | tail -n 15
grep -q "rule graph" "$work/slurm.log" || grep -q "graph" "$work/slurm.log" || { echo "FAIL: no jobs listed"; exit 1; }

step "tmescope run on the same cohort"
mkdir -p "$work/run"
cat > "$work/run/pipeline.toml" <<'EOF'
samples = "../sim/samples.csv"
output = "results"
threads = 2
stages = ["ingest", "deconvolve", "graph", "stats", "score", "niches", "compare", "report"]
[deconvolve]
reference = "../sim/reference"
sigma = 0.8
[stats]
perms = 50
max_radius = 200.0
[niches]
niches = "4"
[compare]
by = "condition"
pair_by = "patient"
EOF
cd "$work/run"
"$tmescope" run --config pipeline.toml
"$tmescope" run --config pipeline.toml 2>&1 | tee "$work/run2.log"
grep -q "0 step(s) ran" "$work/run2.log" || { echo "FAIL: the second tmescope run redid work"; exit 1; }

step "same Parquet files"
"$venv/bin/python" - "$work/smk/results" "$work/run/results" <<'EOF'
import json, pathlib, sys
import pyarrow.parquet as pq

smk, run = map(pathlib.Path, sys.argv[1:3])
files = sorted(p.relative_to(smk) for p in smk.rglob("*.parquet"))
other = sorted(p.relative_to(run) for p in run.rglob("*.parquet") if "logs" not in p.parts)
if files != other:
    print("FAIL: different file sets:", set(map(str, files)) ^ set(map(str, other)))
    sys.exit(1)

def provenance(table):
    meta = table.schema.metadata or {}
    p = json.loads(meta.get(b"tmescope.provenance", b"{}"))
    p.pop("command_line", None)  # the program path and --threads may differ
    return p

bad = 0
for rel in files:
    a, b = pq.read_table(smk / rel), pq.read_table(run / rel)
    if not a.equals(b):
        print(f"FAIL: {rel}: data differ"); bad += 1
    elif provenance(a) != provenance(b):
        print(f"FAIL: {rel}: provenance differs"); bad += 1
print(f"{len(files)} Parquet files compared, {bad} differ")
sys.exit(1 if bad or not files else 0)
EOF
echo "ci_snakemake: ok"
