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
# every stage; communicate scores the spots by their deconvolved proportions.
stages: [ingest, deconvolve, graph, stats, score, niches, communicate, compare, report]
# sigma fixed so the debug build skips the sigma search (tested elsewhere).
deconvolve: {reference: ../sim/reference, sigma: 0.8}
stats: {perms: 50, max_radius: 200.0}
niches: {niches: "4"}
communicate: {perms: 50}
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

step "Snakemake: a changed raw input re-runs its ingest (dry run)"
# The ingest rule's inputs are the files below the sheet's path (raw_files in rules/common.smk), so
# rewriting one re-runs that sample's ingest, and only it. Like `tmescope run` (content hashes), Snakemake
# 9 ignores a bare `touch` of a small file whose checksum it recorded.
first_sample="$(awk -F, 'NR==2 {print $1}' "$work/sim/samples.csv")"
first_path="$(awk -F, 'NR==2 {print $2}' "$work/sim/samples.csv")"
raw_file="$work/sim/$first_path/cells.parquet"
cp -p "$raw_file" "$work/cells.parquet.orig"
touch "$raw_file"
"$snakemake" --profile profiles/local --cores 2 -n > "$work/smk3.log" 2>&1
grep -q "Nothing to be done" "$work/smk3.log" || { echo "FAIL: a bare touch re-ran something"; exit 1; }
printf 'x' >> "$raw_file"   # new content (the dry run does not read it; restored below)
"$snakemake" --profile profiles/local --cores 2 -n > "$work/smk4.log" 2>&1
cp -p "$work/cells.parquet.orig" "$raw_file"   # original content and modification time
n_ingest="$(grep -cE '^(local)?rule ingest:' "$work/smk4.log" || true)"
if ! grep -q "sample=$first_sample" "$work/smk4.log" || [[ "$n_ingest" != 1 ]]; then
  tail -n 40 "$work/smk4.log"
  echo "FAIL: changing a raw input of $first_sample should re-run exactly its ingest"; exit 1
fi
echo "raw input change: ingest $first_sample (and what follows) would re-run; a bare touch re-runs nothing"
"$snakemake" --profile profiles/local --cores 2 -n > "$work/smk5.log" 2>&1
grep -q "Nothing to be done" "$work/smk5.log" || { echo "FAIL: restoring the raw input left work to do"; exit 1; }

step "Snakemake: a failing stage stops with its error and leaves no output"
mkdir -p "$work/bad/raw/s1"
printf 'cell,A\nx1,not-a-number\n' > "$work/bad/raw/s1/cell_by_gene.csv"
cp "$repo/test_data/merscope/cell_metadata.csv" "$work/bad/raw/s1/"
printf 'sample,path,format,condition\ns1,raw/s1,merscope,pre\n' > "$work/bad/samples.csv"
set +e
"$snakemake" --profile profiles/local --cores 1 --config samples=../bad/samples.csv output=bad-results \
  'stages=["ingest"]' > "$work/bad.log" 2>&1
code=$?
set -e
[[ $code != 0 ]] || { echo "FAIL: the bad input did not fail the workflow"; exit 1; }
grep -q "cell_by_gene.csv" logs/ingest/s1.log || { cat logs/ingest/s1.log; echo "FAIL: no clear error"; exit 1; }
[[ ! -e bad-results/s1/dataset ]] || { echo "FAIL: the failed ingest left an output folder"; exit 1; }
echo "failing ingest: $(grep -m1 -i error logs/ingest/s1.log)"

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
stages = ["ingest", "deconvolve", "graph", "stats", "score", "niches", "communicate", "compare", "report"]
[deconvolve]
reference = "../sim/reference"
sigma = 0.8
[stats]
perms = 50
max_radius = 200.0
[niches]
niches = "4"
[communicate]
perms = 50
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
