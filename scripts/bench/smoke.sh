#!/usr/bin/env bash
# Smoke test of the benchmark scripts (CI runs it): scripts/bench/e2e.sh end to end on a tiny simulated
# Xenium section with the debug binary, every stage as the 1M-cell benchmark runs it, without editing
# docs/benchmarks.md. Fails when the script or any stage fails, so the benchmark of issue 10 stays runnable.
# Times are meaningless here (debug build); the benchmark itself is `scripts/bench/e2e.sh` (release build).
# Usage: scripts/bench/smoke.sh [CELLS]   (default 1000; creates scripts/.venv with pyarrow, h5py and pandas if needed)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cells="${1:-1000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$repo" && cargo build -p tmescope-cli --quiet)
TMESCOPE_BIN="$repo/target/debug/tmescope" WORK="$work" NO_DOC=1 GENES=800 REF_CELLS=1500 \
  "$repo/scripts/bench/e2e.sh" "$cells"
