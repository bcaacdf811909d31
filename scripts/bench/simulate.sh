#!/usr/bin/env bash
# Benchmark of `tmescope simulate` (release build): wall time, CPU time and peak memory.
#
# Usage: scripts/bench/simulate.sh [CELLS] [THREADS] [PLATFORM] [GENES]
#   CELLS     cells in the one simulated section (default 1000000)
#   THREADS   worker threads (default 2)
#   PLATFORM  xenium | visium | both (default xenium)
#   GENES     background genes (default 300; the named panel adds about 300 more)
# The output goes to a temporary folder that is removed afterwards. Prints one result line:
#   simulate cells=... platform=... genes=... threads=... wall_s=... cpu_s=... peak_rss_mb=... nnz_per_cell=...
set -euo pipefail
cd "$(dirname "$0")/../.."
CELLS=${1:-1000000}
THREADS=${2:-2}
PLATFORM=${3:-xenium}
GENES=${4:-300}
cargo build --release -p tmescope-cli --quiet
BIN=target/release/tmescope
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
TIMEFILE="$OUT/time.txt"
if /usr/bin/time -V >/dev/null 2>&1; then
  /usr/bin/time -v -o "$TIMEFILE" "$BIN" --threads "$THREADS" simulate -o "$OUT/sim" --cells "$CELLS" --samples 1 \
    --platform "$PLATFORM" --genes "$GENES" --reference-cells 0 > "$OUT/stdout.txt"
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$TIMEFILE" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  CPU=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$TIMEFILE")
  RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$TIMEFILE")
else
  START=$(date +%s.%N)
  "$BIN" --threads "$THREADS" simulate -o "$OUT/sim" --cells "$CELLS" --samples 1 --platform "$PLATFORM" \
    --genes "$GENES" --reference-cells 0 > "$OUT/stdout.txt"
  WALL=$(echo "$(date +%s.%N) - $START" | bc)
  CPU=NA
  RSS=NA
fi
NNZ=$(grep -o '[0-9]* non-zeros/cell' "$OUT/stdout.txt" | head -1 | awk '{print $1}')
echo "simulate cells=$CELLS platform=$PLATFORM genes=$GENES threads=$THREADS wall_s=$WALL cpu_s=$CPU peak_rss_mb=$RSS nnz_per_cell=${NNZ:-NA}"
