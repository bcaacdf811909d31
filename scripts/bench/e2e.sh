#!/usr/bin/env bash
# End-to-end benchmark (issue 10): simulate a Xenium-like section, write it out as a real Xenium output
# folder, then run every stage on it with `/usr/bin/time -v` (release build) and write a table of wall time,
# CPU time and peak memory per stage and end to end into docs/benchmarks.md (between the markers
# `<!-- e2e:CELLS:begin -->` and `<!-- e2e:CELLS:end -->`, created if missing).
#
# Usage: scripts/bench/e2e.sh [CELLS...]          (default: 10000 100000 1000000)
# Environment: TMESCOPE_BIN (a prebuilt binary; default: build target/release/tmescope), THREADS (default 2), GENES (total panel, default 5000), REF_CELLS (reference cells, default
#   50000), WORK (scratch folder, default /tmp/tmescope-e2e), KEEP=1 keeps the scratch folder,
#   NO_DOC=1 prints the table without editing docs/benchmarks.md.
# Stages: ingest (Xenium folder: cells.parquet + cell_feature_matrix.h5), deconvolve (labels mode: RCTD-style
# per-cell labels against the reference), graph (kNN, k = 6), stats (neighbourhood enrichment with 1000
# permutations, interaction matrix, co-occurrence to 200 um, Moran's I and Geary's C on the 100 most variable
# genes), score (the 19 shipped programs + resistance, smoothed, Gi* hotspots), niches (k-means on
# neighbourhood composition + scores, states, resistance niches), communicate (ligand-receptor pairs between
# neighbours) and report. Simulation and the export are set-up, not timed in the total.
# Every stage runs even when one fails; the script then exits with status 1 (the table marks which failed).
# CI runs it on a tiny section through scripts/bench/smoke.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
threads="${THREADS:-2}"
genes_total="${GENES:-5000}"
ref_cells="${REF_CELLS:-50000}"
work="${WORK:-/tmp/tmescope-e2e}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(10000 100000 1000000)

venv="$repo/scripts/.venv"
bin="${TMESCOPE_BIN:-$repo/target/release/tmescope}"
[ -n "${TMESCOPE_BIN:-}" ] || (cd "$repo" && cargo build --release --locked -p tmescope-cli --quiet)
"$bin" --version
build="release build"
case "$bin" in */debug/*) build="debug build (times not comparable)" ;; esac

# timed NAME CMD...: runs CMD under /usr/bin/time -v, appends "NAME wall cpu rss status" to $rows.
timed() {
  local name="$1"; shift
  local tf="$run/time_$name.txt" status=ok
  if ! /usr/bin/time -v -o "$tf" "$bin" --threads "$threads" "$@" > "$run/log_$name.txt" 2>&1; then
    status=failed; failed=$((failed + 1))
    tail -5 "$run/log_$name.txt" >&2
  fi
  local wall cpu rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tf" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' "$tf")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$tf")
  echo "$name $wall $cpu $rss $status" >> "$rows"
  printf '  %-12s wall %8.1f s  cpu %8.1f s  peak %6s MB  %s\n' "$name" "$wall" "$cpu" "$rss" "$status"
}

failed=0
for n in "${sizes[@]}"; do
  echo "== $n cells, $genes_total genes, reference $ref_cells cells, $threads threads"
  sim="$work/sim_$n"; xen="$work/xenium_$n"; run="$work/run_$n"
  rm -rf "$run"; mkdir -p "$run"
  rows="$run/rows.txt"; : > "$rows"
  WORK="$work" GENES="$genes_total" REF_CELLS="$ref_cells" THREADS="$threads" "$repo/scripts/bench/make_section.sh" "$n"
  nnz=$("$venv/bin/python" -c "import h5py,sys; f=h5py.File(sys.argv[1]); print(f['matrix/data'].shape[0])" "$xen/cell_feature_matrix.h5")
  timed ingest ingest "$xen" --format xenium --sample P1_pre -o "$run/dataset"
  timed deconvolve deconvolve --spatial "$run/dataset" --reference "$sim/reference" -o "$run/deconvolution" \
    --mode labels --seed 1
  timed graph graph "$run/dataset" -o "$run/graph" --kind knn --k 6
  timed stats stats "$run/dataset" --graph "$run/graph" --proportions "$run/deconvolution" -o "$run/stats" \
    --perms 1000 --max-radius 200 --top-variable 100 --seed 1
  timed score score "$run/dataset" --graph "$run/graph" -o "$run/scores" --seed 1
  timed niches niches "$run/dataset" --graph "$run/graph" --scores "$run/scores" \
    --proportions "$run/deconvolution" -o "$run/niches" --niches 8 --seed 1
  timed communicate communicate "$run/dataset" --graph "$run/graph" --niches "$run/niches" \
    --proportions "$run/deconvolution" -o "$run/communication" --seed 1
  timed report report "$run" -o "$run/report"

  table="$run/table.md"
  {
    echo "Simulated Xenium-like section: $n cells x $genes_total genes, $nnz non-zeros ($(( nnz / n )) per cell), reference of $ref_cells cells; $threads threads; $build; $(date -u +%Y-%m-%d)."
    echo
    echo "| stage | wall (s) | CPU (s) | peak memory (MB) | status |"
    echo "|---|---|---|---|---|"
    awk '{printf "| %s | %.1f | %.1f | %d | %s |\n", $1, $2, $3, $4, $5}' "$rows"
    awk '{w+=$2; c+=$3; if ($4>m) m=$4; if ($5!="ok") s="failed"} END {if (s=="") s="ok"; printf "| **end to end** | **%.1f** | **%.1f** | **%d** | %s |\n", w, c, m, s}' "$rows"
  } > "$table"
  cat "$table"
  if [ "${NO_DOC:-0}" != 1 ]; then
    "$venv/bin/python" - "$repo/docs/benchmarks.md" "$n" "$table" <<'EOF'
import sys, re
doc, n, table = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().strip()
text = open(doc).read()
begin, end = f"<!-- e2e:{n}:begin -->", f"<!-- e2e:{n}:end -->"
block = f"{begin}\n{table}\n{end}"
if begin in text and end in text:
    text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
else:
    text = text.rstrip() + f"\n\n### {int(n):,} cells\n\n{block}\n"
open(doc, "w").write(text)
EOF
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$run"
done
if [ "$failed" -gt 0 ]; then
  echo "e2e: $failed stage run(s) failed (the end of each failed log is printed above; KEEP=1 keeps them)" >&2
  exit 1
fi
