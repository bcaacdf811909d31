#!/usr/bin/env bash
# Niches, states and the therapy comparison against the simulator's planted truth (issue 6): see
# scripts/eval_niches.py. Release build; scripts/.venv gets pyarrow, pandas, scikit-learn from PyPI.
# Usage: scripts/eval_niches.sh [WORK_DIR] [extra eval_niches.py options, e.g. --niches auto]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/tmescope-eval-niches}"
shift || true
venv="$repo/scripts/.venv"
if ! "$venv/bin/python" -c "import pyarrow, pandas, sklearn" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pyarrow pandas scikit-learn numpy
fi
bin="${TMESCOPE_BIN:-$repo/target/release/tmescope}"
[ -n "${TMESCOPE_BIN:-}" ] || (cd "$repo" && cargo build --release --locked -p tmescope-cli --quiet)
exec "$venv/bin/python" "$repo/scripts/eval_niches.py" --tmescope "$bin" --work "$work" "$@"
