#!/usr/bin/env bash
# Benchmark of the niche stages: 20 programs scored (19 shipped + resistance), niches, states and
# resistance niches on a synthetic 1M-cell section (release build). Prints wall time and peak RSS.
# Usage: scripts/bench/niche.sh [SIDE=1000] [THREADS=2]
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
side="${1:-1000}"
threads="${2:-2}"
venv="$here/scripts/.venv"
if ! "$venv/bin/python" -c "import pyarrow, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pyarrow numpy
fi
(cd "$here" && cargo build --release -p tmescope-cli)
bin="$here/target/release/tmescope"
work="${TMPDIR:-/tmp}/tmescope-niche-bench-$side"
if [ ! -f "$work/ds/counts.parquet" ]; then
  "$venv/bin/python" "$here/scripts/bench/niche_data.py" "$work" "$side"
fi
run() {
  local name="$1"; shift
  /usr/bin/time -f "$name: %e s wall, %M KB peak RSS" "$bin" --threads "$threads" "$@"
}
run score score "$work/ds" --graph "$work/graph" -o "$work/scores" --quiet
run niches niches "$work/ds" --graph "$work/graph" --scores "$work/scores" --niches 8 -o "$work/niches" --quiet
run niches_auto niches "$work/ds" --graph "$work/graph" --scores "$work/scores" --niches auto -o "$work/niches_auto" --quiet
