#!/usr/bin/env bash
# Side-by-side timing of tmescope and scanpy/squidpy (PyPI, installed into scripts/.venv when missing) on the same simulated
# Xenium-like section, in one run; prints the ratios and writes the table into docs/benchmarks.md
# (between `<!-- peers:CELLS:begin -->` and `<!-- peers:CELLS:end -->`). See scripts/bench/peers.py for the
# steps compared.
# Usage: scripts/bench/peers.sh [CELLS...]   (default: 100000 1000000; environment as in e2e.sh, plus
#   PEER_COOC_MAX: largest section on which squidpy's quadratic co-occurrence is run, default 20000)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${WORK:-/tmp/tmescope-e2e}"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100000 1000000)
bin="${TMESCOPE_BIN:-$repo/target/release/tmescope}"
[ -n "${TMESCOPE_BIN:-}" ] || (cd "$repo" && cargo build --release --locked -p tmescope-cli --quiet)
venv="$repo/scripts/.venv"
if ! "$venv/bin/python" -c "import pyarrow, h5py, anndata, scipy, scanpy, squidpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pyarrow h5py anndata scipy numpy pandas scanpy squidpy
fi
for n in "${sizes[@]}"; do
  echo "== $n cells"
  WORK="$work" "$repo/scripts/bench/make_section.sh" "$n"
  doc=()
  [ "${NO_DOC:-0}" = 1 ] || doc=(--doc "$repo/docs/benchmarks.md")
  "$venv/bin/python" "$repo/scripts/bench/peers.py" --tmescope "$bin" \
    --xenium "$work/xenium_$n" --truth "$work/sim_$n/truth_cells.parquet" --work "$work/peers_$n" \
    --programs "$repo/crates/core/data/programs.gmt" --threads "${THREADS:-2}" "${doc[@]}"
done
