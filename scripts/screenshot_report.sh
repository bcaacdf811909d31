#!/usr/bin/env bash
# Renders a report and saves a screenshot of it with headless Chromium.
#
# Usage: scripts/screenshot_report.sh [REPORT_DIR_OR_INDEX_HTML] [OUT.png]
#   Without arguments: writes an example cohort run (3 samples, tmescope-report's example data) to a
#   temporary folder, renders its report with `tmescope report`, and saves docs/images/report.png.
# Installs the Debian package `chromium` when it is missing (needs root and apt).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_png="${2:-$repo/docs/images/report.png}"
width="${WIDTH:-1400}"
height="${HEIGHT:-2000}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian package)..." >&2
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ $# -ge 1 ]]; then
    target="$1"
    [[ -d "$target" ]] && target="$target/index.html"
else
    echo "writing an example run and rendering its report..." >&2
    (cd "$repo" && cargo run -q -p tmescope-report --example bench_report -- \
        --cells 4000 --samples 3 --run "$work/run" --report "$work/report")
    target="$work/report/index.html"
fi
[[ -f "$target" ]] || { echo "no report at $target" >&2; exit 2; }
target="$(cd "$(dirname "$target")" && pwd)/$(basename "$target")"

mkdir -p "$(dirname "$out_png")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$work/profile" \
    --screenshot="$out_png" --window-size="$width,$height" "file://$target" 2>/dev/null
echo "screenshot: $out_png" >&2
