#!/usr/bin/env bash
# Creates scripts/.venv with squidpy from PyPI (numpy, scanpy, anndata come with it) and runs
# scripts/compare_squidpy.py, which compares tmescope's graphs and statistics with squidpy's.
# Usage: scripts/compare_squidpy.sh [--tmescope PATH] [--out DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi
if ! "$venv/bin/python" -c "import squidpy, pyarrow" 2>/dev/null; then
  "$venv/bin/pip" install --quiet squidpy pyarrow
fi
exec "$venv/bin/python" "$here/compare_squidpy.py" "$@"
