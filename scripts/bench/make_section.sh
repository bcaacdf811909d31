#!/usr/bin/env bash
# Creates the benchmark section shared by scripts/bench/e2e.sh and scripts/bench/peers.sh (release build):
# a simulated Xenium-like section of CELLS cells (GENES genes in the panel, REF_CELLS reference cells) in
# $WORK/sim_CELLS, exported as a real Xenium output folder in $WORK/xenium_CELLS.
# Does nothing when the folder exists already.
# Usage: scripts/bench/make_section.sh CELLS   (environment: WORK, GENES, REF_CELLS, THREADS as in e2e.sh;
#   DEPTH: mean counts per cell, default 250, which gives about 250 non-zeros per cell over 5,000 genes)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
n="$1"
work="${WORK:-/tmp/tmescope-e2e}"
genes_total="${GENES:-5000}"
ref_cells="${REF_CELLS:-50000}"
depth="${DEPTH:-250}"
threads="${THREADS:-2}"
venv="$repo/scripts/.venv"
bin="${TMESCOPE_BIN:-$repo/target/release/tmescope}"
sim="$work/sim_$n"; xen="$work/xenium_$n"
[ -f "$xen/cell_feature_matrix.h5" ] && exit 0
# Only pyarrow, h5py and pandas are needed here (the export); peers.sh adds scanpy and squidpy.
if ! "$venv/bin/python" -c "import pyarrow, h5py, numpy, pandas" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pyarrow h5py numpy pandas
fi
mkdir -p "$work"
# The simulator's named panel (programs + markers) has about 300 genes; background genes make up the rest.
"$bin" simulate -o "$work/probe" --platform xenium --cells 200 --samples 1 --genes 0 --reference-cells 0 --quiet
named=$("$venv/bin/python" -c "import pyarrow.parquet as pq,sys; print(pq.read_metadata(sys.argv[1]).num_rows)" \
  "$work/probe/P1_pre_xenium/genes.parquet")
rm -rf "$work/probe"
"$bin" --threads "$threads" simulate -o "$sim" --platform xenium --cells "$n" --samples 1 \
  --genes $(( genes_total - named )) --reference-cells "$ref_cells" --depth "$depth" --seed 1 --quiet
"$venv/bin/python" "$repo/scripts/bench/export_xenium.py" "$sim/P1_pre_xenium" "$xen"
