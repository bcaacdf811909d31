#!/usr/bin/env bash
# Compares `tmescope score` with scanpy's score_genes (see scripts/compare_scanpy_score.py).
# Creates scripts/.venv with scanpy and pyarrow from PyPI when missing.
# Usage: scripts/compare_scanpy_score.sh [path/to/tmescope]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if ! "$venv/bin/python" -c "import scanpy, pyarrow" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet scanpy pyarrow
fi
bin="${1:-$here/../target/debug/tmescope}"
if [ ! -x "$bin" ]; then
  (cd "$here/.." && cargo build -p tmescope-cli)
fi
exec "$venv/bin/python" "$here/compare_scanpy_score.py" "$bin"
